#!/usr/bin/env bash
# Installs what FieldCast needs on Debian 12 and is missing; safe to run again.
set -euo pipefail

packages=(
  pkg-config build-essential
  libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev libgstreamer-plugins-bad1.0-dev
  gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad
  gstreamer1.0-plugins-ugly gstreamer1.0-libav gstreamer1.0-tools
  nginx libnginx-mod-rtmp ffmpeg srt-tools time python3
  iproute2 nftables
  # the TLS front of the rtmps:// tests
  stunnel4
  # the phone check (scripts/phone-check.sh): C of SQLite and ring compiled for Android's CPUs
  clang llvm libc6-dev-arm64-cross libc6-dev-armel-cross
  chromium chromium-driver
  # the power-cut test's filesystem (FUSE) and the clock-skew test's phone clock
  fuse3 faketime
  # the text of the QA plots (tests/src/plot.rs)
  fonts-dejavu-core
)
# npm for the viewer page's player (hls.js); a Node.js from elsewhere that brings npm will do.
command -v npm >/dev/null 2>&1 || packages+=(nodejs npm)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# hls.js for the sandbox's viewer page, at the version package-lock.json pins.
viewer="$(cd "$(dirname "$0")/../sandbox/viewer" && pwd)"
locked_version() { node -p "require('$1').packages['node_modules/hls.js'].version" 2>/dev/null; }
if [ "$(locked_version "$viewer/node_modules/.package-lock.json")" != "$(locked_version "$viewer/package-lock.json")" ]; then
  echo "installing hls.js for the viewer page (npm ci in sandbox/viewer)"
  npm ci --prefix "$viewer" --no-audit --no-fund --loglevel=error
fi

# Debian's nginx package starts a system nginx on port 80; FieldCast never uses it.
if ! command -v cargo >/dev/null 2>&1; then
  echo "cargo is missing: install the Rust toolchain (https://rustup.rs), 1.95 or newer" >&2
  exit 1
fi

# The phones' Rust targets for the phone check; without them (no rustup, no network) it skips them.
phone_targets=(aarch64-linux-android armv7-linux-androideabi aarch64-apple-ios)
sysroot="$(rustc --print sysroot)"
missing_targets=()
for t in "${phone_targets[@]}"; do
  [ -d "$sysroot/lib/rustlib/$t/lib" ] || missing_targets+=("$t")
done
if [ ${#missing_targets[@]} -gt 0 ]; then
  if ! command -v rustup >/dev/null 2>&1; then
    echo "note: rustup is missing; the phone check skips ${missing_targets[*]}"
  elif ! out=$(rustup target add "${missing_targets[@]}" 2>&1); then
    echo "note: could not add the Rust targets ${missing_targets[*]} ($(grep -v '^\s*$' <<<"$out" | tail -n 1)); the phone check skips them"
  else
    echo "added the Rust targets ${missing_targets[*]}"
  fi
fi
