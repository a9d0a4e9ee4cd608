"""End-to-end tests of the outbound SMTP client (client/) on loopback:
the real client, driven by mxdeliver, against dnsmasq and the test sink.

Each test publishes its own DNS records, starts sinks on free ports and
reads what each recipient ended with and what arrived at the sink."""

import os
import socket
import time

import mxtest
from mxtest import test, job, deliver, write_bytes

MESSAGE = b"From: a@origin.test\r\nTo: x@dest.test\r\nSubject: test\r\n\r\nHello.\r\n"


def setup(records=(), **sink_options):
    """A sink, dnsmasq with records (the sink's port is outbound_port), a
    message file, and the base configuration."""
    d = mxtest.tempdir()
    sink = mxtest.Sink(**sink_options)
    dns = mxtest.Dnsmasq(list(records))
    config = {"dns_servers": dns.server, "outbound_port": sink.port, "outbound_tls": "off"}
    return d, sink, config, write_bytes(d, "msg", MESSAGE)


def dest_records(domain="dest.test", host="mx.dest.test", ip="127.0.0.1"):
    return [f"--mx-host={domain},{host},10", f"--host-record={host},{ip}"]


def two_mx(ip1, ip2, extra=()):
    """dnsmasq with dest.test's MX mx1 (preference 10, at ip1) and mx2 (20,
    at ip2)."""
    return mxtest.Dnsmasq(["--mx-host=dest.test,mx1.dest.test,10",
                           "--mx-host=dest.test,mx2.dest.test,20",
                           f"--host-record=mx1.dest.test,{ip1}",
                           f"--host-record=mx2.dest.test,{ip2}", *extra])


def sink_pair(**options):
    """Two sinks on the same port, at 127.0.0.1 and 127.0.0.2."""
    for _ in range(20):
        a = mxtest.Sink(**options)
        try:
            b = mxtest.Sink(host="127.0.0.2", port=a.port, **options)
            return a, b
        except OSError:
            a.close()
    raise RuntimeError("no port free on both addresses")


# ---- routing ---------------------------------------------------------------

@test
def mx_preference_and_equal_hosts():
    """The best MX gets the mail; the worse one sees nothing."""
    best, worse = sink_pair()
    dns = two_mx("127.0.0.1", "127.0.0.2")
    d = mxtest.tempdir()
    msg = write_bytes(d, "msg", MESSAGE)
    r = deliver([job("J", msg, "a@origin.test", "dest.test", ["x@dest.test"])],
                {"dns_servers": dns.server, "outbound_port": best.port, "outbound_tls": "off"})
    res = r["J", "x@dest.test"]
    assert res.status == "OK", res
    assert res.relay == f"mx1.dest.test[127.0.0.1]:{best.port}", res
    assert res.reply == "250 2.0.0 Ok: queued" and res.remote and res.dsn == "2.0.0", res
    assert len(best.transactions) == 1 and worse.connections == 0


@test
def fallback_to_second_mx_when_first_refuses():
    """The first MX refuses connections (nothing listens at 127.0.0.2): the
    second takes the mail, and the refusal is no failure."""
    sink = mxtest.Sink()
    dns = two_mx("127.0.0.2", "127.0.0.1")
    d = mxtest.tempdir()
    msg = write_bytes(d, "msg", MESSAGE)
    r = deliver([job("J", msg, "a@origin.test", "dest.test", ["x@dest.test"])],
                {"dns_servers": dns.server, "outbound_port": sink.port, "outbound_tls": "off"})
    res = r["J", "x@dest.test"]
    assert res.status == "OK" and res.relay == f"mx2.dest.test[127.0.0.1]:{sink.port}", res
    assert r.stats["connect_failures"] == 1 and r.stats["connections"] == 1, r.stats
    assert len(sink.transactions) == 1


