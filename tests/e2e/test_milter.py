"""Milters in `mxfwd serve`, end to end (docs/milter.md): a scripted
filter (scripted_milter.py) for every step, reply, change and failure a
real filter does not produce on demand, the real binary on loopback, what
reaches the sink byte for byte.  Real filters (rspamd, OpenDKIM) are in
test_milter_real.py."""

import json
import re
import time

import mxtest
import scripted_milter as sm
from mxtest import test

FORWARDS = """\
alice@alias.test  alice@dest.test
bob@alias.test    bob@dest.test
team@alias.test   carol@dest.test, dave@dest.test
"""
MESSAGE = (b"From: Sender <sender@origin.test>\r\nTo: alice@alias.test\r\nSubject: hello\r\n"
           b"Message-ID: <1@origin.test>\r\n\r\nHello there.\r\n")


def server(milter, config=None, sink=None, milters=None, args=()):
    """mxfwd filtering with milter (or the list milters), delivering to
    sink; (mxfwd, sink)."""
    sink = sink or mxtest.Sink()
    settings = {"milter": milters or milter.spec, "route": f"* 127.0.0.1:{sink.port}",
                "outbound_tls": "off", "milter_timeout": "2s"}
    settings.update(config or {})
    return mxtest.Mxfwd(forwards=FORWARDS, config=settings, args=args), sink


def session(milter):
    """The filter's session of the last SMTP session (the harness's own
    probe of the port came first)."""
    mxtest.wait_until(lambda: milter.sessions and milter.sessions[-1].commands,
                      what="the milter to hear from mxfwd")
    return milter.sessions[-1]


def queued_id(reply):
    m = re.match(r"2\.0\.0 Ok: queued as ([0-9A-F]{13})$", reply.text)
    assert reply.code == 250 and m, reply
    return m.group(1)


def send(m, rcpts=("alice@alias.test",), data=MESSAGE, sender="sender@origin.test"):
    c = m.client()
    return c, c.transaction(sender, list(rcpts), data)


@test
def every_step_with_postfix_macros():
    milter = sm.ScriptedMilter()
    m, sink = server(milter)
    c, r = send(m)
    qid = queued_id(r)
    s = session(milter)
    assert s.version == 6 and s.offered == (0x1FF, 0x1FF7FF), (s.version, s.offered)
    assert s.cmds() == "CHMRTLLLLNBE", s.cmds()
    macros = {cmd: mac for cmd, _, mac in s.commands}
    assert macros["C"]["j"] == "mx.fwd.test" and macros["C"]["{client_addr}"] == "127.0.0.1"
    assert macros["C"]["{client_name}"] == "unknown", macros["C"]
    assert macros["C"]["_"] == "unknown [127.0.0.1]", macros["C"]
    assert macros["M"] == {"{mail_addr}": "sender@origin.test", "{auth_authen}": ""}, macros["M"]
    assert macros["R"] == {"{rcpt_addr}": "alice@alias.test"}, macros["R"]
    # The queue id from DATA on, as the 250 names it.
    assert macros["T"] == macros["N"] == macros["E"] == {"i": qid}, macros
    data = {cmd: d for cmd, d, _ in s.commands}
    assert data["C"] == b"unknown\x004" + data["C"][9:11] + b"127.0.0.1\x00", data["C"]
    assert data["H"] == b"client.test\x00" and data["M"] == b"<sender@origin.test>\x00"
    assert data["R"] == b"<alice@alias.test>\x00", data["R"]
    # The message as received: its fields (value without the space after
    # the colon), its body.
    assert s.headers() == [("From", "Sender <sender@origin.test>"), ("To", "alice@alias.test"),
                           ("Subject", "hello"), ("Message-ID", "<1@origin.test>")], s.headers()
    assert s.body() == b"Hello there.\r\n", s.body()
    tx = sink.wait(1)[0]
    assert tx.data.endswith(MESSAGE), tx.data
    # The session's end: QUIT to the filter.
    c.cmd("QUIT", expect=221)
    mxtest.wait_until(lambda: s.closed_by_mta, what="QUIT to the milter")
    assert s.cmds().endswith("Q"), s.cmds()


