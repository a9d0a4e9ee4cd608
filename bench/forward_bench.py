#!/usr/bin/env python3
"""End-to-end forwarding benchmark: mxfwd beside Postfix + PostSRSd, in one run.

    bench/forward_bench.py [--runs 3] [--messages 5000] [--sessions 20]
                           [--size 4096] [--no-postfix] [--signing] [--long-senders]
                           [--milter] [--pipelining]

Prints figures; asserts nothing (it is not a test).

Postfix's smtp-source sends --messages messages of --size bytes over
--sessions concurrent sessions (one message per connection) to the
forwarder, which rewrites the sender with SRS and delivers every message to
Postfix's smtp-sink through a route (mxfwd: `route = * 127.0.0.1:PORT`;
Postfix: a transport map entry).  With --pipelining, bench/smtp_pipeline
sends instead of smtp-source, for every server: the same load, pipelined as
mail servers send it (bench/smtpd_bench.py).  The rate is messages per second from the
first connection to the moment the sink has received the last message; the
forwarder's queue is empty then.  With --signing, a second mxfwd takes
its turn in every run with a signing key (RSA-2048: a DKIM-Signature and an
ARC set on every message, docs/performance.md), beside the unsigned one.
With --milter, rspamd 3.4 (Debian's) runs privately, its proxy worker in
milter mode (one process, scanning itself, milter_headers adding
X-Spamd-Result and X-Spam-Status, its DNS a dnsmasq of its own on
loopback): a second mxfwd uses it (`milter =`), beside the one without,
and Postfix uses it too (`smtpd_milters`); rspamd's CPU time per message
(its processes, all of them) is printed apart from the forwarder's, for
each run that used it.  With --long-senders, a second mxfwd takes its turn
with a sender too long for a plain SRS address (an Amazon SES one): its
messages go out with a keyed address and the sender is kept in the embedded
envelope store (docs/srs.md, "Long senders"); smtp-source sends one sender,
so after the first message the store writes nothing new and this measures
the keyed path's steady cost; with --unique-senders every message comes
from a sender of its own (bench/smtp_pipeline -u replaces smtp-source for
every server, as --pipelining does), so each long sender is a new entry
in the store: its worst case.  Both forwarders fsync each message before
their 250.  The servers take turns, --runs times each; printed per run and
as medians: each one's end-to-end rate, their ratio, the accept rate (how
long smtp-source took), mxfwd's CPU time per message, and the load
generator's CPU time per message against each server (gen: on a small
machine it competes with the forwarder and the sink for the processors,
and can be what bounds the rate).

The servers, their setup and the machine-wide details (a top-level
directory for each, why, Postfix without chroot, PostSRSd from Debian) are
bench/smtpd_bench.py's, which this script imports: see its docstring.
"""

import argparse
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "e2e"))
import filters  # noqa: E402
import smtpd_bench as sb  # noqa: E402


def sink_count(log):
    """Messages the smtp-sink with -c has counted so far (its last mesg=N)."""
    with open(log, "rb") as f:
        f.seek(0, os.SEEK_END)
        f.seek(max(0, f.tell() - 4096))
        counts = re.findall(rb"mesg=(\d+)", f.read())
    return int(counts[-1]) if counts else 0


def spool_empty(spool):
    return not any(f for _, _, f in os.walk(spool))


# ---- rspamd as a milter (its configuration: tests/e2e/filters.py) -------------

def start_rspamd(tmp):
    """rspamd on a loopback port in milter mode; (its main process, the
    milter's port).  Its DNS: a dnsmasq of its own in its forking mode
    (rspamd's resolver keeps TCP connections open, which the debug mode
    serves one at a time)."""
    d = os.path.join(tmp, "rspamd")
    os.makedirs(d)
    dns, port = sb.free_port(), sb.free_port()
    sb.start(["/usr/sbin/dnsmasq", "--keep-in-foreground", f"--port={dns}",
              "--listen-address=127.0.0.1", "--bind-interfaces", "--no-resolv", "--no-hosts",
              "--conf-file=/dev/null", "--pid-file=", "--local=/#/", "--log-facility=-",
              "--local-ttl=300"], os.path.join(d, "dnsmasq.log"))
    filters.rspamd_config(d, port, dns)
    p = sb.start(filters.rspamd_argv(d), os.path.join(d, "stdout.log"))
    deadline = time.monotonic() + 120
    while not filters.milter_scans(port):
        if p.poll() is not None or time.monotonic() > deadline:
            sys.exit("rspamd did not start: see " + d)
        time.sleep(0.5)
    return p, port


