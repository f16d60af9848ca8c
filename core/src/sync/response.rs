//! What an answer of the platform means for an outbox record. Pure.

/// The verdict on one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// 2xx with a JSON body: the record is on the platform.
    Accepted {
        /// The body, compact, kept as the receipt.
        response: String,
        /// `Idempotent-Replayed: true`: an earlier attempt had already been applied.
        replayed: bool,
    },
    /// A final refusal: the app must show it; never retried automatically.
    Refused { code: String, message: String },
    /// May pass: retry with backoff.
    Transient { reason: String },
    /// 401/403: the credentials are the problem; pause everything.
    Unauthorized { status: u16, message: String },
}

/// Classifies an HTTP answer to `POST` of an outbox record.
pub(crate) fn classify(status: u16, body: &[u8], replayed: bool) -> Outcome {
    match status {
        200..=299 => match serde_json::from_slice::<serde_json::Value>(body) {
            Ok(json) => Outcome::Accepted {
                response: json.to_string(),
                replayed,
            },
            Err(_) => Outcome::Transient {
                reason: format!("unreadable {status} answer: {}", excerpt(body)),
            },
        },
        401 | 403 => Outcome::Unauthorized {
            status,
            message: error_body(status, body).1,
        },
        // Timeouts and rate limits say "later"; a 404 here means a wrong base URL or a platform
        // being deployed, not a bad record.
        404 | 408 | 425 | 429 => Outcome::Transient {
            reason: describe(status, body),
        },
        409 => match error_body(status, body) {
            (code, message) if code == "idempotency_in_flight" => Outcome::Transient {
                reason: format!("{code}: {message}"),
            },
            (code, message) => Outcome::Refused { code, message },
        },
        400..=499 => {
            let (code, message) = error_body(status, body);
            Outcome::Refused { code, message }
        }
        _ => Outcome::Transient {
            reason: describe(status, body),
        },
    }
}

/// The `{code, message}` of an error body, or a code made from the status.
fn error_body(status: u16, body: &[u8]) -> (String, String) {
    #[derive(serde::Deserialize)]
    struct ErrorBody {
        code: String,
        message: String,
    }
    match serde_json::from_slice::<ErrorBody>(body) {
        Ok(e) => (e.code, e.message),
        Err(_) => (format!("http_{status}"), excerpt(body)),
    }
}

fn describe(status: u16, body: &[u8]) -> String {
    let (code, message) = error_body(status, body);
    format!("HTTP {status} {code}: {message}")
}

/// The start of a body, as text, for messages.
pub(crate) fn excerpt(body: &[u8]) -> String {
    const MAX: usize = 200;
    let text = String::from_utf8_lossy(&body[..body.len().min(MAX)]);
    let text = text.trim();
    if body.len() > MAX {
        format!("{text}…")
    } else if text.is_empty() {
        "(empty body)".to_string()
    } else {
        text.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(code: &str) -> Vec<u8> {
        format!(r#"{{"code":"{code}","message":"about {code}"}}"#).into_bytes()
    }

    fn refused(code: &str) -> Outcome {
        Outcome::Refused {
            code: code.into(),
            message: format!("about {code}"),
        }
    }

    #[test]
    fn success_needs_a_json_body() {
        assert_eq!(
            classify(201, br#"{ "stock_after": 3 }"#, true),
            Outcome::Accepted {
                response: r#"{"stock_after":3}"#.into(),
                replayed: true
            }
        );
        assert!(matches!(
            classify(200, b"<html>oops", false),
            Outcome::Transient { .. }
        ));
    }

    #[test]
    fn business_refusals_are_final() {
        for code in ["oversold", "price_changed"] {
            assert_eq!(classify(409, &err(code), false), refused(code));
        }
        for code in [
            "idempotency_key_mismatch",
            "unknown_product",
            "unknown_session",
            "currency_mismatch",
        ] {
            assert_eq!(classify(422, &err(code), false), refused(code));
        }
        assert_eq!(
            classify(400, &err("bad_request"), false),
            refused("bad_request")
        );
        assert_eq!(
            classify(409, b"no json", false),
            Outcome::Refused {
                code: "http_409".into(),
                message: "no json".into()
            }
        );
    }

    #[test]
    fn in_flight_server_errors_and_timeouts_are_transient() {
        let transient = |status, body: &[u8]| {
            matches!(classify(status, body, false), Outcome::Transient { .. })
        };
        assert!(transient(409, &err("idempotency_in_flight")));
        for status in [500, 502, 503, 504, 404, 408, 429] {
            assert!(transient(status, b""), "{status}");
        }
    }

    #[test]
    fn credentials_problems_pause() {
        assert_eq!(
            classify(401, &err("unauthorized"), false),
            Outcome::Unauthorized {
                status: 401,
                message: "about unauthorized".into()
            }
        );
        assert!(matches!(
            classify(403, b"", false),
            Outcome::Unauthorized { status: 403, .. }
        ));
    }

    #[test]
    fn excerpts_are_short() {
        assert_eq!(excerpt(b""), "(empty body)");
        assert_eq!(excerpt(&[b'x'; 500]).chars().count(), 201);
    }
}
