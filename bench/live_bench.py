#!/usr/bin/env python3
"""FieldCast live benchmark: CPU and memory of `fieldcast live` against its peers, plus latency.

What it measures
    One job, pushed over RTMP to a local nginx-rtmp (started with `fieldcast ingest`):
    a moving test pattern at 480p30 / 1000 kbit/s and at 720p30 / 2500 kbit/s, H.264 by x264
    (veryfast, zerolatency, no B-frames, a keyframe every 2 s) plus AAC 64 kbit/s mono 44.1 kHz,
    for --secs seconds (default 30). Three contenders do that job, one after another, in this
    order per configuration and round: `fieldcast live`, `gst-launch-1.0` running fieldcast's
    GStreamer media graph (with flvmux and rtmp2sink as its RTMP output), and `ffmpeg`. ffmpeg cannot run GStreamer's videotestsrc,
    so it encodes lavfi's testsrc2 instead: different content, so the x264 work differs. A fourth
    contender, `ffmpeg-smpte`, encodes lavfi's smptebars scrolled by 4 pixels a frame (the scroll
    filter), the closest ffmpeg gets to videotestsrc's moving smpte pattern: a like-for-like
    check of the ffmpeg ratio (skip it with --no-ffmpeg-smpte).

How
    Each contender is a direct child of this script (no shell in between) and is reaped with
    os.wait4, whose rusage gives its CPU time (user + system) and its peak resident set size.
    CPU is divided by the media seconds the ingest actually received from that contender (the
    video frames in nginx's recording of its stream key, counted by ffprobe, over 30 fps); if
    that cannot be read, by --secs. The results print as a table with the ratios
    fieldcast / gst-launch and fieldcast / ffmpeg next to the targets, and go to
    target/bench/live.json. Then one more `fieldcast live --latency-stamp` run at 480p is
    played back by `fieldcast probe`, which reports capture-to-decoded-frame latency.

    The bench reports; it never fails because a target is missed. It exits 1 only when a run
    itself failed (the numbers would mean nothing) and 2 when a tool is missing.

Usage
    python3 bench/live_bench.py --fieldcast target/release/fieldcast [--secs 30] [--rounds 1]
    python3 bench/live_bench.py --fieldcast target/release/fieldcast --quick   # 10 s smoke run
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import queue
import re
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FPS = 30
KEYFRAME_SECS = 2
AUDIO_KBPS = 64
AUDIO_RATE = 44_100
#: x264enc's default VBV buffer (vbv-buf-capacity, ms); ffmpeg gets the same via -bufsize.
VBV_MS = 600

#: Targets: fieldcast / peer must be at most this.
TARGET_CPU_VS_GST = 1.05
TARGET_CPU_VS_FFMPEG = 1.10
TARGET_RSS_VS_GST = 1.15
TARGET_LATENCY_P50_MS = 150

#: Time a contender may run beyond --secs before it is stopped (SIGINT, then SIGKILL).
RUN_GRACE_SECS = 30
#: Time a child gets to exit after SIGINT before it is killed.
STOP_GRACE_SECS = 10

CONTENDERS = ("fieldcast", "gst-launch", "ffmpeg", "ffmpeg-smpte")
FFMPEG_NOTE = (
    "ffmpeg cannot run GStreamer's videotestsrc: `ffmpeg` encodes lavfi testsrc2 + sine instead, "
    "so its content (and x264's work) differs from fieldcast's and gst-launch's moving smpte "
    "pattern; `ffmpeg-smpte` encodes lavfi smptebars scrolled 4 px/frame, the closest match."
)

MEDIA_NOTE = (
    "media s = video the ingest recorded (ffprobe frame count / 30); "
    "CPU = user + system of the process (wait4); RSS = its peak resident set"
)


@dataclasses.dataclass(frozen=True)
class Config:
    """One encoding configuration of the job."""

    profile: str
    width: int
    height: int
    video_kbps: int

    @property
    def label(self) -> str:
        return f"{self.profile} {self.video_kbps}k"


CONFIGS = (Config("480p", 854, 480, 1000), Config("720p", 1280, 720, 2500))


@dataclasses.dataclass
class Measurement:
    """What os.wait4 and the ingest's recording say about one contender run."""

    config: str
    contender: str
    round: int
    key: str
    exit_code: int
    wall_s: float
    cpu_user_s: float
    cpu_sys_s: float
    peak_rss_kib: int
    media_s: float
    media_source: str  # "recording" (frames counted by ffprobe) or "--secs"
    timed_out: bool
    log: str

    @property
    def cpu_s(self) -> float:
        return self.cpu_user_s + self.cpu_sys_s

    @property
    def cpu_per_media_s(self) -> float:
        return self.cpu_s / self.media_s if self.media_s > 0 else float("nan")

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.timed_out and self.media_s > 0


