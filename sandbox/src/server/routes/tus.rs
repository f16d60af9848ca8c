//! `/v1/uploads`: resumable replay upload, tus 1.0 core plus the creation extension.
//!
//! The bytes of an upload live in `<data dir>/uploads/<id>`; its offset is that file's length, so
//! whatever part of a PATCH arrived before the connection broke is kept, and a client resumes from
//! the offset HEAD reports.

use std::collections::HashMap;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::body::{Body, HttpBody};
use axum::extract::{Request, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE, LOCATION};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use rusqlite::{OptionalExtension, params};
use tokio::io::AsyncWriteExt;
use tokio::sync::OwnedMutexGuard;

use crate::server::db::now_rfc3339;
use crate::server::error::ApiError;
use crate::server::state::AppState;
use crate::server::validate::PathParam;

/// The only protocol version spoken.
const TUS_VERSION: &str = "1.0.0";
/// The largest upload accepted (`Tus-Max-Size`).
const MAX_SIZE: u64 = 4 << 30;
/// A PATCH that sends nothing for this long is ended, keeping what arrived.
const IDLE_TIMEOUT: Duration = Duration::from_secs(15);
/// How long a PATCH waits for another PATCH to the same upload to finish.
const LOCK_WAIT: Duration = Duration::from_secs(2);

const TUS_RESUMABLE: HeaderName = HeaderName::from_static("tus-resumable");
const UPLOAD_LENGTH: HeaderName = HeaderName::from_static("upload-length");
const UPLOAD_OFFSET: HeaderName = HeaderName::from_static("upload-offset");

/// Upload files and the locks that keep two PATCHes to one upload from interleaving.
pub struct Uploads {
    dir: PathBuf,
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl Uploads {
    /// Uploads stored under `dir` (created if missing).
    pub fn new(dir: PathBuf) -> std::io::Result<Self> {
        std::fs::create_dir_all(&dir)?;
        Ok(Uploads {
            dir,
            locks: Mutex::new(HashMap::new()),
        })
    }

    fn path(&self, id: &str) -> PathBuf {
        self.dir.join(id)
    }

    fn locks(&self) -> MutexGuard<'_, HashMap<String, Arc<tokio::sync::Mutex<()>>>> {
        self.locks.lock().unwrap_or_else(|p| p.into_inner())
    }

    async fn lock(&self, id: &str) -> Option<OwnedMutexGuard<()>> {
        let lock = Arc::clone(self.locks().entry(id.to_owned()).or_default());
        tokio::time::timeout(LOCK_WAIT, lock.lock_owned())
            .await
            .ok()
    }

    /// Deletes every upload file.
    pub async fn clear(&self) -> std::io::Result<()> {
        self.locks().clear();
        let mut entries = tokio::fs::read_dir(&self.dir).await?;
        while let Some(entry) = entries.next_entry().await? {
            tokio::fs::remove_file(entry.path()).await?;
        }
        Ok(())
    }
}

/// Middleware: every response under `/v1/uploads` carries `Tus-Resumable`, and a 412 the
/// `Tus-Version` the server speaks.
pub async fn resumable_header(req: Request, next: Next) -> Response {
    let is_tus = req.uri().path() == "/v1/uploads" || req.uri().path().starts_with("/v1/uploads/");
    let mut response = next.run(req).await;
    if is_tus {
        let headers = response.headers_mut();
        headers.insert(TUS_RESUMABLE, HeaderValue::from_static(TUS_VERSION));
        if response.status() == StatusCode::PRECONDITION_FAILED {
            response
                .headers_mut()
                .insert("tus-version", HeaderValue::from_static(TUS_VERSION));
        }
    }
    response
}

/// `OPTIONS /v1/uploads[/{id}]`: what this server supports; needs no token.
pub async fn discover() -> Response {
    (
        StatusCode::NO_CONTENT,
        [
            ("tus-version", TUS_VERSION.to_owned()),
            ("tus-extension", "creation".to_owned()),
            ("tus-max-size", MAX_SIZE.to_string()),
        ],
    )
        .into_response()
}

