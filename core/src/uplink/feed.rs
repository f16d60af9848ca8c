//! The feed: the main pipeline's encoded video and audio, taken off the tees by appsinks into
//! the bounded send window that the uplink drains. Taking media never blocks the encoder.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use gstreamer_video as gst_video;

use super::connection::Track;
use super::send_window::{Packet, PacketKind, SendWindow};
use crate::error::Result;
use crate::media::elements::make;
use crate::media::sources::link_err;

/// An encoded buffer and the caps it was produced under (a rung change changes them).
pub(crate) struct Encoded {
    pub buffer: gst::Buffer,
    pub caps: gst::Caps,
}

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
    changed: Condvar,
    video_tap: Mutex<Option<gst::glib::WeakRef<gst::Element>>>,
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
    pub fn new(capacity: Duration) -> Arc<Self> {
        Arc::new(Feed {
            state: Mutex::new(FeedState {
                window: SendWindow::new(capacity),
                video_caps: None,
                audio_caps: None,
                ended: false,
                ended_tracks: 0,
            }),
            changed: Condvar::new(),
            video_tap: Mutex::new(None),
            dropped_video: AtomicU64::new(0),
            dropped_gops: AtomicU64::new(0),
            audio_only: AtomicBool::new(false),
        })
    }

    /// The state, locked.
    pub fn lock(&self) -> MutexGuard<'_, FeedState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits (at most `limit`) for new media or an end.
    pub fn wait<'a>(
        &self,
        guard: MutexGuard<'a, FeedState>,
        limit: Duration,
    ) -> MutexGuard<'a, FeedState> {
        self.changed
            .wait_timeout(guard, limit)
            .unwrap_or_else(|p| p.into_inner())
            .0
    }

    /// Asks the encoder for a keyframe (after drops, and for a new connection).
    pub fn request_keyframe(&self) {
        let tap = self
            .video_tap
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .and_then(|w| w.upgrade());
        if let Some(pad) = tap.and_then(|t| t.static_pad("sink")) {
            let event = gst_video::UpstreamForceKeyUnitEvent::builder()
                .all_headers(true)
                .build();
            pad.push_event(event);
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

    fn take(&self, track: Track, sample: &gst::Sample) {
        let Some(mut buffer) = sample.buffer_owned() else {
            return;
        };
        // Timestamps leave in running time: the uplink's pipeline has its own segments, and the
        // encoders' segments do not start at zero (x264 offsets by 1000 h).
        let segment = sample
            .segment()
            .and_then(|s| s.downcast_ref::<gst::format::Time>());
        let running =
            |t: Option<gst::ClockTime>| t.and_then(|t| segment.and_then(|s| s.to_running_time(t)));
        let (Some(pts), dts) = (running(buffer.pts()), running(buffer.dts())) else {
            return;
        };
        {
            let b = buffer.make_mut();
            b.set_pts(pts);
            b.set_dts(dts);
        }
        let Some(caps) = sample.caps_owned() else {
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
        self.changed.notify_all();
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

    fn end(&self) {
        {
            let mut state = self.lock();
            state.ended_tracks += 1;
            state.ended = state.ended_tracks >= 2;
        }
        self.changed.notify_all();
    }
}

/// Adds the two appsinks that feed `feed` from the encoded tees.
pub(crate) fn add_taps(
    pipeline: &gst::Pipeline,
    video_tee: &gst::Element,
    audio_tee: &gst::Element,
    feed: &Arc<Feed>,
) -> Result<()> {
    for (track, tee) in [(Track::Video, video_tee), (Track::Audio, audio_tee)] {
        let name = match track {
            Track::Video => "live-video",
            Track::Audio => "live-audio",
        };
        let sink = make("appsink", &format!("{name}-tap"))?
            .downcast::<gst_app::AppSink>()
            .expect("appsink is an AppSink");
        sink.set_property("sync", false);
        sink.set_property("async", false);
        // No queue: the callback only moves the buffer into the window, so the encoder's
        // thread can run it without waiting on anything.
        pipeline.add(&sink).map_err(link_err)?;
        tee.link(&sink).map_err(link_err)?;
        let (on_sample, on_eos) = (feed.clone(), feed.clone());
        sink.set_callbacks(
            gst_app::AppSinkCallbacks::builder()
                .new_sample(move |sink| {
                    let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                    on_sample.take(track, &sample);
                    Ok(gst::FlowSuccess::Ok)
                })
                .eos(move |_| on_eos.end())
                .build(),
        );
        if track == Track::Video {
            let weak = sink.upcast_ref::<gst::Element>().downgrade();
            *feed.video_tap.lock().unwrap_or_else(|p| p.into_inner()) = Some(weak);
        }
    }
    Ok(())
}
