"""The inbound SMTP server: docs/smtp.md's replies, PIPELINING, SMTP smuggling,
limits, timeouts, shutdown.  STARTTLS, reload and load are in their own
files (test_smtpd_tls.py, test_smtpd_reload.py, test_smtpd_load.py)."""

import os
import signal
import socket
import time

import mxtest
from mxtest import test

FORWARDS = """\
alice@alias.test      alice@example.com
bob@alias.test        bob@example.org
team@alias.test       alice@alias.test, carol@example.net
postmaster@mx.fwd.test  admin@example.com
"""


def server(config=None, forwards=FORWARDS, **kw):
    """A forwarder whose accepted messages stay in the spool."""
    return mxtest.Mxfwd(forwards=forwards, config={**mxtest.NO_DELIVERY, **(config or {})}, **kw)


def expect(c, line, code, esc=None):
    r = c.cmd(line)
    assert r.code == code, f"{line!r}: expected {code}, got {r}"
    if esc is not None:
        assert r.lines[-1].startswith(esc + " "), f"{line!r}: expected {esc}, got {r}"
    return r


def greeted(m, ehlo="client.test"):
    c = m.client()
    expect(c, f"EHLO {ehlo}", 250)
    return c


# ---- the session --------------------------------------------------------------

@test
def greeting_and_ehlo_keywords():
    m = server()
    c = m.client(greet=False)
    g = c.greeting()
    assert g.lines == ["mx.fwd.test ESMTP mxfwd"], g
    r = expect(c, "EHLO client.test", 250)
    assert r.lines[0] == "mx.fwd.test"
    assert r.lines[1:] == ["PIPELINING", "SIZE 26214400", "8BITMIME", "ENHANCEDSTATUSCODES",
                           "SMTPUTF8", "DSN", "CHUNKING"], r
    r = expect(c, "HELO client.test", 250)
    assert r.lines == ["mx.fwd.test"]
    expect(c, "NOOP", 250, "2.0.0")
    expect(c, "NOOP anything", 250, "2.0.0")
    expect(c, "HELP", 214, "2.0.0")
    expect(c, "VRFY alice", 252, "2.5.2")
    expect(c, "RSET", 250, "2.0.0")
    expect(c, "QUIT", 221, "2.0.0")
    assert c.closed()
    m.wait_log(r"disconnect from unknown\[127\.0\.0\.1\] commands=8 errors=0")


@test
def protocol_errors():
    m = server({"max_errors": 100})
    c = m.client()
    expect(c, "FOO", 500, "5.5.2")
    expect(c, "MAIL FROM:<a@b.test>", 503, "5.5.1")      # before HELO
    expect(c, "EHLO", 501, "5.5.4")
    expect(c, "EHLO two words", 501, "5.5.4")
    expect(c, "EHLO client.test", 250)
    expect(c, "RCPT TO:<alice@alias.test>", 503, "5.5.1")
    expect(c, "DATA", 503, "5.5.1")
    expect(c, "MAIL FROM:a@b.test", 501, "5.5.4")
    expect(c, "MAIL FROM:<a@@b.test>", 501, "5.5.4")
    expect(c, "MAIL FROM:<a@b.test> FROB=1", 555, "5.5.4")
    expect(c, "MAIL FROM:<a@b.test> SIZE=abc", 501, "5.5.4")
    expect(c, "MAIL FROM:<a@b.test>", 250, "2.1.0")
    expect(c, "MAIL FROM:<a@b.test>", 503, "5.5.1")      # nested
    expect(c, "RCPT TO:<a b@alias.test>", 501, "5.5.4")
    expect(c, "RCPT TO:<>", 501, "5.5.4")
    expect(c, "RCPT TO:<alice@alias.test> XNOTIFY=NEVER", 555, "5.5.4")
    expect(c, "RCPT TO:<alice@alias.test> NOTIFY=NEVER,SUCCESS", 501, "5.5.4")
    expect(c, "DATA", 554, "5.5.1")                       # no valid recipients
    expect(c, "QUIT now", 501, "5.5.4")
    expect(c, "RSET", 250)
    expect(c, "EXPN team", 502, "5.5.1")
    expect(c, "STARTTLS", 502, "5.5.1")                   # no certificate
    expect(c, "AUTH PLAIN AGVl", 502, "5.5.1")


