#!/usr/bin/env python3
"""Inbound SMTP benchmark: mxfwd beside Postfix + PostSRSd, in one run.

    bench/smtpd_bench.py [--runs 3] [--messages 5000] [--sessions 20]
                         [--size 4096] [--idle 10000] [--no-postfix] [--hold]
                         [--pipelining]

Prints figures; asserts nothing (it is not a test).

1. Accept rate: Postfix's smtp-source sends --messages messages of --size
   bytes over --sessions concurrent sessions (one message per connection)
   to mxfwd, and the same to a private Postfix instance configured as a
   forwarder with PostSRSd, as ANCHOR-BENCH.md describes; alternately,
   --runs times each.  mxfwd checks each client's name and each message's
   SPF, DKIM and DMARC against a dnsmasq on loopback that serves
   origin.test as a real sending domain is published: a forward-confirmed
   name for the client's address, an SPF record the load passes and a
   DMARC record, all with a TTL of 300 s, so mxfwd's cache answers after
   the first lookups as it would in production; Postfix, set up as the
   anchor is, checks none of them.  Both
   fsync every message before their 250.  Printed: messages accepted per
   second for each, their ratio per run and the medians; mxfwd's CPU time
   per message (its process, all threads,
   kernel time included) and the whole machine's busy CPU time per message
   (load tools, kernel threads and anything else running included).  Both
   forward what they accept to an smtp-sink meanwhile (end-to-end figures:
   bench/forward_bench.py).  Each mxfwd run starts afresh: an empty spool,
   its counters at zero.  With --hold, mxfwd's route leads instead to a
   listener that accepts and never greets, so its deliveries wait and
   cost next to nothing: the accept rate and CPU of accepting alone
   (mxfwd only; Postfix would wait out its queue).  With --pipelining,
   bench/smtp_pipeline sends instead of smtp-source, to every server: the
   same messages, but MAIL, RCPT and DATA pipelined and QUIT behind the
   message (RFC 2920), as mail servers send; four round trips a message
   instead of seven, and a generator that costs far less CPU.
2. Memory per idle connection: --idle connections opened to a fresh mxfwd
   and greeted; the growth of its resident memory (VmRSS, and PSS) divided
   by their number.

Everything listens on 127.0.0.1, on ports chosen at run time; every file is
in a temporary directory (at the top of the root file system when it may
be, see below), removed at the end (Postfix gets a config and
queue directory of its own there; nothing under /etc is changed, port 25
is never touched).  Postfix's services run without chroot, which would need
a copy of /etc in the temporary queue directory; PostSRSd 1.10 is the
Debian package (installed with apt-get when missing and running as root).

On ext4, creating a file costs far more where many files were deleted in
the last minutes: the inode allocator skips each recently deleted inode
(recently_deleted() in fs/ext4/ialloc.c), and on a shared machine other
tests delete thousands under /tmp, and Postfix deletes each message it
delivered.  A top-level directory gets an inode group of its own, so each
server gets one, and is measured on its own deletions only rather than
after someone else's cleanup; like Postfix, mxfwd deletes each message
once the sink has it, and its figure includes that.  Runs of this script
closer than a few minutes apart still see the last one's cleanup.
"""

import argparse
import json
import os
import resource
import selectors
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MXFWD = os.environ.get("MXFWD", os.path.join(ROOT, "build", "mxfwd", "mxfwd"))
# The pipelining load generator (--pipelining), built beside the mxfwd measured.
SMTP_PIPELINE = os.environ.get("SMTP_PIPELINE", os.path.join(
    os.path.dirname(os.path.dirname(MXFWD)), "bench", "smtp_pipeline"))
SECRET = "bench-secret-0123456789abcdef"
HZ = os.sysconf("SC_CLK_TCK")

procs = []
stoppers = []  # commands that stop what a process started (Postfix's master)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, what, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            sys.exit(f"{what} exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
                s.recv(100)
                return
        except OSError:
            time.sleep(0.05)
    sys.exit(f"{what} did not listen on port {port}")


def start(argv, log, **kw):
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=open(log, "wb"),
                         stderr=subprocess.STDOUT, **kw)
    procs.append(p)
    return p


