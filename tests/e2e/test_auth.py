"""The sender checks in `mxfwd serve`, end to end: SPF, DKIM and DMARC
against dnsmasq on loopback, DKIM signatures made now by a real signer
(python3-dkim's dkimsign), the reply each verdict gives, the
Authentication-Results: header on the spooled message, the log line, and
a signed message that still verifies with dkimverify once mxfwd has
added its headers.  Also the client's forward-confirmed name."""

import os
import re
import signal
import socket
import time

import mxtest
from mxtest import test

FORWARDS = """\
alice@alias.test      alice@example.com
bob@alias.test        bob@example.org
"""

# The client is 127.0.0.1 and says EHLO client.test.
SPF = [
    mxtest.txt_record("pass.test", "v=spf1 ip4:127.0.0.1 -all"),
    mxtest.txt_record("fail.test", "v=spf1 ip4:192.0.2.1 -all"),
    mxtest.txt_record("soft.test", "v=spf1 ip4:192.0.2.1 ~all"),
    mxtest.txt_record("esp.test", "v=spf1 ip4:127.0.0.1 -all"),
    mxtest.txt_record("client.test", "v=spf1 ip4:127.0.0.1 -all"),
    mxtest.txt_record("badhelo.test", "v=spf1 -all"),
]


def dead_udp_port():
    """A loopback UDP port nobody listens on."""
    return mxtest.free_port(socket.SOCK_DGRAM)


def server(records=(), config=None, dns=None):
    """mxfwd with a dnsmasq serving SPF plus records; (mxfwd, dnsmasq)."""
    dns = dns or mxtest.Dnsmasq(SPF + list(records))
    # What is accepted stays in the spool, to be looked at.
    settings = {"dns_servers": dns.server, **mxtest.NO_DELIVERY}
    settings.update(config or {})
    return mxtest.Mxfwd(forwards=FORWARDS, config=settings), dns


def message(author="a@pass.test", subject="test", body=b"Hello.\r\n", extra=b""):
    return (f"From: Someone <{author}>\r\nTo: <alice@alias.test>\r\n"
            f"Subject: {subject}\r\nMessage-ID: <{subject}.{time.time()}@origin>\r\n").encode() \
        + extra + b"\r\n" + body


def stuff(data):
    return data.replace(b"\r\n.", b"\r\n..") + b".\r\n"


def send(m, sender, data, rcpts=("alice@alias.test",), ehlo="client.test", timeout=mxtest.TIMEOUT):
    """One transaction; the reply to the final dot."""
    c = m.client(timeout=timeout)
    assert c.cmd(f"EHLO {ehlo}").code == 250
    assert c.cmd(f"MAIL FROM:<{sender}>").code == 250
    for r in rcpts:
        assert c.cmd(f"RCPT TO:<{r}>").code == 250
    assert c.cmd("DATA").code == 354
    c.send(stuff(data))
    return c.reply()


def queued(m, reply):
    match = re.match(r"2\.0\.0 Ok: queued as ([0-9A-F]{13})$", reply.text)
    assert reply.code == 250 and match, reply
    return mxtest.SpoolMessage(os.path.join(m.settings["spool_dir"], match.group(1)))


def nothing_queued(m):
    assert mxtest.spool_files(m.settings["spool_dir"]) == []


def auth_results(msg):
    """The Authentication-Results: field mxfwd prepended, unfolded."""
    text = msg.prepend.decode()
    assert text.startswith("Authentication-Results: mx.fwd.test;"), text
    field = text.split("\r\nReceived: ", 1)[0]
    return re.sub(r"\r\n[ \t]+", " ", field)


def log_line(m, msg):
    return m.wait_log(rf"{msg.id}: client=\S+, session=\w+, (.*)$").group(1)


# ---- SPF --------------------------------------------------------------------------

