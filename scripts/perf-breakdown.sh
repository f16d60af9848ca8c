#!/usr/bin/env bash
# Where the CPU goes: samples `fieldcast live` and ffmpeg with perf while each pushes the same
# noisy clip (made by bench/pixels_bench.py) to a local ingest with the same x264 settings, and
# prints the CPU seconds per shared object and per thread, and the top symbols of each, also by
# thread. The clip is read once right before each run, as the bench does.
#
#   scripts/perf-breakdown.sh [480p|720p] [veryfast|ultrafast]
#
# Needs perf (Debian linux-perf), ffmpeg, nginx + libnginx-mod-rtmp and target/release/fieldcast.
set -euo pipefail
cd "$(dirname "$0")/.."
PROFILE=${1:-480p}
PRESET=${2:-veryfast}
SECS=12
NAME=perf-breakdown
. scripts/clip-ingest.sh
clip_profile "$PROFILE"
for need in perf:linux-perf ffmpeg:ffmpeg; do
  command -v "${need%%:*}" >/dev/null ||
    { echo "perf-breakdown: ${need%%:*} is missing: apt-get install ${need#*:}" >&2; exit 2; }
done
FIELDCAST=target/release/fieldcast
[ -x "$FIELDCAST" ] || { echo "perf-breakdown: build $FIELDCAST first (make build)" >&2; exit 2; }
clip_file "$PROFILE" "$SECS"
OUT=target/bench/perf
mkdir -p "$OUT"
ingest_start "$FIELDCAST" perf "$OUT/ingest.log"

sample() { # name, command...
  local name=$1; shift
  set +o pipefail # the reports are cut with head
  clip_warm
  perf record -q -e cpu-clock -F 499 -o "$OUT/$name.data" -- "$@" >"$OUT/$name.log" 2>&1
  local samples
  samples=$(perf report -i "$OUT/$name.data" --stdio --sort dso -n -q 2>/dev/null \
    | awk '{s += $2} END {print s}')
  echo "== $name, $PROFILE $PRESET: $samples samples at 499 Hz = $(awk -v s="$samples" 'BEGIN {printf "%.2f", s / 499}') CPU s"
  echo "-- CPU s by shared object"
  perf report -i "$OUT/$name.data" --stdio --sort dso -n -q 2>/dev/null \
    | awk '{printf "  %7.3f s  %6s  %s\n", $2 / 499, $1, $3}' | head -14
  echo "-- CPU s by thread"
  perf report -i "$OUT/$name.data" --stdio --sort comm -n -q 2>/dev/null \
    | awk '{printf "  %7.3f s  %6s  %s\n", $2 / 499, $1, $3}' | head -14
  echo "-- top symbols (% of its samples)"
  perf report -i "$OUT/$name.data" --stdio --sort dso,sym -q 2>/dev/null | head -25
  echo "-- top symbols by thread (% of its samples)"
  perf report -i "$OUT/$name.data" --stdio --sort comm,dso,sym -q 2>/dev/null | head -20
  set -o pipefail
}

sample fieldcast "$FIELDCAST" live --ingest "$BASE/perf-fieldcast" --source "file:$CLIP" \
  --profile "$PROFILE" --video-kbps "$KBPS" --encoder x264 --x264-preset "$PRESET" --no-abr --quiet
sample ffmpeg ffmpeg -hide_banner -nostdin -nostats -loglevel warning -re -i "$CLIP" \
  -f lavfi -i anullsrc=r=44100:cl=mono -map 0:v -map 1:a -shortest \
  -c:v libx264 -preset "$PRESET" -tune zerolatency -g 60 -bf 0 \
  -b:v ${KBPS}k -maxrate ${KBPS}k -bufsize $((KBPS * 600 / 1000))k -pix_fmt yuv420p \
  -c:a aac -b:a 64k -ac 1 -ar 44100 -f flv -flvflags no_duration_filesize "$BASE/perf-ffmpeg"