def stop_all():
    for argv in stoppers:
        subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=30)
    for p in reversed(procs):
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def machine_busy_ticks():
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return sum(v) - v[3] - v[4]  # all but idle and iowait


def memory(pid):
    rss = pss = 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    pss = int(line.split()[1])
    except OSError:
        pass
    return rss, pss  # KiB


# ---- the two servers -----------------------------------------------------------

def start_dns(tmp):
    """dnsmasq on loopback for mxfwd's DNS (dns_servers: nothing leaves
    loopback): 127.0.0.1 is mail.origin.test (PTR and A), origin.test
    has it as its MX (a sender domain that takes mail: mxfwd's
    reject_unknown_sender_domain asks), and publishes an SPF record the
    load passes and a DMARC record, with a TTL
    of 300 s (dnsmasq's default for its own records is 0, which no real
    domain uses and which would make every message ask again); every other
    name is NXDOMAIN.  Returns its "127.0.0.1:port"."""
    for _ in range(20):
        port = free_port()
        p = start(["/usr/sbin/dnsmasq", "--no-daemon", f"--port={port}",
                   "--listen-address=127.0.0.1", "--bind-interfaces", "--no-resolv", "--no-hosts",
                   "--conf-file=/dev/null", "--pid-file=", "--local=/#/", "--log-facility=-",
                   "--local-ttl=300", "--host-record=mail.origin.test,127.0.0.1",
                   "--mx-host=origin.test,mail.origin.test,10",
                   "--txt-record=origin.test,v=spf1 ip4:127.0.0.1 -all",
                   "--txt-record=_dmarc.origin.test,v=DMARC1; p=none"],
                  os.path.join(tmp, f"dnsmasq-{port}.log"))
        time.sleep(0.3)
        if p.poll() is None:
            return f"127.0.0.1:{port}"
        procs.remove(p)
    sys.exit("dnsmasq did not start")


def start_mxfwd(tmp, sink_port, name="mxfwd", dns=None, extra="", connections=1000):
    d = os.path.join(tmp, name)
    os.makedirs(d)
    port = free_port()
    with open(os.path.join(d, "forwards"), "w") as f:
        f.write("user@alias.test  user@dest.test\n@alias.test  catchall@dest.test\n")
    with open(os.path.join(d, "srs.secrets"), "w") as f:
        f.write(SECRET + "\n")
    os.chmod(os.path.join(d, "srs.secrets"), 0o600)
    conf = os.path.join(d, "mxfwd.conf")
    with open(conf, "w") as f:
        f.write(f"""hostname = mx.bench.test
listen = 127.0.0.1:{port}
srs_domain = fwd.test
srs_secrets = {d}/srs.secrets
forward_table = {d}/forwards
spool_dir = {d}/spool
control_socket = {d}/run/mxfwd.sock
route = * 127.0.0.1:{sink_port}
dns_servers = {dns or start_dns(tmp)}
outbound_tls = off
max_connections = {connections}
max_connections_per_ip = {connections}
{extra}""")
    p = start([MXFWD, "serve", "-c", conf], os.path.join(d, "mxfwd.log"))
    wait_port(port, p, "mxfwd")
    return p, port, os.path.join(d, "spool")


def mxfwd_accepted(spool):
    """Messages the daemon of that spool has accepted (`mxfwd stats`)."""
    conf = os.path.join(os.path.dirname(spool), "mxfwd.conf")
    r = subprocess.run([MXFWD, "stats", "--json", "-c", conf], capture_output=True, text=True,
                       timeout=30)
    try:
        return json.loads(r.stdout)["stats"]["accepted"]
    except (ValueError, KeyError):
        return -1


def ensure_postsrsd():
    if shutil.which("postsrsd") or os.path.exists("/usr/sbin/postsrsd"):
        return True
    if os.geteuid() != 0:
        print("postsrsd is not installed (apt-get install postsrsd); skipping Postfix")
        return False
    subprocess.run(["apt-get", "install", "-y", "-q", "--no-install-recommends", "postsrsd"],
                   check=True, env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"),
                   stdout=subprocess.DEVNULL)
    return True


