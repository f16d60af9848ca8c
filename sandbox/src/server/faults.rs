//! Injected misbehaviour (`POST /v1/_sandbox/faults`): the next N matching requests fail the way
//! real networks and servers fail, without applying their effects (except `slow`, which is only late).

use std::convert::Infallible;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use axum::extract::connect_info::ConnectInfo;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::connection::ConnectionAbort;
use super::error::ApiError;
use super::idempotency;
use super::state::AppState;
use super::validate::Fields;

/// The paths faults apply to when a rule names none.
const DEFAULT_PATHS: [&str; 2] = ["/v1/sales", "/v1/pin-events"];
/// How long `hang` and `slow` wait when a rule gives no `hang_ms`.
const DEFAULT_HANG: Duration = Duration::from_secs(30);
/// What `garbage` answers: a proxy's error page where JSON was expected.
const GARBAGE: &str = "<html><body><h1>502 Bad Gateway</h1>upstream sent nothing</body></html>\n";

/// How a faulted request misbehaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultMode {
    /// 500 with an `Error` body.
    Status500,
    /// Hold the request, then drop the connection without answering.
    Hang,
    /// Drop the connection at once without answering.
    Close,
    /// 200 with a body that is not JSON.
    Garbage,
    /// 409 `oversold`, not stored under the Idempotency-Key.
    Conflict,
    /// Process normally, but only after the delay (an in-flight window for idempotency).
    Slow,
}

impl FaultMode {
    /// Every mode by the name a rule gives it.
    const BY_NAME: [(&'static str, FaultMode); 6] = [
        ("status500", Self::Status500),
        ("hang", Self::Hang),
        ("close", Self::Close),
        ("garbage", Self::Garbage),
        ("conflict", Self::Conflict),
        ("slow", Self::Slow),
    ];

    fn name(self) -> &'static str {
        match self {
            Self::Status500 => "status500",
            Self::Hang => "hang",
            Self::Close => "close",
            Self::Garbage => "garbage",
            Self::Conflict => "conflict",
            Self::Slow => "slow",
        }
    }
}

/// One rule: the next `remaining` requests to `paths` misbehave as `mode`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultRule {
    mode: FaultMode,
    remaining: u64,
    paths: Vec<String>,
    delay: Duration,
}

impl FaultRule {
    /// Reads a rule from the body of `POST /v1/_sandbox/faults`.
    pub fn from_json(body: &Value) -> Result<Self, ApiError> {
        let fields = Fields::of(body)?;
        let mode = fields.choice("mode", &FaultMode::BY_NAME)?;
        let remaining = fields.optional_integer("count", 1)?.unwrap_or(1) as u64;
        let paths = match fields.optional_strings("paths")? {
            None => DEFAULT_PATHS.iter().map(|p| (*p).to_owned()).collect(),
            Some(paths) if paths.is_empty() => {
                return Err(ApiError::bad_request(
                    "invalid_field",
                    "field `paths` must name at least one path, or be left out for /v1/sales and /v1/pin-events",
                ));
            }
            Some(paths) => paths
                .into_iter()
                .map(|p| {
                    if p.starts_with("/v1/") && !exempt(p) {
                        Ok(p.trim_end_matches('/').to_owned())
                    } else {
                        Err(ApiError::bad_request(
                            "invalid_field",
                            format!(
                                "field `paths` has \"{p}\": paths start with /v1/ and cannot be /v1/health or /v1/_sandbox/..."
                            ),
                        ))
                    }
                })
                .collect::<Result<_, _>>()?,
        };
        let delay = fields
            .optional_integer("hang_ms", 0)?
            .map_or(DEFAULT_HANG, |ms| Duration::from_millis(ms as u64));
        Ok(FaultRule {
            mode,
            remaining,
            paths,
            delay,
        })
    }

    fn matches(&self, path: &str) -> bool {
        self.paths.iter().any(|p| {
            path.strip_prefix(p.as_str())
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
        })
    }
}

/// The active rules, consumed first-match in the order they were added.
#[derive(Default)]
pub struct Faults(Mutex<Vec<FaultRule>>);

impl Faults {
    fn rules(&self) -> MutexGuard<'_, Vec<FaultRule>> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Adds a rule after the existing ones.
    pub fn add(&self, rule: FaultRule) {
        self.rules().push(rule);
    }

    /// Removes every rule.
    pub fn clear(&self) {
        self.rules().clear();
    }

