"""Accepted messages and the spool: 250 only once the message is on disk,
the bytes on disk are the client's plus Authentication-Results: and
Received:, the envelope
(SRS sender, deduplicated destinations with their aliases), and 451 with
nothing left behind when the spool cannot take a message (a file size
limit: EFBIG; a full file system: ENOSPC); spool_sync = filesystem keeps
every acknowledged message too; a leftover .corrupt file at the top of the
id space does not make a new message share a queued one's id; entries
named like messages that are no files are moved aside, and said so once."""

import os
import re
import resource
import signal
import subprocess
import time

import mxtest
from mxtest import test

FORWARDS = """\
alice@alias.test      alice@example.com
bob@alias.test        bob@example.org
team@alias.test       alice@alias.test, carol@example.net
"""


# Test messages have an author: one without From: is refused (RFC 5322
# requires it; test_auth.py).
FROM = b"From: <sender@origin.test>\r\n"


def server(config=None, **kw):
    """A forwarder whose accepted messages stay in the spool."""
    return mxtest.Mxfwd(forwards=FORWARDS, config={**mxtest.NO_DELIVERY, **(config or {})}, **kw)


def spool_dir(m):
    return m.settings["spool_dir"]


def queued(m, reply):
    """The spool file of the message a 250 reply names."""
    match = re.match(r"2\.0\.0 Ok: queued as ([0-9A-F]{13})$", reply.text)
    assert reply.code == 250 and match, reply
    return mxtest.SpoolMessage(os.path.join(spool_dir(m), match.group(1)))


def send(c, sender, rcpts, data, ehlo="client.test", params=""):
    assert c.cmd(f"EHLO {ehlo}").code == 250
    assert c.cmd(f"MAIL FROM:<{sender}>{params}").code == 250
    for r in rcpts:
        assert c.cmd(f"RCPT TO:<{r}>").code == 250, r
    assert c.cmd("DATA").code == 354
    c.send(data)
    return c.reply()


@test
def message_on_disk_is_the_clients_bytes_plus_received():
    m = server()
    c = m.client()
    body = (b"From: Sender <sender@origin.test>\r\nSubject: caf\xc3\xa9\r\n\r\n"
            b"a line\r\n..leading dot\r\n.\tdot tab\r\n\r\n" + b"x" * 3000 + b"\r\n")
    stuffed = body.replace(b"\r\n.", b"\r\n..")
    r = send(c, "sender@origin.test", ["alice@alias.test"], stuffed + b".\r\n",
             params=" BODY=8BITMIME")
    msg = queued(m, r)
    # 250 came after the commit: the file has its final name and is whole.
    assert msg.complete
    assert [n for n in mxtest.spool_files(spool_dir(m)) if n.endswith(".tmp")] == []
    assert msg.body == body
    # The sender checks' results on top, then Received: (nothing is
    # published for origin.test: SPF and DMARC have no record to apply).
    received = msg.prepend.decode()
    assert re.fullmatch(
        r"Authentication-Results: mx\.fwd\.test;\r\n"
        r"\tspf=none \(no SPF record\) smtp\.mailfrom=origin\.test;\r\n"
        r"\tdkim=none \(message not signed\);\r\n"
        r"\tarc=none;\r\n"
        r"\tdmarc=none \(.*\) header\.from=origin\.test\r\n"
        r"Received: from client\.test \(unknown \[127\.0\.0\.1\]\)\r\n"
        rf"\tby mx\.fwd\.test \(mxfwd\) with ESMTP id {msg.id}\r\n"
        r"\tfor <alice@alias\.test>; \w{3}, \d{1,2} \w{3} \d{4} \d\d:\d\d:\d\d \+0000\r\n",
        received), received
    assert msg.message == msg.prepend + body
    assert msg.sender == "sender@origin.test"
    assert msg.srs_sender == m.run("srs", "forward", "sender@origin.test").stdout.strip()
    assert msg.srs_sender.startswith("SRS0=") and msg.srs_sender.endswith("@fwd.test")
    assert msg.rcpts == [("alice@example.com", "alice@alias.test")]
    assert msg.client == "unknown[127.0.0.1]" and msg.helo == "client.test"
    assert msg.flags == 1  # BODY=8BITMIME
    m.wait_log(rf"{msg.id}: client=unknown\[127\.0\.0\.1\], session=\w+, "
               r"spf=none, dkim=none, dmarc=none$")
    m.wait_log(rf"{msg.id}: from=<sender@origin\.test>, size={len(msg.message)}, nrcpt=1, ")


