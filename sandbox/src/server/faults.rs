//! Injected misbehaviour (`POST /v1/_sandbox/faults`): the next N matching requests fail the way
//! real networks and servers fail, without applying their effects (except `slow`, which is only late).
//! Some modes play a captive portal or an operator's proxy answering in the platform's place: a
//! login page, a redirect to it, 407, 511, and, on the TLS port, a certificate for another name.

use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use axum::extract::connect_info::ConnectInfo;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::StatusCode;
use axum::http::header::{CONTENT_TYPE, LOCATION, PROXY_AUTHENTICATE};
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
/// Where the portal modes send the phone to sign in; the sandbox serves [`LOGIN_PAGE`] there.
pub const LOGIN_PATH: &str = "/portal/login";
/// What `portal_login` answers, and what [`LOGIN_PATH`] shows: a captive portal's sign-in page.
const LOGIN_PAGE: &str = "<!doctype html>
<html><head><title>Village Wi-Fi: sign in</title></head>
<body><h1>Village Wi-Fi</h1><p>Sign in with your voucher to use the internet.</p>
<p>(The FieldCast sandbox's stand-in for a captive portal: nothing to sign in to here.)</p>
</body></html>
";
/// What `proxy_auth` answers with its 407.
const PROXY_PAGE: &str = "<html><head><title>407 Proxy Authentication Required</title></head>
<body><h1>Proxy Authentication Required</h1><p>Sign in to the operator's proxy.</p></body></html>
";
/// What `network_auth` answers with its 511 (the example page of RFC 6585, section 6).
const NETWORK_AUTH_PAGE: &str = "<html><head><title>Network Authentication Required</title>
<meta http-equiv=\"refresh\" content=\"0; url=/portal/login\"></head>
<body><p>You need to <a href=\"/portal/login\">authenticate with the local network</a> in order to gain access.</p></body></html>
";

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
    /// A captive portal's sign-in page: 200 with HTML.
    PortalLogin,
    /// A captive portal's redirect: 302 to its sign-in page.
    PortalRedirect,
    /// An operator's proxy asking to sign in: 407 with `Proxy-Authenticate`.
    ProxyAuth,
    /// A network asking to sign in: 511 with HTML (RFC 6585).
    NetworkAuth,
}

impl FaultMode {
    fn name(self) -> &'static str {
        match self {
            Self::Status500 => "status500",
            Self::Hang => "hang",
            Self::Close => "close",
            Self::Garbage => "garbage",
            Self::Conflict => "conflict",
            Self::Slow => "slow",
            Self::PortalLogin => "portal_login",
            Self::PortalRedirect => "portal_redirect",
            Self::ProxyAuth => "proxy_auth",
            Self::NetworkAuth => "network_auth",
        }
    }
}

/// What a rule makes misbehave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    /// Requests to the rule's paths.
    Request(FaultMode),
    /// TLS handshakes on the TLS port, whatever the path: they present a certificate for another
    /// name (signed by the sandbox's CA), as a portal intercepting HTTPS does.
    TlsWrongName,
}

impl Fault {
    /// Every fault by the name a rule gives it.
    const BY_NAME: [(&'static str, Fault); 11] = [
        ("status500", Fault::Request(FaultMode::Status500)),
        ("hang", Fault::Request(FaultMode::Hang)),
        ("close", Fault::Request(FaultMode::Close)),
        ("garbage", Fault::Request(FaultMode::Garbage)),
        ("conflict", Fault::Request(FaultMode::Conflict)),
        ("slow", Fault::Request(FaultMode::Slow)),
        ("portal_login", Fault::Request(FaultMode::PortalLogin)),
        ("portal_redirect", Fault::Request(FaultMode::PortalRedirect)),
        ("proxy_auth", Fault::Request(FaultMode::ProxyAuth)),
        ("network_auth", Fault::Request(FaultMode::NetworkAuth)),
        ("tls_wrong_name", Fault::TlsWrongName),
    ];
}

/// One rule: the next `remaining` requests to `paths` (or TLS handshakes) misbehave as `fault`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultRule {
    fault: Fault,
    remaining: u64,
    paths: Vec<String>,
    delay: Duration,
}

impl FaultRule {
    /// Reads a rule from the body of `POST /v1/_sandbox/faults`.
    pub fn from_json(body: &Value) -> Result<Self, ApiError> {
        let fields = Fields::of(body)?;
        let fault = fields.choice("mode", &Fault::BY_NAME)?;
        let remaining = fields.optional_integer("count", 1)?.unwrap_or(1) as u64;
        let paths = match fields.optional_strings("paths")? {
            None if fault == Fault::TlsWrongName => Vec::new(),
            Some(_) if fault == Fault::TlsWrongName => {
                return Err(ApiError::bad_request(
                    "invalid_field",
                    "field `paths` does not apply to mode tls_wrong_name: it affects the next TLS handshakes on the TLS port, whatever the path",
                ));
            }
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
            fault,
            remaining,
            paths,
            delay,
        })
    }

    /// The request fault this rule makes of a request to `path`, if it applies to it.
    fn request_fault(&self, path: &str) -> Option<FaultMode> {
        let Fault::Request(mode) = self.fault else {
            return None;
        };
        let matches = self.paths.iter().any(|p| {
            path.strip_prefix(p.as_str())
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
        });
        matches.then_some(mode)
    }
}

