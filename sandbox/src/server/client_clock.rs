//! How far off the client's clock is, from the `Date` header it sends with a request (RFC 9110
//! section 6.6.1): a phone whose clock is days off still syncs, and the platform keeps the times
//! the phone reported together with the skew it saw, instead of refusing or rewriting them.

use std::convert::Infallible;

use axum::extract::FromRequestParts;
use axum::http::header::DATE;
use axum::http::request::Parts;
use time::format_description::BorrowedFormatItem;
use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime};

/// An HTTP date as senders must write it (IMF-fixdate): `Sun, 06 Nov 1994 08:49:37 GMT`.
const IMF_FIXDATE: &[BorrowedFormatItem<'_>] = format_description!(
    "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
);

/// The client's clock minus the sandbox's when the request arrived, in milliseconds (negative: the
/// client is behind); `None` without a readable `Date` header. The header has whole seconds, so a
/// correct clock shows between about -1000 and 0.
pub struct ClockSkew(pub Option<i64>);

impl<S: Send + Sync> FromRequestParts<S> for ClockSkew {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Infallible> {
        let received = OffsetDateTime::now_utc();
        let client = parts
            .headers
            .get(DATE)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_http_date);
        Ok(ClockSkew(client.map(|c| skew_ms(c, received))))
    }
}

/// An IMF-fixdate as a UTC time.
fn parse_http_date(value: &str) -> Option<OffsetDateTime> {
    PrimitiveDateTime::parse(value.trim(), IMF_FIXDATE)
        .ok()
        .map(PrimitiveDateTime::assume_utc)
}

/// `client - received` in whole milliseconds.
fn skew_ms(client: OffsetDateTime, received: OffsetDateTime) -> i64 {
    let millis = (client - received).whole_milliseconds();
    millis.clamp(i64::MIN.into(), i64::MAX.into()) as i64
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn imf_fixdates_are_read_as_utc() {
        assert_eq!(
            parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(datetime!(1994-11-06 08:49:37 UTC))
        );
        assert_eq!(
            parse_http_date(" Fri, 02 Jan 2026 03:04:05 GMT "),
            Some(datetime!(2026-01-02 03:04:05 UTC))
        );
        for unreadable in [
            "Sunday, 06-Nov-94 08:49:37 GMT",
            "Sun Nov  6 08:49:37 1994",
            "2026-01-02T03:04:05Z",
            "Sun, 06 Nov 1994 08:49:37 +0200",
            "",
        ] {
            assert_eq!(parse_http_date(unreadable), None, "{unreadable}");
        }
    }

    #[test]
    fn a_clock_behind_has_a_negative_skew() {
        let received = datetime!(2026-03-04 12:00:00.250 UTC);
        let three_days = 3 * 24 * 3600 * 1000;
        assert_eq!(
            skew_ms(datetime!(2026-03-01 12:00:00 UTC), received),
            -three_days - 250
        );
        assert_eq!(
            skew_ms(datetime!(2026-03-07 12:00:01 UTC), received),
            three_days + 750
        );
    }
}
