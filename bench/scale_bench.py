#!/usr/bin/env python3
"""The scale figures in one command: end to end at 4 KiB and at 64 KiB,
and a big queue, each beside Postfix + PostSRSd, with the targets of
docs/performance.md ("Scale").

    bench/scale_bench.py [--runs 3] [--queue 50000] [--no-postfix]

Runs, one after the other (as root: the anchor is a private Postfix +
PostSRSd on loopback ports, bench/smtpd_bench.py's):

    forward_bench.py --runs R --messages 5000 --pipelining
                                                4 KiB, 20 sessions, pipelined
    forward_bench.py --runs R --messages 5000   the same from smtp-source
    forward_bench.py --runs R --messages 2000 --sessions 100 --size 65536
    queue_bench.py --queue Q

passing their own output through, then a summary: each figure, the
target, and whether it was met.  At 4 KiB the load is sent twice: as
mail servers send it, MAIL, RCPT and DATA pipelined (bench/smtp_pipeline),
and from Postfix's smtp-source, which waits for each reply.  On a small
machine smtp-source costs about as much CPU a message as mxfwd does, and
its figures then measure the machine as much as the servers
(docs/performance.md, "Cost per message").  Prints figures; asserts
nothing (it is not a test).  The figures of one run compare with each
other only.
"""

import argparse
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def run(script, args):
    """Run a sibling benchmark, echoing its output; its output."""
    argv = [sys.executable, os.path.join(HERE, script)] + args
    print("$ " + " ".join(["bench/" + script] + args), flush=True)
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    print(p.stdout, end="", flush=True)
    if p.returncode != 0:
        print(f"  ({script} exited {p.returncode})")
    return p.stdout


def forward_medians(out):
    """The median row of forward_bench.py: {column: value}."""
    head = next((line for line in out.splitlines() if line.startswith("run ")), None)
    med = next((line for line in out.splitlines() if line.startswith("med ")), None)
    if head is None or med is None:
        return {}
    names = re.findall(r"(\S+(?: cpu ms/msg| gen ms/msg| msg/s| accept/s|/\S+))", head[4:])
    values = med.split()[1:]
    return dict(zip(names, (float(v) for v in values)))


def queue_figure(out, label):
    """The mxfwd column of queue_bench.py's row label, as printed."""
    for line in out.splitlines():
        if line.startswith(label):
            rest = line[len(label):].split()
            return rest[0] if rest else None
    return None


def number(text):
    m = re.search(r"[-+]?[0-9][0-9,.]*", text or "")
    return float(m.group(0).replace(",", "")) if m else float("nan")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--queue", type=int, default=50000)
    ap.add_argument("--no-postfix", action="store_true")
    args = ap.parse_args()
    anchor = ["--no-postfix"] if args.no_postfix else []

    small = forward_medians(run("forward_bench.py",
                                ["--runs", str(args.runs), "--messages", "5000",
                                 "--pipelining"] + anchor))
    small_source = forward_medians(run("forward_bench.py",
                                       ["--runs", str(args.runs), "--messages", "5000"] + anchor))
    medium = forward_medians(run("forward_bench.py",
                                 ["--runs", str(args.runs), "--messages", "2000", "--sessions",
                                  "100", "--size", "65536"] + anchor))
    queue = run("queue_bench.py", ["--queue", str(args.queue)] + anchor)

    rows = [
        ("4 KiB pipelined, 20 sessions: / Postfix", small.get("mxfwd/postfix"), ">= 15", 15, 1),
        ("4 KiB pipelined: mxfwd CPU ms per message", small.get("mxfwd cpu ms/msg"),
         "<= 0.2", 0.2, -1),
        ("4 KiB from smtp-source: / Postfix", small_source.get("mxfwd/postfix"), ">= 15", 15, 1),
        ("4 KiB from smtp-source: mxfwd CPU ms/message", small_source.get("mxfwd cpu ms/msg"),
         "<= 0.2", 0.2, -1),
        ("64 KiB, 100 sessions: / Postfix + PostSRSd", medium.get("mxfwd/postfix"), ">= 8", 8, 1),
        ("queue: flush peak over queue full (%)",
         number(queue_figure(queue, "flush: peak over the restarted queue-full")),
         "<= 10", 10, -1),
        ("queue: disk use / message bytes",
         number(queue_figure(queue, "disk use / message bytes")), "<= 2", 2, -1),
        ("queue: restart to greeting (s)",
         number(queue_figure(queue, "restart to greeting")), "< 1", 1, -1),
    ]
    print("\nsummary")
    for label, value, target, bound, sense in rows:
        if value is None or value != value:
            print(f"  {label:45} {'-':>8}   target {target:7}  not measured")
            continue
        met = value >= bound if sense > 0 else value <= bound
        print(f"  {label:45} {value:8.3g}   target {target:7}  {'met' if met else 'not met'}")
    # Not a target: what the load generator itself costs beside mxfwd (on
    # a small machine it shares the processors with the forwarder).
    for label, figures in (("smtp_pipeline", small), ("smtp-source", small_source)):
        gen = figures.get("mxfwd gen ms/msg")
        if gen is not None:
            print(f"  {'4 KiB: ' + label + ' CPU ms per message':45} {gen:8.3g}   "
                  f"(the load generator, beside mxfwd's)")


if __name__ == "__main__":
    main()
