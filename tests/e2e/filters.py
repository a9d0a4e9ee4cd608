"""filters - real mail filters from Debian run privately by the tests, on
loopback ports, their DNS pointed at the test's dnsmasq (docs/milter.md;
rspamd's needs mxtest.Dnsmasq(tcp=True)):

    Rspamd(dns, headers=True)   rspamd 3.4, its proxy worker in milter mode
                                (.spec is mxfwd's milter value); headers:
                                add X-Spamd-Result, X-Spam-Status to what
                                it scans (milter_headers, local mail too)
    OpenDkim(dns)               OpenDKIM in verify mode: it adds
                                Authentication-Results: (authserv-id
                                mx.fwd.test)

Each runs as its own user in a temporary directory, is stopped by its PID
when the test ends, and .stop()/.start() lets a test take it away and
bring it back.
"""

import os
import pwd
import signal
import socket
import struct

import mxtest

RSPAMD = "/usr/bin/rspamd"
OPENDKIM = "/usr/sbin/opendkim"
GTUBE = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"


def available(*programs):
    return all(os.access(p, os.X_OK) for p in programs)


def _give(path, user):
    pw = pwd.getpwnam(user)
    for root, dirs, files in os.walk(path):
        for name in [root] + [os.path.join(root, f) for f in dirs + files]:
            os.chown(name, pw.pw_uid, pw.pw_gid)


def milter_ready(port, timeout=0.5):
    """Whether a milter answers the negotiation on 127.0.0.1:port."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(struct.pack(">IcIII", 13, b"O", 6, 0x1FF, 0x1FF7FF))
            head = s.recv(5)
            return len(head) == 5 and head[4:5] == b"O"
    except OSError:
        return False


def _packet(cmd, data=b""):
    return struct.pack(">I", len(data) + 1) + cmd + data


def milter_scans(port, timeout=5):
    """Whether a milter that answers only the end of a message (as rspamd
    asks) scans one on 127.0.0.1:port: its word on the end comes."""
    steps = [(b"C", b"probe\x004\x00\x19127.0.0.1\x00"), (b"H", b"probe\x00"),
             (b"M", b"<probe@origin.test>\x00"), (b"R", b"<probe@alias.test>\x00"), (b"T", b""),
             (b"L", b"Subject\x00probe\x00"), (b"N", b""), (b"B", b"probe\r\n"), (b"E", b"")]
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(_packet(b"O", struct.pack(">III", 6, 0x1FF, 0x1FF7FF)))
            s.sendall(b"".join(_packet(c, d) for c, d in steps))
            buf = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    return False
                buf += chunk
                while len(buf) >= 4 and len(buf) >= 4 + struct.unpack(">I", buf[:4])[0]:
                    n = struct.unpack(">I", buf[:4])[0]
                    kind, buf = buf[4:5], buf[4 + n:]
                    if kind in (b"a", b"c", b"d", b"r", b"t", b"y"):
                        return True
    except OSError:
        return False


def rspamd_config(directory, port, dns_port, headers=True):
    """Write a private rspamd configuration into directory (its run, db and
    log directories too, all given to _rspamd): the proxy worker on
    127.0.0.1:port in milter mode, scanning itself; the other workers on
    ports of their own, no fuzzy storage; its DNS the server on dns_port
    only (nothing leaves loopback); with headers, X-Spamd-Result and
    X-Spam-Status added to what it scans, local mail included."""
    over, local = os.path.join(directory, "override.d"), os.path.join(directory, "local.d")
    files = {
        (over, "worker-proxy.inc"): f'bind_socket = "127.0.0.1:{port}";\nmilter = yes;\n'
                                    'count = 1;\ntimeout = 120s;\nupstream "local" {\n'
                                    '  default = yes;\n  self_scan = yes;\n}\n',
        (over, "worker-normal.inc"): f'bind_socket = "127.0.0.1:{mxtest.free_port()}";\n'
                                     'count = 1;\n',
        (over, "worker-controller.inc"): f'bind_socket = "127.0.0.1:{mxtest.free_port()}";\n'
                                         'count = 1;\n',
        (over, "worker-fuzzy.inc"): "count = 0;\n",
        (over, "options.inc"): f'dns {{ nameserver = ["127.0.0.1:{dns_port}"]; timeout = 1s; '
                               'retransmits = 1; }\ndisable_hyperscan = true;\n',
    }
    if headers:
        files[(local, "milter_headers.conf")] = ('use = ["x-spamd-result", "x-spam-status"];\n'
                                                 'skip_local = false;\n'
                                                 'skip_authenticated = false;\n')
    for d in (over, local, "run", "db", "log"):
        os.makedirs(os.path.join(directory, d), exist_ok=True)
    for (where, name), text in files.items():
        with open(os.path.join(where, name), "w") as f:
            f.write(text)
    _give(directory, "_rspamd")


def rspamd_argv(directory):
    """rspamd in the foreground with the configuration of directory."""
    d = directory
    return [RSPAMD, "-f", "-u", "_rspamd", "-g", "_rspamd", "-c", "/etc/rspamd/rspamd.conf",
            f"--var=LOCAL_CONFDIR={d}", f"--var=RUNDIR={d}/run", f"--var=DBDIR={d}/db",
            f"--var=LOGDIR={d}/log"]


class Rspamd:
    def __init__(self, dns, headers=True, start=True):
        self.dir = mxtest.tempdir()
        os.chmod(self.dir, 0o755)
        self.port = mxtest.free_port()
        self.spec = f"inet:127.0.0.1:{self.port}"
        rspamd_config(self.dir, self.port, dns.port, headers)
        self.proc = None
        if start:
            self.start()

    def start(self):
        self.proc = mxtest.Process(rspamd_argv(self.dir),
                                   log_path=os.path.join(self.dir, "stdout.log"))
        # Ready once it has scanned a message: its workers load their
        # rules after they listen.
        mxtest.wait_until(lambda: not self.proc.running() or milter_scans(self.port), timeout=90,
                          what="rspamd to scan a message")
        assert self.proc.running(), self.proc.log() + self.log()
        return self

    def stop(self):
        """Stop it (SIGTERM to its main process, which ends its workers)."""
        self.proc.stop(signal.SIGTERM, timeout=30)
        mxtest.wait_until(lambda: not milter_ready(self.port, 0.2), what="rspamd to stop")

    def log(self):
        try:
            with open(os.path.join(self.dir, "log", "rspamd.log"), errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""


# OpenDKIM resolves through libunbound: this points it at the test's
# dnsmasq, without DNSSEC (no trust anchor), and lets names under .test
# be asked (unbound answers them NXDOMAIN itself by default, RFC 6761).
_UNBOUND = """server:
    do-not-query-localhost: no
    module-config: "iterator"
    local-zone: "test." nodefault
