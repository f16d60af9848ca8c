# Sourced by the scripts that push the same-pixels bench's clip to a local ingest
# (cpu-ab.sh, perf-breakdown.sh, psnr-presets.sh), from the repository root. Each caller sets
# NAME (its name in messages) before sourcing.
#
#   clip_profile 480p|720p       sets SIZE and KBPS, the bench's size and bitrate for the profile
#   clip_file PROFILE SECS       sets CLIP, making the noisy clip (bench/pixels_bench.py) if missing
#   clip_warm                    reads the whole clip, as the bench does before every run (pages
#                                idle for a while can cost more to read; bench/page_age.py)
#   ingest_start FIELDCAST KEY LOG
#                                starts `FIELDCAST ingest`, waits for its URL and sets INGEST (its
#                                PID), NGINX (nginx's PIDs) and BASE (the URL without the key);
#                                the ingest is stopped on exit

clip_profile() {
  case "$1" in
    480p) SIZE=854x480; KBPS=1000 ;;
    720p) SIZE=1280x720; KBPS=2500 ;;
    *) echo "$NAME: the profile must be 480p or 720p, not $1" >&2; exit 2 ;;
  esac
}

clip_file() {
  clip_profile "$1"
  CLIP=target/bench/clips/noise-$SIZE-${2}s.y4m
  [ -s "$CLIP" ] && return
  python3 - "$1" "$2" <<'EOF'
import sys
from pathlib import Path
sys.path.insert(0, "bench")
import pixels_bench as p
clip = next(c for c in p.CLIPS if c.profile == sys.argv[1])
p.make_clip(clip, clip.path(Path("target/bench/clips"), float(sys.argv[2])), float(sys.argv[2]))
EOF
}

clip_warm() {
  cat "$CLIP" >/dev/null
}

# The ingest runs nginx as its child. On SIGINT it stops nginx, waits for it and removes its
# directory (recordings included). SIGTERM stops the ingest alone and leaves nginx running, so
# if the ingest is still there a few seconds after SIGINT, nginx (by the PIDs read from its
# parent once the URL is out) and then the ingest are stopped by PID, and its directory removed.
ingest_start() {
  local fieldcast=$1 key=$2
  INGEST_LOG=$3
  NGINX=()
  "$fieldcast" ingest --key "$key" >"$INGEST_LOG" 2>&1 &
  INGEST=$!
  trap ingest_stop EXIT
  local url=""
  for _ in $(seq 100); do
    url=$(grep -o 'rtmp://[^ ]*' "$INGEST_LOG" | head -1 || true)
    [ -n "$url" ] && break
    sleep 0.1
  done
  [ -n "$url" ] || { cat "$INGEST_LOG" >&2; echo "$NAME: the ingest printed no URL" >&2; exit 1; }
  mapfile -t NGINX < <(pgrep -P "$INGEST" || true)
  BASE=${url%/*}
}

ingest_stop() {
  kill -INT "$INGEST" 2>/dev/null || true
  for _ in $(seq 50); do
    kill -0 "$INGEST" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$INGEST" 2>/dev/null; then
    echo "$NAME: the ingest ignored SIGINT; stopping nginx ${NGINX[*]:-} and it" >&2
    [ ${#NGINX[@]} -eq 0 ] || kill "${NGINX[@]}" 2>/dev/null || true
    kill "$INGEST" 2>/dev/null || true
    wait "$INGEST" 2>/dev/null || true
    local dir
    dir=$(sed -n 's|^recordings: \(/.*/fieldcast-ingest-[^/]*\)/recordings$|\1|p' "$INGEST_LOG" | head -1)
    [ -z "$dir" ] || rm -rf "$dir"
  fi
  wait "$INGEST" 2>/dev/null || true
}
