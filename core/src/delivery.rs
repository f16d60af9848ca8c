//! Delivers a broadcast channel's events to a callback on a thread of its own, until cancelled:
//! how app listeners (Kotlin, Swift, or Rust closures) receive session and sync events without
//! ever being called under a core lock.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::ThreadId;

use tokio::sync::{broadcast, oneshot};

use crate::worker::Worker;

/// A running delivery. [`Delivery::cancel`] (or dropping it) stops it; once `cancel` returns, the
/// callback is not running and never runs again.
pub struct Delivery {
    cancelled: Arc<AtomicBool>,
    stop: Mutex<Option<oneshot::Sender<()>>>,
    thread: Worker,
    thread_id: ThreadId,
}

impl Delivery {
    /// Calls `deliver` with every event of `events`, in order, on a new thread named `name`.
    /// A listener too slow for the channel loses the oldest events (logged), never the newest.
    /// Ends by itself when the channel closes (its sender is dropped).
    pub fn spawn<T, F>(
        name: &str,
        mut events: broadcast::Receiver<T>,
        mut deliver: F,
    ) -> std::io::Result<Delivery>
    where
        T: Clone + Send + 'static,
        F: FnMut(T) + Send + 'static,
    {
        let (stop_tx, mut stop_rx) = oneshot::channel::<()>();
        let cancelled = Arc::new(AtomicBool::new(false));
        let flag = cancelled.clone();
        let runtime = tokio::runtime::Builder::new_current_thread().build()?;
        let thread = std::thread::Builder::new()
            .name(name.to_string())
            .spawn(move || {
                runtime.block_on(async move {
                    loop {
                        tokio::select! {
                            biased;
                            _ = &mut stop_rx => break,
                            received = events.recv() => match received {
                                Ok(event) => {
                                    if flag.load(Ordering::Acquire) {
                                        break;
                                    }
                                    deliver(event);
                                }
                                Err(broadcast::error::RecvError::Lagged(missed)) => {
                                    log::warn!("a listener fell behind and missed {missed} events");
                                }
                                Err(broadcast::error::RecvError::Closed) => break,
                            },
                        }
                    }
                });
            })?;
        Ok(Delivery {
            cancelled,
            stop: Mutex::new(Some(stop_tx)),
            thread_id: thread.thread().id(),
            thread: Worker::new(thread),
        })
    }

    /// Stops the delivery and waits until the callback has returned, so that none arrives after
    /// this returns. Called from within the callback, it stops the delivery without waiting.
    /// Idempotent.
    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::Release);
        if let Some(stop) = self
            .stop
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
            let _ = stop.send(());
        }
        if std::thread::current().id() == self.thread_id {
            return;
        }
        self.thread.join("event listener");
    }

    /// True once [`Delivery::cancel`] was called.
    pub fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Acquire)
    }
}

impl Drop for Delivery {
    fn drop(&mut self) {
        self.cancel();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::Duration;

    #[test]
    fn events_arrive_in_order_and_none_after_cancel() {
        let (tx, rx) = broadcast::channel(16);
        let (seen_tx, seen) = mpsc::channel();
        let delivery = Delivery::spawn("test-delivery", rx, move |n: u32| {
            std::thread::sleep(Duration::from_millis(20));
            seen_tx.send(n).unwrap();
        })
        .unwrap();
        for n in 0..3 {
            tx.send(n).unwrap();
        }
        assert_eq!(seen.recv_timeout(Duration::from_secs(2)).unwrap(), 0);
        delivery.cancel();
        let delivered: Vec<u32> = seen.try_iter().collect();
        for n in 10..20 {
            let _ = tx.send(n);
        }
        std::thread::sleep(Duration::from_millis(100));
        assert!(seen.try_recv().is_err(), "an event arrived after cancel");
        assert!(delivered.iter().all(|n| *n < 3), "{delivered:?}");
        delivery.cancel();
        assert!(delivery.is_cancelled());
    }

    #[test]
    fn cancel_from_the_callback_does_not_deadlock() {
        let (tx, rx) = broadcast::channel(4);
        let slot: Arc<Mutex<Option<Arc<Delivery>>>> = Arc::default();
        let (done_tx, done) = mpsc::channel();
        let inner = slot.clone();
        let delivery = Arc::new(
            Delivery::spawn("test-self-cancel", rx, move |_: u8| {
                if let Some(d) = inner.lock().unwrap().take() {
                    d.cancel();
                }
                done_tx.send(()).unwrap();
            })
            .unwrap(),
        );
        *slot.lock().unwrap() = Some(delivery.clone());
        tx.send(1).unwrap();
        done.recv_timeout(Duration::from_secs(2)).unwrap();
        assert!(delivery.is_cancelled());
    }

    #[test]
    fn delivery_ends_when_the_channel_closes() {
        let (tx, rx) = broadcast::channel::<u8>(4);
        let delivery = Delivery::spawn("test-close", rx, |_| {}).unwrap();
        drop(tx);
        delivery.cancel();
    }
}
