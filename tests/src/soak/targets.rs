//! The soak's targets, each measured from the samples, the app's lines, the platform and the
//! viewer's frames, and judged with a one-line verdict.

use std::fmt;

use super::samples::Sample;
pub use fieldcast_qa::ledger::{Ledger, recoveries};

/// The resident memory may grow by less than this share after the warm-up.
pub const RSS_GROWTH_MAX: f64 = 0.05;
/// The longest warm-up, seconds from the lab's start (a third of a shorter run).
pub const WARMUP_MAX_S: f64 = 300.0;
/// Descriptors and threads are compared as medians over this long at each end.
pub const FLAT_WINDOW_S: f64 = 60.0;
/// How many more descriptors the end may hold than the start of the window.
pub const FDS_TOLERANCE: u64 = 3;
/// How many more threads the end may have than the start of the window.
pub const THREADS_TOLERANCE: u64 = 2;
/// After each outage the viewer gets fresh frames within this long of the link's return.
pub const RECOVERY_MAX_MS: u64 = 10_000;

/// The warm-up of a live of `live_s` seconds: 5 minutes, or a third of a shorter run.
pub fn warmup_s(live_s: f64) -> f64 {
    (live_s / 3.0).min(WARMUP_MAX_S)
}

/// One target, measured and judged.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// What is measured.
    pub name: &'static str,
    /// The measured value, with what it was measured on.
    pub measured: String,
    /// The target.
    pub target: String,
    /// Whether the target is met.
    pub pass: bool,
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}: {} (target: {})",
            if self.pass { "PASS" } else { "FAIL" },
            self.name,
            self.measured,
            self.target
        )
    }
}

/// RSS growth: the highest sample at or after the warm-up against the first sample at or after
/// it.
pub fn rss_growth(samples: &[Sample], warmup_s: f64) -> Verdict {
    let target = format!(
        "max RSS from {:.1} min on < {:.0} % above the first sample at {:.1} min",
        warmup_s / 60.0,
        RSS_GROWTH_MAX * 100.0,
        warmup_s / 60.0
    );
    let after: Vec<&Sample> = samples.iter().filter(|s| s.t_s >= warmup_s).collect();
    let (Some(first), Some(max)) = (
        after.first(),
        after.iter().max_by(|a, b| a.rss_mb.total_cmp(&b.rss_mb)),
    ) else {
        return Verdict {
            name: "rss growth",
            measured: "no sample after the warm-up".into(),
            target,
            pass: false,
        };
    };
    let growth = max.rss_mb / first.rss_mb - 1.0;
    Verdict {
        name: "rss growth",
        measured: format!(
            "{:+.1} % ({:.1} MB at {:.1} min, max {:.1} MB at {:.1} min, last {:.1} MB)",
            growth * 100.0,
            first.rss_mb,
            first.t_s / 60.0,
            max.rss_mb,
            max.t_s / 60.0,
            after.last().map_or(f64::NAN, |s| s.rss_mb)
        ),
        target,
        pass: growth < RSS_GROWTH_MAX,
    }
}

/// A count that must stay flat: the median over the last [`FLAT_WINDOW_S`] of the samples is at
/// most `tolerance` above the median over the first [`FLAT_WINDOW_S`] after the warm-up.
pub fn flat(
    samples: &[Sample],
    warmup_s: f64,
    name: &'static str,
    tolerance: u64,
    value: impl Fn(&Sample) -> u64,
) -> Verdict {
    let target = format!(
        "median of the last {FLAT_WINDOW_S:.0} s <= median of the first {FLAT_WINDOW_S:.0} s \
         from {:.1} min + {tolerance}",
        warmup_s / 60.0
    );
    let end = samples.last().map_or(0.0, |s| s.t_s);
    let start_values: Vec<u64> = samples
        .iter()
        .filter(|s| s.t_s >= warmup_s && s.t_s < warmup_s + FLAT_WINDOW_S)
        .map(&value)
        .collect();
    let end_values: Vec<u64> = samples
        .iter()
        .filter(|s| s.t_s > end - FLAT_WINDOW_S && s.t_s >= warmup_s + FLAT_WINDOW_S)
        .map(&value)
        .collect();
    let (Some(start), Some(last)) = (median(start_values), median(end_values)) else {
        return Verdict {
            name,
            measured: "too few samples after the warm-up".into(),
            target,
            pass: false,
        };
    };
    let all: Vec<u64> = samples
        .iter()
        .filter(|s| s.t_s >= warmup_s)
        .map(&value)
        .collect();
    Verdict {
        name,
        measured: format!(
            "{start} at {:.1} min, {last} at the end ({:+}; range {}-{} from {:.1} min)",
            warmup_s / 60.0,
            last as i64 - start as i64,
            all.iter().min().unwrap_or(&0),
            all.iter().max().unwrap_or(&0),
            warmup_s / 60.0
        ),
        target,
        pass: last <= start + tolerance,
    }
}