@test
def replies_at_each_step():
    # reject at RCPT: that recipient only, the Postfix words.
    milter = sm.ScriptedMilter({"R": lambda s, d: "r" if b"bob" in d else "c"})
    m, sink = server(milter)
    c = m.client()
    c.cmd("EHLO client.test", expect=250)
    c.cmd("MAIL FROM:<sender@origin.test>", expect=250)
    r = c.cmd("RCPT TO:<bob@alias.test>")
    assert (r.code, r.text) == (550, "5.7.1 Command rejected"), r
    c.cmd("RCPT TO:<alice@alias.test>", expect=250)
    c.cmd("DATA", expect=354)
    c.send(MESSAGE + b".\r\n")
    queued_id(c.reply())
    assert [t.rcpts for t in sink.wait(1)] == [["alice@dest.test"]]
    m.wait_log(r"NOQUEUE: milter-reject: RCPT from unknown\[127\.0\.0\.1\]: 550 5\.7\.1 Command "
               r"rejected; from=<sender@origin\.test> to=<bob@alias\.test> proto=ESMTP "
               r"helo=<client\.test> session=\w+ milter=inet:127\.0\.0\.1:\d+$")

    # tempfail at MAIL, a reply code of its own at DATA, one at the end.
    for script, at, want in [({"M": "t"}, "MAIL", (451, "4.7.1 Service unavailable - try again later")),
                             ({"T": ("y", "553 5.7.0 Not today")}, "DATA", (553, "5.7.0 Not today")),
                             ({"E": ("y", "554 5.7.1 Spam message rejected")}, "end",
                              (554, "5.7.1 Spam message rejected"))]:
        milter = sm.ScriptedMilter(script)
        m, sink = server(milter)
        c = m.client()
        c.cmd("EHLO client.test", expect=250)
        r = c.cmd("MAIL FROM:<sender@origin.test>")
        if at != "MAIL":
            assert r.code == 250, r
            c.cmd("RCPT TO:<alice@alias.test>", expect=250)
            r = c.cmd("DATA")
        if at == "end":
            assert r.code == 354, r
            c.send(MESSAGE + b".\r\n")
            r = c.reply()
        assert (r.code, r.text) == want, (script, r)
        # The session goes on: the refusal was the filter's word, not its end.
        c.cmd("RSET", expect=250)
        c.cmd("NOOP", expect=250)
        time.sleep(0.2)
        assert sink.transactions == [], script

    # A multi-line reply code is sent as several lines.
    milter = sm.ScriptedMilter({"E": ("y", "550-5.7.1 first line\r\n550 5.7.1 second line")})
    m, _ = server(milter)
    c, r = send_expecting(m)
    assert r.code == 550 and r.lines == ["5.7.1 first line", "5.7.1 second line"], r


def send_expecting(m):
    c = m.client()
    c.cmd("EHLO client.test", expect=250)
    c.cmd("MAIL FROM:<sender@origin.test>", expect=250)
    c.cmd("RCPT TO:<alice@alias.test>", expect=250)
    c.cmd("DATA", expect=354)
    c.send(MESSAGE + b".\r\n")
    return c, c.reply()


