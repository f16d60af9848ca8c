#!/usr/bin/env python3
"""FieldCast same-pixels benchmark: the CPU around the encoder, against ffmpeg and gst-launch.

What it measures
    Every contender encodes the same pixels: a y4m clip of lavfi's testsrc2 with sensor-like
    noise (temporal, uniform: every frame differs, as a camera's do), generated once by this
    bench at 480p and at 720p, 30 fps. Each pushes it in real time over RTMP to a local
    nginx-rtmp, with the same x264 settings (the preset under test, zerolatency, no B-frames,
    a keyframe every 2 s, CBR with a 600 ms VBV buffer) and a silent AAC track (64 kbit/s mono
    44.1 kHz; fieldcast adds silence to a file without sound, the peers are given the same):

    - `fieldcast live --source file:CLIP --encoder x264 --x264-preset P --no-abr`;
    - `ffmpeg -re -i CLIP` with libx264;
    - `gst-launch-1.0` with filesrc ! y4mdec ! clocksync and the rest of fieldcast's media graph,
      flvmux and rtmp2sink as its RTMP output.

    Presets `veryfast` and `ultrafast` in turn (at ultrafast x264 does least, so the work around
    it shows most), the contenders alternating inside each round, three rounds by default. The
    order of the contenders turns by one each round, so none always goes first.

    Right before each run the bench reads the whole clip once. A page of the clip that has not
    been touched for a while can cost several times more to read (on virtual machines whose host
    reclaims idle guest memory; bench/page_age.py measures it), so without this the contender
    that follows runs on other clips would pay more than the one that follows its peer on the
    same clip. With it, every contender starts from a clip read just before.

How
    Each contender is a direct child reaped with os.wait4: its rusage gives CPU (user + system),
    peak RSS and context switches (voluntary + involuntary). CPU and context switches are divided
    by the media seconds the ingest recorded from that run (ffprobe's frame count / 30). The
    report prints medians over rounds, fieldcast / ffmpeg and fieldcast / gst-launch CPU ratios
    next to the targets (at most 1.05x ffmpeg at veryfast, 1.10x at ultrafast), and context
    switches per media second next to ffmpeg's. Each ratio is given two ways: of the medians, and
    as the median of the rounds' own ratios, with their range. The contenders of a round run back
    to back, so a round's ratio is not moved by the machine's speed changing between rounds; the
    targets are checked on that paired median. The JSON goes to target/bench/pixels.json.

    The bench reports; it never fails because a target is missed. It exits 1 when a run failed
    and 2 when a tool is missing.

Usage
    python3 bench/pixels_bench.py --fieldcast target/release/fieldcast [--rounds 3] [--secs 30]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

from live_bench import (
    AUDIO_KBPS,
    AUDIO_RATE,
    FPS,
    KEYFRAME_SECS,
    REPO,
    RUN_GRACE_SECS,
    VBV_MS,
    Children,
    check_tools,
    delivered_seconds,
    environment,
    start_ingest,
    stop_ingest,
    wait4_measured,
)

PRESETS = ("veryfast", "ultrafast")
#: fieldcast / ffmpeg CPU per media second must be at most this, per preset.
TARGET_CPU_VS_FFMPEG = {"veryfast": 1.05, "ultrafast": 1.10}
CONTENDERS = ("fieldcast", "ffmpeg", "gst-launch")
#: Read size of the clip's warm-up read.
WARM_READ_BYTES = 4 << 20
#: Sensor-like noise: strength of lavfi's noise filter, temporal and uniform.
NOISE = "noise=alls=12:allf=t+u"


@dataclasses.dataclass(frozen=True)
class Clip:
    """One picture size of the job."""

    profile: str
    width: int
    height: int
    video_kbps: int

    def path(self, clips: Path, secs: float) -> Path:
        return clips / f"noise-{self.width}x{self.height}-{secs:g}s.y4m"


CLIPS = (Clip("480p", 854, 480, 1000), Clip("720p", 1280, 720, 2500))


@dataclasses.dataclass
class Run:
    """What os.wait4 and the ingest's recording say about one contender run."""

    clip: str
    preset: str
    contender: str
    round: int
    exit_code: int
    wall_s: float
    cpu_s: float
    peak_rss_kib: int
    context_switches: int
    media_s: float
    timed_out: bool
    log: str

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.timed_out and self.media_s > 0

    @property
    def cpu_per_media_s(self) -> float:
        return self.cpu_s / self.media_s if self.media_s > 0 else float("nan")

    @property
    def switches_per_media_s(self) -> float:
        return self.context_switches / self.media_s if self.media_s > 0 else float("nan")


