#!/usr/bin/env python3
"""FieldCast network bench: going live through bad networks, next to ffmpeg and gst-launch-1.0.

What it measures
    For each network-lab profile (good-4g, rural-3g, edge, flaky, collapse; see
    sandbox/netlab-profiles/), three contenders do the same job, one after another, each in a
    fresh lab whose timeline starts with it: a moving 480p30 test pattern, H.264 by x264
    (veryfast, zerolatency, no B-frames, a keyframe every 2 s) at 1000 kbit/s plus AAC 64 kbit/s,
    as FLV over RTMP to the lab's nginx-rtmp behind the shaped link.

    fieldcast   `fieldcast live --source test --latency-stamp --profile 480p --video-kbps 1000
                --encoder x264 --json-events --duration N` (it reconnects by itself)
    ffmpeg      ffmpeg -re from lavfi testsrc2 + sine, libx264 + aac, restarted by a shell loop
                whenever it exits (`while ...; do ffmpeg ...; sleep 1; done`), as a user would
                run it. testsrc2, not scrolled smptebars: here the bytes on the link are the job,
                and x264 at 1000 kbit/s makes about 1000 kbit/s of testsrc2 (as of videotestsrc's
                moving smpte) but only about 75 kbit/s of scrolled smptebars
    gst-launch  gst-launch-1.0 -e with fieldcast's media graph (videotestsrc, x264enc,
                avenc_aac, flvmux, rtmp2sink timeout=10), restarted by the same kind of loop

    The pipelines are bench/live_bench.py's, so both benches push the same job.

How
    `fieldcast netlab run PROFILE -- sh -c ...` builds the lab, starts nginx-rtmp in its ingest
    namespace and the contender in its publisher namespace. The lab prints every change of
    conditions (`netlab: t=  20.00s step 1: ... OUTAGE`) on stderr; the bench stamps each line
    with the wall clock when it arrives, which puts the lab's time 0, and every outage's end, on
    the wall clock. As soon as the lab is up, a viewer is started next to nginx, in the ingest
    namespace (`ip netns exec <ns> fieldcast probe --url rtmp://127.0.0.1:<nginx port>/live/KEY
    --follow --frames`): it plays straight from nginx, not through the shaped link, so what it
    sees is what the publisher's uplink delivered. It prints one JSON line per decoded frame
    (arrival wall time, pts, and for fieldcast's stamped test source the capture time).

    Per profile and contender, over the contender's run window of --secs seconds:
      media/wall   frames received / 30 / seconds of the window (1.00 = everything, live)
      link kbit/s  the mean rate the profile gave the link over the window (its rate steps,
                   outage time counting as 0)
      used %       what crossed the shaped link towards the ingest, as kbit/s, / link kbit/s:
                   the kernel's TX byte counter of the publisher's veth end (fcl-pub, `ip -n
                   <publisher ns> -s link`), read as soon as the lab is up, every second and at
                   the window's end; whole Ethernet frames as tbf counts them (headers,
                   retransmissions and packets the lab drops on arrival included)
      startup s    from the contender's launch to the first frame the viewer decoded
      stalls       gaps > 1 s between received frames, including a gap that runs to the end of
                   the window (a stream that never came back); count and total seconds
      true p50/p95 capture-to-player latency from fieldcast's capture stamps (fieldcast only)
      queue p50/p95  delay added above the best moment, from pts: per continuous run of frames
                   (a publish; a restart or a new play makes pts jump back), delay =
                   (arrival - pts) - the minimum of (arrival - pts) over that run. Computed the
                   same way for every contender, so this column compares them
      return s     after each link return (the end of an outage, as the lab applied it): the
                   time to the first frame received after it, mean and max ('-' when the
                   profile has no outage in the window; 'never' when no frame came)
      fresh s      after each link return: the time to the first frame whose queue delay is
                   under 1 s again (frames flowing, and live rather than an old backlog)
      restarts     fieldcast: reconnects (from --json-events); peers: loop restarts
      final rung   fieldcast's last reported output (height, video kbit/s) from --json-events

    The table is printed at the end and written with every run's details as JSON to
    bench/results/network-<date>.json. Logs (the lab's stderr with arrival times, the viewer's
    frames, fieldcast's events) go to target/bench/network-logs/<date>/.

Usage (root)
    python3 bench/network_bench.py [--profiles flaky,collapse] [--secs N]
        [--contenders fieldcast,ffmpeg,gst-launch] [--fieldcast target/release/fieldcast]

Exit status: 0 when every run produced a measurement (also when the network lab cannot run
here: not root, or no network namespaces; the bench then says so and measures nothing), 1 when
a run failed to produce one, 2 when a tool is missing, 130 on Ctrl-C.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import re
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
import live_bench  # noqa: E402  (the same job's pipelines)

FPS = live_bench.FPS
CONFIG = live_bench.CONFIGS[0]  # 480p, 854x480, 1000 kbit/s
assert (CONFIG.profile, CONFIG.video_kbps) == ("480p", 1000)

CONTENDERS = ("fieldcast", "ffmpeg", "gst-launch")
PROFILES_DIR = REPO / "sandbox" / "netlab-profiles"
#: Seconds per contender per profile: long enough for the profile's events. flaky's outages are
#: at 20-28 s and 65-73 s of the lab's time (90 s leaves 17 s after the second), collapse falls
#: at 20 s and recovers at 50 s.
DEFAULT_SECS = {"good-4g": 45, "rural-3g": 60, "edge": 60, "flaky": 90, "collapse": 80}
FALLBACK_SECS = 60

#: A gap between received frames longer than this is a stall.
STALL_S = 1.0
#: After a link return, the stream is live again at the first frame with less queue delay.
FRESH_MS = 1000
#: pts going back by more than this starts a new publish.
PTS_BACK_MS = 100
#: pts running ahead of real time by more than this is reported (queue delay understated).
PTS_AHEAD_NOTE_MS = 500
#: The most media time one frame stands for (10 fps).
MAX_FRAME_S = 0.1
#: Time the lab may take to come up (namespaces, nginx).
LAB_START_TIMEOUT = 30
#: Time fieldcast gets past its --duration to end by itself.
END_GRACE = 12
#: Time a process group gets after SIGINT before SIGKILL.
STOP_GRACE = 10
#: The viewer plays a little longer than the window; it is stopped at the window's end.
PROBE_EXTRA_S = 5
#: The veth end inside the lab's publisher namespace (sandbox/src/netlab/shaping.rs), whose
#: TX counter gives the bytes sent across the shaped link towards the ingest.
PUBLISHER_IF = "fcl-pub"
#: Seconds between readings of that counter during a run (the last one before a lab that ends
#: early removes its link stands for the window's end).
LINK_READ_EVERY_S = 1.0

LAB_LINE = re.compile(r"^netlab: t=\s*([0-9.]+)s step (\d+): (.*)$")
LAB_READY = re.compile(
    r"shaping by (\w+); publisher namespace (\S+); FIELDCAST_NETLAB_INGEST=(\S+)")
LOOP_MARK = "network-bench-loop: start"


# --------------------------------------------------------------------------------------------
# Process groups: every child runs in a session of its own (so a Ctrl-C on the terminal reaches
# only the bench) and is stopped through its own process group, never by name.


class Group:
    """A child process leading its own process group."""

    def __init__(self, name: str, argv: list[str], **kwargs) -> None:
        self.name = name
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, start_new_session=True, **kwargs
        )
        self.pgid = self.proc.pid

    def running(self) -> bool:
        return self.proc.poll() is None

    def members(self) -> list[int]:
        """PIDs still in the group (the leader included while it runs)."""
        pids = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if len(fields) > 2 and fields[2] == str(self.pgid) and fields[0] != "Z":
                pids.append(int(stat.parent.name))
        return pids

    def signal(self, sig: int) -> None:
        try:
            os.killpg(self.pgid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    def wait(self, timeout: float) -> bool:
        try:
            self.proc.wait(timeout=max(0.0, timeout))
            return True
        except subprocess.TimeoutExpired:
            return False

    def stop(self, grace: float = STOP_GRACE) -> None:
        """SIGINT to the group, SIGKILL to whatever is left of it after `grace` seconds."""
        if self.running() or self.members():
            self.signal(signal.SIGINT)
            deadline = time.monotonic() + grace
            while time.monotonic() < deadline and (self.running() or self.members()):
                time.sleep(0.05)
            self.signal(signal.SIGKILL)
        self.wait(5)


class Lab(Group):
    """`fieldcast netlab run PROFILE -- COMMAND` in its own process group.

    The lab ignores SIGINT while COMMAND runs and then tears itself down (namespaces, and every
    process left inside them); so stopping is SIGINT to the group, a bounded wait for the lab,
    then SIGKILL for COMMAND's processes, then for the lab, and its namespaces are removed here.
    """

    def stop(self, grace: float = STOP_GRACE) -> None:
        if self.running():
            self.signal(signal.SIGINT)
            if not self.wait(grace):
                for pid in self.members():
                    if pid != self.proc.pid:
                        _kill(pid)
                if not self.wait(5):
                    _kill(self.proc.pid)
                    self.wait(5)
        self.remove_namespaces()
        for pid in self.members():
            _kill(pid)

    def remove_namespaces(self) -> None:
        """Namespaces this lab made (`fcl-<its pid>-...`) that it could not remove itself."""
        try:
            listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True,
                                    timeout=10).stdout
        except (OSError, subprocess.SubprocessError):
            return
        for line in listed.splitlines():
            name = line.split()[0] if line.split() else ""
            if not name.startswith(f"fcl-{self.proc.pid}-"):
                continue
            pids = subprocess.run(["ip", "netns", "pids", name], capture_output=True, text=True,
                                  timeout=10).stdout.split()
            for pid in pids:
                _kill(int(pid))
            subprocess.run(["ip", "netns", "delete", name], capture_output=True, timeout=10)


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


class Children:
    """Every group the bench started; `stop_all` stops those still there, newest first."""

    def __init__(self) -> None:
        self.groups: list[Group] = []

    def add(self, group: Group) -> Group:
        self.groups.append(group)
        return group

    def stop(self, group: Group, grace: float = STOP_GRACE) -> None:
        group.stop(grace)
        if group in self.groups:
            self.groups.remove(group)

    def stop_all(self) -> None:
        for group in reversed(list(self.groups)):
            try:
                self.stop(group, grace=5)
            except Exception as e:  # keep stopping the others
                print(f"could not stop {group.name} (pgid {group.pgid}): {e}", file=sys.stderr)


# --------------------------------------------------------------------------------------------
# Profiles


def load_profile(name: str) -> dict:
    """A shipped profile by name, or a JSON file."""
    path = Path(name)
    if not path.is_file():
        path = PROFILES_DIR / f"{name}.json"
    return json.loads(path.read_text())


def planned_changes(profile: dict, until_s: float) -> list[tuple[float, dict]]:
    """(lab time, conditions) for every change up to `until_s`, repeats included."""
    steps = profile["steps"]
    period = profile.get("repeat_every_s")
    cond = {"rate_kbit": None, "delay_ms": 0, "loss_pct": 0.0, "outage": False}
    out = []
    rep = 0
    while True:
        base = rep * period if period else 0.0
        for step in steps:
            at = base + step["at_s"]
            if at > until_s:
                return out
            cond = {**cond, **{k: v for k, v in step.items() if k != "at_s"}}
            out.append((at, dict(cond)))
        if not period:
            return out
        rep += 1


def planned_outage_ends(profile: dict, until_s: float) -> list[float]:
    ends, down = [], False
    for at, cond in planned_changes(profile, until_s):
        if down and not cond["outage"]:
            ends.append(at)
        down = cond["outage"]
    return ends


# --------------------------------------------------------------------------------------------
# Tools


def check_tools(fieldcast: Path, contenders: list[str]) -> list[str]:
    problems = []
    if not (fieldcast.is_file() and os.access(fieldcast, os.X_OK)):
        problems.append(
            f"the fieldcast binary {fieldcast} is missing: build it with `make build` "
            "(or `cargo build --release -p fieldcast-cli`)"
        )
    else:
        probe_help = _help(fieldcast, "probe")
        if "--follow" not in probe_help or "--frames" not in probe_help:
            problems.append(
                f"{fieldcast} has no `probe --follow --frames` (the viewer this bench needs): "
                "rebuild it from a tree that has them (`cargo build --release -p fieldcast-cli`)"
            )
    needs = {"ip": "iproute2", "ss": "iproute2", "sh": "dash"}
    if "ffmpeg" in contenders:
        needs["ffmpeg"] = "ffmpeg"
    if "gst-launch" in contenders:
        needs["gst-launch-1.0"] = "gstreamer1.0-tools"
        needs["gst-inspect-1.0"] = "gstreamer1.0-tools"
    for tool, package in needs.items():
        if shutil.which(tool) is None:
            problems.append(f"{tool} is missing: apt-get install {package}")
    if "gst-launch" in contenders and shutil.which("gst-inspect-1.0"):
        elements = {
            "videotestsrc": "gstreamer1.0-plugins-base",
            "x264enc": "gstreamer1.0-plugins-ugly",
            "avenc_aac": "gstreamer1.0-libav",
            "h264parse": "gstreamer1.0-plugins-bad",
            "flvmux": "gstreamer1.0-plugins-good",
            "rtmp2sink": "gstreamer1.0-plugins-bad",
        }
        for element, package in elements.items():
            found = subprocess.run(["gst-inspect-1.0", "--exists", element],
                                   capture_output=True, timeout=120)
            if found.returncode != 0:
                problems.append(
                    f"GStreamer element {element} is missing: apt-get install {package}")
    for path, package in (
        ("/usr/sbin/nginx", "nginx"),
        ("/usr/lib/nginx/modules/ngx_rtmp_module.so", "libnginx-mod-rtmp"),
    ):
        if not Path(path).exists():
            problems.append(f"{path} is missing (the lab's ingest): apt-get install {package}")
    return problems


def _help(fieldcast: Path, command: str) -> str:
    try:
        out = subprocess.run([str(fieldcast), command, "--help"], capture_output=True, text=True,
                             timeout=30)
        return out.stdout + out.stderr
    except (OSError, subprocess.SubprocessError):
        return ""


def lab_unavailable(fieldcast: Path) -> str | None:
    """Why the network lab cannot run here, or None when a trial lab works."""
    if not Path("/proc/self/ns/net").exists():
        return "this kernel has no network namespaces"
    try:
        trial = subprocess.run([str(fieldcast), "netlab", "run", "good-4g", "--", "true"],
                               capture_output=True, text=True, timeout=60,
                               stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return None  # not a clear "unavailable": let the real runs report what happens
    if trial.returncode == 0:
        return None
    err = trial.stderr.strip()
    if any(s in err for s in ("cannot run here", "ip netns add", "Operation not permitted",
                              "Permission denied")):
        return err.splitlines()[-1] if err else "a trial lab could not be built"
    return None


# --------------------------------------------------------------------------------------------
# The contenders' commands (run by `sh -c` inside the lab's publisher namespace)


def contender_script(contender: str, fieldcast: Path, key: str, secs: float,
                     json_events: bool) -> str:
    url = '"$FIELDCAST_NETLAB_INGEST/' + key + '"'
    if contender == "fieldcast":
        argv = [str(fieldcast), "live", "--ingest", "@URL@", "--source", "test",
                "--latency-stamp", "--profile", CONFIG.profile,
                "--video-kbps", str(CONFIG.video_kbps), "--encoder", "x264",
                "--duration", f"{secs:g}"]
        argv.append("--json-events" if json_events else "--quiet")
        return "exec " + shlex.join(argv).replace("@URL@", url)
    if contender == "ffmpeg":
        # testsrc2: about 1000 kbit/s like the others (scrolled smptebars: about 75 kbit/s).
        argv = live_bench.ffmpeg_argv(CONFIG, "@URL@", secs, smpte=False)
    else:
        argv = live_bench.gst_argv(CONFIG, "@URL@")
    command = shlex.join(argv).replace("@URL@", url)
    # The loop a user would write, bounded by the run's deadline (the bench also stops it then).
    return (
        f"end=$(( $(date +%s) + {math.ceil(secs)} )); "
        f'while [ "$(date +%s)" -lt "$end" ]; do '
        f'echo "{LOOP_MARK} $(date +%s.%N)" >&2; {command}; sleep 1; done'
    )


# --------------------------------------------------------------------------------------------
# One run


@dataclasses.dataclass
class LabLog:
    """The lab's stderr, each line with its arrival time (epoch seconds)."""

    lines: list[tuple[float, str]] = dataclasses.field(default_factory=list)
    ready: threading.Event = dataclasses.field(default_factory=threading.Event)
    ready_at: float | None = None
    shaping: str | None = None
    publisher_ns: str | None = None
    url: str | None = None


