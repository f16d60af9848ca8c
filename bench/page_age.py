#!/usr/bin/env python3
"""What reading a clip costs depending on how long ago it was last read.

Reads a 12 s clip of the same-pixels bench's 480p kind (made as bench/pixels_bench.py makes its
clips, if missing) in picture-sized reads, as a contender does, and prints the system CPU seconds
of each pass:

1. right after a read of the whole clip;
2. after the clip has not been touched for --idle seconds (default 15);
3. paced at 30 pictures a second, right after a read of the whole clip (a contender's pace).

Each line also gives the KiB read from disk meanwhile (/proc/vmstat pgpgin) and how much of the
clip is in the page cache (fincore), to tell a cost of memory from a cost of the disk. On a
machine that keeps its page cache warm, all three cost about the same. On virtual machines
whose host reclaims guest memory that has been idle for a while, 2 and 3 cost several times 1:
the reason the same-pixels bench reads the clip right before every run.

Usage
    python3 bench/page_age.py [--idle 15] [--clip PATH]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import pixels_bench  # noqa: E402

FPS = 30


def disk_read_kib() -> int:
    """KiB read from disk into the page cache since boot (/proc/vmstat pgpgin)."""
    with open("/proc/vmstat") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("pgpgin "))


def resident(path: Path) -> str:
    """How much of the file is in the page cache, as util-linux's fincore says."""
    try:
        out = subprocess.run(["fincore", "--bytes", "--noheadings", "--output", "RES,SIZE",
                              str(path)], capture_output=True, text=True, check=True).stdout
        res, size = (int(v) for v in out.split())
        return f"{res / 1e6:.0f} of {size / 1e6:.0f} MB in the page cache"
    except (OSError, subprocess.CalledProcessError, ValueError):
        return "page cache residency unknown (fincore from util-linux is missing)"


def system_seconds() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_stime


def read_pictures(path: Path, picture_len: int, pace: float = 0.0) -> float:
    """Reads the file in picture-sized reads into one buffer; returns the system CPU seconds."""
    buffer = bytearray(picture_len)
    view = memoryview(buffer)
    fd = os.open(path, os.O_RDONLY)
    try:
        start = system_seconds()
        while os.readv(fd, [view]) == picture_len:
            if pace:
                time.sleep(pace)
        return system_seconds() - start
    finally:
        os.close(fd)


def report(label: str, path: Path, picture_len: int, pace: float = 0.0) -> None:
    """Reads the clip once and prints its system CPU and what came from disk meanwhile."""
    before = disk_read_kib()
    seconds = read_pictures(path, picture_len, pace)
    print(f"{label:<32}{seconds:.3f} system CPU s, {disk_read_kib() - before} KiB from disk "
          f"({resident(path)} after)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--idle", type=float, default=15, help="idle seconds before pass 2")
    parser.add_argument("--clip", type=Path, help="a 480p y4m file (default: a 12 s bench clip)")
    args = parser.parse_args()
    clip = pixels_bench.CLIPS[0]
    path = args.clip or clip.path(pixels_bench.REPO / "target/bench/clips", 12)
    if args.clip is None:
        pixels_bench.make_clip(clip, path, 12)
    picture_len = clip.width * clip.height * 3 // 2
    print(f"clip: {path} ({path.stat().st_size / 1e6:.0f} MB)")
    pixels_bench.warm(path)
    report("1. right after a read", path, picture_len)
    time.sleep(args.idle)
    report(f"2. after {args.idle:g} s untouched", path, picture_len)
    pixels_bench.warm(path)
    report(f"3. paced at {FPS}/s after a read", path, picture_len, 1 / FPS)
    return 0


if __name__ == "__main__":
    sys.exit(main())