forward-zone:
    name: "."
    forward-addr: 127.0.0.1@{port}
"""


class OpenDkim:
    def __init__(self, dns, start=True):
        self.dir = mxtest.tempdir()
        os.chmod(self.dir, 0o755)
        self.port = mxtest.free_port()
        self.spec = f"inet:127.0.0.1:{self.port}"
        unbound = os.path.join(self.dir, "unbound.conf")
        with open(unbound, "w") as f:
            f.write(_UNBOUND.format(port=dns.port))
        self.conf = os.path.join(self.dir, "opendkim.conf")
        with open(self.conf, "w") as f:
            f.write(f"Mode v\nSocket inet:{self.port}@127.0.0.1\nSyslog no\n"
                    f"PidFile {self.dir}/opendkim.pid\nUserID opendkim\n"
                    f"ResolverConfiguration {unbound}\nAuthservID mx.fwd.test\n"
                    "AlwaysAddARHeader yes\n")
        _give(self.dir, "opendkim")
        self.proc = None
        if start:
            self.start()

    def start(self):
        self.proc = mxtest.Process([OPENDKIM, "-f", "-x", self.conf],
                                   log_path=os.path.join(self.dir, "opendkim.log"))
        mxtest.wait_until(lambda: not self.proc.running() or milter_ready(self.port), timeout=30,
                          what="opendkim to answer")
        assert self.proc.running(), self.proc.log()
        return self

    def stop(self):
        self.proc.stop()

