//! State shared by the public handle, the relay and the platform client: network and pause flags,
//! the captive-portal gate, retry timers, the event channel. The mutex is held only for quick
//! updates, never across an await or while sending an event.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::{broadcast, watch};

use super::backoff::{Backoff, BackoffPolicy};
use super::{PauseReason, SyncEvent};

/// Events kept for a subscriber that falls behind; older ones are dropped for it.
const EVENT_CAPACITY: usize = 1024;

pub(crate) struct Shared {
    status: Mutex<Status>,
    /// True while records and uploads may be sent (network up, credentials not refused); a
    /// captive portal does not stop sending, it only spaces the attempts out.
    may_send: watch::Sender<bool>,
    events: broadcast::Sender<SyncEvent>,
}

struct Status {
    network_available: bool,
    auth_pause: Option<PauseReason>,
    interception: Option<Interception>,
    backoffs: HashMap<String, Backoff>,
}

/// A captive portal or proxy answered in the platform's place, and has not been seen gone yet.
struct Interception {
    /// What answered, as first seen.
    message: String,
    /// Failed attempts behind it, and when the next may go.
    backoff: Backoff,
}

impl Status {
    /// The pauses that hold every request back.
    fn blocking_reason(&self) -> Option<PauseReason> {
        self.auth_pause.clone().or(if self.network_available {
            None
        } else {
            Some(PauseReason::Offline)
        })
    }

    /// What the app is shown: a blocking pause first, else a captive portal in the way.
    fn paused_reason(&self) -> Option<PauseReason> {
        self.blocking_reason().or_else(|| {
            self.interception
                .as_ref()
                .map(|i| PauseReason::CaptivePortal {
                    message: i.message.clone(),
                })
        })
    }

    /// Lets every waiting attempt go now, the captive portal's included.
    fn cut_waits_short(&mut self) {
        self.backoffs.values_mut().for_each(Backoff::cut_short);
        if let Some(interception) = &mut self.interception {
            interception.backoff.cut_short();
        }
    }
}

