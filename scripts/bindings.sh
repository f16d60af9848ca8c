#!/usr/bin/env bash
# Builds fieldcast-ffi (debug, unstripped: uniffi reads the library's symbol table) and generates
# its bindings in library mode with the uniffi-bindgen of the same uniffi version:
# target/bindings/kotlin (package org.fieldcast.ffi) and target/bindings/swift. Arguments: the
# languages (default: kotlin swift). Generated code is not committed.
set -euo pipefail
cd "$(dirname "$0")/.."
languages=("${@:-kotlin swift}")
cargo build -q -p fieldcast-ffi -p fieldcast-bindgen
for lang in ${languages[*]}; do
  rm -rf "target/bindings/$lang"
  ./target/debug/uniffi-bindgen generate --library target/debug/libfieldcast_ffi.so \
    --language "$lang" --out-dir "target/bindings/$lang" --no-format >/dev/null
  echo "bindings: target/bindings/$lang"
done