def read_lab(stream, log: LabLog, out) -> None:
    for line in stream:
        now = time.time()
        line = line.rstrip("\n")
        log.lines.append((now, line))
        out.write(f"{now:.3f} {line}\n")
        out.flush()
        m = LAB_READY.search(line)
        if m and not log.ready.is_set():
            log.ready_at = now
            log.shaping, log.publisher_ns, log.url = m.groups()
            log.ready.set()


def nginx_port(ingest_ns: str, timeout: float = 10) -> int | None:
    """The port nginx listens on inside the ingest namespace's loopback."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = subprocess.run(["ip", "netns", "exec", ingest_ns, "ss", "-ltnpH"],
                             capture_output=True, text=True, timeout=10).stdout
        for line in out.splitlines():
            m = re.search(r"127\.0\.0\.1:(\d+)\s.*\"nginx\"", line)
            if m:
                return int(m.group(1))
        time.sleep(0.1)
    return None


def link_tx_bytes(publisher_ns: str) -> int:
    """The kernel's TX byte counter of the publisher's veth end (`ip -s link`)."""
    out = subprocess.run(["ip", "-n", publisher_ns, "-s", "-j", "link", "show", "dev",
                          PUBLISHER_IF], capture_output=True, text=True, timeout=10)
    if out.returncode != 0:
        raise OSError(out.stderr.strip() or f"ip exited with {out.returncode}")
    return int(json.loads(out.stdout)[0]["stats64"]["tx"]["bytes"])


class LinkCounter:
    """Readings of `link_tx_bytes` over a run: the first and the latest that worked, and why
    the latest that failed did (once the lab is gone, its link is too)."""

    def __init__(self, publisher_ns: str) -> None:
        self.publisher_ns = publisher_ns
        self.first: tuple[float, int] | None = None
        self.last: tuple[float, int] | None = None
        self.error: str | None = None

    def read(self) -> None:
        """One reading, stamped with the middle of the `ip` call (epoch seconds)."""
        before = time.time()
        try:
            count = link_tx_bytes(self.publisher_ns)
        except (OSError, subprocess.SubprocessError, ValueError, LookupError) as e:
            self.error = f"`ip -n {self.publisher_ns} -s -j link show dev {PUBLISHER_IF}`: {e}"
            return
        reading = ((before + time.time()) / 2, count)
        self.first = self.first or reading
        self.last = reading

    def due(self) -> bool:
        """Whether LINK_READ_EVERY_S has passed since the latest reading that worked."""
        return self.last is None or time.time() - self.last[0] >= LINK_READ_EVERY_S


def run_one(profile_name: str, contender: str, secs: float, args, children: Children,
            logs: Path, run_id: str) -> dict:
    key = f"nb-{run_id}-{profile_name}-{contender}".replace(".", "_")
    stem = logs / f"{profile_name}-{contender}"
    script = contender_script(contender, args.fieldcast, key, secs, args.json_events)
    argv = [str(args.fieldcast), "netlab", "run", args.profile_args[profile_name], "--",
            "sh", "-c", script]
    result: dict = {"profile": profile_name, "contender": contender, "secs": secs, "key": key,
                    "command": script, "logs": str(stem) + ".*",
                    "loadavg_before": round(os.getloadavg()[0], 2)}
    lab_log = LabLog()
    stdout_path = Path(f"{stem}.stdout")
    frames_path = Path(f"{stem}.frames.jsonl")
    with open(stdout_path, "w") as stdout, open(f"{stem}.lab.log", "w") as lab_out, \
            open(frames_path, "w") as frames_out, open(f"{stem}.probe.err", "w") as probe_err:
        launched = time.time()
        lab = children.add(Lab(f"lab {profile_name}/{contender}", argv, stdout=stdout,
                               stderr=subprocess.PIPE, text=True, errors="replace"))
        reader = threading.Thread(target=read_lab, args=(lab.proc.stderr, lab_log, lab_out),
                                  daemon=True)
        reader.start()
        probe = None
        try:
            while not lab_log.ready.wait(0.1):
                if not lab.running() or time.time() - launched > LAB_START_TIMEOUT:
                    result["error"] = (
                        "the lab did not start" if lab.running() else
                        f"the lab exited with {lab.proc.returncode} before it was up")
                    return result
            t0 = lab_log.ready_at  # COMMAND is spawned right after this line is printed
            link = LinkCounter(lab_log.publisher_ns)
            link.read()
            ingest_ns = re.sub(r"-pub$", "-ing", lab_log.publisher_ns)
            port = nginx_port(ingest_ns)
            if port is None:
                result["error"] = f"nginx not found listening in {ingest_ns}"
                return result
            probe_url = f"rtmp://127.0.0.1:{port}/live/{key}"
            probe = children.add(Group(
                f"probe {profile_name}/{contender}",
                ["ip", "netns", "exec", ingest_ns, str(args.fieldcast), "probe", "--url",
                 probe_url, "--duration", f"{math.ceil(secs + PROBE_EXTRA_S)}", "--follow",
                 "--frames"],
                stdout=frames_out, stderr=probe_err))
            deadline = t0 + secs
            while time.time() < deadline and lab.running():
                time.sleep(0.1)
                if link.due():
                    link.read()
            ended_early = lab.running() is False and time.time() < deadline
            link.read()  # the window's end (fails when the lab, and its link, are gone)
            if contender == "fieldcast" and lab.running():
                lab.wait(deadline + END_GRACE - time.time())  # --duration ends it
            result["contender_ended_by_itself"] = not lab.running()
            children.stop(probe, grace=3)
            children.stop(lab)
            reader.join(timeout=5)
            result.update(
                t0=t0, window_end=deadline, ended_early=ended_early,
                lab_exit=lab.proc.returncode, probe_url=probe_url, ingest_ns=ingest_ns,
                shaping=lab_log.shaping, publisher_ns=lab_log.publisher_ns,
                link_first=link.first, link_last=link.last, link_read_error=link.error,
            )
        finally:
            for group in (probe, lab):
                if group is not None and group in children.groups:
                    children.stop(group, grace=3)
    result["loadavg_after"] = round(os.getloadavg()[0], 2)
    result["lab_lines"] = [(round(t, 3), line) for t, line in lab_log.lines
                           if line.startswith("netlab:")]
    result.update(analyse(result, lab_log, frames_path, stdout_path, contender, secs,
                          args.profiles_json[profile_name]))
    return result


# --------------------------------------------------------------------------------------------
# Analysis


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    s = sorted(values)
    return s[max(0, math.ceil(q * len(s)) - 1)]


def read_jsonl(path: Path) -> list[dict]:
    out = []
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return out
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("{"):
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                pass
    return out


def publishes(frames: list[dict]) -> list[list[int]]:
    """Indexes of `frames` (in arrival order) split into continuous runs of pts: a run ends
    where pts goes back (the publisher restarted, or reconnected with new timestamps). A jump
    ahead stays in the run: frames the publisher dropped."""
    runs: list[list[int]] = []
    prev = None
    for i, f in enumerate(frames):
        if f.get("pts_ms") is None:
            continue
        if prev is None or f["pts_ms"] - frames[prev]["pts_ms"] < -PTS_BACK_MS:
            runs.append([])
        runs[-1].append(i)
        prev = i
    return runs


def queue_delays(frames: list[dict], runs: list[list[int]]) -> list[float | None]:
    """Per frame: (arrival - pts) minus the lowest (arrival - pts) of its run so far.

    The lowest so far rather than over the whole run: when a publisher's queues block, its live
    sources can stamp later frames ahead of real time (gst-launch does, by seconds), and such a
    minimum would count the earlier, live frames as delayed.
    """
    delays: list[float | None] = [None] * len(frames)
    for run in runs:
        best = None
        for i in run:
            off = frames[i]["wall_ms"] - frames[i]["pts_ms"]
            best = off if best is None else min(best, off)
            delays[i] = off - best
    return delays


def pts_ahead_ms(frames: list[dict], runs: list[list[int]], starts: list[float]) -> float:
    """How far a publisher's pts ran ahead of real time, at least (0 when they track capture).

    With capture stamps (fieldcast): how much more pts advanced than capture time over a run.
    Without (the peers): a frame cannot arrive before the process that made it started, so
    (arrival - pts) below the start time of the run's process (`starts`, epoch seconds) is pts
    ahead by at least that much.
    """
    ahead = 0.0
    for run in runs:
        if not run:
            continue
        first = frames[run[0]]
        if first.get("capture_ms") is not None:
            for i in run:
                f = frames[i]
                if f.get("capture_ms") is not None:
                    pts_step = f["pts_ms"] - first["pts_ms"]
                    ahead = max(ahead, pts_step - (f["capture_ms"] - first["capture_ms"]))
            continue
        before = [t for t in starts if t * 1000 <= first["wall_ms"]]
        if before:
            lowest = min(frames[i]["wall_ms"] - frames[i]["pts_ms"] for i in run)
            ahead = max(ahead, max(before) * 1000 - lowest)
    return ahead


def media_credit(frames: list[dict], runs: list[list[int]]) -> list[float]:
    """Per frame: the seconds of video it stands for, from pts (the step to the next frame of
    its run, at most MAX_FRAME_S: a lower frame rate still counts as live media, a picture
    frozen by dropped frames does not); 1/30 s for a frame without pts or last in its run."""
    credit = [1 / FPS] * len(frames)
    for run in runs:
        for a, b in zip(run, run[1:]):
            step = (frames[b]["pts_ms"] - frames[a]["pts_ms"]) / 1000
            credit[a] = min(max(step, 0.0), MAX_FRAME_S)
    return credit


def lab_times(lab_lines: list[tuple[float, str]]) -> tuple[float | None, list[dict]]:
    """The lab's time 0 on the wall clock and the changes it applied, from its stderr."""
    applied = []
    for arrived, line in lab_lines:
        m = LAB_LINE.match(line)
        if m:
            applied.append({"t": float(m.group(1)), "step": int(m.group(2)),
                            "conditions": m.group(3), "arrived": arrived,
                            "outage": "OUTAGE" in m.group(3)})
    if not applied:
        return None, []
    start = min(a["arrived"] - a["t"] for a in applied)
    return start, applied


