"""The README's quick start, as a newcomer runs it: the sample
configuration and forward table from etc/, the sink scripts/serve starts
beside the forwarder, scripts/send-test, and the forwarded copy in
var/delivered/.

scripts/serve itself installs and builds; here the build under test runs
the same two processes it starts, from a copy of etc/ in a directory of
its own.  The one change to the sample: its DNS questions go to a test
dnsmasq (nothing may leave loopback), where the sample asks the machine's
resolver."""

import os
import shutil
import subprocess
import sys

import mxtest
from mxtest import MXFWD, test

SRC = os.environ.get("MXFWD_SOURCE_ROOT", os.path.join(os.path.dirname(__file__), "../.."))


def quickstart_tree(port, sink_port, dns):
    """etc/ copied; the sample's ports and DNS pointed at this test's."""
    d = mxtest.tempdir()
    shutil.copytree(os.path.join(SRC, "etc"), os.path.join(d, "etc"))
    os.chmod(os.path.join(d, "etc", "srs.secrets"), 0o600)
    conf = os.path.join(d, "etc", "mxfwd.conf")
    with open(conf) as f:
        text = f.read()
    assert "listen          = 127.0.0.1:2525" in text and "* 127.0.0.1:2526" in text
    text = text.replace("127.0.0.1:2525", f"127.0.0.1:{port}")
    text = text.replace("127.0.0.1:2526", f"127.0.0.1:{sink_port}")
    with open(conf, "w") as f:
        f.write(text + f"dns_servers = {dns.server}\n")
    return d


@test
def the_quick_start_delivers_a_message():
    dns = mxtest.Dnsmasq([])
    port, sink_port = mxtest.free_port(), mxtest.free_port()
    d = quickstart_tree(port, sink_port, dns)
    r = mxtest.run([MXFWD, "check-config", "-c", "etc/mxfwd.conf"], cwd=d)
    assert r.returncode == 0, r.stdout + r.stderr
    sink = mxtest.Process([sys.executable, os.path.join(SRC, "scripts", "sink"), "--listen",
                           f"127.0.0.1:{sink_port}", "--dir", "var/delivered"],
                          log_path=os.path.join(d, "sink.log"), cwd=d)
    mxtest.wait_until(lambda: mxtest._port_open(sink_port), what="the sink")
    mx = mxtest.Process([MXFWD, "serve", "-c", "etc/mxfwd.conf"],
                        log_path=os.path.join(d, "mxfwd.log"), cwd=d)
    mxtest.wait_until(lambda: mxtest._port_open(port), what="mxfwd")
    try:
        r = subprocess.run([sys.executable, os.path.join(SRC, "scripts", "send-test"),
                            "--to", "alice@alias.test", "--server", f"127.0.0.1:{port}"],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0 and r.stdout.startswith("250 2.0.0 Ok: queued as "), r
        delivered = os.path.join(d, "var", "delivered")
        mxtest.wait_until(lambda: os.path.isdir(delivered) and os.listdir(delivered),
                          what="the forwarded copy in var/delivered")
        with open(os.path.join(delivered, "0001.eml"), "rb") as f:
            kept = f.read()
        # The README's words: the SRS sender and the destination on top,
        # mxfwd's fields, then the message as sent.
        assert kept.startswith(b"Return-Path: <SRS0=") and b"@fwd.test>\r\n" in kept, kept
        assert b"Delivered-To: alice@example.com\r\n" in kept, kept
        assert b"\r\nAuthentication-Results: mx.fwd.test;" in kept, kept
        assert b"Received: from client.example.test" in kept, kept
        assert kept.endswith(b"\r\nHello from the quick start.\r\n"), kept
    finally:
        assert mx.stop() == 0
        sink.stop()


@test
def the_readme_shows_the_sample_table():
    with open(os.path.join(SRC, "etc", "forwards")) as f:
        table = [line for line in f.read().splitlines() if line and not line.startswith("#")]
    with open(os.path.join(SRC, "README.md")) as f:
        readme = f.read()
    for line in table:
        assert "    " + line in readme, line


if __name__ == "__main__":
    mxtest.main()
