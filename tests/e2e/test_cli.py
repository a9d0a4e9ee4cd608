"""The mxfwd command line: check-config, resolve, help, usage errors."""

import os
import re
import shutil

import mxtest
from mxtest import MXFWD, test

SRC = os.environ.get("MXFWD_SOURCE_ROOT", os.path.join(os.path.dirname(__file__), "../.."))


def mxfwd(*args, cwd=None):
    return mxtest.run([MXFWD, *args], cwd=cwd)


def sample_tree():
    """A copy of the sample etc/ in a temporary directory, used as the cwd."""
    d = mxtest.tempdir()
    shutil.copytree(os.path.join(SRC, "etc"), os.path.join(d, "etc"))
    os.chmod(os.path.join(d, "etc", "srs.secrets"), 0o600)
    return d


@test
def check_config_accepts_the_sample():
    d = sample_tree()
    r = mxfwd("check-config", "-c", "etc/mxfwd.conf", cwd=d)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stderr == "" or "warning" in r.stderr, r.stderr


@test
def the_samples_values_are_warned_about_and_refused_on_port_25():
    d = sample_tree()
    r = mxfwd("check-config", "-c", "etc/mxfwd.conf", cwd=d)
    assert r.returncode == 0, r.stdout + r.stderr
    warnings = [line for line in r.stderr.splitlines() if line.startswith("warning: ")]
    for words in ("hostname 'mx.fwd.test' is a name reserved for examples",
                  "srs_domain 'fwd.test' is a name reserved for examples",
                  "the public sample secret",
                  "aliases in 'alias.test', a domain reserved for examples"):
        assert any(words in w for w in warnings), (words, r.stderr)
    # A short hostname is no name at all for a receiver.
    conf = os.path.join(d, "etc", "mxfwd.conf")
    with open(conf) as f:
        text = f.read()
    with open(conf, "w") as f:
        f.write(text.replace("mx.fwd.test", "mx").replace("127.0.0.1:2525", "127.0.0.1:25"))
    r = mxfwd("check-config", "-c", "etc/mxfwd.conf", cwd=d)
    assert "hostname 'mx' is not a fully qualified domain name" in r.stderr, r.stderr
    # serve on port 25 refuses them all, before it listens.
    r = mxfwd("serve", "-c", "etc/mxfwd.conf", cwd=d)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "not listening on port 25 with the sample configuration's values" in r.stderr, r.stderr


@test
def check_config_loads_the_tls_certificate_and_key():
    d = sample_tree()
    cert, key = mxtest.tls_certificate(d, "mx.fwd.test")
    other_cert, other_key = mxtest.tls_certificate(mxtest.tempdir(), "other.test")
    conf = os.path.join(d, "etc", "mxfwd.conf")
    with open(conf, "a") as f:
        f.write(f"tls_cert = {cert}\ntls_key = {other_key}\n")
    r = mxfwd("check-config", "-c", "etc/mxfwd.conf", cwd=d)
    assert r.returncode == 1, r.stdout + r.stderr
    assert f"{other_key}: key values mismatch" in r.stderr, r.stderr
    with open(conf) as f:
        text = f.read().replace(other_key, os.path.join(d, "missing.pem"))
    with open(conf, "w") as f:
        f.write(text)
    r = mxfwd("check-config", "-c", "etc/mxfwd.conf", cwd=d)
    assert r.returncode == 1 and "missing.pem" in r.stderr, r.stdout + r.stderr