@test
def accept_discard_and_connection_failure():
    # accept at MAIL: the filter hears nothing more of the message but
    # the ABORT that ends it for the filter (as Postfix sends it).
    milter = sm.ScriptedMilter({"M": "a"})
    m, sink = server(milter)
    _, r = send(m)
    queued_id(r)
    sink.wait(1)
    mxtest.wait_until(lambda: session(milter).cmds().endswith("A"), what="ABORT")
    assert session(milter).cmds() == "CHMA", session(milter).cmds()

    # discard at the end: the client hears 250, nothing is queued or sent.
    milter = sm.ScriptedMilter({"E": "d"})
    m, sink = server(milter)
    _, r = send(m)
    qid = queued_id(r)
    m.wait_log(rf"{qid}: discard: END-OF-MESSAGE from unknown\[127\.0\.0\.1\]: a filter discarded")
    time.sleep(0.3)
    assert sink.transactions == [] and mxtest.spool_files(m.settings["spool_dir"]) == []

    # A connection failure at HELO: 421 and the session ends.
    milter = sm.ScriptedMilter({"H": "f"})
    m, _ = server(milter)
    c = m.client()
    r = c.cmd("EHLO client.test")
    assert r.code == 421 and r.text.startswith("4.7.0 mx.fwd.test "), r
    assert c.closed()

    # reject at CONNECT: every command after the greeting hears it, QUIT
    # does not.
    milter = sm.ScriptedMilter({"C": ("y", "554 5.7.1 Go away")})
    m, _ = server(milter)
    c = m.client()
    assert (c.cmd("EHLO client.test").code, c.cmd("MAIL FROM:<a@origin.test>").text) == \
        (554, "5.7.1 Go away")
    c.cmd("QUIT", expect=221)
    m.wait_log(r"NOQUEUE: reject: EHLO from unknown\[127\.0\.0\.1\]: 554 5\.7\.1 Go away; from=<> "
               r"proto=SMTP helo=<> session=\w+$")


@test
def header_changes_are_applied_before_signing():
    key = mxtest.DkimKey("rsa")
    dns = mxtest.Dnsmasq([key.publish("fwd", "fwd.test")])
    changes = [("h", "X-Added", "at the end"), ("i", 0, "X-Top", "above all"),
               ("m", 1, "Subject", "[tagged] hello"), ("m", 1, "Message-ID", ""),
               ("h", "X-Folded", "one\n two"), "c"]
    milter = sm.ScriptedMilter({"E": changes})
    m, sink = server(milter, {"dns_servers": dns.server, "signing_key": key.pem,
                              "signing_selector": "fwd", "arc_seal": "no"})
    _, r = send(m)
    qid = queued_id(r)
    data = sink.wait(1)[0].data
    head, body = data.split(b"\r\n\r\n", 1)
    lines = head.split(b"\r\n")
    # mxfwd's signature on top, then what a filter inserted before every
    # field, then this hop's trace fields, then the edited section.
    assert lines[0].startswith(b"DKIM-Signature: ") and b"d=fwd.test" in head, head
    top = head.index(b"X-Top: above all\r\nAuthentication-Results: mx.fwd.test;")
    assert head.index(b"DKIM-Signature:") < top < head.index(b"Received: ")
    assert head.endswith(b"From: Sender <sender@origin.test>\r\nTo: alice@alias.test\r\n"
                         b"Subject: [tagged] hello\r\nX-Added: at the end\r\n"
                         b"X-Folded: one\r\n two"), head
    assert b"Message-ID" not in head and body == b"Hello there.\r\n"
    # What was signed is what left.
    ok, out = mxtest.dkim_verify(data, dns)
    assert ok, out
    # The message's own header section stays in the spool, skipped (K).
    assert f"{qid}: from=<sender@origin.test>" in m.log()


@test
def envelope_changes():
    changes = [("e", "<new@origin.test>"), ("+", "<bob@alias.test>"), ("+", "<x@else.test>"),
               ("-", "<team@alias.test>"), "a"]
    milter = sm.ScriptedMilter({"E": changes})
    m, sink = server(milter)
    _, r = send(m, rcpts=("alice@alias.test", "team@alias.test"))
    qid = queued_id(r)
    m.wait_log(rf"{qid}: to=<x@else\.test>.*status=sent")
    txs = sink.wait(1)
    rcpts = sorted(r for t in txs for r in t.rcpts)
    # An added alias is expanded by the forward table; another address is
    # taken as it is; the removed recipient's destinations are gone.
    assert rcpts == ["alice@dest.test", "bob@dest.test", "x@else.test"], rcpts
    assert all(t.mail_from == mxtest.srs0("new", "origin.test") for t in txs), txs
    m.wait_log(rf"{qid}: milter inet:127\.0\.0\.1:\d+: sender changed from <sender@origin\.test> "
               r"to <new@origin\.test>")
    m.wait_log(rf"{qid}: milter inet:127\.0\.0\.1:\d+: recipient <team@alias\.test> removed")

    # Every recipient removed: nothing is left to deliver.
    milter = sm.ScriptedMilter({"E": [("-", "<alice@alias.test>"), "c"]})
    m, sink = server(milter)
    _, r = send(m)
    qid = queued_id(r)
    m.wait_log(rf"{qid}: discarded: the filters removed every recipient")
    assert sink.transactions == []


