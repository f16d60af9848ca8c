//! Properties of request validation on arbitrary JSON values and bytes: every field reader, the
//! JSON body extractor and every JSON route accept what is valid and answer the rest with a
//! typed 400, never a panic or a 500.

use axum::body::Body;
use axum::extract::{FromRequest, Request};
use futures_util::FutureExt;
use proptest::collection::vec;
use proptest::prelude::*;
use serde_json::{Map, Value};

use super::error::ApiError;
use super::fuzzing::{Api, TOKEN};
use super::validate::{Fields, JsonObject};

/// The field names the routes read, and a few they do not.
const NAMES: [&str; 24] = [
    "id",
    "title",
    "price_minor",
    "currency",
    "unit",
    "stock",
    "image_url",
    "pin_id",
    "session_id",
    "product_id",
    "action",
    "stream_time_ms",
    "wall_time",
    "quantity",
    "unit_price_minor",
    "taken_at",
    "allow_oversell",
    "buyer",
    "mode",
    "count",
    "paths",
    "hang_ms",
    "",
    "\u{1F34A}",
];

/// Strings that are close to what some field accepts.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("CNY".to_owned()),
        Just("cny".to_owned()),
        Just("2025-05-01T08:30:00Z".to_owned()),
        Just("2025-13-01T08:30:00Z".to_owned()),
        Just("pin".to_owned()),
        Just("slow".to_owned()),
        Just("/v1/sales".to_owned()),
        Just("orange-box".to_owned()),
        "[A-Z]{3}",
        ".{0,8}",
        ".{190,260}",
    ]
}

/// Any JSON value, nested a few levels, with the routes' field names as keys.
fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (-3i64..=3).prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        text().prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 32, 8, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..4).prop_map(Value::Array),
            object(inner),
        ]
    })
}

fn object(values: impl Strategy<Value = Value>) -> impl Strategy<Value = Value> {
    vec((prop::sample::select(NAMES.to_vec()), values), 0..12).prop_map(|pairs| {
        Value::Object(
            pairs
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v))
                .collect::<Map<_, _>>(),
        )
    })
}

/// Request bodies: JSON objects, other JSON, JSON cut short, and bytes.
fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => object(json()).prop_map(|v| v.to_string().into_bytes()),
        1 => json().prop_map(|v| v.to_string().into_bytes()),
        1 => (object(json()), any::<prop::sample::Index>()).prop_map(|(v, at)| {
            let text = v.to_string().into_bytes();
            text[..at.index(text.len())].to_vec()
        }),
        1 => vec(any::<u8>(), 0..64),
    ]
}

fn is_typed_400(error: &ApiError, codes: &[&str]) -> bool {
    error.status == 400 && codes.contains(&error.code) && !error.message.is_empty()
}

/// Runs every field reader on every name; each either reads a value that keeps its rule or is
/// a 400 `missing_field` / `invalid_field`.
fn read_every_field(fields: &Fields<'_>) -> Result<(), TestCaseError> {
    const FIELD_ERRORS: [&str; 2] = ["missing_field", "invalid_field"];
    let check = |result: Result<(), ApiError>| match result {
        Ok(()) => Ok(()),
        Err(e) if is_typed_400(&e, &FIELD_ERRORS) => Ok(()),
        Err(e) => Err(TestCaseError::fail(format!("{e:?}"))),
    };
    for name in NAMES {
        let value = fields.0.get(name);
        check(fields.string(name, 1, 200).map(|s| {
            assert!((1..=200).contains(&s.chars().count()));
            assert_eq!(value.and_then(Value::as_str), Some(s));
        }))?;
        check(fields.optional_string(name, 50).map(|s| {
            assert!(s.is_none_or(|s| s.chars().count() <= 50));
        }))?;
        check(fields.integer(name, 1).map(|n| assert!(n >= 1)))?;
        check(
            fields
                .optional_integer(name, 0)
                .map(|n| assert!(n.is_none_or(|n| n >= 0))),
        )?;
        check(fields.flag(name).map(|b| {
            assert_eq!(b, value == Some(&Value::Bool(true)));
        }))?;
        check(fields.currency(name).map(|c| {
            assert!(c.len() == 3 && c.bytes().all(|b| b.is_ascii_uppercase()));
        }))?;
        check(fields.timestamp(name).map(|t| {
            assert_eq!(value.and_then(Value::as_str), Some(t));
        }))?;
        check(
            fields
                .choice(name, &[("pin", 1), ("unpin", 2)])
                .map(|n| assert!(n == 1 || n == 2)),
        )?;
        check(fields.optional_strings(name).map(|_| ()))?;
    }
    Ok(())
}

