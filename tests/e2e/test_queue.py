"""End-to-end tests of forwarding: the real mxfwd accepts a message, queues
it and delivers it to the test sink (through `route`), retries, bounces
with a DSN to the original sender, survives a restart, and answers the
queue, flush, delete and stats commands over its control socket.

DNS is a dnsmasq on loopback that knows no name (so SPF finds no record)
and every next hop is the sink on 127.0.0.1, except in the one test that
takes the whole path: MX records, a dead first MX, a DKIM signature checked
at the sink."""

import email
import email.policy
import json
import os
import re
import signal
import socket
import stat
import time

import mxtest
from mxtest import test

FORWARDS = """\
alice@alias.test      user@dest.test
team@alias.test       user@dest.test, other@dest.test
bad@alias.test        nobody@dest.test
"""

BODY = (b"From: Sender <sender@origin.test>\r\nTo: alice@alias.test\r\nSubject: forwarded\r\n"
        b"Message-ID: <e2e-1@origin.test>\r\n\r\nHello,\r\n..a line with a leading dot\r\n"
        b"and the end.\r\n")


def forwarder(sink_port, config=None, start=True):
    """mxfwd routing dest.test and origin.test (DSNs) to the sink's port."""
    dns = mxtest.Dnsmasq([])
    settings = {
        "dns_servers": dns.server,
        "route": [f"dest.test 127.0.0.1:{sink_port}", f"origin.test 127.0.0.1:{sink_port}"],
        "outbound_tls": "off",
        "retry_schedule": "1s",
    }
    settings.update(config or {})
    return mxtest.Mxfwd(forwards=FORWARDS, config=settings, start=start)


def send(m, sender, rcpts, body=BODY):
    """One message through SMTP; the queue id from the 250."""
    c = m.client()
    r = c.transaction(sender, rcpts, body)
    match = re.match(r"2\.0\.0 Ok: queued as ([0-9A-F]{13})$", r.text)
    assert r.code == 250 and match, r
    c.cmd("QUIT")
    return match.group(1)


def spool(m):
    return mxtest.spool_files(m.settings["spool_dir"])


def unstuffed(body):
    return body.replace(b"\r\n..", b"\r\n.")


@test
def a_message_arrives_with_the_srs_sender_and_its_bytes_unchanged():
    sink = mxtest.Sink()
    m = forwarder(sink.port)
    qid = send(m, "sender@origin.test", ["alice@alias.test"])
    tx = sink.wait(1)[0]
    assert tx.mail_from == mxtest.srs0("sender", "origin.test"), tx.mail_from
    assert tx.rcpts == ["user@dest.test"]
    # mxfwd's headers first, then the message exactly as the client sent it.
    message = unstuffed(BODY)
    assert tx.data.endswith(message), tx.data
    prepended = tx.data[:len(tx.data) - len(message)].decode()
    # The sender checks' results on top, then Received: (docs/sender-checks.md).
    assert prepended.startswith("Authentication-Results: mx.fwd.test;"), prepended
    assert (f"\r\nReceived: from client.test (unknown [127.0.0.1])\r\n"
            f"\tby mx.fwd.test (mxfwd) with ESMTP id {qid}\r\n") in prepended, prepended
    fields = re.findall(r"^([A-Za-z-]+):", prepended, re.M)
    assert set(fields) <= {"Received", "Authentication-Results"}, fields
    # Postfix's delivery line, as pflogsumm reads it, then the session's TLS.
    m.wait_log(rf"mxfwd/smtp\[\d+\]: {qid}: to=<user@dest\.test>, orig_to=<alice@alias\.test>, "
               rf"relay=127\.0\.0\.1\[127\.0\.0\.1\]:{sink.port}, delay=[0-9.]+, "
               r"delays=0/[0-9.]+/[0-9.]+/[0-9.]+, dsn=2\.0\.0, "
               r"status=sent \(250 2\.0\.0 Ok: queued\), tls=none$")
    m.wait_log(rf"mxfwd/smtpd\[\d+\]: {qid}: client=unknown\[127\.0\.0\.1\], session=\w+, "
               r"spf=none, dkim=none, dmarc=none$")
    m.wait_log(rf"mxfwd/cleanup\[\d+\]: {qid}: message-id=<e2e-1@origin\.test>$")
    m.wait_log(rf"mxfwd/qmgr\[\d+\]: {qid}: from=<sender@origin\.test>, size=\d+, nrcpt=1, "
               rf"srs_from=<{re.escape(mxtest.srs0('sender', 'origin.test'))}> \(queue active\)$")
    m.wait_log(rf"{qid}: removed$")
    mxtest.wait_until(lambda: spool(m) == [], what="the spool to empty")


