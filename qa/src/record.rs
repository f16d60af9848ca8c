//! What one field-lab run leaves behind, as data: `run.json` holds the whole [`RunRecord`]
//! (samples included) for the report and for `fieldcast qa compare`; `summary.json` holds the
//! same without the samples, for people and scripts that want the verdict and the figures.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::scenario::Assertions;

/// The name of the whole record in a run's directory.
pub const RUN_FILE: &str = "run.json";
/// The name of the summary (the record without its samples) in a run's directory.
pub const SUMMARY_FILE: &str = "summary.json";

/// One run of a scenario: what ran, what was measured, and the verdict of each assertion.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// The scenario's name.
    pub scenario: String,
    /// The scenario's description.
    pub description: String,
    /// The device profile's name.
    pub device: String,
    /// The CPU the device profile gives, in host cores (100 % of the device is this much).
    pub device_host_cores: f64,
    /// The network profile's name.
    pub network: String,
    /// The build that ran: the `fieldcast` version and where its binary was.
    pub build: String,
    /// When the run started, ms since the Unix epoch.
    pub started_wall_ms: u64,
    /// How long the run lasted, seconds from its start (time 0 of every series).
    pub seconds: f64,
    /// Whether every assertion passed and the run completed.
    pub pass: bool,
    /// Why the run did not complete, when it did not.
    pub failure: Option<String>,
    /// The figures the assertions are checked against.
    pub figures: Figures,
    /// The scenario's bounds, as numbers (drawn on the plots).
    #[serde(default)]
    pub bounds: Assertions,
    /// Each assertion of the scenario with its measured value.
    pub assertions: Vec<Check>,
    /// The scenario's actions as they were played, in order.
    pub actions: Vec<Mark>,
    /// The live session's states as the app reported them, in order.
    pub states: Vec<Mark>,
    /// Spans with the network down (scripted or from the network profile): (from, to) seconds.
    pub outages: Vec<(f64, f64)>,
    /// The link's capacity as the network lab set it, a step function: (from second, kbit/s;
    /// 0 while down, `None` when not limited).
    pub capacity_kbps: Vec<(f64, Option<f64>)>,
    /// One sample per second (empty in `summary.json`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub samples: Vec<RunSample>,
}

/// Something that happened at a moment of the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Mark {
    /// Seconds from the run's start.
    pub t_s: f64,
    /// What happened, e.g. `sell 2 × orange-box` or the state `reconnecting`.
    pub label: String,
}

/// The figures of a run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Figures {
    /// Seconds from the `go_live` action to the first `live` state.
    pub live_after_s: Option<f64>,
    /// For each network outage: seconds from the network coming back to the viewer's next
    /// frame (`None`: never within the run).
    pub back_after_s: Vec<Option<f64>>,
    /// Viewer latency, capture to decode, over the run's stamped frames: p50, ms.
    pub latency_p50_ms: Option<u64>,
    /// The same, p95, ms.
    pub latency_p95_ms: Option<u64>,
    /// Frames the viewer decoded.
    pub viewer_frames: usize,
    /// Sales the app took (acknowledged by the SDK).
    pub sales_taken: usize,
    /// Sales the platform holds for the live session.
    pub sales_on_platform: usize,
    /// Sales taken that the platform does not hold.
    pub sales_lost: usize,
    /// Sales the platform holds more than once.
    pub sales_doubled: usize,
    /// The longest gap between consecutive video frames of any recording file, ms.
    pub max_frame_gap_ms: Option<u64>,
    /// Recording files read for the gap.
    pub recording_files: usize,
    /// The publisher's highest resident memory, MB.
    pub peak_rss_mb: Option<f64>,
    /// The publisher's CPU while live, mean, percent of the device (its host cores).
    pub cpu_pct_of_device: Option<f64>,
    /// The publisher's CPU per second of live media, CPU seconds.
    pub cpu_s_per_media_s: Option<f64>,
    /// Seconds the session was live (media seconds).
    pub media_s: f64,
    /// Times the session went `reconnecting`.
    pub reconnections: usize,
    /// Seconds the device's CPU limit held the publisher back (cgroup throttling).
    pub throttled_s: Option<f64>,
}

/// One assertion of the scenario and how the run did against it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Check {
    /// What is checked, e.g. `p95 latency`.
    pub name: String,
    /// The bound, in words, e.g. `at most 3000 ms`.
    pub target: String,
    /// What the run measured, in words with units.
    pub measured: String,
    /// Whether the bound was met.
    pub pass: bool,
}

/// One second of a run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunSample {
    /// Seconds from the run's start.
    pub t_s: f64,
    /// The live session's state, as the app last reported it (`-` before going live).
    pub state: String,
    /// The encoder's output, kbit/s (video), from the session's statistics.
    pub encoder_kbps: Option<f64>,
    /// The bitrate the adaptive bitrate asked the encoder for, kbit/s.
    pub target_kbps: Option<f64>,
    /// The uplink's capacity as the adaptive bitrate estimated it, kbit/s.
    pub estimate_kbps: Option<f64>,
    /// The link's capacity as the network lab set it, kbit/s (0 while down).
    pub capacity_kbps: Option<f64>,
    /// Frames per second leaving the encoder.
    pub encoder_fps: Option<f64>,
    /// Frames the viewer decoded in this second.
    pub viewer_frames: usize,
    /// Viewer latency of the stamped frames decoded in the last few seconds: p50, ms.
    pub latency_p50_ms: Option<f64>,
    /// The same, p95, ms.
    pub latency_p95_ms: Option<f64>,
    /// Sales and pin events not yet on the platform.
    pub outbox_depth: Option<u64>,
    /// The publisher's CPU in this second, percent of the device.
    pub cpu_pct: Option<f64>,
    /// The publisher's resident memory, MB.
    pub rss_mb: Option<f64>,
}