def tree_ticks(pid):
    """CPU ticks of pid and its children (rspamd's workers)."""
    total = sb.cpu_ticks(pid)
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            total += int(fields[11]) + int(fields[12])
    return total


# An Amazon SES-shaped local part at the short sender's domain: the same DNS
# work for both (SPF, DMARC), only the SRS path differs.
LONG_SENDER = "0100018c5f8e9a2b-3c4d5e6f-7a8b-4c9d-0e1f-2a3b4c5d6e7f-000000@origin.test"


def generator_ticks():
    """CPU seconds of the load generator so far: a child, reaped when it
    ends (the servers are reaped only after the runs)."""
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return kids.ru_utime + kids.ru_stime


def one_run(name, port, args, sink_log, queue_empty, cpu_pid, filter_pid=None):
    """Send, then wait for the sink to have every message; the figures."""
    before = sink_count(sink_log)
    cpu0 = sb.cpu_ticks(cpu_pid) if cpu_pid else 0
    filter0 = tree_ticks(filter_pid) if filter_pid else 0
    start = time.monotonic()
    gen0 = generator_ticks()
    took, ok = sb.source(port, args, os.path.join(os.path.dirname(sink_log), "source.log"),
                         LONG_SENDER if name == "mxfwd-long" else "sender@origin.test",
                         unique=args.unique_senders)
    gen1 = generator_ticks()
    deadline = time.monotonic() + 600
    while sink_count(sink_log) - before < args.messages and time.monotonic() < deadline:
        time.sleep(0.01)
    end = time.monotonic()
    cpu1 = sb.cpu_ticks(cpu_pid) if cpu_pid else 0
    filter1 = tree_ticks(filter_pid) if filter_pid else 0
    got = sink_count(sink_log) - before
    if not ok or got != args.messages:
        print(f"  {name}: {got} of {args.messages} messages at the sink")
    # The forwarder removes a message once the sink took it.
    deadline = time.monotonic() + 30
    while not queue_empty() and time.monotonic() < deadline:
        time.sleep(0.05)
    return {
        name: got / (end - start) if ok else float("nan"),
        name + "_accept": args.messages / took if ok else float("nan"),
        name + "_gen": (gen1 - gen0) * 1000 / args.messages,
        name + "_cpu": (cpu1 - cpu0) / sb.HZ * 1000 / args.messages,
        name + "_rspamd": (filter1 - filter0) / sb.HZ * 1000 / args.messages,
    }


