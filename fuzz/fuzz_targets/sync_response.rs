//! Answers to the sync's `POST` of a record, from the platform or from whatever sits between
//! (captive portals, proxies, gateways): any status, content type and body is classified without
//! a panic, only a 2xx is accepted, and a 2xx JSON object declared as JSON always is.
#![no_main]

use fieldcast_core::fuzzing::sync_receipt;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

/// Content types an answer may declare; the first three are JSON.
const CONTENT_TYPES: [Option<&str>; 8] = [
    Some("application/json"),
    Some("Application/JSON; charset=utf-8"),
    Some("application/problem+json"),
    Some("text/html; charset=iso-8859-1"),
    None,
    Some("text/plain"),
    Some(";application/json"),
    Some("application/json-seq"),
];

// The input: the status (u16 LE), a content type byte, a byte saying whether a Location is
// sent, then the body.
fuzz_target!(|data: &[u8]| {
    let [lo, hi, content_type, location, body @ ..] = data else {
        return;
    };
    let status = u16::from_le_bytes([*lo, *hi]);
    let type_index = usize::from(*content_type) % CONTENT_TYPES.len();
    let location = (location % 2 == 1).then_some("http://portal.example/login?next=%2Fv1");
    let receipt = sync_receipt(status, CONTENT_TYPES[type_index], location, body);
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    if let Some(receipt) = &receipt {
        assert!((200..=299).contains(&status), "{status} accepted");
        let kept: Value = serde_json::from_str(receipt).expect("the receipt is JSON");
        assert_eq!(Some(kept), parsed, "the receipt differs from the body");
    }
    if (200..=299).contains(&status)
        && type_index < 3
        && parsed.as_ref().is_some_and(Value::is_object)
    {
        assert!(receipt.is_some(), "a {status} JSON object was not accepted");
    }
});
