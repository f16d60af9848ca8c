//! Turning GStreamer bus errors into typed [`Error`]s, by which part of the graph failed.

use gstreamer as gst;
use gstreamer::prelude::*;

use crate::error::Error;
use crate::events::SessionState;
use crate::uplink::target::IngestTarget;

/// Maps an error message to the error a developer can act on.
pub(crate) fn classify(
    err: &gst::message::Error,
    state: SessionState,
    target: &IngestTarget,
) -> Error {
    let path = err
        .src()
        .map(|s| s.path_string().to_string())
        .unwrap_or_default();
    let element = err
        .src()
        .map(|s| s.name().to_string())
        .unwrap_or_else(|| "pipeline".into());
    let mut message = err.error().message().to_string();
    if let Some(debug) = err.debug() {
        // The last line of the debug text usually carries the OS-level reason.
        if let Some(reason) = debug.lines().last().filter(|l| !message.contains(*l)) {
            message = format!("{message} ({reason})");
        }
    }
    if element.starts_with("live-") {
        let url = target.display_url().to_string();
        if state == SessionState::Connecting {
            Error::IngestUnreachable {
                url,
                reason: message,
            }
        } else {
            Error::IngestDisconnected {
                url,
                reason: message,
            }
        }
    } else if element.starts_with("rec-") {
        Error::Recording(message)
    } else if path.contains(":src-") {
        Error::SourceUnavailable(message)
    } else {
        Error::Pipeline { element, message }
    }
}
