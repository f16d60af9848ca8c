#!/usr/bin/env python3
"""Turns the adaptive bitrate's samples, as `fieldcast live` logs them at debug level, into a
trace the controller's unit tests replay (core/src/uplink/traces/).

Record: run a lab test with the samples logged and the output kept, e.g.

    RUST_LOG=fieldcast_core::session::adaptation=debug FIELDCAST_LAB_OUT=/tmp/lab \
        cargo test -p fieldcast-tests --test network_lab steady_outage -- --nocapture
    python3 scripts/abr_trace.py /tmp/lab/steady-outage/publisher.log > trace.txt

Each line: ms since the session started, bytes accepted, queue ms, send errors, dropped GOPs,
delivery kbit/s and the ms it was measured over (`- -` without a path sample).
"""

import re
import sys

SAMPLE = re.compile(
    r"sample: AbrSample \{ at: (?P<at>[0-9.]+)(?P<at_unit>ms|s|µs), "
    r"bytes_accepted: (?P<bytes>\d+), queue_level: (?P<queue>[0-9.]+)(?P<queue_unit>ns|µs|ms|s), "
    r"send_errors: (?P<errors>\d+), dropped_gops: (?P<gops>\d+), "
    r"path: (?:None|Some\(PathSample \{ delivery_kbps: (?P<kbps>\d+), "
    r"measured_for: (?P<for>[0-9.]+)(?P<for_unit>ns|µs|ms|s) \}\)) \}"
)
TO_MS = {"ns": 1e-6, "µs": 1e-3, "ms": 1.0, "s": 1000.0}


def ms(value: str, unit: str) -> int:
    return round(float(value) * TO_MS[unit])


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    print(f"# {sys.argv[1]}: ms bytes queue_ms errors gops delivery_kbps measured_ms")
    count = 0
    with open(sys.argv[1], encoding="utf-8") as log:
        for line in log:
            m = SAMPLE.search(line)
            if not m:
                continue
            path = "- -"
            if m["kbps"] is not None:
                path = f"{m['kbps']} {ms(m['for'], m['for_unit'])}"
            print(f"{ms(m['at'], m['at_unit'])} {m['bytes']} {ms(m['queue'], m['queue_unit'])} "
                  f"{m['errors']} {m['gops']} {path}")
            count += 1
    if count == 0:
        print("no samples found: was RUST_LOG=fieldcast_core::session::adaptation=debug set?",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
