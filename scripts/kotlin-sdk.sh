#!/usr/bin/env bash
# Builds fieldcast-ffi, generates its Kotlin bindings and compiles them with the Kotlin SDK layer
# (android/fieldcast/src/sdk) into target/kotlin/sdk, for the JVM tests, the Android check and the
# push bench. Installs the Kotlin toolchain first when it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/kotlin-env.sh

bash scripts/bindings.sh kotlin
rm -rf target/kotlin/sdk
mkdir -p target/kotlin/sdk
echo "kotlinc: bindings + SDK layer -> target/kotlin/sdk"
"$KOTLINC" -nowarn -d target/kotlin/sdk -cp "$JNA_JAR:$COROUTINES_CP" \
  target/bindings/kotlin/org/fieldcast/ffi/fieldcast_ffi.kt android/fieldcast/src/sdk/kotlin/org/fieldcast/*.kt
