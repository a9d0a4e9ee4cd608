"""mxtest - the harness of mxfwd's end-to-end tests.

End-to-end tests run the real mxfwd binary on loopback against real peers:
dnsmasq as the DNS server, a byte-exact SMTP client, and an SMTP sink that
records exactly what arrives.  Everything binds 127.0.0.1 on ports chosen
at run time; every process a test starts is stopped by its PID, also when
the test fails.

A test file defines functions decorated with @test and ends with
`mxtest.main()`, which runs them (or those named on the command line),
prints one line per test and a last line "RESULT: passed=N failed=M".

Environment: MXFWD is the path of the mxfwd binary (meson passes it).
"""

import base64
import hashlib
import hmac
import os
import random
import re
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback

MXFWD = os.environ.get("MXFWD", os.path.join(os.path.dirname(__file__), "../../build/mxfwd/mxfwd"))
DNSMASQ = "/usr/sbin/dnsmasq"
TIMEOUT = 10.0

_tests = []
_cleanups = []


def test(fn):
    """Register a test function."""
    _tests.append(fn)
    return fn


def on_cleanup(fn):
    """Run fn when the current test ends, pass or fail (last in, first out)."""
    _cleanups.append(fn)


SANITIZER_REPORT = re.compile(r"ERROR: (?:Address|Leak|Thread|Memory)Sanitizer|runtime error: ")


def check_sanitizers(text, what):
    """Fail when a sanitizer build of mxfwd reported a problem in text."""
    m = SANITIZER_REPORT.search(text or "")
    if m:
        start = max(0, m.start() - 200)
        raise AssertionError(f"{what}: sanitizer report:\n{text[start:start + 4000]}")


def run(argv, **kwargs):
    """subprocess.run with captured text output, bounded in time, and a
    check that a sanitizer build reported nothing."""
    kwargs.setdefault("timeout", TIMEOUT)
    r = subprocess.run(argv, capture_output=True, text=True, **kwargs)
    check_sanitizers(r.stderr, " ".join(argv))
    return r


