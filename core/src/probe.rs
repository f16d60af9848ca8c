//! The latency probe: a machine-readable capture-time stamp painted into frames, and a receiver
//! that reads it back after the ingest to measure glass-to-player latency. QA only (feature `qa`).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_video as gst_video;
use gstreamer_video::prelude::*;

use crate::error::{Error, Result};

/// Side of one stamp block in pixels; large enough to survive low-bitrate H.264.
pub const BLOCK: usize = 16;
/// Blocks per stamp row.
pub const COLUMNS: usize = 16;
/// Stamp rows: 4 x 16 = 64 bits (48-bit milliseconds + 16-bit check).
pub const ROWS: usize = 4;
/// Luma of a 0 bit and a 1 bit (video range black and white).
const LUMA: [u8; 2] = [16, 235];

/// Milliseconds since the Unix epoch, the stamp's clock (shared by sender and receiver).
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_millis() as u64
}

fn check_bits(ms: u64) -> u64 {
    ((ms ^ (ms >> 16) ^ (ms >> 32)) & 0xffff) ^ 0xa5c3
}

/// The 64 stamp bits for a time: 48 bits of milliseconds then 16 check bits.
pub fn encode(ms: u64) -> u64 {
    ((ms & 0xffff_ffff_ffff) << 16) | check_bits(ms & 0xffff_ffff_ffff)
}

/// The time in a stamp, or `None` when the check bits do not match (no stamp, damaged stamp).
pub fn decode(bits: u64) -> Option<u64> {
    let ms = bits >> 16;
    (bits & 0xffff == check_bits(ms)).then_some(ms)
}

/// Smallest luma plane the stamp fits in.
pub fn fits(width: usize, height: usize) -> bool {
    width >= BLOCK * COLUMNS && height >= BLOCK * ROWS
}

/// Paints the stamp for `ms` into the top-left corner of a luma plane.
pub fn paint(luma: &mut [u8], stride: usize, ms: u64) {
    let bits = encode(ms);
    for row in 0..ROWS * BLOCK {
        let line = &mut luma[row * stride..row * stride + COLUMNS * BLOCK];
        for col in 0..COLUMNS {
            let bit = (bits >> (63 - ((row / BLOCK) * COLUMNS + col))) & 1;
            line[col * BLOCK..(col + 1) * BLOCK].fill(LUMA[bit as usize]);
        }
    }
}

/// The stamp's size check, for a live stream of `size`.
fn check_fits(size: (u32, u32)) -> Result<()> {
    if fits(size.0 as usize, size.1 as usize) {
        Ok(())
    } else {
        Err(Error::InvalidConfig(
            "the latency stamp needs at least 256x64 pixels".into(),
        ))
    }
}

/// Calls `on_frame` with every buffer leaving `pad` that is large enough for a stamp, and the
/// layout of the pad's caps, parsed once per caps (the size changes with the rung), not per frame.
fn probe_frames<F>(pad: &gst::Pad, on_frame: F)
where
    F: Fn(&mut gst::Buffer, &gst_video::VideoInfo) + Send + Sync + 'static,
{
    let layout: Mutex<Option<(gst::Caps, gst_video::VideoInfo)>> = Mutex::new(None);
    pad.add_probe(gst::PadProbeType::BUFFER, move |pad, info_probe| {
        if let Some(gst::PadProbeData::Buffer(buffer)) = &mut info_probe.data
            && let Some(caps) = pad.current_caps()
        {
            let mut layout = layout.lock().unwrap_or_else(|p| p.into_inner());
            if layout
                .as_ref()
                .is_none_or(|(known, _)| known.as_ptr() != caps.as_ptr())
            {
                *layout = gst_video::VideoInfo::from_caps(&caps)
                    .ok()
                    .map(|info| (caps, info));
            }
            if let Some((_, info)) = layout.as_ref()
                && fits(info.width() as usize, info.height() as usize)
            {
                on_frame(buffer, info);
            }
        }
        gst::PadProbeReturn::Ok
    });
}

/// Paints `ms` into the luma plane of `buffer`, laid out as `info`.
fn paint_buffer(buffer: &mut gst::Buffer, info: &gst_video::VideoInfo, ms: u64) {
    if let Ok(mut frame) =
        gst_video::VideoFrameRef::from_buffer_ref_writable(buffer.make_mut(), info)
    {
        let stride = frame.plane_stride()[0] as usize;
        if let Ok(luma) = frame.plane_data_mut(0) {
            paint(luma, stride, ms);
        }
    }
}

/// Paints the capture wall-clock time into every frame leaving `element` (the latency probe), at
/// whatever size the frames have there (the live stream's size changes with its rung).
pub(crate) fn stamp_capture_time(element: &gst::Element, size: (u32, u32)) -> Result<()> {
    check_fits(size)?;
    let pad = element.static_pad("src").expect("capsfilter has a src pad");
    probe_frames(&pad, |buffer, info| paint_buffer(buffer, info, now_ms()));
    Ok(())
}

/// Stamps read from an app's frames, by presentation time (ns), oldest first.
type CarriedStamps = Arc<Mutex<VecDeque<(u64, u64)>>>;