/// Why a record could not be read or written.
#[derive(Debug)]
pub enum RecordError {
    /// The file could not be read or written.
    Io(String),
    /// The file is not a run record.
    Format(String),
}

impl std::fmt::Display for RecordError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RecordError::Io(m) => write!(f, "{m}"),
            RecordError::Format(m) => write!(f, "not a field-lab run record: {m}"),
        }
    }
}

impl std::error::Error for RecordError {}

impl RunRecord {
    /// Writes `run.json` (everything) and `summary.json` (without the samples) into `dir`.
    pub fn write(&self, dir: &Path) -> Result<(), RecordError> {
        let summary = RunRecord {
            samples: Vec::new(),
            ..self.clone()
        };
        for (name, record) in [(RUN_FILE, self), (SUMMARY_FILE, &summary)] {
            let path = dir.join(name);
            let json = serde_json::to_string_pretty(record).expect("a record serializes");
            std::fs::write(&path, json + "\n")
                .map_err(|e| RecordError::Io(format!("{}: {e}", path.display())))?;
        }
        Ok(())
    }

    /// Reads the record of the run in `dir` (its `run.json`), or from a `run.json` path.
    pub fn read(dir_or_file: &Path) -> Result<RunRecord, RecordError> {
        let path = if dir_or_file.is_dir() {
            dir_or_file.join(RUN_FILE)
        } else {
            dir_or_file.to_path_buf()
        };
        let json = std::fs::read_to_string(&path)
            .map_err(|e| RecordError::Io(format!("{}: {e}", path.display())))?;
        serde_json::from_str(&json)
            .map_err(|e| RecordError::Format(format!("{}: {e}", path.display())))
    }

    /// The one-line verdict: `PASS market-day on entry-2019/rural-3g: 6 of 6 assertions met`.
    pub fn summary_line(&self) -> String {
        let met = self.assertions.iter().filter(|c| c.pass).count();
        let mut line = format!(
            "{} {} on {}/{}: {met} of {} assertions met",
            if self.pass { "PASS" } else { "FAIL" },
            self.scenario,
            self.device,
            self.network,
            self.assertions.len()
        );
        if let Some(failure) = &self.failure {
            line.push_str(&format!("; the run did not complete: {failure}"));
        }
        for check in self.assertions.iter().filter(|c| !c.pass) {
            line.push_str(&format!(
                "; {}: {} (target: {})",
                check.name, check.measured, check.target
            ));
        }
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> RunRecord {
        RunRecord {
            scenario: "smoke".into(),
            description: "a short live".into(),
            device: "desktop".into(),
            device_host_cores: 2.0,
            network: "good-4g".into(),
            build: "fieldcast 0.1.0".into(),
            started_wall_ms: 1,
            seconds: 60.0,
            pass: false,
            failure: None,
            figures: Figures {
                sales_taken: 3,
                sales_on_platform: 3,
                ..Figures::default()
            },
            bounds: Assertions::default(),
            assertions: vec![
                Check {
                    name: "sales".into(),
                    target: "every sale on the platform once".into(),
                    measured: "3 of 3".into(),
                    pass: true,
                },
                Check {
                    name: "p95 latency".into(),
                    target: "at most 2000 ms".into(),
                    measured: "2400 ms".into(),
                    pass: false,
                },
            ],
            actions: vec![Mark {
                t_s: 1.0,
                label: "go live".into(),
            }],
            states: Vec::new(),
            outages: vec![(10.0, 15.0)],
            capacity_kbps: vec![(0.0, Some(1000.0)), (10.0, Some(0.0))],
            samples: vec![RunSample {
                t_s: 1.0,
                state: "live".into(),
                ..RunSample::default()
            }],
        }
    }

    #[test]
    fn a_record_reads_back_and_its_summary_has_no_samples() {
        let dir = tempfile::tempdir().unwrap();
        let run = record();
        run.write(dir.path()).unwrap();
        assert_eq!(RunRecord::read(dir.path()).unwrap(), run);
        let summary = RunRecord::read(&dir.path().join(SUMMARY_FILE)).unwrap();
        assert!(summary.samples.is_empty());
        assert_eq!(summary.figures, run.figures);
    }

    #[test]
    fn the_summary_line_names_what_failed() {
        let line = record().summary_line();
        assert_eq!(
            line,
            "FAIL smoke on desktop/good-4g: 1 of 2 assertions met; p95 latency: 2400 ms (target: at most 2000 ms)"
        );
    }

    #[test]
    fn a_file_that_is_not_a_record_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(RUN_FILE), "{\"scenario\": 1}").unwrap();
        assert!(matches!(
            RunRecord::read(dir.path()),
            Err(RecordError::Format(_))
        ));
        assert!(matches!(
            RunRecord::read(&dir.path().join("absent")),
            Err(RecordError::Io(_))
        ));
    }
}