@test
def every_mx_refuses_defers_with_the_reason():
    port = mxtest.free_port()  # nothing listens there
    dns = two_mx("127.0.0.2", "127.0.0.3")
    msg = write_bytes(mxtest.tempdir(), "msg", MESSAGE)
    r = deliver([job("J", msg, "a@origin.test", "dest.test", ["x@dest.test", "y@dest.test"])],
                {"dns_servers": dns.server, "outbound_port": port, "outbound_tls": "off"})
    for rcpt in ("x@dest.test", "y@dest.test"):
        res = r["J", rcpt]
        assert res.status == "TEMPFAIL" and res.dsn == "4.4.1", res
        assert res.reply == f"connect to mx2.dest.test[127.0.0.3]:{port}: Connection refused", res
        assert res.relay == "none" and not res.remote, res
    assert r.stats["connect_failures"] == 2


@test
def implicit_mx():
    """No MX records: the domain's own address (RFC 5321 5.1)."""
    d, sink, config, msg = setup(["--host-record=plain.test,127.0.0.1"])
    r = deliver([job("J", msg, "a@origin.test", "plain.test", ["x@plain.test"])], config)
    res = r["J", "x@plain.test"]
    assert res.status == "OK" and res.relay == f"plain.test[127.0.0.1]:{sink.port}", res
    assert sink.transactions[0].rcpts == ["x@plain.test"]


@test
def null_mx_bounces_without_a_connection():
    d, sink, config, msg = setup(["--mx-host=null.test,.,0"])
    r = deliver([job("J", msg, "a@origin.test", "null.test", ["x@null.test"])], config)
    res = r["J", "x@null.test"]
    assert res.status == "PERMFAIL" and res.dsn == "5.1.10", res
    assert res.reply == "Domain null.test does not accept mail (nullMX)" and not res.remote, res
    assert res.relay == "none" and sink.connections == 0


@test
def nxdomain_bounces():
    d, sink, config, msg = setup()
    r = deliver([job("J", msg, "a@origin.test", "nowhere.test", ["x@nowhere.test"])], config)
    res = r["J", "x@nowhere.test"]
    assert res.status == "PERMFAIL" and res.dsn == "5.4.4", res
    assert "Host or domain name not found" in res.reply and "name=nowhere.test type=MX" in res.reply


@test
def smarthost_route():
    """A route entry sends every domain to one host, without an MX lookup."""
    d, sink, config, msg = setup()
    config["route"] = f"* 127.0.0.1:{sink.port}"
    r = deliver([job("J", msg, "a@origin.test", "anywhere.test", ["x@anywhere.test"])], config)
    res = r["J", "x@anywhere.test"]
    assert res.status == "OK" and res.relay == f"127.0.0.1[127.0.0.1]:{sink.port}", res


@test
def mail_loop_to_our_own_listen_address():
    """An MX that is our own listen address and port: a loop, bounced with
    5.4.6 before any connection."""
    d, sink, config, msg = setup(dest_records(ip="127.0.0.1"))
    config["listen"] = f"127.0.0.1:{sink.port}"
    r = deliver([job("J", msg, "a@origin.test", "dest.test", ["x@dest.test"])], config)
    res = r["J", "x@dest.test"]
    assert res.status == "PERMFAIL" and res.dsn == "5.4.6", res
    assert res.reply == "mail for dest.test loops back to myself", res
    assert sink.connections == 0


@test
def server_greeting_with_our_own_name_is_a_loop():
    """Postfix's second check: the server calls itself by our hostname."""
    d, sink, config, msg = setup(dest_records(), hostname="mx.fwd.test")
    r = deliver([job("J", msg, "a@origin.test", "dest.test", ["x@dest.test"])], config)
    res = r["J", "x@dest.test"]
    assert res.status == "PERMFAIL" and res.dsn == "5.4.6", res
    assert res.reply == "mail for dest.test loops back to myself"
    assert sink.attempts == []


# ---- replies ---------------------------------------------------------------

@test
def temporary_failure_then_success_on_the_next_attempt():
    d, sink, config, msg = setup(dest_records(),
                                 replies={"x@dest.test": ["450 4.2.0 <x@dest.test>: greylisted"]})
    j = job("J", msg, "a@origin.test", "dest.test", ["x@dest.test"])
    r = deliver([j], config)
    res = r["J", "x@dest.test"]
    assert res.status == "TEMPFAIL" and res.dsn == "4.2.0" and res.remote, res
    assert res.reply == "450 4.2.0 <x@dest.test>: greylisted", res
    assert res.relay == f"mx.dest.test[127.0.0.1]:{sink.port}"
    assert sink.transactions == []
    r = deliver([j], config)
    assert r["J", "x@dest.test"].status == "OK"
    assert [t.rcpts for t in sink.transactions] == [["x@dest.test"]]