/// Frames whose stamp is kept until a later frame reaches the final size.
const CARRIED_MAX: usize = 64;

/// Carries the stamps an app painted into its pushed frames (with [`paint`], at capture) to the
/// live stream's final size: read where the frames enter the pipeline (`source`, their full
/// size), painted again after the scaler (`element`), so the stamp stays readable on every rung
/// and keeps the app's capture time. A frame without a readable stamp is left as it is.
pub(crate) fn carry_app_stamps(
    source: &gst::Element,
    element: &gst::Element,
    size: (u32, u32),
) -> Result<()> {
    check_fits(size)?;
    let carried: CarriedStamps = Arc::default();
    let read_side = carried.clone();
    let pad = source.static_pad("src").expect("appsrc has a src pad");
    probe_frames(&pad, move |buffer, info| {
        if let Some(pts) = buffer.pts()
            && let Ok(frame) = gst_video::VideoFrameRef::from_buffer_ref_readable(buffer, info)
            && let Ok(luma) = frame.plane_data(0)
            && let Some(ms) = read(luma, frame.plane_stride()[0] as usize)
        {
            let mut stamps = read_side.lock().unwrap_or_else(|p| p.into_inner());
            if stamps.len() == CARRIED_MAX {
                stamps.pop_front();
            }
            stamps.push_back((pts.nseconds(), ms));
        }
    });
    let pad = element.static_pad("src").expect("capsfilter has a src pad");
    probe_frames(&pad, move |buffer, info| {
        let Some(pts) = buffer.pts() else { return };
        // The frame's own stamp, or the latest before it (a frame the rate converter repeated
        // carries the time of the picture it repeats).
        let ms = {
            let mut stamps = carried.lock().unwrap_or_else(|p| p.into_inner());
            while stamps.len() > 1 && stamps[1].0 <= pts.nseconds() {
                stamps.pop_front();
            }
            stamps
                .front()
                .filter(|(at, _)| *at <= pts.nseconds())
                .map(|(_, ms)| *ms)
        };
        if let Some(ms) = ms {
            paint_buffer(buffer, info, ms);
        }
    });
    Ok(())
}

/// Reads a stamp from a decoded luma plane (the centre of each block decides its bit).
pub fn read(luma: &[u8], stride: usize) -> Option<u64> {
    let mut bits = 0u64;
    for r in 0..ROWS {
        for c in 0..COLUMNS {
            let (y0, x0) = (r * BLOCK + BLOCK / 4, c * BLOCK + BLOCK / 4);
            let mut sum = 0u32;
            for y in y0..y0 + BLOCK / 2 {
                for x in x0..x0 + BLOCK / 2 {
                    sum += luma[y * stride + x] as u32;
                }
            }
            let mean = sum / (BLOCK as u32 / 2).pow(2);
            bits = (bits << 1) | u64::from(mean > 125);
        }
    }
    decode(bits)
}

/// Latency percentiles over a run of the probe receiver.
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize)]
pub struct LatencyReport {
    /// Frames whose stamp was read.
    pub samples: usize,
    /// Frames decoded without a readable stamp.
    pub unreadable: usize,
    /// Median latency, ms.
    pub p50_ms: u64,
    /// 95th percentile, ms.
    pub p95_ms: u64,
    /// 99th percentile, ms.
    pub p99_ms: u64,
    /// Largest latency, ms.
    pub max_ms: u64,
}

impl LatencyReport {
    /// Summarises latency samples (ms).
    pub fn from_samples(mut samples: Vec<u64>, unreadable: usize) -> Self {
        samples.sort_unstable();
        let pick = |q: f64| -> u64 {
            if samples.is_empty() {
                return 0;
            }
            let i = ((samples.len() as f64 - 1.0) * q).round() as usize;
            samples[i]
        };
        LatencyReport {
            samples: samples.len(),
            unreadable,
            p50_ms: pick(0.50),
            p95_ms: pick(0.95),
            p99_ms: pick(0.99),
            max_ms: samples.last().copied().unwrap_or(0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamp_round_trips_through_a_plane() {
        let (w, h) = (480, 270);
        let mut plane = vec![128u8; w * h];
        let ms = 1_795_000_123_456;
        paint(&mut plane, w, ms);
        assert_eq!(read(&plane, w), Some(ms));
    }

    #[test]
    fn stamp_survives_noise_but_not_garbage() {
        let stride = 300;
        let mut plane = vec![0u8; stride * 80];
        paint(&mut plane, stride, 42_000);
        for (i, p) in plane.iter_mut().enumerate() {
            *p = p.saturating_add((i % 7) as u8 * 5).saturating_sub(12);
        }
        assert_eq!(read(&plane, stride), Some(42_000));
        let flat = vec![128u8; stride * 80];
        assert_eq!(read(&flat, stride), None);
        assert_eq!(decode(encode(7) ^ 1), None);
    }

    #[test]
    fn percentiles() {
        let r = LatencyReport::from_samples((1..=100).collect(), 3);
        assert_eq!(
            (r.samples, r.p50_ms, r.p95_ms, r.max_ms, r.unreadable),
            (100, 51, 95, 100, 3)
        );
        assert_eq!(LatencyReport::from_samples(vec![], 0).p50_ms, 0);
    }
}
