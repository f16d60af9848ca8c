//! What a media file holds, read back with ffprobe: codecs, size, frame counts, duration.

use std::path::Path;
use std::process::Command;

use serde::Deserialize;

/// One stream of a media file.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamReport {
    /// `video` or `audio`.
    pub kind: String,
    /// Codec name, e.g. `h264` or `aac`.
    pub codec: String,
    /// Width and height for video.
    pub size: Option<(u32, u32)>,
    /// Frames (video) or packets (audio) counted by decoding the container.
    pub frames: u64,
    /// Sample rate for audio.
    pub sample_rate: Option<u32>,
}

/// The streams and duration of a media file.
#[derive(Debug, Clone, PartialEq)]
pub struct MediaReport {
    /// Container duration in seconds.
    pub duration_secs: f64,
    /// Every stream in the file.
    pub streams: Vec<StreamReport>,
}

#[derive(Deserialize)]
struct Probe {
    streams: Vec<ProbeStream>,
    format: ProbeFormat,
}

#[derive(Deserialize)]
struct ProbeStream {
    codec_type: String,
    codec_name: Option<String>,
    width: Option<u32>,
    height: Option<u32>,
    nb_read_frames: Option<String>,
    nb_read_packets: Option<String>,
    sample_rate: Option<String>,
}

#[derive(Deserialize)]
struct ProbeFormat {
    duration: Option<String>,
}

impl MediaReport {
    /// Runs ffprobe on `path` (decoding it to count frames).
    pub fn probe(path: &Path) -> Result<Self, String> {
        let out = Command::new("ffprobe")
            .args([
                "-v",
                "error",
                "-count_frames",
                "-count_packets",
                "-show_streams",
                "-show_format",
                "-of",
                "json",
            ])
            .arg(path)
            .output()
            .map_err(|e| format!("cannot run ffprobe (install the Debian package ffmpeg): {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "ffprobe cannot read {}: {}",
                path.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        let probe: Probe =
            serde_json::from_slice(&out.stdout).map_err(|e| format!("ffprobe output: {e}"))?;
        let num = |s: &Option<String>| s.as_deref().and_then(|v| v.parse::<u64>().ok());
        Ok(MediaReport {
            duration_secs: probe
                .format
                .duration
                .and_then(|d| d.parse().ok())
                .unwrap_or(0.0),
            streams: probe
                .streams
                .iter()
                .map(|s| StreamReport {
                    kind: s.codec_type.clone(),
                    codec: s.codec_name.clone().unwrap_or_default(),
                    size: s.width.zip(s.height),
                    frames: num(&s.nb_read_frames)
                        .or(num(&s.nb_read_packets))
                        .unwrap_or(0),
                    sample_rate: s.sample_rate.as_deref().and_then(|r| r.parse().ok()),
                })
                .collect(),
        })
    }

    /// The first stream of a kind (`video` or `audio`).
    pub fn stream(&self, kind: &str) -> Option<&StreamReport> {
        self.streams.iter().find(|s| s.kind == kind)
    }
}

impl std::fmt::Display for MediaReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "duration {:.2} s", self.duration_secs)?;
        for s in &self.streams {
            match (s.size, s.sample_rate) {
                (Some((w, h)), _) => writeln!(
                    f,
                    "  {}: {} {}x{}, {} frames",
                    s.kind, s.codec, w, h, s.frames
                )?,
                (_, Some(rate)) => writeln!(
                    f,
                    "  {}: {} {} Hz, {} frames",
                    s.kind, s.codec, rate, s.frames
                )?,
                _ => writeln!(f, "  {}: {}, {} frames", s.kind, s.codec, s.frames)?,
            }
        }
        Ok(())
    }
}