# --------------------------------------------------------------------------------------------
# Child processes: every one is registered so that any exit path stops it.


class Children:
    """The child processes started by the bench; `stop_all` stops each by its own PID."""

    def __init__(self) -> None:
        self._procs: list[subprocess.Popen] = []

    def spawn(self, argv: list[str], **kwargs) -> subprocess.Popen:
        # A new session: a Ctrl-C on the terminal reaches only this script, which then stops
        # the children in order (the ingest last, so publishers can finish cleanly).
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, start_new_session=True, **kwargs)
        self._procs.append(proc)
        return proc

    def forget(self, proc: subprocess.Popen) -> None:
        if proc in self._procs:
            self._procs.remove(proc)

    def stop_all(self) -> None:
        for proc in reversed(list(self._procs)):
            stop_process(proc)
            self.forget(proc)


def stop_process(proc: subprocess.Popen, grace: float = STOP_GRACE_SECS) -> None:
    """SIGINT to the process's own PID, SIGKILL if it is still there after `grace` seconds."""
    if proc.poll() is not None:
        return
    try:
        os.kill(proc.pid, signal.SIGINT)
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)
    except ProcessLookupError:
        pass


def wait4_measured(
    proc: subprocess.Popen, interrupt_after: float | None, hard_timeout: float
) -> tuple[int, object, float, bool]:
    """Reaps `proc` with os.wait4, optionally sending SIGINT after `interrupt_after` seconds.

    Returns (exit code, rusage, wall seconds, timed out). Past `hard_timeout` the process gets
    SIGINT, then SIGKILL after STOP_GRACE_SECS.
    """
    start = time.monotonic()
    interrupted = timed_out = False
    kill_at = None
    while True:
        pid, status, rusage = os.wait4(proc.pid, os.WNOHANG)
        if pid == proc.pid:
            wall = time.monotonic() - start
            code = os.waitstatus_to_exitcode(status)
            proc.returncode = code  # reaped here: keep Popen from waiting again
            return code, rusage, wall, timed_out
        elapsed = time.monotonic() - start
        if interrupt_after is not None and not interrupted and elapsed >= interrupt_after:
            os.kill(proc.pid, signal.SIGINT)
            interrupted = True
        if not timed_out and elapsed >= hard_timeout:
            timed_out = True
            os.kill(proc.pid, signal.SIGINT)
            kill_at = elapsed + STOP_GRACE_SECS
        if kill_at is not None and elapsed >= kill_at:
            os.kill(proc.pid, signal.SIGKILL)
            kill_at = None
        time.sleep(0.02)


# --------------------------------------------------------------------------------------------
# Tools


def check_tools(fieldcast: Path) -> list[str]:
    """Problems that stop the bench from running, each with what to install."""
    problems = []
    if not (fieldcast.is_file() and os.access(fieldcast, os.X_OK)):
        problems.append(
            f"the fieldcast binary {fieldcast} is missing: build it with `make build` "
            "(or `cargo build --release -p fieldcast-cli`)"
        )
    needs = {
        "gst-launch-1.0": "gstreamer1.0-tools",
        "gst-inspect-1.0": "gstreamer1.0-tools",
        "ffmpeg": "ffmpeg",
        "ffprobe": "ffmpeg",
    }
    for tool, package in needs.items():
        if shutil.which(tool) is None:
            problems.append(f"{tool} is missing: apt-get install {package}")
    if shutil.which("gst-inspect-1.0"):
        elements = {
            "videotestsrc": "gstreamer1.0-plugins-base",
            "audiotestsrc": "gstreamer1.0-plugins-base",
            "x264enc": "gstreamer1.0-plugins-ugly",
            "avenc_aac": "gstreamer1.0-libav",
            "h264parse": "gstreamer1.0-plugins-bad",
            "aacparse": "gstreamer1.0-plugins-good",
            "flvmux": "gstreamer1.0-plugins-good",
            "rtmp2sink": "gstreamer1.0-plugins-bad",
        }
        for element, package in elements.items():
            found = subprocess.run(
                ["gst-inspect-1.0", "--exists", element], capture_output=True, timeout=60
            )
            if found.returncode != 0:
                problems.append(
                    f"GStreamer element {element} is missing: apt-get install {package}"
                )
    for path, package in (
        ("/usr/sbin/nginx", "nginx"),
        ("/usr/lib/nginx/modules/ngx_rtmp_module.so", "libnginx-mod-rtmp"),
    ):
        if not Path(path).exists():
            problems.append(f"{path} is missing (the local ingest): apt-get install {package}")
    return problems