def mean_capacity_kbit(profile: dict, lab_start: float, lo: float, hi: float) -> float | None:
    """The mean rate the profile gives the link from epoch seconds `lo` to `hi` (`lo` < `hi`),
    outage time counting as 0; None when part of that time has no rate limit."""
    a, b = lo - lab_start, hi - lab_start
    changes = planned_changes(profile, b)
    kbit_s = 0.0
    for i, (at, cond) in enumerate(changes):
        until = changes[i + 1][0] if i + 1 < len(changes) else b
        span = min(until, b) - max(at, a)
        if span <= 0 or cond["outage"]:
            continue
        if cond["rate_kbit"] is None:
            return None
        kbit_s += cond["rate_kbit"] * span
    return kbit_s / (b - a)


def link_use(result: dict, profile: dict, lab_start: float | None) -> dict:
    """The link's mean capacity over the run and the share of it the publisher's veth end sent.

    The span runs from the first reading of its TX counter (when the lab was up) to the last,
    or to the window's end when the lab ended early (nothing crosses a link that is gone);
    without two readings, the capacity is over the window and used % is not known.
    """
    first, last = result.get("link_first"), result.get("link_last")
    read = first is not None and last is not None and last[0] > first[0]
    lo = first[0] if read else result["t0"]
    hi = last[0] if read and not result.get("ended_early") else result["window_end"]
    out = {"link_kbit": None, "link_used_kbit": None, "link_used_pct": None, "link_error": None,
           "link_span_s": [round(lo - result["t0"], 2), round(hi - result["t0"], 2)]}
    capacity = None if lab_start is None else mean_capacity_kbit(profile, lab_start, lo, hi)
    if capacity is not None:
        out["link_kbit"] = round(capacity, 1)
    if not read:
        out["link_error"] = (result.get("link_read_error")
                             or "fewer than two readings of the counter (the lab ended at once)")
        return out
    sent = last[1] - first[1]
    used = sent * 8 / 1000 / (hi - lo)
    out.update(link_bytes=sent, link_used_kbit=round(used, 1))
    if lab_start is None:
        out["link_error"] = "the lab printed no change of conditions: its time 0 is unknown"
    elif capacity is None:
        out["link_error"] = "the profile sets no rate limit for part of the run"
    elif capacity == 0:
        out["link_error"] = "the link was out for the whole run"
    else:
        out["link_used_pct"] = round(100 * used / capacity, 1)
    return out