def start_postfix(tmp, sink_port, extra=""):
    """A private Postfix instance forwarding alias.test through PostSRSd;
    extra: more main.cf lines (smtpd_milters)."""
    d = os.path.join(tmp, "postfix")
    cfg, queue, data = (os.path.join(d, x) for x in ("etc", "queue", "data"))
    for x in (cfg, queue, data):
        os.makedirs(x)
    shutil.chown(data, "postfix")
    port, fwd, rev = free_port(), free_port(), free_port()

    with open(os.path.join(d, "srs.secret"), "w") as f:
        f.write(SECRET + "\n")
    os.chmod(os.path.join(d, "srs.secret"), 0o600)
    start(["/usr/sbin/postsrsd", f"-s{d}/srs.secret", "-dfwd.test", f"-f{fwd}", f"-r{rev}",
           "-l127.0.0.1", "-4", "-unobody"], os.path.join(d, "postsrsd.log"))

    with open(os.path.join(cfg, "virtual"), "w") as f:
        f.write("user@alias.test user@dest.test\n@alias.test catchall@dest.test\n")
    with open(os.path.join(cfg, "transport"), "w") as f:
        f.write(f"dest.test smtp:[127.0.0.1]:{sink_port}\n")
    with open(os.path.join(cfg, "main.cf"), "w") as f:
        f.write(f"""compatibility_level = 3.6
queue_directory = {queue}
data_directory = {data}
meta_directory = /etc/postfix
mail_owner = postfix
setgid_group = postdrop
maillog_file = /dev/stdout
myhostname = pf.bench.test
inet_interfaces = loopback-only
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
mydestination = localhost
alias_maps =
alias_database =
virtual_alias_domains = alias.test
virtual_alias_maps = hash:{cfg}/virtual
transport_maps = hash:{cfg}/transport
sender_canonical_maps = tcp:127.0.0.1:{fwd}
sender_canonical_classes = envelope_sender
recipient_canonical_maps = tcp:127.0.0.1:{rev}
recipient_canonical_classes = envelope_recipient,header_recipient
smtp_tls_security_level = none
{extra}""")
    with open("/etc/postfix/master.cf") as f:
        master = [("#" + l if l.startswith("smtp      inet") else l) for l in f]
    master.append(f"127.0.0.1:{port} inet n - n - - smtpd\n")
    with open(os.path.join(cfg, "master.cf"), "w") as f:
        f.writelines(master)
    subprocess.run(["postconf", "-c", cfg, "-F", "*/*/chroot = n"], check=True)
    for table in ("virtual", "transport"):
        subprocess.run(["postmap", "-c", cfg, f"hash:{cfg}/{table}"], check=True)
    p = start(["postfix", "-c", cfg, "start-fg"], os.path.join(d, "postfix.log"))
    stoppers.append(["postfix", "-c", cfg, "stop"])
    wait_port(port, p, "postfix")
    return p, port, cfg, queue


def turns(run, with_postfix, first=("mxfwd",)):
    """Who goes first in run number run (from 1): the servers take turns,
    so that none always runs right after another's clean-up."""
    order = list(first) + (["postfix"] if with_postfix else [])
    return order if run % 2 else order[::-1]


def postfix_queue_empty(queue):
    for sub in ("incoming", "active", "deferred", "maildrop"):
        for _, _, files in os.walk(os.path.join(queue, sub)):
            if files:
                return False
    return True


# ---- measurements ----------------------------------------------------------------

def source(port, args, log, sender="sender@origin.test", unique=False):
    """Send the load: smtp-source, or with --pipelining bench/smtp_pipeline,
    which takes the same options; unique: every message from a sender of
    its own (smtp_pipeline -u).  (seconds, all went well)."""
    pipelining = args.pipelining or unique
    if pipelining and not os.access(SMTP_PIPELINE, os.X_OK):
        sys.exit(f"{SMTP_PIPELINE}: not built (it is built with mxfwd; or set SMTP_PIPELINE)")
    argv = [SMTP_PIPELINE if pipelining else "smtp-source",
            "-s", str(args.sessions), "-m", str(args.messages), "-l",
            str(args.size), "-f", sender, "-t", "user@alias.test"] + (["-u"] if unique else []) + [
            f"127.0.0.1:{port}"]
    start_t = time.monotonic()
    r = subprocess.run(argv, capture_output=True, text=True, timeout=3600)
    took = time.monotonic() - start_t
    with open(log, "a") as f:
        f.write(r.stdout + r.stderr)
    if r.returncode != 0 or r.stderr.strip():
        print(f"  {os.path.basename(argv[0])} to port {port}: exit {r.returncode}: "
              f"{r.stderr.strip()[:300]}")
    return took, r.returncode == 0 and not r.stderr.strip()


