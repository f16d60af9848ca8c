//! `/watch/{session_id}/index.m3u8` and its fragments: the HLS nginx writes for the session's
//! stream key, served under the session id so that viewers never learn the key.

use axum::extract::{Path, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};

use super::WatchedSession;
use crate::server::error::ApiError;
use crate::server::state::AppState;

/// The playlist's name, as nginx writes it with `hls_nested on`.
const PLAYLIST: &str = "index.m3u8";

/// The content type of a file nginx writes, or `None` for any other name.
fn content_type(file: &str) -> Option<&'static str> {
    let is_fragment = file
        .strip_suffix(".ts")
        .is_some_and(|n| !n.is_empty() && n.len() <= 20 && n.bytes().all(|b| b.is_ascii_digit()));
    match file {
        PLAYLIST => Some("application/vnd.apple.mpegurl"),
        _ if is_fragment => Some("video/mp2t"),
        _ => None,
    }
}

/// `GET /watch/{session_id}/{file}`: the playlist (never cached) or a fragment.
pub async fn file(
    State(state): State<AppState>,
    Path((session_id, file)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let kind = content_type(&file).ok_or_else(|| {
        ApiError::not_found(format!(
            "no {file} here: a session's HLS is {PLAYLIST} and <n>.ts"
        ))
    })?;
    let session = WatchedSession::load(&state, &session_id).await?;
    let ingest = state.ingest.as_ref().ok_or_else(|| {
        ApiError::not_found("this sandbox runs without its ingest, so nothing is ever live")
    })?;
    let path = ingest.hls_dir(&session.stream_key).join(&file);
    let bytes = tokio::fs::read(&path).await.map_err(|_| {
        ApiError::not_found(format!(
            "{file} is not there: nothing published yet, or the fragment has left the playlist"
        ))
    })?;
    let cache = match file.as_str() {
        PLAYLIST => "no-cache",
        _ => "max-age=60",
    };
    Ok(([(CONTENT_TYPE, kind), (CACHE_CONTROL, cache)], bytes).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_playlist_and_numbered_fragments_are_served() {
        assert_eq!(
            content_type("index.m3u8"),
            Some("application/vnd.apple.mpegurl")
        );
        assert_eq!(content_type("12.ts"), Some("video/mp2t"));
        for name in [".ts", "a.ts", "../x.ts", "1.ts.bak", "other.m3u8", "1-2.ts"] {
            assert_eq!(content_type(name), None, "{name}");
        }
    }
}
