"""The admin commands for the DNS side of forwarding and signing, against
dnsmasq zones: doctor (right, and wrong in each way it checks), explain
(DMARC policies and mxfwd's actions per configuration), dkim-keygen, and
check-config on signing keys."""

import base64
import os
import re
import shutil
import socket
import stat
import subprocess
import tempfile
import time

import mxtest
from mxtest import test

HOST, IP, SRS = "mx.fwd.test", "192.0.2.10", "fwd.test"
FORWARDS = """\
alice@alias.test        alice@example.com
postmaster@alias.test   admin@example.com
postmaster@mx.fwd.test  admin@example.com
postmaster@fwd.test     admin@example.com
"""

# Files kept for the whole run (a test's own go when it ends).
KEEP = tempfile.mkdtemp(prefix="mxfwd-doctor-")
_key = None


def signing_key():
    """One RSA key for the whole file (openssl takes a moment per key)."""
    global _key
    if _key is None:
        _key = mxtest.DkimKey("rsa")
        # DkimKey's directory goes with the test that made it: keep a copy.
        path = os.path.join(KEEP, "key.pem")
        with open(_key.private, "rb") as src, open(path, "wb") as dst:
            dst.write(src.read())
        _key.private = path
    return _key


def records(**change):
    """The zone of a forwarder with everything right, by name; a change
    replaces a record (None removes it)."""
    key = signing_key()
    zone = {
        "mx_alias": "--mx-host=alias.test,mx.fwd.test,10",
        "mx_srs": "--mx-host=fwd.test,mx.fwd.test,10",
        "host": f"--host-record={HOST},{IP}",
        "spf_srs": mxtest.txt_record(SRS, f"v=spf1 ip4:{IP} -all"),
        "spf_helo": mxtest.txt_record(HOST, "v=spf1 a -all"),
        "dkim": key.publish("sel", SRS),
        "dmarc": mxtest.txt_record(f"_dmarc.{SRS}", "v=DMARC1; p=none"),
    }
    zone.update(change)
    return [r for r in zone.values() if r is not None]


def forwarder(dns, forwards=FORWARDS, signing=True, **config):
    settings = {"dns_servers": dns.server}
    if signing:
        settings.update({"signing_key": signing_key().private, "signing_selector": "sel"})
    settings.update(config)
    return mxtest.Mxfwd(forwards=forwards, config=settings, start=False)


def doctor(zone=None, timeout=mxtest.TIMEOUT, **kwargs):
    dns = mxtest.Dnsmasq(zone if zone is not None else records())
    r = forwarder(dns, **kwargs).run("doctor", timeout=timeout)
    assert r.stderr == "", r.stderr
    return r


def lines(r):
    return r.stdout.splitlines()


def problems(r):
    return [l for l in lines(r) if l.startswith("problem  ")]


def assert_problem(r, pattern, count=1):
    """Exit 1, and exactly count problem lines, the first matching."""
    assert r.returncode == 1, r.stdout
    found = problems(r)
    assert len(found) == count, r.stdout
    assert re.fullmatch(pattern, found[0]), f"{found[0]!r} !~ {pattern!r}\n{r.stdout}"


# ---- doctor ------------------------------------------------------------------

@test
def doctor_all_right():
    r = doctor()
    assert r.returncode == 0, r.stdout
    assert all(l.startswith("ok       ") for l in lines(r)), r.stdout
    assert lines(r) == [
        "ok       MX alias.test -> mx.fwd.test",
        "ok       MX mx.fwd.test: none: mail goes to its own address (RFC 5321 5.1)",
        "ok       MX fwd.test -> mx.fwd.test",
        "ok       A/AAAA mx.fwd.test -> 192.0.2.10",
        "ok       PTR 192.0.2.10 -> mx.fwd.test",
        "ok       SPF fwd.test allows 192.0.2.10 (srs_domain: the envelope sender of forwarded mail)",
        "ok       SPF mx.fwd.test allows 192.0.2.10 (HELO name: mxfwd's own bounces come from <>)",
        f"ok       DKIM sel._domainkey.fwd.test: the key of {signing_key().private} (RSA 2048 bits)",
        'ok       DMARC fwd.test: "v=DMARC1; p=none"',
        "ok       postmaster@alias.test -> admin@example.com",
        "ok       postmaster@mx.fwd.test -> admin@example.com",
        "ok       postmaster@fwd.test -> admin@example.com",
    ], r.stdout