@test
def nul_bytes_are_forwarded_as_they_came():
    # As Postfix does by default (message_reject_characters empty): a NUL
    # is a byte like another, kept in the spool and sent on unchanged, in
    # the header section and in the body, small message and large.
    for pad in (0, 200000):
        body = (b"From: Sender <sender@origin.test>\r\nSubject: nul \x00 here\r\n\r\n"
                b"a\x00b\r\n\x00\r\n" + b"x" * pad + b"\r\nend\x00\r\n")
        sink = mxtest.Sink()
        m = forwarder(sink.port)
        send(m, "sender@origin.test", ["alice@alias.test"], body)
        tx = sink.wait(1)[0]
        assert tx.data.endswith(body), tx.data[-200:]
        m.stop()
        sink.close()


@test
def mx_lookup_falls_back_and_the_signature_still_verifies_at_the_destination():
    """The whole path without a route: the destination's MX records from
    DNS, the first MX refusing connections, the second taking a DKIM-signed
    message that still verifies there, from an SRS sender."""
    sink = mxtest.Sink()
    key = mxtest.DkimKey("rsa")
    dns = mxtest.Dnsmasq([key.publish("sel", "signed.test"),
                          mxtest.txt_record("signed.test", "v=spf1 ip4:127.0.0.1 -all"),
                          "--mx-host=dest.test,mx1.dest.test,10",
                          "--mx-host=dest.test,mx2.dest.test,20",
                          # Nothing listens on the sink's port at 127.0.0.2.
                          "--host-record=mx1.dest.test,127.0.0.2",
                          "--host-record=mx2.dest.test,127.0.0.1"])
    m = mxtest.Mxfwd(forwards=FORWARDS, config={
        "dns_servers": dns.server, "outbound_port": str(sink.port), "outbound_tls": "off",
        "retry_schedule": "1s"})
    data = mxtest.dkim_sign(b"From: <a@signed.test>\r\nTo: alice@alias.test\r\n"
                            b"Subject: signed\r\n\r\n.leading dot\r\nbody\r\n",
                            key, "sel", "signed.test")
    qid = send(m, "a@signed.test", ["alice@alias.test"], body=data.replace(b"\r\n.", b"\r\n.."))
    tx = sink.wait(1)[0]
    assert tx.mail_from == mxtest.srs0("a", "signed.test"), tx.mail_from
    assert tx.rcpts == ["user@dest.test"]
    assert tx.data.endswith(data), tx.data
    ok, out = mxtest.dkim_verify(tx.data, dns)
    assert ok, out
    assert b"dkim=pass header.d=signed.test" in tx.data
    m.wait_log(rf"{qid}: to=<user@dest\.test>, orig_to=<alice@alias\.test>, "
               rf"relay=mx2\.dest\.test\[127\.0\.0\.1\]:{sink.port}, delay=[0-9.]+, .* "
               r"status=sent \(250 2\.0\.0 Ok: queued\), tls=none$")
    assert sink.connections == 1


@test
def one_transaction_per_domain_with_every_recipient():
    sink = mxtest.Sink()
    m = forwarder(sink.port)
    send(m, "sender@origin.test", ["team@alias.test"])
    tx = sink.wait(1)[0]
    assert sorted(tx.rcpts) == ["other@dest.test", "user@dest.test"], tx.rcpts
    time.sleep(0.3)
    assert len(sink.transactions) == 1


