//! Starting GStreamer the way each platform wants it, and telling the app how to add a missing
//! element there.
//!
//! - **Linux and other desktops**: the core calls `gst_init` itself ([`gst::init`]); plugins are
//!   loaded from the system's plugin directories (Debian packages), so a missing element names
//!   the Debian package that ships it.
//! - **Android**: GStreamer is one shared library, `libgstreamer_android.so`, linked by ndk-build
//!   from GStreamer's Android binaries with the plugins listed in `GSTREAMER_PLUGINS`. Its Java
//!   side, `org.freedesktop.gstreamer.GStreamer.init(context)`, points GStreamer's cache, registry
//!   and temporary files into the app's directories, routes its logs to logcat, calls `gst_init`
//!   and registers the statically linked plugins. Only the shell can do that (it needs the app's
//!   `Context`), so it must run before the core: `FieldCast.init(context)` of the Android layer
//!   loads `libgstreamer_android.so`, calls `GStreamer.init(context)`, then loads the core. The
//!   core only checks `gst_is_initialized()`: when the shell has not initialised GStreamer, it
//!   refuses with [`Error::NotInitialized`] naming that call, instead of an initialisation
//!   without the app's directories and without any plugin.
//! - **iOS**: GStreamer is a static framework, so no plugin is found by scanning a directory:
//!   each one is registered by `GST_PLUGIN_STATIC_REGISTER(name)` after `gst_init`. That code is
//!   the app's: `gst_ios_init()`, the function of GStreamer's iOS project template
//!   (`gst_ios_init.m`), which FieldCast's Swift package provides in its `FieldCastGStreamer`
//!   target with the plugins the core uses. The Swift shell calls it first
//!   (`FieldCast.initialize()`); when it has not run (an app calling the bindings directly), the
//!   core calls `gst_ios_init()` itself, then [`gst::init`], which only marks GStreamer
//!   initialised for the Rust bindings. The app must link a `gst_ios_init` (the Swift package's,
//!   or its own from the template).
//!
//! On phones a missing element names the GStreamer plugin to add ([`gstreamer_plugin`]): to
//! `GSTREAMER_PLUGINS` of the Android build, or to the plugins `gst_ios_init` registers.

use std::sync::Mutex;

use gstreamer as gst;

use crate::error::{Error, Result};

/// The platform families that start GStreamer differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Platform {
    /// Linux, macOS and other desktops: the core initialises GStreamer.
    Desktop,
    /// Android: the app's shell initialises GStreamer before the core runs.
    Android,
    /// iOS: static plugins registered by the app's `gst_ios_init()`.
    Ios,
}

impl Platform {
    /// The platform this library is built for.
    pub const CURRENT: Platform = if cfg!(target_os = "android") {
        Platform::Android
    } else if cfg!(target_os = "ios") {
        Platform::Ios
    } else {
        Platform::Desktop
    };

    /// True on the phone platforms, where GStreamer and its plugins ship inside the app.
    pub fn is_phone(self) -> bool {
        self != Platform::Desktop
    }
}

/// What the Android app must call before FieldCast uses GStreamer.
pub const ANDROID_INIT_CALL: &str = "FieldCast.init(context) (package org.fieldcast.android), \
     which loads libgstreamer_android.so and runs org.freedesktop.gstreamer.GStreamer.init(context)";

/// How GStreamer gets initialised, given the platform and whether it already is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// `gst_init` here (a no-op when the app already did it).
    Init,
    /// Run the app's `gst_ios_init()` (gst_init + static plugins), then `gst_init`.
    IosGlueThenInit,
    /// Refuse: only the app's shell can initialise GStreamer here.
    RefuseNotInitialized,
}

fn step(platform: Platform, initialized: bool) -> Step {
    match (platform, initialized) {
        (_, true) | (Platform::Desktop, false) => Step::Init,
        (Platform::Android, false) => Step::RefuseNotInitialized,
        (Platform::Ios, false) => Step::IosGlueThenInit,
    }
}

#[cfg(target_os = "ios")]
unsafe extern "C" {
    /// Provided by the app (GStreamer's iOS template `gst_ios_init.m`, or the FieldCast Swift
    /// package's `FieldCastGStreamer` target): sets GStreamer's directories, calls `gst_init` and
    /// registers the statically linked plugins.
    fn gst_ios_init();
}

/// Runs the app's `gst_ios_init()`.
#[cfg(target_os = "ios")]
fn run_ios_glue() {
    // SAFETY: a C function without arguments; the caller holds INIT_LOCK and has seen GStreamer
    // uninitialised, so the static plugins are registered once.
    unsafe { gst_ios_init() }
}

/// Only iOS has app glue to run ([`step`] never asks for it elsewhere).
#[cfg(not(target_os = "ios"))]
fn run_ios_glue() {}

/// True once GStreamer has been initialised in this process, by anyone.
pub fn is_initialized() -> bool {
    // SAFETY: gst_is_initialized only reads a flag; it may be called at any time.
    unsafe { gst::ffi::gst_is_initialized() != 0 }
}