@test
def doctor_without_signing_skips_dkim_and_dmarc():
    r = doctor(records(dkim=None, dmarc=None), signing=False)
    assert r.returncode == 0, r.stdout
    assert "skipped  DKIM: signing_key is not set: forwarded mail is not DKIM-signed or " \
           "ARC-sealed, and From is never rewritten" in lines(r), r.stdout
    assert "skipped  DMARC fwd.test: signing is off (mxfwd check-config notes it)" in lines(r), \
        r.stdout
    assert not problems(r)


@test
def doctor_mx_elsewhere_or_missing():
    r = doctor(records(mx_alias="--mx-host=alias.test,mx.other.test,10"))
    assert_problem(r, r"problem  MX alias\.test -> mx\.other\.test, not mx\.fwd\.test: "
                      r"publish alias\.test\. MX 10 mx\.fwd\.test\.")
    r = doctor(records(mx_srs=None))
    assert_problem(r, r"problem  MX fwd\.test: no MX record \(Host found but no data record of "
                      r"requested type\): publish fwd\.test\. MX 10 mx\.fwd\.test\.")


@test
def doctor_hostname_without_address():
    r = doctor(records(host=None))
    assert_problem(r, r"problem  A/AAAA mx\.fwd\.test: no address: publish mx\.fwd\.test\. A "
                      r"\(and AAAA\) with this host's addresses")
    assert "skipped  PTR, SPF fwd.test: mx.fwd.test has no address to check" in lines(r)


@test
def doctor_ptr_missing():
    # An A record and no PTR.
    r = doctor(records(host=f"--address=/{HOST}/{IP}"))
    assert_problem(r, r"problem  PTR 192\.0\.2\.10: none \(hostname mx\.fwd\.test\): publish "
                      r"10\.2\.0\.192\.in-addr\.arpa\. PTR mx\.fwd\.test\.")


@test
def doctor_ptr_pointing_elsewhere():
    # The PTR names another host, which has the address (confirmed)...
    r = doctor(records(host=f"--address=/{HOST}/{IP}") + [f"--host-record=other.test,{IP}"])
    assert_problem(r, r"problem  PTR 192\.0\.2\.10 -> other\.test \(hostname mx\.fwd\.test\): "
                      r"publish 10\.2\.0\.192\.in-addr\.arpa\. PTR mx\.fwd\.test\.")
    # ... or a name that does not map back.
    r = doctor(records(host=f"--address=/{HOST}/{IP}") +
               ["--ptr-record=10.2.0.192.in-addr.arpa,nowhere.test"])
    assert_problem(r, r"problem  PTR 192\.0\.2\.10 -> nowhere\.test, which does not resolve back "
                      r"to 192\.0\.2\.10 \(hostname mx\.fwd\.test\): publish "
                      r"10\.2\.0\.192\.in-addr\.arpa\. PTR mx\.fwd\.test\.")


@test
def doctor_spf_not_covering_the_address():
    r = doctor(records(spf_srs=mxtest.txt_record(SRS, "v=spf1 ip4:192.0.2.99 -all")))
    assert_problem(r, r"problem  SPF fwd\.test: fail for 192\.0\.2\.10 \(srs_domain: the envelope "
                      r"sender of forwarded mail\): add ip4:192\.0\.2\.10 to fwd\.test's SPF record")
    r = doctor(records(spf_helo=mxtest.txt_record(HOST, "v=spf1 ip4:192.0.2.99 ~all")))
    assert_problem(r, r"problem  SPF mx\.fwd\.test: softfail for 192\.0\.2\.10 \(HELO name: .*\): "
                      r"add ip4:192\.0\.2\.10 to mx\.fwd\.test's SPF record")


