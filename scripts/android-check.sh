#!/usr/bin/env bash
# The Android layer and the sample app, compiled here against the real framework API
# (org.robolectric:android-all, Android 14), then the Android layer's Robolectric tests run on the
# JVM against the real native library (target/debug/libfieldcast_ffi.so, loaded by JNA).
#
#   scripts/android-check.sh [SDK_CLASSES]
#
# SDK_CLASSES: the compiled bindings + SDK layer (default target/kotlin/sdk; built when absent).
# Output: target/kotlin/android (Android layer, GStreamer class, sample) and
# target/kotlin/android-test (the same layer with its tests). Ends with `android: N passed, M failed`;
# exits non-zero on a compile error, a failed test, or tests that could not run.
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$(pwd)"
. scripts/kotlin-env.sh

sdk="${1:-target/kotlin/sdk}"
[ -d "$sdk/org/fieldcast" ] || bash scripts/kotlin-sdk.sh

layer=(android/fieldcast/src/android/kotlin)
sample=(android/sample/src/main/kotlin)
tests=(android/fieldcast/src/test/kotlin/org/fieldcast/android)
out=target/kotlin/android
test_out=target/kotlin/android-test
rm -rf "$out" "$test_out"
mkdir -p "$out" "$test_out"
# The quickstart of android/README.md, compiled exactly as written.
quickstart=target/kotlin/quickstart/Quickstart.kt
mkdir -p "$(dirname "$quickstart")"
awk '/^## Quickstart/{q=1} q&&/^```kotlin/{c=1;next} c&&/^```/{exit} c' android/README.md >"$quickstart"
[ -s "$quickstart" ] || { echo "android: no kotlin block under ## Quickstart in android/README.md" >&2; exit 1; }
android_cp="$sdk:$ANDROID_ALL_JAR:$JNA_JAR:$COROUTINES_CP:$COROUTINES_ANDROID_JAR"

# Two independent compilations side by side (one per core): what ships, against the framework only;
# and the layer again with its tests, against JUnit and Robolectric as well.
echo "kotlinc: Android layer + GStreamer class + sample + README quickstart -> $out"
"$KOTLINC" -Werror -d "$out" -cp "$android_cp" "${layer[@]}" "${sample[@]}" "$quickstart" >"$out.log" 2>&1 &
main_pid=$!
echo "kotlinc: Android layer + Robolectric tests -> $test_out"
"$KOTLINC" -Werror -d "$test_out" -cp "$android_cp:$JUNIT_CP:$ROBOLECTRIC_CP" "${layer[@]}" "${tests[@]}" >"$test_out.log" 2>&1 &
test_pid=$!
failed=0
wait "$main_pid" || { echo "android: compile error (Android layer / sample):" >&2; cat "$out.log" >&2; failed=1; }
wait "$test_pid" || { echo "android: compile error (Robolectric tests):" >&2; cat "$test_out.log" >&2; failed=1; }
if [ "$failed" -ne 0 ]; then
  echo "android: 0 passed, 0 failed (not run: compile errors)"
  exit 1
fi

# Robolectric runs offline: the instrumented android-all comes from ROBOLECTRIC_DEPS_DIR, not the
# network. The plain android-all on the class path only serves annotation defaults (Config).
instrumented="$(find "$ROBOLECTRIC_DEPS_DIR" -maxdepth 1 -name 'android-all-instrumented-*.jar' | head -1)"
if [ -z "$instrumented" ]; then
  echo "android: Robolectric cannot run: no android-all-instrumented jar in $ROBOLECTRIC_DEPS_DIR (run scripts/install-kotlin.sh)" >&2
  echo "android: 0 passed, 0 failed (not run)"
  exit 1
fi
classes=()
for f in "${tests[0]}"/*Test.kt; do classes+=("org.fieldcast.android.$(basename "$f" .kt)"); done
log="$test_out/junit.log"
set +e
java -Xmx1g \
  -Drobolectric.offline=true -Drobolectric.dependency.dir="$ROBOLECTRIC_DEPS_DIR" \
  -Djna.library.path="$repo/target/debug" \
  -cp "$test_out:$sdk:$KOTLIN_STDLIB_CP:$JNA_JAR:$COROUTINES_CP:$COROUTINES_ANDROID_JAR:$JUNIT_CP:$ROBOLECTRIC_CP:$ANDROID_ALL_JAR" \
  org.junit.runner.JUnitCore "${classes[@]}" 2>&1 | tee "$log" | grep -vE '^\s+at |^\[Robolectric\] WARN: Android SDK 3[67] requires'
status=${PIPESTATUS[0]}
set -e

junit_summary android "$log" "$status"
bash scripts/android-scenario-check.sh "$sdk"
