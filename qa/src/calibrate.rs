//! Calibration: how fast x264 encodes inside a device profile's cage, the figure a profile's
//! `per_core` is tuned by (see docs/QA.md, "Device profiles").
//!
//! For each size (1280x720, then 854x480) it makes a one-second clip of 30 noise frames
//! (`videotestsrc pattern=snow`, outside the cage: generating noise costs more than encoding
//! it), then runs inside the cage
//!
//! ```text
//! gst-launch-1.0 multifilesrc location=CLIP loop=true
//!   ! rawvideoparse width=W height=H format=i420 framerate=30/1 ! identity eos-after=N
//!   ! queue ! x264enc speed-preset=ultrafast tune=zerolatency ! fakesink
//! ```
//!
//! (the `queue` hands frames to the encoder on another thread, as a camera does) three times:
//! with 30 frames, then with what that rate encodes in a second, to estimate the rate, then
//! with as many frames as the estimate encodes in the time asked for. The rate is frames over
//! the pipeline's running time as `gst-launch-1.0` reports it ("Execution ended after"), which
//! leaves out process start-up and plugin loading; the CPU is everything the run used in the
//! cage. Noise makes every macroblock change every frame, like a camera sensor's noise, but
//! its cost per frame is only an approximation of a camera's picture.

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::Serialize;

use crate::cage::DeviceCage;
use crate::device::{DeviceError, DeviceProfile};

/// The first size measured: 720p.
const P720: (u32, u32) = (1280, 720);
/// The second size measured: FieldCast's 480p.
const P480: (u32, u32) = (854, 480);
/// Distinct frames in the looped clip.
const CLIP_FRAMES: u32 = 30;
/// Frames of the first run that estimates the rate.
const PROBE_FRAMES: u64 = 30;
/// Seconds of the second run that estimates the rate.
const PROBE_SECONDS: f64 = 1.0;
/// The shortest measurement asked for, in seconds.
const MIN_SECONDS: f64 = 0.5;
/// How many lines of a failed run's error output an error keeps.
const STDERR_LINES: usize = 5;

/// One size's measurement.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Measurement {
    /// Frame width in pixels.
    pub width: u32,
    /// Frame height in pixels.
    pub height: u32,
    /// Frames encoded while the pipeline played (the first is encoded while it prerolls).
    pub frames: u64,
    /// The pipeline's running time, in seconds.
    pub seconds: f64,
    /// CPU seconds the whole run used in the cage (start-up included).
    pub cpu_seconds: f64,
}

impl Measurement {
    /// Frames per second.
    pub fn fps(&self) -> f64 {
        self.frames as f64 / self.seconds
    }

    /// The CPU the run kept busy, in host cores.
    pub fn host_cores_used(&self) -> f64 {
        self.cpu_seconds / self.seconds
    }
}

/// What [`calibrate`] measured for one profile.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Calibration {
    /// The profile's name.
    pub profile: String,
    /// The CPU the profile gives, in host cores ([`DeviceProfile::host_cores`]).
    pub host_cores: f64,
    /// x264 `ultrafast` at 1280x720.
    pub p720: Measurement,
    /// x264 `ultrafast` at 854x480.
    pub p480: Measurement,
}

impl fmt::Display for Calibration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({:.2} host cores): x264 ultrafast 720p {:.1} fps using {:.2} host cores, \
             480p {:.1} fps using {:.2} host cores",
            self.profile,
            self.host_cores,
            self.p720.fps(),
            self.p720.host_cores_used(),
            self.p480.fps(),
            self.p480.host_cores_used()
        )
    }
}

/// Measures x264 `ultrafast` frames per second at 720p and 480p inside a cage of `profile`,
/// each for about `seconds` (at least 0.5). Needs root and cgroups (see
/// [`DeviceCage::available`]) and `gst-launch-1.0` with x264enc.
pub fn calibrate(profile: &DeviceProfile, seconds: f64) -> Result<Calibration, DeviceError> {
    if !(seconds.is_finite() && seconds >= MIN_SECONDS) {
        return Err(DeviceError::Calibration(format!(
            "the measurement needs at least {MIN_SECONDS} s, not {seconds}"
        )));
    }
    let dir = tempfile::tempdir().map_err(|e| {
        DeviceError::Calibration(format!("cannot make a directory for the clips: {e}"))
    })?;
    let cage = DeviceCage::create(profile.clone())?;
    Ok(Calibration {
        profile: profile.name.clone(),
        host_cores: profile.host_cores(),
        p720: measure(&cage, dir.path(), P720, seconds)?,
        p480: measure(&cage, dir.path(), P480, seconds)?,
    })
}

/// One size: the clip, two runs that estimate the rate, and the measured run.
fn measure(
    cage: &DeviceCage,
    dir: &Path,
    (width, height): (u32, u32),
    seconds: f64,
) -> Result<Measurement, DeviceError> {
    let clip = make_clip(dir, width, height)?;
    let mut frames = PROBE_FRAMES;
    for run_seconds in [PROBE_SECONDS, seconds] {
        let probe = encode(cage, &clip, width, height, frames)?;
        frames = ((probe.fps() * run_seconds).round() as u64).max(PROBE_FRAMES);
    }
    encode(cage, &clip, width, height, frames)
}