@test
def destinations_deduplicated_across_recipients():
    m = server()
    c = m.client()
    r = send(c, "sender@origin.test", ["alice@alias.test", "team@alias.test", "ALICE@alias.test"],
             FROM + b"Subject: x\r\n\r\nbody\r\n.\r\n")
    msg = queued(m, r)
    assert msg.rcpts == [("alice@example.com", "alice@alias.test"),
                         ("carol@example.net", "team@alias.test")], msg.rcpts
    # More than one recipient: no "for" clause in Received:.
    assert b"\tfor <" not in msg.prepend
    m.wait_log(rf"{msg.id}: from=<sender@origin\.test>, size=\d+, nrcpt=2, ")


@test
def bounce_to_srs_address_goes_to_the_original_sender():
    m = server()
    c = m.client()
    srs = mxtest.srs0("person", "origin.test")
    r = send(c, "", [srs], FROM + b"Subject: bounce\r\n\r\nreturned\r\n.\r\n")
    msg = queued(m, r)
    assert msg.sender == "" and msg.srs_sender == ""
    assert msg.rcpts == [("person@origin.test", srs)]


@test
def empty_message_bdat_and_smtputf8():
    # An empty message has no From:, which DMARC enforcement refuses.
    m = server({"dmarc_action": "tag"})
    c = m.client()
    msg = queued(m, send(c, "sender@origin.test", ["bob@alias.test"], b".\r\n"))
    assert msg.body == b""
    # BDAT: chunks as they are, dots included; one for the whole message.
    assert c.cmd("MAIL FROM:<s\u00e9nder@origin.test> SMTPUTF8").code == 250
    assert c.cmd("RCPT TO:<bob@alias.test>").code == 250
    part1, part2 = FROM + b"Subject: chunks\r\n\r\n.not stuffed\r\n", b"end\r\n"
    c.send(b"BDAT %d\r\n" % len(part1) + part1 + b"BDAT %d LAST\r\n" % len(part2) + part2)
    assert c.reply().code == 250
    msg = queued(m, c.reply())
    assert msg.body == part1 + part2
    assert msg.flags == 2  # SMTPUTF8
    assert b" with UTF8SMTP id " in msg.prepend
    assert msg.sender == "s\u00e9nder@origin.test"


@test
def refused_messages_leave_nothing_on_disk():
    m = server({"max_message_size": "2K", "max_hops": 3})
    c = m.client()
    assert c.cmd("EHLO client.test").code == 250
    cases = [
        (FROM + b"Subject: smuggle\r\n\r\nx\n.\nMAIL FROM:<e@vil.test>\r\n.\r\n", 554),
        (FROM + b"Subject: big\r\n\r\n" + b"y" * 3000 + b"\r\n.\r\n", 552),
        (b"Received: a\r\nReceived: b\r\nReceived: c\r\nReceived: d\r\n\r\nloop\r\n.\r\n", 554),
    ]
    for data, code in cases:
        assert c.cmd("MAIL FROM:<sender@origin.test>").code == 250
        assert c.cmd("RCPT TO:<alice@alias.test>").code == 250
        assert c.cmd("DATA").code == 354
        c.send(data)
        assert c.reply().code == code, data[:20]
        assert mxtest.spool_files(spool_dir(m)) == [], mxtest.spool_files(spool_dir(m))
    # And the limit itself is fine.
    msg = queued(m, send(c, "sender@origin.test", ["alice@alias.test"],
                         b"Received: a\r\nReceived: b\r\nReceived: c\r\n" + FROM + b"\r\nok\r\n.\r\n"))
    assert msg.body.count(b"Received:") == 3


@test
def pipelined_transaction_and_quit_in_one_write():
    m = server()
    c = m.client()
    c.send(b"EHLO client.test\r\nMAIL FROM:<sender@origin.test>\r\nRCPT TO:<alice@alias.test>\r\n"
           b"DATA\r\n")
    for code in (250, 250, 250, 354):
        assert c.reply().code == code
    c.send(FROM + b"Subject: p\r\n\r\nbody\r\n.\r\nMAIL FROM:<sender@origin.test>\r\n"
           b"RCPT TO:<bob@alias.test>\r\nDATA\r\n")
    # The commands behind the final dot wait for its 250, and come in order.
    r = c.reply()
    queued(m, r)
    for code in (250, 250, 354):
        assert c.reply().code == code
    c.send(FROM + b"Subject: q\r\n\r\nsecond\r\n.\r\nQUIT\r\n")
    queued(m, c.reply())
    assert c.reply().code == 221
    assert len(mxtest.spool_files(spool_dir(m))) == 2


def fsize_limit(limit):
    def apply():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


