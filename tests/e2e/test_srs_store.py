"""Long senders (docs/srs.md, "Long senders"): accepted, forwarded with a
short keyed SRS address, their bounces routed back through the embedded
envelope store, after a restart too; expired and tampered keys refused;
srs_long_senders = embed and reject; the commands."""

import base64
import hashlib
import hmac
import json
import os
import re
import subprocess
import time

import mxtest
from mxtest import test

from long_senders import BODY, BOUNCE, FORWARDS, KEYED, MAILCHIMP, SENDGRID, SES, VERP


def forwarder(sink, config=None):
    settings = {"route": f"* 127.0.0.1:{sink.port}", "outbound_tls": "off", "retry_schedule": "1s"}
    settings.update(config or {})
    return mxtest.Mxfwd(forwards=FORWARDS, config=settings)


def send(m, sender, rcpts, body=BODY, code=250):
    c = m.client()
    r = c.transaction(sender, rcpts, body)
    assert r.code == code, (sender, r)
    c.cmd("QUIT")
    return r


def keyed_srs0(key, day=None, secret=mxtest.Mxfwd.SECRET):
    """A keyed address signed with the test secret, as docs/srs.md says."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
    day = int(time.time()) // 86400 if day is None else day
    tt = alphabet[(day >> 5) & 31] + alphabet[day & 31]
    mac = hmac.new(secret.encode(), (tt + "-" + key).lower().encode(), hashlib.sha1).digest()
    h = base64.b64encode(mac).decode()[:4].replace("+", "-").replace("/", "_")
    return f"SRS0={h}={tt}=-={key}@fwd.test"


def stats(m):
    out = m.run("stats").stdout
    return {k: int(v) for k, v in re.findall(r"^(envelope_store_\w+)\s+(\d+)", out, re.M)}


@test
def long_senders_are_forwarded_short_and_their_bounces_come_back():
    sink = mxtest.Sink()
    m = forwarder(sink)
    senders = [SES, SENDGRID, MAILCHIMP, VERP]
    for s in senders:
        send(m, s, ["alice@alias.test"])
    txs = sink.wait(len(senders))
    srs = {}
    for tx in txs:
        assert KEYED.match(tx.mail_from), tx.mail_from
        assert len(tx.mail_from.split("@")[0]) <= 64
        srs[tx.mail_from] = tx
    assert len(srs) == len(senders), "one key per sender"
    # The same sender again: the same address, nothing new written.
    send(m, SES, ["alice@alias.test"])
    again = sink.wait(len(senders) + 1)[-1].mail_from
    assert again in srs
    st = stats(m)
    assert st["envelope_store_entries"] == len(senders), st
    assert st["envelope_store_written"] == len(senders), st
    # Each bounce from <> reaches its original long sender.
    by_sender = {}
    for addr in srs:
        send(m, "", [addr], BOUNCE)
    for tx in sink.wait(2 * len(senders) + 1)[len(senders) + 1:]:
        assert tx.mail_from == "", tx.mail_from
        by_sender[tx.rcpts[0]] = tx
    assert sorted(by_sender) == sorted(senders), by_sender
    # A long recipient: a VERP address under a catch-all.
    send(m, "a@origin.test", ["bounces+" + "y" * 90 + "@list.test"])
    assert sink.wait(2 * len(senders) + 2)[-1].rcpts == ["user@dest.test"]
    # The commands say the same.
    fwd = m.run("srs", "forward", SES).stdout.strip()
    assert fwd == again, (fwd, again)
    r = m.run("srs", "reverse", fwd)
    assert r.returncode == 0 and r.stdout.strip() == SES, r
    r = m.run("resolve", fwd)
    assert r.returncode == 0 and r.stdout.strip() == SES, r


@test
def the_entry_is_durable_before_the_250_and_survives_a_restart():
    sink = mxtest.Sink()
    m = forwarder(sink)
    send(m, SENDGRID, ["alice@alias.test"])
    addr = sink.wait(1)[0].mail_from
    m.stop(9)  # no clean shutdown: what the 250 promised is on disk
    m.start()
    send(m, "", [addr], BOUNCE)
    # The forwarded copy may come again first: killed before its removal
    # was on disk, it is delivered again after the restart.
    mxtest.wait_until(lambda: any(t.mail_from == "" for t in sink.transactions),
                      what="the bounce at the sink")
    bounce = [t for t in sink.transactions if t.mail_from == ""]
    assert [t.rcpts for t in bounce] == [[SENDGRID]], sink.transactions


@test
def a_queued_message_brings_its_lost_entry_back_at_start():
    # The store's commit runs beside the journal's: a crash between them
    # can leave a queued message whose key the store never got.  Here the
    # file is removed while the message waits: at start the entry is put
    # again from the message's envelope, and the bounce finds it.
    sink = mxtest.Sink(replies={"user@dest.test": "451 4.3.0 later"})
    m = forwarder(sink, {"retry_schedule": "1h"})
    send(m, SES, ["alice@alias.test"])
    m.wait_log(r"status=deferred")
    addr = json.loads(m.run("queue", "--json").stdout)["messages"][0]["srs_sender"]
    assert KEYED.match(addr), addr
    m.stop()
    os.remove(m.settings.get("envelope_store", os.path.join(m.dir, "envelopes")))
    m.start()
    send(m, "", [addr], BOUNCE)
    bounce = [t for t in sink.wait(1) if t.mail_from == ""]
    assert bounce and bounce[0].rcpts == [SES], sink.transactions


@test
def expired_unknown_and_tampered_keys_are_refused():
    sink = mxtest.Sink()
    m = forwarder(sink)
    send(m, MAILCHIMP, ["alice@alias.test"])
    addr = sink.wait(1)[0].mail_from
    key = addr.split("=")[4].split("@")[0]
    # Tampered: the hash is checked first.
    other = key[:-1] + ("A" if key[-1] != "A" else "B")
    c = m.client()
    c.cmd("EHLO client.test")
    c.cmd("MAIL FROM:<>")
    r = c.cmd(f"RCPT TO:<{addr.replace(key, other)}>")
    assert r.code == 550 and "invalid SRS signature" in r.text, r
    # Signed, but no such key: 550 5.1.1.
    r = c.cmd(f"RCPT TO:<{keyed_srs0(other)}>")
    assert r.code == 550 and r.lines[-1].startswith("5.1.1") and "unknown or expired" in r.text, r
    c.cmd("QUIT")
    # Expired: the entry's time is over (set back in the file while mxfwd
    # is down); the sweep at start removes it, and the bounce is refused.
    m.stop()
    path = m.settings.get("envelope_store", os.path.join(m.dir, "envelopes"))
    dump = subprocess.run(["mdb_dump", "-n", path], check=True, capture_output=True,
                          text=True).stdout
    lines = [x for x in dump.split("\n") if not x.startswith("db_pagesize=")]
    for i, line in enumerate(lines):
        if line.startswith(" ") and bytes.fromhex(line[1:]) == key.encode():
            lines[i + 1] = " " + (int(time.time()) - 10).to_bytes(8, "big").hex() + \
                lines[i + 1][17:]
    subprocess.run(["mdb_load", "-n", path], input="\n".join(lines), check=True, text=True)
    m.start()
    mxtest.wait_until(lambda: stats(m).get("envelope_store_expired") == 1,
                      what="the sweep to remove the entry")
    assert stats(m)["envelope_store_entries"] == 0
    c = m.client()
    c.cmd("EHLO client.test")
    c.cmd("MAIL FROM:<>")
    r = c.cmd(f"RCPT TO:<{addr}>")
    assert r.code == 550 and r.lines[-1].startswith("5.1.1"), r
    r = m.run("srs", "reverse", addr)
    assert r.returncode == 1 and r.stdout.startswith("unknown-key:"), r
    r = m.run("resolve", addr)
    assert r.returncode == 1 and r.stdout.startswith("550 5.1.1"), r


@test
def embed_and_reject():
    sink = mxtest.Sink()
    m = forwarder(sink, {"srs_long_senders": "embed"})
    send(m, SES, ["alice@alias.test"])
    addr = sink.wait(1)[0].mail_from
    local, domain = SES.split("@")
    assert addr.startswith("SRS0=") and addr.endswith(f"={domain}={local}@fwd.test"), addr
    assert not os.path.exists(os.path.join(m.dir, "envelopes")), "embed keeps no state"
    send(m, "", [addr], BOUNCE)
    assert sink.wait(2)[1].rcpts == [SES]
    assert m.run("srs", "forward", SES).stdout.strip() == addr
    m = forwarder(sink, {"srs_long_senders": "reject"})
    c = m.client()
    c.cmd("EHLO client.test")
    r = c.cmd(f"MAIL FROM:<{SES}>")
    assert r.code == 550 and r.lines[-1].startswith("5.1.7"), r
    r = m.run("srs", "forward", SES)
    assert r.returncode == 1 and r.stdout.startswith("too-long:"), r


@test
def a_store_that_cannot_be_written_gives_451_never_250():
    sink = mxtest.Sink()
    m = forwarder(sink)
    path = os.path.join(m.dir, "envelopes")
    send(m, SES, ["alice@alias.test"])
    sink.wait(1)
    # The file fills up: a new long sender's entry cannot be kept.
    m.stop()
    m.settings["envelope_store_size"] = "1M"
    m.settings["max_line_length"] = "4096"
    # The senders' made-up domain is in no DNS.
    m.settings["reject_unknown_sender_domain"] = "no"
    m.write_config()
    m.start()
    # Senders of 1900 octets: a page of the file each.
    big = [f"{'b' * 1800}{i}@{'d' * 60}.example" for i in range(400)]
    codes = []
    for s in big:
        c = m.client()
        r = c.transaction(s, ["alice@alias.test"], BODY)
        codes.append(r.code)
        c.cmd("QUIT")
        if r.code != 250:
            assert r.code == 451 and r.lines[-1].startswith("4.3.0"), r
            break
    assert 451 in codes, "the file never filled"
    # A short sender is not held back by it.
    send(m, "short@origin.test", ["alice@alias.test"])
    assert os.path.getsize(path) <= 1024 * 1024


if __name__ == "__main__":
    mxtest.main()
