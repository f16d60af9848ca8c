#!/usr/bin/env bash
# Checks the Swift package in ios/ without a Swift compiler: regenerates the Swift bindings
# (scripts/bindings.sh swift), then, with tree-sitter-swift from a venv in .tools/ (installed from
# PyPI when missing):
#   1. every Swift file parses without ERROR or MISSING nodes (the generated bindings, the shell, the
#      sample, the tests, Package.swift and ios/README.md's quickstart); only in the generated
#      bindings are the grammar's known misparses allowed, each listed with its line and reason;
#   2. every call into the bindings and the shell, per target, names an existing type, case, method,
#      property or initializer with the same argument labels (scripts/swift/check_api.py);
#   3. check_api.py's self-test: renamed, removed and made-up APIs must fail;
#   4. docs/API.md's Kotlin/Swift table covers every public member of the Kotlin SDK layer and the
#      Swift shell, and names nothing that is gone; with its own self-test.
# Prints `swift: N passed, M failed` (N/M: checks) and exits non-zero on a failure.
set -uo pipefail
cd "$(dirname "$0")/.."
start=$SECONDS
venv="${FIELDCAST_TOOLS:-.tools}/swift-venv"
python="$venv/bin/python"
if ! "$python" -c 'import tree_sitter, tree_sitter_swift' 2>/dev/null; then
  echo "swift-check: installing tree-sitter 0.26.1 and tree-sitter-swift 0.7.4 into $venv"
  python3 -m venv "$venv" && "$venv/bin/pip" install -q tree-sitter==0.26.1 tree-sitter-swift==0.7.4 || {
    echo "swift: 0 passed, 1 failed (tree-sitter-swift could not be installed)"
    exit 1
  }
fi
bash scripts/bindings.sh swift || { echo "swift: 0 passed, 1 failed (bindings)"; exit 1; }

bindings=target/bindings/swift/FieldCastFFI.swift
work=target/swift-check
rm -rf "$work" && mkdir -p "$work"
# The quickstart of ios/README.md: its (only) swift block.
awk '/^```swift$/ {on = 1; next} /^```$/ {on = 0} on' ios/README.md > "$work/README-quickstart.swift"
[ -s "$work/README-quickstart.swift" ] || echo "ios/README.md has no swift block" >"$work/README-quickstart.swift.missing"

mapfile -t shell < <(find ios/Sources/FieldCast -name '*.swift' -not -path '*/Generated/*' | sort)
mapfile -t sample < <(find ios/Sample -name '*.swift' | sort)
mapfile -t tests < <(find ios/Tests -name '*.swift' | sort)
quickstart=("$work/README-quickstart.swift")

passed=0
failed=0
check() {
  local name="$1"
  shift
  echo "swift-check: $name"
  if "$@"; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "  FAILED: $name"; fi
}
api() { "$python" scripts/swift/check_api.py --bindings "$bindings" --shell ios/Sources/FieldCast "$@"; }
table=(--doc docs/API.md --kotlin android/fieldcast/src/sdk/kotlin/org/fieldcast
  --kotlin-platform android/fieldcast/src/android/kotlin/org/fieldcast/android --swift ios/Sources/FieldCast)

check "README quickstart extracted" test ! -e "$work/README-quickstart.swift.missing"
check "syntax (tree-sitter-swift)" "$python" scripts/swift/check_syntax.py --generated "$bindings" \
  "${shell[@]}" "${sample[@]}" "${tests[@]}" ios/Package.swift "${quickstart[@]}"
check "API: shell" api "${shell[@]}"
check "API: sample" api "${sample[@]}"
check "API: tests" api "${tests[@]}"
check "API: README quickstart" api "${quickstart[@]}"
check "API checker self-test" api --self-test "${shell[@]}"
check "docs/API.md table" "$python" scripts/swift/check_table.py "${table[@]}"
check "docs/API.md table self-test" "$python" scripts/swift/check_table.py "${table[@]}" --self-test

echo "swift-check: $((SECONDS - start)) s"
echo "swift: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
