#!/usr/bin/env bash
# The scenario tests on a device (android/fieldcast/src/androidTest), checked here without a device:
#
#   1. the test APK's manifest is well-formed and declares the app's own process (:seller);
#   2. the scenario player (android/fieldcast/src/androidTest/kotlin: parsing, timeline, journal,
#      figures, the seller's service and run, the instrumentation's conductor) compiles with
#      -Werror against the real framework API (android-all), the SDK layer and the Android layer;
#   3. the test classes that use androidx.test (ShippedScenarioTests.kt) compile against
#      androidx.test ext-junit and monitor, fetched from Maven Central into $FIELDCAST_TOOLS;
#   4. JUnit 4 on the JVM: ScenarioLogicTest (the same class runs on devices too), then
#      src/androidTest/jvm: every shipped scenario against the desktop rules and the sandbox's seed
#      catalog, and the platform calls, sales accounting and test-pattern live of a run against a
#      real platform sandbox (target/debug/fieldcast-sandbox on loopback) and the host-built core.
#
# What needs a device (the runs themselves) is listed at the end; see android/README.md,
# "Scenario tests on a device".
#
#   scripts/android-scenario-check.sh [SDK_CLASSES]
#
# SDK_CLASSES: the compiled bindings + SDK layer (default target/kotlin/sdk; built when absent).
# Needs the workspace built (target/debug/fieldcast-sandbox, libfieldcast_ffi.so). Ends with
# `android-scenarios: N passed, M failed`; exits non-zero on a compile error, a failed test, or tests
# that could not run.
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$(pwd)"
. scripts/kotlin-env.sh

sdk="${1:-target/kotlin/sdk}"
[ -d "$sdk/org/fieldcast" ] || bash scripts/kotlin-sdk.sh

src=android/fieldcast/src/androidTest
pkg=$src/kotlin/org/fieldcast/scenario
thin=$pkg/ShippedScenarioTests.kt
player=()
for f in "$pkg"/*.kt; do [ "$f" = "$thin" ] || player+=("$f"); done
jvm_tests=("$src"/jvm/org/fieldcast/scenario/*.kt)
layer=android/fieldcast/src/android/kotlin
out=target/kotlin/scenario
thin_out=target/kotlin/scenario-androidx
jvm_out=target/kotlin/scenario-jvm
rm -rf "$out" "$thin_out" "$jvm_out"
mkdir -p "$out" "$thin_out" "$jvm_out"

not_run() {
  echo "android-scenarios: $*" >&2
  echo "android-scenarios: 0 passed, 0 failed (not run)"
  exit 1
}

# --- 1. the manifest -----------------------------------------------------------------------
python3 - "$src/AndroidManifest.xml" <<'PY' || not_run "the androidTest manifest is not right"
import sys
import xml.etree.ElementTree as ET
A = "{http://schemas.android.com/apk/res/android}"
root = ET.parse(sys.argv[1]).getroot()
services = [s for s in root.iter("service") if s.get(A + "name") == "org.fieldcast.scenario.SellerService"]
assert services, "no SellerService"
assert services[0].get(A + "process") == ":seller", "SellerService must run in :seller"
assert root.find("application").get(A + "usesCleartextTraffic") == "true", "cleartext to the sandbox is refused"
print("manifest: SellerService in :seller, cleartext allowed for the sandbox")
PY

# --- 2. the player -------------------------------------------------------------------------
android_cp="$sdk:$ANDROID_ALL_JAR:$JNA_JAR:$COROUTINES_CP:$COROUTINES_ANDROID_JAR"
echo "kotlinc: scenario player + ScenarioLogicTest + Android layer (android-all) -> $out"
"$KOTLINC" -Werror -d "$out" -cp "$android_cp:$JUNIT_CP" "$layer" "${player[@]}" >"$out.log" 2>&1 \
  || { cat "$out.log" >&2; not_run "compile error (scenario player)"; }

# --- 3. the androidx.test classes ----------------------------------------------------------
# The versions are those android/fieldcast/build.gradle.kts gives Gradle.
gradle_file=android/fieldcast/build.gradle.kts
ext_junit_version="$(grep -oE 'androidx\.test\.ext:junit:[0-9.]+' "$gradle_file" | head -1 | cut -d: -f3)"
runner_version="$(grep -oE 'androidx\.test:runner:[0-9.]+' "$gradle_file" | head -1 | cut -d: -f3)"
runner_class="$(sed -n 's/.*testInstrumentationRunner = "\([^"]*\)".*/\1/p' "$gradle_file" | head -1)"
[ -n "$ext_junit_version" ] && [ -n "$runner_version" ] && [ -n "$runner_class" ] \
  || not_run "$gradle_file names no androidx.test runner, ext-junit version or testInstrumentationRunner"