@test
def permanent_failure_per_recipient():
    d, sink, config, msg = setup(dest_records(), replies={
        "y@dest.test": "550 5.1.1 <y@dest.test>: Recipient address rejected: User unknown",
        "z@dest.test": "452 4.2.2 <z@dest.test>: Mailbox full"})
    r = deliver([job("J", msg, "a@origin.test", "dest.test",
                     ["x@dest.test", "y@dest.test", "z@dest.test"])], config)
    assert r["J", "x@dest.test"].status == "OK"
    y = r["J", "y@dest.test"]
    assert y.status == "PERMFAIL" and y.dsn == "5.1.1" and y.remote, y
    assert y.reply == "550 5.1.1 <y@dest.test>: Recipient address rejected: User unknown"
    z = r["J", "z@dest.test"]
    assert z.status == "TEMPFAIL" and z.dsn == "4.2.2", z
    assert [t.rcpts for t in sink.transactions] == [["x@dest.test"]]


@test
def every_recipient_refused_sends_no_data():
    d, sink, config, msg = setup(dest_records(), replies={"x@dest.test": "550 5.1.1 no"})
    r = deliver([job("J", msg, "a@origin.test", "dest.test", ["x@dest.test"])], config)
    assert r["J", "x@dest.test"].status == "PERMFAIL"
    assert sink.transactions == [] and len(sink.attempts) == 1


@test
def data_refused():
    for reply, status in (("554 5.7.1 Message rejected as spam", "PERMFAIL"),
                          ("451 4.3.0 Try again later", "TEMPFAIL")):
        d, sink, config, msg = setup(dest_records(), data_reply=reply)
        r = deliver([job("J", msg, "a@origin.test", "dest.test", ["x@dest.test", "y@dest.test"])],
                    config)
        for rcpt in ("x@dest.test", "y@dest.test"):
            res = r["J", rcpt]
            assert res.status == status and res.reply == reply and res.remote, res


@test
def sender_refused():
    """MAIL refused: every recipient gets that reply; the RCPTs and DATA
    that went with it in the pipelined batch change nothing."""
    for reply, status in (("550 5.7.1 <a@origin.test>: Sender address rejected", "PERMFAIL"),
                          ("451 4.3.2 Sender check unavailable", "TEMPFAIL")):
        d, sink, config, msg = setup(dest_records(), mail_reply=reply)
        r = deliver([job("J", msg, "a@origin.test", "dest.test", ["x@dest.test", "y@dest.test"])],
                    config)
        for rcpt in ("x@dest.test", "y@dest.test"):
            res = r["J", rcpt]
            assert res.status == status and res.reply == reply and res.remote, res
        assert sink.transactions == []


@test
def multiline_reply_kept_whole():
    reply = "550-5.1.1 The email account that you tried to reach does not exist.\r\n" \
            "550 5.1.1 Please check the address."
    d, sink, config, msg = setup(dest_records(), replies={"x@dest.test": reply})
    r = deliver([job("J", msg, "a@origin.test", "dest.test", ["x@dest.test"])], config)
    res = r["J", "x@dest.test"]
    assert res.status == "PERMFAIL" and res.dsn == "5.1.1", res
    assert res.reply == ("550-5.1.1 The email account that you tried to reach does not exist. "
                         "550 5.1.1 Please check the address."), res


@test
def service_closing_mid_session_defers_the_rest():
    """421 to one RCPT: the server is going away; every recipient not done
    is deferred with that reply, and the connection is not reused."""
    d, sink, config, msg = setup(dest_records(),
                                 replies={"y@dest.test": "421 4.3.2 Service shutting down"})
    r = deliver([job("J", msg, "a@origin.test", "dest.test",
                     ["x@dest.test", "y@dest.test", "z@dest.test"]),
                 "wait",
                 job("K", msg, "a@origin.test", "dest.test", ["x@dest.test"])], config)
    for rcpt in ("x@dest.test", "y@dest.test", "z@dest.test"):
        res = r["J", rcpt]
        assert res.status == "TEMPFAIL" and res.reply == "421 4.3.2 Service shutting down", res
    assert r["K", "x@dest.test"].status == "OK"
    assert sink.connections == 2 and len(sink.transactions) == 1