fn median(mut values: Vec<u64>) -> Option<u64> {
    values.sort_unstable();
    values.get(values.len() / 2).copied()
}

/// The verdict on a [`Ledger`].
pub trait LedgerVerdict {
    /// The verdict: something made, and every record on the platform exactly once.
    fn verdict(&self, name: &'static str, what: &str) -> Verdict;
}

impl LedgerVerdict for Ledger {
    fn verdict(&self, name: &'static str, what: &str) -> Verdict {
        Verdict {
            name,
            measured: format!(
                "{} {what} made, {} on the platform exactly once, {} lost, {} doubled, {} unknown to the app",
                self.made, self.once, self.lost, self.doubled, self.unknown
            ),
            target: format!("every {what} on the platform exactly once, nothing else"),
            pass: self.made > 0
                && self.once == self.made
                && self.lost == 0
                && self.doubled == 0
                && self.unknown == 0,
        }
    }
}

/// The verdict on the recoveries: every outage recovered within [`RECOVERY_MAX_MS`].
pub fn recovery(recoveries: &[Option<u64>]) -> Verdict {
    let mut times: Vec<u64> = recoveries.iter().flatten().copied().collect();
    times.sort_unstable();
    let within = times.iter().filter(|&&ms| ms <= RECOVERY_MAX_MS).count();
    let pick = |q: f64| {
        times
            .get(((times.len().max(1) - 1) as f64 * q).round() as usize)
            .map_or("-".to_string(), |ms| {
                format!("{:.1} s", *ms as f64 / 1000.0)
            })
    };
    Verdict {
        name: "outage recovery",
        measured: format!(
            "{within} of {} outages recovered within {} s ({} never); p50 {}, p95 {}, max {}",
            recoveries.len(),
            RECOVERY_MAX_MS / 1000,
            recoveries.len() - times.len(),
            pick(0.5),
            pick(0.95),
            pick(1.0)
        ),
        target: format!(
            "fresh frames at the viewer within {} s after every outage",
            RECOVERY_MAX_MS / 1000
        ),
        pass: !recoveries.is_empty() && within == recoveries.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(t_s: f64, rss_mb: f64, fds: u64) -> Sample {
        Sample {
            t_s,
            wall_ms: 0,
            state: "live".into(),
            rss_mb,
            threads: 20,
            fds,
            outbox: None,
            frames: 300,
            latency_ms: Some((500, 900)),
        }
    }

    #[test]
    fn rss_growth_is_the_max_after_the_warm_up_against_its_first_sample() {
        let samples = [
            sample(100.0, 50.0, 10),
            sample(300.0, 80.0, 10),
            sample(600.0, 82.0, 10),
            sample(900.0, 81.0, 10),
        ];
        let verdict = rss_growth(&samples, 300.0);
        assert!(verdict.pass, "{verdict}");
        assert!(verdict.measured.starts_with("+2.5 %"), "{verdict}");
        let grown = [sample(300.0, 80.0, 10), sample(400.0, 84.5, 10)];
        assert!(!rss_growth(&grown, 300.0).pass);
        assert!(!rss_growth(&samples, 1000.0).pass);
    }

    #[test]
    fn flat_compares_the_medians_at_both_ends() {
        let steady: Vec<Sample> = (0..60)
            .map(|n| sample(n as f64 * 10.0, 80.0, if n % 7 == 0 { 30 } else { 20 }))
            .collect();
        assert!(flat(&steady, 100.0, "fds", 3, |s| s.fds).pass);
        let leaking: Vec<Sample> = (0..60)
            .map(|n| sample(n as f64 * 10.0, 80.0, 20 + n / 5))
            .collect();
        let verdict = flat(&leaking, 100.0, "fds", 3, |s| s.fds);
        assert!(!verdict.pass, "{verdict}");
        assert!(verdict.measured.contains("+9"), "{verdict}");
    }

    #[test]
    fn the_ledger_passes_only_every_record_once() {
        let made = ["a", "b", "c", "d"];
        assert!(
            !Ledger::compare(&made, &["a", "c", "c", "x"])
                .verdict("sales", "sale")
                .pass
        );
        assert!(Ledger::compare(&made, &made).verdict("sales", "sale").pass);
        assert!(
            !Ledger::compare::<&str>(&[], &[])
                .verdict("sales", "sale")
                .pass
        );
    }

    #[test]
    fn every_outage_must_recover_within_the_limit() {
        assert!(!recovery(&[Some(1_600), None]).pass);
        assert!(recovery(&[Some(1_600), Some(9_000)]).pass);
        assert!(!recovery(&[Some(10_001)]).pass);
    }
}
