//! What the path delivers, measured on the live socket itself: the bytes the ingest received
//! (acknowledged, or selectively acknowledged) while TCP never ran out of data to send.
//!
//! The kernel's unsent bytes only fall between the publisher's writes, and the publisher wakes
//! when an acknowledgement frees room in the socket. When the socket holds unsent bytes at two
//! wakes in a row, TCP had data all along in between, and what the peer received in that time
//! is what the path carried at its pace (or at the pacing cap, when that is lower); both ends
//! follow an acknowledgement, so the interval holds whole ones. Received bytes rather than bytes
//! leaving the socket: a queue in front of the bottleneck (a shaper, a cell's buffer) takes
//! bytes faster than the link while it fills, but acknowledgements come back at the link's
//! rate. Selective acknowledgements count too: a retransmission that fills a hole acknowledges
//! at once everything received after it. Summed over such intervals, bytes over time weighs each
//! interval by what it lasted, so a burst of acknowledgements counts as little as it lasts.
//! Intervals in which the socket ran dry say only how much the stream had to send, and are left
//! out.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// One reading of the socket: what the kernel holds unsent, and what the peer received.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SocketReading {
    /// Bytes not yet sent.
    pub unsent: u64,
    /// Bytes the peer received since the connection opened, by TCP's count (see
    /// [`super::socket::SocketControl::delivered_bytes`]).
    pub delivered: u64,
}

/// Tracks one connection's socket from one wake of the publisher to the next.
#[derive(Debug, Default)]
pub(crate) struct Saturation {
    /// The last wake at which the socket still held unsent bytes, and its reading then.
    saturated: Option<(Instant, SocketReading)>,
}

impl Saturation {
    /// The publisher woke; `now` is the socket's reading before it writes (`None`: it cannot
    /// tell). Returns the bytes delivered and the time since the previous wake when the socket
    /// held unsent bytes at both: TCP had data all along in between. From wake to wake, not
    /// from a write: the publisher wakes when an acknowledgement frees room in the socket, so
    /// both ends of the interval follow an acknowledgement and it holds whole ones.
    pub fn woke(&mut self, now: Option<SocketReading>) -> Option<(u64, Duration)> {
        let now = now.filter(|r| r.unsent > 0);
        let previous = std::mem::replace(&mut self.saturated, now.map(|r| (Instant::now(), r)));
        let ((at, before), now) = (previous?, now?);
        (now.delivered >= before.delivered)
            .then(|| (now.delivered - before.delivered, at.elapsed()))
    }
}

/// Saturated intervals summed until the adaptive bitrate takes them.
#[derive(Debug, Default)]
pub(crate) struct DeliveryMeter {
    bytes: AtomicU64,
    micros: AtomicU64,
}

impl DeliveryMeter {
    /// Adds one saturated interval.
    pub fn add(&self, bytes: u64, took: Duration) {
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
        self.micros
            .fetch_add(took.as_micros() as u64, Ordering::Relaxed);
    }

    /// The rate over the intervals since the last take, kbit/s, with the time they covered;
    /// `None`, and the intervals kept for the next take, while they cover less than `at_least`
    /// (a few intervals are a few packets: too coarse to be a rate).
    pub fn take(&self, at_least: Duration) -> Option<(u32, Duration)> {
        if self.micros.load(Ordering::Relaxed) < at_least.as_micros() as u64 {
            return None;
        }
        let micros = self.micros.swap(0, Ordering::Relaxed);
        let bytes = self.bytes.swap(0, Ordering::Relaxed);
        (micros > 0).then(|| {
            let kbps = bytes * 8 * 1000 / micros;
            (
                u32::try_from(kbps).unwrap_or(u32::MAX),
                Duration::from_micros(micros),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reading(unsent: u64, delivered: u64) -> Option<SocketReading> {
        Some(SocketReading { unsent, delivered })
    }

    #[test]
    fn only_intervals_that_never_ran_dry_count() {
        let mut s = Saturation::default();
        assert_eq!(s.woke(reading(16_000, 1_000)), None);
        std::thread::sleep(Duration::from_millis(5));
        let (bytes, took) = s.woke(reading(6_000, 11_000)).expect("still backlogged");
        assert_eq!(bytes, 10_000);
        assert!(took >= Duration::from_millis(5));
        // Ran dry: says nothing about the path, and the next interval starts after it.
        assert_eq!(s.woke(reading(0, 15_000)), None);
        assert_eq!(s.woke(reading(10, 15_000)), None);
        assert_eq!(s.woke(reading(10, 17_000)).map(|(b, _)| b), Some(2_000));
        // No reading: nothing to measure, on either side.
        assert_eq!(s.woke(None), None);
        assert_eq!(s.woke(reading(10, 18_000)), None);
        // A counter that went back (another connection) is not an interval.
        assert_eq!(s.woke(reading(10, 1)), None);
    }

    #[test]
    fn the_rate_is_weighted_by_time() {
        let meter = DeliveryMeter::default();
        let enough = Duration::from_millis(100);
        assert_eq!(meter.take(enough), None);
        // A burst of two acknowledgements in 30 µs, then the path's pace: too short to tell
        // yet...
        meter.add(3_000, Duration::from_micros(30));
        meter.add(4_000, Duration::from_millis(50));
        assert_eq!(meter.take(enough), None);
        // ...and long enough with the next intervals, the burst weighing what it lasted.
        meter.add(13_500, Duration::from_millis(150));
        let (kbps, over) = meter.take(enough).unwrap();
        assert!((815..=825).contains(&kbps), "{kbps}");
        assert_eq!(over, Duration::from_micros(200_030));
        assert_eq!(meter.take(Duration::ZERO), None);
    }
}