def make_clip(clip: Clip, path: Path, secs: float) -> None:
    """Writes the noisy y4m clip once (a later run reuses it)."""
    if path.exists() and path.stat().st_size > 0:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial.y4m")
    subprocess.run(
        ["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-y",
         "-f", "lavfi", "-i", f"testsrc2=size={clip.width}x{clip.height}:rate={FPS}",
         "-vf", NOISE, "-t", f"{secs:g}", "-pix_fmt", "yuv420p", "-f", "yuv4mpegpipe",
         str(partial)],
        check=True, timeout=600,
    )
    partial.rename(path)


def warm(path: Path) -> None:
    """Reads the whole file, so that every contender starts from a clip read just before it."""
    with open(path, "rb", buffering=0) as f:
        while f.read(WARM_READ_BYTES):
            pass


def fieldcast_argv(fieldcast: Path, clip: Clip, source: Path, preset: str, url: str) -> list[str]:
    return [
        str(fieldcast), "live", "--ingest", url, "--source", f"file:{source}",
        "--profile", clip.profile, "--video-kbps", str(clip.video_kbps),
        "--encoder", "x264", "--x264-preset", preset, "--quiet",
        # The peers send at a fixed rate; so does fieldcast here (the link is loopback).
        "--no-abr",
    ]


def ffmpeg_argv(clip: Clip, source: Path, preset: str, url: str) -> list[str]:
    kbps = clip.video_kbps
    return [
        "ffmpeg", "-hide_banner", "-nostdin", "-nostats", "-loglevel", "warning",
        "-re", "-i", str(source),
        "-f", "lavfi", "-i", f"anullsrc=r={AUDIO_RATE}:cl=mono",
        "-map", "0:v", "-map", "1:a", "-shortest",
        "-c:v", "libx264", "-preset", preset, "-tune", "zerolatency",
        "-g", str(FPS * KEYFRAME_SECS), "-bf", "0",
        "-b:v", f"{kbps}k", "-maxrate", f"{kbps}k", "-bufsize", f"{kbps * VBV_MS // 1000}k",
        "-pix_fmt", "yuv420p",
        "-c:a", "aac", "-b:a", f"{AUDIO_KBPS}k", "-ac", "1", "-ar", str(AUDIO_RATE),
        "-f", "flv", "-flvflags", "no_duration_filesize", url,
    ]


def gst_argv(clip: Clip, source: Path, preset: str, url: str) -> list[str]:
    """fieldcast's media graph for a file source (core/src/media/), with GStreamer's RTMP output
    (flvmux, rtmp2sink) where fieldcast publishes RTMP itself."""
    w, h = clip.width, clip.height
    description = (
        f"filesrc location={source} ! y4mdec ! videoconvert ! clocksync "
        f"! videoscale add-borders=true "
        f"! video/x-raw,format=I420,width={w},height={h},pixel-aspect-ratio=1/1,framerate={FPS}/1 "
        f"! queue "
        f"! x264enc tune=zerolatency speed-preset={preset} key-int-max={FPS * KEYFRAME_SECS} "
        f"bframes=0 bitrate={clip.video_kbps} "
        f"! h264parse config-interval=-1 ! video/x-h264,stream-format=avc,alignment=au "
        f"! queue ! mux.video "
        f"audiotestsrc is-live=true wave=silence ! audioconvert ! audioresample "
        f"! audio/x-raw,rate={AUDIO_RATE},channels=1 ! queue "
        f"! avenc_aac bitrate={AUDIO_KBPS * 1000} ! aacparse ! queue ! mux.audio "
        f"flvmux name=mux streamable=true ! rtmp2sink location={url} timeout=10"
    )
    return ["gst-launch-1.0", "-e", *description.split()]


