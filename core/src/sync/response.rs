//! What an answer to a request means. Pure.
//!
//! Only the platform's own voice settles a record: a 2xx with a JSON body, or an error
//! `{code, message}` with a JSON content type. On village networks a captive portal or an
//! operator's proxy answers in the platform's place (a login page, a redirect, 407, 511): such an
//! answer is [`Outcome::Intercepted`], which pauses the sync until the platform answers again and
//! never refuses a record. Any other answer that is not the platform's may pass: it is retried.

use bytes::Bytes;

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
    /// A final refusal by the platform: the app must show it; never retried automatically.
    Refused { code: String, message: String },
    /// May pass: retry with backoff.
    Transient { reason: String },
    /// 401/403 from the platform: the credentials are the problem; pause everything.
    Unauthorized { status: u16, message: String },
    /// A captive portal or proxy answered instead of the platform: the phone must sign in to the
    /// network; pause, and keep trying with backoff until the platform answers.
    Intercepted { reason: String },
}

/// An HTTP answer as read from the wire (redirects are never followed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Answer {
    /// The status code.
    pub status: u16,
    /// The `Content-Type` header, if any.
    pub content_type: Option<String>,
    /// The `Location` header, if any.
    pub location: Option<String>,
    /// The body.
    pub body: Bytes,
}

impl Answer {
    /// The media type of the body, lower case, without parameters (`text/html`).
    fn media_type(&self) -> String {
        let content_type = self.content_type.as_deref().unwrap_or_default();
        let media = content_type.split(';').next().unwrap_or_default();
        media.trim().to_ascii_lowercase()
    }

    /// Declared as JSON (`application/json` or any `+json` type).
    fn declares_json(&self) -> bool {
        let media = self.media_type();
        media == "application/json" || media.ends_with("+json")
    }

    /// Declared as a web page.
    fn declares_html(&self) -> bool {
        matches!(
            self.media_type().as_str(),
            "text/html" | "application/xhtml+xml"
        )
    }

    /// The body as JSON, when it is declared and parses as JSON.
    fn json(&self) -> Option<serde_json::Value> {
        self.declares_json()
            .then(|| serde_json::from_slice(&self.body).ok())
            .flatten()
    }

    /// The platform answered as itself: a JSON body with a JSON content type, whatever the status.
    pub fn is_the_platforms(&self) -> bool {
        self.json().is_some()
    }

    /// The platform's own error body `{code, message}`, if this is one.
    pub fn platform_error(&self) -> Option<(String, String)> {
        #[derive(serde::Deserialize)]
        struct ErrorBody {
            code: String,
            message: String,
        }
        let body: ErrorBody = serde_json::from_value(self.json()?).ok()?;
        Some((body.code, body.message))
    }

    /// The status and what the answer says, for messages.
    pub fn describe(&self) -> String {
        let status = self.status;
        match self.platform_error() {
            Some((code, message)) => format!("HTTP {status} {code}: {message}"),
            None => format!(
                "HTTP {status} ({}), not the platform's JSON: {}",
                self.content_type.as_deref().unwrap_or("no content type"),
                excerpt(&self.body)
            ),
        }
    }
}

/// Why an answer comes from a captive portal or proxy instead of the platform, if it does: any
/// redirect (the API never redirects), 407, 511, or a web page where the API answers JSON. A web
/// page with a 5xx is left out: that is a gateway in front of a failing platform.
pub(crate) fn interception(answer: &Answer) -> Option<String> {
    let status = answer.status;
    match status {
        300..=399 => Some(format!(
            "HTTP {status}: redirected to {}",
            answer.location.as_deref().unwrap_or("(no Location)")
        )),
        407 => Some("HTTP 407: the network's proxy asks to sign in".to_string()),
        511 => Some(format!(
            "HTTP 511: the network asks to sign in{}",
            page_title(&answer.body).map_or_else(String::new, |t| format!(" ({t})"))
        )),
        200..=299 | 400..=499 if answer.declares_html() => Some(format!(
            "HTTP {status}: a web page answered instead of the platform: {}",
            page_title(&answer.body).unwrap_or_else(|| excerpt(&answer.body))
        )),
        _ => None,
    }
}

