//! Bad input and failing servers: each gives its typed error or event, never a panic or a hang.

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use fieldcast_core::*;
use fieldcast_sandbox::ingest::free_port;
use fieldcast_tests::*;

fn app_config(url: String) -> SessionConfig {
    SessionConfig::builder(url)
        .profile(StreamProfile::P270)
        .source(Source::App {
            video: AppVideoFormat {
                format: PixelFormat::I420,
                width: 320,
                height: 180,
            },
            audio: None,
        })
        .build()
        .unwrap()
}

/// Pushes `data` as an I420 frame of `width` x `height`, cut into planes where a tightly packed
/// frame of that size would be (a short buffer leaves the later planes short or empty).
fn push(session: &LiveSession, data: &[u8], width: u32, height: u32) -> Result<PushOutcome> {
    let luma = (width * height) as usize;
    let chroma = (width.div_ceil(2) * height.div_ceil(2)) as usize;
    let cut = |at: usize| at.min(data.len());
    let planes = [
        Plane::new(&data[..cut(luma)], width, 1),
        Plane::new(&data[cut(luma)..cut(luma + chroma)], width.div_ceil(2), 1),
        Plane::new(&data[cut(luma + chroma)..], width.div_ceil(2), 1),
    ];
    session.push_video_frame(&VideoFrame {
        format: PixelFormat::I420,
        width,
        height,
        planes: &planes,
        timestamp_us: None,
    })
}

#[test]
fn malformed_frames_are_rejected_and_the_session_goes_on() {
    let ingest = ingest();
    let session = LiveSession::new(app_config(ingest.url("bad"))).unwrap();
    let mut rx = session.subscribe();
    let good = vec![128u8; 320 * 180 * 3 / 2];
    assert!(matches!(
        push(&session, &good, 320, 180),
        Err(Error::InvalidState {
            state: SessionState::Idle,
            ..
        })
    ));
    session.start().unwrap();
    let short = vec![0u8; 1000];
    assert!(matches!(
        push(&session, &short, 320, 180),
        Err(Error::InvalidFrame(FrameError::WrongSize {
            plane: 0,
            min: 57_600,
            actual: 1000,
            ..
        }))
    ));
    for (w, h) in [(0, 180), (100_000, 180), (321, 180)] {
        assert!(
            matches!(push(&session, &good, w, h), Err(Error::InvalidFrame(_))),
            "{w}x{h}"
        );
    }
    let other = vec![0u8; 640 * 360 * 3 / 2];
    assert!(matches!(
        push(&session, &other, 640, 360),
        Err(Error::InvalidFrame(FrameError::Mismatch { .. }))
    ));
    assert!(matches!(
        session.push_audio(&[0u8; 64], None),
        Err(Error::InvalidFrame(FrameError::NotAppSource(_)))
    ));
    for i in 0..45u64 {
        push(&session, &good, 320, 180).unwrap();
        std::thread::sleep(Duration::from_millis(33));
        if i == 0 {
            assert!(
                wait_state(&mut rx, SessionState::Live, Duration::from_secs(10))
                    || session.state() == SessionState::Live
            );
        }
    }
    assert_eq!(session.state(), SessionState::Live);
    session.stop();
    assert_eq!(
        session.wait(Some(Duration::from_secs(15))).unwrap(),
        SessionState::Ended
    );
}

#[test]
fn a_full_app_queue_drops_instead_of_blocking() {
    let ingest = ingest();
    let session = LiveSession::new(app_config(ingest.url("flood"))).unwrap();
    session.start().unwrap();
    let good = vec![90u8; 320 * 180 * 3 / 2];
    let started = Instant::now();
    let outcomes: Vec<PushOutcome> = (0..300)
        .map(|_| push(&session, &good, 320, 180).unwrap())
        .collect();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "pushing blocked for {:?}",
        started.elapsed()
    );
    assert!(outcomes.contains(&PushOutcome::Dropped));
    std::thread::sleep(Duration::from_millis(1200));
    assert!(session.stats().dropped_frames > 0);
    session.stop();
    session.wait(Some(Duration::from_secs(15))).unwrap();
}