monitor_jar="$(tr ':' '\n' <<<"$ROBOLECTRIC_CP" | grep 'androidx.test.monitor' | head -1)"
axt="$FIELDCAST_TOOLS/androidx-test"
ext_jar="$axt/androidx.test.ext.junit-$ext_junit_version.jar"
runner_jar="$axt/androidx.test.runner-$runner_version.jar"
fetch_aar() { # groupId artifactId version output.jar
  [ -s "$4" ] && return 0
  mkdir -p "$axt"
  mvn -B -q -Dstyle.color=never org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy \
    -Dartifact="$1:$2:$3:aar" -DoutputDirectory="$axt" -Dtransitive=false >"$axt/mvn-$2.log" 2>&1 || return 1
  unzip -p "$axt/$2-$3.aar" classes.jar >"$4.tmp" && mv "$4.tmp" "$4" && rm -f "$axt/$2-$3.aar"
}
androidx_compiled=0
if [ -n "$monitor_jar" ] && fetch_aar androidx.test.ext junit "$ext_junit_version" "$ext_jar" \
    && fetch_aar androidx.test runner "$runner_version" "$runner_jar"; then
  unzip -l "$runner_jar" | grep -q "${runner_class//.//}.class" \
    || not_run "$runner_class (testInstrumentationRunner) is not in androidx.test:runner:$runner_version"
  echo "kotlinc: device test classes (androidx.test ext-junit $ext_junit_version, monitor) -> $thin_out"
  "$KOTLINC" -Werror -d "$thin_out" -cp "$out:$sdk:$ANDROID_ALL_JAR:$JUNIT_CP:$ext_jar:$monitor_jar" "$thin" >"$thin_out.log" 2>&1 \
    || { cat "$thin_out.log" >&2; not_run "compile error (device test classes)"; }
  androidx_compiled=1
else
  echo "android-scenarios: not compiled here: $thin (androidx.test ext-junit/runner could not be fetched from Maven Central; see $axt/mvn-*.log)"
fi

# --- 4. JUnit on the JVM -------------------------------------------------------------------
echo "kotlinc: JVM tests ($src/jvm) -> $jvm_out"
"$KOTLINC" -Werror -d "$jvm_out" -cp "$out:$android_cp:$JUNIT_CP" "${jvm_tests[@]}" >"$jvm_out.log" 2>&1 \
  || { cat "$jvm_out.log" >&2; not_run "compile error (JVM tests)"; }

sandbox_bin=target/debug/fieldcast-sandbox
[ -x "$sandbox_bin" ] && [ -f target/debug/libfieldcast_ffi.so ] \
  || not_run "$sandbox_bin or target/debug/libfieldcast_ffi.so is missing: cargo build --workspace"
products="$(sed -n '/SEED_CATALOG/,/^];/p' sandbox/src/server/db.rs | grep -oE '^ *\("[a-z0-9-]+"' | grep -oE '[a-z0-9-]+' | paste -sd, -)"
[ -n "$products" ] || not_run "no seed catalog in sandbox/src/server/db.rs"

# The platform sandbox on loopback, in its own data directory; stopped by its PID at exit.
work="$(mktemp -d)"
"$sandbox_bin" --port 0 --data-dir "$work/data" >"$work/sandbox.log" 2>&1 &
sandbox_pid=$!
cleanup() {
  kill "$sandbox_pid" 2>/dev/null || true
  wait "$sandbox_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
for _ in $(seq 150); do
  grep -q '^Ctrl-C' "$work/sandbox.log" && break
  kill -0 "$sandbox_pid" 2>/dev/null || break
  sleep 0.2
done
grep -q '^Ctrl-C' "$work/sandbox.log" || { cat "$work/sandbox.log" >&2; not_run "the sandbox did not start"; }
api="$(sed -n 's/^ *API: *//p' "$work/sandbox.log" | head -1)"
token="$(sed -n 's/^ *token: *//p' "$work/sandbox.log" | head -1)"
echo "sandbox: $api (pid $sandbox_pid)"

log="$jvm_out/junit.log"
set +e
java -Xmx512m -Djna.library.path="$repo/target/debug" \
  -Dfieldcast.scenarios="$repo/qa/scenarios" -Dfieldcast.products="$products" -Dfieldcast.deviceTests="$repo/$thin" \
  -Dfieldcast.api="$api" -Dfieldcast.token="$token" \
  -cp "$jvm_out:$out:$sdk:$KOTLIN_STDLIB_CP:$ANDROID_ALL_JAR:$JNA_JAR:$COROUTINES_CP:$JUNIT_CP" \
  org.junit.runner.JUnitCore org.fieldcast.scenario.ScenarioLogicTest org.fieldcast.scenario.ShippedScenariosJvmTest \
  org.fieldcast.scenario.SandboxPathsJvmTest 2>&1 | tee "$log" | grep -vE '^\s+at '
status=${PIPESTATUS[0]}
set -e

echo "not run here (a device or an emulator runs them, android/README.md): the five scenario runs" \
  "(SmokeScenarioTest, MarketDayScenarioTest, HilltopScenarioTest, TunnelScenarioTest, PowerCutScenarioTest)" \
  "with SellerService/SellerRun, ScenarioConductor, NetworkSwitch and RecordingGaps$([ "$androidx_compiled" = 1 ] && echo ", compiled above")"

junit_summary android-scenarios "$log" "$status"