@test
def greeting_refusal_tries_the_next_mx():
    """A 5xx greeting skips the server as Postfix does: the next MX gets
    the mail; with no other MX the mail is deferred, not bounced."""
    bad, good = sink_pair()
    bad.greeting = "554 5.7.1 No SMTP service here"
    dns = two_mx("127.0.0.1", "127.0.0.2", ["--mx-host=lone.test,mx1.dest.test,10"])
    msg = write_bytes(mxtest.tempdir(), "msg", MESSAGE)
    config = {"dns_servers": dns.server, "outbound_port": bad.port, "outbound_tls": "off"}
    r = deliver([job("J", msg, "a@origin.test", "dest.test", ["x@dest.test"]),
                 job("L", msg, "a@origin.test", "lone.test", ["x@lone.test"])], config)
    assert r["J", "x@dest.test"].status == "OK", r.results
    assert r["J", "x@dest.test"].relay.startswith("mx2.dest.test[127.0.0.2]")
    lone = r["L", "x@lone.test"]
    assert lone.status == "TEMPFAIL" and lone.dsn == "4.7.1", lone
    assert lone.reply == "554 5.7.1 No SMTP service here" and lone.remote, lone
    assert len(good.transactions) == 1 and bad.transactions == []


@test
def temporary_refusal_at_first_mx_goes_to_the_second():
    """A 4xx for a recipient at the first MX is not final while another MX
    may take it (Postfix's rule)."""
    first, second = sink_pair()
    first.replies = {"x@dest.test": "450 4.2.0 greylisted"}
    dns = two_mx("127.0.0.1", "127.0.0.2")
    msg = write_bytes(mxtest.tempdir(), "msg", MESSAGE)
    r = deliver([job("J", msg, "a@origin.test", "dest.test", ["x@dest.test", "y@dest.test"])],
                {"dns_servers": dns.server, "outbound_port": first.port, "outbound_tls": "off"})
    assert r["J", "y@dest.test"].relay.startswith("mx1.dest.test"), r.results
    assert r["J", "x@dest.test"].status == "OK" and r["J", "x@dest.test"].relay.startswith("mx2")
    assert [t.rcpts for t in first.transactions] == [["y@dest.test"]]
    assert [t.rcpts for t in second.transactions] == [["x@dest.test"]]


@test
def helo_when_ehlo_is_refused():
    d, sink, config, msg = setup(dest_records(), ehlo_reply="502 5.5.2 Command not recognized")
    r = deliver([job("J", msg, "a@origin.test", "dest.test", ["x@dest.test"], bit8=True)], config)
    assert r["J", "x@dest.test"].status == "OK"
    tx = sink.transactions[0]
    assert tx.helo == "mx.fwd.test"
    # Without ESMTP, no parameters and no pipelining.
    assert tx.mail_params == "" and len(tx.reads) == 3, (tx.mail_params, tx.reads)


# ---- the transaction ---------------------------------------------------------

@test
def mail_parameters():
    d, sink, config, msg = setup(dest_records())
    r = deliver([job("J", msg, "SRS0=HHHH=TT=origin.test=a@fwd.test", "dest.test",
                     ["x@dest.test"], bit8=True)], config)
    assert r["J", "x@dest.test"].status == "OK"
    tx = sink.transactions[0]
    assert tx.mail_from == "SRS0=HHHH=TT=origin.test=a@fwd.test"
    assert tx.mail_params == f"SIZE={len(MESSAGE)} BODY=8BITMIME", tx.mail_params


@test
def null_sender():
    d, sink, config, msg = setup(dest_records())
    r = deliver([job("J", msg, "", "dest.test", ["x@dest.test"])], config)
    assert r["J", "x@dest.test"].status == "OK"
    assert sink.transactions[0].mail_from == ""


