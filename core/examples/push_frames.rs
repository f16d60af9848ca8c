//! Pushes app-made media into a live session, as a camera callback would: a colour-cycling
//! I420 picture and a 440 Hz tone, 10 seconds, then a clean stop.
//!
//! `cargo run -p fieldcast-core --example push_frames -- rtmp://127.0.0.1:PORT/live/KEY`

use std::time::{Duration, Instant};

use fieldcast_core::{
    AppAudioFormat, AppVideoFormat, LiveSession, PixelFormat, PushOutcome, SessionConfig,
    SessionEvent, Source, StreamProfile, VideoFrame, packed_planes,
};

const WIDTH: u32 = 640;
const HEIGHT: u32 = 360;
const FPS: u64 = 30;
const RATE: u32 = 48_000;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::args()
        .nth(1)
        .ok_or("usage: push_frames INGEST_URL")?;
    let config = SessionConfig::builder(url)
        .profile(StreamProfile::P360)
        .source(Source::App {
            video: AppVideoFormat {
                format: PixelFormat::I420,
                width: WIDTH,
                height: HEIGHT,
            },
            audio: Some(AppAudioFormat {
                rate: RATE,
                channels: 1,
            }),
        })
        .build()?;
    let session = LiveSession::new(config)?;
    let mut events = session.subscribe();
    std::thread::spawn(move || {
        while let Ok(event) = events.blocking_recv() {
            match event {
                SessionEvent::StateChanged { to, .. } => println!("state: {to:?}"),
                SessionEvent::Stats(s) => println!(
                    "{:.0} fps, {:.0} kbit/s, {} dropped",
                    s.output_fps, s.video_kbps, s.dropped_frames
                ),
                SessionEvent::Error(e) => eprintln!("error: {e}"),
                SessionEvent::Adapted(decision) => println!("adapted: {decision:?}"),
                SessionEvent::EncoderBitrateFixed { encoder, .. } => {
                    println!("{encoder} keeps its bitrate: the resolution follows the uplink")
                }
                SessionEvent::ReplayAtLiveQuality { reason } => {
                    println!("the replay follows the live rendition: {reason}")
                }
            }
        }
    });
    session.start()?;

    let luma = (WIDTH * HEIGHT) as usize;
    let mut picture = vec![0u8; luma * 3 / 2];
    let samples_per_frame = RATE as u64 / FPS;
    let start = Instant::now();
    for i in 0..10 * FPS {
        // Capture time on one monotonic clock shared by audio and video.
        let ts = i * 1_000_000 / FPS;
        picture[..luma].fill(((i * 4) % 220 + 16) as u8);
        picture[luma..].fill(((i * 2) % 200 + 28) as u8);
        let planes = packed_planes(PixelFormat::I420, WIDTH, HEIGHT, &picture)?;
        let frame = VideoFrame {
            format: PixelFormat::I420,
            width: WIDTH,
            height: HEIGHT,
            planes: &planes,
            timestamp_us: Some(ts),
        };
        if session.push_video_frame(&frame)? == PushOutcome::Dropped {
            eprintln!("frame {i} dropped: the encoder is behind");
        }
        let tone: Vec<u8> = (0..samples_per_frame)
            .map(|n| (i * samples_per_frame + n) as f64 / RATE as f64)
            .flat_map(|t| {
                (((t * 440.0 * std::f64::consts::TAU).sin() * 8000.0) as i16).to_le_bytes()
            })
            .collect();
        session.push_audio(&tone, Some(ts))?;
        std::thread::sleep(
            Duration::from_micros((i + 1) * 1_000_000 / FPS).saturating_sub(start.elapsed()),
        );
    }
    session.stop();
    session.wait(Some(Duration::from_secs(15)))?;
    Ok(())
}
