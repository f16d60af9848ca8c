#!/usr/bin/env python3
"""FieldCast record bench: what `fieldcast live --record` costs over the same session without it.

What it measures
    With the adaptive bitrate on, `fieldcast live --record DIR` runs one video encoder while the
    live stream is at full quality (the recording takes the live encoder's frames) and a second
    one only while the adaptive bitrate holds the live stream below full quality. The bench
    pushes the same noisy 480p clip (pixels_bench's clip: 854x480, 30 fps, 1000 kbit/s, x264
    veryfast, --secs long) over RTMP to a local nginx-rtmp, in four configurations per round:

    - good link, without and with --record: straight to the ingest over loopback;
    - poor link, without and with --record: through a TCP relay in this script that takes at
      most --poor-kbit kbit/s (default 400) from the publisher, so that the adaptive bitrate
      lowers the live stream and the recording needs its own encoder.

    Target: on the good link, --record costs at most 1.15x the CPU of the same session without.

How
    Each run is a direct child reaped with os.wait4: its rusage gives CPU (user + system) and
    peak RSS. Both runs of a link encode the whole clip, while the poor link delivers less of it
    to the ingest, so CPU is divided by the clip's seconds, and the record / no-record ratios
    compare that. The run's `--json-events` stats lines (one a second) give the share of seconds
    with two video encoders and the median live target bitrate; ffprobe gives the length of the
    recording (DIR/fieldcast-00000.mp4, deleted after the run). The report prints medians over
    rounds and the ratios, next to the target. The JSON goes to target/bench/record.json.

    As in pixels_bench, the clip is read once right before every run, so that each starts from a
    clip read just before it.

    The relay reads the publisher's bytes through a token bucket (4 KiB at a time) into a small
    receive buffer, so the publisher's socket fills as on a slow uplink; the ingest's replies go
    back unthrottled.

    The bench reports; it never fails because a target is missed. It exits 1 when a run failed
    and 2 when a tool is missing.

Usage
    python3 bench/record_bench.py --fieldcast target/release/fieldcast [--rounds 3] [--secs 40]
        [--poor-kbit 400]
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from live_bench import (
    REPO,
    RUN_GRACE_SECS,
    Children,
    check_tools,
    delivered_seconds,
    environment,
    start_ingest,
    stop_ingest,
    wait4_measured,
)
from pixels_bench import CLIPS, Clip, make_clip, warm

#: The 480p clip of pixels_bench.
CLIP = CLIPS[0]
PRESET = "veryfast"
#: (link, with --record), in the order they run inside a round.
CONFIGS = (("good", False), ("good", True), ("poor", False), ("poor", True))
#: With --record, the session's CPU per clip second must be at most this times the CPU without,
#: on the good link.
TARGET_CPU_GOOD = 1.15
#: The relay reads the publisher's bytes in chunks of at most this many bytes.
RELAY_CHUNK = 4096
#: The relay's receive buffer toward the publisher (the kernel doubles it): small, so that the
#: throttle shows in the publisher's socket within about a second, as on a slow uplink.
RELAY_RCVBUF = 32 * 1024
#: How long a relay socket blocks before its thread looks at the stop flag again.
RELAY_POLL_SECS = 0.2
#: How long the relay may take to pass on what the publisher left in its socket at the end.
RELAY_DRAIN_SECS = 15


@dataclasses.dataclass
class Run:
    """What os.wait4, the ingest, the stats lines and the recording say about one run."""

    link: str
    record: bool
    round: int
    exit_code: int
    wall_s: float
    clip_s: float
    cpu_s: float
    peak_rss_kib: int
    media_s: float
    stats_lines: int
    two_encoders_share: float | None
    median_target_kbps: float | None
    recording_s: float | None
    timed_out: bool
    log: str
    events: str

    @property
    def label(self) -> str:
        return config_label(self.link, self.record)

    @property
    def ok(self) -> bool:
        return (self.exit_code == 0 and not self.timed_out and self.media_s > 0
                and (not self.record or bool(self.recording_s)))

    @property
    def cpu_per_clip_s(self) -> float:
        return self.cpu_s / self.clip_s


def config_label(link: str, record: bool) -> str:
    return f"{link} +record" if record else link


class ThrottledRelay:
    """A TCP relay on 127.0.0.1 to `upstream`: at most `kbit` kbit/s from the publisher to the
    ingest (a token bucket per connection), the other way unthrottled."""

    def __init__(self, upstream: tuple[str, int], kbit: float) -> None:
        self.upstream = upstream
        self.bytes_per_s = kbit * 1000 / 8
        self._stop = threading.Event()
        self._idle = threading.Condition()
        self._open = 0
        self._sockets: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        # Set before listen(): accepted sockets inherit it, and it sets the advertised window.
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RELAY_RCVBUF)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen()
        self._listener.settimeout(RELAY_POLL_SECS)
        self.port = self._listener.getsockname()[1]
        self._thread(self._accept)

    def _thread(self, target, *args) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _accept(self) -> None:
        """Accepts publishers until stopped, each relayed on threads of its own."""
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._idle:
                self._open += 1
            self._thread(self._serve, client)

    def _serve(self, client: socket.socket) -> None:
        """Relays one publisher connection both ways until both directions have ended."""
        server = None
        try:
            server = socket.create_connection(self.upstream, timeout=5)
            for s in (client, server):
                s.settimeout(RELAY_POLL_SECS)
                self._sockets.append(s)
            down = threading.Thread(target=self._pump, args=(server, client, None), daemon=True)
            down.start()
            self._pump(client, server, self.bytes_per_s)
            down.join()
        except OSError:
            pass
        finally:
            for s in (client, server):
                if s is not None:
                    with contextlib.suppress(ValueError):
                        self._sockets.remove(s)
                    s.close()
            with self._idle:
                self._open -= 1
                self._idle.notify_all()

    def _pump(self, src: socket.socket, dst: socket.socket, bytes_per_s: float | None) -> None:
        """Copies `src` to `dst` until EOF, an error or stop; at most `bytes_per_s` if given."""
        free_at = time.monotonic()
        try:
            while not self._stop.is_set():
                try:
                    data = src.recv(RELAY_CHUNK)
                except TimeoutError:
                    continue
                if not data:
                    break
                dst.sendall(data)
                if bytes_per_s:
                    # The bucket holds at most one chunk: the average never exceeds the rate.
                    free_at = max(free_at, time.monotonic()) + len(data) / bytes_per_s
                    self._stop.wait(max(0.0, free_at - time.monotonic()))
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                dst.shutdown(socket.SHUT_WR)

    def wait_idle(self, timeout: float) -> bool:
        """Waits until no connection is being relayed; False if one still is after `timeout`."""
        with self._idle:
            return self._idle.wait_for(lambda: self._open == 0, timeout)

    def stop(self) -> None:
        """Stops every thread: the stop flag, then the sockets shut down, then closed."""
        self._stop.set()
        for s in list(self._sockets):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
        for thread in self._threads:
            thread.join(timeout=5)
        self._listener.close()


def with_port(url: str, port: int) -> str:
    """`url` with its port replaced (the relay's in place of the ingest's)."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=f"{parts.hostname}:{port}"))


