#!/usr/bin/env bash
# What the phone library links: builds fieldcast-ffi on its own, as an app build does (building the
# whole workspace would unify the `qa` feature of the CLI and the tests into fieldcast-core), and
# fails if QA-only code is in it: a feature of fieldcast-core (such as `qa`), or a symbol of the probe's
# player (receiver::), the latency stamp (probe::, stamp_capture_time, latency_stamp) or the SEI
# reader (find_in_au) in the shared library (Android) or the static library (iOS).
# Ends with `phone contents: ok` or the offending symbols. See docs/ARCHITECTURE.md,
# "What a phone build links".
set -euo pipefail
cd "$(dirname "$0")/.."

# The phone library is the core without features (`qa` is QA's, `x264` the desktop's).
features=$(cargo tree -q -p fieldcast-ffi -e features -i fieldcast-core)
if grep 'fieldcast-core feature "' <<<"$features" | grep -qv 'feature "default"'; then
  echo "phone contents: fieldcast-ffi turns on features of fieldcast-core:" >&2
  echo "$features" >&2
  exit 1
fi

libs=$(cargo build -q -p fieldcast-ffi --message-format=json-render-diagnostics | python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "fieldcast_ffi":
        print("\n".join(f for f in m["filenames"] if f.endswith((".so", ".dylib", ".a"))))
')
[ -n "$libs" ] || { echo "phone contents: cargo reported no fieldcast-ffi library" >&2; exit 1; }

qa='fieldcast_core::(receiver|probe)::|stamp_capture_time|latency_stamp|sei::find_in_au'
status=0
for lib in $libs; do
  symbols=$(nm -C --defined-only "$lib" 2>/dev/null || true)
  core=$(grep -c 'fieldcast_core::' <<<"$symbols" || true)
  if [ "$core" -eq 0 ]; then
    echo "phone contents: no fieldcast_core symbol in $lib (stripped?): cannot check it" >&2
    status=1
    continue
  fi
  found=$(grep -E "$qa" <<<"$symbols" || true)
  if [ -n "$found" ]; then
    echo "phone contents: $lib links QA-only code ($(wc -l <<<"$found") symbols):" >&2
    head -n 20 <<<"$found" >&2
    status=1
  else
    echo "phone contents: $(basename "$lib"): $core fieldcast_core symbols, none QA-only"
  fi
done
[ "$status" -eq 0 ] && echo "phone contents: ok"
exit "$status"