impl Shared {
    pub fn new() -> Shared {
        Shared {
            status: Mutex::new(Status {
                network_available: true,
                auth_pause: None,
                interception: None,
                backoffs: HashMap::new(),
            }),
            may_send: watch::Sender::new(true),
            events: broadcast::Sender::new(EVENT_CAPACITY),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Status> {
        self.status.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Sends an event to the subscribers, if any.
    pub fn emit(&self, event: SyncEvent) {
        // No subscriber is not an error.
        let _ = self.events.send(event);
    }

    /// A new event subscription.
    pub fn subscribe(&self) -> broadcast::Receiver<SyncEvent> {
        self.events.subscribe()
    }

    /// A receiver of the "may send" flag.
    pub fn may_send_watch(&self) -> watch::Receiver<bool> {
        self.may_send.subscribe()
    }

    /// True while sending is allowed (behind a captive portal too, see [`Shared::interception`]).
    pub fn may_send(&self) -> bool {
        self.lock().blocking_reason().is_none()
    }

    /// Why nothing is sent, if so.
    pub fn paused_reason(&self) -> Option<PauseReason> {
        self.lock().paused_reason()
    }

    /// Records the app's view of the network; coming back cuts every retry wait short.
    pub fn set_network_available(&self, available: bool) {
        self.change(|s| {
            s.network_available = available;
            if available {
                s.cut_waits_short();
            }
        });
    }

    /// Pauses everything for a credentials problem.
    pub fn pause(&self, reason: PauseReason) {
        self.change(|s| s.auth_pause = Some(reason));
    }

    /// Lifts a credentials pause and cuts every retry wait short.
    pub fn resume(&self) {
        self.change(|s| {
            s.auth_pause = None;
            s.cut_waits_short();
        });
    }

    /// Cuts every retry wait short, the captive portal's included.
    pub fn cut_waits_short(&self) {
        self.lock().cut_waits_short();
    }

    /// A captive portal or proxy answered instead of the platform: pauses with `message` (the
    /// first one seen while it lasts) and counts a failed attempt behind it; returns the attempts
    /// in a row and the delay before the next one.
    pub fn intercepted(
        &self,
        message: &str,
        policy: &BackoffPolicy,
        now: Instant,
        jitter: f64,
    ) -> (u32, Duration) {
        let mut counted = (0, Duration::ZERO);
        self.change(|s| {
            let interception = s.interception.get_or_insert_with(|| Interception {
                message: message.to_string(),
                backoff: Backoff::default(),
            });
            let delay = interception.backoff.failed(policy, now, jitter);
            counted = (interception.backoff.failures(), delay);
        });
        counted
    }

    /// The platform answered as itself: lifts a captive-portal pause.
    pub fn platform_answered(&self) {
        if self.lock().interception.is_some() {
            self.change(|s| s.interception = None);
        }
    }

    /// While a captive portal answers: when the next attempt behind it may go (now, if its wait
    /// was cut short). `None` when no portal is in the way.
    pub fn interception(&self) -> Option<Instant> {
        self.lock()
            .interception
            .as_ref()
            .map(|i| i.backoff.ready_at().unwrap_or_else(Instant::now))
    }

    /// Applies `f` and announces a change of the pause state.
    fn change(&self, f: impl FnOnce(&mut Status)) {
        let (before, after, may_send) = {
            let mut status = self.lock();
            let before = status.paused_reason();
            f(&mut status);
            let may_send = status.blocking_reason().is_none();
            (before, status.paused_reason(), may_send)
        };
        self.may_send.send_replace(may_send);
        if before != after {
            self.emit(match after {
                Some(reason) => SyncEvent::Paused { reason },
                None => SyncEvent::Resumed,
            });
        }
    }

    /// Counts a failed attempt for `record_id`; returns the failures in a row and the delay.
    pub fn record_failed(
        &self,
        record_id: &str,
        policy: &BackoffPolicy,
        now: Instant,
        jitter: f64,
    ) -> (u32, Duration) {
        let mut status = self.lock();
        let backoff = status.backoffs.entry(record_id.to_string()).or_default();
        let delay = backoff.failed(policy, now, jitter);
        (backoff.failures(), delay)
    }

    /// Forgets the retry state of a settled record.
    pub fn record_settled(&self, record_id: &str) {
        self.lock().backoffs.remove(record_id);
    }

    /// When `record_id` may be sent again, if it waits.
    pub fn ready_at(&self, record_id: &str) -> Option<Instant> {
        self.lock()
            .backoffs
            .get(record_id)
            .and_then(Backoff::ready_at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pause_changes_are_announced_once() {
        let shared = Shared::new();
        let mut rx = shared.subscribe();
        let watch = shared.may_send_watch();
        shared.set_network_available(false);
        shared.set_network_available(false);
        assert_eq!(
            rx.try_recv().unwrap(),
            SyncEvent::Paused {
                reason: PauseReason::Offline
            }
        );
        assert!(rx.try_recv().is_err());
        assert!(!*watch.borrow());
        let denied = PauseReason::Unauthorized {
            message: "bad token".into(),
        };
        shared.pause(denied.clone());
        assert_eq!(
            rx.try_recv().unwrap(),
            SyncEvent::Paused {
                reason: denied.clone()
            }
        );
        shared.set_network_available(true);
        assert_eq!(shared.paused_reason(), Some(denied));
        shared.resume();
        assert_eq!(rx.try_recv().unwrap(), SyncEvent::Resumed);
        assert!(shared.may_send());
        assert!(*watch.borrow());
    }

    #[test]
    fn network_back_cuts_retry_waits_short() {
        let shared = Shared::new();
        let now = Instant::now();
        let policy = BackoffPolicy::default();
        assert_eq!(shared.record_failed("s1", &policy, now, 1.0).0, 1);
        assert_eq!(shared.record_failed("s1", &policy, now, 1.0).0, 2);
        assert!(shared.ready_at("s1").is_some());
        shared.set_network_available(false);
        shared.set_network_available(true);
        assert_eq!(shared.ready_at("s1"), None);
        assert_eq!(shared.record_failed("s1", &policy, now, 1.0).0, 3);
        shared.record_settled("s1");
        assert_eq!(shared.ready_at("s1"), None);
    }

    #[test]
    fn a_captive_portal_pauses_without_blocking_and_lifts_when_the_platform_answers() {
        let shared = Shared::new();
        let mut rx = shared.subscribe();
        let policy = BackoffPolicy::default();
        let now = Instant::now();
        assert_eq!(shared.interception(), None);
        let (attempt, delay) = shared.intercepted("HTTP 511", &policy, now, 0.0);
        assert_eq!((attempt, delay), (1, policy.min));
        let portal = PauseReason::CaptivePortal {
            message: "HTTP 511".into(),
        };
        assert_eq!(
            rx.try_recv().unwrap(),
            SyncEvent::Paused {
                reason: portal.clone()
            }
        );
        assert!(shared.may_send(), "attempts still go, spaced out");
        assert!(*shared.may_send_watch().borrow());
        assert_eq!(shared.interception(), Some(now + policy.min));

        // Another answer behind the portal counts, keeps the first message, announces nothing.
        assert_eq!(shared.intercepted("HTTP 302", &policy, now, 1.0).0, 2);
        assert_eq!(shared.paused_reason(), Some(portal.clone()));
        assert!(rx.try_recv().is_err());

        // Going offline shows "offline" first; back online, the portal again.
        shared.set_network_available(false);
        assert_eq!(shared.paused_reason(), Some(PauseReason::Offline));
        shared.set_network_available(true);
        assert_eq!(shared.paused_reason(), Some(portal.clone()));
        assert!(
            shared.interception().unwrap() <= Instant::now(),
            "network back cuts the portal's wait short"
        );
        let events: Vec<_> = std::iter::from_fn(|| rx.try_recv().ok()).collect();
        assert_eq!(
            events,
            [
                SyncEvent::Paused {
                    reason: PauseReason::Offline
                },
                SyncEvent::Paused { reason: portal }
            ]
        );

        shared.platform_answered();
        assert_eq!(rx.try_recv().unwrap(), SyncEvent::Resumed);
        assert_eq!(shared.interception(), None);
        assert_eq!(shared.paused_reason(), None);
        shared.platform_answered();
        assert!(rx.try_recv().is_err(), "nothing to lift, nothing announced");
        assert_eq!(
            shared.intercepted("HTTP 407", &policy, now, 0.0).0,
            1,
            "a new portal starts a new count"
        );
    }
}
