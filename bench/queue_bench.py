#!/usr/bin/env python3
"""A big queue: memory, disk and restart with --queue messages deferred,
then flushed; mxfwd beside Postfix + PostSRSd, in one run.

    bench/queue_bench.py [--queue 50000] [--size 4096] [--sessions 20]
                         [--no-postfix]

Prints figures; asserts nothing (it is not a test).

For each forwarder in turn: smtp-source sends --queue messages of --size
bytes to it; its next hop (smtp-sink -r RCPT) answers every recipient
with a temporary failure, so each message is tried once and deferred,
with its next attempt an hour away (mxfwd: retry_schedule = 1h; Postfix:
minimal_backoff_time = 1h and a queue run every hour).  Then:

- queue full: the forwarder's resident memory (mxfwd: VmRSS of its one
  process; Postfix: the sum of its processes' PSS, and their RSS) and per
  queued message (its growth over the empty daemon, divided by --queue);
- disk: the blocks the spool (mxfwd's spool_dir; Postfix's queue
  directory) takes, beside the message bytes it holds (mxfwd: the sizes
  `mxfwd queue --json` lists, the headers it prepends included; Postfix:
  those of `postqueue -j`);
- restart: the forwarder stopped (SIGTERM; `postfix stop`) and started
  again, the time from the start to its first 220 greeting, and mxfwd's
  memory with the queue loaded back;
- flush: the next hop replaced by one that accepts (smtp-sink on the same
  port), the peak of the forwarder's memory while `mxfwd flush` (`postqueue
  -f`) delivers everything, the drain's rate, and the memory once the
  queue is empty and a few seconds later (mxfwd hands freed memory back
  to the system once deliveries have emptied much of the queue).  mxfwd's
  peak is the largest VmRSS sampled every 20 ms and its VmHWM, reset
  before the flush (/proc/PID/clear_refs).

The servers' setup is bench/smtpd_bench.py's (which this script imports;
see its docstring).
"""

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import smtpd_bench as sb  # noqa: E402
from forward_bench import sink_count  # noqa: E402

# The deferral and the retry an hour away, for each forwarder.
MXFWD_EXTRA = "retry_schedule = 1h\n"
POSTFIX_EXTRA = """minimal_backoff_time = 3600s
maximal_backoff_time = 3600s
queue_run_delay = 3600s
"""


def start_sink(port, log, defer):
    """smtp-sink on port: counting what it takes, or (defer) answering
    every RCPT with a temporary failure."""
    argv = ["smtp-sink", "-u", "nobody", "-4", "-c", "-m", "1024"]
    if defer:
        argv += ["-r", "RCPT"]
    p = sb.start(argv + [f"127.0.0.1:{port}", "1024"], log)
    sb.wait_port(port, None, "smtp-sink")
    return p


def status(pid, field):
    """A /proc/PID/status field in KiB (VmRSS, VmHWM); 0 once gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def disk_use(path):
    """(bytes of blocks used, files) under path."""
    used = files = 0
    for root, _, names in os.walk(path):
        for n in names:
            try:
                st = os.lstat(os.path.join(root, n))
            except OSError:
                continue
            used += st.st_blocks * 512
            files += 1
    return used, files


def greeting_time(port, started, proc, timeout=120):
    """Seconds from started (time.monotonic()) to the first 220 on port."""
    deadline = started + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            sys.exit(f"the forwarder exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                if s.recv(512).startswith(b"220"):
                    return time.monotonic() - started
        except OSError:
            time.sleep(0.002)
    sys.exit(f"no greeting on port {port} within {timeout}s")


def wait_quiet(pids, seconds=1.0, timeout=300):
    """Until the processes have used no CPU for a while."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        now = sum(sb.cpu_ticks(p) for p in pids if os.path.exists(f"/proc/{p}"))
        if now == last:
            return
        last = now
        time.sleep(seconds)


def load(port, args, tmp):
    a = argparse.Namespace(sessions=args.sessions, messages=args.queue, size=args.size,
                           pipelining=False)
    took, ok = sb.source(port, a, os.path.join(tmp, "smtp-source.log"))
    if not ok:
        print("  smtp-source failed: the figures below are for fewer messages")
    return took


