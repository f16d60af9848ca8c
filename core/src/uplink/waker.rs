//! How the uplink thread sleeps: in `poll(2)` on its own socket and on a wake-up pipe that the
//! encoders (new media), the session (stop, pacing, network back) and the SRT sink (an error,
//! room again) write to. It never sleeps on a fixed tick.

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// A wake-up channel for one waiting thread. Wakes that come while one is already pending
/// are folded into it: at most one byte waits in the pipe.
#[derive(Debug)]
pub(crate) struct Waker {
    rx: UnixStream,
    tx: UnixStream,
    pending: AtomicBool,
}

/// What a wait on the socket found.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Readiness {
    pub readable: bool,
    pub writable: bool,
    /// The socket reported an error or a hang-up.
    pub failed: bool,
}

impl Waker {
    /// A new channel.
    pub fn new() -> std::io::Result<Self> {
        let (rx, tx) = UnixStream::pair()?;
        rx.set_nonblocking(true)?;
        tx.set_nonblocking(true)?;
        Ok(Waker {
            rx,
            tx,
            pending: AtomicBool::new(false),
        })
    }

    /// Wakes the waiting thread (or makes its next wait return at once).
    pub fn wake(&self) {
        if !self.pending.swap(true, Ordering::AcqRel) {
            // A full pipe already holds a wake; nothing else can fail on a local socket pair.
            let _ = (&self.tx).write(&[1]);
        }
    }

    /// Clears pending wakes. Call before looking at the state the wakes announce, so that a
    /// change made after the look wakes the next wait. The pipe is drained before the flag is
    /// lowered: the other order could swallow the byte of a wake that raised the flag in between,
    /// and leave the flag up with no byte to wake the next wait.
    fn clear(&self) {
        let mut sink = [0u8; 64];
        while matches!((&self.rx).read(&mut sink), Ok(n) if n > 0) {}
        self.pending.store(false, Ordering::Release);
    }

    /// Sleeps until woken, until `socket` is ready as asked, or until `deadline`; clears the
    /// wakes on return. `socket` is a descriptor and whether to wait for it to be writable
    /// (readable is always waited for).
    pub fn wait(&self, socket: Option<(RawFd, bool)>, deadline: Option<Instant>) -> Readiness {
        let mut fds = [
            libc::pollfd {
                fd: self.rx.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: -1,
                events: 0,
                revents: 0,
            },
        ];
        if let Some((fd, want_write)) = socket {
            fds[1].fd = fd;
            fds[1].events = libc::POLLIN | if want_write { libc::POLLOUT } else { 0 };
        }
        let timeout = deadline.map_or(-1, |d| {
            let left = d.saturating_duration_since(Instant::now());
            // Round up, so that a wait never ends just before its deadline.
            (left + Duration::from_micros(999))
                .as_millis()
                .min(i32::MAX as u128) as libc::c_int
        });
        // SAFETY: `fds` is a live array of two pollfd; a negative fd is ignored by poll.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), 2, timeout) };
        self.clear();
        if n <= 0 {
            return Readiness::default();
        }
        let revents = fds[1].revents;
        Readiness {
            readable: revents & libc::POLLIN != 0,
            writable: revents & libc::POLLOUT != 0,
            failed: revents & (libc::POLLERR | libc::POLLHUP | libc::POLLNVAL) != 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn a_wake_ends_the_wait_and_folds_with_others() {
        let waker = Arc::new(Waker::new().unwrap());
        let other = waker.clone();
        let started = Instant::now();
        let thread = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            for _ in 0..1000 {
                other.wake();
            }
        });
        waker.wait(None, Some(Instant::now() + Duration::from_secs(10)));
        assert!(started.elapsed() < Duration::from_secs(5));
        thread.join().unwrap();
        // All those wakes were one; with them cleared, a wait runs to its deadline.
        waker.wait(None, Some(Instant::now()));
        let started = Instant::now();
        let ready = waker.wait(None, Some(Instant::now() + Duration::from_millis(100)));
        assert!(started.elapsed() >= Duration::from_millis(100));
        assert_eq!(ready, Readiness::default());
    }

    #[test]
    fn no_wake_is_lost_between_a_change_and_the_next_wait() {
        use std::sync::atomic::AtomicU64;
        const CHANGES: u64 = 20_000;
        let waker = Arc::new(Waker::new().unwrap());
        let counter = Arc::new(AtomicU64::new(0));
        let (w, c) = (waker.clone(), counter.clone());
        let producer = std::thread::spawn(move || {
            for i in 1..=CHANGES {
                c.store(i, Ordering::Release);
                w.wake();
                if i % 64 == 0 {
                    std::thread::yield_now();
                }
            }
        });
        // The consumer looks at the state, then waits: every change after a look must end the
        // wait that follows it, so no wait ever runs to its (long) deadline.
        let mut seen = 0;
        while seen < CHANGES {
            seen = counter.load(Ordering::Acquire);
            if seen == CHANGES {
                break;
            }
            let started = Instant::now();
            waker.wait(None, Some(Instant::now() + Duration::from_secs(5)));
            assert!(
                started.elapsed() < Duration::from_secs(4),
                "a wake was lost after change {seen}"
            );
        }
        producer.join().unwrap();
    }

    #[test]
    fn a_wake_before_the_wait_is_not_lost() {
        let waker = Waker::new().unwrap();
        waker.wake();
        let started = Instant::now();
        waker.wait(None, Some(Instant::now() + Duration::from_secs(10)));
        assert!(started.elapsed() < Duration::from_secs(1));
    }

    #[test]
    fn reports_a_socket_ready() {
        let waker = Waker::new().unwrap();
        let (a, mut b) = UnixStream::pair().unwrap();
        let ready = waker.wait(
            Some((a.as_raw_fd(), true)),
            Some(Instant::now() + Duration::from_secs(10)),
        );
        assert!(ready.writable && !ready.readable);
        b.write_all(b"x").unwrap();
        let ready = waker.wait(
            Some((a.as_raw_fd(), false)),
            Some(Instant::now() + Duration::from_secs(10)),
        );
        assert!(ready.readable);
    }
}