def analyse(result: dict, lab_log: LabLog, frames_path: Path, stdout_path: Path,
            contender: str, secs: float, profile: dict) -> dict:
    if "t0" not in result:
        return {}
    t0, end = result["t0"], result["window_end"]
    lab_start, applied = lab_times(lab_log.lines)
    # Link returns, as the lab applied them (planned ones if a line is missing).
    returns_wall = []
    down = False
    for a in applied:
        if down and not a["outage"]:
            returns_wall.append(lab_start + a["t"])
        down = a["outage"]
    planned = planned_outage_ends(profile, (end - lab_start) if lab_start else secs)
    if lab_start is not None and len(returns_wall) < len(planned):
        returns_wall += [lab_start + p for p in planned[len(returns_wall):]]
    returns_wall = [r for r in returns_wall if t0 <= r < end]

    everything = [f for f in read_jsonl(frames_path) if "wall_ms" in f and "event" not in f]
    everything.sort(key=lambda f: f["wall_ms"])
    runs = publishes(everything)
    delays_all = queue_delays(everything, runs)
    credit_all = media_credit(everything, runs)
    keep = [i for i, f in enumerate(everything) if t0 * 1000 <= f["wall_ms"] <= end * 1000]
    inside = [(everything[i], delays_all[i]) for i in keep]
    credit = [credit_all[i] for i in keep]
    frames = [f for f, _ in inside]
    delays = [d for _, d in inside if d is not None]
    walls = [f["wall_ms"] / 1000 for f in frames]
    true_lat = [f["latency_ms"] for f in frames if f.get("latency_ms") is not None]

    stalls = []
    for a, b in zip(walls, walls[1:]):
        if b - a > STALL_S:
            stalls.append((a, b))
    if walls and end - walls[-1] > STALL_S:
        stalls.append((walls[-1], end))

    recover, fresh = [], []
    for r in returns_wall:
        after = [(w, d) for (f, d), w in zip(inside, walls) if w >= r]
        recover.append(round(after[0][0] - r, 3) if after else None)
        live = [w for w, d in after if d is not None and d < FRESH_MS]
        fresh.append(round(live[0] - r, 3) if live else None)

    out = {
        "lab_start": lab_start,
        "applied": [{k: v for k, v in a.items() if k != "arrived"} for a in applied],
        "frames": len(frames),
        "frames_total": len(everything),
        "sizes": sorted({f"{f.get('width')}x{f.get('height')}" for f in frames}),
        "media_per_wall": round(len(frames) / FPS / secs, 3),
        "pts_media_per_wall": round(sum(credit) / secs, 3),
        "publishes": sum(1 for run in runs if any(t0 * 1000 <= everything[i]["wall_ms"]
                                                   <= end * 1000 for i in run)),
        "startup_s": round(walls[0] - t0, 3) if walls else None,
        "stalls": len(stalls),
        "stall_s": round(sum(b - a for a, b in stalls), 2),
        "stall_list": [(round(a - t0, 2), round(b - t0, 2)) for a, b in stalls],
        "true_p50_ms": pct(true_lat, 0.50),
        "true_p95_ms": pct(true_lat, 0.95),
        "true_samples": len(true_lat),
        "queue_p50_ms": pct(delays, 0.50),
        "queue_p95_ms": pct(delays, 0.95),
        "queue_max_ms": max(delays) if delays else None,
        "pts_ahead_ms": pts_ahead_ms(everything, runs, loop_starts(lab_log)),
        "link_returns_s": [round(r - t0, 2) for r in returns_wall],
        "return_to_frame_s": recover,
        "return_to_fresh_s": fresh,
        "phases": phases(frames, credit, t0, end, lab_start, applied),
        **link_use(result, profile, lab_start),
    }
    if contender == "fieldcast":
        out.update(fieldcast_events(stdout_path))
    else:
        out["restarts"] = max(0, len(loop_starts(lab_log)) - 1)
    return out