def wait_until(predicate, timeout=TIMEOUT, what="condition"):
    """Poll predicate until it is true; AssertionError after timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def free_port(kind=socket.SOCK_STREAM):
    """A port free on 127.0.0.1 for TCP (and, for DNS, UDP) right now.

    Picked below the ephemeral range (32768-60999 here), where the source
    ports of every outbound connection on the machine come from: a port
    found free there can be taken as one before the server binds it."""
    rng = random.Random(os.getpid() ^ time.monotonic_ns())
    for _ in range(200):
        port = rng.randrange(20000, 32768)
        try:
            with socket.socket(socket.AF_INET, kind) as s:
                s.bind(("127.0.0.1", port))
            if kind == socket.SOCK_STREAM:
                # dnsmasq wants the UDP port too: check both.
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
                    u.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
    raise RuntimeError("no free port")


def loopback6():
    """Whether this machine has ::1 (a test that needs it says it skips)."""
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        print("skipped: no ::1")
        return False


def tempdir():
    """A temporary directory removed when the test ends."""
    d = tempfile.TemporaryDirectory(prefix="mxfwd-e2e-")
    on_cleanup(d.cleanup)
    return d.name


class Process:
    """A child process stopped by its PID when the test ends."""

    def __init__(self, argv, log_path=None, env=None, preexec_fn=None, cwd=None):
        self.argv = argv
        self.log_path = log_path
        self._log = open(log_path, "wb") if log_path else subprocess.DEVNULL
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self._log,
                                     stderr=subprocess.STDOUT, env=env, preexec_fn=preexec_fn,
                                     cwd=cwd)
        on_cleanup(self.stop)

    @property
    def pid(self):
        return self.proc.pid

    def running(self):
        return self.proc.poll() is None

    def send_signal(self, sig):
        if self.running():
            os.kill(self.proc.pid, sig)

    def wait(self, timeout=TIMEOUT):
        return self.proc.wait(timeout=timeout)

    def stop(self, sig=signal.SIGTERM, timeout=TIMEOUT):
        """Stop the process; returns its exit status."""
        if self.running():
            os.kill(self.proc.pid, sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=timeout)
        if self._log is not subprocess.DEVNULL and not self._log.closed:
            self._log.close()
            check_sanitizers(self.log(), os.path.basename(self.argv[0]))
        return self.proc.returncode

    def log(self):
        if not self.log_path:
            return ""
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")


# ---- DNS -------------------------------------------------------------------

def _dns_query(port, name, qtype=1, timeout=0.2):
    """Send one query to 127.0.0.1:port; the rcode, or None without answer."""
    qid = os.getpid() & 0xFFFF
    packet = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    for label in name.rstrip(".").split("."):
        packet += bytes([len(label)]) + label.encode()
    packet += b"\0" + struct.pack(">HH", qtype, 1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.sendto(packet, ("127.0.0.1", port))
        try:
            data, _ = s.recvfrom(4096)
        except socket.timeout:
            return None
    return data[3] & 0x0F


# The sender domains the tests use.  mxfwd refuses a sender whose domain
# does not exist (reject_unknown_sender_domain, on by default), so every
# test DNS server makes these exist, and nothing more: a record under each
# (an empty non-terminal, RFC 8020), none at it, so that every lookup at
# the domain itself (SPF, DMARC, MX, A) finds what the test publishes
# there, or nothing, as before.
SENDER_DOMAINS = (
    "origin.test", "b.test", "d.test", "vil.test", "none.test", "strict.test", "quar.test",
    "dmtemp.test", "esp.test", "forwarded.test", "signed.test", "keyfail.test", "pass.test",
    "fail.test", "soft.test", "reject-spf.test", "reject-dkim.test", "spf-fail.test",
    "client.test", "badhelo.test", "fwd.test", "slow.test", "bad.test",
    # Real providers' long senders (test_srs_store.py, test_srs_redis.py).
    "amazonses.com", "em1234.example.net", "bounce.mailchimpapp.net", "lists.example.org")


def sender_records(domains=SENDER_DOMAINS):
    """The dnsmasq options that make each of domains exist (see above)."""
    return [f"--txt-record=_sender.{d},test sender domain" for d in domains]


class Dnsmasq:
    """An authoritative test DNS server on a loopback port.

    records are dnsmasq options, e.g. "--mx-host=alias.test,mx.test,10",
    "--host-record=mx.test,127.0.0.1", '--txt-record=x.test,"v=spf1 -all"'.
    The sender domains of SENDER_DOMAINS exist (senders=False: they do
    not); every other name is NXDOMAIN (--local=/#/).  tcp=True runs it
    in its normal foreground mode, which serves each TCP connection in a
    child process, for peers that open TCP connections to it (rspamd's
    resolver does): the debug mode used otherwise serves them in its one
    process, and one left open stalls every other query.
    """

    def __init__(self, records=(), port=None, senders=True, tcp=False):
        records = list(records) + (sender_records() if senders else [])
        self.port = port or free_port()
        self.dir = tempdir()
        mode = "--keep-in-foreground" if tcp else "--no-daemon"
        argv = [DNSMASQ, mode, f"--port={self.port}", "--listen-address=127.0.0.1",
                "--bind-interfaces", "--no-resolv", "--no-hosts", "--conf-file=/dev/null",
                "--pid-file=", "--local=/#/", "--log-facility=-"]
        self.proc = Process(argv + list(records), log_path=os.path.join(self.dir, "dnsmasq.log"))
        wait_until(lambda: not self.proc.running() or _dns_query(self.port, "ready.invalid", timeout=0.02) is not None,
                   what="dnsmasq to answer")
        if not self.proc.running():
            raise RuntimeError("dnsmasq exited: " + self.proc.log())

    @property
    def server(self):
        """The dns_servers value for mxfwd.conf."""
        return f"127.0.0.1:{self.port}"


# A DNSSEC trust anchor for the root that no answer can match.
_BOGUS_ANCHOR = ("--trust-anchor=.,12345,8,2,"
                 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")


def servfail_zone(zone):
    """The dnsmasq option that makes every name in zone answer SERVFAIL:
    the zone is forwarded to a validating dnsmasq whose trust anchor
    nothing upstream matches.  (A zone forwarded to a port nobody answers
    on is silent instead: the timeout case.)"""
    upstream = Dnsmasq()
    validating = Dnsmasq(["--dnssec", _BOGUS_ANCHOR, f"--server=127.0.0.1#{upstream.port}"])
    return f"--server=/{zone}/127.0.0.1#{validating.port}"


def txt_record(name, value, chunk=255):
    """A dnsmasq option publishing one TXT record at name whose value is
    split into character-strings of at most chunk octets (a DKIM key is
    longer than the 255 one string may hold).  Readers join them.  On
    dnsmasq's command line a comma separates strings and quotes are taken
    literally, so the value may hold no comma."""
    assert "," not in value, value
    parts = [value[i:i + chunk] for i in range(0, len(value), chunk)] or [""]
    return f"--txt-record={name}," + ",".join(parts)


# ---- DKIM with a real signer and verifier ------------------------------------

# python3-dkim (dkimpy) from Debian: its module lives with Debian's python3.
DEBIAN_PYTHON = "/usr/bin/python3"
DKIMSIGN = "/usr/bin/dkimsign"
DKIMVERIFY = "/usr/bin/dkimverify"


class DkimKey:
    """A DKIM key pair made now with openssl: "rsa" (2048 bits) or
    "ed25519".  .private is the file dkimsign takes, .pem the PEM private
    key (mxfwd's signing_key); .record the key record to publish at
    SELECTOR._domainkey.DOMAIN."""

    def __init__(self, kind="rsa", bits=2048):
        self.kind = kind
        directory = tempdir()
        pem = os.path.join(directory, "key.pem")
        self.pem = pem  # what mxfwd's signing_key takes
        if kind == "rsa":
            subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt",
                            f"rsa_keygen_bits:{bits}", "-out", pem], check=True, capture_output=True)
            self.private = pem
            pub = subprocess.run(["openssl", "pkey", "-in", pem, "-pubout", "-outform", "DER"],
                                 check=True, capture_output=True).stdout
        else:
            subprocess.run(["openssl", "genpkey", "-algorithm", "ED25519", "-out", pem],
                           check=True, capture_output=True)
            der = subprocess.run(["openssl", "pkey", "-in", pem, "-outform", "DER"],
                                 check=True, capture_output=True).stdout
            # dkimpy takes the 32-octet seed in base64 (RFC 8463's form);
            # PKCS#8 ends with it, the SubjectPublicKeyInfo with the key.
            self.private = os.path.join(directory, "key.seed")
            with open(self.private, "wb") as f:
                f.write(base64.b64encode(der[-32:]) + b"\n")
            pub = subprocess.run(["openssl", "pkey", "-in", pem, "-pubout", "-outform", "DER"],
                                 check=True, capture_output=True).stdout[-32:]
        self.record = f"v=DKIM1; k={kind}; p={base64.b64encode(pub).decode()}"

    def publish(self, selector, domain):
        """The dnsmasq option for the key record."""
        return txt_record(f"{selector}._domainkey.{domain}", self.record)


def dkim_sign(message, key, selector, domain, hcanon="relaxed", bcanon="simple", identity=None):
    """message (bytes, CRLF lines) signed by dkimsign: the DKIM-Signature
    field, then the message unchanged."""
    argv = [DEBIAN_PYTHON, DKIMSIGN, "--hcanon", hcanon, "--bcanon", bcanon,
            "--signalg", "rsa-sha256" if key.kind == "rsa" else "ed25519-sha256"]
    if identity:
        argv += ["--identity", identity]
    r = subprocess.run(argv + [selector, domain, key.private], input=message,
                       capture_output=True, timeout=TIMEOUT)
    # dkimsign passes the message through unsigned when it fails.
    assert r.returncode == 0 and r.stdout.startswith(b"DKIM-Signature:"), r.stderr.decode()
    return r.stdout


# dkimverify, its key lookups sent to a test DNS server instead of the
# system's resolver: nothing leaves loopback.
_VERIFY = """
import runpy, sys
import dns.resolver
r = dns.resolver.Resolver(configure=False)
r.nameservers = ["127.0.0.1"]
r.port = int(sys.argv[1])
dns.resolver.default_resolver = r
sys.argv = [sys.argv[2]] + sys.argv[3:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def dkim_verify(message, dns, index=0):
    """Run dkimverify on message (bytes) for its signature number index,
    asking dns (a Dnsmasq) for keys.  (ok, output)."""
    r = subprocess.run([DEBIAN_PYTHON, "-c", _VERIFY, str(dns.port), DKIMVERIFY, "--index",
                        str(index)], input=message, capture_output=True, timeout=TIMEOUT)
    out = (r.stdout + r.stderr).decode("utf-8", "replace")
    return r.returncode == 0 and "signature ok" in out, out


# ---- SMTP client -------------------------------------------------------------

class Reply:
    def __init__(self, code, lines, raw):
        self.code = code
        self.lines = lines  # text after "NNN-" / "NNN "
        self.raw = raw      # the bytes as received

    @property
    def text(self):
        return " ".join(self.lines)

    def __repr__(self):
        return f"Reply({self.code}, {self.lines!r})"


class SmtpClient:
    """A byte-exact SMTP client: sends what it is given, reads whole replies."""

    def __init__(self, port, host="127.0.0.1", timeout=TIMEOUT, family=socket.AF_INET,
                 source=None):
        """source: the loopback address to connect from (127.0.0.2, ...)."""
        self.sock = socket.create_connection(
            (host, port), timeout=timeout, source_address=(source, 0) if source else None) \
            if family == socket.AF_INET else self._connect6(host, port, timeout)
        self.buf = b""
        on_cleanup(self.close)

    @staticmethod
    def _connect6(host, port, timeout):
        s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        s.settimeout(timeout)
        s.connect((host, port))
        return s

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise EOFError("connection closed by server")
        self.buf += chunk

    def reply(self):
        """Read one reply, multiline or not."""
        raw = b""
        lines = []
        while True:
            while b"\r\n" not in self.buf:
                self._fill()
            line, self.buf = self.buf.split(b"\r\n", 1)
            raw += line + b"\r\n"
            m = re.match(rb"^(\d{3})([ -])(.*)$", line)
            if not m:
                raise AssertionError(f"malformed reply line {line!r}")
            lines.append(m.group(3).decode("utf-8", "replace"))
            if m.group(2) == b" ":
                return Reply(int(m.group(1)), lines, raw)

    def cmd(self, line, expect=None):
        """Send a command line (CRLF added) and return its reply."""
        self.send(line + "\r\n")
        r = self.reply()
        if expect is not None:
            assert r.code == expect, f"{line!r}: expected {expect}, got {r}"
        return r

    def closed(self, timeout=TIMEOUT):
        """Whether the server closes the connection (reads until EOF)."""
        self.sock.settimeout(timeout)
        try:
            while True:
                if not self.sock.recv(65536):
                    return True
        except (ConnectionResetError, BrokenPipeError):
            return True
        except socket.timeout:
            return False

    def starttls(self, server_hostname=None, context=None):
        if context is None:
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        self.sock = context.wrap_socket(self.sock, server_hostname=server_hostname)
        return self.sock

    def greeting(self, expect=220):
        r = self.reply()
        assert r.code == expect, f"greeting: expected {expect}, got {r}"
        return r

    def transaction(self, sender, rcpts, data, ehlo="client.test"):
        """EHLO, MAIL, RCPT..., DATA with data (bytes, dot-stuffed by the
        caller, without the final dot).  Returns the reply to the final dot."""
        self.cmd(f"EHLO {ehlo}", expect=250)
        self.cmd(f"MAIL FROM:<{sender}>", expect=250)
        for r in rcpts:
            self.cmd(f"RCPT TO:<{r}>", expect=250)
        self.cmd("DATA", expect=354)
        self.send(data + b".\r\n")
        return self.reply()


def tls_certificate(directory, name="mx.test"):
    """A self-signed certificate and key made now: (cert path, key path)."""
    cert = os.path.join(directory, "cert.pem")
    key = os.path.join(directory, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", f"/CN={name}", "-addext", f"subjectAltName=DNS:{name}",
                    "-keyout", key, "-out", cert], check=True, capture_output=True)
    return cert, key


def srs0(user, domain, day=None, secret=None, srs_domain="fwd.test"):
    """The SRS0 address docs/srs.md's scheme makes of user@domain on a given
    day number (default today), with the test secret unless given."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
    day = int(time.time()) // 86400 if day is None else day
    secret = Mxfwd.SECRET if secret is None else secret
    tt = alphabet[(day >> 5) & 31] + alphabet[day & 31]
    mac = hmac.new(secret.encode(), (tt + domain + user).lower().encode(), hashlib.sha1).digest()
    h = base64.b64encode(mac).decode()[:4].replace("+", "-").replace("/", "_")
    return f"SRS0={h}={tt}={domain}={user}@{srs_domain}"


# ---- the spool -------------------------------------------------------------

def journal_images(directory, states=(b"M",)):
    """{queue id: image} of the messages in a spool's commit journal whose
    records are in one of states (default: queued), read as docs/spool.md
    describes the segments."""
    images = {}
    jdir = os.path.join(directory, "journal")
    try:
        segments = sorted(os.listdir(jdir))
    except FileNotFoundError:
        return images
    for name in segments:
        try:
            with open(os.path.join(jdir, name), "rb") as f:
                data = f.read()
        except FileNotFoundError:
            continue  # a segment with nothing queued, removed since the listing
        if data[:8] != b"MXFJNL01":
            continue
        pos = 8
        while pos + 9 <= len(data):
            state = data[pos:pos + 1]
            n = struct.unpack(">I", data[pos + 5:pos + 9])[0]
            if state not in (b"M", b"D", b"F", b"X") or pos + 9 + n > len(data):
                break
            if state in states:
                image = data[pos + 9:pos + 9 + n]
                images[SpoolMessage(None, image).id] = image
            pos += 9 + n
    return images


class SpoolMessage:
    """A message of the spool, read as docs/spool.md describes it: its file,
    or while it has none its record in the commit journal."""

    def __init__(self, path, data=None):
        # A journal message moves to a file of its own at its first state
        # change (a deferral): between looking for the file and reading the
        # journal it may have moved, so look twice.
        for _ in range(2):
            if data is not None:
                break
            if os.path.exists(path):
                with open(path, "rb") as f:
                    data = f.read()
            else:
                data = journal_images(os.path.dirname(path)).get(os.path.basename(path))
        assert data is not None, f"{path}: no such message in the spool"
        assert data[:8] == b"MXFSPL01", f"{path}: not a spool file"
        self.rcpts = []   # (destination, alias)
        self.updates = 0
        self.complete = False
        pos = 8
        while pos < len(data):
            kind = chr(data[pos])
            if pos + 9 > len(data):
                break  # a state record being appended as we read
            n = struct.unpack(">Q", data[pos + 1:pos + 9])[0]
            if pos + 9 + n > len(data):
                break
            payload = data[pos + 9:pos + 9 + n]
            pos += 9 + n
            if kind == "B":
                self.body = payload
            elif kind in "ICHSW":
                setattr(self, {"I": "id", "C": "client", "H": "helo", "S": "sender",
                               "W": "srs_sender"}[kind], payload.decode("utf-8"))
            elif kind == "T":
                self.arrival_us = struct.unpack(">Q", payload)[0]
            elif kind == "F":
                self.flags = struct.unpack(">I", payload)[0]
            elif kind == "P":
                self.prepend = payload
            elif kind == "R":
                a = struct.unpack(">I", payload[:4])[0]
                addr = payload[4:4 + a].decode("utf-8")
                b = struct.unpack(">I", payload[4 + a:8 + a])[0]
                self.rcpts.append((addr, payload[8 + a:8 + a + b].decode("utf-8")))
            elif kind == "E":
                self.complete = True
            elif kind == "U":
                self.updates += 1

    @property
    def message(self):
        """The bytes that will be delivered: prepended headers, then the body."""
        return self.prepend + self.body


def spool_files(directory):
    """What a spool holds, sorted (queue ids sort by arrival): the names in
    its directory, and the ids of the messages in its journal that have no
    file of their own.  The ID.tmp of a message the journal has is that
    message's file being made as it leaves the journal: not listed (the
    journal is read after the directory, so it knows every such id)."""
    try:
        names = [n for n in os.listdir(directory) if n != "journal"]
    except FileNotFoundError:
        return []
    moving = set(journal_images(directory, states=(b"M", b"F", b"D")))
    held = set(names) | set(journal_images(directory))
    return sorted(n for n in held if not (n.endswith(".tmp") and n[:-4] in moving))


# ---- Postfix -----------------------------------------------------------------

class Postfix:
    """A private Postfix instance (never /etc/postfix): its own configuration,
    queue and log under a temporary directory, listening on a loopback port,
    relaying the domains given to [127.0.0.1]:relay_port.  main_cf adds
    settings.  Needs root (Postfix's master drops to the postfix user)."""

    def __init__(self, relay_domains, relay_port, main_cf=""):
        d = tempdir()
        os.chmod(d, 0o755)  # the postfix user walks down to its queue
        self.dir = d
        self.cfg, self.queue, data = (os.path.join(d, x) for x in ("etc", "queue", "data"))
        for x in (self.cfg, self.queue, data):
            os.makedirs(x)
        shutil.chown(data, "postfix")
        self.port = free_port()
        self.maillog = os.path.join(d, "maillog")
        transport = ", ".join(f"{dom}=smtp:[127.0.0.1]:{relay_port}" for dom in relay_domains)
        with open(os.path.join(self.cfg, "main.cf"), "w") as f:
            f.write(f"""compatibility_level = 3.6
queue_directory = {self.queue}
data_directory = {data}
meta_directory = /etc/postfix
mail_owner = postfix
setgid_group = postdrop
maillog_file_prefixes = /tmp, /var
maillog_file = {self.maillog}
myhostname = pf.test
inet_interfaces = loopback-only
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
mydestination =
alias_maps =
alias_database =
relay_domains = {" ".join(relay_domains)}
transport_maps = inline:{{ {transport} }}
smtp_dns_support_level = disabled
smtp_tls_security_level = none
smtputf8_enable = yes
{main_cf}
""")
        with open("/etc/postfix/master.cf") as f:
            master = [("#" + l if l.startswith("smtp      inet") else l) for l in f]
        master.append(f"127.0.0.1:{self.port} inet n - n - - smtpd\n")
        if not any(l.startswith("postlog") for l in master):
            master.append("postlog   unix-dgram n  -       n       -       1       postlogd\n")
        with open(os.path.join(self.cfg, "master.cf"), "w") as f:
            f.writelines(master)
        link = os.path.join(self.cfg, "makedefs.out")
        if os.path.lexists(link):
            os.unlink(link)
        subprocess.run(["postconf", "-c", self.cfg, "-F", "*/*/chroot = n"], check=True)
        self.proc = Process(["postfix", "-c", self.cfg, "start-fg"],
                            log_path=os.path.join(d, "postfix.log"))
        on_cleanup(self.stop)
        wait_until(lambda: not self.proc.running() or _port_open(self.port),
                   what="postfix to listen")
        assert self.proc.running(), self.log()

    def stop(self):
        """Stop the master and its services.  start-fg leaves the master a
        child of postfix-script's shell, which a signal to the shell would
        orphan: `postfix stop` signals the master by the PID in its private
        queue directory, and the shell ends with it."""
        if self.proc.running():
            subprocess.run(["postfix", "-c", self.cfg, "stop"], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, timeout=TIMEOUT)
            try:
                self.proc.wait()
            except subprocess.TimeoutExpired:
                pass
        self.proc.stop()

    def log(self):
        try:
            with open(self.maillog, errors="replace") as f:
                return f.read()
        except OSError:
            return self.proc.log()


# ---- mxfwd -------------------------------------------------------------------

# Settings for a forwarder whose deliveries all fail for now (every route
# leads to a port where nothing listens): what it accepts stays in the
# spool, for tests that look at the files.
NO_DELIVERY = {"route": "* 127.0.0.1:1"}


class Mxfwd:
    """mxfwd serve with a configuration of the test's own.

    config: extra "key = value" settings (a dict; list values repeat the key).
    forwards: the forward table text.  Secrets get one fixed test secret
    unless given.  A test that brings no dns_servers gets a dnsmasq of its
    own (self.dns, every name NXDOMAIN but the sender domains tests use,
    SENDER_DOMAINS): mxfwd asks DNS about every client and message, and
    nothing may leave loopback.
    """

    SECRET = "e2e-test-secret-0123456789abcdef"

    def __init__(self, forwards="", config=None, secrets=None, start=True, args=()):
        self.dir = tempdir()
        self.port = free_port()
        self.conf = os.path.join(self.dir, "mxfwd.conf")
        settings = {
            "hostname": "mx.fwd.test",
            "listen": f"127.0.0.1:{self.port}",
            "srs_domain": "fwd.test",
            "srs_secrets": os.path.join(self.dir, "srs.secrets"),
            "forward_table": os.path.join(self.dir, "forwards"),
            "spool_dir": os.path.join(self.dir, "spool"),
            "control_socket": os.path.join(self.dir, "run", "mxfwd.sock"),
        }
        settings.update(config or {})
        self.dns = None
        if "dns_servers" not in settings:
            self.dns = Dnsmasq()
            settings["dns_servers"] = self.dns.server
        self.settings = settings
        self.write_file("srs.secrets", (secrets or self.SECRET) + "\n", mode=0o600)
        self.write_file("forwards", forwards)
        self.write_config()
        self.proc = None
        if start:
            self.start(args)

    def write_config(self):
        """Write mxfwd.conf from self.settings (change them, then call this
        before start())."""
        with open(self.conf, "w") as f:
            for key, value in self.settings.items():
                for v in value if isinstance(value, list) else [value]:
                    f.write(f"{key} = {v}\n")

    def write_file(self, name, text, mode=0o644):
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, mode)
        return path

    def start(self, args=(), preexec_fn=None, env=None):
        """Start mxfwd serve; preexec_fn runs in the child before it (to
        set resource limits, say); env adds environment variables."""
        for attempt in range(3):
            self.proc = Process([MXFWD, "serve", "-c", self.conf, *args],
                                log_path=os.path.join(self.dir, "mxfwd.log"),
                                preexec_fn=preexec_fn,
                                env=dict(os.environ, **env) if env else None)
            wait_until(lambda: not self.proc.running() or self._ready(), what="mxfwd to start")
            if self.proc.running():
                return self
            # Another process took the port after free_port() found it
            # free: a new one, if the test let mxtest choose it.
            taken = f"cannot listen on 127.0.0.1:{self.port}: address already in use"
            if taken not in self.log() or self.settings.get("listen") != f"127.0.0.1:{self.port}":
                break
            self.port = free_port()
            self.settings["listen"] = f"127.0.0.1:{self.port}"
            self.write_config()
        raise AssertionError(f"mxfwd exited with {self.proc.proc.returncode}:\n{self.log()}")

    def _ready(self):
        """The SMTP port accepts and, when the log comes here, mxfwd said
        it started: the queue, control socket and metrics are open too."""
        if not _port_open(self.port):
            return False
        return self.settings.get("log") == "syslog" or "mxfwd started" in self.log()

    def stop(self, sig=signal.SIGTERM):
        return self.proc.stop(sig) if self.proc else None

    def log(self):
        return self.proc.log() if self.proc else ""

    def wait_log(self, pattern, timeout=TIMEOUT):
        """Wait for a log line matching the regular expression; the match."""
        rx = re.compile(pattern, re.M)
        return wait_until(lambda: rx.search(self.log()), timeout, what=f"log line /{pattern}/")

    def client(self, greet=True, source=None, timeout=TIMEOUT):
        c = SmtpClient(self.port, source=source, timeout=timeout)
        if greet:
            c.greeting()
        return c

    def run(self, *args, timeout=TIMEOUT, input=None):
        """Run an mxfwd subcommand with this configuration."""
        return run([MXFWD, *args, "-c", self.conf], timeout=timeout, input=input)


def _port_open(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


# ---- the outbound client on its own ------------------------------------------

MXDELIVER = os.environ.get("MXDELIVER",
                           os.path.join(os.path.dirname(__file__), "../../build/tests/e2e/mxdeliver"))


class Result:
    """One recipient's outcome as mxdeliver prints it."""

    def __init__(self, fields, reply):
        self.status = fields["status"]
        self.dsn = fields["dsn"]
        self.remote = fields["remote"] == "1"
        self.relay = fields["relay"]
        self.reply = reply

    def __repr__(self):
        return f"Result({self.status} {self.dsn} relay={self.relay} reply={self.reply!r})"


class Delivery:
    """What one mxdeliver run gave: results[(job id, rcpt)], stats, log."""

    def __init__(self, stdout, stderr, returncode):
        self.results = {}
        self.stats = {}
        self.log = stderr
        self.returncode = returncode
        for line in stdout.splitlines():
            if line.startswith("result "):
                head, reply = line.split(" reply=", 1)
                fields = dict(w.split("=", 1) for w in head.split()[1:])
                self.results[(fields["id"], fields["rcpt"].strip("<>"))] = Result(fields, reply)
            elif line.startswith("stats "):
                self.stats = {k: int(v) for k, v in (w.split("=") for w in line.split()[1:])}

    def __getitem__(self, key):
        return self.results[key]


def job(ident, path, sender, domain, rcpts, **options):
    """A job line for mxdeliver; options: offset, length, prepend (a path),
    smtputf8, bit8 (8BITMIME)."""
    words = [f"job id={ident} file={path} sender={sender or '<>'} domain={domain}"]
    words += [f"rcpt={r}" for r in rcpts]
    for key in ("offset", "length", "prepend"):
        if key in options:
            words.append(f"{key}={options[key]}")
    if options.get("smtputf8"):
        words.append("smtputf8")
    if options.get("bit8"):
        words.append("8bitmime")
    return " ".join(words)


def deliver(jobs, config, args=(), timeout=30):
    """Run the outbound client (mxdeliver) on jobs, a list of job lines and
    "wait" separators, with a configuration of config's settings (a dict;
    list values repeat the key).  Returns a Delivery; fails on a sanitizer
    report or when mxdeliver did not end cleanly."""
    directory = tempdir()
    conf = os.path.join(directory, "mxdeliver.conf")
    settings = {"hostname": "mx.fwd.test", "listen": "127.0.0.1:1"}
    settings.update(config)
    with open(conf, "w") as f:
        for key, value in settings.items():
            for v in value if isinstance(value, list) else [value]:
                f.write(f"{key} = {v}\n")
    r = subprocess.run([MXDELIVER, "-v", "-c", conf, "-t", str(timeout), *args],
                       input="\n".join(jobs) + "\n", capture_output=True, text=True,
                       timeout=timeout + TIMEOUT)
    check_sanitizers(r.stderr, "mxdeliver")
    d = Delivery(r.stdout, r.stderr, r.returncode)
    if r.returncode != 0:
        raise AssertionError(f"mxdeliver exited with {r.returncode}:\n{r.stdout}\n{r.stderr}")
    return d


def write_bytes(directory, name, data):
    path = os.path.join(directory, name)
    with open(path, "wb") as f:
        f.write(data)
    return path


# ---- SMTP sink: mxsink.py, imported here (mxtest.Sink) ---------------------

# At the end of the module: mxsink uses the helpers above.
from mxsink import Sink, Transaction  # noqa: E402,F401


# ---- runner -----------------------------------------------------------------

def main():
    selected = sys.argv[1:]
    passed = failed = 0
    for fn in _tests:
        if selected and fn.__name__ not in selected:
            continue
        start = time.monotonic()
        ok = True
        try:
            fn()
        except Exception:
            ok = False
            traceback.print_exc()
        # Cleanups stop processes; a sanitizer report found then fails the test.
        while _cleanups:
            try:
                _cleanups.pop()()
            except Exception:
                ok = False
                traceback.print_exc()
        status = "ok" if ok else "FAIL"
        passed += ok
        failed += not ok
        print(f"{status} {fn.__name__} ({time.monotonic() - start:.2f}s)", flush=True)
    print(f"RESULT: passed={passed} failed={failed}")
    sys.exit(1 if failed else 0)
