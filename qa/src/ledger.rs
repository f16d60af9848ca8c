//! What the app made against what the platform holds, and how soon the viewer saw fresh frames
//! after each interruption: the bookkeeping shared by the soak and the field lab.

use std::collections::HashMap;

use fieldcast_core::receiver::FrameArrival;

/// How records the app made compare with what the platform holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ledger {
    /// Made by the app.
    pub made: usize,
    /// Made by the app and on the platform exactly once.
    pub once: usize,
    /// Made by the app and not on the platform.
    pub lost: usize,
    /// Made by the app and on the platform more than once.
    pub doubled: usize,
    /// On the platform but never made by the app.
    pub unknown: usize,
}

impl Ledger {
    /// Compares the app's records (by key) with the platform's.
    pub fn compare<K: Eq + std::hash::Hash>(made: &[K], on_platform: &[K]) -> Ledger {
        let mut held: HashMap<&K, usize> = HashMap::new();
        for key in on_platform {
            *held.entry(key).or_default() += 1;
        }
        let mut ledger = Ledger {
            made: made.len(),
            once: 0,
            lost: 0,
            doubled: 0,
            unknown: 0,
        };
        for key in made {
            match held.remove(key) {
                None => ledger.lost += 1,
                Some(1) => ledger.once += 1,
                Some(_) => ledger.doubled += 1,
            }
        }
        ledger.unknown = held.values().sum();
        ledger
    }
}

/// For each outage (went down, came back; wall ms), how long after the link came back the
/// viewer decoded a frame captured after the link went down (an old frame flushed late does not
/// count); `None` when no such frame came.
pub fn recoveries(outages: &[(u64, u64)], frames: &[FrameArrival]) -> Vec<Option<u64>> {
    outages
        .iter()
        .map(|&(down, up)| {
            frames
                .iter()
                .find(|f| f.wall_ms >= up && f.capture_ms.is_some_and(|c| c >= down))
                .map(|f| f.wall_ms - up)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ledger_finds_lost_doubled_and_unknown_records() {
        let ledger = Ledger::compare(&["a", "b", "c", "d"], &["a", "c", "c", "x"]);
        assert_eq!(
            ledger,
            Ledger {
                made: 4,
                once: 1,
                lost: 2,
                doubled: 1,
                unknown: 1
            }
        );
    }

    #[test]
    fn a_recovery_needs_a_frame_captured_after_the_link_fell() {
        let frames = [
            FrameArrival::new(10_500, Some(9_000), None, (854, 480)),
            FrameArrival::new(12_000, Some(10_100), None, (854, 480)),
        ];
        assert_eq!(
            recoveries(&[(10_000, 10_400), (20_000, 23_000)], &frames),
            vec![Some(1_600), None]
        );
    }
}