@test
def smtputf8():
    """A message that needs SMTPUTF8 (an address in UTF-8) cannot go to a
    server without it: those recipients bounce (5.6.7); the others go
    without the parameter.  With SMTPUTF8 offered, it is used."""
    exts = ("PIPELINING", "SIZE 52428800", "8BITMIME")
    d, sink, config, msg = setup(dest_records(), extensions=exts)
    r = deliver([job("J", msg, "a@origin.test", "dest.test", ["ü@dest.test", "x@dest.test"],
                     smtputf8=True)], config)
    u = r["J", "ü@dest.test"]
    assert u.status == "PERMFAIL" and u.dsn == "5.6.7" and not u.remote, u
    assert u.reply == f"SMTPUTF8 is required, but was not offered by host mx.dest.test[127.0.0.1]"
    assert r["J", "x@dest.test"].status == "OK"
    assert sink.transactions[0].rcpts == ["x@dest.test"]
    assert "SMTPUTF8" not in sink.transactions[0].mail_params

    d, sink, config, msg = setup(dest_records())
    r = deliver([job("J", msg, "ä@origin.test", "dest.test", ["ü@dest.test"], smtputf8=True)],
                config)
    assert r["J", "ü@dest.test"].status == "OK"
    tx = sink.transactions[0]
    assert tx.mail_from == "ä@origin.test" and tx.rcpts == ["ü@dest.test"]
    assert tx.mail_params.endswith("SMTPUTF8"), tx.mail_params


@test
def message_over_the_server_size_limit_bounces():
    d, sink, config, msg = setup(dest_records(), extensions=("PIPELINING", "SIZE 20"))
    r = deliver([job("J", msg, "a@origin.test", "dest.test", ["x@dest.test"])], config)
    res = r["J", "x@dest.test"]
    assert res.status == "PERMFAIL" and res.dsn == "5.3.4", res
    assert res.reply == (f"message size {len(MESSAGE)} exceeds size limit 20 of server "
                         "mx.dest.test[127.0.0.1]"), res
    assert sink.attempts == []


@test
def fifty_recipients_over_five_domains_make_five_transactions():
    records = []
    jobs = []
    d = mxtest.tempdir()
    sink = mxtest.Sink()
    msg = write_bytes(d, "msg", MESSAGE)
    for k in range(5):
        dom = f"d{k}.test"
        records += dest_records(dom, f"mx.{dom}")
        jobs.append(job(f"J{k}", msg, "a@origin.test", dom, [f"u{i}@{dom}" for i in range(10)]))
    dns = mxtest.Dnsmasq(records)
    r = deliver(jobs, {"dns_servers": dns.server, "outbound_port": sink.port,
                       "outbound_tls": "off"})
    assert len(r.results) == 50 and all(v.status == "OK" for v in r.results.values())
    assert len(sink.transactions) == 5
    for tx in sink.transactions:
        dom = tx.rcpts[0].split("@")[1]
        assert tx.rcpts == [f"u{i}@{dom}" for i in range(10)]
        # PIPELINING: MAIL, the ten RCPTs and DATA came in one write.
        assert len(tx.reads) == 1, tx.reads
        assert tx.data == MESSAGE


@test
def more_recipients_than_one_write_holds():
    """25000 RCPTs do not fit the output buffer: they go in several
    pipelined writes, each once the previous one is answered."""
    d, sink, config, msg = setup(dest_records())
    rcpts = [f"u{i:05d}@dest.test" for i in range(25000)]
    r = deliver([job("J", msg, "a@origin.test", "dest.test", rcpts)], config)
    assert len(r.results) == 25000 and all(v.status == "OK" for v in r.results.values())
    tx = sink.transactions[0]
    assert tx.rcpts == rcpts and 1 < len(tx.reads) < 100, len(tx.reads)


@test
def pipelining_off_sends_one_command_at_a_time():
    d, sink, config, msg = setup(dest_records(), extensions=("SIZE 52428800", "8BITMIME"))
    r = deliver([job("J", msg, "a@origin.test", "dest.test", ["x@dest.test", "y@dest.test"])],
                config)
    assert r["J", "x@dest.test"].status == "OK"
    assert len(sink.transactions[0].reads) == 4  # MAIL, RCPT, RCPT, DATA