def stop(p):
    p.send_signal(signal.SIGTERM)
    p.wait(timeout=30)
    procs.remove(p)


def silent_listener():
    """A loopback port that accepts connections and never says a word;
    they stay open until the end.  Returns the port."""
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(1024)
    held = []

    def accept():
        while True:
            try:
                held.append(lsock.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    return lsock.getsockname()[1]


def start_sink(log):
    """Postfix's smtp-sink on a loopback port, counting what it takes (-c)
    into log: the next hop of both forwarders.  Returns its port."""
    port = free_port()
    start(["smtp-sink", "-u", "nobody", "-4", "-c", "-m", "1024", f"127.0.0.1:{port}", "1024"],
          log)
    wait_port(port, None, "smtp-sink")
    return port


def accept_rate(args, tmp, tmp_postfix):
    sink_port = start_sink(os.path.join(tmp, "sink.log"))
    # Where mxfwd forwards to: the sink, or nowhere that answers.
    route_port = silent_listener() if args.hold else sink_port
    pf = None
    if not args.no_postfix and not args.hold and ensure_postsrsd():
        pf, pf_port, pf_cfg, pf_queue = start_postfix(tmp_postfix, sink_port)

    log = os.path.join(tmp, "smtp-source.log")
    dns = start_dns(tmp)
    rows = []
    print(f"accept rate: {args.messages} messages of {args.size} bytes, {args.sessions} sessions, "
          f"one message per connection, {args.runs} runs"
          + (", mxfwd's deliveries held at a silent next hop" if args.hold else ""))
    print(f"{'run':>3} {'mxfwd msg/s':>12} {'postfix msg/s':>14} {'ratio':>6} "
          f"{'mxfwd cpu ms/msg':>17} {'machine-wide cpu ms/msg (mxfwd, postfix)':>42}")
    for run in range(1, args.runs + 1):
        row = {}
        for name in turns(run, pf is not None):
            # Each run starts on an idle machine: Postfix has delivered the
            # last run's messages to the sink.
            deadline = time.monotonic() + 300
            while pf and not postfix_queue_empty(pf_queue) and time.monotonic() < deadline:
                time.sleep(0.2)
            if name == "postfix":
                port = pf_port
            else:
                # A fresh daemon each run: an empty spool, counters at zero.
                mx, port, spool = start_mxfwd(tmp, route_port, name=f"mxfwd-{run}", dns=dns)
            cpu0 = cpu_ticks(mx.pid) if name == "mxfwd" else 0
            busy0 = machine_busy_ticks()
            took, ok = source(port, args, log)
            cpu1 = cpu_ticks(mx.pid) if name == "mxfwd" else 0
            busy1 = machine_busy_ticks()
            row[name] = args.messages / took if ok else float("nan")
            row[name + "_machine"] = (busy1 - busy0) / HZ * 1000 / args.messages
            if name == "mxfwd":
                row["cpu"] = (cpu1 - cpu0) / HZ * 1000 / args.messages
                accepted = mxfwd_accepted(spool)
                if accepted != args.messages:
                    print(f"  mxfwd run {run}: {accepted} messages accepted, not {args.messages}")
                stop(mx)
        ratio = row["mxfwd"] / row["postfix"] if pf else float("nan")
        rows.append(dict(row, ratio=ratio))
        print(f"{run:>3} {row['mxfwd']:>12.0f} {row.get('postfix', float('nan')):>14.0f} "
              f"{ratio:>6.1f} {row['cpu']:>17.3f} "
              f"{row['mxfwd_machine']:>23.2f}, {row.get('postfix_machine', float('nan')):.2f}")
    med = {k: statistics.median(r[k] for r in rows) for k in rows[0]}
    print(f"med {med['mxfwd']:>12.0f} {med.get('postfix', float('nan')):>14.0f} "
          f"{med['ratio']:>6.1f} {med['cpu']:>17.3f} "
          f"{med['mxfwd_machine']:>23.2f}, {med.get('postfix_machine', float('nan')):.2f}")
    return med


def open_idle(port, n):
    socks = []
    sel = selectors.DefaultSelector()
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ)
        socks.append(s)
    greeted = 0
    deadline = time.monotonic() + 60
    while greeted < n and time.monotonic() < deadline:
        for key, _ in sel.select(timeout=1):
            if key.fileobj.recv(512).startswith(b"220 "):
                greeted += 1
            sel.unregister(key.fileobj)
    sel.close()
    return socks, greeted


