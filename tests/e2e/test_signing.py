"""Forwarded mail that reaches the inbox: mxfwd's DKIM signature, its ARC
seal and the From rewrite, judged at the sink by a strict receiver
(strict_receiver.py: SPF, DKIM, ARC and DMARC with relaxed alignment, as
the big providers judge) and checked by two independent implementations,
python3-dkim and Perl's Mail::DKIM (docs/sender-checks.md, "Signing")."""

import json
import os
import re
import signal
import subprocess

import mxtest
from mxtest import test

HERE = os.path.dirname(os.path.abspath(__file__))
STRICT = os.path.join(HERE, "strict_receiver.py")
PERL_VERIFY = os.path.join(HERE, "mail_dkim_verify.pl")

FORWARDS = "alice@alias.test user@dest.test\n"
SPF_LOCAL = "v=spf1 ip4:127.0.0.1 -all"

# The six sender profiles: domain -> (DMARC record or None, signs with
# an aligned DKIM key).
PROFILES = {
    "reject-dkim.test": ("v=DMARC1; p=reject", True),
    "reject-spf.test": ("v=DMARC1; p=reject", False),
    "sub.reject-org.test": (None, False),  # the org domain's record applies
    "quarantine-spf.test": ("v=DMARC1; p=quarantine", False),
    "none.test": ("v=DMARC1; p=none", False),
    "nodmarc.test": (None, False),
}
REWRITTEN = {"reject-spf.test", "sub.reject-org.test", "quarantine-spf.test"}


class World:
    """The DNS of the test: mxfwd's signing key at sel._domainkey.sign.test,
    SPF for fwd.test (the SRS domain) and every sender, the senders' DMARC
    records and their own DKIM key."""

    def __init__(self, kind="rsa", extra=()):
        self.key = mxtest.DkimKey(kind)
        self.sender_key = mxtest.DkimKey("rsa")
        records = [
            self.key.publish("sel", "sign.test"),
            mxtest.txt_record("fwd.test", SPF_LOCAL),
            mxtest.txt_record("_dmarc.sign.test", "v=DMARC1; p=reject"),
            mxtest.txt_record("_dmarc.reject-org.test", "v=DMARC1; p=reject"),
            mxtest.txt_record("reject-org.test", SPF_LOCAL),
            self.sender_key.publish("s1", "reject-dkim.test"),
            *extra,
        ]
        for domain, (dmarc, _) in PROFILES.items():
            records.append(mxtest.txt_record(domain, SPF_LOCAL))
            if dmarc:
                records.append(mxtest.txt_record("_dmarc." + domain, dmarc))
        self.dns = mxtest.Dnsmasq(records)
        self.sink = mxtest.Sink()

    def forwarder(self, config=None):
        settings = {
            "dns_servers": self.dns.server,
            "route": [f"dest.test 127.0.0.1:{self.sink.port}",
                      f"* 127.0.0.1:{self.sink.port}"],
            "outbound_tls": "off",
            "retry_schedule": "1s",
            "signing_key": self.key.pem,
            "signing_selector": "sel",
            "signing_domain": "sign.test",
        }
        settings.update(config or {})
        settings = {k: v for k, v in settings.items() if v is not None}
        return mxtest.Mxfwd(forwards=FORWARDS, config=settings)


def message(domain, name="Sender Name", extra=b""):
    return (f"From: {name} <author@{domain}>\r\nTo: alice@alias.test\r\n"
            f"Subject: hello from {domain}\r\nDate: Mon, 07 Dec 2026 10:00:00 +0000\r\n"
            f"Message-ID: <m1@{domain}>\r\n").encode() + extra + b"\r\nHello.\r\n"


def send(m, sender, data):
    c = m.client()
    r = c.transaction(sender, ["alice@alias.test"], data)
    assert r.code == 250, r
    c.cmd("QUIT")
    return re.search(r"queued as ([0-9A-F]+)", r.text).group(1)


