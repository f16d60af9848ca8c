//! SIGINT and SIGTERM end a long QA run early but cleanly: the run notices, stops its children,
//! removes its lab and reports what it has.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Set by SIGINT or SIGTERM once [`catch_stop_signals`] was called.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_stop_signal(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// From now on SIGINT and SIGTERM set [`interrupted`] instead of ending the process.
pub fn catch_stop_signals() {
    for signal in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        unsafe { libc::signal(signal, on_stop_signal as *const () as libc::sighandler_t) };
    }
}

/// Whether SIGINT or SIGTERM arrived.
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// Sleeps until `deadline` in short steps; false when interrupted first.
pub fn sleep_until(deadline: Instant) -> bool {
    while Instant::now() < deadline {
        if interrupted() {
            return false;
        }
        std::thread::sleep(
            deadline
                .saturating_duration_since(Instant::now())
                .min(Duration::from_millis(200)),
        );
    }
    !interrupted()
}