@test
def body_replacement_is_refused_unless_allowed():
    replacement = [("b", b"Replaced\nbody\r\n"), "c"]
    milter = sm.ScriptedMilter({"E": replacement})
    m, sink = server(milter)
    _, r = send(m)
    qid = queued_id(r)
    assert sink.wait(1)[0].data.endswith(MESSAGE)
    m.wait_log(rf"{qid}: milter inet:127\.0\.0\.1:\d+: body replacement refused "
               r"\(milter_body_changes = no\); the body goes as it came")

    milter = sm.ScriptedMilter({"E": replacement})
    m, sink = server(milter, {"milter_body_changes": "yes"})
    _, r = send(m)
    queued_id(r)
    data = sink.wait(1)[0].data
    # The header section as it came, the new body as CRLF lines.
    assert data.endswith(MESSAGE.split(b"\r\n\r\n")[0] + b"\r\n\r\nReplaced\r\nbody\r\n"), data
    m.wait_log(r"milter inet:127\.0\.0\.1:\d+: body replaced; now [0-9A-F]{13}")


@test
def quarantine_holds_the_message_until_released():
    milter = sm.ScriptedMilter({"E": [("q", "looks like spam"), "c"]})
    m, sink = server(milter)
    _, r = send(m)
    qid = queued_id(r)
    m.wait_log(rf"{qid}: hold: milter inet:127\.0\.0\.1:\d+: looks like spam; "
               r"from=<sender@origin\.test>")
    q = json.loads(m.run("queue", "--json").stdout)
    assert [(x["id"], [r["state"] for r in x["recipients"]]) for x in q["messages"]] == \
        [(qid, ["held"])], q
    assert [r["next_attempt"] for r in q["messages"][0]["recipients"]] == [None]
    out = m.run("queue").stdout
    assert re.search(r"alice@dest\.test\s+held\s+-", out), out
    time.sleep(0.5)
    assert sink.transactions == [], "a held message is never tried"
    # A flush does not release it.
    m.run("flush")
    time.sleep(0.3)
    assert sink.transactions == []
    r = m.run("release", qid)
    assert r.returncode == 0 and r.stdout == "1 recipient released\n", r.stdout
    sink.wait(1)
    m.wait_log(rf"{qid}: released by the administrator \(1 recipient\)")
    assert m.run("release", "NOSUCHID").returncode == 1


@test
def hold_survives_a_restart():
    milter = sm.ScriptedMilter({"E": [("q", "check me"), "c"]})
    sink = mxtest.Sink()
    m, _ = server(milter, sink=sink)
    _, r = send(m)
    qid = queued_id(r)
    assert m.stop() == 0
    m.start()
    q = json.loads(m.run("queue", "--json").stdout)
    assert [r["state"] for r in q["messages"][0]["recipients"]] == ["held"], q
    # Held by hand, released again: the state records are kept.
    assert m.run("release", qid).returncode == 0
    sink.wait(1)


