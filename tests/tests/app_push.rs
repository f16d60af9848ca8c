//! App-pushed frames: N solid-colour frames pushed from Rust arrive as N (+-1) frames of that colour.

use std::time::{Duration, Instant};

use fieldcast_core::*;
use fieldcast_tests::*;

const FPS: u64 = 30;

/// One solid frame as a camera hands it: its buffers, and each plane as (buffer, byte range,
/// row stride, pixel stride).
struct SolidFrame {
    buffers: Vec<Vec<u8>>,
    planes: Vec<(usize, std::ops::Range<usize>, u32, u32)>,
}

impl SolidFrame {
    fn planes(&self) -> Vec<Plane<'_>> {
        self.planes
            .iter()
            .map(|(b, range, row, pixel)| {
                Plane::new(&self.buffers[*b][range.clone()], *row, *pixel)
            })
            .collect()
    }
}

/// One solid frame of a format, every row padded to a wider stride and the last row of each plane
/// unpadded, as Android's buffers end.
fn solid_frame(format: PixelFormat, w: u32, h: u32, rgb: (u8, u8, u8)) -> SolidFrame {
    let (r, g, b) = (rgb.0 as f64, rgb.1 as f64, rgb.2 as f64);
    // BT.601 limited range, what players assume for SD/HD H.264 without colour metadata.
    let y = (16.0 + 0.257 * r + 0.504 * g + 0.098 * b).round() as u8;
    let u = (128.0 - 0.148 * r - 0.291 * g + 0.439 * b).round() as u8;
    let v = (128.0 + 0.439 * r - 0.368 * g - 0.071 * b).round() as u8;
    let pad = 64;
    // Rows of `fill` repeated to `row` bytes, padded to `stride`, the last row unpadded.
    let plane = |row: u32, rows: u32, fill: &[u8], stride: u32| -> Vec<u8> {
        let mut out = Vec::new();
        for _ in 0..rows {
            out.extend(fill.iter().copied().cycle().take(row as usize));
            out.extend(std::iter::repeat_n(0xEE, (stride - row) as usize));
        }
        out.truncate(out.len() - (stride - row) as usize);
        out
    };
    let (cw, ch) = (w / 2, h / 2);
    let (buffers, planes) = match format {
        PixelFormat::I420 => {
            let (sy, sc) = (w + pad, cw + pad / 2);
            let bufs = vec![
                plane(w, h, &[y], sy),
                plane(cw, ch, &[u], sc),
                plane(cw, ch, &[v], sc),
            ];
            let planes = (0..3)
                .map(|i| (i, 0..bufs[i].len(), if i == 0 { sy } else { sc }, 1))
                .collect();
            (bufs, planes)
        }
        PixelFormat::Yuv420Flexible => {
            // Chroma pixel stride 2: U and V are two views of one interleaved VU buffer.
            let s = w + pad;
            let vu = plane(w, ch, &[v, u], s);
            let len = vu.len();
            let bufs = vec![plane(w, h, &[y], s), vu];
            let planes = vec![
                (0, 0..bufs[0].len(), s, 1),
                (1, 1..len, s, 2),
                (1, 0..len - 1, s, 2),
            ];
            (bufs, planes)
        }
        PixelFormat::Nv12 | PixelFormat::Nv21 => {
            let s = w + pad;
            let pair = if format == PixelFormat::Nv12 {
                [u, v]
            } else {
                [v, u]
            };
            let bufs = vec![plane(w, h, &[y], s), plane(w, ch, &pair, s)];
            let planes = (0..2)
                .map(|i| (i, 0..bufs[i].len(), s, if i == 0 { 1 } else { 2 }))
                .collect();
            (bufs, planes)
        }
        PixelFormat::Rgba | PixelFormat::Bgra => {
            let s = w * 4 + pad;
            let px = if format == PixelFormat::Rgba {
                [rgb.0, rgb.1, rgb.2, 255]
            } else {
                [rgb.2, rgb.1, rgb.0, 255]
            };
            let bufs = vec![plane(w * 4, h, &px, s)];
            let planes = vec![(0, 0..bufs[0].len(), s, 4)];
            (bufs, planes)
        }
    };
    SolidFrame { buffers, planes }
}

fn push_solid_frames(
    format: PixelFormat,
    frames: u64,
    rgb: (u8, u8, u8),
    with_audio: bool,
    key: &str,
) {
    let input = Input {
        size: (320, 180),
        profile: StreamProfile::P360,
        encoder: EncoderPreference::Auto,
    };
    push_solid_frames_as(&input, format, frames, rgb, with_audio, key);
}