def first_line(argv: list[str]) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=30)
        return (out.stdout or out.stderr).strip().splitlines()[0]
    except (OSError, subprocess.SubprocessError, IndexError):
        return "unknown"


def environment(fieldcast: Path) -> dict:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "host": platform.node(),
        "kernel": platform.release(),
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "fieldcast": first_line([str(fieldcast), "--version"]),
        "gst-launch": first_line(["gst-launch-1.0", "--version"]),
        "ffmpeg": first_line(["ffmpeg", "-hide_banner", "-version"]),
    }


# --------------------------------------------------------------------------------------------
# The ingest


@dataclasses.dataclass
class Ingest:
    proc: subprocess.Popen
    url: str
    recordings: Path | None
    nginx_pid: int | None

    def url_for(self, key: str) -> str:
        """The URL for another stream key on the same server (the last path part replaced)."""
        return self.url.rsplit("/", 1)[0] + "/" + key


def start_ingest(fieldcast: Path, key: str, children: Children, timeout: float = 20) -> Ingest:
    """Starts `fieldcast ingest` and waits for the URL it prints."""
    proc = children.spawn(
        [str(fieldcast), "ingest", "--key", key],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    for stream in (proc.stdout, proc.stderr):
        threading.Thread(target=_pump, args=(stream, lines), daemon=True).start()
    deadline = time.monotonic() + timeout
    seen = []
    recordings: Path | None = None
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=0.2)
        except queue.Empty:
            if proc.poll() is not None:
                break
            continue
        seen.append(line)
        printed = re.search(r"^recordings: (.+)$", line.strip())
        if printed:
            recordings = Path(printed.group(1))
        match = re.search(r"publish to (rtmp://\S+)", line)
        if match:
            found = recordings if recordings and recordings.is_dir() else None
            return Ingest(proc, match.group(1), found, child_pid(proc.pid))
    stop_process(proc)
    raise RuntimeError("`fieldcast ingest` did not print its URL:\n" + "".join(seen))


def _pump(stream, lines: queue.Queue) -> None:
    for line in stream:
        lines.put(line)


