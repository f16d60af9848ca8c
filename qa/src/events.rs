//! What the seller's app of a QA run (`soak_app`, `fieldcast qa app`) prints: one JSON object
//! per line on stdout, each stamped with `wall_ms` (ms since the Unix epoch), which the
//! orchestrator reads as they come.

use std::io::Write;

use serde::{Deserialize, Serialize};

/// One line of the seller's app's stdout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum AppEvent {
    /// The app has opened its store and fetched the catalog: it takes commands now.
    Ready {
        /// When.
        wall_ms: u64,
    },
    /// The live session's statistics of the last second.
    Stats {
        /// When.
        wall_ms: u64,
        /// Encoded video, kbit/s.
        video_kbps: f64,
        /// The bitrate the adaptive bitrate asks the encoder for, kbit/s.
        target_kbps: u32,
        /// The uplink's capacity as the adaptive bitrate estimates it, kbit/s (0: unknown).
        link_kbps: u32,
        /// Frames per second leaving the encoder.
        output_fps: f64,
        /// Frames per second the app pushed into the session.
        input_fps: f64,
    },
    /// The recorded replay is on the platform.
    Replay {
        /// When.
        wall_ms: u64,
        /// Segment files uploaded.
        files: usize,
        /// Bytes uploaded in all.
        bytes: u64,
    },
    /// The live session exists on the platform and the session was started.
    Live {
        /// When.
        wall_ms: u64,
        /// The platform's live-session id.
        session_id: String,
    },
    /// The live session changed state (`live`, `reconnecting`, `ending`, ...).
    State {
        /// When.
        wall_ms: u64,
        /// The new state, lower case.
        to: String,
    },
    /// A sale was taken (stored in the phone's store and queued for the platform).
    Sale {
        /// When.
        wall_ms: u64,
        /// Its id, also its id on the platform.
        sale_id: String,
        /// The product sold.
        product_id: String,
        /// Units sold.
        quantity: i64,
    },
    /// A product was pinned.
    Pin {
        /// When.
        wall_ms: u64,
        /// The pin's id (its pin and unpin events carry it).
        pin_id: String,
        /// The product shown.
        product_id: String,
    },
    /// A pin was ended.
    Unpin {
        /// When.
        wall_ms: u64,
        /// The pin's id.
        pin_id: String,
        /// The product that was shown.
        product_id: String,
    },
    /// The outbox, every second.
    Outbox {
        /// When.
        wall_ms: u64,
        /// Records waiting to be sent.
        pending: u64,
        /// Records on the wire.
        in_flight: u64,
        /// Records the platform accepted.
        synced: u64,
        /// Records the platform refused.
        conflicted: u64,
    },
    /// The live session reported an error; it reconnects by itself unless it then fails.
    SessionError {
        /// When.
        wall_ms: u64,
        /// The error.
        message: String,
    },
    /// Something the app tried failed (a sale, a pin, stopping the session, ...).
    Error {
        /// When.
        wall_ms: u64,
        /// What was tried.
        action: String,
        /// Why it failed.
        message: String,
    },
    /// The market day is over: the session is being stopped.
    Stopping {
        /// When.
        wall_ms: u64,
    },
    /// The app is about to exit: whether the outbox drained, and what it holds.
    Done {
        /// When.
        wall_ms: u64,
        /// Nothing pending or in flight was left.
        drained: bool,
        /// Records still waiting.
        pending: u64,
        /// Records still on the wire.
        in_flight: u64,
        /// Records the platform refused.
        conflicted: u64,
        /// Records the platform accepted.
        synced: u64,
    },
}

impl AppEvent {
    /// Prints the event as one line on stdout and flushes it, so a reader sees it at once.
    pub fn print(&self) {
        let line = serde_json::to_string(self).expect("an event serializes");
        let mut out = std::io::stdout().lock();
        // A closed stdout (the orchestrator is gone) leaves nobody to tell.
        let _ = writeln!(out, "{line}").and_then(|()| out.flush());
    }
}

/// Everything the seller's app printed so far, read line by line.
#[derive(Debug, Default)]
pub struct AppLog {
    /// The events in the order they were printed.
    pub events: Vec<AppEvent>,
    /// Lines that were not events (kept for the report).
    pub other_lines: Vec<String>,
}

impl AppLog {
    /// Takes one line of the app's stdout.
    pub fn push_line(&mut self, line: &str) {
        match serde_json::from_str(line) {
            Ok(event) => self.events.push(event),
            Err(_) => self.other_lines.push(line.to_string()),
        }
    }

    /// The platform's id of the live session, once it is live.
    pub fn session_id(&self) -> Option<&str> {
        self.events.iter().find_map(|e| match e {
            AppEvent::Live { session_id, .. } => Some(session_id.as_str()),
            _ => None,
        })
    }

    /// The live session's last state, `starting` before any.
    pub fn state(&self) -> &str {
        self.events
            .iter()
            .rev()
            .find_map(|e| match e {
                AppEvent::State { to, .. } => Some(to.as_str()),
                _ => None,
            })
            .unwrap_or("starting")
    }

