//! From what a run observed to its figures and the verdict on each of the scenario's
//! assertions.

use fieldcast_core::LatencyReport;
use fieldcast_core::receiver::FrameArrival;

use super::recording::SegmentGaps;
use crate::events::{AppEvent, AppLog};
use crate::ledger::{Ledger, recoveries};
use crate::record::{Check, Figures, RunSample};
use crate::scenario::{Action, Scenario};

/// Everything a run observed, in wall-clock ms where it is a moment.
pub struct Observed<'a> {
    /// The scenario played.
    pub scenario: &'a Scenario,
    /// Every line of every start of the app, in order (a kill appears as the state `killed`).
    pub log: &'a AppLog,
    /// The viewer's decoded frames.
    pub frames: &'a [FrameArrival],
    /// The run's samples.
    pub samples: &'a [RunSample],
    /// When `go_live` was sent.
    pub go_live_ms: Option<u64>,
    /// When `end` was sent (`None`: the live ran to the end of the run).
    pub end_ms: Option<u64>,
    /// Interruptions while live: network outages and kills of the app, (began, ended) where an
    /// app's interruption ends when the restarted app was told to go live.
    pub interruptions: &'a [(u64, u64)],
    /// The platform's sale ids for the live session.
    pub on_platform: &'a [String],
    /// The recording's segments, when the scenario records.
    pub recording: Option<&'a [SegmentGaps]>,
    /// CPU seconds the device spent while the session was live.
    pub cpu_live_s: Option<f64>,
    /// Seconds the device's CPU limit held the app back.
    pub throttled_s: Option<f64>,
}