@test
def spf_pass():
    m, _ = server()
    msg = queued(m, send(m, "a@pass.test", message()))
    ar = auth_results(msg)
    assert "spf=pass smtp.mailfrom=pass.test;" in ar, ar
    # Headers as docs/sender-checks.md has them: ours on top, the message's bytes after.
    assert msg.prepend.startswith(b"Authentication-Results: mx.fwd.test;\r\n")
    assert re.search(rb"\r\nReceived: from client\.test \(unknown \[127\.0\.0\.1\]\)\r\n",
                     msg.prepend)
    assert msg.prepend.count(b"Received:") == 1 and msg.prepend.endswith(b"0000\r\n")
    # The log line of docs/sender-checks.md, exactly.
    m.wait_log(rf"mxfwd/smtpd\[\d+\]: {msg.id}: client=unknown\[127\.0\.0\.1\], session=\w+, "
               r"spf=pass, dkim=none, dmarc=none$")
    m.wait_log(rf"mxfwd/qmgr\[\d+\]: {msg.id}: from=<a@pass\.test>, size={len(msg.message)}, "
               r"nrcpt=1, ")


@test
def spf_fail_rejected():
    m, _ = server()
    r = send(m, "a@fail.test", message("a@fail.test"))
    assert (r.code, r.text) == (550, "5.7.23 SPF fail: fail.test does not authorize 127.0.0.1 "
                                     "to send its mail"), r
    nothing_queued(m)
    m.wait_log(r"NOQUEUE: reject: DATA from unknown\[127\.0\.0\.1\]: 550 5\.7\.23 SPF fail: "
               r"fail\.test does not authorize 127\.0\.0\.1 to send its mail; "
               r"from=<a@fail\.test> proto=ESMTP helo=<client\.test> session=\w+$")


@test
def spf_fail_tagged():
    m, _ = server(config={"spf_action": "tag"})
    msg = queued(m, send(m, "a@fail.test", message("a@fail.test")))
    ar = auth_results(msg)
    assert re.search(r"spf=fail \(fail\.test does not authorize 127\.0\.0\.1 to send its mail\) "
                     r"smtp\.mailfrom=fail\.test;", ar), ar
    assert log_line(m, msg) == "spf=fail, dkim=none, dmarc=none"


@test
def spf_softfail_accepted():
    m, _ = server()
    msg = queued(m, send(m, "a@soft.test", message("a@soft.test")))
    assert "spf=softfail" in auth_results(msg)
    assert log_line(m, msg) == "spf=softfail, dkim=none, dmarc=none"


@test
def spf_temperror_defers():
    # A zone forwarded to a port nobody answers on: dnsmasq never replies,
    # and libspf2's queries time out (2 tries).
    dns = mxtest.Dnsmasq(SPF + [f"--server=/slow.test/127.0.0.1#{dead_udp_port()}"])
    # The sender's domain is all of slow.test: its existence is not what
    # is tested here (its MX lookup would time out first, 450 4.1.8).
    m, _ = server(dns=dns, config={"reject_unknown_sender_domain": "no"})
    start = time.monotonic()
    # (The author's domain answers: only SPF is slow.)
    r = send(m, "a@slow.test", message("a@pass.test"), timeout=30)
    assert (r.code, r.text) == (451, "4.4.3 Temporary DNS error checking SPF for slow.test; "
                                     "try again later"), r
    assert time.monotonic() - start < 20
    nothing_queued(m)


@test
def bounce_is_checked_against_the_helo_name():
    m, _ = server()
    r = send(m, "", message("mailer-daemon@badhelo.test"), ehlo="badhelo.test")
    assert (r.code, r.text[:6]) == (550, "5.7.23"), r
    assert "badhelo.test does not authorize 127.0.0.1" in r.text, r
    msg = queued(m, send(m, "", message("mailer-daemon@client.test")))
    assert "spf=pass smtp.helo=client.test;" in auth_results(msg)