def loop_starts(lab_log: LabLog) -> list[float]:
    """When the shell loop started its publisher, each time (epoch seconds)."""
    starts = []
    for arrived, line in lab_log.lines:
        if line.startswith(LOOP_MARK):
            try:
                starts.append(float(line.split()[-1]))
            except ValueError:
                starts.append(arrived)
    return starts


def phases(frames: list[dict], credit: list[float], t0: float, end: float,
           lab_start: float | None, applied: list[dict]) -> list[dict]:
    """Media/wall (both ways) between consecutive changes of conditions, inside the window."""
    if lab_start is None:
        return []
    bounds = [max(t0, lab_start + a["t"]) for a in applied] + [end]
    out = []
    for i, a in enumerate(applied):
        lo, hi = bounds[i], min(bounds[i + 1], end)
        if hi - lo < 1:
            continue
        got = [c for f, c in zip(frames, credit) if lo * 1000 <= f["wall_ms"] < hi * 1000]
        out.append({"from_s": round(lo - t0, 1), "to_s": round(hi - t0, 1),
                    "conditions": a["conditions"],
                    "media_per_wall": round(len(got) / FPS / (hi - lo), 3),
                    "pts_media_per_wall": round(sum(got) / (hi - lo), 3)})
    return out


def fieldcast_events(path: Path) -> dict:
    """Reconnects, adaptations, errors and the final rung from `--json-events`."""
    events = read_jsonl(path)
    states = [e for e in events if e.get("event") == "state"]
    names = [str(e.get("state") or e.get("to") or "") for e in states]
    reconnects = sum(1 for n in names if n.lower().startswith("reconnect"))
    stats = [e for e in events if e.get("event") == "stats"]
    last = stats[-1] if stats else None
    rung = None
    if last:
        if last.get("audio_only"):
            rung = "audio only"
        else:
            kbps = last.get("target_video_kbps") or last.get("video_kbps") or 0
            rung = f"{last.get('height')}p {round(kbps)}k"
    lowest = None
    for s in stats:
        h = 0 if s.get("audio_only") else (s.get("height") or 0)
        if lowest is None or h < lowest:
            lowest = h
    return {
        "events": len(events),
        "restarts": reconnects if events else None,
        "states": names,
        "adapts": sum(1 for e in events if e.get("event") == "adapt"),
        "errors": [e.get("message") or e for e in events if e.get("event") == "error"][:10],
        "final_rung": rung,
        "lowest_height": lowest,
        "ended_event": any(e.get("event") == "ended" for e in events),
        "max_send_queue_ms": max((s.get("send_queue_ms") or 0 for s in stats), default=None),
    }


