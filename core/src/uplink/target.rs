//! Where the stream goes: the ingest URL parsed into a typed target.

use crate::error::{Error, Result};

/// A parsed ingest endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IngestTarget {
    /// RTMP or RTMPS (FLV over rtmp2sink); `url` is `scheme://host[:port]/app/stream`.
    Rtmp { url: String, secure: bool },
    /// SRT in caller mode (MPEG-TS over srtsink); `uri` keeps the query parameters.
    Srt { uri: String },
}

impl IngestTarget {
    /// Parses and checks an ingest URL.
    pub fn parse(raw: &str) -> Result<Self> {
        let bad = |reason: &str| Error::InvalidUrl {
            url: raw.to_string(),
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

    /// The URL as given, for messages.
    pub fn display_url(&self) -> &str {
        match self {
            IngestTarget::Rtmp { url, .. } => url,
            IngestTarget::Srt { uri } => uri,
        }
    }
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
}
