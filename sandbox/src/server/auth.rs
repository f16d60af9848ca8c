//! Bearer tokens: which calls need none, which need any known token, which need a write token.

use axum::extract::{Request, State};
use axum::http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use super::state::AppState;

/// The tokens the sandbox accepts.
pub struct Tokens {
    /// Tokens that may read and write.
    pub write: Vec<String>,
    /// Tokens that may only read (GET, HEAD).
    pub read_only: Vec<String>,
}

/// What a call needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    /// No token: health, tus discovery, the viewer's page, the ingest's hook (its path has a
    /// secret), the portal faults' sign-in page.
    Public,
    /// Any known token.
    Read,
    /// A write token.
    Write,
}

fn required_access(method: &Method, path: &str) -> Access {
    let is_uploads = path == "/v1/uploads" || path.starts_with("/v1/uploads/");
    let is_read = method == Method::GET || method == Method::HEAD;
    if path.starts_with("/v1/_sandbox/") {
        Access::Write
    } else if (path == "/v1/health" && is_read)
        || (is_uploads && method == Method::OPTIONS)
        || (path.starts_with("/watch/") && is_read)
        || (path == super::faults::LOGIN_PATH && is_read)
        || (path.starts_with("/_ingest/") && method == Method::POST)
    {
        Access::Public
    } else if is_read {
        Access::Read
    } else {
        Access::Write
    }
}

/// Middleware: 401 without a known token, 403 for a read-only token on a write.
pub async fn authorize(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let access = required_access(req.method(), req.uri().path());
    if access == Access::Public {
        return next.run(req).await;
    }
    let token = req
        .headers()
        .get(AUTHORIZATION)
        .map(|v| v.to_str().unwrap_or_default())
        .map(|v| match v.split_once(' ') {
            Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => token.trim(),
            _ => "",
        });
    let tokens = &state.tokens;
    let call = format!("{} {}", req.method(), req.uri().path());
    let denied = match token {
        None => Some(unauthorized(format!(
            "{call} needs a token: send `Authorization: Bearer <token>` (the sandbox prints its tokens when it starts)"
        ))),
        Some("") => Some(unauthorized(
            "the Authorization header must read `Bearer <token>`".to_owned(),
        )),
        Some(t) if tokens.write.iter().any(|w| w == t) => None,
        Some(t) if tokens.read_only.iter().any(|r| r == t) => match access {
            Access::Write => Some(
                ApiError::new(
                    StatusCode::FORBIDDEN,
                    "forbidden",
                    format!("this token is read-only and cannot call {call}: use a write token"),
                )
                .into_response(),
            ),
            _ => None,
        },
        Some(_) => Some(unauthorized(
            "unknown token: use one of the tokens the sandbox printed when it started".to_owned(),
        )),
    };
    match denied {
        Some(response) => response,
        None => next.run(req).await,
    }
}

fn unauthorized(message: String) -> Response {
    let mut response =
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message).into_response();
    response
        .headers_mut()
        .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_by_method_and_path() {
        assert_eq!(required_access(&Method::GET, "/v1/health"), Access::Public);
        assert_eq!(
            required_access(&Method::OPTIONS, "/v1/uploads"),
            Access::Public
        );
        assert_eq!(
            required_access(&Method::OPTIONS, "/v1/uploads/x"),
            Access::Public
        );
        assert_eq!(required_access(&Method::GET, "/v1/products"), Access::Read);
        assert_eq!(required_access(&Method::GET, "/watch/x"), Access::Public);
        assert_eq!(required_access(&Method::POST, "/watch/x"), Access::Write);
        assert_eq!(required_access(&Method::POST, "/_ingest/s"), Access::Public);
        assert_eq!(
            required_access(&Method::GET, "/portal/login"),
            Access::Public
        );
        assert_eq!(
            required_access(&Method::HEAD, "/v1/uploads/x"),
            Access::Read
        );
        assert_eq!(
            required_access(&Method::PUT, "/v1/products/x"),
            Access::Write
        );
        assert_eq!(
            required_access(&Method::PATCH, "/v1/uploads/x"),
            Access::Write
        );
        assert_eq!(
            required_access(&Method::GET, "/v1/_sandbox/stats"),
            Access::Write
        );
        assert_eq!(required_access(&Method::POST, "/v1/health"), Access::Write);
    }
}