/// The active rules, consumed first-match in the order they were added.
#[derive(Default)]
pub struct Faults {
    rules: Mutex<Vec<FaultRule>>,
    /// The API is served over TLS too, so handshake faults can apply.
    tls: AtomicBool,
}

impl Faults {
    fn rules(&self) -> MutexGuard<'_, Vec<FaultRule>> {
        self.rules
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Lets rules on TLS handshakes in: the sandbox serves its TLS port.
    pub fn serve_tls(&self) {
        self.tls.store(true, Ordering::SeqCst);
    }

    /// Adds a rule after the existing ones; 409 `tls_unavailable` for a handshake rule when the
    /// sandbox has no TLS port.
    pub fn add(&self, rule: FaultRule) -> Result<(), ApiError> {
        if rule.fault == Fault::TlsWrongName && !self.tls.load(Ordering::SeqCst) {
            return Err(ApiError::conflict(
                "tls_unavailable",
                "mode tls_wrong_name needs the TLS port: start the sandbox with --tls-port (SandboxOptions::tls_port)",
            ));
        }
        self.rules().push(rule);
        Ok(())
    }

    /// Removes every rule.
    pub fn clear(&self) {
        self.rules().clear();
    }

    /// Uses up one request of the first rule matching `path`.
    fn take(&self, path: &str) -> Option<(FaultMode, Duration)> {
        self.take_first(|r| r.request_fault(path).map(|mode| (mode, r.delay)))
    }

    /// Uses up one handshake of the first `tls_wrong_name` rule: true if this handshake must
    /// present the certificate for another name.
    pub fn take_handshake(&self) -> bool {
        self.take_first(|r| (r.fault == Fault::TlsWrongName).then_some(()))
            .is_some()
    }

    /// Uses up one of the first rule that `pick`s something, and returns what it picked.
    fn take_first<T>(&self, pick: impl Fn(&FaultRule) -> Option<T>) -> Option<T> {
        let mut rules = self.rules();
        let (index, taken) = rules
            .iter()
            .enumerate()
            .find_map(|(i, r)| pick(r).map(|t| (i, t)))?;
        let rule = &mut rules[index];
        rule.remaining -= 1;
        if rule.remaining == 0 {
            rules.remove(index);
        }
        Some(taken)
    }
}

/// `GET /portal/login`: the sign-in page the portal modes point to (no token needed).
pub async fn login_page() -> Response {
    html(StatusCode::OK, LOGIN_PAGE)
}

fn html(status: StatusCode, page: &'static str) -> Response {
    (status, [(CONTENT_TYPE, "text/html; charset=utf-8")], page).into_response()
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
        FaultMode::PortalLogin => html(StatusCode::OK, LOGIN_PAGE),
        FaultMode::PortalRedirect => {
            let login = format!("{LOGIN_PATH}?continue={path}");
            let page = format!("<html><body><a href=\"{login}\">Sign in to the network</a></body></html>\n");
            (
                StatusCode::FOUND,
                [(LOCATION, login), (CONTENT_TYPE, "text/html; charset=utf-8".into())],
                page,
            )
                .into_response()
        }
        FaultMode::ProxyAuth => (
            StatusCode::PROXY_AUTHENTICATION_REQUIRED,
            [
                (PROXY_AUTHENTICATE, "Basic realm=\"village-proxy\""),
                (CONTENT_TYPE, "text/html; charset=utf-8"),
            ],
            PROXY_PAGE,
        )
            .into_response(),
        FaultMode::NetworkAuth => html(StatusCode::NETWORK_AUTHENTICATION_REQUIRED, NETWORK_AUTH_PAGE),
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
        let e = FaultRule::from_json(&json!({"mode": "tls_wrong_name", "paths": ["/v1/sales"]}))
            .unwrap_err();
        assert!(e.message.contains("`paths`"), "{}", e.message);
    }

    #[test]
    fn handshake_rules_need_the_tls_port_and_never_match_requests() {
        let faults = Faults::default();
        let rule = || FaultRule::from_json(&json!({"mode": "tls_wrong_name", "count": 2})).unwrap();
        let e = faults.add(rule()).unwrap_err();
        assert_eq!(e.code, "tls_unavailable");
        assert!(!faults.take_handshake());
        faults.serve_tls();
        faults.add(rule()).unwrap();
        faults
            .add(FaultRule::from_json(&json!({"mode": "portal_login"})).unwrap())
            .unwrap();
        assert_eq!(
            faults.take("/v1/sales").unwrap().0,
            FaultMode::PortalLogin,
            "the handshake rule before it is skipped"
        );
        assert_eq!(faults.take("/v1/sales"), None);
        assert!(faults.take_handshake());
        assert!(faults.take_handshake());
        assert!(!faults.take_handshake(), "used up");
    }

    #[test]
    fn rules_are_used_up_in_order() {
        let faults = Faults::default();
        faults
            .add(FaultRule::from_json(&json!({"mode": "status500", "count": 2})).unwrap())
            .unwrap();
        faults
            .add(
                FaultRule::from_json(&json!({"mode": "garbage", "paths": ["/v1/uploads"]}))
                    .unwrap(),
            )
            .unwrap();
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