    /// Uses up one request of the first rule matching `path`.
    fn take(&self, path: &str) -> Option<(FaultMode, Duration)> {
        let mut rules = self.rules();
        let index = rules.iter().position(|r| r.matches(path))?;
        let rule = &mut rules[index];
        let taken = (rule.mode, rule.delay);
        rule.remaining -= 1;
        if rule.remaining == 0 {
            rules.remove(index);
        }
        Some(taken)
    }
}

/// Paths no fault touches: the health check and the sandbox's own endpoints.
fn exempt(path: &str) -> bool {
    path.starts_with("/v1/_sandbox") || path == "/v1/health"
}

/// The delay a `slow` fault puts between claiming an Idempotency-Key and processing the request.
pub struct Slowdown(pub Option<Duration>);

impl<S: Send + Sync> FromRequestParts<S> for Slowdown {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Infallible> {
        Ok(Slowdown(parts.extensions.get::<SlowFault>().map(|s| s.0)))
    }
}

#[derive(Clone, Copy)]
struct SlowFault(Duration);

/// Middleware: applies the first matching fault rule, if any, to the request.
pub async fn inject(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let path = req.uri().path().to_owned();
    if exempt(&path) {
        return next.run(req).await;
    }
    let Some((mode, delay)) = state.faults.take(&path) else {
        return next.run(req).await;
    };
    state.stats.fault_injected();
    log::info!(
        "sandbox: fault {} injected into {} {path}",
        mode.name(),
        req.method()
    );
    let injected = format!("fault injected by the sandbox (mode {})", mode.name());
    match mode {
        FaultMode::Status500 => ApiError::internal(format!(
            "{injected}: nothing was recorded; retry with the same Idempotency-Key"
        ))
        .into_response(),
        FaultMode::Conflict => ApiError::conflict(
            "oversold",
            format!("{injected}: nothing was recorded and this answer is not stored under the Idempotency-Key"),
        )
        .into_response(),
        FaultMode::Garbage => (StatusCode::OK, [(CONTENT_TYPE, "application/json")], GARBAGE)
            .into_response(),
        FaultMode::Close => cut(&req),
        FaultMode::Hang => {
            state.shutdown.sleep(delay).await;
            cut(&req)
        }
        FaultMode::Slow if idempotency::applies_to(req.method(), &path) => {
            req.extensions_mut().insert(SlowFault(delay));
            next.run(req).await
        }
        FaultMode::Slow => {
            if state.shutdown.sleep(delay).await {
                next.run(req).await
            } else {
                ApiError::stopping().into_response()
            }
        }
    }
}

/// Drops the request's connection without an answer.
fn cut(req: &Request) -> Response {
    match req.extensions().get::<ConnectInfo<ConnectionAbort>>() {
        Some(ConnectInfo(abort)) => {
            abort.abort();
            // Never written: the aborted connection fails the first write.
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
        None => ApiError::internal("this server cannot cut connections").into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rules_default_and_validate() {
        let rule = FaultRule::from_json(&json!({"mode": "close"})).unwrap();
        assert_eq!(rule.remaining, 1);
        assert_eq!(rule.paths, DEFAULT_PATHS);
        assert_eq!(rule.delay, DEFAULT_HANG);
        let e = FaultRule::from_json(&json!({"mode": "explode"})).unwrap_err();
        assert!(e.message.contains("status500"), "{}", e.message);
        let e = FaultRule::from_json(&json!({"mode": "hang", "count": 0})).unwrap_err();
        assert!(e.message.contains("`count`"), "{}", e.message);
        let e = FaultRule::from_json(&json!({"mode": "hang", "paths": ["/v1/_sandbox/stats"]}))
            .unwrap_err();
        assert!(e.message.contains("`paths`"), "{}", e.message);
    }

    #[test]
    fn rules_are_used_up_in_order() {
        let faults = Faults::default();
        faults.add(FaultRule::from_json(&json!({"mode": "status500", "count": 2})).unwrap());
        faults.add(
            FaultRule::from_json(&json!({"mode": "garbage", "paths": ["/v1/uploads"]})).unwrap(),
        );
        assert_eq!(faults.take("/v1/products"), None);
        assert_eq!(faults.take("/v1/sales").unwrap().0, FaultMode::Status500);
        assert_eq!(
            faults.take("/v1/uploads/abc").unwrap().0,
            FaultMode::Garbage
        );
        assert_eq!(faults.take("/v1/uploads/abc"), None);
        assert_eq!(faults.take("/v1/sales-export"), None);
        assert_eq!(
            faults.take("/v1/pin-events").unwrap().0,
            FaultMode::Status500
        );
        assert_eq!(faults.take("/v1/sales"), None);
    }
}