@test
def check_config_reports_every_broken_line():
    d = sample_tree()
    conf = os.path.join(d, "etc", "mxfwd.conf")
    with open(conf) as f:
        lines = f.read().splitlines()
    lines[3] = "listen = 127.0.0.1"            # line 4: no port
    lines.append("colour = blue")               # unknown key
    lines.append("timeout = soon")              # bad duration
    with open(conf, "w") as f:
        f.write("\n".join(lines) + "\n")
    r = mxfwd("check-config", "-c", "etc/mxfwd.conf", cwd=d)
    assert r.returncode == 1
    errors = [l for l in r.stderr.splitlines() if l.startswith("etc/mxfwd.conf:")]
    assert len(errors) == 3, r.stderr
    assert errors[0].startswith("etc/mxfwd.conf:4: listen"), errors
    assert errors[1].startswith(f"etc/mxfwd.conf:{len(lines) - 1}: unknown key 'colour'"), errors
    assert errors[2].startswith(f"etc/mxfwd.conf:{len(lines)}: timeout"), errors


@test
def check_config_reports_forward_table_errors():
    d = sample_tree()
    path = os.path.join(d, "etc", "forwards")
    with open(path) as f:
        n = len(f.read().splitlines())
    with open(path, "a") as f:
        f.write("broken@alias.test\nbad@alias.test nobody@\n")
    r = mxfwd("check-config", "-c", "etc/mxfwd.conf", cwd=d)
    assert r.returncode == 1
    assert r.stderr.splitlines() == [
        f"{path}:{n + 1}: alias broken@alias.test has no destinations",
        f"{path}:{n + 2}: bad destination 'nobody@' for bad@alias.test: address has no @domain",
    ], r.stderr


@test
def resolve_prints_destinations_or_the_reply():
    d = sample_tree()
    # No daemon runs: the files answer, and the line that decided is named.
    r = mxfwd("resolve", "team@alias.test", "-c", "etc/mxfwd.conf", cwd=d)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[:3] == ["alice@example.com", "bob@example.org", "carol@example.net"], lines
    assert re.match(r"-- .*etc/forwards:7: team@alias\.test, read from the file \(no daemon "
                    r"answered at .*\)$", lines[3]), lines
    r = mxfwd("-c", "etc/mxfwd.conf", "resolve", "<Alice+news@ALIAS.test>", cwd=d)
    assert r.stdout.startswith("alice@example.com\n-- "), r.stdout
    assert "etc/forwards:5: alice@alias.test," in r.stdout, r.stdout
    r = mxfwd("resolve", "someone@alias.test", "-c", "etc/mxfwd.conf", cwd=d)
    assert r.stdout.startswith("postmaster@example.com\n-- ") and "forwards:9: @alias.test," in r.stdout
    r = mxfwd("resolve", "someone@elsewhere.test", "-c", "etc/mxfwd.conf", cwd=d)
    assert r.returncode == 1
    assert r.stdout.startswith("554 5.7.1 <someone@elsewhere.test>: Relay access denied"), r.stdout
    r = mxfwd("resolve", "a%b@alias.test", "-c", "etc/mxfwd.conf", cwd=d)
    assert r.returncode == 1 and r.stdout.startswith("554 5.7.1"), r.stdout


@test
def the_example_configurations_pass_check_config():
    """docs/examples.md: each example's mxfwd.conf and forward table, with
    its files made (secrets, TLS certificate, signing key), checks clean."""
    with open(os.path.join(SRC, "docs", "examples.md")) as f:
        text = f.read()
    blocks = re.findall(r"<!-- example: ([\w-]+)/([\w.]+) -->\n\n((?:    .*\n|\n)+)", text)
    examples = {}
    for name, file, block in blocks:
        examples.setdefault(name, {})[file] = "\n".join(l[4:] for l in block.splitlines()) + "\n"
    assert sorted(examples) == ["catch-all", "one-mx", "smarthost", "two-mx"], sorted(examples)
    for name, files in examples.items():
        d = mxtest.tempdir()
        conf = files["mxfwd.conf"]
        for prefix in ("/etc/mxfwd/", "/var/lib/mxfwd/", "/run/mxfwd/"):
            conf = conf.replace(prefix, d + "/")
        with open(os.path.join(d, "mxfwd.conf"), "w") as f:
            f.write(conf)
        with open(os.path.join(d, "forwards"), "w") as f:
            f.write(files["forwards"])
        with open(os.path.join(d, "srs.secrets"), "w") as f:
            f.write("an-example-secret-of-enough-length-0123456789\n")
        os.chmod(os.path.join(d, "srs.secrets"), 0o600)
        if "tls_cert" in conf:
            cert, key = mxtest.tls_certificate(d, "mx.forwarder.example")
            os.rename(cert, os.path.join(d, "tls.crt"))
            os.rename(key, os.path.join(d, "tls.key"))
        if "signing_key" in conf:
            r = mxfwd("dkim-keygen", "-c", os.path.join(d, "mxfwd.conf"))
            assert r.returncode == 0, (name, r.stdout, r.stderr)
        r = mxfwd("check-config", "-c", os.path.join(d, "mxfwd.conf"))
        assert r.returncode == 0, (name, r.stdout, r.stderr)
        assert "error" not in r.stderr, (name, r.stderr)


