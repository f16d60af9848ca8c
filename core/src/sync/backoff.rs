//! Retry timing: exponential backoff with full jitter above a floor. Pure: the caller passes the
//! time and the random sample, so every trace can be replayed in a test.

use std::time::{Duration, Instant};

/// The shape of the delays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackoffPolicy {
    /// Shortest delay, and the base of the exponent (default 0.5 s).
    pub min: Duration,
    /// Longest delay (default 60 s).
    pub max: Duration,
}

impl Default for BackoffPolicy {
    fn default() -> Self {
        BackoffPolicy {
            min: Duration::from_millis(500),
            max: Duration::from_secs(60),
        }
    }
}

impl BackoffPolicy {
    /// The longest delay after `failures` failures in a row: `min * 2^failures`, at most `max`.
    pub fn ceiling(&self, failures: u32) -> Duration {
        let factor = 1u32.checked_shl(failures.min(31)).unwrap_or(u32::MAX);
        self.min
            .checked_mul(factor)
            .unwrap_or(self.max)
            .min(self.max)
            .max(self.min)
    }

    /// The delay after `failures` failures in a row for a uniform sample `jitter` in `[0, 1]`:
    /// uniformly between `min` and the ceiling, so clients that failed together spread out and
    /// no client retries more often than once per `min`.
    pub fn delay(&self, failures: u32, jitter: f64) -> Duration {
        let ceiling = self.ceiling(failures);
        let spread = ceiling.saturating_sub(self.min).as_nanos() as f64;
        self.min + Duration::from_nanos((spread * jitter.clamp(0.0, 1.0)).round() as u64)
    }
}

/// The retry state of one record or upload: failures in a row and when the next attempt may go.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Backoff {
    failures: u32,
    ready_at: Option<Instant>,
}

impl Backoff {
    /// Counts a failure at `now` and returns the delay before the next attempt.
    pub fn failed(&mut self, policy: &BackoffPolicy, now: Instant, jitter: f64) -> Duration {
        self.failures = self.failures.saturating_add(1);
        let delay = policy.delay(self.failures, jitter);
        self.ready_at = Some(now + delay);
        delay
    }

    /// Failures in a row so far.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// When the next attempt may go (`None`: now).
    pub fn ready_at(&self) -> Option<Instant> {
        self.ready_at
    }

    /// True if an attempt may go at `now`.
    pub fn is_ready(&self, now: Instant) -> bool {
        self.ready_at.is_none_or(|t| t <= now)
    }

    /// Lets the next attempt go now (the network came back, the app asked to sync); the failure
    /// count stays, so a still-broken server is not hammered.
    pub fn cut_short(&mut self) {
        self.ready_at = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(d: Duration) -> u64 {
        d.as_millis() as u64
    }

    #[test]
    fn ceilings_double_from_min_up_to_max() {
        let p = BackoffPolicy::default();
        let ceilings: Vec<u64> = (1..=9).map(|f| ms(p.ceiling(f))).collect();
        assert_eq!(
            ceilings,
            [1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000, 60000]
        );
        assert_eq!(p.ceiling(0), p.min);
        assert_eq!(p.ceiling(u32::MAX), p.max);
    }

    /// A recorded trace: failures at the times they happened with the jitter drawn for each, and the
    /// attempt times that followed.
    #[test]
    fn replays_a_recorded_trace() {
        let policy = BackoffPolicy::default();
        let t0 = Instant::now();
        let mut b = Backoff::default();
        // (failure at ms after t0, jitter) -> next attempt at ms after t0
        let trace: [(u64, f64, u64); 8] = [
            (0, 0.0, 500),
            (510, 1.0, 2510),
            (2530, 0.5, 4780),
            (4800, 0.25, 7175),
            (7200, 0.9, 21650),
            (21700, 1.0, 53700),
            (53800, 1.0, 113800),
            (113900, 0.0, 114400),
        ];
        for (i, (at, jitter, next)) in trace.into_iter().enumerate() {
            let now = t0 + Duration::from_millis(at);
            assert!(b.is_ready(now), "step {i}: attempt allowed at {at} ms");
            b.failed(&policy, now, jitter);
            assert_eq!(b.failures(), i as u32 + 1);
            assert_eq!(b.ready_at().map(|t| ms(t - t0)), Some(next), "step {i}");
            assert!(!b.is_ready(now + Duration::from_millis(next - at - 1)));
        }
    }

    #[test]
    fn cutting_short_keeps_the_failure_count() {
        let policy = BackoffPolicy::default();
        let now = Instant::now();
        let mut b = Backoff::default();
        b.failed(&policy, now, 0.0);
        b.failed(&policy, now, 1.0);
        assert!(!b.is_ready(now));
        b.cut_short();
        assert!(b.is_ready(now));
        assert_eq!(b.failures(), 2);
        assert_eq!(b.failed(&policy, now, 1.0), Duration::from_secs(4));
    }

    #[test]
    fn a_minute_of_failures_is_a_handful_of_attempts() {
        let policy = BackoffPolicy::default();
        let mut now = Instant::now();
        let end = now + Duration::from_secs(60);
        let mut b = Backoff::default();
        let mut attempts = 0;
        let mut jitters = [0.3, 0.7, 0.1, 0.9, 0.5].into_iter().cycle();
        while now < end {
            attempts += 1;
            now += b.failed(&policy, now, jitters.next().unwrap());
        }
        assert!(attempts <= 12, "{attempts} attempts in a minute");
        // Even the worst jitter never goes below one attempt per `min`.
        assert!(policy.delay(1, 0.0) >= policy.min);
    }
}
