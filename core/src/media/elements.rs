//! Creating GStreamer elements with errors that name the Debian package to install.

use gstreamer as gst;

use crate::error::{Error, Result};

/// The Debian package that ships a GStreamer element factory.
pub fn debian_package(factory: &str) -> &'static str {
    match factory {
        "clocksync" | "queue" | "tee" | "capsfilter" | "fakesink" | "identity" => {
            "libgstreamer1.0-0"
        }
        "x264enc" => "gstreamer1.0-plugins-ugly",
        "avenc_aac" | "avdec_h264" => "gstreamer1.0-libav",
        "flvmux" | "flvdemux" | "mp4mux" | "qtdemux" | "splitmuxsink" | "v4l2src" | "pulsesrc"
        | "aacparse" => "gstreamer1.0-plugins-good",
        "rtmp2sink" | "rtmp2src" | "srtsink" | "srtsrc" | "mpegtsmux" | "tsdemux" | "h264parse"
        | "openh264enc" | "voaacenc" | "vah264enc" => "gstreamer1.0-plugins-bad",
        // videotestsrc, audiotestsrc, appsrc, appsink, videoconvert, videoscale, videorate,
        // audioconvert, audioresample, decodebin, filesrc's siblings, alsasrc...
        _ => "gstreamer1.0-plugins-base",
    }
}

/// True when the element factory is installed.
pub fn is_available(factory: &str) -> bool {
    gst::ElementFactory::find(factory).is_some()
}

/// Creates an element, or [`Error::MissingElement`] naming the package that provides it.
pub fn make(factory: &str, name: &str) -> Result<gst::Element> {
    if !is_available(factory) {
        return Err(missing(factory));
    }
    gst::ElementFactory::make(factory)
        .name(name)
        .build()
        .map_err(|e| Error::Pipeline {
            element: name.to_string(),
            message: format!("could not create `{factory}`: {e}"),
        })
}

/// The error for a factory that is not installed.
pub fn missing(factory: &str) -> Error {
    Error::MissingElement {
        element: factory.to_string(),
        package: debian_package(factory).to_string(),
    }
}

/// Initialises GStreamer once per process.
pub fn init() -> Result<()> {
    gst::init().map_err(|e| Error::Init(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_elements_name_their_package() {
        init().unwrap();
        let err = make("x264enc_not_installed", "enc").unwrap_err();
        assert!(matches!(err, Error::MissingElement { .. }));
        assert!(
            err.to_string().contains("gstreamer1.0-plugins-base"),
            "{err}"
        );
        assert_eq!(debian_package("x264enc"), "gstreamer1.0-plugins-ugly");
        assert_eq!(debian_package("avenc_aac"), "gstreamer1.0-libav");
        assert_eq!(debian_package("rtmp2sink"), "gstreamer1.0-plugins-bad");
    }
}