    /// The last outbox report: (pending, in flight).
    pub fn outbox(&self) -> Option<(u64, u64)> {
        self.events.iter().rev().find_map(|e| match e {
            AppEvent::Outbox {
                pending, in_flight, ..
            } => Some((*pending, *in_flight)),
            _ => None,
        })
    }

    /// The outbox report with the most records pending or in flight at or after `from_ms`:
    /// (pending, in flight).
    pub fn outbox_peak(&self, from_ms: u64) -> Option<(u64, u64)> {
        self.events
            .iter()
            .filter_map(|e| match e {
                AppEvent::Outbox {
                    wall_ms,
                    pending,
                    in_flight,
                    ..
                } if *wall_ms >= from_ms => Some((*pending, *in_flight)),
                _ => None,
            })
            .max_by_key(|(pending, in_flight)| pending + in_flight)
    }

    /// How many times the live session went `reconnecting`.
    pub fn reconnections(&self) -> usize {
        self.events
            .iter()
            .filter(|e| matches!(e, AppEvent::State { to, .. } if to == "reconnecting"))
            .count()
    }

    /// When the market day ended (the session began to stop).
    pub fn stopping_ms(&self) -> Option<u64> {
        self.events.iter().find_map(|e| match e {
            AppEvent::Stopping { wall_ms } => Some(*wall_ms),
            _ => None,
        })
    }

    /// The ids of the sales taken.
    pub fn sale_ids(&self) -> Vec<String> {
        self.events
            .iter()
            .filter_map(|e| match e {
                AppEvent::Sale { sale_id, .. } => Some(sale_id.clone()),
                _ => None,
            })
            .collect()
    }

    /// The pin events made, as (pin id, `pin` or `unpin`), as the platform lists them.
    pub fn pin_events(&self) -> Vec<(String, String)> {
        self.events
            .iter()
            .filter_map(|e| match e {
                AppEvent::Pin { pin_id, .. } => Some((pin_id.clone(), "pin".to_string())),
                AppEvent::Unpin { pin_id, .. } => Some((pin_id.clone(), "unpin".to_string())),
                _ => None,
            })
            .collect()
    }

    /// What failed, as `action: message`.
    pub fn errors(&self) -> Vec<String> {
        self.events
            .iter()
            .filter_map(|e| match e {
                AppEvent::Error {
                    action, message, ..
                } => Some(format!("{action}: {message}")),
                _ => None,
            })
            .collect()
    }

    /// Whether the app reported that its outbox drained before it exited.
    pub fn drained(&self) -> bool {
        self.events
            .iter()
            .any(|e| matches!(e, AppEvent::Done { drained: true, .. }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_tagged_json_lines_that_read_back() {
        let event = AppEvent::Sale {
            wall_ms: 5,
            sale_id: "s1".into(),
            product_id: "honey-jar".into(),
            quantity: 2,
        };
        let line = serde_json::to_string(&event).unwrap();
        assert!(line.starts_with(r#"{"event":"sale","#), "{line}");
        assert_eq!(serde_json::from_str::<AppEvent>(&line).unwrap(), event);
    }

    #[test]
    fn the_log_answers_from_the_lines_it_took() {
        let mut log = AppLog::default();
        assert_eq!(log.state(), "starting");
        for line in [
            r#"{"event":"live","wall_ms":1,"session_id":"ls1"}"#,
            r#"{"event":"state","wall_ms":2,"to":"live"}"#,
            r#"{"event":"sale","wall_ms":3,"sale_id":"a","product_id":"egg-tray","quantity":1}"#,
            r#"{"event":"pin","wall_ms":4,"pin_id":"p1","product_id":"honey-jar"}"#,
            r#"{"event":"outbox","wall_ms":5,"pending":2,"in_flight":1,"synced":0,"conflicted":0}"#,
            r#"{"event":"unpin","wall_ms":6,"pin_id":"p1","product_id":"honey-jar"}"#,
            r#"{"event":"session_error","wall_ms":7,"message":"stalled"}"#,
            r#"{"event":"state","wall_ms":7,"to":"reconnecting"}"#,
            r#"{"event":"outbox","wall_ms":8,"pending":1,"in_flight":0,"synced":2,"conflicted":0}"#,
            "not an event",
        ] {
            log.push_line(line);
        }
        assert_eq!(log.session_id(), Some("ls1"));
        assert_eq!(log.state(), "reconnecting");
        assert_eq!(log.outbox(), Some((1, 0)));
        assert_eq!(log.outbox_peak(0), Some((2, 1)));
        assert_eq!(log.outbox_peak(6), Some((1, 0)));
        assert_eq!(log.outbox_peak(9), None);
        assert_eq!(log.reconnections(), 1);
        assert!(log.errors().is_empty());
        assert_eq!(log.sale_ids(), ["a"]);
        assert_eq!(
            log.pin_events(),
            [("p1".into(), "pin".into()), ("p1".into(), "unpin".into())]
        );
        assert_eq!(log.other_lines, ["not an event"]);
        assert!(log.stopping_ms().is_none() && !log.drained());
    }
}
