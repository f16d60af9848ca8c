#!/usr/bin/env python3
"""App-push benchmark: the same 720p30 NV12 frames pushed into a live session from Rust and from
Kotlin (the SDK layer over the generated bindings, on the JVM through JNA), in the same run.

What it measures
    Each side builds the same 30 frames (a moving bar over noise; see tests/src/bin/push_bench.rs
    and android/fieldcast/src/bench/kotlin/org/fieldcast/PushBench.kt), pushes them in real time at
    30 fps into a session that encodes them (720p, x264) and publishes to a local nginx-rtmp
    (`fieldcast ingest`): 10 s of warm-up (the encoder running, the JVM's JIT busy with the push
    path), then --frames measured frames (default 1800: one minute of a live that lasts far longer;
    the JVM's JIT work is mostly done once, so a ten-second window overstates it), then the session
    stops. Each prints its process CPU seconds over the measured frames and the stop (the JVM's own
    JIT and GC threads included) and the push call's p50 and p99. Sides alternate within each round; results are medians over rounds. The
    target is Kotlin at most 1.10x Rust's CPU.

Usage
    python3 bench/push_bench.py [--frames 1800] [--rounds 3]
    (needs: cargo build --release -p fieldcast-cli -p fieldcast-tests -p fieldcast-ffi, scripts/kotlin-sdk.sh
    compiled SDK in target/kotlin/sdk, and the Kotlin toolchain from scripts/install-kotlin.sh)
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from live_bench import Children, start_ingest  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
TARGET = 1.10


def kotlin_env() -> dict[str, str]:
    env_file = REPO / ".tools" / "kotlin.env"
    return dict(line.split("=", 1) for line in env_file.read_text().splitlines() if "=" in line)


def build_kotlin(env: dict[str, str]) -> str:
    """Compiles the Kotlin side against the SDK classes; returns the class path to run it."""
    out = REPO / "target" / "kotlin" / "bench"
    sdk = REPO / "target" / "kotlin" / "sdk"
    if not sdk.is_dir():
        raise SystemExit("target/kotlin/sdk is missing: run `bash scripts/kotlin-test.sh` (or make test) first")
    cp = f"{sdk}:{env['JNA_JAR']}:{env['COROUTINES_CP']}"
    sources = sorted(str(p) for p in (REPO / "android/fieldcast/src/bench/kotlin").rglob("*.kt"))
    subprocess.run([env["KOTLINC"], "-nowarn", "-d", str(out), "-cp", cp, *sources], check=True)
    return f"{out}:{cp}:{env['KOTLIN_STDLIB_CP']}"


def run_side(argv: list[str]) -> dict:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        raise SystemExit(f"{argv[0]} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return json.loads(lines[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=1800, help="measured frames (default 1800: one minute)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--fieldcast", default=str(REPO / "target/release/fieldcast"))
    args = parser.parse_args()

    env = kotlin_env()
    classpath = build_kotlin(env)
    rust_bin = REPO / "target/release/push_bench"
    lib_dir = REPO / "target/release"  # the optimised library, as the Rust side is
    children = Children()
    ingest = start_ingest(Path(args.fieldcast), "push-bench", children)
    results: dict[str, list[dict]] = {"rust": [], "kotlin": []}
    try:
        for r in range(args.rounds):
            rust = run_side([str(rust_bin), ingest.url_for(f"rust-{r}"), str(args.frames)])
            kotlin = run_side([
                "java", f"-Djna.library.path={lib_dir}", "-cp", classpath,
                "org.fieldcast.PushBenchKt", ingest.url_for(f"kotlin-{r}"), str(args.frames),
            ])
            for side in (rust, kotlin):
                results[side["side"]].append(side)
                print(json.dumps(side))
    finally:
        children.stop_all()

    def median(side: str, key: str) -> float:
        return statistics.median(run[key] for run in results[side])

    print(f"\n720p30 NV12, {args.frames} frames, median of {args.rounds} rounds")
    print(f"{'side':8} {'CPU s/media s':>14} {'push p50 us':>12} {'push p99 us':>12} {'dropped':>8}")
    for side in ("rust", "kotlin"):
        print(
            f"{side:8} {median(side, 'cpu_s') / median(side, 'media_s'):14.3f} "
            f"{median(side, 'push_p50_us'):12.1f} {median(side, 'push_p99_us'):12.1f} "
            f"{median(side, 'dropped'):8.0f}"
        )
    ratio = median("kotlin", "cpu_s") / median("rust", "cpu_s")
    verdict = "met" if ratio <= TARGET else "NOT met"
    print(f"CPU Kotlin / Rust: {ratio:.2f}x (target <= {TARGET:.2f}x: {verdict})")
    jit = median("kotlin", "jit_cpu_s")
    without_jit = statistics.median(run["cpu_s"] - run["jit_cpu_s"] for run in results["kotlin"])
    print(
        f"  of the Kotlin side's CPU, HotSpot's JIT compiler threads: {jit:.3f} s "
        f"({jit / median('kotlin', 'cpu_s') * 100:.1f} %); without them {without_jit / median('rust', 'cpu_s'):.2f}x "
        "(Android's ART compiles ahead of time, so a phone does not pay this per live)"
    )


if __name__ == "__main__":
    main()
