"""What `mxfwd serve` checks of the client and the sender before any
filter (docs/smtp.md): DNS block and allow lists against dnsmasq zones
(hits, misses, patterns, TXT reasons, IPv6, SERVFAIL), the sender's
domain (NXDOMAIN, null MX, SERVFAIL, no dot, <>), and the rate limits per
client address, with their counters."""

import json
import socket

import mxtest
from mxtest import test

FORWARDS = "alice@alias.test  alice@dest.test\nbob@alias.test  bob@dest.test\n"


def server(records=(), config=None, listen=None):
    dns = mxtest.Dnsmasq(list(records))
    settings = {"dns_servers": dns.server, **mxtest.NO_DELIVERY}
    settings.update(config or {})
    m = mxtest.Mxfwd(forwards=FORWARDS, config=settings, start=listen is None)
    if listen is not None:
        m.settings["listen"] = [a.format(port4=m.port) for a in listen]
        m.write_config()
        m.start()
    return m, dns


def listed(ip, zone, answer="127.0.0.2", reason=None):
    """dnsmasq options listing the IPv4 address ip in zone."""
    name = ".".join(reversed(ip.split("."))) + "." + zone
    records = [f"--host-record={name},{answer}"]
    if reason:
        records.append(mxtest.txt_record(name, reason.replace(",", ";")))
    return records


def stats(m):
    return json.loads(m.run("stats", "--json").stdout)["stats"]


@test
def a_listed_client_is_refused_at_its_first_command():
    m, _ = server(listed("127.0.0.1", "bl.test", reason="Listed for testing; see bl.test/why"),
                  {"dnsbl": "bl.test"})
    c = m.client()
    r = c.cmd("EHLO client.test")
    assert (r.code, r.text) == (554, "5.7.1 Service unavailable; client [127.0.0.1] blocked using "
                                     "bl.test; Listed for testing; see bl.test/why"), r
    r = c.cmd("MAIL FROM:<sender@origin.test>")
    assert r.code == 554, r
    c.cmd("QUIT", expect=221)
    m.wait_log(r"NOQUEUE: reject: EHLO from unknown\[127\.0\.0\.1\]: 554 5\.7\.1 Service "
               r"unavailable; client \[127\.0\.0\.1\] blocked using bl\.test; Listed for testing")
    assert stats(m)["rejected"]["dnsbl"] == 1
    # Without a TXT record: no reason.
    m, _ = server(listed("127.0.0.1", "bl.test"), {"dnsbl": "bl.test"})
    r = m.client().cmd("HELO client.test")
    assert r.text == "5.7.1 Service unavailable; client [127.0.0.1] blocked using bl.test", r


@test
def patterns_misses_and_allow_lists():
    sink_free = {"dnsbl": ["bl.test=127.0.0.[3..5]", "other.test"]}
    # Listed with 127.0.0.2, the pattern wants 3 to 5; other.test lists
    # nobody: a miss.
    m, _ = server(listed("127.0.0.1", "bl.test"), sink_free)
    m.client().cmd("EHLO client.test", expect=250)
    # 127.0.0.4 matches.
    m, _ = server(listed("127.0.0.1", "bl.test", "127.0.0.4"), sink_free)
    assert m.client().cmd("EHLO client.test").code == 554
    # An allow list's listing wins over the block lists.
    m, _ = server(listed("127.0.0.1", "bl.test") + listed("127.0.0.1", "wl.test"),
                  {"dnsbl": "bl.test", "dnswl": "wl.test"})
    m.client().cmd("EHLO client.test", expect=250)
    m.wait_log(r"unknown\[127\.0\.0\.1\]: listed by the allow list wl\.test \(127\.0\.0\.2\): "
               r"block lists not applied")


@test
def a_list_that_fails_blocks_nobody():
    m, _ = server([mxtest.servfail_zone("bl.test")], {"dnsbl": "bl.test"})
    c = m.client()
    c.cmd("EHLO client.test", expect=250)
    m.wait_log(r"warning: unknown\[127\.0\.0\.1\]: DNS list bl\.test could not be asked: Host not "
               r"found, try again \(server failure\) \(not blocking\)")


@test
def ipv6_clients_are_looked_up_by_nibbles():
    if not mxtest.loopback6():
        return
    name = ".".join("1" + "0" * 31) + ".bl6.test"  # ::1, its nibbles reversed
    port = mxtest.free_port()
    # IPv4 too, where the harness sees that it started.
    m, _ = server([f"--host-record={name},127.0.0.2", mxtest.txt_record(name, "v6 listed")],
                  {"dnsbl": "bl6.test"}, listen=["127.0.0.1:{port4}", f"[::1]:{port}"])
    c = mxtest.SmtpClient(port, host="::1", family=socket.AF_INET6)
    c.greeting()
    r = c.cmd("EHLO client.test")
    assert (r.code, r.text) == (554, "5.7.1 Service unavailable; client [::1] blocked using "
                                     "bl6.test; v6 listed"), r