@test
def a_temporary_failure_is_retried_on_schedule():
    sink = mxtest.Sink(replies={"user@dest.test": ["451 4.3.0 try again later"]})
    m = forwarder(sink.port)
    qid = send(m, "sender@origin.test", ["alice@alias.test"])
    accepted = time.monotonic()  # the first attempt, and its deferral, come after this
    m.wait_log(rf"{qid}: to=<user@dest\.test>, .* status=deferred \(451 4\.3\.0 try again later\)")
    tx = sink.wait(1, timeout=15)[0]
    # retry_schedule = 1s, give or take 10%.
    assert time.monotonic() - accepted >= 0.9
    assert tx.rcpts == ["user@dest.test"]
    m.wait_log(rf"{qid}: to=<user@dest\.test>, .* status=sent ")
    assert len(sink.attempts) == 2
    mxtest.wait_until(lambda: spool(m) == [], what="the spool to empty")


def bounce_dsn(hide):
    """A message to bad@alias.test refused by its destination: the DSN that
    reaches the original sender, parsed, and the queue ids."""
    sink = mxtest.Sink(replies={"nobody@dest.test": "550 5.1.1 <nobody@dest.test>: no such user"})
    m = forwarder(sink.port, {"dsn_hide_destinations": "yes" if hide else "no"})
    qid = send(m, "sender@origin.test", ["bad@alias.test"])
    m.wait_log(rf"{qid}: to=<nobody@dest\.test>, orig_to=<bad@alias\.test>, .* "
               r"status=bounced \(550 5\.1\.1 <nobody@dest\.test>: no such user\)")
    dsn_id = m.wait_log(rf"{qid}: sender non-delivery notification: ([0-9A-F]{{13}})$").group(1)
    tx = sink.wait(1)[0]
    # From <> to the original sender, not to its SRS address.
    assert tx.mail_from == "" and tx.rcpts == ["sender@origin.test"], tx
    msg = email.message_from_bytes(tx.data, policy=email.policy.compat32)
    assert msg.get_content_type() == "multipart/report"
    assert msg.get_param("report-type") == "delivery-status"
    assert msg["To"] == "<sender@origin.test>"
    assert msg["Auto-Submitted"] == "auto-replied"
    m.wait_log(rf"{dsn_id}: to=<sender@origin\.test>, .* status=sent ")
    mxtest.wait_until(lambda: spool(m) == [], what="the spool to empty")
    return tx, msg, qid


@test
def a_permanent_failure_sends_a_dsn_to_the_original_sender():
    # dsn_hide_destinations = yes, the default: the alias is the recipient,
    # and the private mailbox appears nowhere, the quoted reply included.
    tx, msg, qid = bounce_dsn(hide=True)
    text, report, headers = msg.get_payload()
    assert text.get_content_type() == "text/plain"
    assert "<bad@alias.test>):" in text.get_payload(), text.get_payload()
    assert report.get_content_type() == "message/delivery-status"
    per_message, per_rcpt = report.get_payload()
    assert per_message["Reporting-MTA"] == "dns; mx.fwd.test"
    assert per_message["X-mxfwd-Queue-ID"] == qid
    assert per_rcpt["Final-Recipient"] == "rfc822; bad@alias.test"
    assert per_rcpt["Original-Recipient"] is None
    assert per_rcpt["Action"] == "failed"
    assert per_rcpt["Status"] == "5.1.1"
    assert per_rcpt["Remote-MTA"] == "dns; 127.0.0.1"
    assert per_rcpt["Diagnostic-Code"] == "smtp; 550 5.1.1 <bad@alias.test>: no such user"
    assert per_rcpt["Last-Attempt-Date"]
    assert headers.get_content_type() == "text/rfc822-headers"
    attached = headers.get_payload()
    assert "Subject: forwarded" in attached and "Hello," not in attached
    assert b"nobody@dest.test" not in tx.data


