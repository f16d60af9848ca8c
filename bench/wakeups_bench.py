#!/usr/bin/env python3
"""FieldCast wake-ups bench: how often a live session's threads are switched in and out.

What it measures
    `fieldcast live --source test --profile 480p --encoder x264 --no-abr` publishes to a local
    nginx-rtmp (`fieldcast ingest`) for --secs seconds. Between 5 s and --secs - 3 s the bench
    reads /proc/PID/task/*/status twice and prints, per thread name and for the whole process,
    context switches per second (voluntary + involuntary): every time a thread sleeps and is
    woken costs a switch, on a phone as on a desktop. The live connection's threads are the
    uplink ("fieldcast-uplin", the kernel's 15-character name) and, when GStreamer carries the
    stream, the threads of its elements.

    Give --baseline PATH to measure another fieldcast binary (an earlier build) the same way in
    the same run: the table then has both, side by side.

Usage
    python3 bench/wakeups_bench.py [--fieldcast target/release/fieldcast] [--baseline PATH]
        [--secs 20]
"""

from __future__ import annotations

import argparse
import collections
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import live_bench  # noqa: E402  (the ingest and process helpers)


def thread_switches(pid: int) -> dict[str, int]:
    """Context switches so far of each thread of `pid`, summed by thread name."""
    totals: dict[str, int] = collections.Counter()
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            name = (task / "comm").read_text().strip()
            status = (task / "status").read_text()
        except OSError:
            continue
        switches = 0
        for line in status.splitlines():
            if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                switches += int(line.split()[1])
        totals[name] += switches
    return totals


def measure(fieldcast: Path, secs: float, children: live_bench.Children) -> dict[str, float]:
    """Switches per second by thread name (and "total") over the middle of one live run."""
    ingest = live_bench.start_ingest(fieldcast, "wakeups", children)
    try:
        cfg = live_bench.CONFIGS[0]
        proc = children.spawn(
            live_bench.fieldcast_argv(fieldcast, cfg, ingest.url, secs),
            stdout=live_bench.subprocess.DEVNULL,
            stderr=live_bench.subprocess.DEVNULL,
        )
        time.sleep(5)
        start, t0 = thread_switches(proc.pid), time.monotonic()
        time.sleep(max(1.0, secs - 8))
        end, t1 = thread_switches(proc.pid), time.monotonic()
        proc.wait(timeout=secs + 30)
        children.forget(proc)
    finally:
        live_bench.stop_ingest(ingest, children)
    rates = {name: (end[name] - start.get(name, 0)) / (t1 - t0) for name in end}
    rates["total"] = sum(rates.values())
    return rates


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fieldcast", type=Path, default=Path("target/release/fieldcast"))
    parser.add_argument("--baseline", type=Path, default=None,
                        help="another fieldcast binary to measure the same way")
    parser.add_argument("--secs", type=float, default=20)
    args = parser.parse_args()
    runs = [("fieldcast", args.fieldcast)]
    if args.baseline:
        runs.insert(0, ("baseline", args.baseline))
    children = live_bench.Children()
    results = {}
    try:
        for label, binary in runs:
            results[label] = measure(binary, args.secs, children)
    finally:
        children.stop_all()
    names = sorted({n for r in results.values() for n in r if n != "total"},
                   key=lambda n: -max(r.get(n, 0) for r in results.values()))
    print(f"context switches per second, 480p30 x264 1000 kbit/s to a local nginx-rtmp, "
          f"middle {args.secs - 8:g} s of {args.secs:g} s")
    print(f"{'thread':<18}" + "".join(f"{label:>12}" for label in results))
    for name in names + ["total"]:
        print(f"{name:<18}" + "".join(f"{r.get(name, 0):>12.0f}" for r in results.values()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
