"""STARTTLS on the inbound server (RFC 3207): with a certificate made at
test time; the state reset after the handshake; commands pipelined after
STARTTLS in the clear are dropped (CVE-2011-0411 class); TLS 1.2 at least;
certificate reload."""

import os
import signal
import ssl
import subprocess
import time

import mxtest
from mxtest import test

FORWARDS = "alice@alias.test  alice@example.com\n"


def tls_server(**config):
    d = mxtest.tempdir()
    cert, key = mxtest.tls_certificate(d, "mx.fwd.test")
    settings = {"tls_cert": cert, "tls_key": key}
    settings.update(config)
    m = mxtest.Mxfwd(forwards=FORWARDS, config=settings)
    m.cert, m.key = cert, key
    return m


def context(**kw):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    for k, v in kw.items():
        setattr(ctx, k, v)
    return ctx


def ehlo(c):
    r = c.cmd("EHLO client.test")
    assert r.code == 250, r
    return r.lines[1:]


@test
def starttls_and_state_reset():
    m = tls_server()
    c = m.client()
    assert "STARTTLS" in ehlo(c)
    assert c.cmd("MAIL FROM:<a@origin.test>").code == 250
    # Not inside a transaction.
    r = c.cmd("STARTTLS")
    assert (r.code, r.lines[0][:5]) == (503, "5.5.1"), r
    assert c.cmd("RSET").code == 250
    assert c.cmd("STARTTLS extra").code == 501
    r = c.cmd("STARTTLS")
    assert (r.code, r.text) == (220, "2.0.0 Ready to start TLS"), r
    tls = c.starttls(context=context())
    assert tls.version() in ("TLSv1.2", "TLSv1.3"), tls.version()
    # Everything before TLS is forgotten: EHLO again first.
    r = c.cmd("MAIL FROM:<a@origin.test>")
    assert (r.code, r.lines[0][:5]) == (503, "5.5.1"), r
    exts = ehlo(c)
    assert "STARTTLS" not in exts and "PIPELINING" in exts, exts
    r = c.cmd("STARTTLS")
    assert (r.code, r.lines[0][:5]) == (503, "5.5.1"), r
    assert c.cmd("MAIL FROM:<a@origin.test>").code == 250
    assert c.cmd("RCPT TO:<alice@alias.test>").code == 250
    assert c.cmd("QUIT").code == 221
    m.wait_log(r"mxfwd/smtpd\[\d+\]: Anonymous TLS connection established from "
               r"unknown\[127\.0\.0\.1\]: TLSv1\.[23] with cipher \S+ \(\d+/\d+ bits\) session=\w+$")


@test
def commands_pipelined_after_starttls_are_dropped():
    m = tls_server()
    c = m.client()
    ehlo(c)
    # An attacker in the path appends commands to the client's STARTTLS:
    # they must not run inside the TLS session (CVE-2011-0411).
    c.send(b"STARTTLS\r\nMAIL FROM:<evil@origin.test>\r\nRCPT TO:<alice@alias.test>\r\n")
    r = c.reply()
    assert r.code == 220, r
    assert c.buf == b"", c.buf
    c.starttls(context=context())
    r = c.cmd("EHLO client.test")
    assert r.code == 250 and len(r.lines) > 1, ("the first reply is EHLO's", r)
    r = c.cmd("RCPT TO:<alice@alias.test>")
    assert r.code == 503, ("no transaction was started", r)
    m.wait_log(r"dropped \d+ bytes pipelined after STARTTLS")


@test
def pipelining_inside_tls():
    m = tls_server()
    c = m.client()
    ehlo(c)
    assert c.cmd("STARTTLS").code == 220
    c.starttls(context=context())
    c.send(b"EHLO client.test\r\nMAIL FROM:<a@origin.test>\r\nRCPT TO:<alice@alias.test>\r\n"
           b"RCPT TO:<x@elsewhere.test>\r\nDATA\r\n")
    codes = [c.reply().code for _ in range(5)]
    assert codes == [250, 250, 250, 554, 354], codes
    c.send(b"Subject: tls\r\n\r\nbody\n.\r\n.\r\n")
    r = c.reply()
    assert (r.code, r.lines[0][:5]) == (554, "5.5.2"), r
    assert c.cmd("NOOP").code == 250


@test
def old_tls_versions_refused():
    m = tls_server()
    c = m.client()
    ehlo(c)
    assert c.cmd("STARTTLS").code == 220
    try:
        c.starttls(context=context(minimum_version=ssl.TLSVersion.TLSv1,
                                   maximum_version=ssl.TLSVersion.TLSv1_1))
    except (ssl.SSLError, OSError):
        pass
    else:
        raise AssertionError("a TLS 1.1 handshake succeeded")
    m.wait_log(r"TLS failure with unknown\[127\.0\.0\.1\]|lost connection after STARTTLS")


@test
def garbage_instead_of_a_handshake():
    m = tls_server()
    c = m.client()
    ehlo(c)
    assert c.cmd("STARTTLS").code == 220
    c.send(b"EHLO not-tls\r\n")
    assert c.closed()
    m.wait_log(r"TLS failure with unknown\[127\.0\.0\.1\]")


@test
def idle_timeout_during_handshake():
    m = tls_server(timeout="1s")
    c = m.client()
    ehlo(c)
    assert c.cmd("STARTTLS").code == 220
    assert c.closed(timeout=5)
    m.wait_log(r"timeout after STARTTLS")


@test
def swaks_starttls():
    m = tls_server()
    r = mxtest.run(["swaks", "--server", "127.0.0.1", "--port", str(m.port), "--tls",
                    "--from", "sender@origin.test", "--to", "alice@alias.test",
                    "--helo", "swaks.test", "--quit-after", "RCPT"], timeout=20)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "<-  220 2.0.0 Ready to start TLS" in r.stdout, r.stdout
    assert "~> RCPT TO:<alice@alias.test>" in r.stdout and "<~  250 2.1.5 Ok" in r.stdout


@test
def certificate_reloads_on_sighup():
    m = tls_server()
    c = m.client()
    ehlo(c)
    c.cmd("STARTTLS")
    first = c.starttls(context=context()).getpeercert(binary_form=True)
    # A new certificate in place of the old one, as a renewal does it.
    d = mxtest.tempdir()
    cert, key = mxtest.tls_certificate(d, "mx.fwd.test")
    os.replace(cert, m.cert)
    os.replace(key, m.key)
    m.proc.send_signal(signal.SIGHUP)
    m.wait_log(r"reloaded TLS certificate")
    c = m.client()
    ehlo(c)
    c.cmd("STARTTLS")
    second = c.starttls(context=context()).getpeercert(binary_form=True)
    assert first != second
    # A broken one is refused and the current one stays.
    with open(m.cert, "w") as f:
        f.write("not a certificate\n")
    m.proc.send_signal(signal.SIGHUP)
    m.wait_log(r"not reloaded, the previous TLS certificate stays in use")
    c = m.client()
    ehlo(c)
    c.cmd("STARTTLS")
    assert c.starttls(context=context()).getpeercert(binary_form=True) == second


if __name__ == "__main__":
    mxtest.main()