def fieldcast_argv(fieldcast: Path, clip: Clip, source: Path, url: str,
                   record: Path | None) -> list[str]:
    """`fieldcast live` with the adaptive bitrate on and the session events as JSON on stdout."""
    argv = [
        str(fieldcast), "live", "--ingest", url, "--source", f"file:{source}",
        "--profile", clip.profile, "--video-kbps", str(clip.video_kbps),
        "--encoder", "x264", "--x264-preset", PRESET, "--quiet", "--json-events",
    ]
    return argv + (["--record", str(record)] if record else [])


def read_stats(events: Path) -> tuple[int, float | None, float | None]:
    """From the `--json-events` lines: the stats lines, the share of them with two video
    encoders (None from a fieldcast whose stats do not count encoders) and the median live
    target bitrate."""
    stats = []
    for line in events.read_text(errors="replace").splitlines():
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(event, dict) and event.get("event") == "stats":
            stats.append(event)
    if not stats:
        return 0, None, None
    counted = [s["video_encoders"] for s in stats if "video_encoders" in s]
    two = sum(1 for n in counted if n == 2) / len(counted) if counted else None
    kbps = [s["target_video_kbps"] for s in stats if s.get("target_video_kbps") is not None]
    return len(stats), two, statistics.median(kbps) if kbps else None


def recording_seconds(path: Path) -> float | None:
    """The duration ffprobe reads from the MP4 at `path`, or None if there is none."""
    if not path.is_file():
        return None
    try:
        out = subprocess.run(
            ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0",
             str(path)],
            capture_output=True, text=True, timeout=60,
        )
        return float(out.stdout.strip().splitlines()[0])
    except (subprocess.SubprocessError, ValueError, IndexError):
        return None


