#!/usr/bin/env bash
# Fuzzes FieldCast's parsers of untrusted input with cargo-fuzz (libFuzzer), one target after the
# other with one job, and prints what each run did.
#
#   bash scripts/fuzz.sh [TARGET...]      every target of fuzz/fuzz_targets/, or the named ones
#   FUZZ_SECONDS=60 bash scripts/fuzz.sh  seconds per target (default 600)
#
# New inputs go to fuzz/target/corpus/TARGET (not kept); fuzz/corpus/TARGET, the minimised seeds
# kept in the repository, is only read (to keep what a run found: copy the new inputs into it and
# run `cargo fuzz cmin TARGET` in fuzz/). A crash, leak, timeout or out-of-memory input is kept
# under fuzz/artifacts/TARGET/ and ends that target's run; reproduce it with
# `cargo fuzz run TARGET artifacts/TARGET/FILE` in fuzz/. Exits non-zero when anything was
# found. cargo-fuzz is installed when missing; the nightly toolchain is used when rustup has one,
# else the stable one with RUSTC_BOOTSTRAP=1 (cargo-fuzz needs unstable compiler flags).
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
fuzz="$root/fuzz"
seconds="${FUZZ_SECONDS:-600}"
case "$seconds" in
  '' | *[!0-9]*) echo "FUZZ_SECONDS must be a whole number of seconds, got '$seconds'" >&2; exit 2 ;;
esac

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi

toolchain=()
if command -v rustup >/dev/null 2>&1 && rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
  toolchain=(+nightly)
else
  export RUSTC_BOOTSTRAP=1
fi

available=()
for file in "$fuzz"/fuzz_targets/*.rs; do
  available+=("$(basename "$file" .rs)")
done
if [ $# -gt 0 ]; then
  targets=("$@")
  for t in "${targets[@]}"; do
    [ -f "$fuzz/fuzz_targets/$t.rs" ] || {
      echo "no fuzz target '$t' (have: ${available[*]})" >&2
      exit 2
    }
  done
else
  targets=("${available[@]}")
fi

# Built once, then run as built: sources edited during the runs do not change what is fuzzed.
cd "$fuzz"
cargo "${toolchain[@]}" fuzz build
host="$(rustc "${toolchain[@]}" -vV | sed -n 's/^host: //p')"
bin="$fuzz/target/$host/release"

# What libFuzzer counts as found: inputs it saved after a failure.
found_in() {
  find "$fuzz/artifacts/$1" -maxdepth 1 -type f \
    \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' -o -name 'oom-*' \) 2>/dev/null | sort
}

logs="$fuzz/target/fuzz-logs"
mkdir -p "$logs"
# What a target leaves in the temp directory when libFuzzer exits (the sandbox's files).
export TMPDIR="$fuzz/target/tmp"
summary=()
failed=0
for t in "${targets[@]}"; do
  work="$fuzz/target/corpus/$t"
  mkdir -p "$work" "$fuzz/corpus/$t" "$fuzz/artifacts/$t"
  rm -rf "$TMPDIR" && mkdir -p "$TMPDIR"
  before="$(found_in "$t")"
  log="$logs/$t.log"
  echo "== $t: $seconds s (log: $log)"
  start=$(date +%s)
  status=0
  "$bin/$t" "$work" "$fuzz/corpus/$t" -artifact_prefix="$fuzz/artifacts/$t/" \
    -max_total_time="$seconds" -timeout=30 -rss_limit_mb=2048 -print_final_stats=1 \
    >"$log" 2>&1 || status=$?
  elapsed=$(($(date +%s) - start))
  runs="$(grep -oE '^Done [0-9]+ runs' "$log" | grep -oE '[0-9]+' | tail -n 1 || true)"
  [ -n "$runs" ] || runs="$(grep -oE '^stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' | tail -n 1 || true)"
  [ -n "$runs" ] || runs="$(grep -oE '^#[0-9]+' "$log" | tr -d '#' | tail -n 1 || true)"
  new="$(comm -13 <(echo "$before") <(found_in "$t") | grep -c . || true)"
  if [ "$status" -ne 0 ] || [ "$new" -gt 0 ]; then
    failed=1
    comm -13 <(echo "$before") <(found_in "$t") | sed "s|^$root/|   found: |"
    [ "$new" -gt 0 ] || { echo "   $t failed without an artifact (exit $status):"; tail -n 20 "$log" | sed 's/^/   /'; }
  fi
  summary+=("$(printf '%-18s %12s %8s %8s' "$t" "${runs:-?}" "$elapsed" "$new")")
done

echo
printf '%-18s %12s %8s %8s\n' target executions seconds crashes
printf '%s\n' "${summary[@]}"
exit "$failed"