@test
def connection_reused_for_the_next_job():
    """Two jobs one after the other: one connection, two transactions, the
    second after an RSET."""
    d, sink, config, msg = setup(dest_records())
    r = deliver([job("J", msg, "a@origin.test", "dest.test", ["x@dest.test"]),
                 "wait",
                 job("K", msg, "b@origin.test", "dest.test", ["y@dest.test"])], config)
    assert r["J", "x@dest.test"].status == "OK" and r["K", "y@dest.test"].status == "OK"
    assert sink.connections == 1 and len(sink.transactions) == 2
    assert sink.rsets == 1 and r.stats["reused"] == 1, r.stats
    # The RSET went in the same write as MAIL, RCPT and DATA.
    assert len(sink.transactions[1].reads) == 1
    # At the end the cached connection is closed with QUIT.
    mxtest.wait_until(lambda: sink.quits == 1, what="QUIT")


@test
def connection_reused_without_pipelining():
    d, sink, config, msg = setup(dest_records(), extensions=("SIZE 52428800", "8BITMIME"))
    r = deliver([job("J", msg, "a@origin.test", "dest.test", ["x@dest.test"]),
                 "wait",
                 job("K", msg, "b@origin.test", "dest.test", ["y@dest.test", "z@dest.test"])],
                config)
    assert all(v.status == "OK" for v in r.results.values()), r.results
    assert sink.connections == 1 and sink.rsets == 1
    assert [t.rcpts for t in sink.transactions] == [["x@dest.test"], ["y@dest.test", "z@dest.test"]]
    assert len(sink.transactions[1].reads) == 4


@test
def waiting_jobs_reuse_the_connection():
    """max_deliveries_per_domain = 1: the second job waits for the first,
    then takes over its connection."""
    d, sink, config, msg = setup(dest_records())
    config["max_deliveries_per_domain"] = 1
    r = deliver([job(f"J{i}", msg, "a@origin.test", "dest.test", [f"u{i}@dest.test"])
                 for i in range(4)], config)
    assert all(v.status == "OK" for v in r.results.values()), r.results
    assert sink.connections == 1 and len(sink.transactions) == 4 and sink.max_active == 1


@test
def concurrency_limits():
    """A sink that stalls at DATA holds every session open until the DATA
    timeout: the most sessions it sees at once are the limits."""
    # Per destination: 4 jobs to one domain, at most 2 at once.
    d, sink, config, msg = setup(dest_records(), stall="data")
    config.update({"max_deliveries_per_domain": 2, "max_deliveries": 3, "timeout": "1s"})
    r = deliver([job(f"J{i}", msg, "a@origin.test", "dest.test", [f"u{i}@dest.test"])
                 for i in range(4)], config)
    assert sink.max_active == 2, sink.max_active
    assert all(v.status == "TEMPFAIL" for v in r.results.values())
    # In all: 2 domains with 2 jobs each, at most 3 at once.
    d, sink, config, msg = setup(dest_records() + dest_records("other.test", "mx.other.test"),
                                 stall="data")
    config.update({"max_deliveries_per_domain": 2, "max_deliveries": 3, "timeout": "1s"})
    r = deliver([job(f"J{i}{dom}", msg, "a@origin.test", dom, [f"u{i}@{dom}"])
                 for i in range(2) for dom in ("dest.test", "other.test")], config)
    assert sink.max_active == 3, sink.max_active
    assert len(r.results) == 4


@test
def reuse_count_limit():
    """A connection carries at most 100 transactions."""
    d, sink, config, msg = setup(dest_records())
    config["max_deliveries_per_domain"] = 1
    r = deliver([job(f"J{i}", msg, "a@origin.test", "dest.test", [f"u{i}@dest.test"])
                 for i in range(101)], config)
    assert all(v.status == "OK" for v in r.results.values())
    assert len(sink.transactions) == 101 and sink.connections == 2, sink.connections
    assert r.stats["reused"] == 99


@test
def idle_connection_expires():
    """An idle connection is kept 2 s, then closed with QUIT."""
    d, sink, config, msg = setup(dest_records())
    r = deliver([job("J", msg, "a@origin.test", "dest.test", ["x@dest.test"]),
                 "sleep 2300",
                 job("K", msg, "a@origin.test", "dest.test", ["y@dest.test"])], config)
    assert r["K", "y@dest.test"].status == "OK"
    assert sink.connections == 2 and sink.quits >= 1 and r.stats["reused"] == 0


