#!/usr/bin/env bash
# Checks that the phone library compiles for the phones:
#   cargo check -p fieldcast-core -p fieldcast-ffi --target T   (warnings are errors)
# for T in aarch64-linux-android, armv7-linux-androideabi (32-bit ARM) and aarch64-apple-ios.
#
# - A missing Rust target is added with `rustup target add`. When it cannot be (no rustup, no
#   network), that target is skipped with "phone check skipped: rust target T cannot be installed
#   (reason)" and the script still succeeds; any compile error fails it.
# - GStreamer: there is no GStreamer for the phones here, and a check links nothing, so the
#   GStreamer -sys crates are told the library names instead of asking pkg-config
#   (system-deps' SYSTEM_DEPS_<NAME>_NO_PKG_CONFIG and SYSTEM_DEPS_<NAME>_LIB, for every
#   system-deps name of the dependency graph).
# - C of dependencies (SQLite of rusqlite's `bundled`, ring's C and assembly, built by their build
#   scripts even for a check): for Android, Debian's clang compiles it for the phone's CPU against
#   Debian's cross glibc headers (the NDK's bionic headers are not here; `make deps` installs
#   clang, llvm and libc6-dev-arm64-cross / libc6-dev-armel-cross), or the compiler set in
#   CC_<target> (e.g. the NDK's). For iOS it needs Xcode's iOS SDK: without it (any Linux), that C
#   is not compiled, and says so: SQLite's bindings come from the same bundled bindings file
#   (LIBSQLITE3_SYS_USE_PKG_CONFIG) and ring's build script is replaced by its link line (a cargo
#   build-script override); every Rust crate is still checked. Android falls back to the same when
#   no C cross compiler is found.
# Builds into target/phone-check (or $CARGO_TARGET_DIR/phone-check). Ends with
# "phone check: compiled for N of M targets (F failed, S skipped)"; exits 1 only when one failed.
set -uo pipefail
cd "$(dirname "$0")/.."

# PHONE_CHECK_TARGETS="aarch64-linux-android" checks fewer targets.
read -ra targets <<<"${PHONE_CHECK_TARGETS:-aarch64-linux-android armv7-linux-androideabi aarch64-apple-ios}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}/phone-check"
export RUSTFLAGS="${RUSTFLAGS:-} -D warnings"

say() { echo "phone check: $*"; }

# True when the active toolchain has the standard library for target $1.
has_target() { [ -d "$(rustc --print sysroot)/lib/rustlib/$1/lib" ]; }

# Adds target $1, or prints why it cannot be added and returns 1.
install_target() {
  local t="$1" out reason
  has_target "$t" && return 0
  if ! command -v rustup >/dev/null 2>&1; then
    echo "phone check skipped: rust target $t cannot be installed (rustup is not installed and the toolchain has no $t standard library)"
    return 1
  fi
  if out=$(rustup target add "$t" 2>&1) && has_target "$t"; then
    say "installed rust target $t"
    return 0
  fi
  reason=$(grep -v '^\s*$' <<<"$out" | tail -n 1)
  echo "phone check skipped: rust target $t cannot be installed (${reason:-rustup target add $t failed})"
  return 1
}

# "KEY NAME" for every system-deps library of the dependency graph on target $1, and
# "links PACKAGE LINKS" for every package with a native `links` key.
graph_facts() {
  cargo metadata --format-version 1 --filter-platform "$1" | python3 -c '
import json, sys
meta = json.load(sys.stdin)
ids = {node["id"] for node in meta["resolve"]["nodes"]}
for package in meta["packages"]:
    if package["id"] not in ids:
        continue
    if package.get("links"):
        print("links", package["name"], package["links"])
    deps = (package.get("metadata") or {}).get("system-deps") or {}
    tables = [deps] + [v for k, v in deps.items() if k.startswith("cfg(") and isinstance(v, dict)]
    for table in tables:
        for key, value in table.items():
            if key.startswith("cfg("):
                continue
            name = value.get("name", key) if isinstance(value, dict) else key
            print(key, name)
'
}

# A clang and the cross glibc headers for Android target $1: "CFLAGS" on stdout, or nothing.
android_c_flags() {
  local sysroot flags
  case "$1" in
    aarch64-linux-android)
      sysroot=/usr/aarch64-linux-gnu
      flags="--target=aarch64-linux-android"
      [ -f "$sysroot/include/stdio.h" ] || return 1
      ;;
    armv7-linux-androideabi)
      # Android's 32-bit ARM ABI passes floats in integer registers (softfp): armel's headers.
      sysroot=/usr/arm-linux-gnueabi
      flags="--target=armv7a-linux-androideabi -mthumb -mfpu=vfpv3-d16 -mfloat-abi=softfp"
      [ -f "$sysroot/include/gnu/stubs-soft.h" ] || return 1
      ;;
    *) return 1 ;;
  esac
  command -v clang >/dev/null 2>&1 && command -v llvm-ar >/dev/null 2>&1 || return 1
  echo "$flags --sysroot=$sysroot"
}

checked=0 skipped=0 failed=0
for t in "${targets[@]}"; do
  if ! install_target "$t"; then
    skipped=$((skipped + 1))
    continue
  fi
  if ! facts=$(graph_facts "$t"); then
    say "$t: cargo metadata failed"
    failed=$((failed + 1))
    continue
  fi
  env_vars=()
  while read -r key name; do
    [ "$key" = links ] && continue
    upper=${key^^}
    upper=${upper//-/_}
    env_vars+=("SYSTEM_DEPS_${upper}_NO_PKG_CONFIG=1" "SYSTEM_DEPS_${upper}_LIB=$name")
  done <<<"$facts"

  t_env=${t//-/_}
  cc_var="CC_$t_env"
  config=()
  c_note=""
  if [ -n "${!cc_var:-}" ]; then
    c_note="C of dependencies compiled by ${!cc_var} (from $cc_var)"
  elif [[ $t == *-apple-ios ]] && xcrun --sdk iphoneos --show-sdk-path >/dev/null 2>&1; then
    c_note="C of dependencies compiled with Xcode's iOS SDK"
  elif [[ $t == *-android* ]] && flags=$(android_c_flags "$t"); then
    env_vars+=("$cc_var=clang" "AR_$t_env=llvm-ar" "CFLAGS_$t_env=$flags")
    c_note="C of SQLite and ring compiled by clang for $t against Debian's cross glibc headers (not the NDK's bionic)"
  else
    if [[ $t == *-apple-ios ]]; then
      why="no Xcode iOS SDK on this machine"
    else
      why="no clang, llvm-ar and cross glibc headers for $t here; make deps installs them"
    fi
    env_vars+=("LIBSQLITE3_SYS_USE_PKG_CONFIG=1")
    while read -r key package links; do
      [ "$key" = links ] && [ "$package" = ring ] || continue
      config+=(--config "target.$t.$links.rustc-link-lib=[\"$links\"]")
    done <<<"$facts"
    c_note="the C of SQLite and ring is not compiled ($why); every Rust crate is checked"
  fi

  if env "${env_vars[@]}" cargo check -q -p fieldcast-core -p fieldcast-ffi --target "$t" "${config[@]}"; then
    say "$t ok ($c_note)"
    checked=$((checked + 1))
  else
    say "$t FAILED to compile ($c_note)"
    failed=$((failed + 1))
  fi
done

say "compiled for $checked of ${#targets[@]} targets ($failed failed, $skipped skipped)"
[ "$failed" -eq 0 ]