/// Initialises GStreamer for this platform (see the module documentation); idempotent.
pub fn init() -> Result<()> {
    static INIT_LOCK: Mutex<()> = Mutex::new(());
    let _once_at_a_time = INIT_LOCK.lock().unwrap_or_else(|p| p.into_inner());
    match step(Platform::CURRENT, is_initialized()) {
        Step::RefuseNotInitialized => {
            return Err(Error::NotInitialized {
                call: ANDROID_INIT_CALL,
            });
        }
        Step::IosGlueThenInit => run_ios_glue(),
        Step::Init => {}
    }
    gst::init().map_err(|e| Error::Init(e.to_string()))
}

/// The GStreamer plugin that provides an element factory, as the Android build's
/// `GSTREAMER_PLUGINS` and iOS's `GST_PLUGIN_STATIC_REGISTER` name it; `None` when unknown.
pub fn gstreamer_plugin(factory: &str) -> Option<&'static str> {
    let plugin = match factory {
        "clocksync" | "queue" | "queue2" | "tee" | "capsfilter" | "fakesink" | "identity"
        | "filesrc" | "filesink" | "typefind" | "multiqueue" | "valve" => "coreelements",
        "appsrc" | "appsink" => "app",
        "videotestsrc" => "videotestsrc",
        "audiotestsrc" => "audiotestsrc",
        "videoconvert" | "videoscale" | "videoconvertscale" => "videoconvertscale",
        "videorate" => "videorate",
        "audioconvert" => "audioconvert",
        "audioresample" => "audioresample",
        "decodebin" | "decodebin3" | "uridecodebin" | "playbin" => "playback",
        "flvmux" | "flvdemux" => "flv",
        "mp4mux" | "qtmux" | "qtdemux" => "isomp4",
        "splitmuxsink" | "splitmuxsrc" | "multifilesink" => "multifile",
        "aacparse" | "mpegaudioparse" => "audioparsers",
        "h264parse" | "h265parse" => "videoparsersbad",
        "rtmp2sink" | "rtmp2src" => "rtmp2",
        "srtsink" | "srtsrc" => "srt",
        "mpegtsmux" => "mpegtsmux",
        "tsdemux" => "mpegtsdemux",
        "x264enc" => "x264",
        "openh264enc" | "openh264dec" => "openh264",
        "avenc_aac" | "avdec_h264" | "avdec_aac" => "libav",
        "voaacenc" => "voaacenc",
        "fdkaacenc" => "fdkaac",
        "v4l2src" => "video4linux2",
        "pulsesrc" => "pulseaudio",
        "alsasrc" => "alsa",
        "ahcsrc" | "ahc2src" => "androidmedia",
        "openslessrc" => "opensles",
        "avfvideosrc" | "vtenc_h264" | "vtenc_h264_hw" => "applemedia",
        "osxaudiosrc" => "osxaudio",
        "vah264enc" | "vah264lpenc" => "va",
        f if f.starts_with("amcvidenc-") => "androidmedia",
        f if f.starts_with("v4l2") && f.ends_with("h264enc") => "video4linux2",
        f if f.starts_with("nv")
            && !f.starts_with("nvv4l2")
            && f.contains("h264")
            && f.ends_with("enc") =>
        {
            "nvcodec"
        }
        f if f.starts_with("qsvh264") => "qsv",
        _ => return None,
    };
    Some(plugin)
}

/// The Debian package that ships a GStreamer plugin (`None` for plugins Debian does not ship,
/// such as the Android and Apple ones).
pub(crate) fn debian_package_of_plugin(plugin: &str) -> Option<&'static str> {
    Some(match plugin {
        "coreelements" => "libgstreamer1.0-0",
        "app" | "videotestsrc" | "audiotestsrc" | "videoconvertscale" | "videorate"
        | "audioconvert" | "audioresample" | "playback" | "typefindfunctions" | "alsa" => {
            "gstreamer1.0-plugins-base"
        }
        "flv" | "isomp4" | "multifile" | "audioparsers" | "video4linux2" | "pulseaudio" => {
            "gstreamer1.0-plugins-good"
        }
        "x264" => "gstreamer1.0-plugins-ugly",
        "libav" => "gstreamer1.0-libav",
        "videoparsersbad" | "rtmp2" | "srt" | "mpegtsmux" | "mpegtsdemux" | "openh264"
        | "voaacenc" | "fdkaac" | "va" | "nvcodec" | "qsv" => "gstreamer1.0-plugins-bad",
        _ => return None,
    })
}

