//! State shared by the public handle and the relay: network and pause flags, retry timers, the
//! event channel. The mutex is held only for quick updates, never across an await or while
//! sending an event.

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
    /// True while records and uploads may be sent (network up, not paused).
    may_send: watch::Sender<bool>,
    events: broadcast::Sender<SyncEvent>,
}

struct Status {
    network_available: bool,
    auth_pause: Option<PauseReason>,
    backoffs: HashMap<String, Backoff>,
}

impl Status {
    fn paused_reason(&self) -> Option<PauseReason> {
        self.auth_pause.clone().or(if self.network_available {
            None
        } else {
            Some(PauseReason::Offline)
        })
    }
}

impl Shared {
    pub fn new() -> Shared {
        Shared {
            status: Mutex::new(Status {
                network_available: true,
                auth_pause: None,
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

    /// True while sending is allowed.
    pub fn may_send(&self) -> bool {
        self.lock().paused_reason().is_none()
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
                s.backoffs.values_mut().for_each(Backoff::cut_short);
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
            s.backoffs.values_mut().for_each(Backoff::cut_short);
        });
    }

    /// Cuts every retry wait short.
    pub fn cut_waits_short(&self) {
        self.lock()
            .backoffs
            .values_mut()
            .for_each(Backoff::cut_short);
    }

    /// Applies `f` and announces a change of the pause state.
    fn change(&self, f: impl FnOnce(&mut Status)) {
        let (before, after) = {
            let mut status = self.lock();
            let before = status.paused_reason();
            f(&mut status);
            (before, status.paused_reason())
        };
        self.may_send.send_replace(after.is_none());
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
}