/// The pushed frames' size, the live profile and the encoder.
struct Input {
    size: (u32, u32),
    profile: StreamProfile,
    encoder: EncoderPreference,
}

fn push_solid_frames_as(
    input: &Input,
    format: PixelFormat,
    frames: u64,
    rgb: (u8, u8, u8),
    with_audio: bool,
    key: &str,
) {
    let (w, h) = input.size;
    let ingest = ingest();
    let audio = with_audio.then_some(AppAudioFormat {
        rate: 48_000,
        channels: 2,
    });
    let config = SessionConfig::builder(ingest.url(key))
        .profile(input.profile)
        .encoder(input.encoder)
        .source(Source::App {
            video: AppVideoFormat {
                format,
                width: w,
                height: h,
            },
            audio,
        })
        .build()
        .unwrap();
    let session = LiveSession::new(config).unwrap();
    let mut rx = session.subscribe();
    session.start().unwrap();
    let solid = solid_frame(format, w, h, rgb);
    let planes = solid.planes();
    let tone: Vec<u8> = (0..48_000 / FPS * 2)
        .flat_map(|i| (((i as f64 * 0.06).sin() * 3000.0) as i16).to_le_bytes())
        .collect();
    let start = Instant::now();
    for i in 0..frames {
        let ts = i * 1_000_000 / FPS;
        let frame = VideoFrame {
            format,
            width: w,
            height: h,
            planes: &planes,
            timestamp_us: Some(ts),
        };
        assert_eq!(
            session.push_video_frame(&frame).unwrap(),
            PushOutcome::Queued,
            "frame {i}"
        );
        if with_audio {
            session.push_audio(&tone, Some(ts)).unwrap();
        }
        let next = Duration::from_micros((i + 1) * 1_000_000 / FPS);
        std::thread::sleep(next.saturating_sub(start.elapsed()));
    }
    assert!(
        wait_state(&mut rx, SessionState::Live, Duration::from_secs(1))
            || session.state() == SessionState::Live
    );
    session.stop();
    assert_eq!(
        session.wait(Some(Duration::from_secs(15))).unwrap(),
        SessionState::Ended
    );
    assert_eq!(session.stats().dropped_frames, 0);

    let path = ingest.recording(key);
    let r = report(&path);
    let video = r.stream("video").unwrap();
    assert_eq!(video.size, Some(input.profile.size()));
    assert!(r.stream("audio").is_some());
    assert!(
        video.frames.abs_diff(frames) <= 1,
        "pushed {frames} frames, the ingest received {}",
        video.frames
    );
    let got = mean_rgb(&path, frames / 2);
    let want = (rgb.0 as f64, rgb.1 as f64, rgb.2 as f64);
    let dist =
        ((got.0 - want.0).powi(2) + (got.1 - want.1).powi(2) + (got.2 - want.2).powi(2)).sqrt();
    assert!(dist < 25.0, "decoded colour {got:?}, pushed {want:?}");
}

#[test]
fn i420_frames_with_padded_strides_arrive_whole() {
    push_solid_frames(PixelFormat::I420, 90, (200, 30, 40), true, "i420");
}

/// 854x480 (the 480p profile's own size): rows of 854 and 427 bytes, which GStreamer pads to
/// 856 and 428. Handed to the encoder as they are (no scaling), a buffer without that padding
/// could not be mapped: openh264enc crashed the process on the first frame.
#[test]
fn frames_whose_rows_gstreamer_pads_reach_the_encoder_whole() {
    let input = Input {
        size: (854, 480),
        profile: StreamProfile::P480,
        encoder: EncoderPreference::OpenH264,
    };
    push_solid_frames_as(
        &input,
        PixelFormat::I420,
        60,
        (60, 160, 200),
        true,
        "i420-854",
    );
    push_solid_frames_as(
        &input,
        PixelFormat::Nv12,
        60,
        (200, 160, 60),
        false,
        "nv12-854",
    );
}

#[test]
fn nv12_frames_arrive_whole() {
    push_solid_frames(PixelFormat::Nv12, 60, (30, 60, 200), true, "nv12");
}

#[test]
fn rgba_frames_without_audio_arrive_whole() {
    push_solid_frames(PixelFormat::Rgba, 60, (40, 180, 60), false, "rgba");
}