@test
def without_hiding_the_dsn_names_the_mailbox_and_its_alias():
    tx, msg, qid = bounce_dsn(hide=False)
    text, report, headers = msg.get_payload()
    assert "<nobody@dest.test> (forwarded for <bad@alias.test>)" in text.get_payload()
    per_message, per_rcpt = report.get_payload()
    assert per_rcpt["Final-Recipient"] == "rfc822; nobody@dest.test"
    assert per_rcpt["Original-Recipient"] == "rfc822;bad@alias.test"
    assert per_rcpt["Diagnostic-Code"] == "smtp; 550 5.1.1 <nobody@dest.test>: no such user"


@test
def no_dsn_for_a_message_from_the_null_sender():
    sink = mxtest.Sink(replies={"nobody@dest.test": "550 5.1.1 no such user"})
    m = forwarder(sink.port)
    qid = send(m, "", ["bad@alias.test"])
    m.wait_log(rf"{qid}: to=<nobody@dest\.test>, .* status=bounced")
    m.wait_log(rf"{qid}: removed$")
    time.sleep(0.5)
    assert "non-delivery notification" not in m.log()
    assert sink.transactions == [] and len(sink.attempts) == 1


@test
def mail_queued_before_a_restart_is_delivered_after_it():
    port = mxtest.free_port()  # nothing listens there yet: connection refused
    m = forwarder(port, {"retry_schedule": "2s"})
    qid = send(m, "sender@origin.test", ["alice@alias.test"])
    m.wait_log(rf"{qid}: to=<user@dest\.test>, .* status=deferred \(connect to ")
    assert m.stop() == 0
    assert spool(m) == [qid]
    sink = mxtest.Sink(port=port)
    m.start()
    tx = sink.wait(1, timeout=15)[0]
    assert tx.data.endswith(unstuffed(BODY))
    m.wait_log(rf"{qid}: removed$")
    time.sleep(0.5)
    assert len(sink.transactions) == 1


@test
def journal_messages_killed_mid_delivery_are_delivered_once_after_a_restart():
    """Small messages live in the spool's commit journal, not in files of
    their own (docs/spool.md).  With the daemon killed by SIGKILL while
    their deliveries hang at the greeting, a restart finds each of them
    and delivers it exactly once."""
    stalled = mxtest.Sink(stall="greeting")
    port = stalled.port
    m = forwarder(port, {"retry_schedule": "1s"})
    qids = [send(m, "sender@origin.test", ["alice@alias.test"],
                 BODY.replace(b"Hello,", f"Hello {i},".encode())) for i in range(3)]
    mxtest.wait_until(lambda: stalled.connections >= 1, what="a delivery under way")
    assert spool(m) == sorted(qids)
    assert os.listdir(m.settings["spool_dir"]) == ["journal"], "no file of their own"
    m.stop(signal.SIGKILL)
    stalled.close()
    sink = mxtest.Sink(port=port)
    m.start()
    m.wait_log(r"spool .*: 3 messages queued")
    got = sink.wait(3, timeout=20)
    for qid in qids:
        m.wait_log(rf"{qid}: removed$")
    time.sleep(0.5)
    assert len(sink.transactions) == 3
    assert sorted(tx.data for tx in got) == sorted(
        tx.data for tx in sink.transactions)
    for i in range(3):
        assert sum(f"Hello {i},".encode() in tx.data for tx in sink.transactions) == 1
    assert spool(m) == []


