//! The HTTP client of the platform API: base URL, bearer token, timeouts, trusted CAs. Redirects
//! are never followed (the API does not redirect; a captive portal does), every request carries
//! the phone's clock in `Date`, and every answer in the platform's own voice lifts a captive-portal
//! pause.

use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{CONTENT_TYPE, DATE, HeaderValue, LOCATION};
use rustls::CertificateError;
use time::OffsetDateTime;
use url::Url;

use super::SyncConfig;
use super::error::SyncError;
use super::response::{Answer, Outcome, classify, excerpt};
use super::shared::Shared;
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
    shared: Arc<Shared>,
}

impl Platform {
    /// A client for `config`, reporting the platform's answers to `shared`.
    pub fn new(config: &SyncConfig, shared: Arc<Shared>) -> Result<Platform, SyncError> {
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
        let mut builder = reqwest::Client::builder()
            .timeout(config.request_timeout)
            .connect_timeout(CONNECT_TIMEOUT.min(config.request_timeout))
            .redirect(reqwest::redirect::Policy::none());
        if let Some(pem) = &config.platform_ca_pem {
            for certificate in ca_certificates(pem)? {
                builder = builder.add_root_certificate(certificate);
            }
        }
        let http = builder
            .build()
            .map_err(|e| SyncError::Start(format!("HTTP client: {e}")))?;
        Ok(Platform {
            http,
            base,
            token: Arc::from(config.token.as_str()),
            shared,
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

    /// A request with the bearer token and the phone's clock (`Date`).
    pub fn request(&self, method: reqwest::Method, url: Url) -> reqwest::RequestBuilder {
        let request = self.http.request(method, url).bearer_auth(&*self.token);
        match http_date(OffsetDateTime::now_utc()).and_then(|d| HeaderValue::from_str(&d).ok()) {
            Some(date) => request.header(DATE, date),
            None => request,
        }
    }

    /// Reads a whole answer; one in the platform's own voice lifts a captive-portal pause.
    pub async fn receive(&self, response: reqwest::Response) -> Result<Answer, reqwest::Error> {
        let header = |name| {
            response
                .headers()
                .get(name)
                .and_then(|v: &HeaderValue| v.to_str().ok())
                .map(str::to_string)
        };
        let status = response.status().as_u16();
        let content_type = header(CONTENT_TYPE);
        let location = header(LOCATION);
        let body = response.bytes().await?;
        let answer = Answer {
            status,
            content_type,
            location,
            body,
        };
        if answer.is_the_platforms() {
            self.shared.platform_answered();
        }
        Ok(answer)
    }

    /// Records an answer that only the platform gives (a valid tus answer, which has no JSON
    /// body): lifts a captive-portal pause.
    pub fn answered_as_itself(&self) {
        self.shared.platform_answered();
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
            Err(e) => return unanswered(&e),
        };
        let status = response.status().as_u16();
        let replayed = response
            .headers()
            .get("Idempotent-Replayed")
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"true"));
        match self.receive(response).await {
            Ok(answer) => classify(&answer, replayed),
            Err(e) => Outcome::Transient {
                reason: format!("HTTP {status}, body lost: {}", transport_error(&e)),
            },
        }
    }

    /// The platform's catalog (`GET /v1/products`). Behind a captive portal this is a
    /// [`SyncError::Network`] that says to sign in to the network.
    pub async fn products(&self) -> Result<Vec<RemoteProduct>, SyncError> {
        let answer = match self
            .request(reqwest::Method::GET, self.url("/v1/products")?)
            .send()
            .await
        {
            Ok(response) => self
                .receive(response)
                .await
                .map_err(|e| SyncError::Network(transport_error(&e)))?,
            Err(e) => {
                return Err(match tls_interception(&e) {
                    Some(reason) => behind_portal(reason),
                    None => SyncError::Network(transport_error(&e)),
                });
            }
        };
        match classify(&answer, false) {
            Outcome::Accepted { .. } => serde_json::from_slice(&answer.body).map_err(|e| {
                SyncError::InvalidResponse(format!("catalog: {e}: {}", excerpt(&answer.body)))
            }),
            Outcome::Unauthorized { status, message } => {
                Err(SyncError::Unauthorized { status, message })
            }
            Outcome::Refused { code, message } => Err(SyncError::Refused {
                status: answer.status,
                code,
                message,
            }),
            Outcome::Transient { reason } => Err(SyncError::Network(reason)),
            Outcome::Intercepted { reason } => Err(behind_portal(reason)),
        }
    }
}