impl Observed<'_> {
    /// The run's figures.
    pub fn figures(&self) -> Figures {
        let ledger = Ledger::compare(&self.log.sale_ids(), self.on_platform);
        let latency = self.latency();
        let media_s = self.samples.iter().filter(|s| s.state == "live").count() as f64;
        Figures {
            live_after_s: self.live_after_s(),
            back_after_s: recoveries(self.interruptions, self.frames)
                .into_iter()
                .map(|ms| ms.map(|ms| ms as f64 / 1000.0))
                .collect(),
            latency_p50_ms: (latency.samples > 0).then_some(latency.p50_ms),
            latency_p95_ms: (latency.samples > 0).then_some(latency.p95_ms),
            viewer_frames: self.frames.len(),
            sales_taken: ledger.made,
            sales_on_platform: self.on_platform.len(),
            sales_lost: ledger.lost,
            sales_doubled: ledger.doubled,
            max_frame_gap_ms: self
                .recording
                .and_then(|segments| segments.iter().map(|s| s.max_gap_ms).max()),
            recording_files: self.recording.map_or(0, <[SegmentGaps]>::len),
            peak_rss_mb: self
                .samples
                .iter()
                .filter_map(|s| s.rss_mb)
                .reduce(f64::max),
            cpu_pct_of_device: mean(
                self.samples
                    .iter()
                    .filter(|s| s.state == "live")
                    .filter_map(|s| s.cpu_pct),
            ),
            cpu_s_per_media_s: self
                .cpu_live_s
                .filter(|_| media_s > 0.0)
                .map(|cpu| cpu / media_s),
            media_s,
            reconnections: self.log.reconnections(),
            throttled_s: self.throttled_s,
        }
    }

    /// The latency of the stamped frames the viewer decoded while the live ran.
    fn latency(&self) -> LatencyReport {
        let until = self.end_ms.unwrap_or(u64::MAX);
        let stamped: Vec<u64> = self
            .frames
            .iter()
            .filter(|f| f.wall_ms <= until)
            .filter_map(|f| f.latency_ms)
            .collect();
        LatencyReport::from_samples(stamped, 0)
    }

    /// Seconds from `go_live` to the first `live` state after it.
    fn live_after_s(&self) -> Option<f64> {
        let from = self.go_live_ms?;
        self.log.events.iter().find_map(|e| match e {
            AppEvent::State { wall_ms, to } if to == "live" && *wall_ms >= from => {
                Some((wall_ms - from) as f64 / 1000.0)
            }
            _ => None,
        })
    }

    /// Each assertion of the scenario, judged against `figures`.
    pub fn checks(&self, figures: &Figures) -> Vec<Check> {
        let bounds = &self.scenario.assertions;
        let mut checks = Vec::new();
        let secs = |v: Option<f64>| v.map_or("never".to_string(), |s| format!("{s:.1} s"));
        if let Some(bound) = bounds.live_within_s {
            checks.push(Check {
                name: "live within".into(),
                target: format!("live at most {bound} s after go_live"),
                measured: secs(figures.live_after_s),
                pass: figures.live_after_s.is_some_and(|s| s <= bound),
            });
        }
        if let Some(bound) = bounds.back_within_s {
            let backs = &figures.back_after_s;
            let worst = backs.iter().copied().reduce(|a, b| match (a, b) {
                (Some(a), Some(b)) => Some(a.max(b)),
                _ => None,
            });
            checks.push(Check {
                name: "back within".into(),
                target: format!(
                    "fresh frames at the viewer at most {bound} s after each outage and restart"
                ),
                measured: match worst {
                    None => "no interruption while live".into(),
                    Some(worst) => format!(
                        "{} interruption(s), the slowest back after {}",
                        backs.len(),
                        secs(worst)
                    ),
                },
                pass: backs.iter().all(|b| b.is_some_and(|s| s <= bound)),
            });
        }
        if let Some(bound) = bounds.latency_p95_ms {
            checks.push(Check {
                name: "p95 latency".into(),
                target: format!("at most {bound} ms, capture to the viewer's decode"),
                measured: figures
                    .latency_p95_ms
                    .map_or("no stamped frame".into(), |p95| {
                        format!("{p95} ms over {} frames", figures.viewer_frames)
                    }),
                pass: figures.latency_p95_ms.is_some_and(|p95| p95 <= bound),
            });
        }
        if bounds.sales_match {
            checks.push(Check {
                name: "sales".into(),
                target: "every sale taken on the platform exactly once, nothing else".into(),
                measured: format!(
                    "{} taken, {} on the platform, {} lost, {} doubled",
                    figures.sales_taken,
                    figures.sales_on_platform,
                    figures.sales_lost,
                    figures.sales_doubled
                ),
                pass: figures.sales_lost == 0
                    && figures.sales_doubled == 0
                    // With none lost or doubled, equal counts leave nothing unknown to the app.
                    && figures.sales_on_platform == figures.sales_taken,
            });
        }
        if let Some(bound) = bounds.max_frame_gap_ms {
            checks.push(self.gap_check(bound));
        }
        if let Some(bound) = bounds.peak_rss_mb {
            checks.push(Check {
                name: "peak memory".into(),
                target: format!("RSS at most {bound} MB"),
                measured: figures
                    .peak_rss_mb
                    .map_or("not measured".into(), |mb| format!("{mb:.1} MB")),
                pass: figures.peak_rss_mb.is_some_and(|mb| mb <= bound),
            });
        }
        if let Some(bound) = bounds.cpu_pct_of_device {
            checks.push(Check {
                name: "CPU".into(),
                target: format!("mean while live at most {bound} % of the device"),
                measured: figures
                    .cpu_pct_of_device
                    .map_or("not measured".into(), |pct| {
                        format!(
                            "{pct:.0} % of the device{}",
                            figures
                                .cpu_s_per_media_s
                                .map_or(String::new(), |c| format!(" ({c:.2} CPU s per media s)"))
                        )
                    }),
                pass: figures.cpu_pct_of_device.is_some_and(|pct| pct <= bound),
            });
        }
        checks
    }

    /// The gap check: a gap longer than `bound` passes only where the app was in the
    /// background (no frames to record) for at least that long, one gap per background.
    fn gap_check(&self, bound: u64) -> Check {
        let target = format!(
            "no gap over {bound} ms between recorded frames, except while the app is in the background"
        );
        let Some(segments) = self.recording else {
            return Check {
                name: "recording gaps".into(),
                target,
                measured: "the scenario records nothing".into(),
                pass: false,
            };
        };
        let mut long: Vec<u64> = segments
            .iter()
            .flat_map(|s| s.long_gaps_ms.iter().copied())
            .collect();
        long.sort_unstable_by(|a, b| b.cmp(a));
        let mut backgrounds: Vec<u64> = self
            .scenario
            .timeline
            .iter()
            .filter_map(|s| match s.action {
                Action::Background { secs } => Some((secs * 1000.0) as u64 + bound),
                _ => None,
            })
            .collect();
        backgrounds.sort_unstable_by(|a, b| b.cmp(a));
        let explained = long
            .iter()
            .zip(&backgrounds)
            .take_while(|(gap, allowed)| gap <= allowed)
            .count();
        let unreadable = segments.iter().filter(|s| s.frames == 0).count();
        let max = segments.iter().map(|s| s.max_gap_ms).max().unwrap_or(0);
        Check {
            name: "recording gaps".into(),
            target,
            measured: format!(
                "longest {max} ms in {} segment(s) ({} frames){}; {} gap(s) over {bound} ms, {explained} of them in the background{}",
                segments.len(),
                segments.iter().map(|s| s.frames).sum::<usize>(),
                if unreadable > 0 {
                    format!(", {unreadable} unreadable")
                } else {
                    String::new()
                },
                long.len(),
                if long.len() > explained {
                    format!(", longest unexplained {} ms", long[explained])
                } else {
                    String::new()
                },
            ),
            pass: !segments.is_empty() && unreadable == 0 && explained == long.len(),
        }
    }
}