def child_pid(parent: int) -> int | None:
    """The PID of a child of `parent` (the ingest's nginx), from /proc."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == parent:
            return int(stat.parent.name)
    return None


def stop_ingest(ingest: Ingest, children: Children) -> None:
    """SIGINT to the ingest (it stops its nginx); nginx itself only if the ingest was killed."""
    stop_process(ingest.proc)
    children.forget(ingest.proc)
    if ingest.nginx_pid and Path(f"/proc/{ingest.nginx_pid}").exists():
        try:
            os.kill(ingest.nginx_pid, signal.SIGTERM)
        except ProcessLookupError:
            pass


def delivered_seconds(ingest: Ingest, key: str) -> float | None:
    """Seconds of video the ingest recorded for `key`: frames counted by ffprobe / FPS."""
    if ingest.recordings is None:
        return None
    path = ingest.recordings / f"{key}.flv"
    for _ in range(20):  # nginx closes the file shortly after the publisher leaves
        if path.exists() and path.stat().st_size > 0:
            break
        time.sleep(0.1)
    else:
        return None
    try:
        out = subprocess.run(
            ["ffprobe", "-v", "error", "-select_streams", "v:0", "-count_packets",
             "-show_entries", "stream=nb_read_packets", "-of", "csv=p=0", str(path)],
            capture_output=True, text=True, timeout=60,
        )
        frames = int(out.stdout.strip().splitlines()[0].strip(","))
    except (subprocess.SubprocessError, ValueError, IndexError):
        return None
    finally:
        path.unlink(missing_ok=True)  # keep the temp dir small over many runs
    return frames / FPS


# --------------------------------------------------------------------------------------------
# The contenders' command lines


def fieldcast_argv(fieldcast: Path, cfg: Config, url: str, secs: float) -> list[str]:
    return [
        str(fieldcast), "live", "--ingest", url, "--source", "test",
        "--profile", cfg.profile, "--video-kbps", str(cfg.video_kbps),
        "--encoder", "x264", "--duration", str(secs), "--quiet",
        # The peers send at a fixed rate; so does fieldcast here (the link is loopback).
        "--no-abr",
    ]


def gst_argv(cfg: Config, url: str) -> list[str]:
    """fieldcast's media graph for the test source (core/src/media/), with GStreamer's RTMP
    output (flvmux, rtmp2sink) where fieldcast publishes RTMP itself."""
    w, h, fps = cfg.width, cfg.height, FPS
    description = (
        f"videotestsrc is-live=true pattern=smpte horizontal-speed=4 "
        f"! video/x-raw,format=I420,width={w},height={h},framerate={fps}/1 "
        f"! videoconvert ! videoscale add-borders=true "
        f"! video/x-raw,format=I420,width={w},height={h},pixel-aspect-ratio=1/1,framerate={fps}/1 "
        f"! queue "
        f"! x264enc tune=zerolatency speed-preset=veryfast key-int-max={fps * KEYFRAME_SECS} "
        f"bframes=0 bitrate={cfg.video_kbps} "
        f"! h264parse config-interval=-1 ! video/x-h264,stream-format=avc,alignment=au "
        f"! tee name=vt ! queue ! mux.video "
        f"audiotestsrc is-live=true volume=0.3 ! audioconvert ! audioresample "
        f"! audio/x-raw,rate={AUDIO_RATE},channels=1 ! queue "
        f"! avenc_aac bitrate={AUDIO_KBPS * 1000} ! aacparse "
        f"! tee name=at ! queue ! mux.audio "
        f"flvmux name=mux streamable=true ! rtmp2sink location={url} timeout=10"
    )
    return ["gst-launch-1.0", "-e", *description.split()]


def ffmpeg_argv(cfg: Config, url: str, secs: float, smpte: bool = False) -> list[str]:
    """ffmpeg doing the job from lavfi's testsrc2, or (smpte) scrolling smptebars."""
    kbps = cfg.video_kbps
    size = f"size={cfg.width}x{cfg.height}:rate={FPS}"
    # videotestsrc horizontal-speed=4 moves the picture 4 px a frame; scroll's h is in widths.
    video = f"smptebars={size},scroll=h={4 / cfg.width:.6f}" if smpte else f"testsrc2={size}"
    return [
        "ffmpeg", "-hide_banner", "-nostdin", "-nostats", "-loglevel", "warning",
        "-re", "-f", "lavfi", "-i", video,
        "-re", "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate={AUDIO_RATE}",
        "-t", str(secs), "-map", "0:v", "-map", "1:a",
        "-c:v", "libx264", "-preset", "veryfast", "-tune", "zerolatency",
        "-g", str(FPS * KEYFRAME_SECS), "-bf", "0",
        "-b:v", f"{kbps}k", "-maxrate", f"{kbps}k", "-bufsize", f"{kbps * VBV_MS // 1000}k",
        "-pix_fmt", "yuv420p",
        "-c:a", "aac", "-b:a", f"{AUDIO_KBPS}k", "-ac", "1", "-ar", str(AUDIO_RATE),
        "-f", "flv", "-flvflags", "no_duration_filesize", url,
    ]


# --------------------------------------------------------------------------------------------
# Runs


