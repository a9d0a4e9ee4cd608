"""End-to-end tests of the outbound client's STARTTLS (outbound_tls =
opportunistic, required, off) against the test sink with a certificate
made for the test."""

import tempfile

import mxtest
from mxtest import test, job, deliver, write_bytes

MESSAGE = b"From: a@origin.test\r\nSubject: tls\r\n\r\n.dot line\r\nHello.\r\n"


_cert_dir = tempfile.TemporaryDirectory(prefix="mxfwd-e2e-cert-")
_cert = []


def certificate():
    """One certificate for every test of this file (making one takes a
    while)."""
    if not _cert:
        _cert.append(mxtest.tls_certificate(_cert_dir.name, "mx.dest.test"))
    return _cert[0]


def setup(tls_mode, offer=True, **sink_options):
    d = mxtest.tempdir()
    cert = certificate() if offer else None
    sink = mxtest.Sink(tls=cert, **sink_options)
    dns = mxtest.Dnsmasq(["--mx-host=dest.test,mx.dest.test,10",
                          "--host-record=mx.dest.test,127.0.0.1"])
    config = {"dns_servers": dns.server, "outbound_port": sink.port, "outbound_tls": tls_mode}
    return sink, config, write_bytes(d, "msg", MESSAGE)


def one(sink, config, msg, rcpts=("x@dest.test",)):
    r = deliver([job("J", msg, "a@origin.test", "dest.test", list(rcpts))], config)
    return r, r["J", rcpts[0]]


@test
def opportunistic_uses_starttls_when_offered():
    sink, config, msg = setup("opportunistic")
    r, res = one(sink, config, msg)
    assert res.status == "OK", res
    tx = sink.transactions[0]
    assert tx.tls and tx.data == MESSAGE
    # EHLO again after TLS (RFC 3207 4.2); pipelining over TLS.
    assert tx.helo == "mx.fwd.test" and len(tx.reads) == 1
    assert r.stats["tls"] == 1 and sink.connections == 1


@test
def opportunistic_takes_an_old_tls_over_none():
    """A destination that speaks only TLS 1.0 (or 1.1): any TLS beats the
    clear, as Postfix has it; required still wants 1.2 or later."""
    import ssl
    for version in (ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1):
        sink, config, msg = setup("opportunistic", tls_versions=(version, version))
        r, res = one(sink, config, msg)
        assert res.status == "OK", res
        assert sink.transactions[0].tls == version.name.replace("_", "."), \
            sink.transactions[0].tls
        assert sink.transactions[0].data == MESSAGE
    sink, config, msg = setup("required", tls_versions=(ssl.TLSVersion.TLSv1,
                                                         ssl.TLSVersion.TLSv1))
    r, res = one(sink, config, msg)
    assert res.status == "TEMPFAIL" and sink.transactions == [], res


@test
def opportunistic_plaintext_when_not_offered():
    sink, config, msg = setup("opportunistic", offer=False)
    r, res = one(sink, config, msg)
    assert res.status == "OK" and not sink.transactions[0].tls
    assert r.stats["tls"] == 0


@test
def opportunistic_retries_in_plaintext_after_a_failed_handshake():
    """As Postfix does: the same host again on a new connection, without
    STARTTLS."""
    sink, config, msg = setup("opportunistic", tls_break=True)
    r, res = one(sink, config, msg)
    assert res.status == "OK", res
    assert sink.connections == 2 and not sink.transactions[0].tls
    assert sink.transactions[0].data == MESSAGE


@test
def opportunistic_goes_on_in_plaintext_when_starttls_is_refused():
    sink, config, msg = setup("opportunistic", starttls_reply="454 4.7.0 TLS not available")
    r, res = one(sink, config, msg)
    assert res.status == "OK" and sink.connections == 1 and not sink.transactions[0].tls


@test
def required_uses_tls():
    sink, config, msg = setup("required")
    r, res = one(sink, config, msg, ("x@dest.test", "y@dest.test"))
    assert res.status == "OK" and r["J", "y@dest.test"].status == "OK"
    assert sink.transactions[0].tls and sink.transactions[0].data == MESSAGE


@test
def required_defers_when_not_offered():
    sink, config, msg = setup("required", offer=False)
    r, res = one(sink, config, msg)
    assert res.status == "TEMPFAIL" and res.dsn == "4.7.4", res
    assert res.reply == "TLS is required, but was not offered by host mx.dest.test[127.0.0.1]"
    assert sink.attempts == [] and sink.quits == 1


@test
def required_defers_when_refused_or_broken():
    sink, config, msg = setup("required", starttls_reply="454 4.7.0 TLS not available")
    r, res = one(sink, config, msg)
    assert res.status == "TEMPFAIL" and res.dsn == "4.7.4", res
    assert res.reply == ("TLS is required, but host mx.dest.test[127.0.0.1] refused to start "
                         "TLS: 454 4.7.0 TLS not available"), res
    sink, config, msg = setup("required", tls_break=True)
    r, res = one(sink, config, msg)
    assert res.status == "TEMPFAIL" and res.dsn == "4.7.5", res
    assert res.reply.startswith("TLS handshake with mx.dest.test[127.0.0.1] failed: "), res
    assert sink.connections == 1 and sink.attempts == []


@test
def off_never_starts_tls():
    sink, config, msg = setup("off")
    r, res = one(sink, config, msg)
    assert res.status == "OK" and not sink.transactions[0].tls


@test
def tls_connection_reused():
    sink, config, msg = setup("required")
    r = deliver([job("J", msg, "a@origin.test", "dest.test", ["x@dest.test"]),
                 "wait",
                 job("K", msg, "a@origin.test", "dest.test", ["y@dest.test"])], config)
    assert r["K", "y@dest.test"].status == "OK"
    assert sink.connections == 1 and all(t.tls for t in sink.transactions)
    assert len(sink.transactions) == 2
    assert r.stats["tls"] == 1 and r.stats["reused"] == 1


@test
def large_message_over_tls():
    d = mxtest.tempdir()
    sink = mxtest.Sink(tls=certificate())
    dns = mxtest.Dnsmasq(["--mx-host=dest.test,mx.dest.test,10",
                          "--host-record=mx.dest.test,127.0.0.1"])
    body = b"Subject: big\r\n\r\n" + b"".join(
        (b"." if i % 5 == 0 else b"") + b"%08d " % i + b"z" * (i % 120) + b"\r\n"
        for i in range(30000))
    spool = write_bytes(d, "spool", body)
    r = deliver([job("J", spool, "a@origin.test", "dest.test", ["x@dest.test"])],
                {"dns_servers": dns.server, "outbound_port": sink.port,
                 "outbound_tls": "required"})
    assert r["J", "x@dest.test"].status == "OK"
    assert sink.transactions[0].tls and sink.transactions[0].data == body


if __name__ == "__main__":
    mxtest.main()