def mail(m, sender):
    c = m.client()
    c.cmd("EHLO client.test", expect=250)
    return c, c.cmd(f"MAIL FROM:<{sender}>")


@test
def the_senders_domain_must_exist():
    m, _ = server(["--mx-host=nullmx.test,.,0", mxtest.servfail_zone("broken.test"),
                   "--mx-host=mx.test,mail.mx.test,10"])
    cases = [
        ("a@nowhere.test", (550, "5.1.8 <a@nowhere.test>: Sender address rejected: Domain not "
                                 "found")),
        ("a@nullmx.test", (550, "5.1.8 <a@nullmx.test>: Sender address rejected: Domain does "
                                "not accept mail (null MX)")),
        ("a@broken.test", (450, "4.1.8 <a@broken.test>: Sender address rejected: Domain not "
                                "found (DNS lookup failed; try again later)")),
        ("root@vm", (504, "5.5.2 <root@vm>: Sender address rejected: need fully-qualified "
                          "address")),
        ("a@mx.test", (250, "2.1.0 Ok")),
        ("a@origin.test", (250, "2.1.0 Ok")),  # a name that exists, with no MX
        ("", (250, "2.1.0 Ok")),                # a bounce: exempt
    ]
    for sender, want in cases:
        c, r = mail(m, sender)
        assert (r.code, r.text) == want, (sender, r)
        # A refused MAIL leaves no transaction behind.
        r = c.cmd("RCPT TO:<alice@alias.test>")
        assert r.code == (250 if want[0] == 250 else 503), (sender, r)
    m.wait_log(r"NOQUEUE: reject: MAIL from unknown\[127\.0\.0\.1\]: 550 5\.1\.8 <a@nowhere\.test>: "
               r"Sender address rejected: Domain not found; from=<a@nowhere\.test> "
               r"proto=ESMTP helo=<client\.test> session=\w+$")
    rejected = stats(m)["rejected"]
    assert (rejected["sender_unknown_domain"], rejected["sender_null_mx"],
            rejected["sender_domain_temp"], rejected["sender_not_fqdn"]) == (1, 1, 1, 1), rejected

    # Both checks off: what the user asked for.
    m, _ = server(config={"reject_unknown_sender_domain": "no", "reject_non_fqdn_sender": "no"})
    for sender in ("a@nowhere.test", "root@vm"):
        _, r = mail(m, sender)
        assert r.code == 250, (sender, r)


@test
def rate_limits_per_client():
    # The harness's probes of the port come from 127.0.0.1 (several, on a
    # busy machine): exempt, so that the counters are the test's own.
    m, _ = server(config={"client_connection_rate_limit": "2", "client_message_rate_limit": "2",
                          "client_recipient_rate_limit": "3",
                          "rate_limit_exempt": "127.0.0.1/32"})
    c = m.client(source="127.0.0.2")
    c.cmd("EHLO client.test", expect=250)
    c.cmd("MAIL FROM:<sender@origin.test>", expect=250)
    c.cmd("RCPT TO:<alice@alias.test>", expect=250)
    c.cmd("RCPT TO:<bob@alias.test>", expect=250)
    c.cmd("RCPT TO:<nobody@alias.test>", expect=550)  # refused, but counted
    r = c.cmd("RCPT TO:<alice@alias.test>")
    assert (r.code, r.text) == (450, "4.7.1 <alice@alias.test>: Error: too many recipients from "
                                     "127.0.0.2"), r
    c.cmd("RSET", expect=250)
    c.cmd("MAIL FROM:<sender@origin.test>", expect=250)
    c.cmd("RSET", expect=250)
    r = c.cmd("MAIL FROM:<sender@origin.test>")
    assert (r.code, r.text) == (450, "4.7.1 Error: too many messages from 127.0.0.2"), r
    m.client(source="127.0.0.2").cmd("QUIT", expect=221)  # the second connection
    c2 = m.client(greet=False, source="127.0.0.2")
    r = c2.reply()
    assert (r.code, r.text) == (421, "4.7.0 mx.fwd.test Error: too many connections from "
                                     "127.0.0.2"), r
    assert c2.closed()
    m.wait_log(r"refused connection from unknown\[127\.0\.0\.2\]: Error: too many connections "
               r"from 127\.0\.0\.2")
    rejected = stats(m)["rejected"]
    assert (rejected["rate_connections"], rejected["rate_messages"],
            rejected["rate_recipients"]) == (1, 1, 1), rejected

    # An exempt client has no limits.
    m, _ = server(config={"client_connection_rate_limit": "1", "client_message_rate_limit": "1",
                          "rate_limit_exempt": "10.0.0.0/8 127.0.0.0/8"})
    for _ in range(3):
        c = m.client(source="127.0.0.2")
        c.cmd("EHLO client.test", expect=250)
        c.cmd("MAIL FROM:<sender@origin.test>", expect=250)
        c.cmd("RSET", expect=250)
        c.cmd("MAIL FROM:<sender@origin.test>", expect=250)


mxtest.main()