def run_contender(
    contender: str, cfg: Config, rnd: int, args, ingest: Ingest, children: Children,
    run_id: str, logs: Path,
) -> Measurement:
    """One measured run of one contender, publishing under its own stream key."""
    key = f"{run_id}-r{rnd}-{cfg.profile}-{contender}"
    url = ingest.url_for(key)
    interrupt_after = None
    if contender == "fieldcast":
        argv = fieldcast_argv(args.fieldcast, cfg, url, args.secs)
    elif contender == "gst-launch":
        argv = gst_argv(cfg, url)
        interrupt_after = args.secs  # -e: SIGINT sends EOS, so the stream ends cleanly
    else:
        argv = ffmpeg_argv(cfg, url, args.secs, smpte=contender == "ffmpeg-smpte")
    log = logs / f"{key}.log"
    with open(log, "w") as out:
        out.write(" ".join(argv) + "\n\n")
        out.flush()
        proc = children.spawn(argv, stdout=out, stderr=subprocess.STDOUT)
        code, rusage, wall, timed_out = wait4_measured(
            proc, interrupt_after, args.secs + RUN_GRACE_SECS
        )
    children.forget(proc)  # on an exception it stays registered and is stopped by stop_all
    delivered = delivered_seconds(ingest, key)
    return Measurement(
        config=cfg.label,
        contender=contender,
        round=rnd,
        key=key,
        exit_code=code,
        wall_s=round(wall, 3),
        cpu_user_s=rusage.ru_utime,
        cpu_sys_s=rusage.ru_stime,
        peak_rss_kib=rusage.ru_maxrss,
        media_s=delivered if delivered is not None else float(args.secs),
        media_source="recording" if delivered is not None else "--secs",
        timed_out=timed_out,
        log=str(log),
    )


