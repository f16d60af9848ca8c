//! The app's camera: I420 frames of a moving pattern over sensor-like noise, each carrying the
//! latency stamp of the moment it is pushed, pushed in real time at 30 fps on a thread of its
//! own. It can be paused (the app in the background) and capped (a low battery).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use fieldcast_core::probe::{self, now_ms};
use fieldcast_core::worker::Worker;
use fieldcast_core::{LiveSession, PixelFormat, Plane, VideoFrame};

/// The camera's frame rate.
const CAMERA_FPS: u32 = 30;
/// Distinct pictures pushed in turn (the noise changes from one to the next).
const DISTINCT: usize = 8;

/// Shared between the app and the pushing thread.
struct Controls {
    stop: AtomicBool,
    /// No frames until this moment (ms since the Unix epoch).
    paused_until_ms: AtomicU64,
    /// Frames per second (the camera's, or the cap).
    fps: AtomicU32,
}

/// The pushing thread; stopped by [`FramePump::stop`] or when dropped.
pub(super) struct FramePump {
    controls: Arc<Controls>,
    thread: Worker,
}

impl FramePump {
    /// Starts pushing `width` x `height` frames into `session`.
    pub(super) fn start(
        session: Arc<LiveSession>,
        width: u32,
        height: u32,
    ) -> Result<FramePump, String> {
        let controls = Arc::new(Controls {
            stop: AtomicBool::new(false),
            paused_until_ms: AtomicU64::new(0),
            fps: AtomicU32::new(CAMERA_FPS),
        });
        let pictures: Vec<Vec<u8>> = (0..DISTINCT)
            .map(|n| picture(width as usize, height as usize, n))
            .collect();
        let thread = {
            let controls = controls.clone();
            std::thread::Builder::new()
                .name("camera".into())
                .spawn(move || push(&session, &controls, &pictures, width, height))
                .map_err(|e| format!("camera thread: {e}"))?
        };
        Ok(FramePump {
            controls,
            thread: Worker::new(thread),
        })
    }

    /// Pushes nothing for `length` from now.
    pub(super) fn pause(&self, length: Duration) {
        self.controls
            .paused_until_ms
            .store(now_ms() + length.as_millis() as u64, Ordering::SeqCst);
    }

    /// Caps the frame rate at `fps` (`None`: the camera's rate again).
    pub(super) fn cap_fps(&self, fps: Option<u32>) {
        let fps = fps.map_or(CAMERA_FPS, |f| f.clamp(1, CAMERA_FPS));
        self.controls.fps.store(fps, Ordering::SeqCst);
    }

    /// Stops pushing and waits for the thread.
    pub(super) fn stop(&self) {
        self.controls.stop.store(true, Ordering::SeqCst);
        self.thread.join("camera");
    }
}

impl Drop for FramePump {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Picture `n`: a smooth scene (gradients, as a table of produce under daylight would give)
/// with a bright bar that moves with `n`, and sensor noise of a few levels on every pixel;
/// flat chroma.
fn picture(width: usize, height: usize, n: usize) -> Vec<u8> {
    let mut frame = vec![128u8; width * height * 3 / 2];
    let mut seed: u32 = 0x9E37_79B9 ^ n as u32;
    let bar = (n * width / DISTINCT) / 32;
    for (i, px) in frame[..width * height].iter_mut().enumerate() {
        let (x, y) = (i % width, i / width);
        seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        let scene = if x / 32 == bar {
            210
        } else {
            40 + (x * 100 / width + y * 60 / height) as i32
        };
        let noise = (seed >> 28) as i32 - 8;
        *px = (scene + noise / 2).clamp(16, 235) as u8;
    }
    frame
}

/// The pushing loop: one frame every 1/fps, none while paused, until stopped.
fn push(session: &LiveSession, controls: &Controls, pictures: &[Vec<u8>], width: u32, height: u32) {
    let luma = (width * height) as usize;
    let chroma = luma / 4;
    let stamped = probe::fits(width as usize, height as usize);
    let mut frame = pictures[0].clone();
    let mut next = Instant::now();
    let mut n = 0;
    while !controls.stop.load(Ordering::SeqCst) {
        let fps = controls.fps.load(Ordering::SeqCst).max(1);
        next += Duration::from_secs(1) / fps;
        let now = Instant::now();
        if next > now {
            std::thread::sleep(next - now);
        } else if now - next > Duration::from_secs(1) {
            // Far behind (the device's CPU was taken): start again from now, as a camera would.
            next = now;
        }
        if now_ms() < controls.paused_until_ms.load(Ordering::SeqCst) {
            continue;
        }
        frame.copy_from_slice(&pictures[n % pictures.len()]);
        n += 1;
        if stamped {
            probe::paint(&mut frame[..luma], width as usize, now_ms());
        }
        let planes = [
            Plane::new(&frame[..luma], width, 1),
            Plane::new(&frame[luma..luma + chroma], width / 2, 1),
            Plane::new(&frame[luma + chroma..], width / 2, 1),
        ];
        let pushed = session.push_video_frame(&VideoFrame {
            format: PixelFormat::I420,
            width,
            height,
            planes: &planes,
            timestamp_us: None,
        });
        if let Err(e) = pushed {
            log::warn!("frame not pushed: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pictures_differ_and_have_i420_size() {
        let (a, b) = (picture(64, 32, 0), picture(64, 32, 1));
        assert_eq!(a.len(), 64 * 32 * 3 / 2);
        assert_ne!(a, b);
        assert!(a[64 * 32..].iter().all(|&c| c == 128));
    }
}
