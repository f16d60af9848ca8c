//! Where the stream goes: the ingest URL parsed into a typed target.
//!
//! The stream key (an RTMP URL's last path segment and its query) and SRT's `streamid` and
//! `passphrase` are secrets: whatever is shown to people (logs, errors, events, `Debug`) uses
//! [`IngestTarget::redacted`], and only the code that connects reads the full URL.

use std::fmt;

use crate::error::{Error, Result};

/// What stands in for a secret in a redacted URL.
const MASK: &str = "***";

/// SRT query parameters whose values are shown in the redacted form: the connection mode and the
/// latency are tuning, useful when diagnosing and secret to no one. Every other value (notably
/// `streamid` and `passphrase`, and any parameter not listed here) is masked.
const SRT_VISIBLE_PARAMS: [&str; 2] = ["mode", "latency"];

/// A parsed ingest endpoint. Its `Debug` shows the [redacted](IngestTarget::redacted) URL.
#[derive(Clone, PartialEq, Eq)]
pub enum IngestTarget {
    /// RTMP or RTMPS (FLV); `url` is `scheme://host[:port]/app/stream`, in full
    /// (stream key included): for the code that connects only.
    Rtmp { url: String, secure: bool },
    /// SRT in caller mode (MPEG-TS over srtsink); `uri` keeps the query parameters in full
    /// (`streamid`, `passphrase`): for the code that connects only.
    Srt { uri: String },
}

impl IngestTarget {
    /// Parses and checks an ingest URL.
    pub fn parse(raw: &str) -> Result<Self> {
        let bad = |reason: &str| Error::InvalidUrl {
            url: redact_url(raw),
            reason: reason.to_string(),
        };
        let url = url::Url::parse(raw.trim()).map_err(|e| bad(&e.to_string()))?;
        let host = url.host_str().filter(|h| !h.is_empty());
        match url.scheme() {
            scheme @ ("rtmp" | "rtmps") => {
                host.ok_or_else(|| bad("it has no host"))?;
                let parts: Vec<&str> = url.path().split('/').filter(|p| !p.is_empty()).collect();
                if parts.len() < 2 {
                    return Err(bad(
                        "RTMP needs an application and a stream key: rtmp://host/app/key",
                    ));
                }
                Ok(IngestTarget::Rtmp {
                    url: raw.trim().to_string(),
                    secure: scheme == "rtmps",
                })
            }
            "srt" => {
                host.ok_or_else(|| bad("it has no host"))?;
                url.port()
                    .ok_or_else(|| bad("SRT needs a port: srt://host:port"))?;
                let mut uri = url.clone();
                let has_mode = url.query_pairs().any(|(k, _)| k == "mode");
                if !has_mode {
                    uri.query_pairs_mut().append_pair("mode", "caller");
                }
                Ok(IngestTarget::Srt {
                    uri: uri.to_string(),
                })
            }
            other => Err(Error::UnsupportedScheme {
                scheme: other.to_string(),
            }),
        }
    }

    /// The TCP port an RTMP(S) connection goes to (1935 or 443 unless given); none for SRT.
    pub fn tcp_port(&self) -> Option<u16> {
        match self {
            IngestTarget::Rtmp { url, secure } => {
                let default = if *secure { 443 } else { 1935 };
                url::Url::parse(url)
                    .ok()
                    .map(|u| u.port().unwrap_or(default))
            }
            IngestTarget::Srt { .. } => None,
        }
    }

    /// The one form of the URL shown to people (logs, errors, events): no stream key, no
    /// credentials.
    ///
    /// - RTMP(S): `rtmp[s]://host[:port]/app/***`: the user info is dropped, the path's last
    ///   segment (the stream key) becomes `***`, and a query, if any, becomes `?***`.
    /// - SRT: `srt://host:port?mode=caller&latency=200&streamid=***&passphrase=***`: the scheme,
    ///   host and port stay, every query parameter keeps its name, and every value is `***`
    ///   except those of `mode` and `latency` (tuning, secret to no one); a parameter without a
    ///   value is `***` as a whole.
    pub fn redacted(&self) -> String {
        match self {
            IngestTarget::Rtmp { url, .. } => redact_url(url),
            IngestTarget::Srt { uri } => redact_url(uri),
        }
    }
}

impl fmt::Debug for IngestTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IngestTarget::Rtmp { secure, .. } => f
                .debug_struct("Rtmp")
                .field("url", &self.redacted())
                .field("secure", secure)
                .finish(),
            IngestTarget::Srt { .. } => f
                .debug_struct("Srt")
                .field("uri", &self.redacted())
                .finish(),
        }
    }
}

