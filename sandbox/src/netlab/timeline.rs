//! The timeline thread: puts each change of a profile in force at its time, until stopped.

use std::collections::VecDeque;
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::NetLabError;
use super::profile::{Change, Profile};
use super::shaping::Shaper;

/// How many applied changes the lab remembers (the oldest are forgotten first).
const HISTORY: usize = 1024;

/// A change of conditions as it was applied.
#[derive(Debug, Clone, PartialEq)]
pub struct AppliedChange {
    /// What the profile planned.
    pub change: Change,
    /// By when it was in force (applying takes a few milliseconds), from the lab's start.
    pub applied_after: Duration,
    /// Why applying it failed, if it did (the previous conditions then stay).
    pub error: Option<String>,
}

impl std::fmt::Display for AppliedChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "t={:7.2}s step {}: {}",
            self.applied_after.as_secs_f64(),
            self.change.step,
            self.change.conditions
        )?;
        if let Some(error) = &self.error {
            write!(f, " (NOT APPLIED: {error})")?;
        }
        Ok(())
    }
}

/// Called with every applied change, from the timeline thread.
pub type ChangeObserver = Box<dyn FnMut(&AppliedChange) + Send>;

/// The changes applied so far, shared between the lab and its timeline thread.
pub(crate) type History = Arc<Mutex<VecDeque<AppliedChange>>>;

/// Applies one change now, records it and tells the observer.
pub(crate) fn apply(
    shaper: &Shaper,
    change: Change,
    started: Instant,
    history: &History,
    observer: &mut ChangeObserver,
) -> AppliedChange {
    let error = shaper
        .apply(&change.conditions)
        .err()
        .map(|e| e.to_string());
    let applied = AppliedChange {
        change,
        applied_after: started.elapsed(),
        error,
    };
    let mut h = history.lock().unwrap_or_else(|p| p.into_inner());
    if h.len() == HISTORY {
        h.pop_front();
    }
    h.push_back(applied.clone());
    drop(h);
    observer(&applied);
    applied
}

/// The running timeline; stopped and joined when dropped.
pub(crate) struct Timeline {
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Timeline {
    /// Applies the profile's changes from the second on (the first is applied by the caller),
    /// each at `started` plus its offset.
    pub(crate) fn start(
        profile: Profile,
        shaper: Arc<Shaper>,
        started: Instant,
        history: History,
        mut observer: ChangeObserver,
    ) -> Result<Timeline, NetLabError> {
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("netlab-timeline".into())
            .spawn(move || {
                for n in 1.. {
                    let Some(change) = profile.change(n) else {
                        return;
                    };
                    let due = started + Duration::from_secs_f64(change.at_s);
                    let wait = due.saturating_duration_since(Instant::now());
                    match stopped.recv_timeout(wait) {
                        Err(RecvTimeoutError::Timeout) => {}
                        Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
                    }
                    apply(&shaper, change, started, &history, &mut observer);
                }
            })?;
        Ok(Timeline {
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for Timeline {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