@test
def ipv6_next_hop():
    sink = mxtest.Sink(host="::1")
    msg = write_bytes(mxtest.tempdir(), "msg", MESSAGE)
    r = deliver([job("J", msg, "a@origin.test", "v6.test", ["x@v6.test"])],
                {"dns_servers": "127.0.0.1:1", "route": f"v6.test [::1]:{sink.port}",
                 "outbound_tls": "off"})
    res = r["J", "x@v6.test"]
    assert res.status == "OK" and res.relay == f"::1[::1]:{sink.port}", res
    assert sink.transactions[0].data == MESSAGE


@test
def dead_cached_connection_is_replaced():
    """The server answers the RSET of a reused connection with 421 (it
    timed out the session): a fresh connection delivers, no failure."""
    d, sink, config, msg = setup(dest_records(), rset_reply="421 4.4.2 Idle timeout")
    r = deliver([job("J", msg, "a@origin.test", "dest.test", ["x@dest.test"]),
                 "wait",
                 job("K", msg, "a@origin.test", "dest.test", ["y@dest.test"])], config)
    assert r["K", "y@dest.test"].status == "OK", r.results
    assert sink.connections == 2 and len(sink.transactions) == 2


# ---- the message ---------------------------------------------------------------

@test
def bytes_at_the_sink_are_prepend_and_file_range():
    """The sink gets the prepended headers and exactly the file range; lines
    starting with '.' are stuffed on the wire; a message without a final
    CRLF gets one."""
    d = mxtest.tempdir()
    body = (b"Subject: dots\r\n\r\n.\r\n..\r\n.leading\r\nmiddle . dot\r\n"
            b"\r\n.\r\nno final line end")
    spool = write_bytes(d, "spool", b"HEADER-RECORDS" + body + b"TRAILER")
    prepend = write_bytes(d, "prepend", b"Received: from x by y; now\r\n.Dotted: header\r\n")
    sink = mxtest.Sink()
    dns = mxtest.Dnsmasq(dest_records())
    r = deliver([job("J", spool, "a@origin.test", "dest.test", ["x@dest.test"],
                     offset=14, length=len(body), prepend=prepend)],
                {"dns_servers": dns.server, "outbound_port": sink.port, "outbound_tls": "off"})
    assert r["J", "x@dest.test"].status == "OK"
    tx = sink.transactions[0]
    expect = open(prepend, "rb").read() + body + b"\r\n"
    assert tx.data == expect, (tx.data, expect)
    assert tx.raw == expect.replace(b"\r\n.", b"\r\n.."), tx.raw
    size = len(open(prepend, "rb").read()) + len(body)
    assert tx.mail_params == f"SIZE={size}", tx.mail_params


@test
def large_message_streams_intact():
    """Several file reads and socket writes; dots at every chunk edge."""
    d = mxtest.tempdir()
    lines = []
    for i in range(40000):
        lines.append((b"." if i % 7 == 0 else b"") + b"line %06d " % i + b"x" * (i % 90))
    body = b"Subject: big\r\n\r\n" + b"\r\n".join(lines) + b"\r\n"
    spool = write_bytes(d, "spool", body)
    sink = mxtest.Sink()
    dns = mxtest.Dnsmasq(dest_records())
    r = deliver([job("J", spool, "a@origin.test", "dest.test", ["x@dest.test"])],
                {"dns_servers": dns.server, "outbound_port": sink.port, "outbound_tls": "off"})
    assert r["J", "x@dest.test"].status == "OK"
    assert sink.transactions[0].data == body


@test
def empty_message():
    d, sink, config, msg = setup(dest_records())
    empty = write_bytes(d, "empty", b"")
    r = deliver([job("J", empty, "a@origin.test", "dest.test", ["x@dest.test"])], config)
    assert r["J", "x@dest.test"].status == "OK"
    assert sink.transactions[0].raw == b""


