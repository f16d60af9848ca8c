# Sourced (from the repository root) by the Kotlin scripts: installs the Kotlin toolchain when it is
# missing, then loads $FIELDCAST_TOOLS/kotlin.env (KOTLINC, JNA_JAR, ANDROID_ALL_JAR...).
tools="${FIELDCAST_TOOLS:-$(pwd)/.tools}"
[ -f "$tools/kotlin.env" ] || bash scripts/install-kotlin.sh
# shellcheck disable=SC1091
. "$tools/kotlin.env"

# junit_summary LABEL LOG STATUS: reads JUnitCore's closing line in LOG ("OK (N tests)" or
# "Tests run: N,  Failures: M"), prints "LABEL: N passed, M failed" and succeeds only when the run
# exited 0 with no failure. A log without a summary is a failure that says so.
junit_summary() {
  local label="$1" log="$2" status="$3" ok run total passed fail
  if ok="$(grep -oE '^OK \([0-9]+ tests?\)' "$log")"; then
    passed="$(grep -oE '[0-9]+' <<<"$ok")"
    fail=0
  elif run="$(grep -oE '^Tests run: [0-9]+,  Failures: [0-9]+' "$log")"; then
    read -r total fail < <(grep -oE '[0-9]+' <<<"$run" | paste -sd' ')
    passed=$((total - fail))
  else
    echo "$label: JUnit printed no summary (exit $status); see $log" >&2
    echo "$label: 0 passed, 0 failed (not run)"
    return 1
  fi
  echo "$label: $passed passed, $fail failed"
  [ "$status" -eq 0 ] && [ "$fail" -eq 0 ]
}