/// Writes the clip of [`CLIP_FRAMES`] noise frames for one size (outside any cage).
fn make_clip(dir: &Path, width: u32, height: u32) -> Result<PathBuf, DeviceError> {
    let clip = dir.join(format!("snow-{width}x{height}.i420"));
    let args = [
        "-q".to_string(),
        "videotestsrc".into(),
        "pattern=snow".into(),
        format!("num-buffers={CLIP_FRAMES}"),
        "!".into(),
        format!("video/x-raw,format=I420,width={width},height={height},framerate=30/1"),
        "!".into(),
        "filesink".into(),
        format!("location={}", clip.display()),
    ];
    run(&mut Command::new("gst-launch-1.0"), &args)?;
    Ok(clip)
}

/// The encoding pipeline's `gst-launch-1.0` arguments.
fn encode_args(clip: &Path, width: u32, height: u32, frames: u64) -> Vec<String> {
    vec![
        "multifilesrc".into(),
        format!("location={}", clip.display()),
        "loop=true".into(),
        "!".into(),
        "rawvideoparse".into(),
        format!("width={width}"),
        format!("height={height}"),
        "format=i420".into(),
        "framerate=30/1".into(),
        "!".into(),
        "identity".into(),
        format!("eos-after={frames}"),
        "!".into(),
        "queue".into(),
        "!".into(),
        "x264enc".into(),
        "speed-preset=ultrafast".into(),
        "tune=zerolatency".into(),
        "!".into(),
        "fakesink".into(),
    ]
}

/// Encodes `frames` frames of `clip` in the cage.
fn encode(
    cage: &DeviceCage,
    clip: &Path,
    width: u32,
    height: u32,
    frames: u64,
) -> Result<Measurement, DeviceError> {
    let args = encode_args(clip, width, height, frames);
    let mut cmd = Command::new("gst-launch-1.0");
    cage.command_in(&mut cmd);
    let before = cage.cpu_seconds()?;
    let stdout = run(&mut cmd, &args)?;
    let cpu_seconds = cage.cpu_seconds()? - before;
    let seconds = running_time(&stdout).filter(|s| *s > 0.0).ok_or_else(|| {
        DeviceError::Calibration(format!(
            "`gst-launch-1.0 {}` did not report its running time",
            args.join(" ")
        ))
    })?;
    Ok(Measurement {
        width,
        height,
        frames: frames - 1,
        seconds,
        cpu_seconds,
    })
}

/// Runs `cmd` with `args` to the end; its standard output, or why it failed.
fn run(cmd: &mut Command, args: &[String]) -> Result<String, DeviceError> {
    let line = format!("gst-launch-1.0 {}", args.join(" "));
    let output = cmd.args(args).stdin(Stdio::null()).output().map_err(|e| {
        DeviceError::Calibration(if e.kind() == std::io::ErrorKind::NotFound {
            "gst-launch-1.0 is not on the PATH: install the Debian packages \
                 gstreamer1.0-tools and gstreamer1.0-plugins-ugly (x264enc)"
                .to_string()
        } else {
            format!("`{line}` does not start: {e}")
        })
    })?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let lines: Vec<&str> = stderr.lines().collect();
        let tail = lines[lines.len().saturating_sub(STDERR_LINES)..].join(" / ");
        return Err(DeviceError::Calibration(format!(
            "`{line}` failed ({}): {tail}",
            output.status
        )));
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// The running time in `gst-launch-1.0`'s "Execution ended after H:MM:SS.NNNNNNNNN" line.
fn running_time(stdout: &str) -> Option<f64> {
    let rest = stdout
        .lines()
        .find_map(|line| line.trim().strip_prefix("Execution ended after "))?;
    let mut parts = rest.trim().split(':');
    let (h, m, s) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let (h, m, s): (f64, f64, f64) = (h.parse().ok()?, m.parse().ok()?, s.parse().ok()?);
    Some(h * 3600.0 + m * 60.0 + s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_running_time_is_read_from_gst_launch() {
        let out = "Setting pipeline to PAUSED ...\nGot EOS from element \"pipeline0\".\n\
                   Execution ended after 0:01:02.500000000\nSetting pipeline to NULL ...\n";
        assert_eq!(running_time(out), Some(62.5));
        assert_eq!(
            running_time("Execution ended after 1:00:00.25\n"),
            Some(3600.25)
        );
        assert_eq!(running_time("Freeing pipeline ...\n"), None);
        assert_eq!(running_time("Execution ended after soon\n"), None);
    }

    #[test]
    fn the_pipeline_pins_i420_and_stops_after_the_frames() {
        let args = encode_args(Path::new("/tmp/c.i420"), 1280, 720, 300).join(" ");
        assert_eq!(
            args,
            "multifilesrc location=/tmp/c.i420 loop=true ! rawvideoparse width=1280 height=720 \
             format=i420 framerate=30/1 ! identity eos-after=300 ! queue ! \
             x264enc speed-preset=ultrafast tune=zerolatency ! fakesink"
        );
    }

    #[test]
    fn a_too_short_measurement_is_refused() {
        let desktop = DeviceProfile::builtin("desktop").unwrap();
        let err = calibrate(&desktop, 0.1).unwrap_err().to_string();
        assert!(err.contains("at least 0.5 s"), "{err}");
    }

    #[test]
    fn the_display_is_one_readable_line() {
        let m = |fps: f64| Measurement {
            width: 1280,
            height: 720,
            frames: (fps * 10.0) as u64,
            seconds: 10.0,
            cpu_seconds: 5.0,
        };
        let c = Calibration {
            profile: "entry-2019".into(),
            host_cores: 0.5,
            p720: m(130.0),
            p480: m(280.0),
        };
        assert_eq!(
            c.to_string(),
            "entry-2019 (0.50 host cores): x264 ultrafast 720p 130.0 fps using 0.50 host cores, \
             480p 280.0 fps using 0.50 host cores"
        );
    }
}
