//! Which outbox record goes next. Pure: the relay passes the queue and the time.

use std::collections::HashSet;
use std::time::Instant;

/// A queued record as the scheduler needs it. The slice passed to [`Schedule::next`] is in queue
/// order (oldest first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Slot {
    /// Records with the same key go one after the other.
    pub order_key: String,
    /// A request for it is on the wire.
    pub in_flight: bool,
    /// It waits after a failure until then.
    pub ready_at: Option<Instant>,
}

/// The scheduler's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Next {
    /// Send the record at this index of the slice.
    Send(usize),
    /// Nothing to send now: look again at `until`, or when something changes (a reply, a new
    /// record) if `None`.
    Wait { until: Option<Instant> },
}

/// The ordering rules: at most `max_in_flight` requests at once; per order key, only the oldest
/// unsettled record may go, and only once its backoff has passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Schedule {
    pub max_in_flight: usize,
}

impl Schedule {
    /// The next record to send at `now`.
    pub fn next(&self, queue: &[Slot], now: Instant) -> Next {
        if queue.iter().filter(|s| s.in_flight).count() >= self.max_in_flight {
            return Next::Wait { until: None };
        }
        let mut seen = HashSet::new();
        let mut earliest: Option<Instant> = None;
        for (i, slot) in queue.iter().enumerate() {
            if !seen.insert(slot.order_key.as_str()) || slot.in_flight {
                continue;
            }
            match slot.ready_at {
                Some(t) if t > now => earliest = Some(earliest.map_or(t, |e| e.min(t))),
                _ => return Next::Send(i),
            }
        }
        Next::Wait { until: earliest }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn slot(key: &str) -> Slot {
        Slot {
            order_key: key.into(),
            in_flight: false,
            ready_at: None,
        }
    }

    fn schedule() -> Schedule {
        Schedule { max_in_flight: 4 }
    }

    /// Drains a queue the way the relay does: send, mark in flight, ask again.
    fn send_order(queue: &mut [Slot], now: Instant) -> Vec<usize> {
        let mut sent = Vec::new();
        while let Next::Send(i) = schedule().next(queue, now) {
            queue[i].in_flight = true;
            sent.push(i);
        }
        sent
    }

    #[test]
    fn only_the_head_of_each_product_goes() {
        let now = Instant::now();
        let mut q = vec![slot("a"), slot("a"), slot("b"), slot("a"), slot("c")];
        assert_eq!(send_order(&mut q, now), vec![0, 2, 4]);
        assert_eq!(schedule().next(&q, now), Next::Wait { until: None });
    }

    #[test]
    fn a_later_record_waits_for_an_earlier_one_in_backoff() {
        let now = Instant::now();
        let later = now + Duration::from_secs(3);
        let mut q = vec![
            Slot {
                ready_at: Some(later),
                ..slot("a")
            },
            slot("a"),
            slot("b"),
        ];
        assert_eq!(send_order(&mut q, now), vec![2]);
        assert_eq!(schedule().next(&q, now), Next::Wait { until: Some(later) });
        assert_eq!(schedule().next(&q, later), Next::Send(0));
    }

    #[test]
    fn the_earliest_backoff_is_the_wake_up_time() {
        let now = Instant::now();
        let q = vec![
            Slot {
                ready_at: Some(now + Duration::from_secs(9)),
                ..slot("a")
            },
            Slot {
                ready_at: Some(now + Duration::from_secs(2)),
                ..slot("b")
            },
        ];
        assert_eq!(
            schedule().next(&q, now),
            Next::Wait {
                until: Some(now + Duration::from_secs(2))
            }
        );
    }

    #[test]
    fn concurrency_is_capped() {
        let now = Instant::now();
        let mut q: Vec<Slot> = ["a", "b", "c", "d", "e", "f"]
            .into_iter()
            .map(slot)
            .collect();
        assert_eq!(send_order(&mut q, now), vec![0, 1, 2, 3]);
        q[1].in_flight = false; // b answered and left the queue in the real relay
        q.remove(1);
        assert_eq!(schedule().next(&q, now), Next::Send(3));
    }

    #[test]
    fn an_empty_queue_waits_for_news() {
        assert_eq!(
            schedule().next(&[], Instant::now()),
            Next::Wait { until: None }
        );
    }
}
