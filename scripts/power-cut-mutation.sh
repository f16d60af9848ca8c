#!/usr/bin/env bash
# Shows that the power-cut test catches a store that syncs less than it must: copies the tree
# outside itself (the files git tracks or would track, as they are now, uncommitted changes
# included; no target/), sets the store's `PRAGMA synchronous` in the copy
# (core/src/store/connection.rs) to the given value, runs the power-cut test there and says
# whether it failed and how (the first lost acknowledged sale, or whatever failed first).
#
# Usage: scripts/power-cut-mutation.sh NORMAL|OFF [CUTS]
#   CUTS: the number of power cuts (FIELDCAST_POWER_CUTS, default 20).
# POWER_CUT_MUTATION_DIR (default /var/tmp/fieldcast-power-cut-mutation) holds the copy (tree/),
# its own build (target/, kept between runs, never the main target dir) and the test's log.
# Exits 0 when the test failed (the mutation was caught), 1 when it passed (not caught), 2 when the
# copy could not be made or built.
set -euo pipefail
cd "$(dirname "$0")/.."

value="${1:-}"
cuts="${2:-20}"
case "$value" in
  NORMAL | OFF) ;;
  *)
    echo "usage: $0 NORMAL|OFF [CUTS]" >&2
    exit 2
    ;;
esac
[[ $cuts =~ ^[0-9]+$ ]] || { echo "CUTS must be a number, got '$cuts'" >&2; exit 2; }

work="${POWER_CUT_MUTATION_DIR:-/var/tmp/fieldcast-power-cut-mutation}"
tree="$work/tree"
log="$work/power-cut-synchronous-$value.log"
rm -rf "$tree"
mkdir -p "$tree"
git ls-files -z --cached --others --exclude-standard |
  while IFS= read -r -d '' file; do
    # A tracked file deleted in the work tree is not copied.
    if [[ -e $file || -L $file ]]; then printf '%s\0' "$file"; fi
  done |
  tar --null --files-from=- -cf - | tar -xf - -C "$tree"

connection="$tree/core/src/store/connection.rs"
original='conn.pragma_update(None, "synchronous", "FULL")?;'
if [[ $(grep -cF "$original" "$connection") != 1 ]]; then
  echo "power-cut mutation: $connection does not set synchronous=FULL exactly once" >&2
  exit 2
fi
sed -i "s/pragma_update(None, \"synchronous\", \"FULL\")/pragma_update(None, \"synchronous\", \"$value\")/" "$connection"
echo "power-cut mutation: the copy in $tree sets synchronous=$value:"
grep -nF "\"synchronous\"" "$connection"

echo "power-cut mutation: running $cuts power cuts (log: $log)"
set +e
(
  cd "$tree" &&
    CARGO_TARGET_DIR="$work/target" FIELDCAST_POWER_CUTS="$cuts" \
      cargo test -p fieldcast-tests --test power_cut \
      acknowledged_sales_survive_power_cuts -- --nocapture
) >"$log" 2>&1
status=$?
set -e

grep -m1 '^power cut: seed' "$log" || true
if ((status == 0)); then
  grep '^power cut: [0-9]* cuts' "$log" || true
  echo "power-cut mutation: synchronous=$value PASSED the power-cut test: NOT caught"
  exit 1
fi
if ! grep -q '^running [0-9]* test' "$log"; then
  tail -n 30 "$log" >&2
  echo "power-cut mutation: the copy did not build (see $log)" >&2
  exit 2
fi
echo "power-cut mutation: synchronous=$value FAILED the power-cut test (caught):"
grep -m1 -A1 'panicked at' "$log"