@test
def doctor_spf_missing():
    r = doctor(records(spf_srs=None, spf_helo=None))
    assert_problem(r, r'problem  SPF fwd\.test: no SPF record \(srs_domain: .*\): publish '
                      r'fwd\.test\. TXT "v=spf1 ip4:192\.0\.2\.10 -all"', count=2)
    assert re.fullmatch(r'problem  SPF mx\.fwd\.test: no SPF record \(HELO name: .*\): publish '
                        r'mx\.fwd\.test\. TXT "v=spf1 a -all"', problems(r)[1]), r.stdout


def published_record(line):
    """The TXT value of the first zone-file line in text, strings joined."""
    m = re.search(r'\. TXT ((?:"[^"]*" ?)+)', line)
    assert m, line
    return "".join(re.findall(r'"([^"]*)"', m.group(1)))


@test
def doctor_dkim_record_missing():
    r = doctor(records(dkim=None))
    assert_problem(r, r'problem  DKIM sel\._domainkey\.fwd\.test: no record: publish '
                      r'sel\._domainkey\.fwd\.test\. TXT "v=DKIM1; k=rsa; p=.*"')
    # Strings of at most 255 octets, joined: the key's record.
    assert all(len(s) <= 255 for s in re.findall(r'"([^"]*)"', problems(r)[0]))
    assert published_record(problems(r)[0]) == signing_key().record


@test
def doctor_dkim_record_of_another_key():
    other = mxtest.DkimKey("rsa")
    r = doctor(records(dkim=other.publish("sel", SRS)))
    assert_problem(r, rf"problem  DKIM sel\._domainkey\.fwd\.test: not the key of "
                      rf"{re.escape(signing_key().private)} \(a different key\): publish "
                      r'sel\._domainkey\.fwd\.test\. TXT "v=DKIM1; k=rsa; p=.*"')
    assert published_record(problems(r)[0]) == signing_key().record
    ed = mxtest.DkimKey("ed25519")
    r = doctor(records(dkim=ed.publish("sel", SRS)))
    assert_problem(r, r"problem  DKIM sel\._domainkey\.fwd\.test: not the key of .* \(the record "
                      r"is for an Ed25519 key, this key is RSA\): publish .*")


@test
def doctor_dmarc_missing():
    r = doctor(records(dmarc=None))
    assert_problem(r, r'problem  DMARC fwd\.test: no record: publish _dmarc\.fwd\.test\. TXT '
                      r'"v=DMARC1; p=none; rua=mailto:postmaster@fwd\.test" \(p=none asks '
                      r'receivers for nothing; .*\)')


@test
def doctor_postmaster_not_routable():
    forwards = "\n".join(l for l in FORWARDS.splitlines() if not l.startswith("postmaster@mx.")) + "\n"
    r = doctor(forwards=forwards)
    assert_problem(r, r"problem  postmaster@mx\.fwd\.test: refused \(554 5\.7\.1 "
                      r"<postmaster@mx\.fwd\.test>: Relay access denied\): add "
                      r"postmaster@mx\.fwd\.test to .*/forwards \(RFC 5321 4\.5\.1\)")
    forwards = "\n".join(l for l in FORWARDS.splitlines() if not l.startswith("postmaster@alias")) + "\n"
    r = doctor(forwards=forwards)
    assert_problem(r, r"problem  postmaster@alias\.test: refused \(550 5\.1\.1 .*User unknown\): "
                      r"add postmaster@alias\.test to .*")


@test
def doctor_servfail_zone():
    start = time.monotonic()
    r = doctor(records(mx_alias=mxtest.servfail_zone("alias.test")))
    assert_problem(r, r"problem  MX alias\.test: Host not found, try again \(server failure\)")
    assert time.monotonic() - start < 10


@test
def doctor_timeout_is_bounded():
    # A zone whose server never answers: the resolver's tries, then a problem.
    dead = mxtest.free_port(socket.SOCK_DGRAM)
    start = time.monotonic()
    r = doctor(records(mx_alias=f"--server=/alias.test/127.0.0.1#{dead}"), timeout=60)
    assert_problem(r, r"problem  MX alias\.test: Host not found, try again \(timeout\)")
    assert time.monotonic() - start < 30


# ---- explain -----------------------------------------------------------------