def run_latency(args, ingest: Ingest, children: Children, run_id: str, logs: Path) -> dict:
    """A `--latency-stamp` run at 480p, played back by `fieldcast probe` once it is live."""
    cfg = CONFIGS[0]
    key = f"{run_id}-latency"
    url = ingest.url_for(key)
    argv = fieldcast_argv(args.fieldcast, cfg, url, args.secs) + ["--latency-stamp"]
    log = logs / f"{key}.log"
    with open(log, "w") as out:
        publisher = children.spawn(argv, stdout=out, stderr=subprocess.STDOUT)
    try:
        waited = wait_until_live(log, publisher, limit=10)
        probe_secs = max(2, int(args.secs - waited - 3))
        probe = children.spawn(
            [str(args.fieldcast), "probe", "--url", url, "--duration", str(probe_secs), "--json"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        try:
            stdout, stderr = probe.communicate(timeout=probe_secs + RUN_GRACE_SECS)
        except subprocess.TimeoutExpired:
            stop_process(probe)
            stdout, stderr = probe.communicate()
            stderr += "\n(the probe did not finish in time)"
        children.forget(probe)
        report = parse_probe(stdout)
        try:
            publisher.wait(timeout=args.secs + RUN_GRACE_SECS)
        except subprocess.TimeoutExpired:
            report["publisher"] = "did not stop after --duration; stopped by the bench"
    finally:
        stop_process(publisher)
        children.forget(publisher)
    delivered_seconds(ingest, key)  # only to remove the recording
    report.update(
        config=cfg.label, probe_secs=probe_secs, waited_for_live_s=round(waited, 2),
        probe_exit=probe.returncode, log=str(log),
    )
    if "p50_ms" not in report:
        report["error"] = (stderr or "").strip()[-500:]
    return report


def wait_until_live(log: Path, proc: subprocess.Popen, limit: float) -> float:
    """Seconds until the publisher logs `state: Live` (or `limit`, or it exits)."""
    start = time.monotonic()
    while time.monotonic() - start < limit and proc.poll() is None:
        if "state: Live" in log.read_text(errors="replace"):
            break
        time.sleep(0.1)
    time.sleep(0.5)  # let nginx see the first keyframe before the player joins
    return time.monotonic() - start


def parse_probe(stdout: str) -> dict:
    for line in reversed(stdout.splitlines()):
        if line.startswith("{"):
            try:
                return json.loads(line)
            except json.JSONDecodeError:
                break
    return {}


# --------------------------------------------------------------------------------------------
# Summary and report


def summarize(runs: list[Measurement]) -> dict:
    """Per configuration and contender: medians over the successful rounds."""
    summary: dict = {}
    for cfg in CONFIGS:
        for contender in CONTENDERS:
            mine = [m for m in runs if m.config == cfg.label and m.contender == contender and m.ok]
            if not mine:
                continue
            summary.setdefault(cfg.label, {})[contender] = {
                "rounds": len(mine),
                "media_s": statistics.median(m.media_s for m in mine),
                "cpu_s": statistics.median(m.cpu_s for m in mine),
                "cpu_per_media_s": statistics.median(m.cpu_per_media_s for m in mine),
                "peak_rss_mib": statistics.median(m.peak_rss_kib for m in mine) / 1024,
            }
    return summary


def ratios(summary: dict) -> list[dict]:
    """fieldcast / peer for CPU and RSS, with the targets."""
    checks = (
        ("CPU", "cpu_per_media_s", "gst-launch", TARGET_CPU_VS_GST),
        ("CPU", "cpu_per_media_s", "ffmpeg", TARGET_CPU_VS_FFMPEG),
        ("CPU", "cpu_per_media_s", "ffmpeg-smpte", TARGET_CPU_VS_FFMPEG),
        ("RSS", "peak_rss_mib", "gst-launch", TARGET_RSS_VS_GST),
        ("RSS", "peak_rss_mib", "ffmpeg", None),
        ("RSS", "peak_rss_mib", "ffmpeg-smpte", None),
    )
    out = []
    for label, by in summary.items():
        if "fieldcast" not in by:
            continue
        for metric, field, peer, target in checks:
            if peer not in by:
                continue
            ratio = by["fieldcast"][field] / by[peer][field]
            out.append({
                "config": label, "metric": metric, "versus": peer, "ratio": round(ratio, 3),
                "target": target, "met": None if target is None else ratio <= target,
            })
    return out


def print_report(runs: list[Measurement], summary: dict, checks: list[dict], latency: dict | None,
                 secs: float, rounds: int) -> None:
    print()
    print(f"FieldCast live bench: {secs:g} s per run, {rounds} round(s), medians over rounds")
    print()
    print(f"{'configuration':<14}{'contender':<14}{'media s':>8}{'CPU s':>8}"
          f"{'CPU s/media s':>15}{'peak RSS MiB':>14}")
    for label, by in summary.items():
        for contender in CONTENDERS:
            if contender not in by:
                continue
            s = by[contender]
            mark = "*" if contender.startswith("ffmpeg") else ""
            print(f"{label:<14}{contender + mark:<14}{s['media_s']:>8.1f}{s['cpu_s']:>8.2f}"
                  f"{s['cpu_per_media_s']:>15.3f}{s['peak_rss_mib']:>14.1f}")
    print()
    print(f"{'configuration':<14}{'fieldcast / peer':<26}{'ratio':>8}{'target':>10}  result")
    for c in checks:
        target = f"<= {c['target']:.2f}x" if c["target"] else "-"
        result = "-" if c["met"] is None else ("met" if c["met"] else "NOT MET")
        name = f"{c['metric']} vs {c['versus']}"
        print(f"{c['config']:<14}{name:<26}{c['ratio']:>7.2f}x{target:>10}  {result}")
    print()
    if latency and "p50_ms" in latency:
        met = "met" if latency["p50_ms"] <= TARGET_LATENCY_P50_MS else "NOT MET"
        print(f"latency ({latency['config']}, fieldcast probe over {latency['probe_secs']} s, "
              f"{latency.get('samples')} frames, {latency.get('unreadable')} unreadable): "
              f"p50 {latency['p50_ms']} ms (target <= {TARGET_LATENCY_P50_MS} ms: {met}), "
              f"p95 {latency['p95_ms']} ms, p99 {latency['p99_ms']} ms, max {latency['max_ms']} ms")
    elif latency is not None:
        print(f"latency: no result ({latency.get('error') or 'probe printed no report'})")
    else:
        print("latency: not measured (--no-latency)")
    print()
    print(textwrap.fill(f"* {FFMPEG_NOTE}", width=96, subsequent_indent="  "))
    print(f"  {MEDIA_NOTE}")
    from_secs = sorted({m.contender for m in runs if m.media_source == "--secs"})
    if from_secs:
        print(f"  media s of {', '.join(from_secs)}: --secs (the recording could not be read)")
    failed = [m for m in runs if not m.ok]
    for m in failed:
        why = "timed out" if m.timed_out else f"exit {m.exit_code}, media {m.media_s:.1f} s"
        print(f"FAILED: {m.contender} {m.config} round {m.round} ({why}); log: {m.log}")


# --------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fieldcast", type=Path, default=REPO / "target/release/fieldcast",
                        help="the fieldcast binary (default: target/release/fieldcast)")
    parser.add_argument("--secs", type=float, default=30, help="seconds per run (default 30)")
    parser.add_argument("--rounds", type=int, default=1, help="rounds of all runs (default 1)")
    parser.add_argument("--quick", action="store_true", help="a 10 s smoke run, one round")
    parser.add_argument("--no-latency", action="store_true", help="skip the latency run")
    parser.add_argument("--no-ffmpeg-smpte", action="store_true",
                        help="skip the like-for-like ffmpeg run (scrolling smptebars)")
    parser.add_argument("--out", type=Path, default=REPO / "target/bench/live.json",
                        help="where to write the JSON result (default target/bench/live.json)")
    args = parser.parse_args(argv)
    if args.quick:
        args.secs, args.rounds = 10, 1
    if args.secs < 8:
        parser.error("--secs must be at least 8 (the latency probe needs a few live seconds)")
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    args.fieldcast = args.fieldcast.resolve()
    args.contenders = [c for c in CONTENDERS if not (args.no_ffmpeg_smpte and c == "ffmpeg-smpte")]
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    problems = check_tools(args.fieldcast)
    if problems:
        print("cannot run the bench:", *problems, sep="\n  ", file=sys.stderr)
        print("(on Debian, `make deps` installs the tools and `make build` builds fieldcast)",
              file=sys.stderr)
        return 2
    # SIGTERM stops the bench the same way Ctrl-C does: through the finally below.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    run_id = secrets.token_hex(3)
    logs = args.out.parent / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    env = environment(args.fieldcast)
    # The first GStreamer start after an install rebuilds the plugin registry; not part of a run.
    subprocess.run(["gst-inspect-1.0", "x264enc"], capture_output=True, timeout=120)
    children = Children()
    runs: list[Measurement] = []
    latency = None
    ingest = None
    try:
        ingest = start_ingest(args.fieldcast, f"bench-{run_id}", children)
        print(f"ingest: {ingest.url} (recordings: {ingest.recordings or 'not found'})")
        for rnd in range(1, args.rounds + 1):
            for cfg in CONFIGS:
                for contender in args.contenders:
                    print(f"round {rnd}/{args.rounds}: {cfg.label} {contender} ...", end=" ",
                          flush=True)
                    m = run_contender(contender, cfg, rnd, args, ingest, children, run_id, logs)
                    runs.append(m)
                    print(f"{m.cpu_per_media_s:.3f} CPU s/media s, {m.peak_rss_kib / 1024:.0f} MiB"
                          + ("" if m.ok else f"  (FAILED, see {m.log})"))
                    time.sleep(1)
        if not args.no_latency:
            print(f"latency: {CONFIGS[0].label} with --latency-stamp + fieldcast probe ...",
                  flush=True)
            try:
                latency = run_latency(args, ingest, children, run_id, logs)
            except (OSError, subprocess.SubprocessError) as e:
                latency = {"error": f"the latency run failed: {e}"}
    except KeyboardInterrupt:
        print("\ninterrupted: stopping the children", file=sys.stderr)
        return 130
    finally:
        # Publishers first, so they end their streams while the ingest is still there.
        if ingest is not None:
            children.forget(ingest.proc)
        children.stop_all()
        if ingest is not None:
            stop_ingest(ingest, children)
    summary = summarize(runs)
    checks = ratios(summary)
    print_report(runs, summary, checks, latency, args.secs, args.rounds)
    write_json(args, env, runs, summary, checks, latency)
    return 0 if runs and all(m.ok for m in runs) else 1


def write_json(args, env, runs, summary, checks, latency) -> None:
    args.out.parent.mkdir(parents=True, exist_ok=True)
    result = {
        "bench": "live",
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "secs": args.secs,
        "rounds": args.rounds,
        "environment": env,
        "job": {
            "configs": [dataclasses.asdict(c) for c in CONFIGS],
            "fps": FPS, "keyframe_secs": KEYFRAME_SECS, "audio": f"AAC {AUDIO_KBPS} kbit/s mono "
            f"{AUDIO_RATE} Hz", "x264": "veryfast, zerolatency, bframes 0",
        },
        "targets": {
            "cpu_vs_gst_launch": TARGET_CPU_VS_GST, "cpu_vs_ffmpeg": TARGET_CPU_VS_FFMPEG,
            "rss_vs_gst_launch": TARGET_RSS_VS_GST, "latency_p50_ms": TARGET_LATENCY_P50_MS,
        },
        "runs": [dataclasses.asdict(m) | {"cpu_s": m.cpu_s, "cpu_per_media_s": m.cpu_per_media_s,
                                          "ok": m.ok} for m in runs],
        "summary": summary,
        "ratios": checks,
        "latency": latency,
        "notes": [FFMPEG_NOTE, MEDIA_NOTE],
    }
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"result: {args.out}")


if __name__ == "__main__":
    sys.exit(main())
