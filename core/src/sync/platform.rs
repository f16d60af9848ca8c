//! The HTTP client of the platform API: base URL, bearer token, timeouts.

use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{CONTENT_TYPE, HeaderValue};
use url::Url;

use super::SyncConfig;
use super::error::SyncError;
use super::response::{Outcome, classify, excerpt};
use crate::commerce::RemoteProduct;
use crate::store::outbox::Envelope;

/// Longest wait for a TCP connection, within the request timeout.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A configured client; cheap to clone.
#[derive(Clone)]
pub(crate) struct Platform {
    http: reqwest::Client,
    base: Url,
    token: Arc<str>,
}

impl Platform {
    /// A client for `config`.
    pub fn new(config: &SyncConfig) -> Result<Platform, SyncError> {
        // A trailing slash makes `join` keep a path prefix such as `https://host/api/`.
        let base =
            Url::parse(&format!("{}/", config.base_url.trim_end_matches('/'))).map_err(|e| {
                SyncError::InvalidConfig(format!("base_url `{}`: {e}", config.base_url))
            })?;
        if !matches!(base.scheme(), "http" | "https") {
            return Err(SyncError::InvalidConfig(format!(
                "base_url `{}` must start with http:// or https://",
                config.base_url
            )));
        }
        if config.request_timeout.is_zero() {
            return Err(SyncError::InvalidConfig(
                "request_timeout must be above zero".into(),
            ));
        }
        let http = reqwest::Client::builder()
            .timeout(config.request_timeout)
            .connect_timeout(CONNECT_TIMEOUT.min(config.request_timeout))
            .build()
            .map_err(|e| SyncError::Start(format!("HTTP client: {e}")))?;
        Ok(Platform {
            http,
            base,
            token: Arc::from(config.token.as_str()),
        })
    }

    /// The same client with another token.
    pub fn with_token(&self, token: &str) -> Platform {
        Platform {
            token: Arc::from(token),
            ..self.clone()
        }
    }

    /// The absolute URL of an API path such as `/v1/sales`, below the base URL.
    pub fn url(&self, path: &str) -> Result<Url, SyncError> {
        self.base
            .join(path.trim_start_matches('/'))
            .map_err(|e| SyncError::InvalidConfig(format!("API path `{path}`: {e}")))
    }

    /// The absolute URL of a `Location` the platform returned (absolute, or relative to its host).
    pub fn resolve(&self, location: &str) -> Result<Url, SyncError> {
        self.base
            .join(location)
            .map_err(|e| SyncError::InvalidResponse(format!("Location `{location}`: {e}")))
    }

    /// A request with the bearer token.
    pub fn request(&self, method: reqwest::Method, url: Url) -> reqwest::RequestBuilder {
        self.http.request(method, url).bearer_auth(&*self.token)
    }

    /// Posts one outbox record with its id as `Idempotency-Key` and classifies the answer.
    pub async fn send(&self, envelope: &Envelope) -> Outcome {
        let url = match self.url(envelope.kind.path()) {
            Ok(url) => url,
            Err(e) => {
                return Outcome::Transient {
                    reason: e.to_string(),
                };
            }
        };
        let request = self
            .request(reqwest::Method::POST, url)
            .header("Idempotency-Key", &envelope.record_id)
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .body(envelope.body.clone());
        let response = match request.send().await {
            Ok(r) => r,
            Err(e) => {
                return Outcome::Transient {
                    reason: transport_error(&e),
                };
            }
        };
        let status = response.status().as_u16();
        let replayed = response
            .headers()
            .get("Idempotent-Replayed")
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"true"));
        match response.bytes().await {
            Ok(body) => classify(status, &body, replayed),
            Err(e) => Outcome::Transient {
                reason: format!("HTTP {status}, body lost: {}", transport_error(&e)),
            },
        }
    }

    /// The platform's catalog (`GET /v1/products`).
    pub async fn products(&self) -> Result<Vec<RemoteProduct>, SyncError> {
        let response = self
            .request(reqwest::Method::GET, self.url("/v1/products")?)
            .send()
            .await
            .map_err(|e| SyncError::Network(transport_error(&e)))?;
        let status = response.status().as_u16();
        let body = response
            .bytes()
            .await
            .map_err(|e| SyncError::Network(transport_error(&e)))?;
        match classify(status, &body, false) {
            Outcome::Accepted { .. } => serde_json::from_slice(&body).map_err(|e| {
                SyncError::InvalidResponse(format!("catalog: {e}: {}", excerpt(&body)))
            }),
            Outcome::Unauthorized { status, message } => {
                Err(SyncError::Unauthorized { status, message })
            }
            Outcome::Refused { code, message } => Err(SyncError::Refused {
                status,
                code,
                message,
            }),
            Outcome::Transient { reason } => Err(SyncError::Network(reason)),
        }
    }
}

/// A transport failure in words: timeout, connection, or other.
pub(crate) fn transport_error(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "cannot connect"
    } else if e.is_body() || e.is_decode() {
        "broken answer"
    } else {
        "request failed"
    };
    let mut message = format!("{kind}: {e}");
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        message.push_str(&format!(": {s}"));
        source = s.source();
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    fn platform(base: &str) -> Platform {
        Platform::new(&SyncConfig::new(base, "t")).unwrap()
    }

    #[test]
    fn api_paths_stay_below_the_base_url() {
        assert_eq!(
            platform("http://127.0.0.1:8080")
                .url("/v1/sales")
                .unwrap()
                .as_str(),
            "http://127.0.0.1:8080/v1/sales"
        );
        assert_eq!(
            platform("https://example.org/api/")
                .url("/v1/pin-events")
                .unwrap()
                .as_str(),
            "https://example.org/api/v1/pin-events"
        );
        assert_eq!(
            platform("http://h:1/api")
                .resolve("/v1/uploads/abc")
                .unwrap()
                .as_str(),
            "http://h:1/v1/uploads/abc"
        );
    }

    #[test]
    fn bad_configurations_are_refused() {
        assert!(matches!(
            Platform::new(&SyncConfig::new("ftp://h", "t")),
            Err(SyncError::InvalidConfig(_))
        ));
        assert!(matches!(
            Platform::new(&SyncConfig::new("not a url", "t")),
            Err(SyncError::InvalidConfig(_))
        ));
        let mut zero = SyncConfig::new("http://h", "t");
        zero.request_timeout = Duration::ZERO;
        assert!(matches!(
            Platform::new(&zero),
            Err(SyncError::InvalidConfig(_))
        ));
    }
}
