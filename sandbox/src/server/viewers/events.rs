//! `GET /watch/{session_id}/events`: server-sent events for one viewer. First a snapshot
//! (`session` with its state, `products`, one `sale` per sale so far), then `state`, `sale` and
//! `product` as they change. A viewer that falls behind is cut off; its EventSource reconnects
//! within a second and gets a fresh snapshot.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use serde::Serialize;
use serde_json::json;
use tokio::sync::broadcast;

use super::WatchedSession;
use super::feed::{FeedEvent, ViewerState};
use crate::server::error::ApiError;
use crate::server::routes::products::Product;
use crate::server::routes::sales::Sale;
use crate::server::state::AppState;

/// How soon the browser reconnects after the stream ends.
const RETRY: Duration = Duration::from_secs(1);

/// One viewer's stream.
struct Viewer {
    state: AppState,
    session: WatchedSession,
    feed: broadcast::Receiver<FeedEvent>,
    shown: ViewerState,
    pending: VecDeque<Event>,
}

/// `GET /watch/{session_id}/events`; 404 for an unknown session.
pub async fn stream(
    State(state): State<AppState>,
    Path(session_id): Path<String>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    // Subscribed before the snapshot is read, so nothing falls between the two.
    let feed = state.viewers.subscribe();
    let session = WatchedSession::load(&state, &session_id).await?;
    let shown = current_state(&state, &session);
    let mut viewer = Viewer {
        state,
        session,
        feed,
        shown,
        pending: VecDeque::from([Event::default().retry(RETRY)]),
    };
    viewer.snapshot().await?;
    let events = futures_util::stream::unfold(viewer, |mut viewer| async move {
        let event = viewer.next_event().await?;
        Some((Ok(event), viewer))
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::default()))
}

fn current_state(state: &AppState, session: &WatchedSession) -> ViewerState {
    ViewerState::of(session.ended, state.viewers.presence(&session.stream_key))
}

impl Viewer {
    fn push(&mut self, name: &str, data: &impl Serialize) {
        match Event::default().event(name).json_data(data) {
            Ok(event) => self.pending.push_back(event),
            Err(e) => log::warn!("sandbox: viewer event {name} not encoded: {e}"),
        }
    }

    async fn snapshot(&mut self) -> Result<(), ApiError> {
        let session_id = self.session.id.clone();
        let (products, sales) = self
            .state
            .db
            .call(move |conn| Ok((Product::all(conn)?, Sale::list(conn, Some(&session_id))?)))
            .await?;
        let session = json!({
            "id": self.session.id,
            "title": self.session.title,
            "state": self.shown,
        });
        self.push("session", &session);
        self.push("products", &products);
        for sale in &sales {
            self.push("sale", sale);
        }
        Ok(())
    }

    /// The next event to send; `None` ends the stream (the server stops, or the viewer lagged).
    async fn next_event(&mut self) -> Option<Event> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Some(event);
            }
            let received = tokio::select! {
                received = self.feed.recv() => received,
                () = self.state.shutdown.signalled() => return None,
            };
            let Ok(event) = received else {
                return None;
            };
            if let Err(e) = self.follow(event).await {
                log::warn!("sandbox: a viewer's stream ends: {}", e.message);
                return None;
            }
        }
    }

    /// Queues what `event` changes for this viewer.
    async fn follow(&mut self, event: FeedEvent) -> Result<(), ApiError> {
        match event {
            FeedEvent::PublishersChanged => {}
            FeedEvent::SessionEnded(id) if id == self.session.id => self.session.ended = true,
            FeedEvent::SessionEnded(_) => {}
            FeedEvent::SaleRecorded {
                sale_id,
                session_id,
                product_id,
            } => {
                let ours = session_id.as_deref() == Some(self.session.id.as_str());
                let (sale, product) = self
                    .state
                    .db
                    .call(move |conn| {
                        let sale = if ours {
                            Sale::load(conn, &sale_id)?
                        } else {
                            None
                        };
                        Ok((sale, Product::load(conn, &product_id)?))
                    })
                    .await?;
                if let Some(sale) = sale {
                    self.push("sale", &sale);
                }
                if let Some(product) = product {
                    self.push("product", &product);
                }
            }
            FeedEvent::ProductChanged(id) => {
                let product = self
                    .state
                    .db
                    .call(move |conn| Ok(Product::load(conn, &id)?))
                    .await?;
                if let Some(product) = product {
                    self.push("product", &product);
                }
            }
        }
        let now = current_state(&self.state, &self.session);
        if now != self.shown {
            self.shown = now;
            self.push("state", &json!({ "state": now }));
        }
        Ok(())
    }
}
