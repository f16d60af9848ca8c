#!/usr/bin/env bash
# The Kotlin SDK layer on the JVM against the real native library: builds the bindings and the SDK
# layer (scripts/kotlin-sdk.sh), compiles the JVM tests with kotlinc and runs them with JUnit 4 (summary: `kotlin: N passed, M failed`). Needs the workspace built
# (`cargo build --workspace`: the tests start target/debug/fieldcast-sandbox) and the Kotlin
# toolchain (scripts/install-kotlin.sh). Test classes: all, or those named in KOTLIN_TESTS.
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$(pwd)"
. scripts/kotlin-env.sh

bash scripts/kotlin-sdk.sh
out=target/kotlin
rm -rf "$out/test"
mkdir -p "$out/test"
cp_compile="$JNA_JAR:$COROUTINES_CP"
echo "kotlinc: JVM tests"
"$KOTLINC" -nowarn -d "$out/test" -cp "$out/sdk:$cp_compile:$JUNIT_CP:$KOTLIN_TEST_CP" \
  android/fieldcast/src/test/kotlin/org/fieldcast/*.kt

classes="${KOTLIN_TESTS:-LiveStreamTest CameraFramesTest CommerceTest BadInputTest LifecycleTest}"
names=()
for c in $classes; do names+=("org.fieldcast.$c"); done
# A fixed, pre-touched heap and two malloc arenas: resident memory then follows the native side's
# allocations, not the JVM's heap sizing or glibc's per-thread arenas (a host allocator's habit; phones
# use scudo or jemalloc), so that the lifecycle test sees leaks.
export MALLOC_ARENA_MAX=2
exec java -Xms256m -Xmx256m -XX:+AlwaysPreTouch \
  -Djna.library.path="$repo/target/debug" -Dfieldcast.repo="$repo" \
  -cp "$out/test:$out/sdk:$cp_compile:$JUNIT_CP:$KOTLIN_TEST_CP:$KOTLIN_STDLIB_CP" \
  org.fieldcast.TestMainKt "${names[@]}"
