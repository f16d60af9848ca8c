//! Timed data in the video: SEI messages inserted into the encoded H.264 before the tee (so the
//! live stream and the recording both carry them), stamped with the stream time of their frame.

use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use gstreamer as gst;
use gstreamer::prelude::*;

use super::sei;
use crate::error::{Error, Result};

/// Keyframes after the first insertion that carry a message again (SEI is lost with dropped frames).
pub const REPEAT_ON_KEYFRAMES: u32 = 3;

#[derive(Default)]
struct State {
    /// Running time (ns) of this encoding's last frame.
    last: Option<u64>,
    length_size: Option<usize>,
    /// Messages waiting for the first frame at or after their stream time (ms).
    pending: Vec<(u64, Arc<[u8]>)>,
    repeats: Vec<(Arc<[u8]>, u32)>,
}

/// Schedules SEI messages into the next encoded frames of one or more encodings of the same
/// video (the live stream, and the recording's own encoder, which may start later); shared with
/// the pad probes. Stream time is milliseconds since the first encoded frame of any encoding,
/// counted in running time, so it is the same in every encoding.
pub(crate) struct StreamTagger {
    streams: Vec<Mutex<State>>,
    /// Running time (ns) of the first encoded frame.
    origin: OnceLock<u64>,
    frame_ns: u64,
}

impl StreamTagger {
    /// Installs the tagger on each element's src pad, which carries AVC access units.
    pub fn install(elements: &[&gst::Element], fps: u32) -> Arc<Self> {
        let tagger = Arc::new(StreamTagger {
            streams: elements.iter().map(|_| Mutex::default()).collect(),
            origin: OnceLock::new(),
            frame_ns: 1_000_000_000 / fps.max(1) as u64,
        });
        for (index, element) in elements.iter().enumerate() {
            let pad = element.static_pad("src").expect("capsfilter has a src pad");
            let probe_tagger = tagger.clone();
            pad.add_probe(gst::PadProbeType::BUFFER, move |pad, info| {
                if let Some(gst::PadProbeData::Buffer(buffer)) = &mut info.data {
                    probe_tagger.on_buffer(index, pad, buffer);
                }
                gst::PadProbeReturn::Ok
            });
        }
        tagger
    }

    fn lock(&self, stream: usize) -> MutexGuard<'_, State> {
        self.streams[stream]
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// The stream time of the frame after this encoding's last one.
    fn next_ms(&self, state: &State) -> u64 {
        match (self.origin.get(), state.last) {
            (Some(origin), Some(last)) => {
                (last + self.frame_ns).saturating_sub(*origin) / 1_000_000
            }
            _ => 0,
        }
    }

    /// Builds a message for the stream time of the next frame and schedules it there (and on the
    /// next keyframes); returns that stream time. Time and scheduling are one step, so the message
    /// lands in the frame whose time it carries.
    pub fn schedule(&self, build: impl FnOnce(u64) -> Vec<u8>) -> Result<u64> {
        let mut first = self.lock(0);
        let at = self.next_ms(&first);
        let json = build(at);
        Self::push(&mut first, at, &json)?;
        drop(first);
        for stream in 1..self.streams.len() {
            Self::push(&mut self.lock(stream), at, &json)?;
        }
        Ok(at)
    }

    /// The stream time of the first frame at least `lead_ms` after the next one: a time that a
    /// message can be prepared for (e.g. stored first) and still land in exactly that frame.
    pub fn plan_ms(&self, lead_ms: u64) -> u64 {
        let state = self.lock(0);
        let frames = lead_ms.saturating_mul(1_000_000).div_ceil(self.frame_ns);
        self.next_ms(&state) + frames * self.frame_ns / 1_000_000
    }

    /// Schedules `json` into the first frame whose stream time is `at_ms` or later.
    pub fn schedule_at(&self, at_ms: u64, json: &[u8]) -> Result<()> {
        (0..self.streams.len()).try_for_each(|i| Self::push(&mut self.lock(i), at_ms, json))
    }

    fn push(state: &mut State, at_ms: u64, json: &[u8]) -> Result<()> {
        if json.len() > sei::MAX_JSON {
            return Err(Error::InvalidConfig(format!(
                "an in-stream message is {} bytes; at most {} fit in one SEI",
                json.len(),
                sei::MAX_JSON
            )));
        }
        state.pending.push((at_ms, sei::build_nal(json).into()));
        Ok(())
    }

    fn on_buffer(&self, stream: usize, pad: &gst::Pad, buffer: &mut gst::Buffer) {
        let Some(pts) = buffer.pts().and_then(|pts| {
            pad.sticky_event::<gst::event::Segment>(0)?
                .segment()
                .downcast_ref::<gst::format::Time>()?
                .to_running_time(pts)
                .map(gst::ClockTime::nseconds)
        }) else {
            return;
        };
        let keyframe = !buffer.flags().contains(gst::BufferFlags::DELTA_UNIT);
        let origin = *self.origin.get_or_init(|| pts);
        let mut state = self.lock(stream);
        state.last = Some(pts);
        let mut nals: Vec<Arc<[u8]>> = Vec::new();
        if keyframe {
            for (nal, left) in state.repeats.iter_mut() {
                nals.push(nal.clone());
                *left -= 1;
            }
            state.repeats.retain(|(_, left)| *left > 0);
        }
        // Within half a frame counts as this frame (timestamps are rounded to ms).
        let now_ms = (pts.saturating_sub(origin) + self.frame_ns / 2) / 1_000_000;
        let (due, later): (Vec<_>, Vec<_>) = std::mem::take(&mut state.pending)
            .into_iter()
            .partition(|(at, _)| *at <= now_ms);
        state.pending = later;
        state
            .repeats
            .extend(due.iter().map(|(_, n)| (n.clone(), REPEAT_ON_KEYFRAMES)));
        nals.extend(due.into_iter().map(|(_, n)| n));
        if nals.is_empty() {
            return;
        }
        let length_size = *state.length_size.get_or_insert_with(|| {
            let caps = pad.current_caps();
            let codec_data = caps
                .as_ref()
                .and_then(|c| c.structure(0))
                .and_then(|s| s.get::<gst::Buffer>("codec_data").ok());
            let map = codec_data.as_ref().and_then(|b| b.map_readable().ok());
            sei::length_size(map.as_deref())
        });
        drop(state);
        let Ok(map) = buffer.map_readable() else {
            return;
        };
        let mut bytes = map.to_vec();
        drop(map);
        for nal in nals {
            match sei::insert_into_au(&bytes, length_size, &nal) {
                Some(tagged) => bytes = tagged,
                None => log::warn!(
                    "an in-stream message does not fit this stream's {length_size}-byte NAL lengths"
                ),
            }
        }
        let mut tagged = gst::Buffer::from_mut_slice(bytes);
        let copied = buffer.copy_into(
            tagged.get_mut().expect("new buffer is writable"),
            gst::BufferCopyFlags::FLAGS
                | gst::BufferCopyFlags::TIMESTAMPS
                | gst::BufferCopyFlags::META,
            ..,
        );
        if copied.is_ok() {
            *buffer = tagged;
        }
    }
}
