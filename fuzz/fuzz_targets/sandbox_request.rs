//! Requests to the sandbox's JSON routes with arbitrary bodies, content types, path segments and
//! Idempotency-Keys: every answer is a success or a typed error (`{code, message}`), a body that
//! is not a JSON object is a 400, and nothing panics or answers 500.
#![no_main]

use std::sync::OnceLock;

use fieldcast_sandbox::fuzzing::{Answer, Api, TOKEN};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

/// Content types a client may declare (the first two are JSON).
const CONTENT_TYPES: [Option<&[u8]>; 8] = [
    Some(b"application/json"),
    Some(b"Application/JSON ; charset=utf-8"),
    None,
    Some(b"text/plain"),
    Some(b"application/json-seq"),
    Some(b";application/json"),
    Some(b"application/\xffjson"),
    Some(b""),
];

/// One request, read from the input: a route byte, a content type byte, a key byte, then the
/// path segment, a NUL, the Idempotency-Key given, a NUL, and the body.
struct Input<'a> {
    route: u8,
    content_type: Option<&'a [u8]>,
    key: Key<'a>,
    segment: &'a [u8],
    body: &'a [u8],
}

enum Key<'a> {
    Missing,
    /// The body's `id`, as a well-behaved client sends it.
    FromBody,
    Given(&'a [u8]),
}

impl<'a> Input<'a> {
    fn read(data: &'a [u8]) -> Option<Self> {
        let [route, content_type, key, rest @ ..] = data else {
            return None;
        };
        let mut parts = rest.splitn(3, |b| *b == 0);
        let segment = parts.next().unwrap_or_default();
        let given = parts.next().unwrap_or_default();
        let body = parts.next().unwrap_or_default();
        Some(Input {
            route: route % 6,
            content_type: CONTENT_TYPES[usize::from(*content_type) % CONTENT_TYPES.len()],
            key: match key % 3 {
                0 => Key::Missing,
                1 => Key::FromBody,
                _ => Key::Given(given),
            },
            segment,
            body,
        })
    }
}

fn api() -> &'static Api {
    static API: OnceLock<Api> = OnceLock::new();
    API.get_or_init(|| Api::new().expect("the in-process API starts"))
}

/// A path segment as a client would put it in a URL.
fn segment(raw: &[u8]) -> String {
    raw.iter()
        .map(|&b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The `{code, message}` of an error answer.
fn error_code(answer: &Answer) -> String {
    let body: Value = serde_json::from_slice(&answer.body).unwrap_or_else(|e| {
        panic!(
            "{} answered with a body that is not JSON: {e}",
            answer.status
        )
    });
    match (&body["code"], &body["message"]) {
        (Value::String(code), Value::String(_)) => code.clone(),
        _ => panic!(
            "{} answered without code and message: {body}",
            answer.status
        ),
    }
}

/// True for a Content-Type the sandbox must read as JSON.
fn declares_json(content_type: Option<&[u8]>) -> bool {
    content_type
        .and_then(|ct| std::str::from_utf8(ct).ok())
        .and_then(|ct| ct.split(';').next())
        .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"))
}

fuzz_target!(|data: &[u8]| {
    let Some(input) = Input::read(data) else {
        return;
    };
    let id = segment(input.segment);
    let (method, path, takes_json) = match input.route {
        0 => ("POST", "/v1/live-sessions".to_owned(), true),
        1 => ("POST", format!("/v1/live-sessions/{id}/end"), false),
        // Without a segment the path is another route's (404 or 405).
        2 => ("PUT", format!("/v1/products/{id}"), !id.is_empty()),
        3 => ("POST", "/v1/pin-events".to_owned(), true),
        4 => ("POST", "/v1/sales".to_owned(), true),
        _ => ("POST", "/v1/_sandbox/faults".to_owned(), true),
    };
    let parsed: Option<Value> = serde_json::from_slice(input.body).ok();
    let key: Option<&[u8]> = match input.key {
        Key::Missing => None,
        Key::FromBody => parsed
            .as_ref()
            .and_then(|v| v["id"].as_str())
            .map(str::as_bytes),
        Key::Given(key) => Some(key),
    };
    let auth = format!("Bearer {TOKEN}");
    let mut headers: Vec<(&str, &[u8])> = vec![("authorization", auth.as_bytes())];
    headers.extend(input.content_type.map(|ct| ("content-type", ct)));
    headers.extend(key.map(|k| ("idempotency-key", k)));

    let Some(answer) = api().send(method, &path, &headers, input.body.to_vec()) else {
        return;
    };
    if answer.status >= 400 {
        let code = error_code(&answer);
        assert!(
            answer.status < 500 || code == "ingest_unavailable",
            "{method} {path} answered {} {code}",
            answer.status
        );
    }
    let is_object = parsed.as_ref().is_some_and(Value::is_object);
    if takes_json && !(declares_json(input.content_type) && is_object) {
        assert_eq!(
            answer.status, 400,
            "{method} {path} took a body it cannot read"
        );
    }
    if input.route == 5 && answer.status == 204 {
        // No rule may act on later requests: faults are what QA asks for, not findings.
        let cleared = api()
            .send("DELETE", "/v1/_sandbox/faults", &headers[..1], Vec::new())
            .expect("a valid request");
        assert_eq!(cleared.status, 204);
    }
});