@test
def checks_off_leave_only_dkim_and_arc():
    m, _ = server(config={"spf_action": "off", "dmarc_action": "off"})
    msg = queued(m, send(m, "a@fail.test", message("a@fail.test")))
    assert auth_results(msg) == ("Authentication-Results: mx.fwd.test; "
                                 "dkim=none (message not signed); arc=none")
    assert log_line(m, msg) == "spf=off, dkim=none, dmarc=off"


# ---- DKIM ----------------------------------------------------------------------------

def signed_server(kind, domain="signed.test", selector="sel", records=(), config=None):
    key = mxtest.DkimKey(kind)
    m, dns = server([key.publish(selector, domain),
                     mxtest.txt_record(domain, "v=spf1 ip4:127.0.0.1 -all")] + list(records),
                    config)
    return m, dns, key


@test
def dkim_rsa_verified():
    m, _, key = signed_server("rsa")
    data = mxtest.dkim_sign(message("a@signed.test", "rsa"), key, "sel", "signed.test")
    msg = queued(m, send(m, "a@signed.test", data))
    ar = auth_results(msg)
    # header.b is quoted when the signature's first 8 characters hold a
    # "/" (RFC 2045 tspecials).
    assert re.search(r"dkim=pass header\.d=signed\.test header\.i=@signed\.test header\.s=sel "
                     r'header\.a=rsa-sha256 header\.b=(?:[^\s";/]{8}|"[^\s"]{8}");', ar), ar
    assert "dmarc=none" in ar
    assert log_line(m, msg) == "spf=pass, dkim=pass, dmarc=none"


@test
def dkim_ed25519_verified():
    m, _, key = signed_server("ed25519")
    data = mxtest.dkim_sign(message("a@signed.test", "ed"), key, "sel", "signed.test",
                            hcanon="simple", bcanon="relaxed")
    msg = queued(m, send(m, "a@signed.test", data))
    assert re.search(r"dkim=pass header\.d=signed\.test .*header\.a=ed25519-sha256",
                     auth_results(msg))
    assert log_line(m, msg) == "spf=pass, dkim=pass, dmarc=none"


@test
def dkim_altered_body_fails():
    m, _, key = signed_server("rsa", config={"spf_action": "tag"})
    data = mxtest.dkim_sign(message("a@signed.test", "altered"), key, "sel", "signed.test")
    data = data.replace(b"Hello.", b"Hullo.")
    msg = queued(m, send(m, "a@signed.test", data))
    assert re.search(r"dkim=fail \(body hash did not verify\) header\.d=signed\.test",
                     auth_results(msg)), auth_results(msg)
    assert log_line(m, msg) == "spf=pass, dkim=fail, dmarc=none"


def forwarded_verifies(kind, hcanon, bcanon):
    m, dns, key = signed_server(kind)
    body = (b"Lines that need care in transit:\r\n.a leading dot\r\n..two of them\r\n"
            b"trailing space \r\n\r\n" + b"long " * 200 + b"\r\n\r\n\r\n")
    data = mxtest.dkim_sign(message("a@signed.test", kind, body), key, "sel", "signed.test",
                            hcanon=hcanon, bcanon=bcanon)
    ok, out = mxtest.dkim_verify(data, dns)
    assert ok, "the signer's own message: " + out
    msg = queued(m, send(m, "a@signed.test", data))
    # What mxfwd will deliver: its headers, then the client's bytes.
    assert msg.body == data
    ok, out = mxtest.dkim_verify(msg.message, dns)
    assert ok, out
    assert "dkim=pass" in auth_results(msg)


@test
def forwarded_message_still_verifies_rsa():
    forwarded_verifies("rsa", "relaxed", "simple")
    forwarded_verifies("rsa", "simple", "simple")


@test
def forwarded_message_still_verifies_ed25519():
    forwarded_verifies("ed25519", "relaxed", "relaxed")