#[test]
fn yuv_420_888_frames_with_interleaved_chroma_arrive_whole() {
    push_solid_frames(
        PixelFormat::Yuv420Flexible,
        60,
        (220, 140, 20),
        true,
        "yuv420888",
    );
}

#[test]
fn nv21_frames_arrive_whole() {
    push_solid_frames(PixelFormat::Nv21, 60, (120, 40, 160), true, "nv21");
}

#[test]
fn bgra_frames_arrive_whole() {
    push_solid_frames(PixelFormat::Bgra, 60, (250, 200, 30), false, "bgra");
}

#[test]
fn a_session_stopped_before_its_media_started_ends_at_once() {
    // One frame and generated silence: a track can end before the encoder gave it caps, and the
    // uplink has nothing it could ever send. Stop must not wait out the 8 s drain timeout.
    let ingest = ingest();
    let config = SessionConfig::builder(ingest.url("early-stop"))
        .profile(StreamProfile::P270)
        .adaptive_bitrate(false)
        .source(Source::App {
            video: AppVideoFormat {
                format: PixelFormat::I420,
                width: 320,
                height: 180,
            },
            audio: None,
        })
        .build()
        .unwrap();
    let session = LiveSession::new(config).unwrap();
    session.start().unwrap();
    let picture = vec![128u8; PixelFormat::I420.packed_len(320, 180)];
    let planes = packed_planes(PixelFormat::I420, 320, 180, &picture).unwrap();
    let frame = VideoFrame {
        format: PixelFormat::I420,
        width: 320,
        height: 180,
        planes: &planes,
        timestamp_us: None,
    };
    session.push_video_frame(&frame).unwrap();
    let stopped = Instant::now();
    session.stop();
    assert_eq!(
        session.wait(Some(Duration::from_secs(15))).unwrap(),
        SessionState::Ended
    );
    assert!(
        stopped.elapsed() < Duration::from_secs(4),
        "stop took {:?} (the drain timeout is 8 s)",
        stopped.elapsed()
    );
}

/// An app's frames stamped at capture (854x480) and scaled to the live size (640x360): the
/// session carries each stamp to the final size, so the player reads the app's capture times.
#[test]
fn app_stamps_survive_scaling_to_the_live_size() {
    let (w, h) = (854u32, 480u32);
    let ingest = ingest();
    let config = SessionConfig::builder(ingest.url("stamped"))
        .profile(StreamProfile::P360)
        .source(Source::App {
            video: AppVideoFormat {
                format: PixelFormat::I420,
                width: w,
                height: h,
            },
            audio: None,
        })
        .latency_stamp(true)
        .build()
        .unwrap();
    let session = std::sync::Arc::new(LiveSession::new(config).unwrap());
    session.start().unwrap();
    let pusher = {
        let session = session.clone();
        std::thread::spawn(move || {
            let luma = (w * h) as usize;
            let mut picture = vec![128u8; luma * 3 / 2];
            let start = Instant::now();
            for i in 0..(8 * FPS) {
                for (n, px) in picture[..luma].iter_mut().enumerate() {
                    *px = 60 + ((n % w as usize + i as usize * 4) % 120) as u8;
                }
                probe::paint(&mut picture[..luma], w as usize, probe::now_ms());
                let planes = [
                    Plane::new(&picture[..luma], w, 1),
                    Plane::new(&picture[luma..luma + luma / 4], w / 2, 1),
                    Plane::new(&picture[luma + luma / 4..], w / 2, 1),
                ];
                let frame = VideoFrame {
                    format: PixelFormat::I420,
                    width: w,
                    height: h,
                    planes: &planes,
                    timestamp_us: None,
                };
                session.push_video_frame(&frame).unwrap();
                let next = Duration::from_micros((i + 1) * 1_000_000 / FPS);
                std::thread::sleep(next.saturating_sub(start.elapsed()));
            }
        })
    };
    std::thread::sleep(Duration::from_secs(1));
    let report = receiver::measure_latency(&ingest.url("stamped"), Duration::from_secs(5)).unwrap();
    pusher.join().unwrap();
    session.stop();
    session.wait(Some(Duration::from_secs(10))).unwrap();
    assert!(report.samples >= 90, "{report:?}");
    assert!(report.unreadable <= report.samples / 10, "{report:?}");
    assert!(report.p50_ms < 2000, "{report:?}");
}
