//! `/v1/_sandbox/...`: QA controls that no real platform has (write token required).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;

use crate::server::error::ApiError;
use crate::server::faults::FaultRule;
use crate::server::state::AppState;
use crate::server::validate::JsonObject;

/// `POST /v1/_sandbox/faults`: the next `count` requests to `paths` misbehave as `mode`.
pub async fn add_fault(
    State(state): State<AppState>,
    JsonObject(body): JsonObject,
) -> Result<StatusCode, ApiError> {
    let rule = FaultRule::from_json(&body)?;
    log::info!("sandbox: fault rule added: {rule:?}");
    state.faults.add(rule)?;
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /v1/_sandbox/faults`: removes every rule.
pub async fn clear_faults(State(state): State<AppState>) -> StatusCode {
    state.faults.clear();
    StatusCode::NO_CONTENT
}

/// `GET /v1/_sandbox/stats`: requests per route and records created since start (or reset).
pub async fn stats(State(state): State<AppState>) -> Json<serde_json::Value> {
    Json(state.stats.snapshot())
}

/// `POST /v1/_sandbox/reset`: wipes every record, restores the seed catalog, clears faults and stats.
pub async fn reset(State(state): State<AppState>) -> Result<StatusCode, ApiError> {
    state.faults.clear();
    state.db.reset().await?;
    state.uploads.clear().await?;
    state.stats.reset();
    log::info!("sandbox: data reset");
    Ok(StatusCode::NO_CONTENT)
}