@test
def missing_spool_file_defers():
    d, sink, config, msg = setup(dest_records())
    r = deliver([job("J", os.path.join(d, "gone"), "a@origin.test", "dest.test",
                     ["x@dest.test"])], config)
    res = r["J", "x@dest.test"]
    assert res.status == "TEMPFAIL" and res.dsn == "4.3.0", res
    assert res.reply.startswith("cannot open queue file ") and "No such file" in res.reply
    assert sink.connections == 0


@test
def short_spool_file_is_not_sent_with_a_dot():
    """A file shorter than the job says: the message is cut off, never
    ended with a dot (that would deliver it truncated)."""
    d, sink, config, msg = setup(dest_records())
    r = deliver([job("J", msg, "a@origin.test", "dest.test", ["x@dest.test"],
                     length=len(MESSAGE) + 100)], config)
    res = r["J", "x@dest.test"]
    assert res.status == "TEMPFAIL" and res.dsn == "4.3.0", res
    assert "local data error" in res.reply and "queue file too short" in res.reply, res
    assert sink.transactions == []


# ---- timeouts and shutdown -----------------------------------------------------

@test
def timeouts():
    """With timeout = 1s the RFC 5321 timeouts shrink 300-fold: a server
    that stops answering is left with the stage named in the reason.  One
    sink per stage, each reached through a route, all at once."""
    stages = {
        "greeting": "while receiving the initial server greeting",
        "ehlo": "while performing the EHLO handshake",
        "mail": "while sending MAIL FROM",
        "rcpt": "while sending RCPT TO",
        "data": "while sending DATA command",
        "dot": "while sending end of data -- message may be sent more than once",
    }
    msg = write_bytes(mxtest.tempdir(), "msg", MESSAGE)
    dns = mxtest.Dnsmasq(["--host-record=mx.dest.test,127.0.0.1"])
    routes = [f"{stage}.test mx.dest.test:{mxtest.Sink(stall=stage).port}" for stage in stages]
    start = time.monotonic()
    r = deliver([job(stage, msg, "a@origin.test", f"{stage}.test", [f"x@{stage}.test"])
                 for stage in stages],
                {"dns_servers": dns.server, "route": routes, "outbound_tls": "off",
                 "timeout": "1s"})
    took = time.monotonic() - start
    for stage, words in stages.items():
        res = r[stage, f"x@{stage}.test"]
        assert res.status == "TEMPFAIL" and res.dsn == "4.4.2", (stage, res)
        assert res.reply == f"conversation with mx.dest.test[127.0.0.1] timed out {words}", res
    # The longest is the final dot's: 600 s / 300.
    assert took < 6, took


@test
def data_block_timeout():
    """A server that stops reading the message: the writes back up and the
    data block timeout (180 s / 300 with timeout = 1s) ends it."""
    d = mxtest.tempdir()
    body = b"Subject: big\r\n\r\n" + (b"y" * 998 + b"\r\n") * 48000
    spool = write_bytes(d, "spool", body)
    sink = mxtest.Sink(stall="body")
    dns = mxtest.Dnsmasq(dest_records())
    r = deliver([job("J", spool, "a@origin.test", "dest.test", ["x@dest.test"])],
                {"dns_servers": dns.server, "outbound_port": sink.port, "outbound_tls": "off",
                 "timeout": "1s"})
    res = r["J", "x@dest.test"]
    assert res.status == "TEMPFAIL", res
    assert res.reply == ("conversation with mx.dest.test[127.0.0.1] timed out while sending "
                         "message body"), res


@test
def shutdown_defers_running_and_waiting_jobs():
    d, sink, config, msg = setup(dest_records(), stall="dot")
    config["max_deliveries_per_domain"] = 1
    r = deliver([job("J", msg, "a@origin.test", "dest.test", ["x@dest.test"]),
                 job("K", msg, "a@origin.test", "dest.test", ["y@dest.test"])], config,
                args=("-S", "500"))
    for key in (("J", "x@dest.test"), ("K", "y@dest.test")):
        res = r[key]
        assert res.status == "TEMPFAIL" and res.dsn == "4.3.2", res
        assert res.reply == "delivery interrupted: mxfwd is shutting down", res


if __name__ == "__main__":
    mxtest.main()