/// The verdict on a request that got no answer: a TLS certificate that a captive portal or
/// proxy would present is an interception, anything else may pass.
fn unanswered(e: &reqwest::Error) -> Outcome {
    match tls_interception(e) {
        Some(reason) => Outcome::Intercepted { reason },
        None => Outcome::Transient {
            reason: transport_error(e),
        },
    }
}

/// An interception as the error of a call that waits for its result.
fn behind_portal(reason: String) -> SyncError {
    SyncError::Network(super::PauseReason::CaptivePortal { message: reason }.to_string())
}

/// Why a TLS handshake failed the way it does behind a captive portal or a proxy that intercepts
/// secure connections: a certificate for another name, or from an authority the phone does not
/// trust. `None` for anything else (an expired certificate, a clock far off, a dropped link).
pub(crate) fn tls_interception(e: &reqwest::Error) -> Option<String> {
    let certificate = certificate_error(e)?;
    let what = match certificate {
        CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
            "a TLS certificate for another name"
        }
        CertificateError::UnknownIssuer => {
            "a TLS certificate from an authority the phone does not trust"
        }
        _ => return None,
    };
    Some(format!(
        "the network answered with {what} instead of the platform's ({})",
        rustls::Error::InvalidCertificate(certificate.clone())
    ))
}

/// The certificate problem behind a failed request, if that is why it failed.
fn certificate_error(e: &reqwest::Error) -> Option<&CertificateError> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(error) = source {
        if let Some(rustls::Error::InvalidCertificate(certificate)) = tls_error(error) {
            return Some(certificate);
        }
        source = error.source();
    }
    None
}

/// `error` as rustls's error, also where it is wrapped in `io::Error`s (as it reaches reqwest),
/// whose `source` skips the error they wrap.
fn tls_error<'a>(error: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    if let Some(tls) = error.downcast_ref::<rustls::Error>() {
        Some(tls)
    } else {
        tls_error(error.downcast_ref::<std::io::Error>()?.get_ref()?)
    }
}

/// The certificates of a PEM bundle, at least one.
fn ca_certificates(pem: &str) -> Result<Vec<reqwest::Certificate>, SyncError> {
    let invalid = |why: String| SyncError::InvalidConfig(format!("platform_ca_pem: {why}"));
    let certificates = reqwest::Certificate::from_pem_bundle(pem.as_bytes())
        .map_err(|e| invalid(e.to_string()))?;
    if certificates.is_empty() {
        return Err(invalid("no PEM certificate in it".into()));
    }
    Ok(certificates)
}

/// A time as an HTTP date (IMF-fixdate, RFC 9110 section 5.6.7): `Sun, 06 Nov 1994 08:49:37 GMT`;
/// `None` if it cannot be written so.
fn http_date(at: OffsetDateTime) -> Option<String> {
    const IMF_FIXDATE: &[time::format_description::BorrowedFormatItem<'_>] = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    let utc = at.to_offset(time::UtcOffset::UTC);
    utc.format(IMF_FIXDATE).ok()
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

    fn new(config: &SyncConfig) -> Result<Platform, SyncError> {
        Platform::new(config, Arc::new(Shared::new()))
    }

    fn platform(base: &str) -> Platform {
        new(&SyncConfig::new(base, "t")).unwrap()
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
            new(&SyncConfig::new("ftp://h", "t")),
            Err(SyncError::InvalidConfig(_))
        ));
        assert!(matches!(
            new(&SyncConfig::new("not a url", "t")),
            Err(SyncError::InvalidConfig(_))
        ));
        let mut zero = SyncConfig::new("http://h", "t");
        zero.request_timeout = Duration::ZERO;
        assert!(matches!(new(&zero), Err(SyncError::InvalidConfig(_))));
        for pem in ["not a certificate", ""] {
            let config = SyncConfig {
                platform_ca_pem: Some(pem.into()),
                ..SyncConfig::new("https://h", "t")
            };
            assert!(
                matches!(new(&config), Err(SyncError::InvalidConfig(ref m)) if m.contains("platform_ca_pem")),
                "{pem:?}"
            );
        }
    }

    #[test]
    fn dates_are_imf_fixdates_in_gmt() {
        let at = time::macros::datetime!(1994-11-06 10:49:37 +02:00);
        assert_eq!(http_date(at).unwrap(), "Sun, 06 Nov 1994 08:49:37 GMT");
        let at = time::macros::datetime!(2026-01-02 03:04:05 UTC);
        assert_eq!(http_date(at).unwrap(), "Fri, 02 Jan 2026 03:04:05 GMT");
    }
}
