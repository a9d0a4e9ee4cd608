"""Many clients at once: 1,000 concurrent sessions on one mxfwd; clients
that reconnect at once under the per-address limit; the benchmarks'
pipelining load generator, 20 sessions at once, every message forwarded."""

import os
import re
import resource
import selectors
import socket
import subprocess
import threading
import time

import mxtest
from mxtest import test

N = 1000
# bench/smtp_pipeline, built beside mxfwd (bench/meson.build).
SMTP_PIPELINE = os.environ.get("SMTP_PIPELINE", os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(mxtest.MXFWD))), "bench", "smtp_pipeline"))


def raise_fd_limit(want):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard), hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def read_replies(socks, expect_prefix, timeout=30):
    """Read from every socket until each holds a line starting with the
    prefix; returns how many did."""
    sel = selectors.DefaultSelector()
    bufs = {}
    for s in socks:
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ)
        bufs[s] = b""
    done = set()
    deadline = time.monotonic() + timeout
    while len(done) < len(socks) and time.monotonic() < deadline:
        for key, _ in sel.select(timeout=0.5):
            s = key.fileobj
            try:
                chunk = s.recv(4096)
            except BlockingIOError:
                continue
            if not chunk:
                sel.unregister(s)
                continue
            bufs[s] += chunk
            if any(l.startswith(expect_prefix) for l in bufs[s].split(b"\r\n")):
                done.add(s)
                sel.unregister(s)
    sel.close()
    return len(done)


@test
def a_thousand_concurrent_sessions():
    if raise_fd_limit(N + 200) < N + 100:
        print("skipped: cannot open enough files")
        return
    m = mxtest.Mxfwd(forwards="alice@alias.test alice@example.com\n",
                     config={"max_connections": N + 10, "max_connections_per_ip": N + 10,
                             "timeout": "60s"})
    socks = []
    try:
        for _ in range(N):
            s = socket.create_connection(("127.0.0.1", m.port), timeout=10)
            socks.append(s)
        assert read_replies(socks, b"220 ") == N
        for s in socks:
            s.setblocking(True)
            s.sendall(b"EHLO client.test\r\nMAIL FROM:<a@origin.test>\r\n"
                      b"RCPT TO:<alice@alias.test>\r\n")
        # Every session answers while all are open.
        assert read_replies(socks, b"250 2.1.5") == N
        for s in socks:
            s.setblocking(True)
            s.sendall(b"QUIT\r\n")
        assert read_replies(socks, b"221 ") == N
    finally:
        for s in socks:
            s.close()
    mxtest.wait_until(lambda: m.log().count("disconnect from") >= N, timeout=30,
                      what="every session to end")


def reconnecting_client(port, rounds, polite, greetings):
    """Connect, read the greeting, QUIT (or just close) and at once again."""
    for _ in range(rounds):
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s, \
                s.makefile("rb") as f:
            greeting = f.readline()
            greetings.append(greeting)
            if polite and greeting.startswith(b"220 "):
                s.sendall(b"QUIT\r\n")
                f.readline()


@test
def clients_that_reconnect_at_once_are_never_over_the_limit():
    # 16 clients under a limit of 20, each closing and reconnecting at
    # once: a session that has said 221 (or whose client has closed) no
    # longer counts, so no connection sees 421.
    m = mxtest.Mxfwd(forwards="alice@alias.test alice@example.com\n",
                     config={"max_connections_per_ip": 20})
    for polite in (True, False):
        greetings = []
        threads = [threading.Thread(target=reconnecting_client,
                                    args=(m.port, 10, polite, greetings))
                   for _ in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert len(greetings) == 160, len(greetings)
        refused = [g for g in greetings if not g.startswith(b"220 ")]
        assert refused == [], (polite, len(refused), refused[:3])
    assert "too many connections" not in m.log()


@test
def the_per_address_limit_still_refuses_the_one_too_many():
    m = mxtest.Mxfwd(forwards="alice@alias.test alice@example.com\n",
                     config={"max_connections_per_ip": 3})
    held = [m.client() for _ in range(3)]
    with socket.create_connection(("127.0.0.1", m.port), timeout=10) as s:
        assert s.makefile("rb").readline().startswith(b"421 4.7.0 ")
    # One says goodbye: its place is free as soon as its 221 is out.
    assert held[0].cmd("QUIT").code == 221
    c = m.client()
    c.close()
    for h in held[1:]:
        h.close()


@test
def the_pipelining_load_generator_gets_every_message_forwarded_whole():
    # The benchmarks' load as mail servers send it (MAIL, RCPT and DATA
    # together, QUIT behind the message's dot), 20 sessions at once: every
    # one of 300 messages reaches the next hop once, SRS-rewritten, with
    # its bytes after the headers mxfwd prepends unchanged.
    sink = mxtest.Sink()
    dns = mxtest.Dnsmasq([])
    m = mxtest.Mxfwd(forwards="user@alias.test user@dest.test\n",
                     config={"dns_servers": dns.server, "outbound_tls": "off",
                             "route": f"dest.test 127.0.0.1:{sink.port}"})
    r = subprocess.run([SMTP_PIPELINE, "-s", "20", "-m", "300", "-l", "3000", "-w", "60",
                        "-f", "sender@origin.test", "-t", "user@alias.test",
                        f"127.0.0.1:{m.port}"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.startswith("smtp_pipeline: 300 messages sent in "), \
        r.stdout + r.stderr
    txs = list(sink.wait(300, timeout=60))
    numbers = []
    for t in txs:
        assert t.mail_from == mxtest.srs0("sender", "origin.test") and \
            t.rcpts == ["user@dest.test"], t
        own = re.search(rb"\r\nFrom: <sender@origin.test>\r\nTo: <user@alias.test>\r\n"
                        rb"Date: [^\r]+\r\nMessage-Id: <(\d+)\.\d+@smtp-pipeline\.test>\r\n\r\n"
                        rb"(?:X{78}\r\n){37}X{38}\r\n\Z", t.data)
        assert own, t.data[:600]
        numbers.append(int(own.group(1)))
    # Each once: 300 transactions, one for each message.
    assert sorted(numbers) == list(range(300))
    # And every session ended as it should: five commands, one message.
    mxtest.wait_until(lambda: len(re.findall(r"disconnect from .* commands=5 errors=0 messages=1 ",
                                             m.log())) == 300,
                      timeout=30, what="300 sessions of one message each to end")


if __name__ == "__main__":
    mxtest.main()