EXPLAIN_ZONE = [
    mxtest.txt_record("reject.test", "v=spf1 ip4:192.0.2.1 -all"),
    mxtest.txt_record("_dmarc.reject.test", "v=DMARC1; p=reject; sp=quarantine"),
    mxtest.txt_record("sub.reject.test", "v=spf1 -all"),
    mxtest.txt_record("quar.test", "v=spf1 ~all"),
    mxtest.txt_record("_dmarc.quar.test", "v=DMARC1; p=quarantine; pct=50"),
    mxtest.txt_record("sub.quar.test", "v=spf1 -all"),
    mxtest.txt_record("none.test", "v=spf1 -all"),
    mxtest.txt_record("_dmarc.none.test", "v=DMARC1; p=none"),
    mxtest.txt_record("nodmarc.test", "v=spf1 -all"),
    "--mx-host=nospf.test,mx.nospf.test,10",
]


def explain(domain, signing=True, **config):
    dns = mxtest.Dnsmasq(EXPLAIN_ZONE)
    r = forwarder(dns, signing=signing, **config).run("explain", domain)
    assert r.stderr == "", r.stderr
    r.text = " ".join(r.stdout.split())  # the paragraphs unwrapped
    return r


def says(r, *sentences):
    assert r.returncode == 0, r.stdout
    for s in sentences:
        assert s in r.text, f"{s!r} not in:\n{r.stdout}"


def does_not_say(r, *sentences):
    for s in sentences:
        assert s not in r.text, f"{s!r} in:\n{r.stdout}"


@test
def explain_reject():
    r = explain("reject.test")
    says(r, 'SPF "v=spf1 ip4:192.0.2.1 -all"',
         'DMARC _dmarc.reject.test: "v=DMARC1; p=reject; sp=quarantine"',
         "policy reject (p=): receivers are asked to refuse mail from reject.test that fails DMARC",
         "DKIM needed: forwarded, its mail passes DMARC only with a valid DKIM signature aligned "
         "with reject.test, as SPF no longer aligns once mxfwd rewrites the envelope sender to "
         "SRS0=...@fwd.test",
         "refused a message from reject.test that fails DMARC at mxfwd (no aligned SPF pass and no "
         "valid aligned DKIM signature) gets 550 5.7.1 and is never forwarded "
         "(dmarc_action = enforce, policy reject)",
         "signed every forwarded message gets mxfwd's DKIM signature for fwd.test (s=sel; "
         "dkim_sign = yes)",
         "sealed with ARC, always (arc_seal = yes): every forwarded message, as a courtesy to "
         "receivers",
         "From rewritten to noreply@fwd.test (from_rewrite = dmarc, policy reject) only for a "
         "message with no valid DKIM signature aligned with reject.test",
         "explain cannot know in advance whether a message has one: a message that does is "
         "forwarded with its From untouched",
         "in short refused if it fails DMARC at mxfwd; otherwise forwarded, DKIM-signed, sealed "
         "with ARC, From rewritten unless DKIM-signed in alignment")


@test
def explain_quarantine():
    r = explain("quar.test")
    says(r, "policy quarantine (p=): receivers are asked to treat mail from quar.test that fails "
            "DMARC as suspicious",
         "pct=50: receivers apply it to 50% of the mail failing DMARC",
         "DKIM needed",
         "refused never for DMARC: a message failing it is accepted and marked dmarc=fail",
         "From rewritten to noreply@fwd.test (from_rewrite = dmarc, policy quarantine) only for a "
         "message with no valid DKIM signature aligned with quar.test")
    does_not_say(r, "550 5.7.1")


@test
def explain_none_and_no_dmarc():
    for domain, dmarc in (("none.test", 'DMARC _dmarc.none.test: "v=DMARC1; p=none"'),
                          ("nodmarc.test", "DMARC none: no record at _dmarc.nodmarc.test")):
        r = explain(domain)
        says(r, dmarc,
             f"policy none",
             f"DKIM not needed to be delivered: {domain} asks receivers for nothing",
             f"refused never for DMARC: {domain} asks for nothing",
             f"From untouched: {domain} asks for nothing (from_rewrite = dmarc rewrites only under "
             "p=quarantine or p=reject)",
             "in short forwarded, DKIM-signed, sealed with ARC")
        does_not_say(r, "From rewritten", "DKIM needed")
    r = explain("nodmarc.test", signing=False)
    says(r, "in short forwarded untouched")
    r = explain("nospf.test")
    says(r, "SPF none", "DMARC none")


