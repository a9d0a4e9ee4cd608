"""Real filters from Debian in `mxfwd serve` (docs/milter.md): rspamd 3.4
through its proxy worker in milter mode, and OpenDKIM in verify mode,
each run privately by the test on loopback ports with the test's DNS
server (filters.py)."""

import re
import time

import filters
import mxtest
from mxtest import test

FORWARDS = "alice@alias.test  alice@dest.test\n"


def message(subject, body, author="sender@origin.test"):
    return (f"From: Sender <{author}>\r\nTo: alice@alias.test\r\nSubject: {subject}\r\n"
            f"Date: Mon, 07 Dec 2026 10:00:00 +0000\r\nMessage-ID: <{subject}.{time.time()}@origin.test>"
            f"\r\n\r\n{body}\r\n").encode()


def server(dns, milters, sink, config=None):
    settings = {"dns_servers": dns.server, "milter": milters,
                "route": f"* 127.0.0.1:{sink.port}", "outbound_tls": "off",
                "milter_timeout": "20s"}
    settings.update(config or {})
    return mxtest.Mxfwd(forwards=FORWARDS, config=settings)


def transaction(m, data, sender="sender@origin.test"):
    """EHLO, MAIL, RCPT, DATA and the message: the first reply that is not
    a 2xx or 3xx, or the reply to the final dot."""
    c = m.client()
    for line in ("EHLO client.test", f"MAIL FROM:<{sender}>", "RCPT TO:<alice@alias.test>",
                 "DATA"):
        r = c.cmd(line)
        if r.code >= 400:
            return r
    c.send(data + b".\r\n")
    return c.reply()


def with_rspamd():
    """rspamd, and mxfwd filtering with it: (rspamd, sink, mxfwd), or None
    (said) without rspamd."""
    if not filters.available(filters.RSPAMD):
        print("skipped: no rspamd")
        return None
    dns = mxtest.Dnsmasq(tcp=True)
    rspamd = filters.Rspamd(dns)
    sink = mxtest.Sink()
    return rspamd, sink, server(dns, rspamd.spec, sink)


@test
def rspamd_refuses_gtube_and_tags_clean_mail():
    if (setup := with_rspamd()) is None:
        return
    _, sink, m = setup
    # GTUBE: rspamd's own reply, nothing queued, nothing at the sink.
    r = transaction(m, message("gtube", filters.GTUBE))
    assert (r.code, r.text) == (554, "5.7.1 Gtube pattern"), r
    m.wait_log(r"milter-reject: DATA from unknown\[127\.0\.0\.1\]: 554 5\.7\.1 Gtube pattern; "
               r"from=<sender@origin\.test> proto=ESMTP helo=<client\.test> session=\w+ "
               r"milter=inet:127\.0\.0\.1:\d+$")
    # A clean message leaves with the headers rspamd adds, the message's
    # own bytes untouched below them.
    clean = message("clean", "Hello, this is a perfectly ordinary message.")
    r = transaction(m, clean)
    assert r.code == 250, r
    tx = sink.wait(1)[0]
    assert tx.rcpts == ["alice@dest.test"]
    head = tx.data.split(b"\r\n\r\n")[0]
    assert re.search(rb"\r\nX-Spam-Status: No, score=-?[0-9.]+\r\n", head + b"\r\n"), head
    assert b"\r\nX-Spamd-Result: default: False [" in head, head
    assert tx.data.endswith(b"Hello, this is a perfectly ordinary message.\r\n")
    assert len(sink.transactions) == 1, "the GTUBE message never reached the sink"
    assert m.stop() == 0


@test
def rspamd_stopped_defers_and_nothing_is_lost():
    if (setup := with_rspamd()) is None:
        return
    rspamd, sink, m = setup
    rspamd.stop()
    data = message("retried", "This one waits for rspamd.")
    # The client is told to come back: 451 at its first command.
    r = transaction(m, data)
    assert (r.code, r.text) == (451, "4.7.1 Service unavailable - try again later"), r
    m.wait_log(r"milter inet:127\.0\.0\.1:\d+: cannot connect; milter_default_action applies")
    time.sleep(0.3)
    assert sink.transactions == [] and mxtest.spool_files(m.settings["spool_dir"]) == []
    # rspamd is back: the client's retry goes through.
    rspamd.start()
    r = transaction(m, data)
    assert r.code == 250, r
    assert sink.wait(1)[0].data.endswith(b"This one waits for rspamd.\r\n")


@test
def opendkim_adds_its_results_and_the_signature_survives():
    if not filters.available(filters.OPENDKIM, filters.RSPAMD):
        print("skipped: no opendkim or rspamd")
        return
    key = mxtest.DkimKey("rsa")
    dns = mxtest.Dnsmasq([key.publish("sel", "signed.test")], tcp=True)
    opendkim = filters.OpenDkim(dns)
    rspamd = filters.Rspamd(dns)
    sink = mxtest.Sink()
    # Two real filters, in order: rspamd, then OpenDKIM.
    m = server(dns, [rspamd.spec, opendkim.spec], sink)
    signed = mxtest.dkim_sign(message("signed", "Signed, and forwarded byte for byte.",
                                      "author@signed.test"), key, "sel", "signed.test")
    r = transaction(m, signed, sender="author@signed.test")
    assert r.code == 250, r
    data = sink.wait(1)[0].data
    # OpenDKIM's verdict on top (it inserts its field first), then this
    # hop's trace fields, then the message as it came, rspamd's fields
    # after its own.
    first = data.split(b"\r\n")[0]
    assert first == b"Authentication-Results: mx.fwd.test;", data[:400]
    opendkim_ar = data.split(b"\r\nAuthentication-Results: mx.fwd.test;\r\n")[0]
    assert re.search(rb"dkim=pass \(2048-bit key[^)]*\) header\.d=signed\.test", opendkim_ar), \
        opendkim_ar
    assert data.endswith(b"Signed, and forwarded byte for byte.\r\n")
    assert b"\r\nX-Spam-Status: No, score=" in data
    # The author's signature still verifies at the destination.
    ok, out = mxtest.dkim_verify(data, dns, index=0)
    assert ok, out
    assert m.stop() == 0


mxtest.main()
