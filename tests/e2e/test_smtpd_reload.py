"""Reloading the forward table and SRS secrets while mxfwd runs: edits in
place, replacement by rename, SIGHUP, broken files; sessions keep the
table they started with."""

import os
import signal
import time

import mxtest
from mxtest import test

FORWARDS = "alice@alias.test  alice@example.com\n"
# Polling every 2 s, then a moment for the file to settle.
RELOAD_WAIT = 8


def rcpt_code(m, rcpt, sender="sender@origin.test"):
    c = m.client()
    c.cmd("EHLO client.test")
    c.cmd(f"MAIL FROM:<{sender}>")
    code = c.cmd(f"RCPT TO:<{rcpt}>").code
    c.cmd("QUIT")
    c.close()
    return code


def wait_rcpt(m, rcpt, code, sender="sender@origin.test"):
    mxtest.wait_until(lambda: rcpt_code(m, rcpt, sender) == code, timeout=RELOAD_WAIT,
                      what=f"RCPT {rcpt} to get {code}")


@test
def table_edited_in_place_and_replaced_by_rename():
    m = mxtest.Mxfwd(forwards=FORWARDS)
    path = os.path.join(m.dir, "forwards")
    assert rcpt_code(m, "bob@alias.test") == 550
    before = m.client()
    before.cmd("EHLO client.test")

    # In place, as "echo >>" or an editor writing the same file does.
    with open(path, "a") as f:
        f.write("bob@alias.test  bob@example.org\n")
    wait_rcpt(m, "bob@alias.test", 250)
    m.wait_log(r"reloaded forward table .*forwards: 2 aliases")
    # A session keeps the table it started with.
    before.cmd("MAIL FROM:<sender@origin.test>")
    assert before.cmd("RCPT TO:<bob@alias.test>").code == 550

    # Replaced by rename, as editors and deployment tools do.
    tmp = path + ".new"
    with open(tmp, "w") as f:
        f.write("carol@alias.test  carol@example.net\n")
    os.rename(tmp, path)
    wait_rcpt(m, "carol@alias.test", 250)
    assert rcpt_code(m, "bob@alias.test") == 550


@test
def broken_table_keeps_the_old_one():
    m = mxtest.Mxfwd(forwards=FORWARDS)
    path = os.path.join(m.dir, "forwards")
    with open(path, "w") as f:
        f.write("dave@alias.test  dave@example.com\nbroken@alias.test\n")
    m.wait_log(rf"{path}:2: alias broken@alias.test has no destinations", timeout=RELOAD_WAIT)
    m.wait_log(r"not reloaded, the previous forward table stays in use")
    assert rcpt_code(m, "alice@alias.test") == 250
    assert rcpt_code(m, "dave@alias.test") == 550
    # Fixed: loaded.
    with open(path, "w") as f:
        f.write("dave@alias.test  dave@example.com\n")
    wait_rcpt(m, "dave@alias.test", 250)


@test
def sighup_reloads_at_once():
    m = mxtest.Mxfwd(forwards=FORWARDS)
    path = os.path.join(m.dir, "forwards")
    with open(path, "w") as f:
        f.write("erin@alias.test  erin@example.com\n")
    m.proc.send_signal(signal.SIGHUP)
    m.wait_log(r"reloading on SIGHUP")
    m.wait_log(r"reloaded forward table")
    assert rcpt_code(m, "erin@alias.test") == 250
    assert rcpt_code(m, "alice@alias.test") == 550


@test
def secrets_rotation():
    m = mxtest.Mxfwd(forwards=FORWARDS)
    new = "a-brand-new-secret-0123456789"
    addr = mxtest.srs0("user", "origin.test", secret=new)
    assert rcpt_code(m, addr, sender="") == 550
    m.write_file("srs.secrets", new + "\n" + mxtest.Mxfwd.SECRET + "\n", mode=0o600)
    wait_rcpt(m, addr, 250, sender="")
    m.wait_log(r"reloaded SRS secrets")
    # The old secret still verifies, and the new one signs.
    assert rcpt_code(m, mxtest.srs0("user", "origin.test"), sender="") == 250
    signed = m.run("srs", "forward", "user@origin.test").stdout.strip()
    assert signed == addr, (signed, addr)
    # A bad file keeps the secrets in use.
    m.write_file("srs.secrets", "short\n", mode=0o600)
    m.wait_log(r"not reloaded, the previous SRS secrets stay in use", timeout=RELOAD_WAIT)
    assert rcpt_code(m, addr, sender="") == 250


if __name__ == "__main__":
    mxtest.main()
