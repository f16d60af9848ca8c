//! The viewer's side of a live session, under `/watch/{session_id}`: a page for phones that plays
//! the session's HLS with hls.js, shows the pinned product's card when playback reaches the pin's
//! frame, lists the sales as they are taken and shows whether the session is live. No token: it is
//! what buyers open.

mod events;
pub mod feed;
mod hls;
mod hook;
mod page;

use axum::Router;
use axum::routing::{get, post};
use rusqlite::OptionalExtension;

use super::error::ApiError;
use super::state::AppState;
pub use feed::ViewerFeed;

/// The viewer's routes and the ingest's notification hook.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/watch/assets/{file}", get(page::asset))
        .route("/watch/{session_id}", get(page::page))
        .route("/watch/{session_id}/events", get(events::stream))
        .route("/watch/{session_id}/{file}", get(hls::file))
        .route("/_ingest/{secret}", post(hook::notify))
}

/// What the viewer's routes need to know about a live session.
#[derive(Debug, Clone)]
struct WatchedSession {
    id: String,
    title: String,
    stream_key: String,
    ended: bool,
}

impl WatchedSession {
    /// The session with `id`; 404 if there is none.
    async fn load(state: &AppState, id: &str) -> Result<WatchedSession, ApiError> {
        let id = id.to_owned();
        state
            .db
            .call(move |conn| {
                conn.query_row(
                    "SELECT title, stream_key, state FROM live_sessions WHERE id = ?1",
                    [&id],
                    |r| {
                        Ok(WatchedSession {
                            id: id.clone(),
                            title: r.get(0)?,
                            stream_key: r.get(1)?,
                            ended: r.get::<_, String>(2)? == "ended",
                        })
                    },
                )
                .optional()?
                .ok_or_else(|| ApiError::not_found(format!("no live session \"{id}\" to watch")))
            })
            .await
    }
}
