//! App-push benchmark, the Rust side: 720p30 NV12 frames (a moving bar over noise, 30 distinct
//! frames in turn) pushed into a live session in real time, as a camera callback would. After 10 s
//! of warm-up it measures FRAMES more frames and prints one JSON line: process CPU seconds from
//! then to the end of the session, media seconds, and the push call's p50/p99 in microseconds. `bench/push_bench.py` runs it next to the same job pushed
//! from Kotlin (`PushBench.kt`) and prints the ratio.
//!
//! `cargo run --release -p fieldcast-tests --bin push_bench -- rtmp://HOST:PORT/live/KEY [FRAMES]`
//! (FRAMES measured, default 1800: one minute)

use std::time::{Duration, Instant};

use fieldcast_core::{
    AppVideoFormat, EncoderPreference, LiveSession, PixelFormat, Plane, PushOutcome, SessionConfig,
    Source, StreamProfile, VideoFrame,
};

const WIDTH: u32 = 1280;
const HEIGHT: u32 = 720;
const FPS: u64 = 30;
/// Distinct frames pushed in turn.
const DISTINCT: usize = 30;
/// Frames pushed before the measurement starts (10 s: the session is live and the encoder warm;
/// on the Kotlin side, the JIT has compiled the push path).
const WARM_UP: u64 = 300;

/// Frame `n` of the pattern: luma noise from a linear congruential generator with a bright bar
/// that moves with `n`, flat chroma. The Kotlin side builds the same bytes.
fn pattern(n: usize) -> Vec<u8> {
    let (w, h) = (WIDTH as usize, HEIGHT as usize);
    let mut frame = vec![128u8; w * h * 3 / 2];
    let mut seed: u32 = 12345 + n as u32;
    for (i, px) in frame[..w * h].iter_mut().enumerate() {
        seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        let bar = (i % w) / 40 == n % (w / 40);
        *px = if bar {
            235
        } else {
            64 + (seed >> 24) as u8 / 2
        };
    }
    frame
}

/// CPU seconds (user + system) this process has used.
fn cpu_seconds() -> f64 {
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage writes one rusage into the struct it is given.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let url = args.get(1).ok_or("usage: push_bench RTMP_URL [FRAMES]")?;
    let frames: u64 = args.get(2).map(|f| f.parse()).transpose()?.unwrap_or(1800);
    let pictures: Vec<Vec<u8>> = (0..DISTINCT).map(pattern).collect();
    let config = SessionConfig::builder(url.as_str())
        .source(Source::App {
            video: AppVideoFormat {
                format: PixelFormat::Nv12,
                width: WIDTH,
                height: HEIGHT,
            },
            audio: None,
        })
        .profile(StreamProfile::P720)
        .adaptive_bitrate(false)
        // The phone library (the Kotlin side of the bench) has no x264: both encode with openh264.
        .encoder(EncoderPreference::OpenH264)
        .build()?;
    let session = LiveSession::new(config)?;
    session.start()?;
    let mut cpu_start = cpu_seconds();
    let luma = (WIDTH * HEIGHT) as usize;
    let mut push_ns = Vec::with_capacity(frames as usize);
    let mut dropped = 0;
    let start = Instant::now();
    for i in 0..WARM_UP + frames {
        if i == WARM_UP {
            cpu_start = cpu_seconds();
            push_ns.clear();
        }
        let picture = &pictures[i as usize % DISTINCT];
        let planes = [
            Plane::new(&picture[..luma], WIDTH, 1),
            Plane::new(&picture[luma..], WIDTH, 2),
        ];
        let frame = VideoFrame {
            format: PixelFormat::Nv12,
            width: WIDTH,
            height: HEIGHT,
            planes: &planes,
            timestamp_us: Some(i * 1_000_000 / FPS),
        };
        let t = Instant::now();
        if session.push_video_frame(&frame)? == PushOutcome::Dropped {
            dropped += 1;
        }
        push_ns.push(t.elapsed().as_nanos() as u64);
        let next = Duration::from_micros((i + 1) * 1_000_000 / FPS);
        std::thread::sleep(next.saturating_sub(start.elapsed()));
    }
    session.stop();
    session.wait(Some(Duration::from_secs(20)))?;
    let cpu = cpu_seconds() - cpu_start;
    push_ns.sort_unstable();
    let pct = |p: f64| push_ns[((push_ns.len() - 1) as f64 * p) as usize] as f64 / 1000.0;
    println!(
        "{{\"side\":\"rust\",\"cpu_s\":{cpu:.3},\"media_s\":{:.3},\"push_p50_us\":{:.1},\"push_p99_us\":{:.1},\"frames\":{frames},\"dropped\":{dropped}}}",
        frames as f64 / FPS as f64,
        pct(0.5),
        pct(0.99)
    );
    Ok(())
}
