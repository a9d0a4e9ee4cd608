"""`meson install` into a staging directory (DESTDIR), as a packager runs
it: the files it puts in place (a secret and a signing key of their own),
a configuration that mxfwd accepts, with signing off and on, an admin's
edits, secret and key kept over a second install, and the systemd unit
checked by systemd-analyze (verify, and security with its exposure score)
where the machine has it.

Arguments: the build directory, then the installed paths meson computed:
prefix, sbindir, confdir, mandir, unitdir, sysusersdir (absolute)."""

import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import traceback

BUILD, PREFIX, SBINDIR, CONFDIR, MANDIR, UNITDIR, SYSUSERSDIR, DATADIR = sys.argv[1:9]
TIMEOUT = 60
# The unit's hardening may not regress past this (systemd-analyze security,
# 0 best to 10 worst).
MAX_EXPOSURE = 2.0

passed = failed = 0


def staged(destdir, path):
    return os.path.join(destdir, path.lstrip("/"))


def install(destdir):
    r = subprocess.run(["meson", "install", "-C", BUILD, "--no-rebuild", "--destdir", destdir],
                       capture_output=True, text=True, timeout=TIMEOUT)
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout + r.stderr


def files_under(root):
    found = set()
    for d, _, names in os.walk(root):
        for n in names:
            found.add("/" + os.path.relpath(os.path.join(d, n), root))
    return found


def check(name, fn):
    global passed, failed
    try:
        fn()
        passed += 1
        print(f"ok {name}", flush=True)
    except Exception:
        failed += 1
        traceback.print_exc()
        print(f"FAIL {name}", flush=True)


def read(path):
    with open(path) as f:
        return f.read()


def installs_the_expected_files(d):
    def run():
        install(d)
        want = {
            f"{SBINDIR}/mxfwd",
            f"{CONFDIR}/mxfwd.conf",
            f"{CONFDIR}/forwards",
            f"{CONFDIR}/srs.secrets",
            f"{CONFDIR}/dkim.key",
            f"{MANDIR}/man5/mxfwd.conf.5",
            f"{MANDIR}/man5/mxfwd-forwards.5",
            f"{MANDIR}/man8/mxfwd.8",
            f"{DATADIR}/mxfwd/prometheus/mxfwd-alerts.yml",
            f"{DATADIR}/mxfwd/grafana/mxfwd-dashboard.json",
        }
        if UNITDIR != "no":
            want.add(f"{UNITDIR}/mxfwd.service")
        if SYSUSERSDIR != "no":
            want.add(f"{SYSUSERSDIR}/mxfwd.conf")
        assert files_under(d) == want, sorted(files_under(d) ^ want)
        assert os.access(staged(d, f"{SBINDIR}/mxfwd"), os.X_OK)
        for name, mode in [("mxfwd.conf", 0o644), ("forwards", 0o644), ("srs.secrets", 0o600),
                           ("dkim.key", 0o600)]:
            got = stat.S_IMODE(os.stat(staged(d, f"{CONFDIR}/{name}")).st_mode)
            assert got == mode, f"{name}: mode {got:o}"
        # A secret of its own, not the sample's that everyone knows.
        secrets = [l for l in read(staged(d, f"{CONFDIR}/srs.secrets")).splitlines()
                   if l and not l.startswith("#")]
        assert len(secrets) == 1 and len(secrets[0]) >= 32, secrets
        assert "sample" not in secrets[0]
        # A signing key of its own: 2048-bit RSA, PKCS#8.
        key = staged(d, f"{CONFDIR}/dkim.key")
        assert read(key).startswith("-----BEGIN PRIVATE KEY-----\n")
        r = subprocess.run(["openssl", "pkey", "-in", key, "-noout", "-text"], capture_output=True,
                           text=True, timeout=TIMEOUT)
        assert r.returncode == 0 and "Private-Key: (2048 bit" in r.stdout, r.stdout + r.stderr
        # The man pages are the sources'.
        src = os.path.join(os.path.dirname(__file__), "../../docs/man/mxfwd.8")
        assert read(staged(d, f"{MANDIR}/man8/mxfwd.8")) == read(src)
    return run


def the_unit_runs_the_installed_paths(d):
    def run():
        if UNITDIR == "no":
            return
        unit = read(staged(d, f"{UNITDIR}/mxfwd.service"))
        assert f"\nExecStart={SBINDIR}/mxfwd serve -c {CONFDIR}/mxfwd.conf\n" in unit, unit
        assert "\nType=notify\n" in unit and "\nExecReload=/bin/kill -HUP $MAINPID\n" in unit
        assert "@" not in re.sub(r"(?m)^#.*$|@system-service|@privileged|@resources", "", unit), \
            "an unreplaced @VARIABLE@"
        conf = read(staged(d, f"{CONFDIR}/mxfwd.conf"))
        # The directories the unit gives the service are the config's.
        spool = re.search(r"(?m)^spool_dir\s*=\s*(\S+)", conf).group(1)
        sock = re.search(r"(?m)^control_socket\s*=\s*(\S+)", conf).group(1)
        assert spool.startswith("/var/lib/mxfwd/") and "\nStateDirectory=mxfwd\n" in unit
        assert os.path.dirname(sock) == "/run/mxfwd" and "\nRuntimeDirectory=mxfwd\n" in unit
        if SYSUSERSDIR != "no":
            users = read(staged(d, f"{SYSUSERSDIR}/mxfwd.conf"))
            assert re.search(r"(?m)^u mxfwd - .* /var/lib/mxfwd$", users), users
            assert "\nUser=mxfwd\n" in unit
    return run


