//! The viewer's page and its files: HTML, CSS and JavaScript built into the sandbox, and hls.js
//! from the npm package `make deps` installs next to them (`sandbox/viewer/node_modules`).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::response::{Html, IntoResponse, Response};

use super::WatchedSession;
use crate::server::error::ApiError;
use crate::server::state::AppState;

const INDEX_HTML: &str = include_str!("../../../viewer/index.html");
const VIEWER_JS: &str = include_str!("../../../viewer/viewer.js");
const VIEWER_CSS: &str = include_str!("../../../viewer/viewer.css");
/// hls.js as `npm ci` in `sandbox/viewer` installs it (the version is pinned in its package.json).
const HLS_JS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/viewer/node_modules/hls.js/dist/hls.min.js"
);

/// `GET /watch/{session_id}`: the page; 404 for an unknown session.
pub async fn page(
    State(state): State<AppState>,
    Path(session_id): Path<String>,
) -> Result<Html<&'static str>, ApiError> {
    WatchedSession::load(&state, &session_id).await?;
    Ok(Html(INDEX_HTML))
}

/// `GET /watch/assets/{file}`: `viewer.js`, `viewer.css`, `hls.min.js`.
pub async fn asset(Path(file): Path<String>) -> Result<Response, ApiError> {
    let (kind, body) = match file.as_str() {
        "viewer.js" => ("text/javascript", VIEWER_JS.as_bytes().to_vec()),
        "viewer.css" => ("text/css", VIEWER_CSS.as_bytes().to_vec()),
        "hls.min.js" => (
            "text/javascript",
            tokio::fs::read(HLS_JS).await.map_err(|e| {
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "player_missing",
                    format!(
                        "cannot read {HLS_JS} ({e}): run `make deps` (npm ci in sandbox/viewer)"
                    ),
                )
            })?,
        ),
        _ => return Err(ApiError::not_found(format!("no viewer file {file}"))),
    };
    Ok(([(CONTENT_TYPE, kind), (CACHE_CONTROL, "no-cache")], body).into_response())
}