#[test]
fn media_cannot_be_pushed_into_a_test_source_session() {
    let config = SessionConfig::builder("rtmp://127.0.0.1:1/live/k")
        .build()
        .unwrap();
    let session = LiveSession::new(config).unwrap();
    session.start().unwrap();
    let data = vec![0u8; 6];
    let err = push(&session, &data, 2, 2).unwrap_err();
    assert!(
        matches!(err, Error::InvalidFrame(FrameError::NotAppSource(_))),
        "{err}"
    );
}

#[test]
fn bad_and_unsupported_urls_are_typed_errors() {
    for url in [
        "",
        "::::",
        "rtmp://",
        "rtmp://127.0.0.1/live",
        "srt://127.0.0.1",
    ] {
        let err = SessionConfig::builder(url).build().unwrap_err();
        assert!(matches!(err, Error::InvalidUrl { .. }), "{url}: {err}");
    }
    for url in [
        "http://127.0.0.1/live/k",
        "whip://127.0.0.1/k",
        "file:///tmp/x",
    ] {
        let err = SessionConfig::builder(url).build().unwrap_err();
        assert!(
            matches!(err, Error::UnsupportedScheme { .. }),
            "{url}: {err}"
        );
    }
}

#[test]
fn an_unusable_y4m_header_is_a_typed_error_saying_why() {
    let dir = tempfile::tempdir().unwrap();
    for (header, says) in [
        ("YUV4MPEG2 W854 H480 F30:1 It\n", "interlaced"),
        ("YUV4MPEG2 W854 F30:1\n", "height"),
        ("YUV4MPEG2 W854 H480 F30:1 C420p10\n", "C420p10"),
        ("YUV4MPEG2 W854 H480", "no end"),
    ] {
        let path = dir.path().join("bad.y4m");
        std::fs::write(&path, header).unwrap();
        let config = SessionConfig::builder("rtmp://127.0.0.1:1/live/k")
            .source(Source::File(path))
            .build()
            .unwrap();
        let err = LiveSession::new(config).err().expect("an unusable header");
        assert!(
            matches!(&err, Error::SourceUnavailable(m) if m.contains(says) && m.contains("bad.y4m")),
            "{header:?}: {err}"
        );
    }
}

#[test]
fn a_missing_camera_is_a_typed_error() {
    let config = SessionConfig::builder("rtmp://127.0.0.1:1/live/k")
        .source(Source::Camera {
            device: Some("/dev/video-does-not-exist".into()),
        })
        .build()
        .unwrap();
    let err = LiveSession::new(config).err().expect("no camera there");
    assert!(matches!(err, Error::SourceUnavailable(_)), "{err}");
}

/// Starts a session and returns the error that fails it, within `limit`.
fn fails_with(url: String, limit: Duration) -> (Error, Duration) {
    let config = SessionConfig::builder(url)
        .profile(StreamProfile::P270)
        .build()
        .unwrap();
    let session = LiveSession::new(config).unwrap();
    let started = Instant::now();
    session.start().unwrap();
    let result = session.wait(Some(limit));
    assert_eq!(
        session.state(),
        SessionState::Failed,
        "no failure within {limit:?}: {result:?}"
    );
    (result.unwrap_err(), started.elapsed())
}

#[test]
fn an_ingest_that_refuses_the_connection_fails_fast() {
    let url = format!("rtmp://127.0.0.1:{}/live/k", free_port().unwrap());
    let (err, took) = fails_with(url, Duration::from_secs(10));
    assert!(matches!(err, Error::IngestUnreachable { .. }), "{err}");
    assert!(took < Duration::from_secs(5), "{took:?}");
}

#[test]
fn an_srt_listener_that_is_not_there_fails_in_bounded_time() {
    let port = UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (err, _) = fails_with(format!("srt://127.0.0.1:{port}"), Duration::from_secs(15));
    assert!(matches!(err, Error::IngestUnreachable { .. }), "{err}");
}