def the_installed_config_is_valid(d):
    def run():
        # Its paths name the staged files; check-config reads them all.
        conf = read(staged(d, f"{CONFDIR}/mxfwd.conf")).replace(CONFDIR + "/",
                                                               staged(d, CONFDIR) + "/")
        path = os.path.join(d, "check.conf")
        with open(path, "w") as f:
            f.write(conf)
        r = subprocess.run([staged(d, f"{SBINDIR}/mxfwd"), "check-config", "-c", path],
                           capture_output=True, text=True, timeout=TIMEOUT)
        assert r.returncode == 0, r.stdout + r.stderr
        assert re.search(r"(?m)forwards: \d+ aliases; .*srs\.secrets: 1 SRS secret$", r.stdout), \
            r.stdout
        # Signing is off until the admin turns it on...
        assert "\nnote: signing_key is not set" in r.stdout, r.stdout
        # ... by uncommenting two lines: the key made at install time loads.
        conf = re.sub(r"(?m)^#(signing_key|signing_selector)(\s*=)", r"\1\2", conf)
        with open(path, "w") as f:
            f.write(conf)
        r = subprocess.run([staged(d, f"{SBINDIR}/mxfwd"), "check-config", "-c", path],
                           capture_output=True, text=True, timeout=TIMEOUT)
        assert r.returncode == 0, r.stdout + r.stderr
        assert r.stdout.rstrip().endswith("dkim.key: RSA key of 2048 bits"), r.stdout
        os.unlink(path)
    return run


def a_second_install_keeps_edited_files(d):
    def run():
        conf = staged(d, f"{CONFDIR}/mxfwd.conf")
        secrets = staged(d, f"{CONFDIR}/srs.secrets")
        with open(conf, "a") as f:
            f.write("metrics_listen = 127.0.0.1:9325\n")
        edited = read(conf)
        secret = read(secrets)
        key_path = staged(d, f"{CONFDIR}/dkim.key")
        key = read(key_path)
        os.unlink(staged(d, f"{CONFDIR}/forwards"))
        install(d)
        assert read(conf) == edited, "the edited config was replaced"
        assert read(secrets) == secret, "the secret was replaced"
        assert read(key_path) == key, "the signing key was replaced"
        assert stat.S_IMODE(os.stat(key_path).st_mode) == 0o600
        # A file the admin removed comes back.
        assert os.path.exists(staged(d, f"{CONFDIR}/forwards"))
    return run


def systemd_analyze(d):
    def run():
        tool = shutil.which("systemd-analyze")
        if tool is None or UNITDIR == "no":
            print("  (no systemd-analyze on this machine: unit not analyzed)")
            return
        unit = staged(d, f"{UNITDIR}/mxfwd.service")
        # verify wants the binary at ExecStart's path: point it at the
        # staged one.  Any warning (an unknown key, a bad value) fails.
        checked = os.path.join(d, "mxfwd.service")
        with open(checked, "w") as f:
            f.write(read(unit).replace(f"{SBINDIR}/mxfwd", staged(d, f"{SBINDIR}/mxfwd")))
        r = subprocess.run([tool, "verify", "--man=no", checked], capture_output=True, text=True,
                           timeout=TIMEOUT)
        assert r.returncode == 0 and r.stdout + r.stderr == "", r.stdout + r.stderr
        r = subprocess.run([tool, "security", "--offline=true", "--no-pager", unit],
                           capture_output=True, text=True, timeout=TIMEOUT)
        m = re.search(r"Overall exposure level for mxfwd\.service: (\d+\.\d+) (\w+)", r.stdout)
        assert m, r.stdout + r.stderr
        print(f"  systemd-analyze security: exposure {m.group(1)} {m.group(2)}")
        assert float(m.group(1)) <= MAX_EXPOSURE, r.stdout
        os.unlink(checked)
    return run


def main():
    with tempfile.TemporaryDirectory(prefix="mxfwd-install-") as d:
        for name, fn in [("installs_the_expected_files", installs_the_expected_files),
                         ("the_unit_runs_the_installed_paths", the_unit_runs_the_installed_paths),
                         ("the_installed_config_is_valid", the_installed_config_is_valid),
                         ("a_second_install_keeps_edited_files",
                          a_second_install_keeps_edited_files),
                         ("systemd_analyze", systemd_analyze)]:
            check(name, fn(d))
    print(f"RESULT: passed={passed} failed={failed}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
