#!/usr/bin/env bash
# Builds what the Swift package FieldCast (ios/Package.swift) links, on macOS with Xcode:
#   1. the Rust core as a static library for aarch64-apple-ios (devices), aarch64-apple-ios-sim and
#      x86_64-apple-ios (simulators, joined with lipo) and, for `swift test` on the Mac,
#      aarch64-apple-darwin and x86_64-apple-darwin (joined with lipo);
#   2. the uniffi Swift bindings: FieldCastFFI.swift into Sources/FieldCast/Generated/, and the C
#      header with its module map nested as Headers/FieldCastFFIRust/ (so that it cannot clash with
#      another uniffi library's module.modulemap in the same app);
#   3. FieldCastFFI.xcframework (xcodebuild -create-xcframework) next to Package.swift.
# GStreamer: the core's GStreamer crates link against GStreamer.framework of the GStreamer iOS SDK
# (GSTREAMER_IOS_SDK, default ~/Library/Developer/GStreamer/iPhone.sdk) and of the macOS framework
# (GSTREAMER_MACOS_FRAMEWORKS, default /Library/Frameworks); the app links the same framework
# (Package.swift) and FieldCast calls gst_ios_init before the core. Needs: Xcode, rustup, the two
# GStreamer frameworks. Options: --ios-only skips the macOS slice (and so `swift test`).
set -euo pipefail
ios_dir="$(cd "$(dirname "$0")/.." && pwd)"
repo="$(cd "$ios_dir/.." && pwd)"
gst_ios="${GSTREAMER_IOS_SDK:-$HOME/Library/Developer/GStreamer/iPhone.sdk}/GStreamer.framework"
gst_macos="${GSTREAMER_MACOS_FRAMEWORKS:-/Library/Frameworks}/GStreamer.framework"
build="$ios_dir/build"
with_macos=1
[ "${1:-}" = "--ios-only" ] && with_macos=0

[ "$(uname)" = Darwin ] || { echo "build-xcframework.sh runs on macOS (Xcode, lipo, xcodebuild)" >&2; exit 1; }
[ -d "$gst_ios" ] || { echo "no GStreamer iOS SDK at $gst_ios (set GSTREAMER_IOS_SDK)" >&2; exit 1; }

ios_targets=(aarch64-apple-ios aarch64-apple-ios-sim x86_64-apple-ios)
macos_targets=(aarch64-apple-darwin x86_64-apple-darwin)
targets=("${ios_targets[@]}")
[ "$with_macos" = 1 ] && targets+=("${macos_targets[@]}")
rustup target add "${targets[@]}"

# The GStreamer crates find their libraries through system-deps: point them at the framework
# instead of pkg-config (the framework's single binary holds GLib, GStreamer and the plugins).
gstreamer_env() {
  local framework="$1"
  for dep in GLIB_2_0 GOBJECT_2_0 GIO_2_0 GSTREAMER_1_0 GSTREAMER_BASE_1_0 GSTREAMER_APP_1_0 GSTREAMER_VIDEO_1_0; do
    export "SYSTEM_DEPS_${dep}_NO_PKG_CONFIG=1"
    export "SYSTEM_DEPS_${dep}_LIB_FRAMEWORK=GStreamer"
    export "SYSTEM_DEPS_${dep}_SEARCH_FRAMEWORK=$(dirname "$framework")"
    export "SYSTEM_DEPS_${dep}_INCLUDE=$framework/Headers"
  done
}

cd "$repo"
for target in "${targets[@]}"; do
  case "$target" in *-apple-darwin) gstreamer_env "$gst_macos" ;; *) gstreamer_env "$gst_ios" ;; esac
  echo "cargo: fieldcast-ffi for $target"
  cargo build --release --lib -p fieldcast-ffi --target "$target"
done

rm -rf "$build" && mkdir -p "$build/headers/FieldCastFFIRust" "$build/ios-sim" "$build/macos"
lib=libfieldcast_ffi.a
lipo -create target/aarch64-apple-ios-sim/release/$lib target/x86_64-apple-ios/release/$lib -output "$build/ios-sim/$lib"
if [ "$with_macos" = 1 ]; then
  lipo -create target/aarch64-apple-darwin/release/$lib target/x86_64-apple-darwin/release/$lib -output "$build/macos/$lib"
fi

# Bindings from the device library (uniffi reads its metadata; the same for every target).
cargo build -q -p fieldcast-bindgen
./target/debug/uniffi-bindgen generate --library target/aarch64-apple-ios/release/$lib \
  --language swift --out-dir "$build/bindings"
mkdir -p "$ios_dir/Sources/FieldCast/Generated"
cp "$build/bindings/FieldCastFFI.swift" "$ios_dir/Sources/FieldCast/Generated/"
cp "$build/bindings/FieldCastFFIRust.h" "$build/headers/FieldCastFFIRust/"
# The module map under its own directory, named as clang looks for it in an xcframework's headers.
cp "$build/bindings/FieldCastFFIRust.modulemap" "$build/headers/FieldCastFFIRust/module.modulemap"

slices=(-library "target/aarch64-apple-ios/release/$lib" -headers "$build/headers"
  -library "$build/ios-sim/$lib" -headers "$build/headers")
[ "$with_macos" = 1 ] && slices+=(-library "$build/macos/$lib" -headers "$build/headers")
rm -rf "$ios_dir/FieldCastFFI.xcframework"
xcodebuild -create-xcframework "${slices[@]}" -output "$ios_dir/FieldCastFFI.xcframework"
echo "built $ios_dir/FieldCastFFI.xcframework and Sources/FieldCast/Generated/FieldCastFFI.swift"