@test
def dkim_4096_bit_key_in_three_strings():
    """The largest key verifiers must take (RFC 8301): its record is
    published as three character-strings (a 2048-bit one takes two)."""
    key = mxtest.DkimKey("rsa", bits=4096)
    assert key.publish("big", "signed.test").count(",") == 3
    m, _ = server([key.publish("big", "signed.test"),
                   mxtest.txt_record("signed.test", "v=spf1 ip4:127.0.0.1 -all")])
    data = mxtest.dkim_sign(message("a@signed.test", "big"), key, "big", "signed.test")
    msg = queued(m, send(m, "a@signed.test", data))
    assert "dkim=pass header.d=signed.test" in auth_results(msg)


# ---- DMARC -------------------------------------------------------------------------------

@test
def dmarc_reject_enforced():
    m, _ = server([mxtest.txt_record("_dmarc.strict.test", "v=DMARC1; p=reject")])
    # SPF passes for esp.test, which is not the author's domain.
    r = send(m, "bounce@esp.test", message("ceo@strict.test"))
    assert (r.code, r.text) == (550, "5.7.1 strict.test publishes DMARC p=reject and this message "
                                     "has neither an aligned SPF pass nor a valid aligned DKIM "
                                     "signature"), r
    nothing_queued(m)
    m.wait_log(r"NOQUEUE: reject: DATA from unknown\[127\.0\.0\.1\]: 550 5\.7\.1 strict\.test "
               r"publishes DMARC p=reject .*; from=<bounce@esp\.test> proto=ESMTP "
               r"helo=<client\.test> session=\w+$")
    # dmarc_action = tag lets it through, marked.
    m2, _ = server([mxtest.txt_record("_dmarc.strict.test", "v=DMARC1; p=reject")],
                   config={"dmarc_action": "tag"})
    msg = queued(m2, send(m2, "bounce@esp.test", message("ceo@strict.test")))
    assert "dmarc=fail (p=reject dis=reject) header.from=strict.test" in auth_results(msg)


@test
def dmarc_quarantine_accepted_and_recorded():
    m, _ = server([mxtest.txt_record("_dmarc.quar.test", "v=DMARC1; p=quarantine")])
    msg = queued(m, send(m, "bounce@esp.test", message("ceo@quar.test")))
    ar = auth_results(msg)
    assert "dmarc=fail (p=quarantine dis=quarantine) header.from=quar.test" in ar, ar
    assert log_line(m, msg) == "spf=pass, dkim=none, dmarc=fail"
    m.wait_log(rf"{msg.id}: DMARC fail, quar\.test asks for p=quarantine: accepted and marked")


@test
def spf_fail_rescued_by_aligned_dkim():
    key = mxtest.DkimKey("rsa")
    m, _ = server([key.publish("sel", "forwarded.test"),
                   mxtest.txt_record("forwarded.test", "v=spf1 ip4:192.0.2.1 -all"),
                   mxtest.txt_record("_dmarc.forwarded.test", "v=DMARC1; p=reject")])
    # As if another forwarder had passed it on: SPF fails, the signature holds.
    data = mxtest.dkim_sign(message("a@forwarded.test", "rescued"), key, "sel", "forwarded.test")
    msg = queued(m, send(m, "a@forwarded.test", data))
    ar = auth_results(msg)
    assert "spf=fail" in ar and "dkim=pass" in ar and "dmarc=pass" in ar, ar
    assert log_line(m, msg) == "spf=fail, dkim=pass, dmarc=pass"
    # Without the signature nothing vouches for it: DMARC refuses it first.
    r = send(m, "a@forwarded.test", message("a@forwarded.test", "unsigned"))
    assert (r.code, r.text[:30]) == (550, "5.7.1 forwarded.test publishes"), r


@test
def dkim_key_temporary_failure_defers():
    key = mxtest.DkimKey("rsa")
    # The key's zone has no server (REFUSED): the signature might have
    # passed and rescued the SPF fail, so the verdict waits.
    m, _ = server(["--server=/_domainkey.keyfail.test/#",
                   mxtest.txt_record("keyfail.test", "v=spf1 ip4:192.0.2.1 -all")])
    data = mxtest.dkim_sign(message("a@keyfail.test", "keyfail"), key, "sel", "keyfail.test")
    r = send(m, "a@keyfail.test", data)
    assert (r.code, r.text) == (451, "4.4.3 Temporary DNS error fetching a DKIM key for "
                                     "keyfail.test; try again later"), r
    nothing_queued(m)