def mxfwd_json(m, *args):
    r = m.run(*args, "--json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


@test
def the_admin_commands_talk_to_the_running_daemon():
    sink = mxtest.Sink(replies={"user@dest.test": "451 4.3.0 not now"})
    m = forwarder(sink.port, {"retry_schedule": "1h"})
    sock = m.settings["control_socket"]
    qid = send(m, "sender@origin.test", ["alice@alias.test"])
    m.wait_log(rf"{qid}: to=<user@dest\.test>, .* status=deferred")
    mode = os.lstat(sock).st_mode
    assert stat.S_ISSOCK(mode) and stat.S_IMODE(mode) == 0o600, oct(mode)
    assert stat.S_IMODE(os.stat(os.path.dirname(sock)).st_mode) == 0o700

    # queue: the table for people, and JSON.
    r = m.run("queue")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split()[:3] == ["Queue", "ID", "Age"], lines
    assert lines[1].startswith(qid) and lines[1].rstrip().endswith("sender@origin.test"), lines
    assert re.match(r"\s+user@dest\.test\s+deferred\s+(5\dm|1h)\s+451 4\.3\.0 not now$", lines[2]), lines
    assert lines[-1] == "-- 1 message, " + lines[-1].split(", ")[1] + ", 1 recipient waiting", lines
    listing = mxfwd_json(m, "queue")
    assert listing["ok"] and len(listing["messages"]) == 1
    msg = listing["messages"][0]
    assert msg["id"] == qid and msg["sender"] == "sender@origin.test"
    assert msg["srs_sender"] == mxtest.srs0("sender", "origin.test")
    rcpt = msg["recipients"][0]
    assert rcpt["address"] == "user@dest.test" and rcpt["alias"] == "alice@alias.test"
    assert rcpt["state"] == "deferred" and rcpt["attempts"] == 1
    assert rcpt["last_reply"] == "451 4.3.0 not now"
    assert 3000 < rcpt["next_attempt"] - listing["now"] <= 3960

    # stats: counters from the SMTP server and the queue.
    stats = mxfwd_json(m, "stats")["stats"]
    assert stats["connections"] >= 1 and stats["accepted"] == 1, stats
    assert stats["deferred"] == 1 and stats["delivered"] == 0, stats
    assert stats["queue_messages"] == 1 and stats["queue_recipients"] == 1, stats
    r = m.run("stats")
    assert re.search(r"^accepted\s+1$", r.stdout, re.M), r.stdout

    # flush: tried again at once, not in an hour.
    r = m.run("flush")
    assert r.returncode == 0 and r.stdout == "1 recipient due now\n", r.stdout
    mxtest.wait_until(lambda: len(sink.attempts) == 2, what="a second attempt")

    # delete: gone, logged, and no DSN.
    r = m.run("delete", qid)
    assert r.returncode == 0 and r.stdout == f"{qid}: deleted\n", (r.stdout, r.stderr)
    m.wait_log(rf"{qid}: deleted by the administrator")
    mxtest.wait_until(lambda: spool(m) == [], what="the file to go")
    r = m.run("delete", qid)
    assert r.returncode == 1 and r.stderr == f"mxfwd delete: {qid}: no such message in the queue\n"
    r = m.run("queue")
    assert r.stdout == "Mail queue is empty\n", r.stdout
    time.sleep(0.3)
    assert sink.transactions == [] and "non-delivery" not in m.log()

    # Without the daemon: one line, exit 1.
    assert m.stop() == 0
    assert not os.path.exists(sock)
    for words in (["queue"], ["flush"], ["stats"], ["delete", qid]):
        r = m.run(*words)
        assert r.returncode == 1 and r.stdout == "", (words, r.stdout)
        assert len(r.stderr.splitlines()) == 1 and "cannot reach the daemon" in r.stderr, r.stderr


@test
def queue_show_flush_and_delete_take_ids_domains_all_and_stdin():
    sink = mxtest.Sink(replies={"user@dest.test": "451 4.3.0 not now",
                                "user@slow.test": "451 4.3.0 not now"})
    dns = mxtest.Dnsmasq([])
    m = mxtest.Mxfwd(
        forwards="a@alias.test user@dest.test\nb@alias.test user@slow.test\n",
        config={"dns_servers": dns.server, "outbound_tls": "off", "retry_schedule": "1h",
                "route": [f"dest.test 127.0.0.1:{sink.port}", f"slow.test 127.0.0.1:{sink.port}"]})
    q1 = send(m, "sender@origin.test", ["a@alias.test"])
    q2 = send(m, "sender@origin.test", ["b@alias.test"])
    q3 = send(m, "sender@origin.test", ["a@alias.test"])
    for q in (q1, q2, q3):
        m.wait_log(rf"{q}: to=<user@(dest|slow)\.test>, .* status=deferred")

    def tries(addr):
        return sum(addr in tx.refused for tx in sink.attempts)

    # queue show: the envelope, then the header section as it will be sent,
    # with the id in any case.
    r = m.run("queue", "show", q1.lower())
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert out.startswith(f"*** ENVELOPE {q1} ***\narrival: "), out
    for line in ("sender: sender@origin.test",
                 "srs_sender: " + mxtest.srs0("sender", "origin.test"),
                 "helo: client.test",
                 "body: 7BIT", "recipient: user@dest.test", "  alias: a@alias.test",
                 "  last reply: 451 4.3.0 not now", f"*** HEADERS {q1} ***",
                 "Subject: forwarded", "Message-ID: <e2e-1@origin.test>", f"*** END {q1} ***"):
        assert line in out.splitlines(), (line, out)
    assert re.search(r"^  state: deferred, 1 attempt, next in (5\dm|1h)$", out, re.M), out
    assert re.search(r"^Received: from client\.test ", out, re.M), out
    assert "Hello," not in out and "\r" not in out
    r = m.run("queue", "show", "--body", q1)
    assert r.returncode == 0, r.stderr
    body = r.stdout.split(f"*** MESSAGE {q1} ***\n")[1]
    assert body.endswith("\n\nHello,\n.a line with a leading dot\nand the end.\n"
                         f"*** END {q1} ***\n"), body
    r = m.run("queue", "show", "0000000000001")
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr == "mxfwd queue show: 0000000000001: no such message in the queue\n", r.stderr

    # flush -d: only the recipients at that domain.
    r = m.run("flush", "-d", "SLOW.test")
    assert r.returncode == 0 and r.stdout == "1 recipient at SLOW.test due now\n", r.stdout
    mxtest.wait_until(lambda: tries("user@slow.test") == 2, what="slow.test tried again")
    # flush ID: that message only; an unknown id is said and fails the command.
    r = m.run("flush", q3.lower(), "0000000000001")
    assert r.returncode == 1 and r.stdout == "1 recipient due now\n", (r.stdout, r.stderr)
    assert r.stderr == "mxfwd flush: 0000000000001: no such message in the queue\n", r.stderr
    mxtest.wait_until(lambda: tries("user@dest.test") == 3, what="q3 tried again")
    time.sleep(0.3)
    assert tries("user@dest.test") == 3 and tries("user@slow.test") == 2

    # delete ID...: several at once, any case.
    r = m.run("delete", q1, q2.lower())
    assert r.returncode == 0 and r.stdout == f"{q1}: deleted\n{q2}: deleted\n", (r.stdout, r.stderr)
    # delete -: ids on standard input.
    r = m.run("delete", "-", input=f"{q3}\n")
    assert r.returncode == 0 and r.stdout == f"{q3}: deleted\n", (r.stdout, r.stderr)
    for q in (q1, q2, q3):
        m.wait_log(rf"{q}: deleted by the administrator")
    # delete ALL.
    send(m, "sender@origin.test", ["a@alias.test"])
    send(m, "sender@origin.test", ["b@alias.test"])
    r = m.run("delete", "ALL")
    assert r.returncode == 0 and r.stdout.startswith("2 messages deleted\n"), r.stdout
    mxtest.wait_until(lambda: spool(m) == [], what="the files to go")
    assert m.run("queue").stdout == "Mail queue is empty\n"
    assert "non-delivery" not in m.log()


@test
def a_stale_control_socket_is_replaced():
    sink = mxtest.Sink()
    m = forwarder(sink.port, start=False)
    sock = m.settings["control_socket"]
    os.makedirs(os.path.dirname(sock), mode=0o700)
    s = socket.socket(socket.AF_UNIX)
    s.bind(sock)  # bound, never listened on, left behind: as after a crash
    s.close()
    m.start()
    r = m.run("stats")
    assert r.returncode == 0, r.stderr


@test
def table_reject_and_discard_under_a_catch_all():
    sink = mxtest.Sink()
    dns = mxtest.Dnsmasq([])
    forwards = ("@alias.test        user@dest.test\n"
                "old@alias.test     REJECT 5.1.6 Moved; write to new@dest.test\n"
                "noise@alias.test   DISCARD\n")
    m = mxtest.Mxfwd(forwards=forwards,
                     config={"dns_servers": dns.server, "outbound_tls": "off",
                             "route": f"dest.test 127.0.0.1:{sink.port}"})
    c = m.client()
    c.cmd("EHLO client.test", expect=250)
    c.cmd("MAIL FROM:<sender@origin.test>")
    r = c.cmd("RCPT TO:<old@alias.test>")
    assert (r.code, r.text) == (550, "5.1.6 <old@alias.test>: Moved; write to new@dest.test"), r
    m.wait_log(r"NOQUEUE: reject: RCPT from .*: 550 5\.1\.6 <old@alias\.test>: Moved; write to "
               r"new@dest\.test; from=<sender@origin\.test> to=<old@alias\.test> proto=ESMTP ")
    # DISCARD alone: the client hears 250 as for any message; nothing leaves.
    r = c.cmd("RCPT TO:<noise@alias.test>")
    assert r.code == 250, r
    c.cmd("DATA", expect=354)
    c.send(BODY + b".\r\n")
    r = c.reply()
    match = re.match(r"2\.0\.0 Ok: queued as ([0-9A-F]{13})$", r.text)
    assert r.code == 250 and match, r
    m.wait_log(rf"{match.group(1)}: discarded after DATA from unknown\[127\.0\.0\.1\]: every "
               r"recipient's forward table entry says DISCARD; from=<sender@origin\.test> ")
    assert "Recipient address triggers DISCARD action (forward table line 3)" in m.log()
    # DISCARD beside a forwarded recipient: only that one is forwarded.
    c.cmd("MAIL FROM:<sender@origin.test>")
    assert c.cmd("RCPT TO:<noise@alias.test>").code == 250
    assert c.cmd("RCPT TO:<anyone@alias.test>").code == 250
    c.cmd("DATA", expect=354)
    c.send(BODY + b".\r\n")
    assert c.reply().code == 250
    tx = sink.wait(1)[0]
    assert tx.rcpts == ["user@dest.test"], tx
    c.cmd("QUIT")
    time.sleep(0.2)
    assert len(sink.transactions) == 1
    stats = mxfwd_json(m, "stats")["stats"]
    assert stats["discarded"] == 1 and stats["accepted"] == 1, stats
    assert stats["rejected"]["table_reject"] == 1, stats


@test
def resolve_asks_the_running_daemon_and_names_the_table_line():
    sink = mxtest.Sink()
    m = forwarder(sink.port)
    table = m.settings["forward_table"]
    r = m.run("resolve", "team@alias.test")
    assert r.returncode == 0, r.stderr
    assert r.stdout == ("user@dest.test\nother@dest.test\n"
                        f"-- {table}:2: team@alias.test, as the running daemon has it loaded\n"), r.stdout
    # The file changes, the daemon has not reloaded: resolve says what the
    # daemon does, not what the file says.
    m.write_file("forwards", FORWARDS + "new@alias.test user@dest.test\n")
    r = m.run("resolve", "new@alias.test")
    assert r.returncode == 1 and r.stdout.startswith("550 5.1.1 <new@alias.test>: "), r.stdout
    m.proc.send_signal(signal.SIGHUP)
    m.wait_log(r"reloaded forward table")
    r = m.run("resolve", "<New@alias.test>")
    assert r.returncode == 0 and r.stdout.startswith("user@dest.test\n-- "), r.stdout
    assert f"{table}:4: new@alias.test, as the running daemon" in r.stdout, r.stdout
    # An SRS address: the original sender, for bounces.
    srs = mxtest.srs0("sender", "origin.test")
    r = m.run("resolve", srs)
    assert r.returncode == 0 and r.stdout.startswith("sender@origin.test\n-- an SRS address"), r.stdout
    # Without the daemon: the files, and it says so.
    assert m.stop() == 0
    r = m.run("resolve", "team@alias.test")
    assert r.returncode == 0 and "read from the file (no daemon answered at" in r.stdout, r.stdout


if __name__ == "__main__":
    mxtest.main()