# ---- mxfwd ----------------------------------------------------------------------

def mxfwd_stats(conf):
    r = subprocess.run([sb.MXFWD, "stats", "--json", "-c", conf], capture_output=True, text=True,
                       timeout=60)
    try:
        return json.loads(r.stdout)["stats"]
    except (ValueError, KeyError):
        return {}


def mxfwd_restart(mx, conf, port):
    sb.stop(mx)
    started = time.monotonic()
    p = sb.start([sb.MXFWD, "serve", "-c", conf],
                 os.path.join(os.path.dirname(conf), "mxfwd-restarted.log"))
    return p, greeting_time(port, started, p)


def bench_mxfwd(args, tmp, dns):
    out = {}
    sink_port = sb.free_port()
    defer = start_sink(sink_port, os.path.join(tmp, "defer.log"), True)
    mx, port, spool = sb.start_mxfwd(tmp, sink_port, name="mxfwd-queue", dns=dns,
                                     extra=MXFWD_EXTRA)
    conf = os.path.join(os.path.dirname(spool), "mxfwd.conf")
    time.sleep(0.5)
    out["empty"] = status(mx.pid, "VmRSS")
    out["accept_s"] = load(port, args, tmp)
    deadline = time.monotonic() + 600
    while mxfwd_stats(conf).get("deferred", 0) < args.queue and time.monotonic() < deadline:
        time.sleep(0.5)
    wait_quiet([mx.pid])
    out["full"] = status(mx.pid, "VmRSS")
    listing = subprocess.run([sb.MXFWD, "queue", "--json", "-c", conf], capture_output=True,
                             text=True, timeout=120)
    msgs = json.loads(listing.stdout)["messages"]
    out["queued"] = len(msgs)
    out["msg_bytes"] = sum(m["size"] for m in msgs)
    out["disk"], out["files"] = disk_use(spool)
    out["segments"] = len(os.listdir(os.path.join(spool, "journal")))

    mx, out["restart_s"] = mxfwd_restart(mx, conf, port)
    time.sleep(1)
    wait_quiet([mx.pid])
    out["restarted"] = status(mx.pid, "VmRSS")

    sb.stop(defer)
    sink_log = os.path.join(tmp, "sink.log")
    start_sink(sink_port, sink_log, False)
    with open(f"/proc/{mx.pid}/clear_refs", "w") as f:
        f.write("5")  # VmHWM from here on
    peak = status(mx.pid, "VmRSS")
    started = time.monotonic()
    subprocess.run([sb.MXFWD, "flush", "-c", conf], capture_output=True, timeout=120)
    deadline = started + 900
    last_stats = 0.0
    while time.monotonic() < deadline:
        peak = max(peak, status(mx.pid, "VmRSS"))
        if sink_count(sink_log) >= out["queued"] and time.monotonic() - last_stats > 0.5:
            last_stats = time.monotonic()
            if mxfwd_stats(conf).get("queue_messages", 1) == 0:
                break
        time.sleep(0.02)
    out["drain_s"] = time.monotonic() - started
    out["delivered"] = sink_count(sink_log)
    out["peak"] = max(peak, status(mx.pid, "VmHWM"))
    out["drained"] = status(mx.pid, "VmRSS")
    time.sleep(12)
    out["later"] = status(mx.pid, "VmRSS")
    out["disk_after"], out["files_after"] = disk_use(spool)
    sb.stop(mx)
    return out


# ---- Postfix --------------------------------------------------------------------

def postfix_pids(queue):
    """Postfix's processes: its master and the master's children."""
    try:
        with open(os.path.join(queue, "pid", "master.pid")) as f:
            master = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return []
    pids = [master]
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if ppid == master:
            pids.append(int(d))
    return pids


