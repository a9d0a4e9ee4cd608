"""End-to-end tests of the DSN extension (RFC 3461) and of the notices
mxfwd sends: the parameters taken at MAIL and RCPT, passed on through a
real Postfix that advertises DSN, the notices mxfwd owes when the next hop
does not take them, and the RFC 6533 form of a DSN about an
internationalized message, read back with Python's email package."""

import email
import email.policy
import json
import re
import signal
import time

import mxtest
from mxtest import test

FORWARDS = "alice@alias.test user@dest.test\nbob@alias.test other@dest.test\n"
DSN_EXTENSIONS = ("PIPELINING", "SIZE 52428800", "8BITMIME", "ENHANCEDSTATUSCODES", "SMTPUTF8",
                  "DSN")


def forwarder(dest_port, origin_port, config=None):
    """mxfwd routing dest.test to dest_port and origin.test (notices) to
    origin_port."""
    dns = mxtest.Dnsmasq([])
    settings = {
        "dns_servers": dns.server,
        "route": [f"dest.test 127.0.0.1:{dest_port}", f"origin.test 127.0.0.1:{origin_port}"],
        "outbound_tls": "off",
        "retry_schedule": "1h",
    }
    settings.update(config or {})
    return mxtest.Mxfwd(forwards=FORWARDS, config=settings)


def body(subject="dsn"):
    return (f"From: Sender <sender@origin.test>\r\nTo: alice@alias.test\r\nSubject: {subject}\r\n"
            f"Message-ID: <{subject}@origin.test>\r\n\r\nHello.\r\n").encode()


def send(m, mail, rcpts, data):
    c = m.client()
    r = c.cmd("EHLO client.test", expect=250)
    assert "DSN" in r.lines, r
    c.cmd(mail, expect=250)
    for rcpt in rcpts:
        c.cmd(rcpt, expect=250)
    c.cmd("DATA", expect=354)
    c.send(data + b".\r\n")
    r = c.reply()
    assert r.code == 250, r
    c.cmd("QUIT")
    return re.search(r"queued as ([0-9A-F]{13})", r.text).group(1)


@test
def dsn_parameters_pass_through_a_real_postfix_that_advertises_dsn():
    sink = mxtest.Sink(extensions=DSN_EXTENSIONS)
    pf = mxtest.Postfix(["dest.test"], sink.port)
    m = forwarder(pf.port, sink.port)
    send(m, "MAIL FROM:<sender@origin.test> RET=HDRS ENVID=QQ+2B314",
         ["RCPT TO:<alice@alias.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;Alice+2Bx@alias.test",
          "RCPT TO:<bob@alias.test>"],
         body())
    txs = sink.wait(1)
    tx = txs[0]
    # mxfwd gave them to Postfix, and Postfix passed them on: RET and ENVID
    # (xtext, '+' as +2B), NOTIFY and the client's ORCPT, and for bob, who
    # named none, the alias as ORCPT.
    assert "RET=HDRS" in tx.mail_params and "ENVID=QQ+2B314" in tx.mail_params, tx.mail_params
    assert sorted(tx.rcpts) == ["other@dest.test", "user@dest.test"], tx.rcpts
    alice = tx.rcpt_params["user@dest.test"].split()
    assert "NOTIFY=SUCCESS,FAILURE" in alice and "ORCPT=rfc822;Alice+2Bx@alias.test" in alice, alice
    assert "ORCPT=rfc822;bob@alias.test" in tx.rcpt_params["other@dest.test"].split(), tx.rcpt_params
    assert tx.mail_from == mxtest.srs0("sender", "origin.test")
    # Postfix took NOTIFY=SUCCESS: success is its to report, not mxfwd's.
    mxtest.wait_until(lambda: "status=sent" in m.log(), what="the delivery")
    time.sleep(0.5)
    assert len(sink.transactions) == 1 and "notification" not in m.log(), m.log()