fn mean(values: impl Iterator<Item = f64>) -> Option<f64> {
    let (sum, n) = values.fold((0.0, 0), |(s, n), v| (s + v, n + 1));
    (n > 0).then(|| sum / n as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scenario() -> Scenario {
        Scenario::parse(
            r#"{"name":"t","device":"desktop","network":"good-4g","duration_s":60,
                "timeline":[{"at_s":1,"action":"go_live","record":true},
                            {"at_s":20,"action":"background","secs":5}],
                "assertions":{"live_within_s":5,"back_within_s":10,"latency_p95_ms":1000,
                              "max_frame_gap_ms":500,"peak_rss_mb":200,"cpu_pct_of_device":80}}"#,
            "test",
        )
        .unwrap()
    }

    fn log(lines: &[&str]) -> AppLog {
        let mut log = AppLog::default();
        for line in lines {
            log.push_line(line);
        }
        log
    }

    fn sample(t_s: f64, state: &str, cpu: f64, rss: f64) -> RunSample {
        RunSample {
            t_s,
            state: state.into(),
            cpu_pct: Some(cpu),
            rss_mb: Some(rss),
            ..RunSample::default()
        }
    }

    #[test]
    fn figures_and_checks_follow_what_was_observed() {
        let scenario = scenario();
        let log = log(&[
            r#"{"event":"state","wall_ms":1000,"to":"connecting"}"#,
            r#"{"event":"state","wall_ms":3500,"to":"live"}"#,
            r#"{"event":"sale","wall_ms":4000,"sale_id":"a","product_id":"egg-tray","quantity":1}"#,
            r#"{"event":"sale","wall_ms":5000,"sale_id":"b","product_id":"egg-tray","quantity":1}"#,
        ]);
        let frames: Vec<FrameArrival> = (0..100)
            .map(|n| FrameArrival::new(4_000 + n * 100, Some(3_700 + n * 100), None, (854, 480)))
            .collect();
        let samples = [
            sample(1.0, "connecting", 90.0, 80.0),
            sample(2.0, "live", 50.0, 120.0),
            sample(3.0, "live", 70.0, 110.0),
        ];
        let recording = [SegmentGaps {
            file: "fieldcast-00000.mp4".into(),
            frames: 900,
            long_gaps_ms: vec![5_300],
            max_gap_ms: 5_300,
        }];
        let on_platform = ["a".to_string()];
        let observed = Observed {
            scenario: &scenario,
            log: &log,
            frames: &frames,
            samples: &samples,
            go_live_ms: Some(1_000),
            end_ms: None,
            interruptions: &[(6_000, 8_000)],
            on_platform: &on_platform,
            recording: Some(&recording),
            cpu_live_s: Some(2.4),
            throttled_s: Some(0.5),
        };
        let figures = observed.figures();
        assert_eq!(figures.live_after_s, Some(2.5));
        assert_eq!(figures.back_after_s, [Some(0.0)]);
        assert_eq!(figures.latency_p95_ms, Some(300));
        assert_eq!((figures.sales_taken, figures.sales_lost), (2, 1));
        assert_eq!(figures.peak_rss_mb, Some(120.0));
        assert_eq!(figures.cpu_pct_of_device, Some(60.0));
        assert_eq!(figures.media_s, 2.0);
        assert_eq!(figures.cpu_s_per_media_s, Some(1.2));
        let checks = observed.checks(&figures);
        let verdict = |name: &str| checks.iter().find(|c| c.name == name).unwrap().pass;
        assert!(verdict("live within"));
        assert!(verdict("back within"));
        assert!(verdict("p95 latency"));
        assert!(!verdict("sales"), "{checks:?}");
        assert!(
            verdict("recording gaps"),
            "the 5.3 s gap is the 5 s background"
        );
        assert!(verdict("peak memory"));
        assert!(verdict("CPU"));
    }

    #[test]
    fn a_gap_without_a_background_fails() {
        let scenario = scenario();
        let log = AppLog::default();
        let two_gaps = [SegmentGaps {
            file: "a.mp4".into(),
            frames: 10,
            long_gaps_ms: vec![5_200, 900],
            max_gap_ms: 5_200,
        }];
        let observed = Observed {
            scenario: &scenario,
            log: &log,
            frames: &[],
            samples: &[],
            go_live_ms: None,
            end_ms: None,
            interruptions: &[],
            on_platform: &[],
            recording: Some(&two_gaps),
            cpu_live_s: None,
            throttled_s: None,
        };
        let check = observed.gap_check(500);
        assert!(!check.pass, "{check:?}");
        assert!(
            check.measured.contains("longest unexplained 900 ms"),
            "{check:?}"
        );
        // Nothing measured fails every bound that needs a measurement; no interruption and
        // no sale on either side are no fault.
        let checks = observed.checks(&observed.figures());
        let passed: Vec<&str> = checks
            .iter()
            .filter(|c| c.pass)
            .map(|c| c.name.as_str())
            .collect();
        assert_eq!(passed, ["back within", "sales"], "{checks:?}");
    }
}
