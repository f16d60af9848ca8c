//! The three requests of tus 1.0 (creation, offset, append) against the platform's `/v1/uploads`.

use reqwest::header::CONTENT_TYPE;
use reqwest::{Method, RequestBuilder, StatusCode};
use url::Url;

use super::platform::{Platform, tls_interception, transport_error};
use super::response::{Answer, interception};

const TUS_VERSION: &str = "1.0.0";

/// Why a tus request failed, by what the uploader should do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TusError {
    /// May pass: ask for the offset again and go on, after a backoff.
    Retry(String),
    /// The server no longer knows this upload: create a new one.
    Gone,
    /// 401/403 from the platform.
    Unauthorized { status: u16, message: String },
    /// Refused for good by the platform (too large, unsupported…).
    Refused { status: u16, message: String },
    /// A captive portal or proxy answered instead of the platform: wait until it is gone.
    Intercepted(String),
}

/// Creates an upload of `length` bytes; returns its URL.
pub(crate) async fn create(
    platform: &Platform,
    length: u64,
    metadata: &[(&str, &str)],
) -> Result<Url, TusError> {
    let url = platform.url("/v1/uploads").map_err(|e| TusError::Refused {
        status: 0,
        message: e.to_string(),
    })?;
    let request = platform
        .request(Method::POST, url)
        .header("Tus-Resumable", TUS_VERSION)
        .header("Upload-Length", length)
        .header("Upload-Metadata", encode_metadata(metadata));
    let TusAnswer { answer, .. } = exchange(platform, request).await?;
    if answer.status != StatusCode::CREATED.as_u16() {
        return Err(failure(&answer));
    }
    let location = answer
        .location
        .as_deref()
        .ok_or_else(|| TusError::Retry("creation answer without a Location".into()))?;
    let url = platform
        .resolve(location)
        .map_err(|e| TusError::Retry(e.to_string()))?;
    platform.answered_as_itself();
    Ok(url)
}

/// How many bytes the server has (`HEAD`).
pub(crate) async fn offset(platform: &Platform, url: &Url) -> Result<u64, TusError> {
    let request = platform
        .request(Method::HEAD, url.clone())
        .header("Tus-Resumable", TUS_VERSION);
    let offset = upload_offset(&exchange(platform, request).await?)?;
    platform.answered_as_itself();
    Ok(offset)
}

/// Appends `bytes` at `at` (`PATCH`); returns the server's new offset.
pub(crate) async fn append(
    platform: &Platform,
    url: &Url,
    at: u64,
    bytes: Vec<u8>,
) -> Result<u64, TusError> {
    let request = platform
        .request(Method::PATCH, url.clone())
        .header("Tus-Resumable", TUS_VERSION)
        .header("Upload-Offset", at)
        .header(CONTENT_TYPE, "application/offset+octet-stream")
        .body(bytes);
    let offset = upload_offset(&exchange(platform, request).await?)?;
    platform.answered_as_itself();
    Ok(offset)
}

/// A whole tus answer with its `Upload-Offset`, if valid.
struct TusAnswer {
    answer: Answer,
    upload_offset: Option<u64>,
}

/// Sends a tus request and reads the whole answer.
async fn exchange(platform: &Platform, request: RequestBuilder) -> Result<TusAnswer, TusError> {
    let response = request
        .send()
        .await
        .map_err(|e| match tls_interception(&e) {
            Some(reason) => TusError::Intercepted(reason),
            None => TusError::Retry(transport_error(&e)),
        })?;
    let upload_offset = response
        .headers()
        .get("Upload-Offset")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok());
    let answer = platform
        .receive(response)
        .await
        .map_err(|e| TusError::Retry(transport_error(&e)))?;
    Ok(TusAnswer {
        answer,
        upload_offset,
    })
}