# --------------------------------------------------------------------------------------------
# Report


def fmt(v, spec: str = ".2f", none: str = "-") -> str:
    if v is None:
        return none
    return format(v, spec)


def fmt_returns(values: list) -> str:
    if not values:
        return "-"
    got = [v for v in values if v is not None]
    never = len(values) - len(got)
    text = f"{statistics.mean(got):.1f}/{max(got):.1f}" if got else "never"
    if got and never:
        text += f" +{never}never"
    return text


def fmt_pair(a, b) -> str:
    if a is None:
        return "-"
    return f"{a:.0f}/{b:.0f}"


HEADER = (f"{'profile':<10}{'contender':<12}{'media/wall':>10}{'pts/wall':>9}"
          f"{'link kbit/s':>12}{'used %':>7}{'start s':>8}{'stalls n/s':>12}{'true ms':>12}"
          f"{'queue ms':>13}{'return s':>16}{'fresh s':>16}{'restarts':>9}  final rung")
HEADER2 = (f"{'':<10}{'':<12}{'':>10}{'':>9}{'mean':>12}{'':>7}{'':>8}{'':>12}{'p50/p95':>12}"
           f"{'p50/p95':>13}{'mean/max':>16}{'mean/max':>16}")


def table_rows(results: list[dict]) -> list[str]:
    rows = []
    for r in results:
        if "frames" not in r:
            rows.append(f"{r['profile']:<10}{r['contender']:<12}  FAILED: {r.get('error', '?')}")
            continue
        stalls = f"{r['stalls']}/{r['stall_s']:.1f}"
        rows.append(
            f"{r['profile']:<10}{r['contender']:<12}{r['media_per_wall']:>10.2f}"
            f"{r['pts_media_per_wall']:>9.2f}{fmt(r.get('link_kbit'), '.0f'):>12}"
            f"{fmt(r.get('link_used_pct'), '.0f'):>7}{fmt(r['startup_s'], '.1f'):>8}{stalls:>12}"
            f"{fmt_pair(r['true_p50_ms'], r['true_p95_ms']):>12}"
            f"{fmt_pair(r['queue_p50_ms'], r['queue_p95_ms']):>13}"
            f"{fmt_returns(r['return_to_frame_s']):>16}{fmt_returns(r['return_to_fresh_s']):>16}"
            f"{fmt(r.get('restarts'), 'd'):>9}  {r.get('final_rung') or '-'}"
        )
    return rows


