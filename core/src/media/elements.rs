//! Creating GStreamer elements with errors that say how to get a missing one: the GStreamer
//! plugin to add to the app's build on a phone, the Debian package to install on a desktop (see
//! [`super::platform`]).

use gstreamer as gst;

use super::platform::{self, gstreamer_plugin};
use crate::error::{Error, Result};

/// The Debian package that ships a GStreamer element factory (`gstreamer1.0-plugins-base` for a
/// factory FieldCast does not know).
pub fn debian_package(factory: &str) -> &'static str {
    gstreamer_plugin(factory)
        .and_then(platform::debian_package_of_plugin)
        .unwrap_or("gstreamer1.0-plugins-base")
}

/// True when the element factory is installed.
pub fn is_available(factory: &str) -> bool {
    gst::ElementFactory::find(factory).is_some()
}

/// Creates an element, or [`Error::MissingElement`] naming the plugin and package that provide it.
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
        plugin: gstreamer_plugin(factory).map(str::to_string),
        package: debian_package(factory).to_string(),
    }
}

/// Initialises GStreamer once per process, as the platform wants it (see [`super::platform`]).
pub fn init() -> Result<()> {
    platform::init()
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
        assert_eq!(debian_package("alsasrc"), "gstreamer1.0-plugins-base");
        assert_eq!(debian_package("pulsesrc"), "gstreamer1.0-plugins-good");
        assert_eq!(debian_package("queue"), "libgstreamer1.0-0");
        let err = missing("x264enc");
        assert_eq!(
            err,
            Error::MissingElement {
                element: "x264enc".into(),
                plugin: Some("x264".into()),
                package: "gstreamer1.0-plugins-ugly".into(),
            }
        );
        assert!(
            err.to_string()
                .contains("install the Debian package `gstreamer1.0-plugins-ugly`"),
            "{err}"
        );
    }
}