@test
def dmarc_temporary_failure_defers():
    m, _ = server(["--server=/_dmarc.dmtemp.test/#"])
    r = send(m, "bounce@esp.test", message("ceo@dmtemp.test"))
    assert (r.code, r.text) == (451, "4.4.3 Temporary DNS error checking DMARC for dmtemp.test; "
                                     "try again later"), r
    nothing_queued(m)
    # An aligned SPF pass needs no policy: nothing to wait for.
    m2, _ = server(["--server=/_dmarc.pass.test/#"])
    msg = queued(m2, send(m2, "a@pass.test", message("a@pass.test")))
    assert "dmarc=temperror" in auth_results(msg)


@test
def message_without_from_refused():
    m, _ = server()
    data = b"To: <alice@alias.test>\r\nSubject: anonymous\r\n\r\nwho wrote this?\r\n"
    r = send(m, "a@pass.test", data)
    assert (r.code, r.text) == (550, "5.7.1 Message has no From: header; RFC 5322 requires one"), r
    nothing_queued(m)


# ---- the session -------------------------------------------------------------------------

@test
def pipelined_verdicts_in_order():
    m, _ = server()
    c = m.client()
    refused, accepted = stuff(message("a@fail.test", "first")), stuff(message("a@pass.test", "2nd"))
    c.send(b"EHLO client.test\r\nMAIL FROM:<a@fail.test>\r\nRCPT TO:<alice@alias.test>\r\nDATA\r\n")
    assert [c.reply().code for _ in range(4)] == [250, 250, 250, 354]
    # The refused message, a whole second transaction and QUIT in one write:
    # what follows each final dot waits for its verdict.
    c.send(refused + b"MAIL FROM:<a@pass.test>\r\nRCPT TO:<bob@alias.test>\r\nDATA\r\n")
    assert c.reply().code == 550
    assert [c.reply().code for _ in range(3)] == [250, 250, 354]
    c.send(accepted + b"QUIT\r\n")
    queued(m, c.reply())
    assert c.reply().code == 221
    held = mxtest.spool_files(m.settings["spool_dir"])
    assert len(held) == 1, held


@test
def bdat_message_is_checked():
    m, dns, key = signed_server("ed25519")
    data = mxtest.dkim_sign(message("a@signed.test", "chunks"), key, "sel", "signed.test")
    c = m.client()
    assert c.cmd("EHLO client.test").code == 250
    assert c.cmd("MAIL FROM:<a@signed.test>").code == 250
    assert c.cmd("RCPT TO:<alice@alias.test>").code == 250
    half = len(data) // 2
    c.send(b"BDAT %d\r\n" % half + data[:half] + b"BDAT %d LAST\r\n" % (len(data) - half)
           + data[half:])
    assert c.reply().code == 250
    msg = queued(m, c.reply())
    assert "dkim=pass" in auth_results(msg)
    assert mxtest.dkim_verify(msg.message, dns)[0]


