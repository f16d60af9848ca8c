//! When to reconnect the live output after it broke. Pure: the caller passes the time since the
//! session started and a uniform random sample, so every trace can be replayed in a test.
//!
//! While live the uplink retries forever with exponential backoff and jitter (0.5 s, capped at
//! 2 s), except when the ingest refused the stream for good (authentication, stream key), which
//! is reported instead of retried.

use std::time::Duration;

use crate::error::IngestCause;

use crate::sync::BackoffPolicy;

/// The shape of the waits between attempts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReconnectPolicy {
    /// Delays: uniformly between `min` and `min * 2^failures`, capped at `max`.
    pub backoff: BackoffPolicy,
    /// A connection that stays up this long proves the link: the next failure starts the
    /// backoff over. Shorter connections keep counting, so connect-then-drop cannot hot-loop.
    pub stable_after: Duration,
}

impl Default for ReconnectPolicy {
    fn default() -> Self {
        ReconnectPolicy {
            backoff: BackoffPolicy {
                min: Duration::from_millis(500),
                max: Duration::from_secs(2),
            },
            stable_after: Duration::from_secs(10),
        }
    }
}

/// Why the live output broke, as far as retrying is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// The network failed: refused, reset, closed, unreachable, timed out. Retried forever.
    Network,
    /// No byte reached the ingest for a while (detected by the uplink). Retried forever.
    Stall,
    /// Any other sink error. Retried forever.
    SinkError,
    /// The ingest still holds our previous publish (nginx-rtmp "Already publishing"); it frees
    /// the slot by itself once it notices the old connection is dead. Retried forever.
    AlreadyPublishing,
    /// The ingest refused the stream: authentication failed or the stream key is not accepted.
    /// Fatal.
    Rejected,
}

/// What to do after a failure or a connectivity hint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReconnectDecision {
    /// Connect again after this delay.
    RetryAfter(Duration),
    /// Connect again now.
    RetryNow,
    /// Stop retrying and report `reason` to the app.
    GiveUp {
        /// What the farmer should be told.
        reason: String,
    },
}

/// The reconnect state of one live session.
#[derive(Debug, Clone)]
pub struct Reconnector {
    policy: ReconnectPolicy,
    /// Failures since the link last proved stable.
    failures: u32,
    last_failure: Option<Duration>,
    connected_at: Option<Duration>,
    /// When the pending attempt is due.
    retry_at: Option<Duration>,
    gave_up: bool,
}

impl Reconnector {
    /// A reconnector that has seen no failure yet.
    pub fn new(policy: ReconnectPolicy) -> Self {
        Reconnector {
            policy,
            failures: 0,
            last_failure: None,
            connected_at: None,
            retry_at: None,
            gave_up: false,
        }
    }

    /// The live output broke at `at` (time since the session started); `jitter` is a uniform
    /// sample in `[0, 1)`.
    pub fn on_failure(
        &mut self,
        at: Duration,
        kind: FailureKind,
        jitter: f64,
    ) -> ReconnectDecision {
        if kind == FailureKind::Rejected || self.gave_up {
            self.gave_up = true;
            self.retry_at = None;
            return ReconnectDecision::GiveUp {
                reason: "the ingest refused the stream: check the stream key and the account"
                    .into(),
            };
        }
        if let Some(up_since) = self.connected_at.take()
            && at.saturating_sub(up_since) >= self.policy.stable_after
        {
            self.failures = 0;
        }
        self.failures = self.failures.saturating_add(1);
        self.last_failure = Some(at);
        let delay = self.policy.backoff.delay(self.failures, jitter);
        self.retry_at = Some(at + delay);
        ReconnectDecision::RetryAfter(delay)
    }

    /// Media reached the ingest again at `at`. The backoff restarts only if this connection
    /// lasts [`ReconnectPolicy::stable_after`].
    pub fn on_connected(&mut self, at: Duration) {
        self.connected_at = Some(at);
        self.retry_at = None;
    }