/// `POST /v1/uploads`: creates an upload of `Upload-Length` bytes; `Location` is its URL.
pub async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    check_version(&headers)?;
    if headers.contains_key("upload-defer-length") {
        return Err(ApiError::bad_request(
            "invalid_header",
            "Upload-Defer-Length is not supported (no creation-defer-length extension): send Upload-Length",
        ));
    }
    let length = number_header(&headers, &UPLOAD_LENGTH)?;
    if length > MAX_SIZE {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "upload_too_large",
            format!("Upload-Length {length} is above Tus-Max-Size {MAX_SIZE}"),
        ));
    }
    let metadata = match headers.get("upload-metadata") {
        Some(value) => parse_metadata(value.to_str().map_err(|_| {
            ApiError::bad_request("invalid_header", "header Upload-Metadata must be ASCII")
        })?)?,
        None => HashMap::new(),
    };
    let id = uuid::Uuid::now_v7().simple().to_string();
    tokio::fs::File::create(state.uploads.path(&id)).await?;
    let record_id = id.clone();
    state
        .db
        .call(move |conn| {
            conn.execute(
                "INSERT INTO uploads (id, length, session_id, filename, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    record_id,
                    length,
                    metadata.get("session_id"),
                    metadata.get("filename"),
                    now_rfc3339()
                ],
            )?;
            Ok(())
        })
        .await?;
    Ok((
        StatusCode::CREATED,
        [(LOCATION, format!("/v1/uploads/{id}"))],
    )
        .into_response())
}

/// `HEAD /v1/uploads/{id}`: the bytes the server has (`Upload-Offset`) of `Upload-Length`.
pub async fn offset(
    State(state): State<AppState>,
    PathParam(id): PathParam,
) -> Result<Response, ApiError> {
    let (offset, length) = progress(&state, &id).await?;
    Ok((
        StatusCode::OK,
        [
            (UPLOAD_OFFSET, offset.to_string()),
            (UPLOAD_LENGTH, length.to_string()),
            (CACHE_CONTROL, "no-store".to_owned()),
        ],
    )
        .into_response())
}

/// `PATCH /v1/uploads/{id}`: appends the body at `Upload-Offset`; 204 with the new offset.
pub async fn append(
    State(state): State<AppState>,
    PathParam(id): PathParam,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    check_version(&headers)?;
    let content_type = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok());
    if content_type != Some("application/offset+octet-stream") {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!(
                "a PATCH must have Content-Type application/offset+octet-stream, got {}",
                content_type.unwrap_or("none")
            ),
        ));
    }
    let claimed = number_header(&headers, &UPLOAD_OFFSET)?;
    progress(&state, &id).await?;
    let guard = state.uploads.lock(&id).await.ok_or_else(|| {
        ApiError::conflict(
            "upload_busy",
            "another PATCH is still writing to this upload: HEAD it and resume from its Upload-Offset",
        )
    })?;
    let (offset, length) = progress(&state, &id).await?;
    if claimed != offset {
        return Err(ApiError::conflict(
            "upload_offset_mismatch",
            format!(
                "Upload-Offset is {claimed} but the server has {offset} bytes: resume from Upload-Offset {offset}"
            ),
        ));
    }
    let announced = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if let Some(announced) = announced
        && offset + announced > length
    {
        return Err(too_long(offset, announced, length));
    }
    // A task of its own: if the client vanishes mid-body, what arrived is still written and
    // the lock released only after the file is complete.
    let path = state.uploads.path(&id);
    let written = tokio::spawn(write_body(body, path, length - offset, guard))
        .await
        .map_err(|e| ApiError::internal(format!("upload writer failed: {e}")))??;
    if let Some(attempted) = written.overflow {
        return Err(too_long(offset, attempted, length));
    }
    Ok((
        StatusCode::NO_CONTENT,
        [(UPLOAD_OFFSET, (offset + written.bytes).to_string())],
    )
        .into_response())
}

struct Written {
    /// Bytes appended.
    bytes: u64,
    /// The byte count the body reached when it passed the upload's end, if it did.
    overflow: Option<u64>,
}

/// Appends body frames until the body ends, breaks, stalls or would pass `room` bytes.
async fn write_body(
    mut body: Body,
    path: PathBuf,
    room: u64,
    _lock: OwnedMutexGuard<()>,
) -> Result<Written, ApiError> {
    let mut file = tokio::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .await?;
    let mut written = Written {
        bytes: 0,
        overflow: None,
    };
    loop {
        let next = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx));
        let data = match tokio::time::timeout(IDLE_TIMEOUT, next).await {
            Ok(Some(Ok(frame))) => match frame.into_data() {
                Ok(data) => data,
                Err(_trailers) => continue,
            },
            Ok(None) => break,
            Ok(Some(Err(e))) => {
                log::info!(
                    "sandbox: PATCH {} broke off after {} bytes: {e}",
                    path.display(),
                    written.bytes
                );
                break;
            }
            Err(_) => {
                log::info!(
                    "sandbox: PATCH {} stalled after {} bytes",
                    path.display(),
                    written.bytes
                );
                break;
            }
        };
        let len = data.len() as u64;
        if written.bytes + len > room {
            written.overflow = Some(written.bytes + len);
            break;
        }
        file.write_all(&data).await?;
        written.bytes += len;
    }
    file.flush().await?;
    Ok(written)
}