@test
def overlong_and_bare_command_lines():
    m = server()
    c = greeted(m)
    # 510 octets and CRLF: the longest line allowed.
    expect(c, "NOOP " + "x" * 505, 250)
    r = c.cmd("NOOP " + "x" * 506)
    assert (r.code, r.lines[0][:5]) == (500, "5.5.2"), r
    # Far longer, in pieces: one reply, and the rest of it is not read as commands.
    c.send("NOOP " + "y" * 3000)
    time.sleep(0.1)
    c.send("z" * 3000 + "\r\n")
    r = c.reply()
    assert r.code == 500, r
    expect(c, "NOOP", 250)
    for line in (b"NOOP\n", b"NOOP\rQUIT\r\n"):
        c.send(line)
        r = c.reply()
        assert (r.code, r.lines[0][:5]) == (500, "5.5.2"), (line, r)
    expect(c, "NOOP", 250)


@test
def too_many_errors_closes():
    m = server({"max_errors": 3})
    c = greeted(m)
    expect(c, "FOO", 500)
    expect(c, "BAR", 500)
    c.send("BAZ\r\n")
    assert c.reply().code == 500
    r = c.reply()
    assert r.code == 421 and r.lines[0].startswith("4.7.0 mx.fwd.test "), r
    assert c.closed()
    m.wait_log(r"too many errors after unknown from unknown\[127\.0\.0\.1\]")


@test
def http_request_is_dropped():
    m = server()
    c = m.client()
    c.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    r = c.reply()
    assert r.code == 421, r
    assert c.closed()


# ---- recipients: docs/smtp.md's table ------------------------------------------------

@test
def recipient_replies():
    m = server({"max_recipients": 3})
    c = greeted(m)
    expect(c, "MAIL FROM:<sender@origin.test>", 250)
    r = expect(c, "RCPT TO:<nobody@elsewhere.test>", 554, "5.7.1")
    assert r.text == "5.7.1 <nobody@elsewhere.test>: Relay access denied", r
    r = expect(c, "RCPT TO:<carol@alias.test>", 550, "5.1.1")
    assert "User unknown" in r.text
    # Relay tricks are refused like a foreign domain.
    for trick in ("a%elsewhere.test@alias.test", "elsewhere.test!a@alias.test",
                  '"a@elsewhere.test"@alias.test', "@alias.test:a@elsewhere.test"):
        expect(c, f"RCPT TO:<{trick}>", 554, "5.7.1")
    expect(c, "RCPT TO:<Alice@ALIAS.test>", 250, "2.1.5")
    expect(c, "RCPT TO:<alice+news@alias.test>", 250, "2.1.5")
    expect(c, "RCPT TO:<postmaster>", 250, "2.1.5")
    r = expect(c, "RCPT TO:<bob@alias.test>", 452, "4.5.3")
    m.wait_log(r"NOQUEUE: reject: RCPT from unknown\[127\.0\.0\.1\]: 554 5\.7\.1 "
               r"<nobody@elsewhere\.test>: Relay access denied; from=<sender@origin\.test> "
               r"to=<nobody@elsewhere\.test> proto=ESMTP helo=<client\.test> session=\w+$")
    m.wait_log(r"NOQUEUE: reject: RCPT .*: 452 4\.5\.3 <bob@alias\.test>: Too many recipients")


