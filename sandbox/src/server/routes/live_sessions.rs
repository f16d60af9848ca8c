//! `/v1/live-sessions`: where to publish, and the pins that become the replay's chapters.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use super::pin_events::PinEvent;
use crate::server::db::now_rfc3339;
use crate::server::error::ApiError;
use crate::server::state::AppState;
use crate::server::validate::{Fields, JsonObject, PathParam};
use crate::server::viewers::feed::FeedEvent;

/// A live session as the API shows it.
#[derive(Debug, Serialize)]
pub struct LiveSession {
    id: String,
    title: String,
    ingest_url: String,
    stream_key: String,
    publish_url: String,
    state: String,
    created_at: String,
    ended_at: Option<String>,
    pins: Vec<PinEvent>,
}

impl LiveSession {
    fn load(conn: &Connection, id: &str) -> Result<LiveSession, ApiError> {
        let session = conn
            .query_row(
                "SELECT id, title, ingest_url, stream_key, state, created_at, ended_at
                 FROM live_sessions WHERE id = ?1",
                [id],
                |r| {
                    let ingest_url: String = r.get(2)?;
                    let stream_key: String = r.get(3)?;
                    Ok(LiveSession {
                        id: r.get(0)?,
                        title: r.get(1)?,
                        publish_url: format!("{ingest_url}/{stream_key}"),
                        ingest_url,
                        stream_key,
                        state: r.get(4)?,
                        created_at: r.get(5)?,
                        ended_at: r.get(6)?,
                        pins: Vec::new(),
                    })
                },
            )
            .optional()?;
        let mut session = session.ok_or_else(|| {
            ApiError::not_found(format!(
                "no live session \"{id}\": POST /v1/live-sessions creates one"
            ))
        })?;
        session.pins = PinEvent::of_session(conn, id)?;
        Ok(session)
    }

    /// Whether a session with `id` exists.
    pub fn exists(conn: &Connection, id: &str) -> rusqlite::Result<bool> {
        conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM live_sessions WHERE id = ?1)",
            [id],
            |r| r.get(0),
        )
    }
}

/// 422 `unknown_session`, as sales and pin events report it.
pub fn unknown(id: &str) -> ApiError {
    ApiError::unprocessable(
        "unknown_session",
        format!(
            "no live session \"{id}\": create it with POST /v1/live-sessions and use the id it returns"
        ),
    )
}

/// `POST /v1/live-sessions`: a new session with its own random stream key.
pub async fn create(
    State(state): State<AppState>,
    JsonObject(body): JsonObject,
) -> Result<(StatusCode, Json<LiveSession>), ApiError> {
    let title = Fields::of(&body)?.string("title", 1, 200)?.to_owned();
    let ingest = state.ingest.as_ref().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "ingest_unavailable",
            "this sandbox runs without its RTMP ingest (--no-ingest), so it has nowhere to publish to: restart it without --no-ingest",
        )
    })?;
    if let Some(failure) = ingest.failure() {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "ingest_unavailable",
            format!("the sandbox's RTMP ingest is down ({failure}): restart the sandbox"),
        ));
    }
    let ingest_url = ingest.url();
    let id = uuid::Uuid::now_v7().to_string();
    let stream_key = format!("{:032x}", rand::random::<u128>());
    let session = state
        .db
        .call(move |conn| {
            conn.execute(
                "INSERT INTO live_sessions (id, title, ingest_url, stream_key, state, created_at)
                 VALUES (?1, ?2, ?3, ?4, 'created', ?5)",
                params![id, title, ingest_url, stream_key, now_rfc3339()],
            )?;
            LiveSession::load(conn, &id)
        })
        .await?;
    Ok((StatusCode::CREATED, Json(session)))
}

/// `GET /v1/live-sessions/{session_id}`, with its pins in stream order.
pub async fn fetch(
    State(state): State<AppState>,
    PathParam(id): PathParam,
) -> Result<Json<LiveSession>, ApiError> {
    state
        .db
        .call(move |conn| LiveSession::load(conn, &id))
        .await
        .map(Json)
}

/// `POST /v1/live-sessions/{session_id}/end`: idempotent; the first end time stays.
pub async fn end(
    State(state): State<AppState>,
    PathParam(id): PathParam,
) -> Result<Json<LiveSession>, ApiError> {
    let session = state
        .db
        .call(move |conn| {
            conn.execute(
                "UPDATE live_sessions SET state = 'ended', ended_at = ?2
                 WHERE id = ?1 AND state = 'created'",
                params![id, now_rfc3339()],
            )?;
            LiveSession::load(conn, &id)
        })
        .await?;
    state
        .viewers
        .publish(FeedEvent::SessionEnded(session.id.clone()));
    Ok(Json(session))
}