/// The JSON body extractor on one request.
fn extract(content_type: Option<&str>, body: Vec<u8>) -> Result<Value, ApiError> {
    let request = content_type
        .into_iter()
        .fold(Request::builder(), |b, ct| b.header("content-type", ct))
        .body(Body::from(body))
        .expect("a valid request");
    JsonObject::from_request(request, &())
        .now_or_never()
        .expect("a body in memory is read at once")
        .map(|JsonObject(value)| value)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn field_readers_read_by_their_rule_or_give_a_typed_400(value in json()) {
        match Fields::of(&value) {
            Ok(fields) => {
                prop_assert!(value.is_object());
                read_every_field(&fields)?;
            }
            Err(e) => {
                prop_assert!(!value.is_object());
                prop_assert!(is_typed_400(&e, &["malformed_json"]), "{e:?}");
            }
        }
    }

    #[test]
    fn json_bodies_are_objects_or_a_typed_400(
        body in body(),
        content_type in prop_oneof![
            Just(Some("application/json")),
            Just(Some("APPLICATION/JSON; charset=utf-8")),
            Just(Some("text/json")),
            Just(Some("application/json-patch+json")),
            Just(None),
        ],
    ) {
        let expected = content_type
            .and_then(|ct| ct.split(';').next())
            .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"))
            .then(|| serde_json::from_slice::<Value>(&body).ok())
            .flatten()
            .filter(Value::is_object);
        match (extract(content_type, body), expected) {
            (Ok(value), Some(expected)) => prop_assert_eq!(value, expected),
            (Err(e), None) => {
                prop_assert!(is_typed_400(&e, &["invalid_header", "malformed_json"]), "{e:?}")
            }
            (got, expected) => {
                return Err(TestCaseError::fail(format!("got {got:?}, expected {expected:?}")))
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn every_json_route_answers_any_body_with_success_or_a_typed_error(
        route in 0usize..5,
        body in body(),
        key_from_body in any::<bool>(),
    ) {
        let api = Api::new().expect("the in-process API");
        let (method, path) = [
            ("POST", "/v1/live-sessions"),
            ("PUT", "/v1/products/pear-kg"),
            ("POST", "/v1/pin-events"),
            ("POST", "/v1/sales"),
            ("POST", "/v1/_sandbox/faults"),
        ][route];
        let parsed = serde_json::from_slice::<Value>(&body).ok();
        let key = parsed
            .as_ref()
            .and_then(|v| v["id"].as_str())
            .filter(|_| key_from_body)
            .unwrap_or("some-key")
            .to_owned();
        let auth = format!("Bearer {TOKEN}");
        let headers: [(&str, &[u8]); 3] = [
            ("authorization", auth.as_bytes()),
            ("content-type", b"application/json"),
            ("idempotency-key", key.as_bytes()),
        ];
        let Some(answer) = api.send(method, path, &headers, body) else {
            // An Idempotency-Key taken from the body that is no valid header value.
            return Ok(());
        };
        if answer.status >= 400 {
            let error: Value = serde_json::from_slice(&answer.body)
                .map_err(|e| TestCaseError::fail(format!("{} with a body that is not JSON: {e}", answer.status)))?;
            let code = error["code"].as_str().unwrap_or_default();
            prop_assert!(error["message"].is_string() && !code.is_empty(), "{error}");
            prop_assert!(answer.status < 500 || code == "ingest_unavailable", "{} {error}", answer.status);
        }
        if !parsed.is_some_and(|v| v.is_object()) {
            prop_assert_eq!(answer.status, 400);
        }
    }
}
