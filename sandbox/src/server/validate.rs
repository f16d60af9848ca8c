//! Request input checked by hand, so every 400 names the field, header or parameter at fault.

use axum::body::to_bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::header::CONTENT_TYPE;
use axum::http::request::Parts;
use serde_json::{Map, Value};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::error::ApiError;

/// The largest JSON body accepted.
const MAX_JSON_BYTES: usize = 1 << 20;

/// A JSON object body, parsed from a request that declares `Content-Type: application/json`.
pub struct JsonObject(pub Value);

impl<S: Send + Sync> FromRequest<S> for JsonObject {
    type Rejection = ApiError;

    async fn from_request(req: Request, _: &S) -> Result<Self, ApiError> {
        let content_type = req
            .headers()
            .get(CONTENT_TYPE)
            .map(|v| v.to_str().unwrap_or("(not text)").to_owned());
        let is_json = content_type
            .as_deref()
            .and_then(|ct| ct.split(';').next())
            .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"));
        if !is_json {
            return Err(ApiError::bad_request(
                "invalid_header",
                format!(
                    "header Content-Type must be application/json, got {}",
                    content_type.map_or("none".to_owned(), |ct| format!("'{ct}'"))
                ),
            ));
        }
        let bytes = to_bytes(req.into_body(), MAX_JSON_BYTES)
            .await
            .map_err(|e| {
                ApiError::new(
                    axum::http::StatusCode::PAYLOAD_TOO_LARGE,
                    "body_too_large",
                    format!("cannot read the body (at most {MAX_JSON_BYTES} bytes of JSON): {e}"),
                )
            })?;
        let value: Value = serde_json::from_slice(&bytes).map_err(|e| {
            ApiError::bad_request("malformed_json", format!("the body is not valid JSON: {e}"))
        })?;
        if !value.is_object() {
            return Err(ApiError::bad_request(
                "malformed_json",
                format!("the body must be a JSON object, got {}", kind(&value)),
            ));
        }
        Ok(JsonObject(value))
    }
}

/// One path segment (e.g. `{product_id}`), with a 400 instead of axum's plain-text rejection.
pub struct PathParam(pub String);

impl<S: Send + Sync> FromRequestParts<S> for PathParam {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Path::<String>::from_request_parts(parts, state)
            .await
            .map(|Path(p)| PathParam(p))
            .map_err(|e| ApiError::bad_request("invalid_path", format!("bad path parameter: {e}")))
    }
}

/// The fields of a JSON object, read with checks whose errors name the field.
pub struct Fields<'a>(pub &'a Map<String, Value>);

impl<'a> Fields<'a> {
    /// The fields of `value`, which [`JsonObject`] guarantees to be an object.
    pub fn of(value: &'a Value) -> Result<Self, ApiError> {
        value.as_object().map(Fields).ok_or_else(|| {
            ApiError::bad_request(
                "malformed_json",
                format!("the body must be a JSON object, got {}", kind(value)),
            )
        })
    }

    fn present(&self, name: &str) -> Option<&'a Value> {
        self.0.get(name).filter(|v| !v.is_null())
    }

    fn required(&self, name: &str, what: &str) -> Result<&'a Value, ApiError> {
        self.0.get(name).ok_or_else(|| {
            ApiError::bad_request("missing_field", format!("missing field `{name}` ({what})"))
        })
    }

    /// A required string of `min..=max` characters.
    pub fn string(&self, name: &str, min: usize, max: usize) -> Result<&'a str, ApiError> {
        let what = format!("a string of {min} to {max} characters");
        check_string(name, self.required(name, &what)?, min, max)
    }

    /// An optional (absent or null) string of at most `max` characters.
    pub fn optional_string(&self, name: &str, max: usize) -> Result<Option<&'a str>, ApiError> {
        self.present(name)
            .map(|v| check_string(name, v, 0, max))
            .transpose()
    }

    /// A required integer of at least `min`.
    pub fn integer(&self, name: &str, min: i64) -> Result<i64, ApiError> {
        check_integer(
            name,
            self.required(name, &format!("an integer ≥ {min}"))?,
            min,
        )
    }

    /// An optional (absent or null) integer of at least `min`.
    pub fn optional_integer(&self, name: &str, min: i64) -> Result<Option<i64>, ApiError> {
        self.present(name)
            .map(|v| check_integer(name, v, min))
            .transpose()
    }

    /// An optional boolean; absent means `false`.
    pub fn flag(&self, name: &str) -> Result<bool, ApiError> {
        match self.0.get(name) {
            None => Ok(false),
            Some(Value::Bool(b)) => Ok(*b),
            Some(v) => Err(invalid(name, "must be true or false", v)),
        }
    }

    /// A required ISO 4217 code: three capital letters.
    pub fn currency(&self, name: &str) -> Result<&'a str, ApiError> {
        const RULE: &str = "a 3-letter ISO 4217 code in capitals, like \"CNY\"";
        let value = self.required(name, RULE)?;
        match value.as_str() {
            Some(s) if s.len() == 3 && s.bytes().all(|b| b.is_ascii_uppercase()) => Ok(s),
            _ => Err(invalid(name, &format!("must be {RULE}"), value)),
        }
    }

    /// A required RFC 3339 date-time, returned as sent.
    pub fn timestamp(&self, name: &str) -> Result<&'a str, ApiError> {
        let value = self.required(name, "an RFC 3339 date-time")?;
        match value.as_str() {
            Some(s) if OffsetDateTime::parse(s, &Rfc3339).is_ok() => Ok(s),
            _ => Err(invalid(
                name,
                "must be an RFC 3339 date-time like \"2025-05-01T08:30:00Z\"",
                value,
            )),
        }
    }

    /// A required string naming one of `options`; the value it names.
    pub fn choice<T: Copy>(&self, name: &str, options: &[(&str, T)]) -> Result<T, ApiError> {
        let names: Vec<&str> = options.iter().map(|(n, _)| *n).collect();
        let what = format!("one of {}", names.join(", "));
        let value = self.required(name, &what)?;
        value
            .as_str()
            .and_then(|s| options.iter().find(|(n, _)| *n == s))
            .map(|(_, v)| *v)
            .ok_or_else(|| invalid(name, &format!("must be {what}"), value))
    }

    /// An optional (absent or null) array of strings.
    pub fn optional_strings(&self, name: &str) -> Result<Option<Vec<&'a str>>, ApiError> {
        let Some(value) = self.present(name) else {
            return Ok(None);
        };
        value
            .as_array()
            .and_then(|items| items.iter().map(Value::as_str).collect::<Option<Vec<_>>>())
            .map(Some)
            .ok_or_else(|| invalid(name, "must be an array of strings", value))
    }
}