def bench(args, tmp, tmp_postfix):
    sink_log = os.path.join(tmp, "sink.log")
    sink_port = sb.start_sink(sink_log)
    dns = sb.start_dns(tmp)
    rspamd = rspamd_port = None
    if args.milter:
        rspamd, rspamd_port = start_rspamd(tmp)
    pf = None
    pf_name = "postfix-rspamd" if args.milter else "postfix"
    if not args.no_postfix and sb.ensure_postsrsd():
        milter = (f"smtpd_milters = inet:127.0.0.1:{rspamd_port}\nmilter_protocol = 6\n"
                  "milter_default_action = tempfail\n") if args.milter else ""
        pf, pf_port, _, pf_queue = sb.start_postfix(tmp_postfix, sink_port, extra=milter)

    signing = ""
    if args.signing:
        key = os.path.join(tmp, "dkim.key")
        subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt",
                        "rsa_keygen_bits:2048", "-out", key], check=True, capture_output=True)
        signing = f"signing_key = {key}\nsigning_selector = bench\n"
    servers = (["mxfwd"] + (["mxfwd-sign"] if args.signing else []) +
               (["mxfwd-long"] if args.long_senders else []) +
               (["mxfwd-rspamd"] if args.milter else []))
    extras = {"mxfwd-sign": signing,
              "mxfwd-rspamd": f"milter = inet:127.0.0.1:{rspamd_port}\n" if args.milter else ""}
    filtered = [n for n in servers + [pf_name] if n.endswith("rspamd") and (pf or n != pf_name)]
    cols = servers + ([pf_name] if pf else [])
    print(f"end to end: {args.messages} messages of {args.size} bytes, {args.sessions} sessions, "
          f"one message per connection, through the forwarder to smtp-sink, {args.runs} runs")
    print(f"{'run':>3} " + " ".join(f"{c + ' msg/s':>20}" for c in cols) +
          "".join(f" {s + '/' + pf_name:>27}" for s in servers if pf) +
          "".join(f" {s + ' accept/s':>20}" for s in servers) +
          "".join(f" {s + ' cpu ms/msg':>23}" for s in servers) +
          "".join(f" {c + ' gen ms/msg':>23}" for c in cols) +
          "".join(f" {'rspamd cpu ms/msg (' + n + ')':>36}" for n in filtered))
    rows = []
    for run in range(1, args.runs + 1):
        row = {}
        for name in sb.turns(run, pf is not None, servers):
            if name == "postfix":
                row.update(one_run(pf_name, pf_port, args, sink_log,
                                   lambda: sb.postfix_queue_empty(pf_queue), None,
                                   rspamd.pid if args.milter else None))
                continue
            # A fresh spool each run, in a directory of its own.
            mx, port, spool = sb.start_mxfwd(tmp, sink_port, name=f"{name}-{run}", dns=dns,
                                             extra=extras.get(name, ""))
            row.update(one_run(name, port, args, sink_log, lambda: spool_empty(spool), mx.pid,
                               rspamd.pid if name == "mxfwd-rspamd" else None))
            sb.stop(mx)
        for s in servers:
            row[s + "_ratio"] = row[s] / row[pf_name] if pf else float("nan")
        rows.append(row)
        print(row_text(str(run), row, cols, servers, pf, filtered))
    med = {k: statistics.median(r[k] for r in rows) for k in rows[0]}
    print(row_text("med", med, cols, servers, pf, filtered))
    if args.long_senders:
        print(f"long senders: {med['mxfwd-long'] / med['mxfwd']:.2f} of short-sender throughput; "
              f"the keyed path costs {med['mxfwd-long_cpu'] - med['mxfwd_cpu']:+.3f} ms of CPU "
              f"per message")


def row_text(label, row, cols, servers, pf, filtered):
    return (f"{label:>3} " + " ".join(f"{row[c]:>20.0f}" for c in cols) +
            "".join(f" {row[s + '_ratio']:>27.1f}" for s in servers if pf) +
            "".join(f" {row[s + '_accept']:>20.0f}" for s in servers) +
            "".join(f" {row[s + '_cpu']:>23.3f}" for s in servers) +
            "".join(f" {row[c + '_gen']:>23.3f}" for c in cols) +
            "".join(f" {row[n + '_rspamd']:>36.3f}" for n in filtered))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sb.load_arguments(ap)
    ap.add_argument("--signing", action="store_true",
                    help="also an mxfwd that signs and seals every message (RSA-2048)")
    ap.add_argument("--milter", action="store_true",
                    help="also an mxfwd with rspamd as its milter; Postfix with rspamd too")
    ap.add_argument("--long-senders", action="store_true",
                    help="also an mxfwd whose sender is too long for plain SRS (envelope store)")
    ap.add_argument("--unique-senders", action="store_true",
                    help="every message from a sender of its own (bench/smtp_pipeline -u "
                         "instead of smtp-source, for every server; implies --pipelining): "
                         "with --long-senders, a new envelope store entry per message")
    args = ap.parse_args()
    tmp, tmp_postfix = sb.prepare("mxfwd-fwdbench")
    try:
        bench(args, tmp, tmp_postfix)
    finally:
        sb.stop_all()
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(tmp_postfix, ignore_errors=True)


if __name__ == "__main__":
    main()
