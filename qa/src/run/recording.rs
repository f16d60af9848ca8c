//! The recording's frame gaps: each segment's video packet times read with ffprobe (Debian's
//! `ffmpeg`), and the gaps between consecutive frames.

use std::path::Path;
use std::process::Command;

/// The video frame gaps of one recorded segment.
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentGaps {
    /// The segment's file name.
    pub file: String,
    /// Video frames read.
    pub frames: usize,
    /// Gaps between consecutive frames longer than the threshold asked for, ms, in order.
    pub long_gaps_ms: Vec<u64>,
    /// The longest gap, ms.
    pub max_gap_ms: u64,
}

/// The frame gaps of every `*.mp4` in `dir`, in file order, with the gaps longer than
/// `threshold_ms` listed; an error when ffprobe cannot run. A segment ffprobe cannot read
/// counts with no frames.
pub fn gaps(dir: &Path, threshold_ms: u64) -> Result<Vec<SegmentGaps>, String> {
    let mut files: Vec<_> = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "mp4"))
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(format!("{}: {e}", dir.display())),
    };
    files.sort();
    files
        .iter()
        .map(|path| {
            let times = packet_times(path)?;
            Ok(segment_gaps(
                &path.file_name().unwrap_or_default().to_string_lossy(),
                &times,
                threshold_ms,
            ))
        })
        .collect()
}

/// The presentation times of the video packets of `path`, seconds, sorted.
fn packet_times(path: &Path) -> Result<Vec<f64>, String> {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0", "-show_entries"])
        .args(["packet=pts_time", "-of", "csv=p=0"])
        .arg(path)
        .output()
        .map_err(|e| format!("ffprobe (Debian package ffmpeg) does not run: {e}"))?;
    let mut times: Vec<f64> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.trim().trim_end_matches(',').parse().ok())
        .collect();
    times.sort_by(f64::total_cmp);
    Ok(times)
}

fn segment_gaps(file: &str, times: &[f64], threshold_ms: u64) -> SegmentGaps {
    let gaps: Vec<u64> = times
        .windows(2)
        .map(|w| ((w[1] - w[0]) * 1000.0).round() as u64)
        .collect();
    SegmentGaps {
        file: file.into(),
        frames: times.len(),
        long_gaps_ms: gaps.iter().copied().filter(|&g| g > threshold_ms).collect(),
        max_gap_ms: gaps.iter().copied().max().unwrap_or(0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaps_are_measured_between_consecutive_frames() {
        let times = [0.0, 0.033, 0.066, 1.5, 1.533];
        let gaps = segment_gaps("a.mp4", &times, 1000);
        assert_eq!(gaps.frames, 5);
        assert_eq!(gaps.max_gap_ms, 1434);
        assert_eq!(gaps.long_gaps_ms, [1434]);
        assert_eq!(segment_gaps("b.mp4", &[], 1000).max_gap_ms, 0);
    }

    #[test]
    fn a_directory_without_recording_has_no_segments() {
        let dir = tempfile::tempdir().unwrap();
        assert!(gaps(&dir.path().join("absent"), 1000).unwrap().is_empty());
    }
}