/// What to do about a missing element on `platform`: the plugin to add on a phone, the Debian
/// package to install on a desktop. Used by [`Error::MissingElement`]'s message.
pub fn install_hint(platform: Platform, plugin: Option<&str>, package: &str) -> String {
    let plugin_named = |p: Option<&str>| match p {
        Some(p) => format!("the GStreamer plugin `{p}`"),
        None => "the GStreamer plugin that provides it".to_string(),
    };
    match platform {
        Platform::Desktop => match plugin {
            Some(p) => format!("install the Debian package `{package}` (GStreamer plugin `{p}`)"),
            None => format!("install the Debian package `{package}`"),
        },
        Platform::Android => format!(
            "add {} to GSTREAMER_PLUGINS of the app's GStreamer build (the ndk-build that links \
             libgstreamer_android.so)",
            plugin_named(plugin)
        ),
        Platform::Ios => format!(
            "register {} in the app's gst_ios_init (GST_PLUGIN_STATIC_REGISTER({})) and link it \
             from GStreamer.framework",
            plugin_named(plugin),
            plugin.unwrap_or("plugin")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_platform_starts_gstreamer_its_own_way() {
        assert_eq!(step(Platform::Desktop, false), Step::Init);
        assert_eq!(step(Platform::Desktop, true), Step::Init);
        assert_eq!(step(Platform::Android, true), Step::Init);
        assert_eq!(step(Platform::Android, false), Step::RefuseNotInitialized);
        assert_eq!(step(Platform::Ios, false), Step::IosGlueThenInit);
        assert_eq!(step(Platform::Ios, true), Step::Init);
        assert_eq!(Platform::CURRENT, Platform::Desktop);
        assert!(Platform::Android.is_phone() && Platform::Ios.is_phone());
        assert!(!Platform::Desktop.is_phone());
    }

    #[test]
    fn init_on_the_desktop_initialises_gstreamer() {
        init().unwrap();
        assert!(is_initialized());
        init().unwrap();
    }

    #[test]
    fn the_android_refusal_names_the_call() {
        let err = Error::NotInitialized {
            call: ANDROID_INIT_CALL,
        };
        let text = err.to_string();
        assert!(text.contains("FieldCast.init(context)"), "{text}");
        assert!(text.contains("GStreamer.init(context)"), "{text}");
    }

    #[test]
    fn elements_map_to_their_plugins() {
        for (factory, plugin) in [
            ("x264enc", "x264"),
            ("rtmp2sink", "rtmp2"),
            ("openh264enc", "openh264"),
            ("avenc_aac", "libav"),
            ("voaacenc", "voaacenc"),
            ("h264parse", "videoparsersbad"),
            ("appsrc", "app"),
            ("appsink", "app"),
            ("queue", "coreelements"),
            ("videoconvert", "videoconvertscale"),
            ("videoscale", "videoconvertscale"),
            ("decodebin", "playback"),
            ("splitmuxsink", "multifile"),
            ("mp4mux", "isomp4"),
            ("flvmux", "flv"),
            ("srtsink", "srt"),
            ("mpegtsmux", "mpegtsmux"),
            ("aacparse", "audioparsers"),
            ("ahcsrc", "androidmedia"),
            ("amcvidenc-omxqcomvideoencoderavc", "androidmedia"),
            ("openslessrc", "opensles"),
            ("avfvideosrc", "applemedia"),
            ("vtenc_h264_hw", "applemedia"),
            ("osxaudiosrc", "osxaudio"),
            ("v4l2h264enc", "video4linux2"),
            ("nvh264enc", "nvcodec"),
            ("vah264enc", "va"),
        ] {
            assert_eq!(gstreamer_plugin(factory), Some(plugin), "{factory}");
        }
        assert_eq!(gstreamer_plugin("no_such_element"), None);
    }

    #[test]
    fn every_plugin_the_phone_builds_list_is_known() {
        // The plugins of android/fieldcast/build.gradle.kts and ios's gst_ios_init.m.
        let phone_plugins = [
            "coreelements",
            "app",
            "videoconvertscale",
            "videorate",
            "videotestsrc",
            "audioconvert",
            "audioresample",
            "audiotestsrc",
            "playback",
            "isomp4",
            "multifile",
            "mpegtsmux",
            "mpegtsdemux",
            "srt",
            "videoparsersbad",
            "audioparsers",
            "openh264",
            "voaacenc",
        ];
        for plugin in phone_plugins {
            assert!(
                debian_package_of_plugin(plugin).is_some(),
                "{plugin} has no Debian package"
            );
        }
        assert_eq!(debian_package_of_plugin("androidmedia"), None);
    }

    #[test]
    fn hints_follow_the_platform() {
        let desktop = install_hint(Platform::Desktop, Some("x264"), "gstreamer1.0-plugins-ugly");
        assert_eq!(
            desktop,
            "install the Debian package `gstreamer1.0-plugins-ugly` (GStreamer plugin `x264`)"
        );
        let android = install_hint(Platform::Android, Some("rtmp2"), "gstreamer1.0-plugins-bad");
        assert!(android.contains("`rtmp2`"), "{android}");
        assert!(android.contains("GSTREAMER_PLUGINS"), "{android}");
        assert!(!android.contains("Debian"), "{android}");
        let ios = install_hint(Platform::Ios, Some("openh264"), "gstreamer1.0-plugins-bad");
        assert!(
            ios.contains("GST_PLUGIN_STATIC_REGISTER(openh264)"),
            "{ios}"
        );
        let unknown = install_hint(Platform::Android, None, "gstreamer1.0-plugins-base");
        assert!(
            unknown.contains("the GStreamer plugin that provides it"),
            "{unknown}"
        );
    }
}
