#!/usr/bin/env bash
# The CPU of two fieldcast builds on the same job, alternated in one run: each pushes the
# same-pixels bench's noisy clip (bench/pixels_bench.py) to one local ingest with the same x264
# settings, ROUNDS times, and the user + system CPU seconds of each run are printed, then the
# median of each build. For a change too small for the whole same-pixels bench to separate.
#
#   scripts/cpu-ab.sh BUILD_A BUILD_B [ROUNDS] [480p|720p] [veryfast|ultrafast]
#
# BUILD_A and BUILD_B are fieldcast binaries (copy target/release/fieldcast aside before
# rebuilding). The clip is made if missing and read once before every run. Needs ffmpeg and
# nginx + libnginx-mod-rtmp.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 2 ] || { sed -n '2,11p' "$0" >&2; exit 2; }
A=$1 B=$2 ROUNDS=${3:-5} PROFILE=${4:-480p} PRESET=${5:-ultrafast}
NAME=cpu-ab
. scripts/clip-ingest.sh
clip_file "$PROFILE" 12
for bin in "$A" "$B"; do [ -x "$bin" ] || { echo "cpu-ab: $bin is not executable" >&2; exit 2; }; done
work=$(mktemp -d)
ingest_start "$A" ab "$work/ingest.log"
trap 'ingest_stop; rm -rf "$work"' EXIT
for round in $(seq "$ROUNDS"); do
  for side in A B; do
    bin=$A; [ "$side" = B ] && bin=$B
    clip_warm
    /usr/bin/time -f "%U %S" -o "$work/time" "$bin" live --ingest "$BASE/ab-$side-$round" \
      --source "file:$CLIP" --profile "$PROFILE" --video-kbps "$KBPS" --encoder x264 \
      --x264-preset "$PRESET" --no-abr --quiet >/dev/null 2>"$work/live.log" \
      || { cat "$work/live.log" >&2; echo "cpu-ab: $bin failed" >&2; exit 1; }
    cpu=$(awk '{printf "%.2f", $1 + $2}' "$work/time")
    echo "round $round: $side ($bin) $cpu CPU s"
    echo "$cpu" >>"$work/$side"
  done
done
median() { sort -n "$1" | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
echo "median CPU s for 12 s of $PROFILE $PRESET: A $(median "$work/A"), B $(median "$work/B")"
