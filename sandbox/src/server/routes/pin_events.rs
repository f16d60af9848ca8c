//! `POST /v1/pin-events`: a product pinned or unpinned while live (idempotent).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use rusqlite::{Connection, Row, params};
use serde::Serialize;

use super::live_sessions::{self, LiveSession};
use super::products::{self, Product};
use crate::server::client_clock::ClockSkew;
use crate::server::error::ApiError;
use crate::server::faults::Slowdown;
use crate::server::idempotency::{self, IdempotencyKey};
use crate::server::state::AppState;
use crate::server::validate::{Fields, JsonObject};

/// A pin event as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct PinEvent {
    id: String,
    pin_id: String,
    session_id: String,
    product_id: String,
    action: String,
    stream_time_ms: i64,
    wall_time: String,
    /// The phone's clock minus the platform's when the event arrived (ms), from its `Date`.
    client_clock_skew_ms: Option<i64>,
}

const COLUMNS: &str =
    "id, pin_id, session_id, product_id, action, stream_time_ms, wall_time, client_clock_skew_ms";

impl PinEvent {
    fn from_row(r: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(PinEvent {
            id: r.get(0)?,
            pin_id: r.get(1)?,
            session_id: r.get(2)?,
            product_id: r.get(3)?,
            action: r.get(4)?,
            stream_time_ms: r.get(5)?,
            wall_time: r.get(6)?,
            client_clock_skew_ms: r.get(7)?,
        })
    }

    /// A session's pin events in stream order.
    pub fn of_session(conn: &Connection, session_id: &str) -> rusqlite::Result<Vec<PinEvent>> {
        let mut stmt = conn.prepare(&format!(
            "SELECT {COLUMNS} FROM pin_events WHERE session_id = ?1 ORDER BY stream_time_ms, seq"
        ))?;
        let rows = stmt.query_map([session_id], PinEvent::from_row)?;
        rows.collect()
    }

    /// The event of a request body; `wall_time` is the phone's, whatever its clock says.
    fn from_json(fields: &Fields<'_>, skew: ClockSkew) -> Result<PinEvent, ApiError> {
        Ok(PinEvent {
            id: fields.string("id", 1, 255)?.to_owned(),
            pin_id: fields.string("pin_id", 1, 255)?.to_owned(),
            session_id: fields.string("session_id", 1, 255)?.to_owned(),
            product_id: fields.string("product_id", 1, 64)?.to_owned(),
            action: fields
                .choice("action", &[("pin", "pin"), ("unpin", "unpin")])?
                .to_owned(),
            stream_time_ms: fields.integer("stream_time_ms", 0)?,
            wall_time: fields.timestamp("wall_time")?.to_owned(),
            client_clock_skew_ms: skew.0,
        })
    }
}

/// `POST /v1/pin-events`: 201 with the event; 422 for an unknown session or product.
pub async fn create(
    State(state): State<AppState>,
    Slowdown(slow): Slowdown,
    skew: ClockSkew,
    key: IdempotencyKey,
    JsonObject(body): JsonObject,
) -> Result<Response, ApiError> {
    let event = PinEvent::from_json(&Fields::of(&body)?, skew)?;
    let id = event.id.clone();
    let outcome = idempotency::process(&state, "pin-events", key, &body, &id, slow, move |conn| {
        if !LiveSession::exists(conn, &event.session_id)? {
            return Err(live_sessions::unknown(&event.session_id));
        }
        if Product::load(conn, &event.product_id)?.is_none() {
            return Err(products::unknown(&event.product_id));
        }
        conn.execute(
            &format!("INSERT INTO pin_events ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"),
            params![
                event.id,
                event.pin_id,
                event.session_id,
                event.product_id,
                event.action,
                event.stream_time_ms,
                event.wall_time,
                event.client_clock_skew_ms
            ],
        )?;
        let body = serde_json::to_value(&event)
            .map_err(|e| ApiError::internal(format!("encoding the pin event: {e}")))?;
        Ok((StatusCode::CREATED, body))
    })
    .await?;
    if outcome.created() {
        state.stats.pin_event_recorded();
    }
    Ok(outcome.into_response())
}