@test
def srs_bounce_replies():
    m = server()
    c = greeted(m)
    good = mxtest.srs0("user", "origin.test")
    # From a sender other than <>: refused whatever the signature.
    expect(c, "MAIL FROM:<someone@origin.test>", 250)
    r = expect(c, f"RCPT TO:<{good}>", 550, "5.7.1")
    assert "only bounces" in r.text, r
    expect(c, "RSET", 250)
    expect(c, "MAIL FROM:<>", 250)
    expect(c, f"RCPT TO:<{good}>", 250, "2.1.5")
    bad = "SRS0=" + ("AAAA" if good[5:9] != "AAAA" else "BBBB") + good[9:]
    r = expect(c, f"RCPT TO:<{bad}>", 550, "5.7.1")
    assert "invalid SRS signature" in r.text, r
    old = mxtest.srs0("user", "origin.test", day=int(time.time()) // 86400 - 30)
    r = expect(c, f"RCPT TO:<{old}>", 550, "5.7.1")
    assert "expired" in r.text, r
    # srs_domain is ours: a plain local part there is an unknown user.
    expect(c, "RCPT TO:<nobody@fwd.test>", 550, "5.1.1")
    # The address mxfwd itself signs reverses too.
    signed = m.run("srs", "forward", "person@origin.test").stdout.strip()
    expect(c, f"RCPT TO:<{signed}>", 250)


@test
def sender_replies():
    m = server({"max_message_size": "10K", "srs_long_senders": "reject"})
    c = greeted(m)
    # Too long to rewrite: "SRS0=HHHH=TT=" + domain + "=" + local exceeds 64 octets.
    r = expect(c, f"MAIL FROM:<{'a' * 45}@origin.test>", 550, "5.1.7")
    assert "too long" in r.text
    expect(c, "MAIL FROM:<a@origin.test> SIZE=10241", 552, "5.3.4")
    expect(c, "MAIL FROM:<caf\u00e9@origin.test>", 553, "5.6.7")
    expect(c, "MAIL FROM:<caf\u00e9@origin.test> SMTPUTF8", 250)
    expect(c, "RSET", 250)
    expect(c, "MAIL FROM:<a@origin.test> SIZE=10240 BODY=8BITMIME", 250)
    expect(c, "RCPT TO:<caf\u00e9@alias.test>", 553, "5.6.7")
    m.wait_log(r"NOQUEUE: reject: MAIL from unknown\[127\.0\.0\.1\]: 550 5\.1\.7 <a{45}@origin\.test>")
    c2 = m.client()
    expect(c2, "HELO old.client", 250)
    expect(c2, "MAIL FROM:<a@origin.test> SIZE=10", 555, "5.5.4")   # no ESMTP after HELO


# ---- message data -----------------------------------------------------------------

def start_data(m, rcpt="alice@alias.test"):
    c = greeted(m)
    expect(c, "MAIL FROM:<sender@origin.test>", 250)
    expect(c, f"RCPT TO:<{rcpt}>", 250)
    expect(c, "DATA", 354)
    return c


SMUGGLING = [b"\n.\n", b"\n.\r\n", b"\r.\r\n", b"\r\n.\n", b"\r\n.\r"]


@test
def smuggling_vectors_refused_in_step():
    m = server()
    for vector in SMUGGLING + [b" a bare\rCR in a line\r\n"]:
        c = start_data(m)
        smuggled = (b"MAIL FROM:<evil@origin.test>\r\nRCPT TO:<bob@alias.test>\r\nDATA\r\n"
                    b"Subject: smuggled\r\n\r\nsmuggled\r\n")
        c.send(b"Subject: hi\r\n\r\nbody" + vector + smuggled + b".\r\nNOOP\r\n")
        r = c.reply()
        assert (r.code, r.lines[0][:5]) == (554, "5.5.2"), (vector, r)
        r = c.reply()
        assert r.code == 250 and r.text == "2.0.0 Ok", (vector, "session in step", r)
        # The smuggled commands were data: a new transaction starts clean.
        expect(c, "RCPT TO:<bob@alias.test>", 503)
        expect(c, "QUIT", 221)
        assert mxtest.spool_files(m.settings["spool_dir"]) == [], "nothing queued"
    m.wait_log(r"NOQUEUE: reject: DATA from unknown\[127\.0\.0\.1\]: 554 5\.5\.2 ")
    assert "evil@origin.test" not in m.log()


@test
def size_limit_while_streaming():
    m = server({"max_message_size": "2K"})
    c = start_data(m)
    chunk = b"x" * 1000 + b"\r\n"
    for _ in range(10):
        c.send(chunk)
    c.send(b".\r\nNOOP\r\n")
    r = c.reply()
    assert (r.code, r.lines[0][:5]) == (552, "5.3.4"), r
    assert c.reply().code == 250     # in step
    m.wait_log(r"NOQUEUE: reject: DATA .*: 552 5\.3\.4 ")


@test
def hop_limit():
    m = server({"max_hops": 5})
    c = start_data(m)
    c.send(b"".join(b"Received: from hop%d\r\n" % i for i in range(6)) + b"\r\nbody\r\n.\r\n")
    r = c.reply()
    assert (r.code, r.lines[0][:5]) == (554, "5.4.6"), r
    m.wait_log(r"NOQUEUE: reject: DATA .*: 554 5\.4\.6 Too many hops")


@test
def bdat_chunks_and_refusals():
    m = server()
    c = greeted(m)
    expect(c, "MAIL FROM:<sender@origin.test>", 250)
    expect(c, "RCPT TO:<alice@alias.test>", 250)
    c.send(b"BDAT 12\r\nSubject: x\r\n")
    r = c.reply()
    assert (r.code, r.text) == (250, "2.0.0 Ok: 12 octets"), r
    expect(c, "DATA", 503, "5.5.1")
    expect(c, "MAIL FROM:<a@b.test>", 503, "5.5.1")
    # A bare LF in a chunk is refused at the end of the message.
    c.send(b"BDAT 8 LAST\r\n\r\nbody\n\n")
    r = c.reply()
    assert (r.code, r.lines[0][:5]) == (554, "5.5.2"), r
    # A chunk out of sequence is refused and its bytes read and dropped.
    c.send(b"BDAT 6\r\nNOOP\r\n")
    r = c.reply()
    assert (r.code, r.lines[0][:5]) == (503, "5.5.1"), r
    expect(c, "NOOP", 250)
    c2 = m.client()
    expect(c2, "HELO old", 250)
    c2.send(b"BDAT 6 LAST\r\nNOOP\r\n")
    assert c2.reply().code == 503
    expect(c2, "NOOP", 250)


# ---- PIPELINING ------------------------------------------------------------------

@test
def pipelined_transaction_in_one_write():
    m = server()
    c = m.client()
    batch = (b"EHLO client.test\r\nMAIL FROM:<sender@origin.test>\r\n"
             b"RCPT TO:<alice@alias.test>\r\nRCPT TO:<nobody@elsewhere.test>\r\n"
             b"RCPT TO:<team@alias.test>\r\nDATA\r\n")
    c.send(batch)
    # One write for the batch: the first read holds every reply.
    c.sock.settimeout(mxtest.TIMEOUT)
    first = c.sock.recv(65536)
    codes = [line[:4] for line in first.split(b"\r\n") if line]
    assert codes == [b"250-"] * 7 + [b"250 ", b"250 ", b"250 ", b"554 ", b"250 ", b"354 "], first
    c.send(b"From: <sender@origin.test>\r\nSubject: pipelined\r\n\r\nbody\r\n.\r\nNOOP\r\nQUIT\r\n")
    c.buf = b""
    replies = [c.reply() for _ in range(3)]
    assert [r.code for r in replies] == [250, 250, 221], replies
    assert replies[0].text.startswith("2.0.0 Ok: queued as "), replies


@test
def a_batch_sent_before_the_greeting_and_an_eof_get_every_reply():
    # The input is read ahead while the session waits (its client's name,
    # the checks, the commit): commands and the EOF that came meanwhile
    # are answered in order, and the message is queued once.
    m = server()
    c = mxtest.SmtpClient(m.port)
    c.send(b"EHLO client.test\r\nMAIL FROM:<sender@origin.test>\r\n"
           b"RCPT TO:<alice@alias.test>\r\nDATA\r\n"
           b"From: <sender@origin.test>\r\nSubject: early\r\n\r\nbody\r\n.\r\nQUIT\r\n")
    c.sock.shutdown(socket.SHUT_WR)
    replies = [c.reply() for _ in range(6)]
    assert [r.code for r in replies] == [220, 250, 250, 250, 354, 250] and \
        replies[5].text.startswith("2.0.0 Ok: queued as "), replies
    assert c.reply().code == 221
    assert c.closed()
    m.wait_log(r"disconnect from unknown\[127\.0\.0\.1\] commands=5 errors=0 messages=1")
    # The same, the EOF without QUIT: every reply, then the session ends.
    c = mxtest.SmtpClient(m.port)
    c.send(b"EHLO client.test\r\nMAIL FROM:<sender@origin.test>\r\n"
           b"RCPT TO:<alice@alias.test>\r\nDATA\r\n"
           b"From: <sender@origin.test>\r\nSubject: eof\r\n\r\nbody\r\n.\r\n")
    c.sock.shutdown(socket.SHUT_WR)
    replies = [c.reply() for _ in range(6)]
    assert [r.code for r in replies][-1] == 250, replies
    assert c.closed()
    m.wait_log(r"lost connection after DATA from unknown\[127\.0\.0\.1\]")
    r = m.run("queue")
    assert "-- 2 messages" in r.stdout, r.stdout


@test
def many_commands_in_one_write():
    """Replies stay in order however many commands come at once."""
    m = server({"max_recipients": 1000, "max_errors": 1000})
    c = greeted(m)
    n = 300
    c.send("MAIL FROM:<s@origin.test>\r\n" + "".join(
        f"RCPT TO:<{'alice' if i % 2 else 'nobody'}@alias.test>\r\n" for i in range(n)) + "RSET\r\n")
    assert c.reply().code == 250
    for i in range(n):
        r = c.reply()
        assert r.code == (250 if i % 2 else 550), (i, r)
    assert c.reply().code == 250


# ---- timeouts and shutdown -------------------------------------------------------

@test
def idle_timeout():
    m = server({"timeout": "1s"})
    c = m.client()
    start = time.monotonic()
    r = c.reply()
    assert r.code == 421 and r.lines[0].startswith("4.4.2 mx.fwd.test "), r
    assert 0.9 <= time.monotonic() - start < 3
    assert c.closed()
    m.wait_log(r"timeout after unknown from unknown\[127\.0\.0\.1\]")
    # Activity resets the clock.
    c = m.client()
    for _ in range(3):
        time.sleep(0.6)
        expect(c, "NOOP", 250)


@test
def connection_limits():
    m = server({"max_connections": 4, "max_connections_per_ip": 2})
    # The harness's probe of the port is a session too: let it end first.
    m.wait_log(r"disconnect from")
    a, b = m.client(), m.client()
    c = m.client(greet=False)
    r = c.reply()
    assert r.code == 421 and r.lines[0].startswith("4.7.0 "), r
    assert c.closed()
    m.wait_log(r"refused connection from unknown\[127\.0\.0\.1\]: Error: too many connections")
    a.close()
    mxtest.wait_until(lambda: m.log().count("disconnect from") >= 3, what="the close to be seen")
    d = m.client()
    expect(d, "NOOP", 250)
    expect(b, "NOOP", 250)


@test
def sigterm_closes_idle_sessions_and_exits_zero():
    m = server()
    idle = greeted(m)
    busy = start_data(m)
    busy.send(b"From: <sender@origin.test>\r\nSubject: unfinished\r\n\r\n")
    time.sleep(0.2)
    m.proc.send_signal(signal.SIGTERM)
    r = idle.reply()
    assert r.code == 421 and r.lines[0].startswith("4.4.2 "), r
    assert idle.closed()
    # No new connections.
    mxtest.wait_until(lambda: not mxtest._port_open(m.port), what="the listener to close")
    # The transaction under way may finish, then the session closes.
    assert m.proc.running()
    busy.send(b"body\r\n.\r\n")
    r = busy.reply()
    assert r.code == 250, r
    r = busy.reply()
    assert r.code == 421, r
    assert m.proc.wait() == 0
    assert "mxfwd stopped" in m.log()


@test
def sigterm_grace_ends_stalled_transactions():
    m = server({"shutdown_grace": "1s"})
    busy = start_data(m)
    busy.send(b"Subject: stalled\r\n")
    time.sleep(0.2)
    start = time.monotonic()
    m.proc.send_signal(signal.SIGTERM)
    r = busy.reply()
    assert r.code == 421, r
    assert 0.8 < time.monotonic() - start < 3
    assert m.proc.wait() == 0


@test
def ipv6_listener():
    if not mxtest.loopback6():
        return
    port = mxtest.free_port()
    m = server({"listen": [f"[::1]:{port}"]}, start=False)
    m.port = port
    m.proc = mxtest.Process([mxtest.MXFWD, "serve", "-c", m.conf],
                            log_path=os.path.join(m.dir, "mxfwd.log"))
    m.wait_log(r"listening on \[::1\]:")
    c = mxtest.SmtpClient(port, host="::1", family=socket.AF_INET6)
    c.greeting()
    expect(c, "EHLO client.test", 250)
    expect(c, "QUIT", 221)
    m.wait_log(r"connect from unknown\[::1\]")


@test
def swaks_pipelined_and_refused():
    m = server()
    base = ["swaks", "--server", "127.0.0.1", "--port", str(m.port), "--helo", "swaks.test",
            "--from", "sender@origin.test"]
    r = mxtest.run(base + ["--to", "alice@alias.test", "--pipeline", "--quit-after", "RCPT"],
                   timeout=20)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "<-  250 2.1.5 Ok" in r.stdout, r.stdout
    r = mxtest.run(base + ["--to", "someone@elsewhere.test"], timeout=20)
    assert r.returncode != 0
    assert "<** 554 5.7.1 <someone@elsewhere.test>: Relay access denied" in r.stdout, r.stdout


@test
def privileges_dropped_after_binding():
    if os.geteuid() != 0:
        print("skipped: not root")
        return
    m = server({"user": "nobody"}, start=False)
    os.chmod(m.dir, 0o755)
    # Files a reload reads must be the user's to read: refused otherwise,
    # at the start rather than at the first reload.
    r = mxtest.run([mxtest.MXFWD, "serve", "-c", m.conf])
    assert r.returncode == 1, r
    assert (f"{m.dir}/srs.secrets: cannot be read by user nobody (Permission denied): "
            "reloads would fail") in r.stderr, r.stderr
    nobody = __import__("pwd").getpwnam("nobody")
    os.chown(os.path.join(m.dir, "srs.secrets"), nobody.pw_uid, nobody.pw_gid)
    m.start()
    m.wait_log(r"running as user nobody")
    with open(f"/proc/{m.proc.pid}/status") as f:
        uids = [l.split()[1:] for l in f if l.startswith("Uid:")][0]
    nobody = __import__("pwd").getpwnam("nobody").pw_uid
    assert uids == [str(nobody)] * 4, uids
    assert os.stat(os.path.join(m.dir, "spool")).st_uid == nobody
    assert os.stat(os.path.join(m.dir, "run")).st_uid == nobody
    c = greeted(m)
    expect(c, "MAIL FROM:<a@origin.test>", 250)
    expect(c, "RCPT TO:<alice@alias.test>", 250)


@test
def bad_configuration_is_fatal_at_start():
    m = server(forwards="alice@alias.test\n", start=False)
    r = mxtest.run([mxtest.MXFWD, "serve", "-c", m.conf])
    assert r.returncode == 1, r
    assert f"{m.dir}/forwards:1: alias alice@alias.test has no destinations" in r.stderr, r.stderr
    m.write_file("forwards", FORWARDS)
    m.write_file("srs.secrets", "short\n", mode=0o600)
    r = mxtest.run([mxtest.MXFWD, "serve", "-c", m.conf])
    assert r.returncode == 1 and "srs.secrets" in r.stderr, r.stderr


if __name__ == "__main__":
    mxtest.main()
