//! [`Worker`]: the handle of a thread that a shared object owns (an engine, a delivery, an uplink),
//! joined once by whichever holder stops it first.

use std::sync::{Mutex, PoisonError};
use std::thread::JoinHandle;

/// A thread's handle behind a lock: [`Worker::join`] takes it out and waits, so stop paths called
/// from several places (an explicit stop, then `Drop`) wait once and then return at once.
#[derive(Default)]
pub struct Worker(Mutex<Option<JoinHandle<()>>>);

impl Worker {
    /// A worker for the running thread `handle`.
    pub fn new(handle: JoinHandle<()>) -> Self {
        Worker(Mutex::new(Some(handle)))
    }

    /// Hands over a thread started after the owner was built (a worker made with `default`).
    pub fn set(&self, handle: JoinHandle<()>) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = Some(handle);
    }

    /// Waits for the thread unless someone already has. False when the thread panicked (logged
    /// with `name`); true when it ended normally or there was nothing left to wait for.
    pub fn join(&self, name: &str) -> bool {
        let handle = self.0.lock().unwrap_or_else(PoisonError::into_inner).take();
        match handle.map(JoinHandle::join) {
            Some(Err(_)) => {
                log::error!("the {name} thread panicked");
                false
            }
            _ => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_join_waits_and_reports_a_panic_later_ones_return_at_once() {
        let worker = Worker::new(std::thread::spawn(|| panic!("worker test panic")));
        assert!(!worker.join("test"), "a panicked thread is reported");
        assert!(worker.join("test"), "nothing is left to wait for");

        let (tx, rx) = std::sync::mpsc::channel();
        let worker = Worker::default();
        worker.set(std::thread::spawn(move || tx.send(7).unwrap()));
        assert!(worker.join("test"));
        assert_eq!(rx.try_recv(), Ok(7), "join returned after the thread ran");
    }
}