/// The offset of a successful `HEAD` or `PATCH`.
fn upload_offset(reply: &TusAnswer) -> Result<u64, TusError> {
    match reply.upload_offset {
        Some(offset) if (200..300).contains(&reply.answer.status) => Ok(offset),
        _ => Err(failure(&reply.answer)),
    }
}

/// What an answer without what tus expects means.
fn failure(answer: &Answer) -> TusError {
    if let Some(reason) = interception(answer) {
        return TusError::Intercepted(reason);
    }
    let status = answer.status;
    let message = answer.describe();
    // Only the platform's own error body settles anything; 409 means our offset is not the
    // server's (ask again), 408/425/429/5xx say "later", and a 2xx here lacks what tus requires
    // (a truncated answer): ask again too.
    match (status, answer.platform_error().is_some()) {
        (401 | 403, true) => TusError::Unauthorized { status, message },
        (404 | 410, true) => TusError::Gone,
        (200..=299, _) => TusError::Retry(format!(
            "an answer without a valid Upload-Offset or Location: {message}"
        )),
        (408 | 409 | 425 | 429, _) => TusError::Retry(message),
        (400..=499, true) => TusError::Refused { status, message },
        _ => TusError::Retry(message),
    }
}

/// tus `Upload-Metadata`: `key base64(value)` pairs separated by commas.
fn encode_metadata(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{k} {}", base64(v.as_bytes())))
        .collect::<Vec<_>>()
        .join(",")
}

/// Standard base64 with padding (RFC 4648 section 4).
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, content_type: &str, body: &str) -> Answer {
        Answer {
            status,
            content_type: Some(content_type.into()),
            location: None,
            body: body.to_string().into(),
        }
    }

    fn platform_error(status: u16, code: &str) -> Answer {
        let body = format!(r#"{{"code":"{code}","message":"about {code}"}}"#);
        answer(status, "application/json", &body)
    }

    #[test]
    fn only_the_platforms_error_bodies_settle_an_upload() {
        assert_eq!(failure(&platform_error(404, "not_found")), TusError::Gone);
        assert!(matches!(
            failure(&platform_error(401, "unauthorized")),
            TusError::Unauthorized { status: 401, .. }
        ));
        assert!(matches!(
            failure(&platform_error(413, "upload_too_large")),
            TusError::Refused { status: 413, .. }
        ));
        assert!(matches!(
            failure(&platform_error(409, "upload_offset_mismatch")),
            TusError::Retry(_)
        ));
        // The same statuses from something else only say "later".
        for status in [401, 404, 410, 413] {
            let failure = failure(&answer(status, "text/plain", "nope"));
            assert!(
                matches!(failure, TusError::Retry(_)),
                "{status}: {failure:?}"
            );
        }
    }

    #[test]
    fn portals_in_front_of_uploads_are_interceptions() {
        for page in [
            answer(200, "text/html", "<title>Sign in</title>"),
            answer(403, "text/html", "<title>Sign in</title>"),
            answer(407, "text/plain", ""),
            platform_error(511, "network_authentication_required"),
        ] {
            let failure = failure(&page);
            assert!(
                matches!(failure, TusError::Intercepted(_)),
                "{page:?}: {failure:?}"
            );
        }
        let redirect = Answer {
            location: Some("/portal/login".into()),
            ..answer(302, "text/html", "")
        };
        assert!(matches!(failure(&redirect), TusError::Intercepted(_)));
    }

    #[test]
    fn base64_matches_rfc_4648_vectors() {
        let vectors = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ];
        for (plain, encoded) in vectors {
            assert_eq!(base64(plain.as_bytes()), encoded, "{plain}");
        }
        assert_eq!(base64(&[0xfb, 0xff]), "+/8=");
    }

    #[test]
    fn metadata_pairs_are_comma_separated() {
        assert_eq!(
            encode_metadata(&[("session_id", "live-1"), ("filename", "replay.mp4")]),
            "session_id bGl2ZS0x,filename cmVwbGF5Lm1wNA=="
        );
    }
}