/// Classifies an answer to `POST` of an outbox record (or to a read such as the catalog).
pub(crate) fn classify(answer: &Answer, replayed: bool) -> Outcome {
    if let Some(reason) = interception(answer) {
        return Outcome::Intercepted { reason };
    }
    let status = answer.status;
    match status {
        200..=299 => match answer.json() {
            Some(json) => Outcome::Accepted {
                response: json.to_string(),
                replayed,
            },
            None => Outcome::Transient {
                reason: format!("unreadable answer: {}", answer.describe()),
            },
        },
        401 | 403 => match answer.platform_error() {
            Some((_, message)) => Outcome::Unauthorized { status, message },
            None => Outcome::Transient {
                reason: answer.describe(),
            },
        },
        // Timeouts and rate limits say "later"; a 404 here means a wrong base URL or a platform
        // being deployed, not a bad record.
        404 | 408 | 425 | 429 => Outcome::Transient {
            reason: answer.describe(),
        },
        400..=499 => match answer.platform_error() {
            Some((code, message)) if code == "idempotency_in_flight" => Outcome::Transient {
                reason: format!("{code}: {message}"),
            },
            Some((code, message)) => Outcome::Refused { code, message },
            // Not the platform's own refusal: something between the phone and the platform.
            None => Outcome::Transient {
                reason: answer.describe(),
            },
        },
        _ => Outcome::Transient {
            reason: answer.describe(),
        },
    }
}