NOTES = [
    "media/wall: frames the viewer decoded / 30 / seconds of the run (1.00 = all of it, live)",
    "pts/wall: the same from pts: each frame counts the step to the next one (at most 0.1 s), so "
    "a lower frame rate still counts as media and a picture frozen by dropped frames does not",
    "link kbit/s: the mean rate the profile gave the link over the run (its rate steps, outage "
    "time counting as 0)",
    f"used %: bytes the publisher's veth end ({PUBLISHER_IF}) sent over the run, from the kernel's "
    "TX counter (`ip -s link`, read when the lab is up, every second, at the run's end), as "
    "kbit/s, / link kbit/s. Counted as tbf counts them: whole Ethernet frames without FCS (IP "
    "and TCP headers, retransmissions, handshakes), publisher to ingest only; packets the lab "
    "drops on arrival (during outages; its random loss when shaping by Relay) are counted, "
    "netem's loss (shaping by Netem) is not",
    "start s: from the contender's launch to the first decoded frame",
    "stalls n/s: gaps > 1 s between received frames (and to the end of the run): count/total s",
    "true ms: capture-to-player latency from fieldcast's capture stamps; the peers carry no stamp",
    "queue ms: delay above the best moment so far of each continuous publish, from pts: "
    "(arrival - pts) minus its lowest value so far; the same computation for every contender",
    "return s / fresh s: from each link return (outage end) to the first frame / to the first "
    f"frame with queue delay < {FRESH_MS} ms; '-' = no outage in the run, never = none by its end",
    "restarts: fieldcast reconnects (--json-events); ffmpeg / gst-launch restarts by their loop",
    "final rung: fieldcast's last reported output (height, target video kbit/s)",
    "the viewer plays from nginx inside the ingest namespace: only the publisher's uplink is "
    "shaped",
]


def print_report(results: list[dict]) -> None:
    print()
    print("FieldCast network bench: 480p30 at 1000 kbit/s through the network lab")
    print()
    print(HEADER)
    print(HEADER2)
    for row in table_rows(results):
        print(row)
    print()
    for note in NOTES:
        print(f"  {note}")
    for r in results:
        if r.get("ended_early"):
            print(f"  NOTE: {r['profile']}/{r['contender']} ended before its run's end "
                  f"(exit {r.get('lab_exit')}); see {r.get('logs')}")
        elif r["contender"] == "fieldcast" and r.get("lab_exit") not in (None, 0):
            print(f"  NOTE: {r['profile']}/fieldcast exited with {r.get('lab_exit')}"
                  + ("" if r.get("contender_ended_by_itself") else
                     f" (stopped by the bench {END_GRACE} s after its --duration)")
                  + f"; see {r.get('logs')}")
    shapings = sorted({r["shaping"] for r in results if r.get("shaping")})
    if shapings:
        print(f"  the lab shaped by {', '.join(shapings)} here")
    for r in results:
        if r.get("link_error"):
            print(f"  NOTE: {r['profile']}/{r['contender']}: no used % ({r['link_error']})")
    for r in results:
        if (r.get("pts_ahead_ms") or 0) > PTS_AHEAD_NOTE_MS:
            print(f"  NOTE: {r['profile']}/{r['contender']}: its pts ran at least "
                  f"{r['pts_ahead_ms'] / 1000:.1f} s ahead of real time during the run, so its "
                  "queue ms (from pts) is unreliable there")
    busy = [r for r in results if max(r.get("loadavg_before", 0), r.get("loadavg_after", 0))
            > (os.cpu_count() or 1) + 0.5]
    if busy:
        print(f"  WARNING: the machine was busy during {len(busy)} run(s) (1-min load above "
              f"{os.cpu_count()} cores: " + ", ".join(
                  f"{r['profile']}/{r['contender']} {r.get('loadavg_after')}" for r in busy)
              + "); latency and delivery suffer from CPU starvation, not only the network")
    for r in results:
        ph = r.get("phases") or []
        if len(ph) > 1:
            parts = ", ".join(f"{p['from_s']:.0f}-{p['to_s']:.0f}s {p['pts_media_per_wall']:.2f}"
                              for p in ph)
            print(f"  {r['profile']}/{r['contender']} pts/wall by phase: {parts}")


