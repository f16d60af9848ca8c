// swift-tools-version:5.9
// FieldCast for iOS: the Swift shell over the uniffi bindings of the Rust core.
//
// Local, path-based package: `scripts/build-xcframework.sh` writes FieldCastFFI.xcframework next
// to this file and copies the generated bindings into Sources/FieldCast/Generated/ (neither is
// committed). GStreamer comes from its iOS SDK (and, for the macOS tests, its macOS framework),
// linked with flags that SwiftPM allows only in local packages.
import PackageDescription

let home = Context.environment["HOME"] ?? ""
/// The GStreamer iOS SDK: the directory that holds GStreamer.framework.
let gstreamerIOS = Context.environment["GSTREAMER_IOS_SDK"] ?? "\(home)/Library/Developer/GStreamer/iPhone.sdk"
/// The GStreamer macOS framework's parent directory (the tests run on the Mac).
let gstreamerMacOS = Context.environment["GSTREAMER_MACOS_FRAMEWORKS"] ?? "/Library/Frameworks"

/// What GStreamer's static iOS build needs from the system.
let gstreamerIOSLinks: [LinkerSetting] = [
    .unsafeFlags(["-F", gstreamerIOS, "-framework", "GStreamer"], .when(platforms: [.iOS])),
    .linkedLibrary("iconv"),
    .linkedLibrary("resolv"),
    .linkedLibrary("c++"),
    .linkedFramework("AVFoundation"),
    .linkedFramework("AudioToolbox"),
    .linkedFramework("CoreMedia"),
    .linkedFramework("CoreVideo"),
    .linkedFramework("VideoToolbox"),
    .linkedFramework("Security"),
    .linkedFramework("SystemConfiguration"),
]

let package = Package(
    name: "FieldCast",
    platforms: [.iOS(.v15), .macOS(.v13)],
    products: [
        .library(name: "FieldCast", targets: ["FieldCast"]),
    ],
    targets: [
        // The Rust core (static library) with the uniffi C header and module map of FieldCastFFIRust.
        .binaryTarget(name: "FieldCastFFI", path: "FieldCastFFI.xcframework"),
        // gst_ios_init: GStreamer's environment and static plugins, before the core runs.
        .target(
            name: "FieldCastGStreamer",
            cSettings: [
                .unsafeFlags(["-I", "\(gstreamerIOS)/GStreamer.framework/Headers"], .when(platforms: [.iOS])),
                .unsafeFlags(["-I", "\(gstreamerMacOS)/GStreamer.framework/Headers"], .when(platforms: [.macOS])),
            ],
            linkerSettings: gstreamerIOSLinks + [
                .unsafeFlags(["-F", gstreamerMacOS, "-framework", "GStreamer"], .when(platforms: [.macOS])),
            ]
        ),
        // The generated bindings (Generated/FieldCastFFI.swift) and the Swift shell.
        .target(
            name: "FieldCast",
            dependencies: ["FieldCastFFI", "FieldCastGStreamer"],
            linkerSettings: [.linkedFramework("Network")]
        ),
        // Against the real core and a platform sandbox on the Mac (see README.md, "Tests").
        .testTarget(name: "FieldCastTests", dependencies: ["FieldCast"]),
    ]
)