/// The offset (bytes on disk) and length of an upload, or 404.
async fn progress(state: &AppState, id: &str) -> Result<(u64, u64), ApiError> {
    let lookup = id.to_owned();
    let length: Option<u64> = state
        .db
        .call(move |conn| {
            Ok(conn
                .query_row("SELECT length FROM uploads WHERE id = ?1", [lookup], |r| {
                    r.get(0)
                })
                .optional()?)
        })
        .await?;
    let missing = || {
        ApiError::not_found(format!(
            "no upload \"{id}\": create one with POST /v1/uploads"
        ))
    };
    let length = length.ok_or_else(missing)?;
    let offset = tokio::fs::metadata(state.uploads.path(id))
        .await
        .map_err(|_| missing())?
        .len();
    Ok((offset, length))
}

fn too_long(offset: u64, more: u64, length: u64) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "upload_too_large",
        format!("{more} more bytes at offset {offset} would pass Upload-Length {length}"),
    )
}

/// 412 unless `Tus-Resumable: 1.0.0` (the middleware adds `Tus-Version`).
fn check_version(headers: &HeaderMap) -> Result<(), ApiError> {
    match headers.get(TUS_RESUMABLE).and_then(|v| v.to_str().ok()) {
        Some(TUS_VERSION) => Ok(()),
        other => Err(ApiError::new(
            StatusCode::PRECONDITION_FAILED,
            "tus_version_unsupported",
            format!(
                "this server speaks tus {TUS_VERSION}: send `Tus-Resumable: {TUS_VERSION}` (got {})",
                other.unwrap_or("none")
            ),
        )),
    }
}

/// A required non-negative integer header.
fn number_header(headers: &HeaderMap, name: &HeaderName) -> Result<u64, ApiError> {
    let value = headers.get(name).ok_or_else(|| {
        ApiError::bad_request(
            "invalid_header",
            format!("missing header {name} (a non-negative integer)"),
        )
    })?;
    value
        .to_str()
        .ok()
        .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|s| s.parse::<u64>().ok())
        .filter(|n| *n <= i64::MAX as u64)
        .ok_or_else(|| {
            ApiError::bad_request(
                "invalid_header",
                format!("header {name} must be a non-negative integer, got {value:?}"),
            )
        })
}

/// `Upload-Metadata`: comma-separated `key base64(value)` pairs; keeps `session_id` and `filename`.
fn parse_metadata(header: &str) -> Result<HashMap<String, String>, ApiError> {
    let bad = |why: String| {
        ApiError::bad_request("invalid_header", format!("header Upload-Metadata: {why}"))
    };
    let mut kept = HashMap::new();
    let mut seen = Vec::new();
    for pair in header.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let mut parts = pair.split(' ');
        let key = parts.next().unwrap_or_default();
        let value = parts.next().unwrap_or_default();
        if parts.next().is_some() {
            return Err(bad(format!("\"{pair}\" must be `key base64value`")));
        }
        if seen.contains(&key) {
            return Err(bad(format!("key \"{key}\" appears twice")));
        }
        seen.push(key);
        let decoded = BASE64
            .decode(value)
            .map_err(|e| bad(format!("the value of \"{key}\" is not base64: {e}")))?;
        if key == "session_id" || key == "filename" {
            let text = String::from_utf8(decoded)
                .map_err(|_| bad(format!("the value of \"{key}\" is not UTF-8")))?;
            kept.insert(key.to_owned(), text);
        }
    }
    Ok(kept)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_keeps_session_and_filename() {
        let m = parse_metadata("filename cmVwbGF5Lm1wNA==, session_id czE=,is_final").unwrap();
        assert_eq!(m["filename"], "replay.mp4");
        assert_eq!(m["session_id"], "s1");
        assert_eq!(m.len(), 2);
    }

    #[test]
    fn metadata_errors_name_the_key() {
        let e = parse_metadata("filename !!!").unwrap_err();
        assert!(e.message.contains("filename"), "{}", e.message);
        let e = parse_metadata("a YQ==,a Yg==").unwrap_err();
        assert!(e.message.contains("twice"), "{}", e.message);
    }

    #[test]
    fn number_headers_are_plain_digits() {
        let mut h = HeaderMap::new();
        h.insert(UPLOAD_LENGTH, HeaderValue::from_static("+5"));
        assert!(number_header(&h, &UPLOAD_LENGTH).is_err());
        h.insert(UPLOAD_LENGTH, HeaderValue::from_static("1024"));
        assert_eq!(number_header(&h, &UPLOAD_LENGTH).unwrap(), 1024);
        assert!(number_header(&h, &UPLOAD_OFFSET).is_err());
    }
}