@test
def help_version_and_usage():
    r = mxfwd("--version")
    assert r.returncode == 0 and r.stdout.startswith("mxfwd "), r.stdout
    r = mxfwd("--help")
    assert r.returncode == 0 and "check-config" in r.stdout
    top = r.stdout
    # The commands for the DNS side, one line each.
    for line in ("  doctor                       check this forwarder's DNS: MX, PTR, SPF, DKIM, DMARC",
                 "  explain SENDER-DOMAIN        what forwarding does to a domain's mail, and why",
                 "  dkim-keygen [-o PATH]        make a signing key and print its DNS record"):
        assert line in r.stdout.splitlines(), r.stdout
    for words in (["serve"], ["check-config"], ["doctor"], ["explain"], ["dkim-keygen"],
                  ["resolve"], ["srs", "forward"], ["srs", "reverse"], ["queue"], ["flush"],
                  ["delete"], ["stats"]):
        r = mxfwd(*words, "--help")
        assert r.returncode == 0, words
        assert r.stdout.startswith("usage: mxfwd " + " ".join(words)), r.stdout
    # Every command has a line of its own in --help.
    commands = top.split("commands:\n")[1].split("\n\n")[0]
    listed = [l.split()[0] for l in commands.splitlines()]
    assert {"serve", "check-config", "resolve", "srs", "queue", "flush", "delete",
            "stats"} <= set(listed), listed
    # A group's help: both srs commands.
    r = mxfwd("srs", "--help")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "usage: mxfwd srs forward" in r.stdout and "usage: mxfwd srs reverse" in r.stdout
    assert mxfwd().returncode == 2
    assert mxfwd("frobnicate").returncode == 2
    assert mxfwd("resolve").returncode == 2
    assert mxfwd("resolve", "a@b", "c@d").returncode == 2
    assert mxfwd("explain").returncode == 2
    assert mxfwd("dkim-keygen", "-o").returncode == 2
    assert mxfwd("--bogus", "check-config").returncode == 2
    r = mxfwd("check-config", "-c", "/nonexistent/mxfwd.conf")
    assert r.returncode == 1 and "/nonexistent/mxfwd.conf: cannot open" in r.stderr


@test
def harness_peers_work():
    """The test peers themselves: dnsmasq answers, the sink records bytes."""
    dns = mxtest.Dnsmasq(["--mx-host=alias.test,mx.alias.test,10"])
    assert mxtest._dns_query(dns.port, "alias.test", qtype=15) == 0
    assert mxtest._dns_query(dns.port, "nothing.test") == 3
    sink = mxtest.Sink()
    c = mxtest.SmtpClient(sink.port)
    c.greeting()
    body = b"Subject: x\r\n\r\n..dot\r\nline\r\n"
    assert c.transaction("a@b.test", ["c@d.test"], body).code == 250
    tx = sink.wait(1)[0]
    assert tx.raw == body and tx.data == b"Subject: x\r\n\r\n.dot\r\nline\r\n"


if __name__ == "__main__":
    mxtest.main()