@test
def spool_write_failure_gives_451_file_size_limit():
    m = server(start=False)
    # mxfwd may write no file larger than 32 KiB (its log too: it stays small).
    m.start(preexec_fn=fsize_limit(32768))
    c = m.client()
    r = send(c, "sender@origin.test", ["alice@alias.test"],
             FROM + b"Subject: too big for the disk\r\n\r\n" + (b"z" * 998 + b"\r\n") * 64 + b".\r\n")
    assert (r.code, r.lines[0][:5]) == (451, "4.3.0"), r
    assert mxtest.spool_files(spool_dir(m)) == []
    m.wait_log(r"cannot queue: .*(File too large|EFBIG)")
    # The session goes on, and a message that fits is taken.
    assert c.cmd("RSET").code == 250
    queued(m, send(c, "sender@origin.test", ["alice@alias.test"], FROM + b"Subject: s\r\n\r\nok\r\n.\r\n"))


@test
def spool_full_file_system_gives_451():
    if os.geteuid() != 0:
        print("skipped: mounting a tmpfs needs root")
        return
    m = server(start=False)
    small = os.path.join(m.dir, "small")
    os.mkdir(small)
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k,mode=0700", "tmpfs", small],
                      capture_output=True).returncode != 0:
        print("skipped: cannot mount a tmpfs here")
        return
    mxtest.on_cleanup(lambda: subprocess.run(["umount", small], capture_output=True))
    m.settings["spool_dir"] = os.path.join(small, "spool")
    m.write_config()
    m.start()
    c = m.client()
    r = send(c, "sender@origin.test", ["alice@alias.test"],
             FROM + b"Subject: disk full\r\n\r\n" + (b"f" * 998 + b"\r\n") * 100 + b".\r\n")
    assert (r.code, r.lines[0][:5]) == (451, "4.3.0"), r
    assert mxtest.spool_files(m.settings["spool_dir"]) == []
    m.wait_log(r"cannot queue: .*(No space left on device|ENOSPC)")
    assert c.cmd("RSET").code == 250
    r = send(c, "sender@origin.test", ["alice@alias.test"], FROM + b"Subject: s\r\n\r\nfits\r\n.\r\n")
    assert r.code == 250, r


@test
def sigterm_lets_the_message_finish():
    m = server()
    busy = m.client()
    assert busy.cmd("EHLO client.test").code == 250
    assert busy.cmd("MAIL FROM:<sender@origin.test>").code == 250
    assert busy.cmd("RCPT TO:<alice@alias.test>").code == 250
    assert busy.cmd("DATA").code == 354
    busy.send(FROM + b"Subject: during shutdown\r\n\r\n")
    time.sleep(0.2)
    m.proc.send_signal(signal.SIGTERM)
    time.sleep(0.2)
    busy.send(b"still coming\r\n.\r\n")
    queued(m, busy.reply())
    r = busy.reply()
    assert (r.code, r.lines[0][:5]) == (421, "4.4.2"), r
    assert m.proc.wait() == 0


@test
def swaks_whole_message():
    m = server()
    r = mxtest.run(["swaks", "--server", "127.0.0.1", "--port", str(m.port), "--helo", "swaks.test",
                    "--from", "sender@origin.test", "--to", "alice@alias.test,bob@alias.test",
                    "--pipeline", "--header", "Subject: from swaks", "--body", "swaks body"],
                   timeout=20)
    assert r.returncode == 0, r.stdout + r.stderr
    m_id = re.search(r"<\*\*\s*250 2\.0\.0 Ok: queued as ([0-9A-F]{13})|<-\s*250 2\.0\.0 Ok: queued as ([0-9A-F]{13})",
                     r.stdout)
    assert m_id, r.stdout
    msg = mxtest.SpoolMessage(os.path.join(spool_dir(m), m_id.group(1) or m_id.group(2)))
    assert b"Subject: from swaks" in msg.body and b"swaks body" in msg.body
    assert [a for a, _ in msg.rcpts] == ["alice@example.com", "bob@example.org"]


@test
def queued_messages_survive_a_restart():
    m = server()
    c = m.client()
    msg = queued(m, send(c, "sender@origin.test", ["alice@alias.test"], FROM + b"Subject: k\r\n\r\nk\r\n.\r\n"))
    c.close()
    assert m.stop() == 0
    # A partial file, as a crash leaves one, is cleared at start.
    with open(os.path.join(spool_dir(m), "18C3F2A9B47D1.tmp"), "wb") as f:
        f.write(b"MXFSPL01B")
    m.start()
    m.wait_log(r"spool .*: 1 messages queued")
    assert mxtest.spool_files(spool_dir(m)) == [msg.id]