    /// The app reports connectivity back at `at`: a pending wait is cut short, though never to
    /// less than the backoff's minimum after the last failure (a flapping hint cannot cause a
    /// hot loop). `None` when no attempt is waiting.
    pub fn network_available(&mut self, at: Duration) -> Option<ReconnectDecision> {
        let retry_at = self.retry_at.filter(|due| at < *due)?;
        let earliest = self.last_failure.unwrap_or(at) + self.policy.backoff.min;
        if at >= earliest {
            self.retry_at = None;
            Some(ReconnectDecision::RetryNow)
        } else {
            self.retry_at = Some(earliest.min(retry_at));
            Some(ReconnectDecision::RetryAfter(earliest.min(retry_at) - at))
        }
    }

    /// Failures counted since the link last proved stable.
    pub fn failures(&self) -> u32 {
        self.failures
    }
}

impl From<IngestCause> for FailureKind {
    fn from(cause: IngestCause) -> Self {
        match cause {
            IngestCause::Rejected => FailureKind::Rejected,
            IngestCause::AlreadyPublishing => FailureKind::AlreadyPublishing,
            IngestCause::Stalled => FailureKind::Stall,
            IngestCause::Other => FailureKind::SinkError,
            IngestCause::Refused
            | IngestCause::Unreachable
            | IngestCause::Tls(_)
            | IngestCause::Handshake
            | IngestCause::Broken => FailureKind::Network,
        }
    }
}