fn check_string<'a>(name: &str, v: &'a Value, min: usize, max: usize) -> Result<&'a str, ApiError> {
    let rule = format!("must be a string of {min} to {max} characters");
    let s = v.as_str().ok_or_else(|| invalid(name, &rule, v))?;
    let len = s.chars().count();
    if len < min || len > max {
        return Err(ApiError::bad_request(
            "invalid_field",
            format!("field `{name}` {rule}, got {len}"),
        ));
    }
    Ok(s)
}

fn check_integer(name: &str, v: &Value, min: i64) -> Result<i64, ApiError> {
    match v.as_i64() {
        Some(n) if n >= min => Ok(n),
        _ => Err(invalid(name, &format!("must be an integer ≥ {min}"), v)),
    }
}

/// 400 `invalid_field`: "field `name` RULE, got VALUE".
fn invalid(name: &str, rule: &str, got: &Value) -> ApiError {
    let shown = match got {
        Value::Number(_) | Value::Bool(_) => got.to_string(),
        Value::String(s) if s.chars().count() <= 40 => format!("\"{s}\""),
        _ => kind(got).to_owned(),
    };
    ApiError::bad_request(
        "invalid_field",
        format!("field `{name}` {rule}, got {shown}"),
    )
}

/// How a JSON value's type reads in a message.
fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fields(v: &Value) -> Fields<'_> {
        Fields::of(v).unwrap()
    }

    #[test]
    fn errors_name_the_field_and_what_was_wrong() {
        let v = json!({"quantity": -2, "price": "12", "currency": "cny", "at": "yesterday"});
        let f = fields(&v);
        let e = f.integer("quantity", 1).unwrap_err();
        assert_eq!(e.code, "invalid_field");
        assert!(
            e.message.contains("`quantity`") && e.message.contains("-2"),
            "{}",
            e.message
        );
        let e = f.integer("price", 0).unwrap_err();
        assert!(e.message.contains("\"12\""), "{}", e.message);
        let e = f.currency("currency").unwrap_err();
        assert!(e.message.contains("ISO 4217"), "{}", e.message);
        let e = f.timestamp("at").unwrap_err();
        assert!(e.message.contains("RFC 3339"), "{}", e.message);
        let e = f.string("title", 1, 200).unwrap_err();
        assert_eq!(e.code, "missing_field");
        assert!(e.message.contains("`title`"), "{}", e.message);
    }

    #[test]
    fn integers_reject_fractions_and_overflow() {
        let v = json!({"a": 1.5, "b": 2.0, "c": 18446744073709551615u64, "d": 7});
        let f = fields(&v);
        assert!(f.integer("a", 0).is_err());
        assert!(f.integer("b", 0).is_err());
        assert!(f.integer("c", 0).is_err());
        assert_eq!(f.integer("d", 0).unwrap(), 7);
    }

    #[test]
    fn optional_fields_accept_absence_and_null() {
        let v = json!({"buyer": null, "allow": true});
        let f = fields(&v);
        assert_eq!(f.optional_string("buyer", 200).unwrap(), None);
        assert_eq!(f.optional_string("missing", 200).unwrap(), None);
        assert!(f.flag("allow").unwrap());
        assert!(!f.flag("missing").unwrap());
        assert_eq!(f.currency("nope").unwrap_err().code, "missing_field");
    }
}
