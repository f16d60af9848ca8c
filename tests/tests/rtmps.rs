//! Going live over RTMPS: TLS (stunnel with a private test CA) in front of a real nginx-rtmp,
//! and each TLS failure as its own typed error.

use std::time::{Duration, Instant};

use fieldcast_core::{
    Error, IngestCause, LiveSession, SessionConfig, SessionState, StreamProfile, TlsFailure,
};
use fieldcast_tests::tls_front::{TestCa, TlsFront, session_config};
use fieldcast_tests::*;

/// How long a session may take to fail on a TLS error: TLS fails in the first round trips.
const TLS_FAILURE_LIMIT: Duration = Duration::from_secs(10);

/// Starts a session and returns the error that fails it, within `limit`.
fn fails_with(config: SessionConfig, limit: Duration) -> Error {
    let session = LiveSession::new(config).unwrap();
    let started = Instant::now();
    session.start().unwrap();
    let result = session.wait(Some(limit));
    assert_eq!(
        session.state(),
        SessionState::Failed,
        "no failure within {limit:?}: {result:?}"
    );
    let err = result.unwrap_err();
    eprintln!("failed after {:?}: {err}", started.elapsed());
    err
}

/// The TLS failure an `IngestUnreachable` error carries; panics on any other error.
fn tls_failure(err: &Error) -> TlsFailure {
    match err {
        Error::IngestUnreachable {
            cause: IngestCause::Tls(failure),
            ..
        } => *failure,
        other => panic!("expected IngestUnreachable with a TLS cause, got {other:?}"),
    }
}

#[test]
fn publishes_h264_and_aac_over_rtmps_with_a_private_ca() {
    let ingest = ingest();
    let ca = TestCa::new();
    let front = TlsFront::start(&ca, ingest.port());
    let key = "tls";
    let url = format!("rtmps://localhost:{}/live/{key}", front.port);
    let stats = run_live(session_config(url, Some(ca.ca_pem())), 4.0);
    assert_eq!(stats.dropped_frames, 0);
    assert!(stats.bytes_sent > 50_000, "{stats:?}");
    let r = report(&ingest.recording(key));
    let video = r.stream("video").expect("video stream");
    let audio = r.stream("audio").expect("audio stream");
    assert_eq!(video.codec, "h264");
    assert_eq!(audio.codec, "aac");
    assert_eq!(video.size, Some(StreamProfile::P270.size()));
    assert!(r.duration_secs > 3.5, "{r}");
    assert_frame_count(video.frames, r.duration_secs, 30.0, 0.02);
}

#[test]
fn a_certificate_for_another_name_is_a_name_mismatch() {
    let ingest = ingest();
    let ca = TestCa::new();
    let front = TlsFront::start(&ca, ingest.port());
    // The certificate is for `localhost` only, not for the address.
    let url = format!("rtmps://127.0.0.1:{}/live/k", front.port);
    let err = fails_with(session_config(url, Some(ca.ca_pem())), TLS_FAILURE_LIMIT);
    assert_eq!(tls_failure(&err), TlsFailure::NameMismatch, "{err}");
}

#[test]
fn a_certificate_from_an_untrusted_ca_is_an_unknown_issuer() {
    let ingest = ingest();
    let ca = TestCa::new();
    let front = TlsFront::start(&ca, ingest.port());
    let url = format!("rtmps://localhost:{}/live/k", front.port);
    for (what, extra_ca) in [
        ("only the system roots", None),
        ("an unrelated CA", Some(TestCa::unrelated_ca_pem())),
    ] {
        let err = fails_with(session_config(url.clone(), extra_ca), TLS_FAILURE_LIMIT);
        assert_eq!(
            tls_failure(&err),
            TlsFailure::UnknownIssuer,
            "trusting {what}: {err}"
        );
    }
    assert!(
        !ingest.recording("k").exists(),
        "nothing may reach the ingest past a failed TLS handshake"
    );
}
