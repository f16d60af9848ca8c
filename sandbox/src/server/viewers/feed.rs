//! What viewers are told as it happens: publishers coming and going at the ingest, sessions
//! ending, sales, catalog changes. One broadcast channel; each viewer's stream picks its session.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use serde::Serialize;
use tokio::sync::broadcast;

/// Events a slow viewer may fall behind by before its stream is restarted.
const CAPACITY: usize = 256;

/// A change viewers may need to hear about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FeedEvent {
    /// A publisher started or stopped, or the ingest lost all of them: states may have changed.
    PublishersChanged,
    /// The live session with this id was ended.
    SessionEnded(String),
    /// A sale was recorded (for this session, if any) and its product's stock changed.
    SaleRecorded {
        /// The sale's id.
        sale_id: String,
        /// The live session it was taken in.
        session_id: Option<String>,
        /// The product sold.
        product_id: String,
    },
    /// A product was created or replaced.
    ProductChanged(String),
}

/// Whether a stream key's publisher is at the ingest, as nginx last reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presence {
    /// Publishing now.
    Publishing,
    /// Published earlier, gone now.
    Gone,
}

/// A live session's state as its viewers see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ViewerState {
    /// Created, nothing published yet.
    Waiting,
    /// The publisher is sending.
    Live,
    /// The publisher was live and is gone, and the session has not ended.
    Reconnecting,
    /// The session was ended.
    Ended,
}

impl ViewerState {
    /// The state of a session from whether it was ended and its publisher's presence.
    pub fn of(ended: bool, presence: Option<Presence>) -> ViewerState {
        match (ended, presence) {
            (true, _) => ViewerState::Ended,
            (false, Some(Presence::Publishing)) => ViewerState::Live,
            (false, Some(Presence::Gone)) => ViewerState::Reconnecting,
            (false, None) => ViewerState::Waiting,
        }
    }
}

/// The publishers' presence by stream key and the channel viewers listen to.
pub struct ViewerFeed {
    events: broadcast::Sender<FeedEvent>,
    presence: Mutex<HashMap<String, Presence>>,
}

impl Default for ViewerFeed {
    fn default() -> Self {
        ViewerFeed {
            events: broadcast::channel(CAPACITY).0,
            presence: Mutex::default(),
        }
    }
}

impl ViewerFeed {
    fn presence_map(&self) -> MutexGuard<'_, HashMap<String, Presence>> {
        self.presence.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Listens from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<FeedEvent> {
        self.events.subscribe()
    }

    /// Tells every viewer; nobody listening is fine.
    pub fn publish(&self, event: FeedEvent) {
        let _ = self.events.send(event);
    }

    /// The presence of the publisher of `stream_key`, if it ever published.
    pub fn presence(&self, stream_key: &str) -> Option<Presence> {
        self.presence_map().get(stream_key).copied()
    }

    /// nginx reports a publisher under `stream_key` started (`true`) or stopped.
    pub fn set_publishing(&self, stream_key: &str, publishing: bool) {
        let presence = match publishing {
            true => Presence::Publishing,
            false => Presence::Gone,
        };
        self.presence_map().insert(stream_key.to_owned(), presence);
        self.publish(FeedEvent::PublishersChanged);
    }

    /// nginx died: every publisher lost its connection.
    pub fn ingest_lost(&self) {
        self.presence_map()
            .values_mut()
            .for_each(|p| *p = Presence::Gone);
        self.publish(FeedEvent::PublishersChanged);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_follows_the_end_then_the_publisher() {
        assert_eq!(ViewerState::of(false, None), ViewerState::Waiting);
        assert_eq!(
            ViewerState::of(false, Some(Presence::Publishing)),
            ViewerState::Live
        );
        assert_eq!(
            ViewerState::of(false, Some(Presence::Gone)),
            ViewerState::Reconnecting
        );
        assert_eq!(
            ViewerState::of(true, Some(Presence::Publishing)),
            ViewerState::Ended
        );
    }

    #[test]
    fn publishers_come_go_and_are_lost_with_the_ingest() {
        let feed = ViewerFeed::default();
        let mut rx = feed.subscribe();
        feed.set_publishing("a", true);
        feed.set_publishing("b", true);
        feed.set_publishing("b", false);
        assert_eq!(feed.presence("a"), Some(Presence::Publishing));
        assert_eq!(feed.presence("b"), Some(Presence::Gone));
        assert_eq!(feed.presence("c"), None);
        feed.ingest_lost();
        assert_eq!(feed.presence("a"), Some(Presence::Gone));
        for _ in 0..4 {
            assert_eq!(rx.try_recv(), Ok(FeedEvent::PublishersChanged));
        }
    }
}