def idle_memory(args, tmp):
    want = args.idle + 256
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < want:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, max(hard, want)))
        except (ValueError, OSError):
            sys.exit(f"cannot raise the open files limit to {want}")
    mx, port, _ = start_mxfwd(tmp, free_port(), name="mxfwd-idle", connections=args.idle + 100)
    time.sleep(0.5)
    rss0, pss0 = memory(mx.pid)
    socks, greeted = open_idle(port, args.idle)
    time.sleep(1)
    rss1, pss1 = memory(mx.pid)
    for s in socks:
        s.close()
    print(f"memory per idle connection: {greeted} greeted connections; mxfwd VmRSS "
          f"{rss0} -> {rss1} KiB, {(rss1 - rss0) * 1024 / max(greeted, 1):.0f} bytes each; "
          f"PSS {pss0} -> {pss1} KiB, {(pss1 - pss0) * 1024 / max(greeted, 1):.0f} bytes each")


def prepare(prefix):
    """Check that mxfwd and the load tools are there; make the two state
    directories, mxfwd's and Postfix's: (tmp, tmp_postfix)."""
    if not os.access(MXFWD, os.X_OK):
        sys.exit(f"{MXFWD}: not built (ninja -C build)")
    for tool in ("smtp-source", "smtp-sink"):
        if not shutil.which(tool) and not os.path.exists("/usr/sbin/" + tool):
            sys.exit(f"{tool} missing: scripts/install-deps bench")
    os.environ["PATH"] += ":/usr/sbin"
    # At the top of the root file system when allowed, one directory for
    # each server: ext4 then gives each an inode group of its own.  Creating
    # files where many were deleted in the last minutes (other tests'
    # temporary directories, or the other server's delivered messages)
    # costs ext4's allocator most of the time it takes (it skips recently
    # deleted inodes one by one), whoever creates them.
    top = "/" if os.access("/", os.W_OK) else None
    tmp = tempfile.mkdtemp(prefix=prefix + "-", dir=top)
    tmp_postfix = tempfile.mkdtemp(prefix=prefix + "-postfix-", dir=top)
    for d in (tmp, tmp_postfix):
        os.chmod(d, 0o755)  # Postfix's unprivileged daemons work below it
    return tmp, tmp_postfix


def load_arguments(ap):
    """The options of the load both benchmarks drive."""
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--messages", type=int, default=5000)
    ap.add_argument("--sessions", type=int, default=20)
    ap.add_argument("--size", type=int, default=4096)
    ap.add_argument("--no-postfix", action="store_true")
    ap.add_argument("--pipelining", action="store_true",
                    help="send with bench/smtp_pipeline (MAIL, RCPT and DATA pipelined, as "
                         "mail servers send) instead of smtp-source, for every server")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    load_arguments(ap)
    ap.add_argument("--idle", type=int, default=10000)
    ap.add_argument("--hold", action="store_true",
                    help="mxfwd's deliveries wait at a silent next hop (accepting alone)")
    ap.add_argument("--only", choices=("accept", "idle"))
    args = ap.parse_args()
    tmp, tmp_postfix = prepare("mxfwd-bench")
    try:
        if args.only != "idle":
            accept_rate(args, tmp, tmp_postfix)
        if args.only != "accept":
            idle_memory(args, tmp)
    finally:
        stop_all()
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(tmp_postfix, ignore_errors=True)


if __name__ == "__main__":
    main()
