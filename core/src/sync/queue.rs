//! The relay's in-memory view of the unsettled outbox: one line per order key, oldest first, so a
//! scheduling pass costs one step per product, not one per queued record. New records are read
//! from the store by sequence number as they are committed.

use std::collections::{HashMap, VecDeque};

/// A queued record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Queued {
    pub seq: i64,
    pub record_id: String,
}

/// Unsettled records by order key.
#[derive(Debug, Default)]
pub(crate) struct Queue {
    lines: HashMap<String, VecDeque<Queued>>,
    keys: HashMap<String, String>,
    last_seq: i64,
}

impl Queue {
    /// The highest sequence number seen; newer records are read after it.
    pub fn last_seq(&self) -> i64 {
        self.last_seq
    }

    /// Appends a record read from the store (in sequence order).
    pub fn push(&mut self, seq: i64, record_id: String, order_key: String) {
        self.last_seq = self.last_seq.max(seq);
        self.keys.insert(record_id.clone(), order_key.clone());
        self.lines
            .entry(order_key)
            .or_default()
            .push_back(Queued { seq, record_id });
    }

    /// Removes a settled record.
    pub fn remove(&mut self, record_id: &str) {
        let Some(key) = self.keys.remove(record_id) else {
            return;
        };
        if let Some(line) = self.lines.get_mut(&key) {
            // Records settle from the head of their line; anything else is the rare case.
            if line.front().is_some_and(|q| q.record_id == record_id) {
                line.pop_front();
            } else {
                line.retain(|q| q.record_id != record_id);
            }
            if line.is_empty() {
                self.lines.remove(&key);
            }
        }
    }

    /// The oldest record of each key with its key, oldest first.
    pub fn heads(&self) -> Vec<(&str, &Queued)> {
        let mut heads: Vec<(&str, &Queued)> = self
            .lines
            .iter()
            .filter_map(|(key, line)| line.front().map(|q| (key.as_str(), q)))
            .collect();
        heads.sort_by_key(|(_, q)| q.seq);
        heads
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(queue: &Queue) -> Vec<(String, String)> {
        queue
            .heads()
            .into_iter()
            .map(|(k, q)| (k.to_string(), q.record_id.clone()))
            .collect()
    }

    #[test]
    fn heads_are_the_oldest_per_key_in_sequence_order() {
        let mut q = Queue::default();
        q.push(1, "a1".into(), "a".into());
        q.push(2, "b1".into(), "b".into());
        q.push(3, "a2".into(), "a".into());
        q.push(4, "a3".into(), "a".into());
        q.push(7, "c1".into(), "c".into());
        assert_eq!(q.last_seq(), 7);
        let pairs = |v: &[(&str, &str)]| -> Vec<(String, String)> {
            v.iter()
                .map(|(k, r)| (k.to_string(), r.to_string()))
                .collect()
        };
        assert_eq!(ids(&q), pairs(&[("a", "a1"), ("b", "b1"), ("c", "c1")]));
        q.remove("a1");
        q.remove("b1");
        assert_eq!(ids(&q), pairs(&[("a", "a2"), ("c", "c1")]));
        q.remove("a3");
        q.remove("unknown");
        q.remove("a2");
        assert_eq!(ids(&q), pairs(&[("c", "c1")]));
        q.remove("c1");
        assert!(q.heads().is_empty());
        assert_eq!(q.last_seq(), 7, "the read position stays");
    }
}