# --------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profiles", default=",".join(DEFAULT_SECS),
                        help="comma-separated profile names or JSON files "
                             f"(default {','.join(DEFAULT_SECS)})")
    parser.add_argument("--secs", type=float, default=None,
                        help="seconds per contender per profile (default per profile: "
                             + ", ".join(f"{k} {v}" for k, v in DEFAULT_SECS.items()) + ")")
    parser.add_argument("--contenders", default=",".join(CONTENDERS),
                        help=f"comma-separated, from {','.join(CONTENDERS)} (default all)")
    parser.add_argument("--fieldcast", type=Path, default=REPO / "target/release/fieldcast",
                        help="the fieldcast binary (default target/release/fieldcast)")
    parser.add_argument("--out", type=Path, default=None,
                        help="the JSON result (default bench/results/network-<date>.json)")
    args = parser.parse_args(argv)
    args.contenders = [c.strip() for c in args.contenders.split(",") if c.strip()]
    unknown = [c for c in args.contenders if c not in CONTENDERS]
    if unknown or not args.contenders:
        parser.error(f"unknown contender(s) {unknown}; choose from {','.join(CONTENDERS)}")
    args.profiles = [p.strip() for p in args.profiles.split(",") if p.strip()]
    if not args.profiles:
        parser.error("no profile")
    if args.secs is not None and args.secs < 10:
        parser.error("--secs must be at least 10")
    args.profiles_json, args.profile_args = {}, {}
    for p in args.profiles:
        try:
            prof = load_profile(p)
        except (OSError, json.JSONDecodeError) as e:
            parser.error(f"profile {p}: {e}")
        args.profiles_json[p] = prof
        # A file is passed on as its absolute path; a shipped name as the name.
        args.profile_args[p] = str(Path(p).resolve()) if Path(p).is_file() else p
    args.fieldcast = args.fieldcast.resolve()
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    skip = ("network bench skipped, nothing measured: {}. Run it as root on a machine or VM "
            "with network namespaces (`sudo make bench-network`).")
    if os.geteuid() != 0:
        print(skip.format("the network lab needs root (network namespaces, tc, nftables)"))
        return 0
    problems = check_tools(args.fieldcast, args.contenders)
    if problems:
        print("cannot run the network bench:", *problems, sep="\n  ", file=sys.stderr)
        return 2
    why = lab_unavailable(args.fieldcast)
    if why:
        print(skip.format(why))
        return 0
    args.json_events = "--json-events" in _help(args.fieldcast, "live")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    stamp = time.strftime("%Y%m%d-%H%M%S")
    run_id = stamp[-6:]
    logs = REPO / "target" / "bench" / "network-logs" / stamp
    logs.mkdir(parents=True, exist_ok=True)
    out = args.out or REPO / "bench" / "results" / f"network-{stamp}.json"
    secs_of = {p: args.secs or DEFAULT_SECS.get(p, FALLBACK_SECS) for p in args.profiles}
    total = sum(secs_of.values()) * len(args.contenders)
    print(f"network bench: {', '.join(args.profiles)} x {', '.join(args.contenders)}; "
          f"about {total / 60 + len(secs_of) * len(args.contenders) * 0.15:.0f} min; "
          f"logs in {logs}")
    if not args.json_events:
        print("note: this fieldcast has no `live --json-events`: no reconnect/rung columns")
    # The first GStreamer start after an install rebuilds its registry; not part of a run.
    if "gst-launch" in args.contenders:
        subprocess.run(["gst-inspect-1.0", "x264enc"], capture_output=True, timeout=120)
    children = Children()
    results: list[dict] = []
    interrupted = False
    try:
        for p in args.profiles:
            for c in args.contenders:
                print(f"{p} / {c}: {secs_of[p]:g} s ...", end=" ", flush=True)
                try:
                    r = run_one(p, c, secs_of[p], args, children, logs, run_id)
                except (OSError, subprocess.SubprocessError) as e:
                    r = {"profile": p, "contender": c, "secs": secs_of[p],
                         "error": f"{type(e).__name__}: {e}"}
                results.append(r)
                if "frames" in r:
                    print(f"{r['media_per_wall']:.2f} media/wall, "
                          f"{fmt(r['link_used_pct'], '.0f')} % of the link, {r['stalls']} stalls, "
                          f"queue p95 {fmt(r['queue_p95_ms'], '.0f')} ms")
                else:
                    print(f"FAILED: {r.get('error')} (logs {logs})")
                time.sleep(1)
    except KeyboardInterrupt:
        interrupted = True
        print("\ninterrupted: stopping the children", file=sys.stderr)
    finally:
        children.stop_all()
    if results:
        print_report(results)
        write_json(out, args, secs_of, results, logs, interrupted)
    if interrupted:
        return 130
    return 0 if results and all("frames" in r for r in results) else 1


def write_json(out: Path, args, secs_of: dict, results: list[dict], logs: Path,
               interrupted: bool) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    env = live_bench.environment(args.fieldcast)
    doc = {
        "bench": "network",
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "interrupted": interrupted,
        "environment": env,
        "job": {"profile": CONFIG.profile, "width": CONFIG.width, "height": CONFIG.height,
                "fps": FPS, "video_kbps": CONFIG.video_kbps,
                "audio": f"AAC {live_bench.AUDIO_KBPS} kbit/s",
                "x264": "veryfast, zerolatency, bframes 0, keyframe every 2 s"},
        "secs": secs_of,
        "profiles": {p: args.profiles_json[p] for p in args.profiles},
        "stall_s": STALL_S,
        "fresh_ms": FRESH_MS,
        "table": [HEADER, HEADER2, *table_rows(results)],
        "notes": NOTES,
        "logs": str(logs),
        "runs": results,
    }
    out.write_text(json.dumps(doc, indent=2, default=str) + "\n")
    print(f"result: {out}")


if __name__ == "__main__":
    sys.exit(main())