@test
def skipped_and_unanswered_steps():
    # A filter that wants only the body, and answers nothing but its end.
    proto = (sm.NOCONNECT | sm.NOHELO | sm.NOMAIL | sm.NORCPT | sm.NOHDRS | sm.NOEOH | sm.NODATA
             | sm.NR_BODY)
    milter = sm.ScriptedMilter({"E": [("h", "X-Seen", "body only"), "c"]}, protocol=proto)
    m, sink = server(milter)
    _, r = send(m, data=MESSAGE + b"x" * 70000 + b"\r\n")
    queued_id(r)
    s = session(milter)
    assert s.cmds() == "BBE", s.cmds()
    assert len(s.body()) == len(b"Hello there.\r\n") + 70002
    assert b"\r\nX-Seen: body only\r\n" in sink.wait(1)[0].data

    # Every step unanswered but the end, as rspamd asks: nothing waits
    # for a word that does not come (milter_timeout is 2 s).
    proto = sm.NR_CONN | sm.NR_HELO | sm.NR_MAIL | sm.NR_RCPT | sm.NR_DATA | sm.NR_HDR | \
        sm.NR_EOH | sm.NR_BODY
    milter = sm.ScriptedMilter(protocol=proto)
    m, sink = server(milter)
    start = time.monotonic()
    _, r = send(m)
    queued_id(r)
    assert time.monotonic() - start < 1
    assert session(milter).cmds() == "CHMRTLLLLNBE", session(milter).cmds()


@test
def a_lagging_milter_holds_the_client_back():
    # The filter stops reading at the first body chunk for a while: more
    # than 1 MiB waits for it, the client is held back, then all of it
    # goes through, within milter_timeout.
    milter = sm.ScriptedMilter({"B": ("sleep", 2)}, protocol=sm.NR_BODY)
    m, sink = server(milter, {"milter_timeout": "5s"}, args=("-v",))
    body = b"".join(b"%07d " % i + b"x" * 70 + b"\r\n" for i in range(80000))
    _, r = send(m, data=MESSAGE + body)
    queued_id(r)
    m.wait_log(r"milter inet:127\.0\.0\.1:\d+ lags \(\d+ bytes queued\): the client waits")
    s = session(milter)
    assert s.body() == b"Hello there.\r\n" + body, len(s.body())
    assert sink.wait(1)[0].data.endswith(body)


@test
def a_slow_milter_times_out():
    milter = sm.ScriptedMilter({"E": [("sleep", 4), "c"]})
    m, sink = server(milter, {"milter_timeout": "1s"})
    start = time.monotonic()
    c, r = send_expecting(m)
    assert (r.code, r.text) == (451, "4.7.1 Service unavailable - try again later"), r
    assert 0.9 < time.monotonic() - start < 3
    m.wait_log(r"milter inet:127\.0\.0\.1:\d+: timed out; milter_default_action applies")
    # The session survives; the filter is gone for it: its default stands.
    c.cmd("RSET", expect=250)
    c.cmd("EHLO client.test", expect=451)
    # A progress reply buys time.
    milter = sm.ScriptedMilter({"E": [("sleep", 0.7), "p", ("sleep", 0.7), "p", "c"]})
    m, sink = server(milter, {"milter_timeout": "1s"})
    _, r = send_expecting(m)
    queued_id(r)


@test
def a_milter_that_closes_mid_message():
    milter = sm.ScriptedMilter({"B": "close"})
    m, sink = server(milter)
    c, r = send_expecting(m)
    assert (r.code, r.text) == (451, "4.7.1 Service unavailable - try again later"), r
    m.wait_log(r"milter inet:127\.0\.0\.1:\d+: connection closed by the filter")
    c.cmd("NOOP", expect=250)
    time.sleep(0.2)
    assert sink.transactions == [] and mxtest.spool_files(m.settings["spool_dir"]) == []
    # Nothing lost: a new session reaches the filter again.
    milter.script = {}
    _, r = send(m)
    queued_id(r)
    sink.wait(1)


