//! `Idempotency-Key` semantics (draft-ietf-httpapi-idempotency-key-header) for the writes that
//! create business records: claim the key, process once, store the response, replay it.
//!
//! Keys are scoped per route and must equal the record's own id. A response is stored with the
//! record it created, in one SQLite transaction; 4xx outcomes are stored too (they are final),
//! 5xx are not (the request may be retried). Records are kept for the life of the data directory.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::extract::FromRequestParts;
use axum::http::header::CONTENT_TYPE;
use axum::http::request::Parts;
use axum::http::{HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use rusqlite::{Connection, OptionalExtension, params};
use serde_json::Value;

use super::db::now_rfc3339;
use super::error::ApiError;
use super::state::AppState;

/// The header that carries the key.
const HEADER: &str = "idempotency-key";
/// The header that marks a replayed response.
const REPLAYED: &str = "idempotent-replayed";
/// The longest key accepted.
const MAX_KEY_LEN: usize = 255;

/// Whether a request is one of the idempotent writes (`POST /v1/sales`, `POST /v1/pin-events`).
pub fn applies_to(method: &Method, path: &str) -> bool {
    method == Method::POST && (path == "/v1/sales" || path == "/v1/pin-events")
}

/// A request's `Idempotency-Key`: 1-255 visible ASCII characters, else 400.
pub struct IdempotencyKey(pub String);

impl<S: Send + Sync> FromRequestParts<S> for IdempotencyKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let value = parts.headers.get(HEADER).ok_or_else(|| {
            ApiError::bad_request(
                "idempotency_key_missing",
                format!(
                    "{} {} needs an Idempotency-Key header: the record's own id, sent again unchanged on every retry",
                    parts.method,
                    parts.uri.path()
                ),
            )
        })?;
        let key = value.as_bytes();
        if key.is_empty()
            || key.len() > MAX_KEY_LEN
            || !key.iter().all(|b| (0x21..=0x7e).contains(b))
        {
            return Err(ApiError::bad_request(
                "idempotency_key_invalid",
                format!(
                    "header Idempotency-Key must be 1 to {MAX_KEY_LEN} visible ASCII characters (no spaces), got {} bytes",
                    key.len()
                ),
            ));
        }
        Ok(IdempotencyKey(String::from_utf8_lossy(key).into_owned()))
    }
}