def run_one(contender: str, clip: Clip, preset: str, rnd: int, args, source: Path, ingest,
            children: Children, run_id: str, logs: Path) -> Run:
    key = f"px-{run_id}-r{rnd}-{clip.profile}-{preset}-{contender}"
    url = ingest.url_for(key)
    interrupt_after = None
    if contender == "fieldcast":
        argv = fieldcast_argv(args.fieldcast, clip, source, preset, url)
    elif contender == "ffmpeg":
        argv = ffmpeg_argv(clip, source, preset, url)
    else:
        argv = gst_argv(clip, source, preset, url)
        # The silent audio is live and never ends: stop at the clip's end (-e sends EOS).
        interrupt_after = args.secs + 0.5
    log = logs / f"{key}.log"
    with open(log, "w") as out:
        out.write(" ".join(argv) + "\n\n")
        out.flush()
        proc = children.spawn(argv, stdout=out, stderr=subprocess.STDOUT)
        code, rusage, wall, timed_out = wait4_measured(
            proc, interrupt_after, args.secs + RUN_GRACE_SECS
        )
    children.forget(proc)
    media = delivered_seconds(ingest, key) or 0.0
    return Run(
        clip=clip.profile, preset=preset, contender=contender, round=rnd, exit_code=code,
        wall_s=round(wall, 3), cpu_s=rusage.ru_utime + rusage.ru_stime,
        peak_rss_kib=rusage.ru_maxrss, context_switches=rusage.ru_nvcsw + rusage.ru_nivcsw,
        media_s=media, timed_out=timed_out, log=str(log),
    )


def summarize(runs: list[Run]) -> dict:
    """Medians over the successful rounds, per clip, preset and contender."""
    out: dict = {}
    for clip in CLIPS:
        for preset in PRESETS:
            for contender in CONTENDERS:
                mine = [r for r in runs if (r.clip, r.preset, r.contender)
                        == (clip.profile, preset, contender) and r.ok]
                if not mine:
                    continue
                out.setdefault(f"{clip.profile} {preset}", {})[contender] = {
                    "rounds": len(mine),
                    "media_s": statistics.median(r.media_s for r in mine),
                    "cpu_per_media_s": statistics.median(r.cpu_per_media_s for r in mine),
                    "switches_per_media_s": statistics.median(
                        r.switches_per_media_s for r in mine),
                    "peak_rss_mib": statistics.median(r.peak_rss_kib for r in mine) / 1024,
                }
    return out


def paired(runs: list[Run], label: str, peer: str) -> list[float]:
    """fieldcast / peer CPU per media second within each round where both ran: the contenders of a
    round run back to back, so a change in the machine's speed between rounds cancels out."""
    by_round: dict[int, dict[str, float]] = {}
    for r in runs:
        if r.ok and f"{r.clip} {r.preset}" == label:
            by_round.setdefault(r.round, {})[r.contender] = r.cpu_per_media_s
    return [c["fieldcast"] / c[peer] for _, c in sorted(by_round.items())
            if "fieldcast" in c and peer in c]


def ratios(summary: dict, runs: list[Run]) -> list[dict]:
    """fieldcast / peer: the ratio of the medians, and the median of the rounds' paired ratios,
    which the target is checked on."""
    checks = []
    for label, by in summary.items():
        preset = label.split()[1]
        for peer, target in (("ffmpeg", TARGET_CPU_VS_FFMPEG[preset]), ("gst-launch", None)):
            pairs = paired(runs, label, peer)
            if "fieldcast" in by and peer in by and pairs:
                ratio = by["fieldcast"]["cpu_per_media_s"] / by[peer]["cpu_per_media_s"]
                median = statistics.median(pairs)
                checks.append({
                    "config": label, "versus": peer, "ratio": round(ratio, 3),
                    "paired": [round(p, 3) for p in pairs], "paired_median": round(median, 3),
                    "target": target, "met": None if target is None else median <= target,
                })
    return checks