@test
def explain_subdomain_inherits_the_organizational_domain():
    r = explain("sub.reject.test")
    says(r, "sub.reject.test (organizational domain reject.test)",
         "DMARC none at _dmarc.sub.reject.test; reject.test's applies (its organizational domain): "
         '_dmarc.reject.test: "v=DMARC1; p=reject; sp=quarantine"',
         "policy quarantine (sp= of reject.test, for its subdomains)",
         "refused never for DMARC",
         "From rewritten to noreply@fwd.test (from_rewrite = dmarc, policy quarantine)")
    # Without sp=, p= applies to subdomains too.
    r = explain("sub.quar.test")
    says(r, "policy quarantine (p= of quar.test, which has no sp= for its subdomains)")
    # An address names its domain.
    r = explain("ceo@sub.reject.test")
    says(r, "policy quarantine (sp= of reject.test")


@test
def explain_from_rewrite_modes_and_arc():
    r = explain("reject.test", from_rewrite="off")
    says(r, "From never rewritten (from_rewrite = off): a message from reject.test without a "
            "valid aligned DKIM signature then fails DMARC at the receiver, which reject.test asks "
            "to reject it")
    r = explain("none.test", from_rewrite="always", from_rewrite_address="fwd@fwd.test")
    says(r, "From always rewritten to fwd@fwd.test (from_rewrite = always), whatever none.test "
            "publishes", "in short forwarded, DKIM-signed, sealed with ARC, From rewritten")
    r = explain("reject.test", arc_seal="no", dkim_sign="no")
    says(r, "sealed no (arc_seal = no)", "signed no: mxfwd adds no DKIM signature of its own")
    does_not_say(r, "sealed with ARC")
    r = explain("reject.test", signing=False)
    says(r, "signing signing_key is not set: forwarded mail is not DKIM-signed or ARC-sealed, and "
            "From is never rewritten",
         "From never rewritten (signing is off): a message from reject.test without a valid "
         "aligned DKIM signature then fails DMARC at the receiver",
         "in short refused if it fails DMARC at mxfwd; otherwise forwarded untouched")


@test
def explain_dmarc_action():
    r = explain("reject.test", dmarc_action="tag")
    says(r, "refused never for DMARC (dmarc_action = tag): a message failing it is marked "
            "dmarc=fail in Authentication-Results and forwarded")
    does_not_say(r, "550 5.7.1")
    r = explain("reject.test", dmarc_action="off")
    says(r, "refused never for DMARC: mxfwd does not check it (dmarc_action = off)")


@test
def explain_unusable_domain_or_dns_failure():
    r = explain("nothing.test")
    assert r.returncode == 1 and "nothing.test does not exist (Host not found)" in r.text, r.stdout
    dns = mxtest.Dnsmasq(EXPLAIN_ZONE + [mxtest.servfail_zone("broken.test")])
    r = forwarder(dns).run("explain", "broken.test")
    assert r.returncode == 1, r.stdout
    assert "broken.test: Host not found, try again (server failure)" in r.stdout, r.stdout
    r = forwarder(dns).run("explain", "not a domain")
    assert r.returncode == 1 and "'not a domain' is not a mail domain" in r.stderr, r.stderr


# ---- dkim-keygen -----------------------------------------------------------------

def public_der(pem_path):
    return subprocess.run(["openssl", "pkey", "-in", pem_path, "-pubout", "-outform", "DER"],
                          check=True, capture_output=True).stdout


