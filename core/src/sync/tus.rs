//! The three requests of tus 1.0 (creation, offset, append) against the platform's `/v1/uploads`.

use reqwest::header::{CONTENT_TYPE, LOCATION};
use reqwest::{Method, StatusCode};
use url::Url;

use super::platform::{Platform, transport_error};
use super::response::excerpt;

const TUS_VERSION: &str = "1.0.0";

/// Why a tus request failed, by what the uploader should do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TusError {
    /// May pass: ask for the offset again and go on, after a backoff.
    Retry(String),
    /// The server no longer knows this upload: create a new one.
    Gone,
    /// 401/403.
    Unauthorized { status: u16, message: String },
    /// Refused for good (too large, unsupported…).
    Refused { status: u16, message: String },
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
    let response = platform
        .request(Method::POST, url)
        .header("Tus-Resumable", TUS_VERSION)
        .header("Upload-Length", length)
        .header("Upload-Metadata", encode_metadata(metadata))
        .send()
        .await
        .map_err(|e| TusError::Retry(transport_error(&e)))?;
    let status = response.status();
    if status != StatusCode::CREATED {
        return Err(failure(response).await);
    }
    let location = response
        .headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| TusError::Retry("creation answer without a Location".into()))?;
    platform
        .resolve(location)
        .map_err(|e| TusError::Retry(e.to_string()))
}

/// How many bytes the server has (`HEAD`).
pub(crate) async fn offset(platform: &Platform, url: &Url) -> Result<u64, TusError> {
    let response = platform
        .request(Method::HEAD, url.clone())
        .header("Tus-Resumable", TUS_VERSION)
        .send()
        .await
        .map_err(|e| TusError::Retry(transport_error(&e)))?;
    if !response.status().is_success() {
        return Err(failure(response).await);
    }
    upload_offset(&response)
}

/// Appends `bytes` at `at` (`PATCH`); returns the server's new offset.
pub(crate) async fn append(
    platform: &Platform,
    url: &Url,
    at: u64,
    bytes: Vec<u8>,
) -> Result<u64, TusError> {
    let response = platform
        .request(Method::PATCH, url.clone())
        .header("Tus-Resumable", TUS_VERSION)
        .header("Upload-Offset", at)
        .header(CONTENT_TYPE, "application/offset+octet-stream")
        .body(bytes)
        .send()
        .await
        .map_err(|e| TusError::Retry(transport_error(&e)))?;
    if !response.status().is_success() {
        return Err(failure(response).await);
    }
    upload_offset(&response)
}

fn upload_offset(response: &reqwest::Response) -> Result<u64, TusError> {
    response
        .headers()
        .get("Upload-Offset")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| TusError::Retry("answer without a valid Upload-Offset".into()))
}

async fn failure(response: reqwest::Response) -> TusError {
    let status = response.status().as_u16();
    let body = response.bytes().await.unwrap_or_default();
    let message = format!("HTTP {status}: {}", excerpt(&body));
    match status {
        401 | 403 => TusError::Unauthorized { status, message },
        404 | 410 => TusError::Gone,
        // 409: our offset is not the server's; ask again. 408/429/5xx: later. A 2xx here lacks
        // what tus requires (a proxy's page, a truncated answer): ask again too.
        200..=299 | 408 | 409 | 425 | 429 | 500..=599 => TusError::Retry(message),
        _ => TusError::Refused { status, message },
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