def print_report(summary: dict, checks: list[dict], runs: list[Run], args) -> None:
    print()
    print(f"FieldCast same-pixels bench: {args.secs:g} s noisy clips, {args.rounds} round(s), "
          "medians over rounds")
    print()
    print(f"{'clip preset':<18}{'contender':<12}{'media s':>8}{'CPU s/media s':>15}"
          f"{'switches/media s':>18}{'peak RSS MiB':>14}")
    for label, by in summary.items():
        for contender in CONTENDERS:
            if contender in by:
                s = by[contender]
                print(f"{label:<18}{contender:<12}{s['media_s']:>8.1f}"
                      f"{s['cpu_per_media_s']:>15.3f}{s['switches_per_media_s']:>18.0f}"
                      f"{s['peak_rss_mib']:>14.1f}")
    print()
    print("fieldcast CPU / peer: of the medians, and the median of each round's own ratio (its")
    print("contenders run back to back; the target is checked on it), with the rounds' range")
    print(f"{'clip preset':<18}{'peer':<12}{'medians':>9}{'rounds':>9}{'range':>15}{'target':>10}"
          "  result")
    for c in checks:
        target = f"<= {c['target']:.2f}x" if c["target"] else "-"
        result = "-" if c["met"] is None else ("met" if c["met"] else "NOT MET")
        spread = f"{min(c['paired']):.2f}-{max(c['paired']):.2f}x"
        print(f"{c['config']:<18}{c['versus']:<12}{c['ratio']:>8.2f}x{c['paired_median']:>8.2f}x"
              f"{spread:>15}{target:>10}  {result}")
    for r in runs:
        if not r.ok:
            why = "timed out" if r.timed_out else f"exit {r.exit_code}, media {r.media_s:.1f} s"
            print(f"FAILED: {r.contender} {r.clip} {r.preset} round {r.round} ({why}); log: {r.log}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fieldcast", type=Path, default=REPO / "target/release/fieldcast",
                        help="the fieldcast binary (default: target/release/fieldcast)")
    # 30 s rather than 12: a longer run averages out more of the machine's drift (bench/README.md).
    parser.add_argument("--secs", type=float, default=30, help="clip length, s (default 30)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds (default 3)")
    parser.add_argument("--clips", type=Path, default=REPO / "target/bench/clips",
                        help="where the generated clips are kept (default target/bench/clips)")
    parser.add_argument("--out", type=Path, default=REPO / "target/bench/pixels.json",
                        help="the JSON result (default target/bench/pixels.json)")
    args = parser.parse_args(argv)
    if args.secs < 4 or args.rounds < 1:
        parser.error("--secs must be at least 4 and --rounds at least 1")
    args.fieldcast = args.fieldcast.resolve()
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    problems = check_tools(args.fieldcast)
    if shutil.which("gst-inspect-1.0") and subprocess.run(
            ["gst-inspect-1.0", "--exists", "y4mdec"], capture_output=True).returncode != 0:
        problems.append("GStreamer element y4mdec is missing: apt-get install "
                        "gstreamer1.0-plugins-bad")
    if problems:
        print("cannot run the bench:", *problems, sep="\n  ", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    sources = {}
    for clip in CLIPS:
        sources[clip.profile] = clip.path(args.clips, args.secs)
        print(f"clip: {sources[clip.profile]}", flush=True)
        make_clip(clip, sources[clip.profile], args.secs)
    run_id = secrets.token_hex(3)
    logs = args.out.parent / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    children = Children()
    runs: list[Run] = []
    ingest = None
    try:
        ingest = start_ingest(args.fieldcast, f"pixels-{run_id}", children)
        for rnd in range(1, args.rounds + 1):
            for clip in CLIPS:
                for preset in PRESETS:
                    turn = (rnd - 1) % len(CONTENDERS)
                    for contender in CONTENDERS[turn:] + CONTENDERS[:turn]:
                        print(f"round {rnd}/{args.rounds}: {clip.profile} {preset} {contender} ...",
                              end=" ", flush=True)
                        warm(sources[clip.profile])
                        r = run_one(contender, clip, preset, rnd, args, sources[clip.profile],
                                    ingest, children, run_id, logs)
                        runs.append(r)
                        print(f"{r.cpu_per_media_s:.3f} CPU s/media s, "
                              f"{r.switches_per_media_s:.0f} switches/media s"
                              + ("" if r.ok else f"  (FAILED, see {r.log})"))
                        time.sleep(1)
    except KeyboardInterrupt:
        print("\ninterrupted: stopping the children", file=sys.stderr)
        return 130
    finally:
        if ingest is not None:
            children.forget(ingest.proc)
        children.stop_all()
        if ingest is not None:
            stop_ingest(ingest, children)
    summary = summarize(runs)
    checks = ratios(summary, runs)
    print_report(summary, checks, runs, args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "bench": "pixels", "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "secs": args.secs, "rounds": args.rounds, "environment": environment(args.fieldcast),
        "noise": NOISE, "targets": TARGET_CPU_VS_FFMPEG,
        "runs": [dataclasses.asdict(r) for r in runs], "summary": summary, "ratios": checks,
    }, indent=2) + "\n")
    print(f"result: {args.out}")
    return 0 if runs and all(r.ok for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