def strict(world, tx):
    r = subprocess.run([mxtest.DEBIAN_PYTHON, STRICT, "--dns-port", str(world.dns.port),
                        "--client-ip", "127.0.0.1", "--mail-from", tx.mail_from],
                       input=tx.data, capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr.decode()
    return json.loads(r.stdout)


def perl(world, data):
    r = subprocess.run(["perl", PERL_VERIFY, str(world.dns.port)], input=data,
                       capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr.decode()
    dkim = re.findall(r"^dkim (\S*) (\S+)$", r.stdout.decode(), re.M)
    arc = re.search(r"^arc (\S+)$", r.stdout.decode(), re.M).group(1)
    return dkim, arc


def headers_of(data):
    return data.split(b"\r\n\r\n", 1)[0].decode("utf-8", "replace")


def field(data, name):
    """The first field called name (unfolded, trimmed), or None."""
    for f in re.split(r"\r\n(?![ \t])", headers_of(data)):
        fname, _, value = f.partition(":")
        if fname.strip().lower() == name.lower():
            return re.sub(r"\r\n[ \t]", " ", value).strip()
    return None


@test
def every_sender_profile_reaches_the_inbox_of_a_strict_receiver():
    world = World()
    m = world.forwarder()
    for domain, (_, signed) in PROFILES.items():
        data = message(domain)
        if signed:
            data = mxtest.dkim_sign(data, world.sender_key, "s1", domain)
        send(m, f"bounce@{domain}", data)
    txs = world.sink.wait(len(PROFILES))
    assert len(txs) == len(PROFILES)
    for tx in txs:
        domain = re.search(r"=([a-z.-]+\.test)=bounce@fwd\.test", tx.mail_from).group(1)
        verdict = strict(world, tx)
        # SPF passes for the SRS sender, every DKIM signature verifies,
        # the seal validates, and DMARC passes or asks for nothing.
        assert verdict["spf"] == "pass", (domain, verdict)
        assert verdict["dkim"] and all(s["ok"] for s in verdict["dkim"]), (domain, verdict)
        assert any(s["d"] == "sign.test" for s in verdict["dkim"]), (domain, verdict)
        assert verdict["arc"] == "pass", (domain, verdict)
        assert verdict["fate"] == "inbox", (domain, verdict)
        assert verdict["dmarc"] == "pass" or verdict["policy"] in (None, "none"), (domain, verdict)
        # Only the SPF-only reject and quarantine senders are rewritten.
        rewritten = field(tx.data, "From").endswith("<noreply@sign.test>")
        assert rewritten == (domain in REWRITTEN), (domain, field(tx.data, "From"))
        if rewritten:
            assert verdict["from_domain"] == "sign.test" and verdict["aligned_by"] == "dkim"
            assert field(tx.data, "Reply-To") == f"Sender Name <author@{domain}>"
            assert field(tx.data, "X-Original-From") == f"Sender Name <author@{domain}>"
            assert field(tx.data, "From") == \
                '"Sender Name" "via alice@alias.test" <noreply@sign.test>' or \
                field(tx.data, "From") == 'Sender Name "via alice@alias.test" <noreply@sign.test>'
            assert headers_of(tx.data).count("\r\nFrom:") + \
                headers_of(tx.data).startswith("From:") == 1
        else:
            # Untouched: the message's bytes follow mxfwd's fields as they came.
            assert tx.data.endswith(b"\r\nHello.\r\n")
            assert field(tx.data, "From") == f"Sender Name <author@{domain}>"
        # The second implementation: Mail::DKIM.
        dkim, arc = perl(world, tx.data)
        assert dkim and all(result == "pass" for _, result in dkim), (domain, dkim)
        assert arc == "pass", (domain, arc)
    for domain in REWRITTEN:
        m.wait_log(rf"From rewritten: DMARC p=(reject|quarantine)")


@test
def signatures_are_made_once_and_a_retry_sends_the_same_bytes():
    world = World()
    world.sink.replies = {"user@dest.test": ["451 4.3.0 not now"]}
    m = world.forwarder()
    send(m, "bounce@reject-spf.test", message("reject-spf.test"))
    mxtest.wait_until(lambda: len(world.sink.transactions) == 1, what="the retry", timeout=30)
    tx = world.sink.transactions[0]
    assert strict(world, tx)["fate"] == "inbox"
    assert len(world.sink.attempts) == 2
    # The attempt refused at RCPT sent no data; the stored signature is
    # the one the retry carried: t= is the accept time, not the retry's.
    sig = field(tx.data, "DKIM-Signature")
    assert sig is not None and "d=sign.test" in sig.replace(" ", "")


def through_an_upstream_sealer(tamper=False):
    """A DKIM-signed message sealed by upstream.test (python3-dkim's
    arc_sign), changed after the seal if tamper, forwarded: the world and
    what the sink got."""
    upstream = mxtest.DkimKey("rsa")
    world = World(extra=[upstream.publish("up", "upstream.test")])
    m = world.forwarder()
    data = message("reject-dkim.test")
    data = mxtest.dkim_sign(data, world.sender_key, "s1", "reject-dkim.test")
    sealed = arc_sign(data, upstream, "up", "upstream.test", world)
    if tamper:
        sealed = sealed.replace(b"Hello.", b"Jello.")
    send(m, "bounce@reject-dkim.test", sealed)
    return world, world.sink.wait(1)[0]


@test
def an_upstream_arc_chain_is_extended_to_i2():
    world, tx = through_an_upstream_sealer()
    assert "arc=pass" in field(tx.data, "Authentication-Results")
    assert re.search(r"^ARC-Seal: i=2;", headers_of(tx.data), re.M), headers_of(tx.data)
    assert "cv=pass" in field(tx.data, "ARC-Seal").replace(" ", "")
    assert strict(world, tx)["arc"] == "pass"
    assert perl(world, tx.data)[1] == "pass"


@test
def a_tampered_upstream_chain_is_sealed_as_failed():
    world, tx = through_an_upstream_sealer(tamper=True)
    assert "arc=fail" in field(tx.data, "Authentication-Results")
    assert "cv=fail" in field(tx.data, "ARC-Seal").replace(" ", "")
    assert strict(world, tx)["arc"] != "pass"
    assert perl(world, tx.data)[1] == "fail"


@test
def an_ed25519_key_signs_and_seals():
    world = World(kind="ed25519")
    m = world.forwarder()
    send(m, "bounce@reject-spf.test", message("reject-spf.test"))
    tx = world.sink.wait(1)[0]
    verdict = strict(world, tx)
    # python3-dkim verifies Ed25519 DKIM; neither it nor Mail::DKIM here
    # validates Ed25519 ARC, which mxfwd's own verifier does (unit tests).
    assert verdict["dkim"] and all(s["ok"] for s in verdict["dkim"]), verdict
    assert verdict["fate"] == "inbox", verdict
    assert "a=ed25519-sha256" in field(tx.data, "DKIM-Signature").replace(" ", "")


@test
def without_a_key_nothing_is_signed_or_rewritten():
    world = World()
    m = world.forwarder({"signing_key": None, "signing_selector": None})
    send(m, "bounce@reject-spf.test", message("reject-spf.test"))
    tx = world.sink.wait(1)[0]
    assert field(tx.data, "DKIM-Signature") is None and field(tx.data, "ARC-Seal") is None
    assert tx.data.endswith(message("reject-spf.test"))
    # What a strict receiver does with it: the reason for the key.
    assert strict(world, tx)["fate"] == "rejected"


@test
def settings_turn_each_part_off():
    world = World()
    m = world.forwarder({"dkim_sign": "no", "arc_seal": "no", "from_rewrite": "off"})
    send(m, "bounce@none.test", message("none.test"))
    send(m, "bounce@reject-spf.test", message("reject-spf.test"))
    txs = world.sink.wait(2)
    for tx in txs:
        assert field(tx.data, "DKIM-Signature") is None and field(tx.data, "ARC-Seal") is None
        assert field(tx.data, "Reply-To") is None
    world2 = World()
    m2 = world2.forwarder({"from_rewrite": "always", "arc_seal": "no"})
    send(m2, "bounce@none.test", message("none.test", name=""))
    tx = world2.sink.wait(1)[0]
    assert field(tx.data, "From") == '"author@none.test via alice@alias.test" <noreply@sign.test>'
    assert strict(world2, tx)["dmarc"] == "pass"


@test
def a_bad_key_at_reload_keeps_the_old_one():
    world = World()
    m = world.forwarder()
    with open(world.key.pem, "w") as f:
        f.write("not a key\n")
    os.kill(m.proc.proc.pid, signal.SIGHUP)
    m.wait_log(r"not a PEM private key")
    m.wait_log(r"not reloaded, the previous signing key stays in use")
    send(m, "bounce@reject-spf.test", message("reject-spf.test"))
    tx = world.sink.wait(1)[0]
    assert strict(world, tx)["fate"] == "inbox"


@test
def dsns_are_signed_too():
    world = World()
    world.sink.replies = {"user@dest.test": "550 5.1.1 no such user"}
    m = world.forwarder()
    send(m, "author@none.test", message("none.test"))
    dsn = world.sink.wait(1)[0]
    assert dsn.mail_from == "" and dsn.rcpts == ["author@none.test"], (dsn.mail_from, dsn.rcpts)
    verdict = strict(world, dsn)
    assert verdict["dkim"] and all(s["ok"] for s in verdict["dkim"]), verdict
    assert any(s["d"] == "sign.test" for s in verdict["dkim"])


def arc_sign(data, key, selector, domain, world):
    """An upstream sealer's ARC set on data, made by python3-dkim."""
    script = (
        "import sys, dkim\n"
        "msg = sys.stdin.buffer.read()\n"
        "key = open(sys.argv[1], 'rb').read()\n"
        "h = dkim.arc_sign(msg, sys.argv[2].encode(), sys.argv[3].encode(), key,\n"
        "                  b'mx.' + sys.argv[3].encode(),\n"
        "                  include_headers=[b'from', b'to', b'subject', b'date'],\n"
        "                  linesep=b'\\r\\n')\n"
        "sys.stdout.buffer.write(b''.join(h) + msg)\n")
    # The upstream's own results, which its seal carries.
    data = (f"Authentication-Results: mx.{domain}; spf=pass smtp.mailfrom=reject-dkim.test\r\n"
            .encode() + data)
    r = subprocess.run([mxtest.DEBIAN_PYTHON, "-c", script, key.pem, selector, domain],
                       input=data, capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr.decode()
    return r.stdout


if __name__ == "__main__":
    mxtest.main()
