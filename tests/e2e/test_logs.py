"""The log, read by the tools that read Postfix's: pflogsumm (Debian's
package) counts what a run of the real mxfwd did, from its log alone."""

import re
import subprocess
import time

import mxtest
from mxtest import test

FORWARDS = """\
alice@alias.test      user@dest.test
bad@alias.test        nobody@dest.test
slow@alias.test       slow@dest.test
noise@alias.test      DISCARD
"""


def transaction(c, sender, rcpts, body):
    """MAIL, RCPT..., DATA on an open session; the final reply."""
    c.cmd(f"MAIL FROM:<{sender}>", expect=250)
    codes = [c.cmd(f"RCPT TO:<{r}>").code for r in rcpts]
    if 250 not in codes:
        c.cmd("RSET", expect=250)
        return None
    c.cmd("DATA", expect=354)
    c.send(body + b".\r\n")
    return c.reply()


def pflogsumm(log):
    """pflogsumm's Grand Totals for log (mxfwd's lines, given the syslog
    file's date and host as rsyslog writes them)."""
    stamp = time.strftime("%b %e %H:%M:%S")
    text = "".join(f"{stamp} mx {line}\n" for line in log.splitlines() if line.startswith("mxfwd/"))
    r = subprocess.run(["pflogsumm", "--syslog-name=mxfwd", "--problems-first"], input=text,
                       capture_output=True, text=True, timeout=mxtest.TIMEOUT)
    assert r.returncode == 0, r.stderr
    totals = r.stdout.split("Grand Totals")[1].split("Per-Hour")[0]
    counts = {m.group(2): int(m.group(1)) for m in
              re.finditer(r"^\s*(\d+)\s+(received|delivered|deferred|bounced|rejected|discarded)\b",
                          totals, re.M)}
    return counts, r.stdout


@test
def pflogsumm_counts_what_mxfwd_did():
    sink = mxtest.Sink(replies={"nobody@dest.test": "550 5.1.1 no such user",
                                "slow@dest.test": "451 4.3.0 try again later"})
    dns = mxtest.Dnsmasq([])
    m = mxtest.Mxfwd(forwards=FORWARDS, config={
        "dns_servers": dns.server, "outbound_tls": "off", "retry_schedule": "1h",
        "route": [f"dest.test 127.0.0.1:{sink.port}", f"origin.test 127.0.0.1:{sink.port}"]})
    body = b"From: <sender@origin.test>\r\nSubject: counted\r\nMessage-ID: <c@origin.test>\r\n\r\nhi\r\n"
    c = m.client()
    c.cmd("EHLO client.test", expect=250)
    for _ in range(3):
        assert transaction(c, "sender@origin.test", ["alice@alias.test"], body).code == 250
    assert transaction(c, "sender@origin.test", ["bad@alias.test"], body).code == 250
    assert transaction(c, "sender@origin.test", ["slow@alias.test"], body).code == 250
    # Two relay attempts refused at RCPT, one message discarded.
    assert transaction(c, "spam@bad.test", ["x@elsewhere.test", "y@elsewhere.test"], body) is None
    assert transaction(c, "sender@origin.test", ["noise@alias.test"], body).code == 250
    c.cmd("QUIT")
    m.wait_log(r"to=<slow@dest\.test>, .* status=deferred")
    m.wait_log(r"sender non-delivery notification: ")
    mxtest.wait_until(lambda: len(sink.transactions) == 4, what="three messages and a DSN")
    m.wait_log(r"to=<sender@origin\.test>, .* status=sent")
    counts, report = pflogsumm(m.log())
    # Five accepted; four delivered (three and the DSN), one deferred, one
    # bounced, two refused, one discarded.
    assert counts == {"received": 5, "delivered": 4, "deferred": 1, "bounced": 1, "rejected": 2,
                      "discarded": 1}, report
    # Its details name the reasons as mxfwd gave them.
    assert "Relay access denied" in report and "try again later" in report, report


@test
def the_delivery_line_says_which_tls_carried_it():
    """An old destination that speaks TLS 1.0 only: opportunistic TLS takes
    it over the clear, and the log says so."""
    import ssl
    d = mxtest.tempdir()
    cert = mxtest.tls_certificate(d, "sink.test")
    sink = mxtest.Sink(tls=cert, tls_versions=(ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1))
    dns = mxtest.Dnsmasq([])
    m = mxtest.Mxfwd(forwards=FORWARDS, config={
        "dns_servers": dns.server, "outbound_tls": "opportunistic",
        "route": f"dest.test 127.0.0.1:{sink.port}"})
    c = m.client()
    c.cmd("EHLO client.test", expect=250)
    assert transaction(c, "sender@origin.test", ["alice@alias.test"],
                       b"From: <sender@origin.test>\r\nSubject: old tls\r\n\r\nhi\r\n").code == 250
    tx = sink.wait(1)[0]
    assert tx.tls == "TLSv1", tx.tls
    m.wait_log(r"mxfwd/smtp\[\d+\]: \w+: to=<user@dest\.test>, .* status=sent \(.*\), tls=TLSv1$")


if __name__ == "__main__":
    mxtest.main()