def postfix_memory(queue):
    """(sum of PSS, sum of RSS) of Postfix's processes, KiB."""
    pss = rss = 0
    for p in postfix_pids(queue):
        try:
            r, s = sb.memory(p)
        except OSError:
            continue  # a process that ended between the listing and the read
        rss += r
        pss += s
    return pss, rss


def postfix_queued(cfg):
    r = subprocess.run(["postqueue", "-c", cfg, "-j"], capture_output=True, text=True,
                       timeout=300)
    msgs = [json.loads(line) for line in r.stdout.splitlines() if line.strip()]
    return len(msgs), sum(m.get("message_size", 0) for m in msgs)


def postfix_counts(queue):
    n = {}
    for sub in ("incoming", "active", "deferred", "maildrop"):
        n[sub] = sum(len(files) for _, _, files in os.walk(os.path.join(queue, sub)))
    return n


def bench_postfix(args, tmp_postfix):
    out = {}
    sink_port = sb.free_port()
    defer = start_sink(sink_port, os.path.join(tmp_postfix, "defer.log"), True)
    pf, port, cfg, queue = sb.start_postfix(tmp_postfix, sink_port, extra=POSTFIX_EXTRA)
    time.sleep(1)
    out["empty"], out["empty_rss"] = postfix_memory(queue)
    out["accept_s"] = load(port, args, tmp_postfix)
    deadline = time.monotonic() + 1800
    while time.monotonic() < deadline:
        n = postfix_counts(queue)
        if n["deferred"] >= args.queue and n["active"] + n["incoming"] + n["maildrop"] == 0:
            break
        time.sleep(1)
    wait_quiet(postfix_pids(queue))
    out["full"], out["full_rss"] = postfix_memory(queue)
    out["queued"], out["msg_bytes"] = postfix_queued(cfg)
    out["disk"], out["files"] = disk_use(queue)

    # Restart: stopped, then started in the foreground again.
    subprocess.run(["postfix", "-c", cfg, "stop"], capture_output=True, timeout=60)
    pf.wait(timeout=60)
    sb.procs.remove(pf)
    started = time.monotonic()
    pf = sb.start(["postfix", "-c", cfg, "start-fg"],
                  os.path.join(os.path.dirname(cfg), "postfix-restarted.log"))
    out["restart_s"] = greeting_time(port, started, pf)
    time.sleep(1)
    out["restarted"], _ = postfix_memory(queue)

    sb.stop(defer)
    sink_log = os.path.join(tmp_postfix, "sink.log")
    start_sink(sink_port, sink_log, False)
    peak = peak_rss = 0
    started = time.monotonic()
    subprocess.run(["postqueue", "-c", cfg, "-f"], capture_output=True, timeout=120)
    deadline = started + 3600
    sampled = 0.0
    while time.monotonic() < deadline:
        if time.monotonic() - sampled > 0.2:
            sampled = time.monotonic()
            pss, rss = postfix_memory(queue)
            peak, peak_rss = max(peak, pss), max(peak_rss, rss)
        if sink_count(sink_log) >= out["queued"] and sb.postfix_queue_empty(queue):
            break
        time.sleep(0.05)
    out["drain_s"] = time.monotonic() - started
    out["delivered"] = sink_count(sink_log)
    out["peak"], out["peak_rss"] = peak, peak_rss
    out["drained"], _ = postfix_memory(queue)
    time.sleep(12)
    out["later"], _ = postfix_memory(queue)
    return out


# ---- output -----------------------------------------------------------------------

def mb(kib):
    return f"{kib / 1024:.1f} MB"