/// An ingest URL as given, not parsed yet; its `Debug` shows the [redacted](redact_url) form.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct RawIngestUrl(pub(crate) String);

impl fmt::Debug for RawIngestUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&redact_url(&self.0), f)
    }
}

/// The redacted form of any ingest URL as text, valid or not (see [`IngestTarget::redacted`] for
/// the forms). A URL that cannot be parsed keeps only its scheme and host (`scheme://host[:port]`,
/// then `/***` when more followed); text without `://` becomes `***` as a whole.
pub fn redact_url(raw: &str) -> String {
    let raw = raw.trim();
    match url::Url::parse(raw) {
        Ok(url) if url.has_host() => redact_parsed(&url),
        _ => redact_unparsed(raw),
    }
}

fn redact_parsed(url: &url::Url) -> String {
    let scheme = url.scheme();
    let mut out = format!("{scheme}://{}", url.host_str().unwrap_or_default());
    if let Some(port) = url.port() {
        out.push_str(&format!(":{port}"));
    }
    let segments: Vec<&str> = url.path().split('/').filter(|s| !s.is_empty()).collect();
    if let Some((_key, app)) = segments.split_last() {
        if scheme != "srt" {
            for segment in app {
                out.push('/');
                out.push_str(segment);
            }
        }
        out.push('/');
        out.push_str(MASK);
    }
    if let Some(query) = url.query().filter(|q| !q.is_empty()) {
        out.push('?');
        if scheme == "srt" {
            let params: Vec<String> = query
                .split('&')
                .filter(|p| !p.is_empty())
                .map(|param| match param.split_once('=') {
                    Some((name, value)) if SRT_VISIBLE_PARAMS.contains(&name) => {
                        format!("{name}={value}")
                    }
                    Some((name, _)) => format!("{name}={MASK}"),
                    None => MASK.to_string(),
                })
                .collect();
            out.push_str(&params.join("&"));
        } else {
            out.push_str(MASK);
        }
    }
    if url.fragment().is_some_and(|f| !f.is_empty()) {
        out.push('#');
        out.push_str(MASK);
    }
    out
}

/// True for `host`, `host:port`, `[v6]` or `[v6]:port` with a plain host name or address and a
/// numeric port: nothing else is kept from a URL that cannot be parsed.
fn plain_host_and_port(authority: &str) -> bool {
    let (host_ok, port) = match authority.strip_prefix('[') {
        Some(v6) => match v6.split_once(']') {
            Some((address, port)) => (
                address
                    .chars()
                    .all(|c| c.is_ascii_hexdigit() || ":.".contains(c)),
                port,
            ),
            None => return false,
        },
        None => {
            let (host, port) = authority.split_at(authority.find(':').unwrap_or(authority.len()));
            (
                host.chars()
                    .all(|c| c.is_ascii_alphanumeric() || ".-_".contains(c)),
                port,
            )
        }
    };
    host_ok
        && (port.is_empty()
            || port
                .strip_prefix(':')
                .is_some_and(|digits| digits.chars().all(|c| c.is_ascii_digit())))
}

