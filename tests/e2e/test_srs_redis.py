"""The envelope store in a Redis shared by two mxfwd hosts (docs/srs.md,
docs/admin-guide.md "Several hosts"): a long sender forwarded by one, its
bounce sent to the other, reaches the original sender; Redis stopped gives
451 (nothing lost), and mail resumes when it returns."""

import os
import re
import shutil
import socket

import mxtest
from mxtest import test

from long_senders import BODY, BOUNCE, FORWARDS, KEYED, SENDGRID, SES

REDIS = shutil.which("redis-server") or "/usr/bin/redis-server"


class Redis:
    """A private redis-server on a loopback port, stopped by PID."""

    def __init__(self, port=None):
        self.dir = mxtest.tempdir()
        self.port = port or mxtest.free_port()
        self.start()

    def start(self):
        self.proc = mxtest.Process([REDIS, "--port", str(self.port), "--bind", "127.0.0.1",
                                    "--save", "", "--appendonly", "no", "--dir", self.dir],
                                   log_path=os.path.join(self.dir, "redis.log"))
        mxtest.on_cleanup(self.proc.stop)
        mxtest.wait_until(self.ready, what="redis-server to listen")

    def ready(self):
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self):
        self.proc.stop()

    @property
    def url(self):
        return f"redis://127.0.0.1:{self.port}/3"


def host(sink, redis):
    return mxtest.Mxfwd(forwards=FORWARDS, config={
        "route": f"* 127.0.0.1:{sink.port}", "outbound_tls": "off", "retry_schedule": "1s",
        "envelope_store": redis.url})


def transaction(m, sender, rcpts, body):
    c = m.client()
    r = c.transaction(sender, rcpts, body)
    c.cmd("QUIT")
    return r


def accepted(m, sender, rcpts, body):
    """One try of a client that retries on 4xx: whether it got its 250."""
    try:
        return transaction(m, sender, rcpts, body).code == 250
    except AssertionError:  # a 451 at RCPT
        return False


@test
def two_hosts_share_the_store():
    redis = Redis()
    sink = mxtest.Sink()
    a, b = host(sink, redis), host(sink, redis)
    assert transaction(a, SES, ["alice@alias.test"], BODY).code == 250
    addr = sink.wait(1)[0].mail_from
    assert KEYED.match(addr), addr
    # The bounce reaches the other host: it finds what the first wrote.
    assert transaction(b, "", [addr], BOUNCE).code == 250
    assert sink.wait(2)[1].rcpts == [SES]
    r = b.run("srs", "reverse", addr)
    assert r.returncode == 0 and r.stdout.strip() == SES, r
    m = re.search(r"^envelope_store_entries\s+(\d+)", b.run("stats").stdout, re.M)
    assert m is not None


@test
def redis_down_gives_451_and_mail_resumes_when_it_returns():
    redis = Redis()
    sink = mxtest.Sink()
    a, b = host(sink, redis), host(sink, redis)
    assert transaction(a, SES, ["alice@alias.test"], BODY).code == 250
    redis.stop()
    # A long sender cannot be kept: 451 at the end of the data.
    r = transaction(a, SENDGRID, ["alice@alias.test"], BODY)
    assert r.code == 451 and r.text.startswith("4.3.0"), r
    # A bounce cannot be routed: 451 at RCPT.
    fwd = a.run("srs", "forward", SENDGRID)
    assert fwd.returncode == 1 and fwd.stdout.startswith("store-failed:"), fwd
    c = b.client()
    c.cmd("EHLO client.test")
    c.cmd("MAIL FROM:<>")
    r = c.cmd(f"RCPT TO:<{sink.wait(1)[0].mail_from}>")
    assert r.code == 451 and r.lines[-1].startswith("4.3.0"), r
    c.cmd("QUIT")
    # Short senders do not need the store.
    assert transaction(a, "short@origin.test", ["alice@alias.test"], BODY).code == 250
    sink.wait(2)
    # Redis returns (empty: no persistence in this test): the client's
    # retry goes through, and its bounce comes back through the other host.
    redis.start()
    mxtest.wait_until(lambda: accepted(a, SENDGRID, ["alice@alias.test"], BODY), timeout=30,
                      what="mail to resume")
    addr = sink.wait(3)[2].mail_from
    mxtest.wait_until(lambda: accepted(b, "", [addr], BOUNCE), timeout=30,
                      what="the other host to reconnect")
    assert sink.wait(4)[3].rcpts == [SENDGRID]


if __name__ == "__main__":
    mxtest.main()
