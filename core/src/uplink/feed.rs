//! The feed: the media graph's encoded video and audio, in the bounded send window that the
//! uplink drains. Taking media never blocks the encoder; each new buffer wakes the uplink.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use gstreamer as gst;

use super::send_window::{Packet, PacketKind, SendWindow};
use super::waker::Waker;
use crate::media::encoded::{Encoded, EncodedOutput, KeyframeRequest, Track};

/// What the window holds and what is known about the streams.
pub(crate) struct FeedState {
    pub window: SendWindow<Encoded>,
    /// The latest caps of each stream, for opening a connection.
    pub video_caps: Option<gst::Caps>,
    pub audio_caps: Option<gst::Caps>,
    /// Both streams reached end-of-stream.
    pub ended: bool,
    ended_tracks: u8,
}

/// Shared between the appsink callbacks (producers) and the uplink thread (consumer).
pub(crate) struct Feed {
    state: Mutex<FeedState>,
    /// Wakes the uplink thread: new media, an end, a change it must act on.
    pub waker: Arc<Waker>,
    keyframes: Mutex<Option<KeyframeRequest>>,
    /// Video frames dropped by the window (whole GOPs), lost with failed connections, or left
    /// out while the live stream carries audio only, since the start.
    pub dropped_video: AtomicU64,
    /// Times the window overflowed and dropped a GOP, since the start.
    pub dropped_gops: AtomicU64,
    /// The live stream carries audio only: video is left out of the window.
    audio_only: AtomicBool,
}

impl Feed {
    /// An empty feed holding at most `capacity` of media.
    pub fn new(capacity: Duration) -> std::io::Result<Arc<Self>> {
        Ok(Arc::new(Feed {
            state: Mutex::new(FeedState {
                window: SendWindow::new(capacity),
                video_caps: None,
                audio_caps: None,
                ended: false,
                ended_tracks: 0,
            }),
            waker: Arc::new(Waker::new()?),
            keyframes: Mutex::new(None),
            dropped_video: AtomicU64::new(0),
            dropped_gops: AtomicU64::new(0),
            audio_only: AtomicBool::new(false),
        }))
    }

    /// The state, locked.
    pub fn lock(&self) -> MutexGuard<'_, FeedState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Asks the encoder for a keyframe (after drops, and for a new connection).
    pub fn request_keyframe(&self) {
        let keyframes = self
            .keyframes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if let Some(keyframes) = keyframes {
            keyframes.request();
        }
    }

    /// Prepares the window for a connection about to take media (see
    /// [`SendWindow::start_connection`]), counting the dropped frames and asking the encoder for
    /// a keyframe when none is waiting.
    pub fn start_connection(&self) {
        let expect_video = !self.audio_only.load(Ordering::Acquire);
        let (dropped, holding) = {
            let mut state = self.lock();
            let dropped = state.window.start_connection(expect_video);
            (dropped, state.window.holding())
        };
        self.count_lost(dropped as u64);
        if holding {
            self.request_keyframe();
        }
    }

    /// Switches the live stream to audio only (`true`: waiting video is dropped, new video left
    /// out) or back to audio and video, which resumes at a keyframe asked for now.
    pub fn set_audio_only(&self, on: bool) {
        if self.audio_only.swap(on, Ordering::AcqRel) == on {
            return;
        }
        if on {
            let dropped = self.lock().window.drop_video();
            self.count_lost(dropped as u64);
        } else {
            self.request_keyframe();
        }
    }

    /// Drops the video waiting in the window and asks for a keyframe to resume at: after the
    /// link collapsed, media encoded for the old bitrate would take seconds to drain, and every
    /// frame behind it would wait as long. Audio stays. Returns the number of frames dropped.
    pub fn skip_backlog(&self) -> usize {
        let dropped = self.lock().window.skip_video();
        self.count_lost(dropped as u64);
        if !self.audio_only.load(Ordering::Acquire) {
            self.request_keyframe();
        }
        dropped
    }

    /// Counts video frames lost on the way (a failed connection, audio-only mode).
    pub fn count_lost(&self, frames: u64) {
        self.dropped_video.fetch_add(frames, Ordering::Relaxed);
    }

    fn push(&self, track: Track, media: Encoded) {
        let Encoded { buffer, caps } = media;
        let Some(pts) = buffer.pts() else {
            return;
        };
        if track == Track::Video && self.audio_only.load(Ordering::Acquire) {
            self.count_lost(1);
            return;
        }
        let kind = match track {
            Track::Video => PacketKind::Video {
                keyframe: !buffer.flags().contains(gst::BufferFlags::DELTA_UNIT),
            },
            Track::Audio => PacketKind::Audio,
        };
        let packet = Packet {
            kind,
            pts: Duration::from_nanos(pts.nseconds()),
            size: buffer.size(),
            payload: Encoded {
                buffer,
                caps: caps.clone(),
            },
        };
        let result = {
            let mut state = self.lock();
            let latest = match track {
                Track::Video => &mut state.video_caps,
                Track::Audio => &mut state.audio_caps,
            };
            if latest.as_ref() != Some(&caps) {
                *latest = Some(caps);
            }
            state.window.push(packet)
        };
        self.waker.wake();
        if result.dropped_video > 0 {
            self.count_lost(result.dropped_video as u64);
        }
        if result.dropped_gops > 0 {
            self.dropped_gops
                .fetch_add(result.dropped_gops as u64, Ordering::Relaxed);
        }
        if result.request_keyframe {
            self.request_keyframe();
        }
    }

    fn finish_track(&self) {
        {
            let mut state = self.lock();
            state.ended_tracks += 1;
            state.ended = state.ended_tracks >= 2;
        }
        self.waker.wake();
    }
}

impl EncodedOutput for Feed {
    fn take(&self, track: Track, media: Encoded) {
        self.push(track, media);
    }

    fn end(&self, _track: Track) {
        self.finish_track();
    }

    fn attach(&self, keyframes: KeyframeRequest) {
        *self.keyframes.lock().unwrap_or_else(|p| p.into_inner()) = Some(keyframes);
    }
}