/// The text of an HTML page's `<title>`, if it has one.
fn page_title(body: &[u8]) -> Option<String> {
    let page = String::from_utf8_lossy(&body[..body.len().min(4096)]);
    let lower = page.to_ascii_lowercase();
    let open = lower.find("<title")?;
    let start = open + lower[open..].find('>')? + 1;
    let end = start + lower[start..].find("</title")?;
    let title = page[start..end].split_whitespace().collect::<Vec<_>>();
    (!title.is_empty()).then(|| title.join(" "))
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

    const LOGIN_PAGE: &str = "<!doctype html><html><head><title>Village Wi-Fi: sign in</title></head><body>…</body></html>";

    fn answer(status: u16, content_type: Option<&str>, body: &str) -> Answer {
        Answer {
            status,
            content_type: content_type.map(str::to_string),
            location: None,
            body: Bytes::from(body.to_string()),
        }
    }

    fn json(status: u16, body: &str) -> Answer {
        answer(status, Some("application/json"), body)
    }

    fn err(status: u16, code: &str) -> Answer {
        json(
            status,
            &format!(r#"{{"code":"{code}","message":"about {code}"}}"#),
        )
    }

    fn refused(code: &str) -> Outcome {
        Outcome::Refused {
            code: code.into(),
            message: format!("about {code}"),
        }
    }

    fn is_transient(outcome: &Outcome) -> bool {
        matches!(outcome, Outcome::Transient { .. })
    }

    fn is_intercepted(outcome: &Outcome) -> bool {
        matches!(outcome, Outcome::Intercepted { .. })
    }

    #[test]
    fn success_needs_a_json_body_declared_as_json() {
        assert_eq!(
            classify(&json(201, r#"{ "stock_after": 3 }"#), true),
            Outcome::Accepted {
                response: r#"{"stock_after":3}"#.into(),
                replayed: true
            }
        );
        let charset = answer(200, Some("application/json; charset=utf-8"), "{}");
        assert!(matches!(
            classify(&charset, false),
            Outcome::Accepted { .. }
        ));
        assert!(is_transient(&classify(&json(200, "<html>oops"), false)));
        assert!(is_transient(&classify(&answer(200, None, "{}"), false)));
        assert!(is_transient(&classify(
            &answer(200, Some("text/plain"), "{}"),
            false
        )));
    }

    #[test]
    fn business_refusals_are_final() {
        for code in ["oversold", "price_changed"] {
            assert_eq!(classify(&err(409, code), false), refused(code));
        }
        for code in [
            "idempotency_key_mismatch",
            "unknown_product",
            "unknown_session",
            "currency_mismatch",
        ] {
            assert_eq!(classify(&err(422, code), false), refused(code));
        }
        assert_eq!(
            classify(&err(400, "bad_request"), false),
            refused("bad_request")
        );
        let problem = answer(
            409,
            Some("application/problem+json"),
            r#"{"code":"oversold","message":"about oversold"}"#,
        );
        assert_eq!(classify(&problem, false), refused("oversold"));
    }

    #[test]
    fn only_the_platforms_json_error_body_refuses() {
        // A 4xx that is not the platform's `{code, message}` with a JSON content type says
        // nothing about the record.
        for body in [
            answer(409, None, "no json"),
            answer(
                409,
                Some("text/plain"),
                r#"{"code":"oversold","message":"m"}"#,
            ),
            json(409, r#"{"error":"oversold"}"#),
            json(422, "not json"),
            answer(400, Some("text/plain"), "Bad Request"),
        ] {
            let outcome = classify(&body, false);
            assert!(is_transient(&outcome), "{body:?}: {outcome:?}");
        }
    }

    #[test]
    fn in_flight_server_errors_and_timeouts_are_transient() {
        assert!(is_transient(&classify(
            &err(409, "idempotency_in_flight"),
            false
        )));
        for status in [500, 502, 503, 504, 404, 408, 429] {
            assert!(
                is_transient(&classify(&answer(status, None, ""), false)),
                "{status}"
            );
        }
        // A gateway's error page in front of a failing platform is not a portal.
        let gateway = answer(502, Some("text/html"), "<h1>502 Bad Gateway</h1>");
        assert!(is_transient(&classify(&gateway, false)));
    }

    #[test]
    fn credentials_problems_pause_only_when_the_platform_says_so() {
        assert_eq!(
            classify(&err(401, "unauthorized"), false),
            Outcome::Unauthorized {
                status: 401,
                message: "about unauthorized".into()
            }
        );
        assert!(matches!(
            classify(&err(403, "forbidden"), false),
            Outcome::Unauthorized { status: 403, .. }
        ));
        assert!(is_transient(&classify(&answer(403, None, ""), false)));
        assert!(is_intercepted(&classify(
            &answer(401, Some("text/html"), LOGIN_PAGE),
            false
        )));
    }

    #[test]
    fn portals_and_proxies_are_interceptions() {
        let login = classify(
            &answer(200, Some("text/html; charset=utf-8"), LOGIN_PAGE),
            false,
        );
        assert_eq!(
            login,
            Outcome::Intercepted {
                reason:
                    "HTTP 200: a web page answered instead of the platform: Village Wi-Fi: sign in"
                        .into()
            }
        );
        let redirect = Answer {
            location: Some("http://portal.example/login".into()),
            ..answer(302, Some("text/html"), "")
        };
        assert_eq!(
            classify(&redirect, false),
            Outcome::Intercepted {
                reason: "HTTP 302: redirected to http://portal.example/login".into()
            }
        );
        // Whatever their bodies say, even a JSON error body with a refusal code.
        for status in [301, 303, 307, 308, 407, 511] {
            let outcome = classify(&err(status, "oversold"), false);
            assert!(is_intercepted(&outcome), "{status}: {outcome:?}");
        }
        let network = classify(&answer(511, Some("text/html"), LOGIN_PAGE), false);
        assert!(
            matches!(&network, Outcome::Intercepted { reason } if reason.contains("Village Wi-Fi")),
            "{network:?}"
        );
        // A web page refusing the request is not the platform refusing the record.
        for status in [400, 404, 409, 422] {
            let outcome = classify(&answer(status, Some("text/html"), LOGIN_PAGE), false);
            assert!(is_intercepted(&outcome), "{status}: {outcome:?}");
        }
    }

    #[test]
    fn the_platforms_voice_is_json_declared_as_json() {
        assert!(err(500, "internal").is_the_platforms());
        assert!(json(201, "{}").is_the_platforms());
        assert!(!json(200, "<html>").is_the_platforms());
        assert!(!answer(200, Some("text/html"), "{}").is_the_platforms());
        assert!(!answer(200, None, "{}").is_the_platforms());
    }

    #[test]
    fn page_titles_are_found_and_trimmed() {
        assert_eq!(
            page_title(b"<HTML><Title lang=en>\n  Sign  in\n</TITLE>").as_deref(),
            Some("Sign in")
        );
        assert_eq!(page_title(b"<title></title>"), None);
        assert_eq!(page_title(b"no page"), None);
    }

    #[test]
    fn excerpts_are_short() {
        assert_eq!(excerpt(b""), "(empty body)");
        assert_eq!(excerpt(&[b'x'; 500]).chars().count(), 201);
    }
}