def run_one(link: str, record: bool, rnd: int, args, source: Path, ingest,
            relay: ThrottledRelay, children: Children, run_id: str, logs: Path) -> Run:
    """One measured run, publishing under its own stream key."""
    key = f"rec-{run_id}-r{rnd}-{link}-{'record' if record else 'live'}"
    url = ingest.url_for(key)
    if link == "poor":
        url = with_port(url, relay.port)
    records = REPO / "target/bench/record"
    records.mkdir(parents=True, exist_ok=True)
    record_dir = Path(tempfile.mkdtemp(prefix=f"{key}-", dir=records)) if record else None
    argv = fieldcast_argv(args.fieldcast, CLIP, source, url, record_dir)
    log = logs / f"{key}.log"
    events = logs / f"{key}.jsonl"
    try:
        with open(log, "w") as err, open(events, "w") as out:
            err.write(" ".join(argv) + "\n\n")
            err.flush()
            proc = children.spawn(argv, stdout=out, stderr=err)
            code, rusage, wall, timed_out = wait4_measured(
                proc, None, args.secs + RUN_GRACE_SECS
            )
        children.forget(proc)
        if link == "poor" and not relay.wait_idle(RELAY_DRAIN_SECS):
            print(f"(the relay still passes on this run's tail after {RELAY_DRAIN_SECS} s)",
                  end=" ")
        media = delivered_seconds(ingest, key) or 0.0
        recording = recording_seconds(record_dir / "fieldcast-00000.mp4") if record_dir else None
    finally:
        if record_dir is not None:
            shutil.rmtree(record_dir, ignore_errors=True)
    stats_lines, two, kbps = read_stats(events)
    return Run(
        link=link, record=record, round=rnd, exit_code=code, wall_s=round(wall, 3),
        clip_s=args.secs, cpu_s=rusage.ru_utime + rusage.ru_stime,
        peak_rss_kib=rusage.ru_maxrss, media_s=media, stats_lines=stats_lines,
        two_encoders_share=two, median_target_kbps=kbps, recording_s=recording,
        timed_out=timed_out, log=str(log), events=str(events),
    )