/// Classifies an error text from srtsink (the RTMP publisher reports typed causes).
pub fn classify(message: &str) -> IngestCause {
    let text = message.to_ascii_lowercase();
    let has = |needles: &[&str]| needles.iter().any(|n| text.contains(n));
    if has(&["already publishing", "publish.badname"]) {
        IngestCause::AlreadyPublishing
    } else if has(&[
        "connect.rejected",
        "publish.denied",
        "publish.rejected",
        "authfailed",
        "authentication failed",
        "unauthorized",
        "forbidden",
        "code=403",
        // SRT passphrase mismatch (SRT_REJ_BADSECRET, SRT_REJ_UNSECURE).
        "wrong password",
        "password required",
    ]) {
        IngestCause::Rejected
    } else if has(&["stalled"]) {
        IngestCause::Stalled
    } else if has(&["connection refused"]) {
        IngestCause::Refused
    } else if has(&[
        "timed out",
        "timeout",
        "unreachable",
        "no route to host",
        "could not connect",
        "failed to connect",
        "error resolving",
        "name resolution",
        "not known",
        // SRT: the listener never answered the handshake.
        "connection setup failure",
    ]) {
        IngestCause::Unreachable
    } else if has(&[
        "closed remotely",
        "connection reset",
        "connection closed",
        "broken pipe",
        // SRT: the peer is gone (SRT_ENOCONN), or the listener refused without an auth reason.
        "connection does not exist",
        "peer rejected",
        "socket",
    ]) {
        IngestCause::Broken
    } else {
        IngestCause::Other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    fn delay_of(decision: ReconnectDecision) -> Duration {
        match decision {
            ReconnectDecision::RetryAfter(delay) => delay,
            other => panic!("expected a retry, got {other:?}"),
        }
    }

    /// A recorded outage: the link fails, every attempt fails after a 300 ms connect timeout,
    /// with the jitter drawn for each failure and the delay that followed.
    #[test]
    fn replays_a_recorded_trace() {
        let mut r = Reconnector::new(ReconnectPolicy::default());
        // (failure at ms, kind, jitter) -> delay ms
        let trace = [
            (0, FailureKind::Network, 0.0, 500),
            (800, FailureKind::Network, 1.0, 2000),
            (3100, FailureKind::Stall, 0.5, 1250),
            (4650, FailureKind::SinkError, 0.25, 875),
            (5825, FailureKind::AlreadyPublishing, 0.9, 1850),
            (7975, FailureKind::AlreadyPublishing, 1.0, 2000),
        ];
        for (i, (at, kind, jitter, delay)) in trace.into_iter().enumerate() {
            assert_eq!(
                r.on_failure(ms(at), kind, jitter),
                ReconnectDecision::RetryAfter(ms(delay)),
                "step {i}"
            );
        }
        assert_eq!(r.failures(), 6);
    }

    #[test]
    fn delays_stay_within_bounds_capped_and_jittered() {
        let policy = ReconnectPolicy::default();
        let mut r = Reconnector::new(policy);
        let mut at = Duration::ZERO;
        let mut seen = Vec::new();
        let jitters = [0.13, 0.92, 0.47, 0.05, 0.71, 0.99, 0.33, 0.58];
        for (n, jitter) in (1..=200u32).zip(jitters.iter().cycle()) {
            let delay = delay_of(r.on_failure(at, FailureKind::Network, *jitter));
            let ceiling = (policy.backoff.min * 2u32.pow(n.min(8))).min(policy.backoff.max);
            assert!(delay >= ms(500) && delay <= ceiling, "{n}: {delay:?}");
            seen.push(delay);
            at += delay + ms(300);
        }
        assert!(seen.iter().all(|d| *d <= ms(2000)), "capped at 2 s");
        seen.sort();
        seen.dedup();
        assert!(seen.len() >= jitters.len(), "jittered: {seen:?}");
    }

    #[test]
    fn backoff_restarts_only_after_a_stable_connection() {
        let mut r = Reconnector::new(ReconnectPolicy::default());
        for at in [0, 1_000, 3_000] {
            r.on_failure(ms(at), FailureKind::Network, 1.0);
        }
        // Up for 3 s, then down again: still counting, the delay stays at the cap.
        r.on_connected(ms(5_000));
        assert_eq!(
            r.on_failure(ms(8_000), FailureKind::Network, 1.0),
            ReconnectDecision::RetryAfter(ms(2_000))
        );
        assert_eq!(r.failures(), 4);
        // Up for 12 s: the link proved itself, the backoff starts over.
        r.on_connected(ms(10_500));
        assert_eq!(
            r.on_failure(ms(22_500), FailureKind::Network, 1.0),
            ReconnectDecision::RetryAfter(ms(1_000))
        );
        assert_eq!(r.failures(), 1);
    }

    #[test]
    fn rejection_is_fatal_and_stays_fatal() {
        let mut r = Reconnector::new(ReconnectPolicy::default());
        r.on_failure(ms(0), FailureKind::Network, 0.5);
        assert!(matches!(
            r.on_failure(ms(1_000), FailureKind::Rejected, 0.5),
            ReconnectDecision::GiveUp { .. }
        ));
        assert!(matches!(
            r.on_failure(ms(2_000), FailureKind::Network, 0.5),
            ReconnectDecision::GiveUp { .. }
        ));
        assert_eq!(r.network_available(ms(2_100)), None);
    }

    #[test]
    fn an_already_publishing_slot_is_retried_until_it_frees() {
        let mut r = Reconnector::new(ReconnectPolicy::default());
        let mut at = Duration::ZERO;
        // nginx-rtmp can hold a dead publisher for minutes.
        while at < Duration::from_secs(600) {
            at += delay_of(r.on_failure(at, FailureKind::AlreadyPublishing, 0.5)) + ms(50);
        }
        r.on_connected(at);
        assert_eq!(r.network_available(at + ms(100)), None);
    }

    #[test]
    fn network_available_cuts_the_wait_short() {
        let mut r = Reconnector::new(ReconnectPolicy::default());
        assert_eq!(r.network_available(ms(0)), None, "nothing pending");
        r.on_failure(ms(0), FailureKind::Network, 1.0);
        assert_eq!(
            r.on_failure(ms(1_200), FailureKind::Network, 1.0),
            ReconnectDecision::RetryAfter(ms(2_000))
        );
        assert_eq!(
            r.network_available(ms(1_900)),
            Some(ReconnectDecision::RetryNow)
        );
        assert_eq!(r.network_available(ms(2_000)), None, "already retrying");
        // Too soon after a failure: shortened to the minimum, not to zero.
        r.on_failure(ms(3_000), FailureKind::Network, 1.0);
        assert_eq!(
            r.network_available(ms(3_200)),
            Some(ReconnectDecision::RetryAfter(ms(300)))
        );
        assert_eq!(
            r.network_available(ms(3_400)),
            Some(ReconnectDecision::RetryAfter(ms(100)))
        );
        assert_eq!(r.network_available(ms(3_500)), None, "the wait is over");
        // The failure count survives the shortcut: a still-broken link is not hammered.
        assert_eq!(r.failures(), 3);
    }

    #[test]
    fn a_flapping_link_does_not_hot_loop() {
        // The link accepts each connection and drops it 1 s later, for 5 minutes, while the
        // phone reports connectivity every 100 ms.
        let mut r = Reconnector::new(ReconnectPolicy::default());
        let jitters = [0.4, 0.8, 0.1, 0.6, 0.95, 0.3];
        let mut at = Duration::ZERO;
        let mut attempts = 0u32;
        for jitter in jitters.iter().cycle() {
            if at >= Duration::from_secs(300) {
                break;
            }
            let mut due = at + delay_of(r.on_failure(at, FailureKind::Network, *jitter));
            let mut hint = at + ms(100);
            while hint < due {
                match r.network_available(hint) {
                    Some(ReconnectDecision::RetryNow) => due = hint,
                    Some(ReconnectDecision::RetryAfter(d)) => due = hint + d,
                    _ => {}
                }
                hint += ms(100);
            }
            assert!(due >= at + ms(500), "attempt too soon at {due:?}");
            attempts += 1;
            r.on_connected(due + ms(200));
            at = due + ms(1_200);
        }
        assert!(attempts <= 200, "{attempts} attempts in 5 minutes");
        assert_eq!(r.failures(), attempts, "never reset by 1 s connections");
    }

    #[test]
    fn classifies_real_sink_messages() {
        use IngestCause::*;
        let cases = [
            (
                "Failed to connect: Could not connect to 127.0.0.1: Connection refused",
                Refused,
            ),
            ("Connection error: connection closed remotely", Broken),
            ("Connection error: Error sending data: Broken pipe", Broken),
            ("Connection error: Socket I/O timed out", Unreachable),
            (
                "Could not connect to ingest.example.com: Network is unreachable",
                Unreachable,
            ),
            (
                "Error resolving \u{201c}ingest.example\u{201d}: Name or service not known",
                Unreachable,
            ),
            (
                "'publish' cmd failed: NetStream.Publish.BadName: Already publishing",
                AlreadyPublishing,
            ),
            (
                "'connect' cmd failed: NetConnection.Connect.Rejected: [ AccessManager.Reject ] : \
                 [ code=403 need auth; authmod=adobe ]",
                Rejected,
            ),
            ("publish denied: NetStream.Publish.Denied", Rejected),
            // srtsink
            (
                "Failed to write to SRT socket: Connection does not exist.",
                Broken,
            ),
            (
                "Failed to open SRT: Connection setup failure: connection timed out",
                Unreachable,
            ),
            ("Failed to open SRT: Peer rejected connection", Broken),
            ("Failed to open SRT: Wrong password", Rejected),
            (
                "Failed to open SRT: Password required or unexpected",
                Rejected,
            ),
            // the uplink's own stall detector, and something unknown
            ("stalled: no byte reached the ingest for 4 s", Stalled),
            ("Internal error: No RTMP meta on buffer", Other),
        ];
        for (message, cause) in cases {
            assert_eq!(classify(message), cause, "{message}");
        }
    }

    #[test]
    fn only_a_rejection_is_final() {
        assert_eq!(
            FailureKind::from(IngestCause::Rejected),
            FailureKind::Rejected
        );
        for cause in [
            IngestCause::Refused,
            IngestCause::Unreachable,
            IngestCause::Tls(crate::error::TlsFailure::UnknownIssuer),
            IngestCause::Handshake,
            IngestCause::Broken,
        ] {
            assert_eq!(FailureKind::from(cause), FailureKind::Network, "{cause:?}");
        }
    }
}
