#!/usr/bin/env bash
# `make qa` (root): the four shipped field-lab scenarios, then market-day again on the desktop
# device profile and the two compared (what the entry-2019 profile does to CPU and latency).
# About 15 minutes. Reports go to QA_OUT (default: a new directory under /tmp).
#
#   scripts/qa.sh [SCENARIO...]
#
# Exit status: 0 when every scenario passed, 1 when one failed, 2 when the lab cannot run here.
set -uo pipefail
cd "$(dirname "$0")/.."
bin=target/release/fieldcast
[ -x "$bin" ] || { echo "qa: $bin is missing: run make build" >&2; exit 1; }
out="${QA_OUT:-$(mktemp -d /tmp/fieldcast-qa-XXXXXX)}"
mkdir -p "$out"
scenarios=("$@")
[ ${#scenarios[@]} -gt 0 ] || scenarios=(market-day hilltop tunnel power-cut)
status=0

# run NAME DIR [fieldcast qa run options...]: one scenario, its output kept in DIR.txt.
run() {
  local name="$1" dir="$2"
  shift 2
  "$bin" qa run "$name" --out "$dir" "$@" 2>"$dir.log" | tee "$dir.txt"
  local rc=${PIPESTATUS[0]}
  if [ "$rc" -eq 2 ]; then
    cat "$dir.log" >&2
    exit 2
  fi
  [ "$rc" -eq 0 ] || status=1
}

for name in "${scenarios[@]}"; do
  run "$name" "$out/$name"
done
if [[ " ${scenarios[*]} " == *" market-day "* ]]; then
  run market-day "$out/market-day-desktop" --device desktop
  "$bin" qa compare "$out/market-day-desktop" "$out/market-day" --out "$out" | tee "$out/compare.txt"
fi

echo
echo "qa: summaries"
grep -h -E '^(PASS|FAIL) ' "$out"/*.txt
echo "qa: reports"
for report in "$out"/*/report.html; do echo "  $report"; done
[ -f "$out/compare.html" ] && echo "  $out/compare.html"
exit "$status"