def median_of(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def summarize(runs: list[Run]) -> dict:
    """Medians over the successful rounds, per configuration."""
    out: dict = {}
    for link, record in CONFIGS:
        mine = [r for r in runs if (r.link, r.record) == (link, record) and r.ok]
        if not mine:
            continue
        out[config_label(link, record)] = {
            "rounds": len(mine),
            "media_s": statistics.median(r.media_s for r in mine),
            "cpu_per_clip_s": statistics.median(r.cpu_per_clip_s for r in mine),
            "peak_rss_mib": statistics.median(r.peak_rss_kib for r in mine) / 1024,
            "two_encoders_share": median_of([r.two_encoders_share for r in mine]),
            "median_target_kbps": median_of([r.median_target_kbps for r in mine]),
            "recording_s": median_of([r.recording_s for r in mine]),
        }
    return out


def ratios(summary: dict) -> list[dict]:
    """With / without --record for CPU per clip second and peak RSS, per link."""
    checks = []
    for link in ("good", "poor"):
        without, with_record = summary.get(link), summary.get(config_label(link, True))
        if not (without and with_record):
            continue
        for metric, field in (("CPU", "cpu_per_clip_s"), ("RSS", "peak_rss_mib")):
            ratio = with_record[field] / without[field]
            target = TARGET_CPU_GOOD if (link, metric) == ("good", "CPU") else None
            checks.append({
                "link": link, "metric": metric, "ratio": round(ratio, 3), "target": target,
                "met": None if target is None else ratio <= target,
            })
    return checks


def print_report(summary: dict, checks: list[dict], runs: list[Run], args) -> None:
    print()
    print(f"FieldCast record bench: {args.secs:g} s noisy {CLIP.profile} clip, {PRESET}, "
          f"poor link {args.poor_kbit:g} kbit/s, {args.rounds} round(s), medians over rounds")
    print()
    print(f"{'configuration':<15}{'media s':>8}{'CPU s/clip s':>14}{'peak RSS MiB':>14}"
          f"{'2 encoders':>12}{'live kbit/s':>13}{'recording s':>13}")
    for label, s in summary.items():
        two = "-" if s["two_encoders_share"] is None else f"{s['two_encoders_share']:.0%}"
        kbps = "-" if s["median_target_kbps"] is None else f"{s['median_target_kbps']:.0f}"
        rec = "-" if s["recording_s"] is None else f"{s['recording_s']:.1f}"
        print(f"{label:<15}{s['media_s']:>8.1f}{s['cpu_per_clip_s']:>14.3f}"
              f"{s['peak_rss_mib']:>14.1f}{two:>12}{kbps:>13}{rec:>13}")
    print()
    print(f"{'link':<8}{'+record / without':<20}{'ratio':>8}{'target':>10}  result")
    for c in checks:
        target = f"<= {c['target']:.2f}x" if c["target"] else "-"
        result = "-" if c["met"] is None else ("met" if c["met"] else "NOT MET")
        print(f"{c['link']:<8}{c['metric']:<20}{c['ratio']:>7.2f}x{target:>10}  {result}")
    print()
    print("media s = video frames the ingest received / 30 (low on the poor link, where the live "
          "frame rate drops too);\nCPU = user + system (wait4) over the clip's seconds; "
          "2 encoders = share of the stats seconds with a\nsecond video encoder; "
          "live kbit/s = median live target bitrate")
    for r in runs:
        if not r.ok:
            why = "timed out" if r.timed_out else (
                f"exit {r.exit_code}, media {r.media_s:.1f} s, recording {r.recording_s}")
            print(f"FAILED: {r.label} round {r.round} ({why}); log: {r.log}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fieldcast", type=Path, default=REPO / "target/release/fieldcast",
                        help="the fieldcast binary (default: target/release/fieldcast)")
    parser.add_argument("--secs", type=float, default=40,
                        help="clip length, s (default 40: the adaptive bitrate needs time)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds (default 3)")
    parser.add_argument("--poor-kbit", type=float, default=400,
                        help="the poor link's uplink rate, kbit/s (default 400)")
    parser.add_argument("--clips", type=Path, default=REPO / "target/bench/clips",
                        help="where the generated clips are kept (default target/bench/clips)")
    parser.add_argument("--out", type=Path, default=REPO / "target/bench/record.json",
                        help="the JSON result (default target/bench/record.json)")
    args = parser.parse_args(argv)
    if args.secs < 4 or args.rounds < 1 or args.poor_kbit <= 0:
        parser.error("--secs must be at least 4, --rounds at least 1, --poor-kbit above 0")
    args.fieldcast = args.fieldcast.resolve()
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    problems = check_tools(args.fieldcast)
    if problems:
        print("cannot run the bench:", *problems, sep="\n  ", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    source = CLIP.path(args.clips, args.secs)
    print(f"clip: {source}", flush=True)
    make_clip(CLIP, source, args.secs)
    run_id = secrets.token_hex(3)
    logs = args.out.parent / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    children = Children()
    runs: list[Run] = []
    ingest = relay = None
    try:
        ingest = start_ingest(args.fieldcast, f"record-{run_id}", children)
        ingest_url = urlsplit(ingest.url)
        relay = ThrottledRelay((ingest_url.hostname, ingest_url.port), args.poor_kbit)
        for rnd in range(1, args.rounds + 1):
            for link, record in CONFIGS:
                print(f"round {rnd}/{args.rounds}: {config_label(link, record)} ...", end=" ",
                      flush=True)
                warm(source)
                r = run_one(link, record, rnd, args, source, ingest, relay, children, run_id,
                            logs)
                runs.append(r)
                two = "-" if r.two_encoders_share is None else f"{r.two_encoders_share:.0%}"
                print(f"{r.cpu_per_clip_s:.3f} CPU s/clip s, {r.peak_rss_kib / 1024:.0f} MiB, "
                      f"{r.media_s:.1f} media s, 2 encoders {two}"
                      + ("" if r.ok else f"  (FAILED, see {r.log})"))
                time.sleep(1)
    except KeyboardInterrupt:
        print("\ninterrupted: stopping the children", file=sys.stderr)
        return 130
    finally:
        if ingest is not None:
            children.forget(ingest.proc)
        children.stop_all()
        if relay is not None:
            relay.stop()
        if ingest is not None:
            stop_ingest(ingest, children)
    summary = summarize(runs)
    checks = ratios(summary)
    print_report(summary, checks, runs, args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "bench": "record", "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "secs": args.secs, "rounds": args.rounds, "poor_kbit": args.poor_kbit,
        "environment": environment(args.fieldcast), "target_cpu_good": TARGET_CPU_GOOD,
        "runs": [dataclasses.asdict(r) | {"cpu_per_clip_s": r.cpu_per_clip_s, "ok": r.ok}
                 for r in runs],
        "summary": summary, "ratios": checks,
    }, indent=2) + "\n")
    print(f"result: {args.out}")
    return 0 if runs and all(r.ok for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
