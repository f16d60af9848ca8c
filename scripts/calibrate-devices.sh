#!/usr/bin/env bash
# Measures x264 `ultrafast` frames per second at 720p and 480p inside a cgroup cage of each
# shipped device profile (qa/device-profiles/), the figures each profile file records under
# `calibration` (see docs/QA.md, "Device profiles"). Root; about 20 s per profile.
#
# Usage: scripts/calibrate-devices.sh [SECONDS]
#   SECONDS: how long each size is measured (default 10).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p fieldcast-cli
exec target/release/fieldcast qa calibrate --seconds "${1:-10}"