@test
def checks_end_with_their_transaction():
    m, _ = server()
    c = m.client()
    assert c.cmd("EHLO client.test").code == 250
    for _ in range(3):
        assert c.cmd("MAIL FROM:<a@slow.test>").code == 250
        assert c.cmd("RCPT TO:<alice@alias.test>").code == 250
        assert c.cmd("RSET").code == 250
    assert c.cmd("MAIL FROM:<a@pass.test>").code == 250
    assert c.cmd("RCPT TO:<x@elsewhere.test>").code == 554
    assert c.cmd("QUIT").code == 221
    c.close()
    # Clients that leave with checks under way: after RCPT, inside DATA.
    for partial in (b"", b"DATA\r\n" + message()[:40]):
        c = m.client()
        c.send(b"EHLO client.test\r\nMAIL FROM:<a@pass.test>\r\nRCPT TO:<bob@alias.test>\r\n"
               + partial)
        assert [c.reply().code for _ in range(3 + bool(partial))][-1] in (250, 354)
        c.close()
    mxtest.wait_until(lambda: m.log().count("disconnect from") >= 4, what="the sessions to end")
    # A new greeting ends the transaction and its checks too.
    c = m.client()
    assert c.cmd("EHLO client.test").code == 250
    assert c.cmd("MAIL FROM:<a@pass.test>").code == 250
    assert c.cmd("RCPT TO:<alice@alias.test>").code == 250
    assert c.cmd("EHLO client.test").code == 250
    assert c.cmd("MAIL FROM:<a@pass.test>").code == 250
    c.close()
    nothing_queued(m)
    # Nothing left behind: the sanitizers see every check freed at exit.
    assert m.stop() == 0


@test
def shutdown_grace_drops_a_message_waiting_for_its_verdict():
    # The author's DMARC policy never comes (a zone forwarded to a port
    # nobody answers on).
    dns = mxtest.Dnsmasq(SPF + [f"--server=/slow.test/127.0.0.1#{dead_udp_port()}"])
    m, _ = server(config={"shutdown_grace": "1s"}, dns=dns)
    c = m.client(timeout=30)
    assert c.cmd("EHLO client.test").code == 250
    assert c.cmd("MAIL FROM:<a@pass.test>").code == 250
    assert c.cmd("RCPT TO:<alice@alias.test>").code == 250
    assert c.cmd("DATA").code == 354
    c.send(stuff(message("a@slow.test")))
    time.sleep(0.3)
    start = time.monotonic()
    m.proc.send_signal(signal.SIGTERM)
    r = c.reply()
    assert (r.code, r.text[:5]) == (421, "4.4.2"), r
    assert time.monotonic() - start < 3
    nothing_queued(m)
    # Closing the resolver ends the lookup still out: mxfwd ends at once.
    assert m.proc.wait(timeout=5) == 0
    assert time.monotonic() - start < 4


# ---- client names -------------------------------------------------------------------------

@test
def client_name_is_forward_confirmed():
    m, _ = server(["--host-record=mail.client.test,127.0.0.1"])
    msg = queued(m, send(m, "a@pass.test", message()))
    assert b"Received: from client.test (mail.client.test [127.0.0.1])\r\n" in msg.prepend
    assert msg.client == "mail.client.test[127.0.0.1]"
    m.wait_log(r"connect from mail\.client\.test\[127\.0\.0\.1\] session=\w+$")
    m.wait_log(rf"{msg.id}: client=mail\.client\.test\[127\.0\.0\.1\], session=\w+, spf=pass")


@test
def client_name_that_does_not_map_back_is_unknown():
    m, _ = server(["--ptr-record=2.0.0.127.in-addr.arpa,liar.test",
                   "--host-record=liar.test,192.0.2.7"])
    c = m.client(source="127.0.0.2")
    assert c.cmd("QUIT").code == 221
    m.wait_log(r"hostname liar\.test does not resolve to address 127\.0\.0\.2$")
    m.wait_log(r"connect from unknown\[127\.0\.0\.2\] session=\w+$")


@test
def slow_reverse_dns_delays_the_greeting_briefly():
    m, _ = server([f"--server=/in-addr.arpa/127.0.0.1#{dead_udp_port()}"])
    start = time.monotonic()
    c = m.client(greet=False)
    c.greeting()
    waited = time.monotonic() - start
    assert 0.8 < waited < 2.5, waited
    m.wait_log(r"connect from unknown\[127\.0\.0\.1\] session=\w+$")
    assert c.cmd("EHLO client.test").code == 250


if __name__ == "__main__":
    mxtest.main()