@test
def spool_sync_filesystem_keeps_every_acknowledged_message():
    """The daemon with spool_sync = filesystem: eight messages ending
    together are each acknowledged with a whole file, which a restart
    finds.  (What a crash or a failed sync does is unit-spool's: this
    stops cleanly, so the page cache would keep the files anyway.)"""
    m = server({"spool_sync": "filesystem"})
    clients = [m.client() for _ in range(8)]
    bodies = [FROM + f"Subject: together {i}\r\n\r\n".encode() + b"y" * (1000 * i) + b"\r\n"
              for i in range(len(clients))]
    for c in clients:
        assert c.cmd("EHLO client.test").code == 250
        assert c.cmd("MAIL FROM:<sender@origin.test>").code == 250
        assert c.cmd("RCPT TO:<bob@alias.test>").code == 250
        assert c.cmd("DATA").code == 354
    for c, body in zip(clients, bodies):
        c.send(body + b".\r\n")
    ids = []
    for c, body in zip(clients, bodies):
        msg = queued(m, c.reply())
        assert msg.complete and msg.body == body
        ids.append(msg.id)
        c.close()
    assert m.stop() == 0
    m.start()
    m.wait_log(rf"spool .*: {len(ids)} messages queued")
    assert sorted(mxtest.spool_files(spool_dir(m))) == sorted(ids)


def forwarding(port, config=None):
    """A forwarder, not yet started, sending everything to 127.0.0.1:port and
    retrying after a second."""
    settings = {"route": f"* 127.0.0.1:{port}", "outbound_tls": "off", "retry_schedule": "1s"}
    return mxtest.Mxfwd(forwards=FORWARDS, config={**settings, **(config or {})}, start=False)


@test
def a_corrupt_file_at_the_top_of_the_id_space_does_not_make_ids_wrap():
    """docs/spool.md, "Queue ids": FFFFFFFFFFFFF.corrupt, left by an
    earlier incident, steers no id.  A message deferred to a file of its
    own, a restart, a second message: both have ids of their own, and both
    are delivered once the destination is up."""
    port = mxtest.free_port()  # nothing listens there yet: connection refused
    m = forwarding(port)
    os.makedirs(spool_dir(m), mode=0o700)
    left = os.path.join(spool_dir(m), "FFFFFFFFFFFFF.corrupt")
    with open(left, "wb") as f:
        f.write(b"kept for the admin\n")
    m.start()
    a = queued(m, send(m.client(), "sender@origin.test", ["alice@alias.test"],
                       FROM + b"Subject: A\r\n\r\nfirst\r\n.\r\n")).id
    m.wait_log(rf"{a}: to=<alice@example\.com>, .* status=deferred \(connect to ")
    assert m.stop() == 0
    assert a in mxtest.spool_files(spool_dir(m)), "A has a file of its own"
    m.start()
    m.wait_log(r"spool .*: 1 messages queued")
    b = queued(m, send(m.client(), "sender@origin.test", ["bob@alias.test"],
                       FROM + b"Subject: B\r\n\r\nsecond\r\n.\r\n")).id
    assert b != a, b
    m.wait_log(rf"{b}: to=<bob@example\.org>, .* status=deferred ")
    sink = mxtest.Sink(port=port)
    sink.wait(2, timeout=20)
    for qid in (a, b):
        m.wait_log(rf"{qid}: removed$")
    time.sleep(0.5)
    subjects = sorted(re.search(rb"Subject: (\w)", tx.data).group(1) for tx in sink.transactions)
    assert subjects == [b"A", b"B"], subjects
    assert "queued twice" not in m.log()
    with open(left, "rb") as f:
        assert f.read() == b"kept for the admin\n"


@test
def entries_named_like_messages_that_are_no_files_are_moved_aside_once():
    m = server(start=False)
    d = spool_dir(m)
    os.makedirs(d, mode=0o700)
    os.mkdir(os.path.join(d, "18C3F2A9B47D0"))
    target = os.path.join(m.dir, "elsewhere")
    with open(target, "wb") as f:
        f.write(b"not the spool's\n")
    os.symlink(target, os.path.join(d, "18C3F2A9B47D2"))
    m.start()
    for name in ("18C3F2A9B47D0", "18C3F2A9B47D2"):
        m.wait_log(rf"spool: {name}: not a regular file; moved aside as {name}\.corrupt$")
    assert sorted(os.listdir(d)) == ["18C3F2A9B47D0.corrupt", "18C3F2A9B47D2.corrupt", "journal"]
    assert os.path.islink(os.path.join(d, "18C3F2A9B47D2.corrupt"))
    with open(target, "rb") as f:
        assert f.read() == b"not the spool's\n"
    assert m.stop() == 0
    m.start()
    assert "spool: 18C3F2A9B47D" not in m.log(), m.log()


if __name__ == "__main__":
    mxtest.main()