/// The keys whose first request is being processed right now.
#[derive(Clone, Default)]
pub struct InFlight(Arc<Mutex<HashSet<(&'static str, String)>>>);

impl InFlight {
    fn keys(&self) -> MutexGuard<'_, HashSet<(&'static str, String)>> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A claimed key; released when dropped, whether the request completed or was abandoned.
struct Claim {
    in_flight: InFlight,
    entry: (&'static str, String),
}

impl Drop for Claim {
    fn drop(&mut self) {
        self.in_flight.keys().remove(&self.entry);
    }
}

/// What a key lookup found.
enum Lookup {
    /// Nobody used the key: it is ours now.
    Claimed(Claim),
    /// The same request was processed before: its response.
    Replay(Outcome),
    /// The key was used for another body.
    Mismatch,
    /// The first request with this key is still running.
    InFlight,
}

/// A response to send, first time or replayed.
pub struct Outcome {
    /// The status.
    pub status: StatusCode,
    /// The JSON body, serialized.
    pub body: String,
    /// Whether this is the stored response of an earlier request.
    pub replayed: bool,
}

impl Outcome {
    /// Whether the request created its record just now (not a replay, not a conflict).
    pub fn created(&self) -> bool {
        self.status == StatusCode::CREATED && !self.replayed
    }
}

impl IntoResponse for Outcome {
    fn into_response(self) -> Response {
        let mut response = (
            self.status,
            [(CONTENT_TYPE, HeaderValue::from_static("application/json"))],
            self.body,
        )
            .into_response();
        if self.replayed {
            response
                .headers_mut()
                .insert(REPLAYED, HeaderValue::from_static("true"));
        }
        response
    }
}

/// Processes an idempotent write once.
///
/// `record_id` is the body's `id`, which must equal the key. `slow` delays processing after the
/// key is claimed (the `slow` fault). `execute` checks and writes the record inside the
/// transaction that also stores the response; `Ok` is the success status and body, `Err` a
/// business error (stored if 4xx; 5xx rolls back and is not stored).
pub async fn process<F>(
    state: &AppState,
    scope: &'static str,
    key: IdempotencyKey,
    request: &Value,
    record_id: &str,
    slow: Option<Duration>,
    execute: F,
) -> Result<Outcome, ApiError>
where
    F: FnOnce(&Connection) -> Result<(StatusCode, Value), ApiError> + Send + 'static,
{
    let key = key.0;
    if key != record_id {
        return Err(ApiError::bad_request(
            "idempotency_key_invalid",
            format!(
                "header Idempotency-Key must be the record's id: the header says \"{key}\", the body's `id` is \"{record_id}\""
            ),
        ));
    }
    let canonical = canonical_json(request);
    let in_flight = state.in_flight.clone();
    let claim = {
        let canonical = canonical.clone();
        let key = key.clone();
        state
            .db
            .call(move |conn| lookup(conn, &in_flight, scope, key, &canonical))
            .await?
    };
    let claim = match claim {
        Lookup::Claimed(claim) => claim,
        Lookup::Replay(outcome) => return Ok(outcome),
        Lookup::Mismatch => {
            return Err(ApiError::unprocessable(
                "idempotency_key_mismatch",
                format!(
                    "Idempotency-Key \"{key}\" was already used with another body; a retry must resend the same body, a new record needs a new id"
                ),
            ));
        }
        Lookup::InFlight => {
            return Err(ApiError::conflict(
                "idempotency_in_flight",
                format!(
                    "the first request with Idempotency-Key \"{key}\" is still being processed; retry later with the same key and body"
                ),
            ));
        }
    };
    if let Some(delay) = slow
        && !state.shutdown.sleep(delay).await
    {
        return Err(ApiError::stopping());
    }
    state
        .db
        .call(move |conn| {
            // Held until the response is stored, even if the request is abandoned meanwhile.
            let _claim = claim;
            let mut tx = conn.transaction()?;
            let sp = tx.savepoint()?;
            let (status, body) = match execute(&sp) {
                Ok(done) => {
                    sp.commit()?;
                    done
                }
                Err(e) if e.status.is_server_error() => return Err(e),
                Err(e) => {
                    drop(sp);
                    (e.status, e.body())
                }
            };
            let body = body.to_string();
            tx.execute(
                "INSERT INTO idempotency_records (scope, key, request, status, response, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![scope, key, canonical, status.as_u16(), body, now_rfc3339()],
            )?;
            tx.commit()?;
            Ok(Outcome {
                status,
                body,
                replayed: false,
            })
        })
        .await
}

/// Looks the key up and claims it if unused; in-flight check, lookup and claim are one step.
fn lookup(
    conn: &Connection,
    in_flight: &InFlight,
    scope: &'static str,
    key: String,
    canonical: &str,
) -> Result<Lookup, ApiError> {
    let entry = (scope, key);
    {
        let mut keys = in_flight.keys();
        if keys.contains(&entry) {
            return Ok(Lookup::InFlight);
        }
        let stored = conn
            .query_row(
                "SELECT request, status, response FROM idempotency_records WHERE scope = ?1 AND key = ?2",
                params![entry.0, entry.1],
                |r| Ok((r.get::<_, String>(0)?, r.get::<_, u16>(1)?, r.get::<_, String>(2)?)),
            )
            .optional()?;
        match stored {
            Some((request, status, body)) if request == canonical => {
                let status = StatusCode::from_u16(status)
                    .map_err(|e| ApiError::internal(format!("stored status {status}: {e}")))?;
                return Ok(Lookup::Replay(Outcome {
                    status,
                    body,
                    replayed: true,
                }));
            }
            Some(_) => return Ok(Lookup::Mismatch),
            None => {
                keys.insert(entry.clone());
            }
        }
    }
    Ok(Lookup::Claimed(Claim {
        in_flight: in_flight.clone(),
        entry,
    }))
}

/// The body in a form that ignores whitespace and key order: keys sorted at every level.
pub fn canonical_json(value: &Value) -> String {
    let mut out = String::new();
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                write_canonical(v, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(v, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_form_ignores_whitespace_and_key_order() {
        let a: Value =
            serde_json::from_str(r#"{"b": 1, "a": {"y": [1, {"q": 2, "p": 1}], "x": null}}"#)
                .unwrap();
        let b: Value =
            serde_json::from_str(r#"{"a":{"x":null,"y":[1,{"p":1,"q":2}]},"b":1}"#).unwrap();
        assert_eq!(canonical_json(&a), canonical_json(&b));
        assert_eq!(
            canonical_json(&b),
            r#"{"a":{"x":null,"y":[1,{"p":1,"q":2}]},"b":1}"#
        );
    }

    #[test]
    fn canonical_form_keeps_differences() {
        let a: Value = serde_json::from_str(r#"{"q": 1, "s": "a\"b"}"#).unwrap();
        let b: Value = serde_json::from_str(r#"{"q": 2, "s": "a\"b"}"#).unwrap();
        let c: Value = serde_json::from_str(r#"{"q": [2, 1]}"#).unwrap();
        let d: Value = serde_json::from_str(r#"{"q": [1, 2]}"#).unwrap();
        assert_ne!(canonical_json(&a), canonical_json(&b));
        assert_ne!(canonical_json(&c), canonical_json(&d));
        assert!(canonical_json(&a).contains(r#""a\"b""#));
    }

    #[test]
    fn only_sales_and_pin_event_posts_are_idempotent() {
        assert!(applies_to(&Method::POST, "/v1/sales"));
        assert!(applies_to(&Method::POST, "/v1/pin-events"));
        assert!(!applies_to(&Method::GET, "/v1/sales"));
        assert!(!applies_to(&Method::POST, "/v1/live-sessions"));
    }
}