@test
def malformed_packets_apply_the_default_action():
    cases = [
        ("an unknown reply", {"R": ("raw", sm.packet("Z"))}),
        ("an empty packet", {"R": ("raw", b"\0\0\0\0")}),
        ("a packet over the limit", {"R": ("raw", b"\x7f\xff\xff\xff")}),
        ("a header change before the end", {"R": [("h", "X-Early", "no"), "c"]}),
        ("a header change cut short", {"E": [("raw", sm.packet("h", b"X-Cut\0value")), "c"]}),
        ("a reply code that is none", {"R": ("y", "250 fine")}),
        ("data after continue", {"R": ("raw", sm.packet("c", b"junk"))}),
    ]
    for name, script in cases:
        for action, want in [("tempfail", 451), ("reject", 550)]:
            milter = sm.ScriptedMilter(script)
            m, sink = server(milter, {"milter_default_action": action})
            c = m.client()
            c.cmd("EHLO client.test", expect=250)
            c.cmd("MAIL FROM:<sender@origin.test>", expect=250)
            r = c.cmd("RCPT TO:<alice@alias.test>")
            if "E" in script:
                assert r.code == 250, (name, r)
                c.cmd("DATA", expect=354)
                c.send(MESSAGE + b".\r\n")
                r = c.reply()
            assert r.code == want, (name, action, r)
            # The session survives.
            c.cmd("NOOP", expect=250)
            assert m.proc.running()

    # accept: a broken filter is left out, the mail flows.
    milter = sm.ScriptedMilter({"R": ("raw", sm.packet("Z"))})
    m, sink = server(milter, {"milter_default_action": "accept"})
    _, r = send(m)
    queued_id(r)


@test
def an_unreachable_milter():
    dead = mxtest.free_port()
    for action, want in [("tempfail", (451, "4.7.1 Service unavailable - try again later")),
                         ("reject", (550, "5.7.1 Command rejected"))]:
        m = mxtest.Mxfwd(forwards=FORWARDS, config={"milter": f"inet:127.0.0.1:{dead}",
                                                    "milter_default_action": action})
        c = m.client()
        r = c.cmd("EHLO client.test")
        assert (r.code, r.text) == want, r
        c.cmd("QUIT", expect=221)
        m.wait_log(r"milter inet:127\.0\.0\.1:\d+: cannot connect; milter_default_action applies")
    sink = mxtest.Sink()
    m = mxtest.Mxfwd(forwards=FORWARDS, config={
        "milter": f"inet:127.0.0.1:{dead}", "milter_default_action": "accept",
        "route": f"* 127.0.0.1:{sink.port}", "outbound_tls": "off"})
    _, r = send(m)
    queued_id(r)


@test
def several_milters_in_order_and_a_unix_socket():
    first = sm.ScriptedMilter({"E": [("h", "X-First", "1"), "c"]}, unix=True)
    second = sm.ScriptedMilter({"E": [("h", "X-Second", "2"), ("y", "550 5.7.1 second says no")]})
    m, sink = server(None, milters=[first.spec, second.spec])
    _, r = send_expecting(m)
    assert (r.code, r.text) == (550, "5.7.1 second says no"), r
    # In order: the first's word comes first.
    third = sm.ScriptedMilter({"R": ("y", "450 4.2.0 first says later")})
    fourth = sm.ScriptedMilter({"R": "r"})
    m, sink = server(None, milters=[third.spec, fourth.spec])
    c = m.client()
    c.cmd("EHLO client.test", expect=250)
    c.cmd("MAIL FROM:<sender@origin.test>", expect=250)
    r = c.cmd("RCPT TO:<alice@alias.test>")
    assert (r.code, r.text) == (450, "4.2.0 first says later"), r
    # Both changes apply, in order.
    fifth = sm.ScriptedMilter({"E": [("h", "X-First", "1"), "c"]}, unix=True)
    sixth = sm.ScriptedMilter({"E": [("h", "X-Second", "2"), "c"]})
    m, sink = server(None, milters=[fifth.spec, sixth.spec])
    _, r = send(m)
    queued_id(r)
    assert b"X-First: 1\r\nX-Second: 2\r\n\r\nHello" in sink.wait(1)[0].data


mxtest.main()
