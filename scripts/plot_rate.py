#!/usr/bin/env python3
"""Plots what `fieldcast live --json-events` sent against the link the network lab gave it.

Input: the publisher's lines kept by a lab test (FIELDCAST_LAB_OUT=DIR makes each test keep
DIR/<profile>/publisher.jsonl) and the profile (a built-in name or a JSON file). Output: an SVG
(--svg FILE) and a text plot on stdout, both with, per second:
- the link's capacity from the profile (0 during an outage), timed from the session's start;
- video + audio kbit/s the encoders produced (the stats lines);
- the capacity the adaptive bitrate estimated (`link_kbps`; 0 when unknown).

The lab starts a moment before the session: --offset S shifts the profile (default: the lab
time of the session's first stats line minus its uptime, when a `netlab:` log is given with
--lab-log, else 0).

    python3 scripts/plot_rate.py /tmp/lab/steady-outage/publisher.jsonl steady-outage \\
        --svg docs/figures/steady-outage-rate.svg
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PROFILES = REPO / "sandbox" / "netlab-profiles"
WIDTH, HEIGHT, MARGIN = 900, 360, 50


def load_profile(name_or_path: str) -> dict:
    path = Path(name_or_path)
    if not path.exists():
        path = PROFILES / f"{name_or_path}.json"
    return json.loads(path.read_text())


def capacity_at(profile: dict, t: float) -> float:
    """The link's kbit/s at profile time t: the last rate and outage set by a step at or before t
    (repeating profiles repeat from `repeat_every_s`)."""
    period = profile.get("repeat_every_s")
    if period and t >= period:
        t = t % period
    rate, outage = 0.0, False
    for step in profile["steps"]:
        if step["at_s"] > t:
            break
        rate = step.get("rate_kbit", rate)
        outage = step.get("outage", outage)
    return 0.0 if outage else float(rate)


def read_stats(path: Path) -> list[dict]:
    stats = []
    for line in path.read_text().splitlines():
        event = json.loads(line)
        if event.get("event") == "stats":
            stats.append(event)
    if not stats:
        raise SystemExit(f"{path}: no stats lines")
    return stats


def series(stats: list[dict], profile: dict, offset: float) -> list[tuple[float, float, float, float]]:
    """(seconds since the start, link kbit/s, sent kbit/s, estimated kbit/s) per stats line."""
    rows = []
    for s in stats:
        t = s["uptime_ms"] / 1000
        rows.append((t, capacity_at(profile, t + offset), s["video_kbps"] + s["audio_kbps"],
                     float(s.get("link_kbps", 0))))
    return rows


def svg(rows: list[tuple[float, float, float, float]], title: str) -> str:
    t_max = max(r[0] for r in rows) or 1
    k_max = max(max(r[1], r[2], r[3]) for r in rows) * 1.1 or 1
    x = lambda t: MARGIN + (WIDTH - 2 * MARGIN) * t / t_max
    y = lambda k: HEIGHT - MARGIN - (HEIGHT - 2 * MARGIN) * min(k, k_max) / k_max

    def line(index: int, colour: str, dash: str = "") -> str:
        points = " ".join(f"{x(r[0]):.1f},{y(r[index]):.1f}" for r in rows)
        extra = f' stroke-dasharray="{dash}"' if dash else ""
        return f'<polyline fill="none" stroke="{colour}" stroke-width="2"{extra} points="{points}"/>'

    ticks = []
    for k in range(0, int(k_max) + 1, 250):
        ticks.append(f'<text x="{MARGIN - 6}" y="{y(k) + 4:.1f}" text-anchor="end" '
                     f'font-size="11">{k}</text>'
                     f'<line x1="{MARGIN}" x2="{WIDTH - MARGIN}" y1="{y(k):.1f}" y2="{y(k):.1f}" '
                     'stroke="#ddd"/>')
    for t in range(0, int(t_max) + 1, 10):
        ticks.append(f'<text x="{x(t):.1f}" y="{HEIGHT - MARGIN + 16}" text-anchor="middle" '
                     f'font-size="11">{t} s</text>')
    legend = [("link (profile)", "#888", "6,4"), ("encoded: video + audio", "#1f77b4", ""),
              ("estimated capacity", "#d62728", "2,3")]
    keys = "".join(
        f'<line x1="{MARGIN + 10 + 190 * i}" x2="{MARGIN + 40 + 190 * i}" y1="20" y2="20" '
        f'stroke="{c}" stroke-width="2" stroke-dasharray="{d}"/>'
        f'<text x="{MARGIN + 46 + 190 * i}" y="24" font-size="12">{name}</text>'
        for i, (name, c, d) in enumerate(legend))
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
            f'font-family="sans-serif"><rect width="100%" height="100%" fill="white"/>'
            f'<text x="{WIDTH / 2}" y="{HEIGHT - 8}" text-anchor="middle" font-size="12">'
            f'{title} (kbit/s against seconds since the session started)</text>'
            + "".join(ticks) + keys
            + line(1, "#888", "6,4") + line(3, "#d62728", "2,3") + line(2, "#1f77b4")
            + "</svg>\n")


def text_plot(rows: list[tuple[float, float, float, float]], width: int = 60) -> str:
    k_max = max(max(r[1], r[2]) for r in rows) or 1
    out = ["  s   link   enc   est  (# encoded video + audio, | link)"]
    for t, link, sent, est in rows:
        bar = [" "] * (width + 1)
        for i in range(round(width * min(sent, k_max) / k_max)):
            bar[i] = "#"
        bar[min(width, round(width * link / k_max))] = "|"
        out.append(f"{t:4.0f} {link:6.0f} {sent:5.0f} {est:5.0f}  {''.join(bar)}")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("publisher", type=Path, help="publisher.jsonl kept by a lab test")
    parser.add_argument("profile", help="the lab profile: a built-in name or a JSON file")
    parser.add_argument("--svg", type=Path, help="write the plot as SVG here")
    parser.add_argument("--offset", type=float, default=0.0,
                        help="profile time at the session's start, s (default 0)")
    args = parser.parse_args(argv)
    profile = load_profile(args.profile)
    rows = series(read_stats(args.publisher), profile, args.offset)
    print(text_plot(rows))
    up = [r for r in rows if r[1] > 0 and r[0] >= 10]
    if up:
        used = sum(r[2] for r in up) / sum(r[1] for r in up)
        print(f"\nencoded / link while the link is up, from 10 s: {100 * used:.0f} %")
    if args.svg:
        args.svg.parent.mkdir(parents=True, exist_ok=True)
        args.svg.write_text(svg(rows, profile.get("name", args.profile)))
        print(f"wrote {args.svg}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