@test
def keygen_writes_a_new_key_and_its_record():
    dns = mxtest.Dnsmasq()
    m = forwarder(dns, signing=False)
    path = os.path.join(m.dir, "new.key")
    r = m.run("dkim-keygen", "-o", path, timeout=30)
    assert r.returncode == 0, r.stdout + r.stderr
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    with open(path) as f:
        assert f.read().startswith("-----BEGIN PRIVATE KEY-----\n")  # PKCS#8
    out = r.stdout.splitlines()
    assert out[0] == f"{path}: a new RSA key of 2048 bits, mode 0600", r.stdout
    assert "a TXT record at SELECTOR._domainkey.fwd.test" in r.stdout, r.stdout
    # The record, both ways it is printed, is the key's public half.
    value = next(l for l in out if l.startswith("v=DKIM1; "))
    zone = next(l for l in out if l.startswith("SELECTOR._domainkey.fwd.test. TXT "))
    assert published_record(zone) == value
    fields = dict(f.strip().split("=", 1) for f in value.split(";"))
    assert fields["k"] == "rsa"
    assert base64.b64decode(fields["p"]) == public_der(path)
    # check-config accepts it as a signing key.
    m.settings.update({"signing_key": path, "signing_selector": "sel"})
    m.write_config()
    r = m.run("check-config")
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.rstrip().endswith(f"; {path}: RSA key of 2048 bits"), r.stdout


@test
def keygen_never_overwrites_and_defaults_to_signing_key():
    dns = mxtest.Dnsmasq()
    m = forwarder(dns, signing=False)
    path = os.path.join(m.dir, "dkim.key")
    m.settings.update({"signing_key": path, "signing_selector": "s2026"})
    m.write_config()
    r = m.run("dkim-keygen", timeout=30)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "a TXT record at s2026._domainkey.fwd.test" in r.stdout, r.stdout
    with open(path, "rb") as f:
        before = f.read()
    r = m.run("dkim-keygen", timeout=30)
    assert r.returncode == 1
    assert r.stderr == f"mxfwd: {path} exists: not replaced (mail signed with a key in use would " \
                       "stop verifying); choose another path with -o\n", r.stderr
    with open(path, "rb") as f:
        assert f.read() == before
    # Neither -o nor signing_key: where would it go?
    m2 = forwarder(dns, signing=False)
    r = m2.run("dkim-keygen")
    assert r.returncode == 2 and "say where the key goes with -o PATH" in r.stderr, r.stderr
    # -o is dkim-keygen's alone.
    r = m2.run("doctor", "-o", path)
    assert r.returncode == 2 and "-o is for dkim-keygen" in r.stderr, r.stderr


# ---- check-config and the signing key ------------------------------------------

def openssl_key(path, *genpkey):
    subprocess.run(["openssl", "genpkey", *genpkey, "-out", path], check=True, capture_output=True)
    return path


@test
def check_config_signing_key_problems():
    dns = mxtest.Dnsmasq()
    m = forwarder(dns, signing=False)
    r = m.run("check-config")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[-1] == "note: signing_key is not set: forwarded mail is not " \
        "DKIM-signed or ARC-sealed, and From is never rewritten", r.stdout
    not_pem = m.write_file("not.pem", "hello\n", mode=0o600)
    cases = [
        (os.path.join(m.dir, "missing.key"), "cannot read: No such file or directory"),
        (m.dir, "cannot read: not a regular file"),
        (not_pem, "not a PEM private key"),
        (openssl_key(os.path.join(m.dir, "ec.key"), "-algorithm", "EC", "-pkeyopt",
                     "ec_paramgen_curve:P-256"), "not an RSA or Ed25519 key"),
        (openssl_key(os.path.join(m.dir, "small.key"), "-algorithm", "RSA", "-pkeyopt",
                     "rsa_keygen_bits:1024"), "RSA key of 1024 bits: signing needs at least 2048"),
    ]
    for path, why in cases:
        m.settings.update({"signing_key": path, "signing_selector": "sel"})
        m.write_config()
        r = m.run("check-config")
        assert r.returncode == 1, (path, r.stdout)
        assert r.stderr == f"{path}: signing_key: {why}\n", r.stderr
        assert r.stdout == "", r.stdout
        # doctor says the same, and goes on with the rest.
        r = m.run("doctor")
        assert f"problem  DKIM {path}: {why}" in r.stdout.splitlines(), r.stdout


if __name__ == "__main__":
    try:
        mxtest.main()
    finally:
        shutil.rmtree(KEEP, ignore_errors=True)