fn redact_unparsed(raw: &str) -> String {
    let Some((scheme, rest)) = raw.split_once("://") else {
        return if raw.is_empty() {
            String::new()
        } else {
            MASK.to_string()
        };
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..end];
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    let scheme_ok = !scheme.is_empty()
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
    if !scheme_ok || !plain_host_and_port(host) {
        return MASK.to_string();
    }
    let mut out = format!("{scheme}://{host}");
    if end < rest.len() {
        out.push('/');
        out.push_str(MASK);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rtmp_urls_need_app_and_key() {
        assert_eq!(
            IngestTarget::parse("rtmp://127.0.0.1:1935/live/key").unwrap(),
            IngestTarget::Rtmp {
                url: "rtmp://127.0.0.1:1935/live/key".into(),
                secure: false
            }
        );
        assert!(matches!(
            IngestTarget::parse("rtmps://ingest.example/app/k"),
            Ok(IngestTarget::Rtmp { secure: true, .. })
        ));
        assert!(matches!(
            IngestTarget::parse("rtmp://host/live"),
            Err(Error::InvalidUrl { .. })
        ));
    }

    #[test]
    fn srt_urls_default_to_caller_mode() {
        let IngestTarget::Srt { uri } =
            IngestTarget::parse("srt://127.0.0.1:9000?latency=200").unwrap()
        else {
            panic!("not srt")
        };
        assert_eq!(uri, "srt://127.0.0.1:9000?latency=200&mode=caller");
        assert!(matches!(
            IngestTarget::parse("srt://127.0.0.1"),
            Err(Error::InvalidUrl { .. })
        ));
    }

    #[test]
    fn garbage_and_other_schemes_are_typed_errors() {
        for raw in ["", "not a url", "rtmp://", "rtmp:///live/key"] {
            assert!(
                matches!(IngestTarget::parse(raw), Err(Error::InvalidUrl { .. })),
                "{raw}"
            );
        }
        assert_eq!(
            IngestTarget::parse("http://example.com/live/key"),
            Err(Error::UnsupportedScheme {
                scheme: "http".into()
            })
        );
    }

    const KEY: &str = "sk_live_7f3a9c0e5d1b";

    fn redacted(raw: &str) -> String {
        IngestTarget::parse(raw).unwrap().redacted()
    }

    #[test]
    fn rtmp_urls_are_redacted_to_host_and_app() {
        assert_eq!(
            redacted(&format!("rtmp://127.0.0.1:1935/live/{KEY}")),
            "rtmp://127.0.0.1:1935/live/***"
        );
        assert_eq!(
            redacted(&format!(
                "rtmps://user:pw@ingest.example/app/{KEY}?auth={KEY}"
            )),
            "rtmps://ingest.example/app/***?***"
        );
        assert_eq!(
            redacted(&format!("  rtmp://ingest.example/app/instance/{KEY}/  ")),
            "rtmp://ingest.example/app/instance/***"
        );
        assert_eq!(
            redacted(&format!("rtmp://[::1]:1935/live/{KEY}#{KEY}")),
            "rtmp://[::1]:1935/live/***#***"
        );
    }

    #[test]
    fn srt_urls_keep_parameter_names_and_mask_their_values() {
        assert_eq!(
            redacted(&format!(
                "srt://ingest.example:9000?streamid=publish:{KEY}&passphrase={KEY}&latency=200"
            )),
            "srt://ingest.example:9000?streamid=***&passphrase=***&latency=200&mode=caller"
        );
        assert_eq!(
            redacted(&format!(
                "srt://u:{KEY}@h:9000/{KEY}?mode=caller&{KEY}&pbkeylen=16"
            )),
            "srt://h:9000/***?mode=caller&***&pbkeylen=***"
        );
        assert_eq!(redacted("srt://h:9000"), "srt://h:9000?mode=caller");
    }

    #[test]
    fn debug_shows_the_redacted_url_only() {
        for raw in [
            format!("rtmps://ingest.example/app/{KEY}?t={KEY}"),
            format!("srt://h:9000?streamid={KEY}&passphrase={KEY}"),
        ] {
            let target = IngestTarget::parse(&raw).unwrap();
            let debug = format!("{target:?} {target:#?}");
            assert!(!debug.contains(KEY), "{debug}");
            assert!(debug.contains(&target.redacted()), "{debug}");
        }
        let raw = RawIngestUrl(format!("rtmp://h/live/{KEY}"));
        assert_eq!(format!("{raw:?}"), "\"rtmp://h/live/***\"");
    }

    #[test]
    fn invalid_urls_carry_no_key() {
        for (raw, shown) in [
            (
                format!("rtmp://ingest.example/{KEY}"),
                "rtmp://ingest.example/***",
            ),
            (
                format!("rtmp://u:{KEY}@h:99999/live/{KEY}"),
                "rtmp://h:99999/***",
            ),
            (format!("rtmp://h:port{KEY}/live/x"), "***"),
            (format!("srt://h?streamid={KEY}"), "srt://h?streamid=***"),
            (format!("rtmp:live/{KEY}"), "***"),
            (format!("not a url {KEY}"), "***"),
            (format!("{KEY} rtmp://h/live/{KEY}"), "***"),
            (String::new(), ""),
        ] {
            let err = IngestTarget::parse(&raw).unwrap_err();
            let Error::InvalidUrl { url, .. } = &err else {
                panic!("{raw}: {err:?}")
            };
            assert_eq!(url, shown, "{raw}");
            let text = format!("{err} {err:?}");
            assert!(!text.contains(KEY), "{text}");
        }
        assert_eq!(
            redact_url(&format!("https://h/v1/{KEY}?k={KEY}")),
            "https://h/v1/***?***"
        );
    }
}
