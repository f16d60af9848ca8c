//! Turning GStreamer bus errors into typed [`Error`]s, by which part of the graph failed.
//! Connection errors never come through here: the uplink has a pipeline of its own.

use gstreamer as gst;
use gstreamer::prelude::*;

use crate::error::Error;

/// The error's message with the last line of its debug text, which usually carries the
/// OS-level reason (e.g. "Connection refused").
pub(crate) fn describe(err: &gst::message::Error) -> String {
    let message = err.error().message().to_string();
    match err
        .debug()
        .and_then(|d| d.lines().last().map(str::to_string))
    {
        Some(reason) if !message.contains(&reason) => format!("{message} ({reason})"),
        _ => message,
    }
}

/// Maps an error of the main pipeline to the error a developer can act on.
pub(crate) fn classify(err: &gst::message::Error) -> Error {
    let path = err
        .src()
        .map(|s| s.path_string().to_string())
        .unwrap_or_default();
    let element = err
        .src()
        .map(|s| s.name().to_string())
        .unwrap_or_else(|| "pipeline".into());
    let message = describe(err);
    if element.starts_with("rec-") {
        Error::Recording(message)
    } else if path.contains(":src-") {
        Error::SourceUnavailable(message)
    } else {
        Error::Pipeline { element, message }
    }
}