@test
def a_next_hop_without_dsn_gets_no_parameters_and_the_sender_a_relayed_notice():
    sink = mxtest.Sink()  # no DSN
    m = forwarder(sink.port, sink.port)
    qid = send(m, "MAIL FROM:<sender@origin.test> ENVID=abc",
               ["RCPT TO:<alice@alias.test> NOTIFY=SUCCESS"], body("relayed"))
    txs = sink.wait(2)
    forwarded = [t for t in txs if t.mail_from != ""][0]
    assert "ENVID" not in forwarded.mail_params and forwarded.rcpt_params["user@dest.test"] == ""
    notice = [t for t in txs if t.mail_from == ""][0]
    assert notice.rcpts == ["sender@origin.test"]
    msg = email.message_from_bytes(notice.data, policy=email.policy.default)
    assert msg["Subject"] == "Successful Mail Delivery Report"
    status = msg.get_payload()[1].as_string()
    assert "Action: relayed" in status and "Original-Envelope-Id: abc" in status, status
    # The alias, not the private mailbox (dsn_hide_destinations = yes).
    assert "Final-Recipient: rfc822; alice@alias.test" in status, status
    assert b"user@dest.test" not in notice.data
    m.wait_log(rf"{qid}: sender delivery status notification: [0-9A-F]{{13}}")


@test
def a_dsn_about_an_internationalized_message_is_rfc6533():
    sink = mxtest.Sink(replies={"user@dest.test": "550 5.1.1 <user@dest.test>: no such user"})
    m = forwarder(sink.port, sink.port)
    data = ("From: J\u00f6rg <j\u00f6rg@origin.test>\r\nTo: alice@alias.test\r\n"
            "Subject: gr\u00fc\u00dfe\r\n\r\nHallo.\r\n").encode()
    send(m, "MAIL FROM:<j\u00f6rg@origin.test> SMTPUTF8",
         ["RCPT TO:<alice@alias.test>"], data)
    dsn = [t for t in sink.wait(1) if t.mail_from == ""][0]
    assert dsn.rcpts == ["j\u00f6rg@origin.test"]
    assert "SMTPUTF8" in dsn.mail_params
    msg = email.message_from_bytes(dsn.data, policy=email.policy.default)
    assert msg.get_content_type() == "multipart/report"
    assert msg.get_param("report-type") == "global-delivery-status"
    parts = msg.get_payload()
    assert [p.get_content_type() for p in parts] == [
        "text/plain", "message/global-delivery-status", "message/global-headers"], parts
    # The report's fields and the returned headers read as UTF-8.
    report = parts[1].get_payload(decode=True) or parts[1].as_bytes()
    text = report.decode("utf-8") if isinstance(report, bytes) else str(report)
    assert "Final-Recipient: rfc822; alice@alias.test" in text, text
    assert "Action: failed" in text and "Status: 5.1.1" in text, text
    returned = parts[2].as_bytes().decode("utf-8")
    assert "Subject: gr\u00fc\u00dfe" in returned, returned
    # Nothing of the private mailbox (dsn_hide_destinations = yes).
    assert b"user@dest.test" not in dsn.data, dsn.data


@test
def postmaster_mail_goes_to_the_postmaster_address_unless_the_table_says_otherwise():
    sink = mxtest.Sink()
    m = forwarder(sink.port, sink.port, {"postmaster": "admin@dest.test"})
    for rcpt in ("<postmaster>", "<Postmaster@mx.fwd.test>", "<postmaster@FWD.test>"):
        c = m.client()
        c.cmd("EHLO client.test", expect=250)
        c.cmd("MAIL FROM:<someone@origin.test>", expect=250)
        c.cmd(f"RCPT TO:{rcpt}", expect=250)
        c.cmd("DATA", expect=354)
        c.send(body("pm") + b".\r\n")
        assert c.reply().code == 250
        c.cmd("QUIT")
    txs = sink.wait(3)
    assert all(t.rcpts == ["admin@dest.test"] for t in txs), txs
    r = m.run("resolve", "postmaster")
    assert r.returncode == 0 and r.stdout.startswith("admin@dest.test\n"), r.stdout
    # Another local part of hostname is no alias.
    c = m.client()
    c.cmd("EHLO client.test", expect=250)
    c.cmd("MAIL FROM:<someone@origin.test>", expect=250)
    assert c.cmd("RCPT TO:<abuse@mx.fwd.test>").code == 554
    # An entry in the table for it wins over the key.
    m.write_file("forwards", FORWARDS + "postmaster@mx.fwd.test  team@dest.test\n")
    m.proc.send_signal(signal.SIGHUP)
    m.wait_log(r"reloaded forward table")
    r = m.run("resolve", "postmaster@mx.fwd.test")
    assert r.stdout.startswith("team@dest.test\n"), r.stdout