def report(args, mx, pf):
    """The figures, mxfwd beside Postfix; returns the targets' values."""
    n = args.queue
    rows = [
        ("queued messages", str(mx["queued"]), str(pf["queued"]) if pf else "-"),
        ("loading the queue: msg/s", f"{n / mx['accept_s']:.0f}",
         f"{n / pf['accept_s']:.0f}" if pf else "-"),
        ("memory, empty", mb(mx["empty"]), mb(pf["empty"]) + " PSS" if pf else "-"),
        ("memory, queue full", mb(mx["full"]),
         f"{mb(pf['full'])} PSS ({mb(pf['full_rss'])} RSS)" if pf else "-"),
        ("memory per queued message", f"{(mx['full'] - mx['empty']) * 1024 / n:.0f} B",
         f"{(pf['full'] - pf['empty']) * 1024 / n:.0f} B" if pf else "-"),
        ("message bytes held", mb(mx["msg_bytes"] / 1024),
         mb(pf["msg_bytes"] / 1024) if pf else "-"),
        ("spool disk use", f"{mb(mx['disk'] / 1024)} in {mx['files']} files "
         f"({mx['segments']} journal segments)",
         f"{mb(pf['disk'] / 1024)} in {pf['files']} files" if pf else "-"),
        ("disk use / message bytes", f"{mx['disk'] / mx['msg_bytes']:.2f}x",
         f"{pf['disk'] / pf['msg_bytes']:.2f}x" if pf else "-"),
        ("restart to greeting", f"{mx['restart_s']:.3f} s",
         f"{pf['restart_s']:.3f} s" if pf else "-"),
        ("memory after the restart", mb(mx["restarted"]), mb(pf["restarted"]) + " PSS"
         if pf else "-"),
        ("flush: drain msg/s", f"{mx['delivered'] / mx['drain_s']:.0f}",
         f"{pf['delivered'] / pf['drain_s']:.0f}" if pf else "-"),
        ("flush: memory peak", mb(mx["peak"]),
         f"{mb(pf['peak'])} PSS ({mb(pf['peak_rss'])} RSS)" if pf else "-"),
        ("flush: peak over the restarted queue-full", f"{mx['peak'] / mx['restarted'] - 1:+.1%}",
         f"{pf['peak'] / pf['restarted'] - 1:+.1%}" if pf else "-"),
        ("memory when the queue is empty", mb(mx["drained"]), mb(pf["drained"]) + " PSS"
         if pf else "-"),
        ("memory 12 s later", mb(mx["later"]), mb(pf["later"]) + " PSS" if pf else "-"),
        ("spool disk use, queue empty", mb(mx["disk_after"] / 1024), "-"),
    ]
    print(f"a queue of {n} messages of {args.size} bytes, deferred, restarted, flushed")
    w = max(len(r[0]) for r in rows)
    print(f"{'':{w}}  {'mxfwd':>28}  {'Postfix + PostSRSd':>28}")
    for label, a, b in rows:
        print(f"{label:{w}}  {a:>28}  {b:>28}")
    return {
        "peak_over_full": mx["peak"] / mx["restarted"] - 1,
        "peak_over_full_loaded": mx["peak"] / mx["full"] - 1,
        "disk_ratio": mx["disk"] / mx["msg_bytes"],
        "restart_s": mx["restart_s"],
        "per_message": (mx["full"] - mx["empty"]) * 1024 / n,
        "later": mx["later"],
        "full": mx["full"],
        "pf_disk_ratio": pf["disk"] / pf["msg_bytes"] if pf else float("nan"),
        "pf_restart_s": pf["restart_s"] if pf else float("nan"),
        "pf_peak": pf["peak"] if pf else float("nan"),
        "pf_full": pf["full"] if pf else float("nan"),
    }


def run(args):
    """Both forwarders, in their own top-level directories; the targets."""
    tmp, tmp_postfix = sb.prepare("mxfwd-queuebench")
    try:
        dns = sb.start_dns(tmp)
        mx = bench_mxfwd(args, tmp, dns)
        pf = None
        if not args.no_postfix and sb.ensure_postsrsd():
            pf = bench_postfix(args, tmp_postfix)
        return report(args, mx, pf)
    finally:
        sb.stop_all()
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(tmp_postfix, ignore_errors=True)


def add_arguments(ap):
    ap.add_argument("--queue", type=int, default=50000, help="messages deferred, then flushed")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_arguments(ap)
    ap.add_argument("--size", type=int, default=4096)
    ap.add_argument("--sessions", type=int, default=20)
    ap.add_argument("--no-postfix", action="store_true")
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    run(args)


if __name__ == "__main__":
    main()
