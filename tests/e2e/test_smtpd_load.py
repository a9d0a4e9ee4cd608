"""Many clients at once: 1,000 concurrent sessions on one mxfwd."""

import resource
import selectors
import socket
import time

import mxtest
from mxtest import test

N = 1000


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


if __name__ == "__main__":
    mxtest.main()
