#!/usr/bin/env bash
# Whether a faster x264 preset would do for the replay: for each preset, goes live with
# `fieldcast live --record` from the same noisy clip (made by bench/pixels_bench.py) to a local
# ingest at full quality (no adaptive bitrate), and prints the replay's PSNR against the clip's
# pixels (ffmpeg's psnr filter, average of Y, U and V), its difference to the first preset's PSNR,
# whether that is within 1 dB, the replay's frames, size and mean video bitrate, and the CPU
# seconds the `fieldcast live` run took per second of clip.
#
#   scripts/psnr-presets.sh [480p|720p] [PRESET...]     (default: 480p veryfast superfast ultrafast)
#
# Needs ffmpeg (with ffprobe), nginx + libnginx-mod-rtmp, /usr/bin/time and target/release/fieldcast.
set -euo pipefail
cd "$(dirname "$0")/.."
PROFILE=${1:-480p}
shift || true
PRESETS=("$@")
[ ${#PRESETS[@]} -gt 0 ] || PRESETS=(veryfast superfast ultrafast)
SECS=12
FPS=30
NAME=psnr-presets
. scripts/clip-ingest.sh
clip_profile "$PROFILE"
for preset in "${PRESETS[@]}"; do
  case "$preset" in
    ultrafast | superfast | veryfast | faster | fast | medium | slow | slower | veryslow) ;;
    *) echo "psnr-presets: unknown x264 preset: $preset" >&2; exit 2 ;;
  esac
done
for need in ffmpeg:ffmpeg ffprobe:ffmpeg nginx:nginx pgrep:procps; do
  command -v "${need%%:*}" >/dev/null ||
    { echo "psnr-presets: ${need%%:*} is missing: apt-get install ${need#*:}" >&2; exit 2; }
done
[ -x /usr/bin/time ] || { echo "psnr-presets: /usr/bin/time is missing: apt-get install time" >&2; exit 2; }
FIELDCAST=target/release/fieldcast
[ -x "$FIELDCAST" ] || { echo "psnr-presets: build $FIELDCAST first (make build)" >&2; exit 2; }
clip_file "$PROFILE" "$SECS"

frames() { # file: the decoded frames of its first video stream
  ffprobe -v error -count_frames -select_streams v:0 -show_entries stream=nb_read_frames \
    -of default=nw=1:nk=1 "$1"
}
CLIP_FRAMES=$(frames "$CLIP")

OUT=target/bench/psnr
mkdir -p "$OUT"
for preset in "${PRESETS[@]}"; do rm -rf "${OUT:?}/$preset"; done

ingest_start "$FIELDCAST" psnr "$OUT/ingest.log"
echo "-- ingest: pid $INGEST, nginx pid ${NGINX[*]:-none}" >&2

echo "clip: $CLIP ($CLIP_FRAMES frames, ${SECS} s at $FPS fps); $PROFILE $SIZE at $KBPS kbit/s, x264, no ABR"
declare -A ROW_FRAMES ROW_BYTES ROW_KBPS ROW_PSNR ROW_CPU
NOTES=()
for preset in "${PRESETS[@]}"; do
  echo "-- $preset: going live for ${SECS} s ..." >&2
  if ! /usr/bin/time -f "%U %S" -o "$OUT/$preset.time" \
    "$FIELDCAST" live --ingest "$BASE/psnr-$preset" --source "file:$CLIP" \
    --profile "$PROFILE" --video-kbps "$KBPS" --encoder x264 --x264-preset "$preset" \
    --no-abr --quiet --record "$OUT/$preset" >"$OUT/$preset.log" 2>&1; then
    echo "psnr-presets: fieldcast live failed with $preset:" >&2
    cat "$OUT/$preset.log" >&2
    exit 1
  fi
  REPLAY=$OUT/$preset/fieldcast-00000.mp4
  [ -s "$REPLAY" ] || { echo "psnr-presets: no replay at $REPLAY" >&2; ls -l "$OUT/$preset" >&2 || true; exit 1; }
  n=$(frames "$REPLAY")
  ROW_FRAMES[$preset]=$n
  if [ "$n" -lt "$CLIP_FRAMES" ]; then
    NOTES+=("$preset: the replay has $n frames, the clip $CLIP_FRAMES: psnr pairs frames in order, so a missing frame shifts the pairing and lowers its PSNR")
  elif [ "$n" -gt "$CLIP_FRAMES" ]; then
    NOTES+=("$preset: the replay has $n frames, more than the clip's $CLIP_FRAMES")
  fi
  ROW_BYTES[$preset]=$(stat -c %s "$REPLAY")
  # Mean video bitrate: the video packets' bytes over the video stream's duration.
  ROW_KBPS[$preset]=$(ffprobe -v error -select_streams v:0 -show_entries packet=size,duration_time \
    -of default=nw=1 "$REPLAY" | awk -F= '$1 == "size" {b += $2} $1 == "duration_time" {d += $2}
      END {if (d > 0) printf "%.0f", b * 8 / d / 1000; else print "?"}')
  ffmpeg -hide_banner -nostdin -i "$REPLAY" -i "$CLIP" \
    -lavfi "[0:v]setpts=PTS-STARTPTS[a];[1:v]setpts=PTS-STARTPTS[b];[a][b]psnr" -f null - \
    2>"$OUT/$preset.psnr.log" || { cat "$OUT/$preset.psnr.log" >&2; exit 1; }
  psnr=$(grep -o 'PSNR y:.* average:[0-9.a-z]*' "$OUT/$preset.psnr.log" | tail -1 | sed 's/.*average://')
  [ -n "$psnr" ] || { echo "psnr-presets: no PSNR in $OUT/$preset.psnr.log" >&2; exit 1; }
  ROW_PSNR[$preset]=$psnr
  ROW_CPU[$preset]=$(awk '{printf "%.2f", $1 + $2}' "$OUT/$preset.time")
done

FIRST=${PRESETS[0]}
printf '%-10s %7s %9s %7s %10s %10s %10s %10s %12s\n' \
  preset frames bytes kbit/s "PSNR dB" "vs $FIRST" "within 1dB" "CPU s" "CPU s/clip s"
for preset in "${PRESETS[@]}"; do
  diff=$(awk -v a="${ROW_PSNR[$preset]}" -v b="${ROW_PSNR[$FIRST]}" 'BEGIN {printf "%+.2f", a - b}')
  within=$(awk -v d="$diff" 'BEGIN {print (d >= -1 ? "yes" : "no")}')
  per=$(awk -v c="${ROW_CPU[$preset]}" -v s="$SECS" 'BEGIN {printf "%.3f", c / s}')
  printf '%-10s %7s %9s %7s %10s %10s %10s %10s %12s\n' "$preset" "${ROW_FRAMES[$preset]}" \
    "${ROW_BYTES[$preset]}" "${ROW_KBPS[$preset]}" "${ROW_PSNR[$preset]}" "$diff" "$within" \
    "${ROW_CPU[$preset]}" "$per"
done
for note in ${NOTES[@]+"${NOTES[@]}"}; do echo "note: $note"; done
echo "PSNR: average of Y, U and V over all frames, replay against the clip; CPU: user + system of fieldcast live"
