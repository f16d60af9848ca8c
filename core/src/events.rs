//! Session states, live statistics and the events delivered to subscribers.

use std::time::Duration;

use tokio::sync::broadcast;

use crate::error::Error;
use crate::uplink::abr::AbrDecision;

/// Where a live session is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SessionState {
    /// Built, not started.
    Idle,
    /// Pipeline running, waiting for the ingest to accept media.
    Connecting,
    /// Media is reaching the ingest.
    Live,
    /// The connection broke while live; capture, encoding and recording go on while the uplink
    /// reconnects by itself.
    Reconnecting,
    /// Stop requested: draining (end-of-stream) so the ingest and recording close cleanly.
    Ending,
    /// Stopped cleanly.
    Ended,
    /// Stopped by an error (see the preceding [`SessionEvent::Error`]).
    Failed,
}

impl SessionState {
    /// True while media is captured and encoded: `Connecting`, `Live` or `Reconnecting`.
    pub fn is_running(self) -> bool {
        matches!(
            self,
            SessionState::Connecting | SessionState::Live | SessionState::Reconnecting
        )
    }

    /// True for `Ended` and `Failed`, after which nothing changes.
    pub fn is_terminal(self) -> bool {
        matches!(self, SessionState::Ended | SessionState::Failed)
    }
}

/// Statistics of the last second, emitted once per second while the pipeline runs.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct LiveStats {
    /// Time since the session started.
    pub uptime: Duration,
    /// Frames per second entering the pipeline from the source.
    pub input_fps: f64,
    /// Frames per second leaving the video encoder.
    pub output_fps: f64,
    /// Encoded video bitrate, kbit/s.
    pub video_kbps: f64,
    /// Encoded audio bitrate, kbit/s.
    pub audio_kbps: f64,
    /// Bytes written to the ingest since the start, over all connections.
    pub bytes_sent: u64,
    /// Frames dropped since the start (app queue full, rate adaptation, whole GOPs dropped when
    /// the send window was full).
    pub dropped_frames: u64,
    /// Frames encoded since the start.
    pub frames_encoded: u64,
    /// Video bitrate the live encoder is asked for now, kbit/s (the adaptive bitrate's choice).
    pub target_video_kbps: u32,
    /// Size of the live video now (its rung), in pixels.
    pub width: u32,
    /// Height of the live video now.
    pub height: u32,
    /// Frame rate of the live video now.
    pub fps: u32,
    /// True while the live stream carries audio only (the link cannot carry the lowest rung).
    pub audio_only: bool,
    /// Media waiting to be sent (the send window's span).
    pub send_queue: Duration,
    /// The uplink's capacity as the adaptive bitrate estimates it from TCP's delivery samples,
    /// kbit/s of payload; 0 when unknown (adaptive bitrate off, a platform without `TCP_INFO`,
    /// SRT, or just after a congestion).
    pub link_kbps: u32,
    /// Video encoders at work: 1, or 2 while a recording runs an encoder of its own because the
    /// adaptive bitrate holds the live stream below full quality.
    pub video_encoders: u32,
}

/// Something that happened in a session.
#[derive(Debug, Clone, PartialEq)]
pub enum SessionEvent {
    /// The state changed.
    StateChanged {
        from: SessionState,
        to: SessionState,
    },
    /// The statistics of the last second.
    Stats(LiveStats),
    /// An error; fatal ones are followed by `StateChanged { to: Failed }`.
    Error(Error),
    /// The adaptive bitrate changed the live stream (bitrate, rung, frame rate or audio only),
    /// with its reason.
    Adapted(AbrDecision),
    /// The live encoder cannot take a new bitrate while it runs, so the adaptive bitrate follows
    /// the uplink by resolution rung instead: the rung whose default bitrate fits the bitrate asked
    /// for (a rung change renegotiates the encoder). Sent once, the first time a bitrate change
    /// could not reach the encoder; the `Adapted` events that follow name the rungs.
    EncoderBitrateFixed {
        /// The encoder's element factory, e.g. `amcvidenc-omxqcomvideoencoderavc`.
        encoder: String,
        /// Why it cannot follow.
        reason: FixedBitrate,
    },
    /// The recording follows the live rendition from now on, so while the adaptive bitrate
    /// holds the live stream below full quality, the replay is at live quality too: the device
    /// runs one video encoder at a time ([`crate::SessionConfig::one_video_encoder`]), or the
    /// recording's own encoder failed (a device may refuse a second hardware encoder). Sent once.
    ReplayAtLiveQuality {
        /// Why, for a log or a developer.
        reason: String,
    },
}

/// Why a live encoder cannot take a new bitrate while it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FixedBitrate {
    /// It takes a bitrate only when it is configured: each rung change carries the rung's bitrate.
    OnRenegotiation,
    /// It has no bitrate property FieldCast can set: only the smaller rung lowers its bitrate.
    NoProperty,
}

/// Capacity of the event channel; a subscriber further behind than this loses the oldest events.
const EVENT_CAPACITY: usize = 256;

/// Fan-out of events to any number of subscribers; sending never blocks and never holds a lock.
#[derive(Debug, Clone)]
pub(crate) struct EventHub {
    tx: broadcast::Sender<SessionEvent>,
}

impl EventHub {
    pub fn new() -> Self {
        let (tx, _) = broadcast::channel(EVENT_CAPACITY);
        EventHub { tx }
    }

    pub fn emit(&self, event: SessionEvent) {
        // No subscriber is not an error: events are informational.
        let _ = self.tx.send(event);
    }

    pub fn subscribe(&self) -> broadcast::Receiver<SessionEvent> {
        self.tx.subscribe()
    }
}