@test
def postmaster_mail_without_a_postmaster_is_held_for_the_admin():
    sink = mxtest.Sink()
    m = forwarder(sink.port, sink.port)
    ids = []
    for rcpt in ("<postmaster>", "<postmaster@fwd.test>"):
        ids.append(send(m, "MAIL FROM:<someone@origin.test>", [f"RCPT TO:{rcpt}"], body("pm")))
    m.wait_log(r"NOQUEUE: hold: RCPT from unknown\[127\.0\.0\.1\]: <postmaster>: postmaster is "
               r"not set: held for the admin; from=<someone@origin\.test> to=<postmaster> "
               r"proto=ESMTP helo=<client\.test> session=\w+$")
    # Held: listed, readable, never tried (not even by a flush).
    q = json.loads(m.run("queue", "--json").stdout)
    assert sorted((x["id"], [(r["address"], r["state"]) for r in x["recipients"]])
                  for x in q["messages"]) == sorted([
                      (ids[0], [("postmaster@mx.fwd.test", "held")]),
                      (ids[1], [("postmaster@fwd.test", "held")])]), q
    r = m.run("queue", "show", ids[0].lower(), "--body")
    assert r.returncode == 0 and "state: held" in r.stdout and "Hello." in r.stdout, r.stdout
    m.run("flush")
    time.sleep(0.5)
    assert sink.transactions == [], "held mail is never tried"
    # hold and release take several ids, or - for ids on standard input.
    r = m.run("release", ids[0], "NOSUCHID")
    assert r.returncode == 1 and r.stdout == "1 recipient released\n", r
    assert "NOSUCHID: no such message in the queue" in r.stderr, r.stderr
    r = m.run("hold", "-", input=f"{ids[1]}\n")
    assert r.returncode == 0 and r.stdout == "0 recipients held\n", r
    r = m.run("release", "-", input=f"{ids[1]}\n")
    assert r.returncode == 0 and r.stdout == "1 recipient released\n", r
    # Released: tried at once (here to the sink, the route for every
    # domain of these tests but the postmaster's own, which has no MX).
    m.wait_log(rf"{ids[0]}: released by the administrator \(1 recipient\)")
    m.wait_log(rf"{ids[1]}: released by the administrator \(1 recipient\)")
    m.wait_log(rf"{ids[0]}: to=<postmaster@mx\.fwd\.test>, ")


@test
def a_double_bounce_is_reported_to_the_postmaster_once():
    # A bounce forwarded to its original sender (an SRS address's) is
    # refused there: the postmaster gets a report, from double-bounce@;
    # when that report bounces too, nothing more is sent.
    sink = mxtest.Sink(replies={"sender@origin.test": "550 5.1.1 gone",
                                "admin@dest.test": ["250 ok", "550 5.1.1 gone too"]})
    m = forwarder(sink.port, sink.port, {"postmaster": "admin@dest.test"})
    srs = mxtest.srs0("sender", "origin.test")
    qid = send(m, "MAIL FROM:<>", [f"RCPT TO:<{srs}>"], body("bounce"))
    m.wait_log(rf"{qid}: postmaster non-delivery notification: ([0-9A-F]{{13}})")
    report = [t for t in sink.wait(1) if t.rcpts == ["admin@dest.test"]][0]
    assert report.mail_from == "double-bounce@mx.fwd.test", report.mail_from
    msg = email.message_from_bytes(report.data, policy=email.policy.default)
    assert msg["Subject"] == "Postmaster Copy: Undelivered Mail"
    assert msg["To"].addresses[0].addr_spec == "admin@dest.test", msg["To"]
    status = msg.get_payload()[1].as_string()
    assert "Final-Recipient: rfc822; sender@origin.test" in status and "Status: 5.1.1" in status
    # The second one bounces at the postmaster: logged, nothing sent about it.
    qid2 = send(m, "MAIL FROM:<>", [f"RCPT TO:<{srs}>"], body("bounce2"))
    rid = m.wait_log(rf"{qid2}: postmaster non-delivery notification: ([0-9A-F]{{13}})").group(1)
    m.wait_log(rf"{rid}: to=<admin@dest\.test>, .* status=bounced")
    m.wait_log(rf"{rid}: removed")
    time.sleep(0.5)
    assert m.log().count("non-delivery notification") == 2, m.log()


if __name__ == "__main__":
    mxtest.main()
