//! Each way an ingest can fail a publisher before the stream is on air is its own typed error:
//! nothing listening, a server that is not RTMP, a server that never answers, a rejected key.

use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, Shutdown, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use fieldcast_core::{Error, IngestCause, LiveSession, SessionConfig, SessionState, StreamProfile};
use fieldcast_sandbox::ingest::free_port;
use fieldcast_tests::*;

/// How long the uplink gives an ingest to accept a new connection (TCP, the RTMP handshake,
/// `connect` and `publish`: `CONNECT_TIMEOUT` of the uplink's supervisor), plus time to start the
/// pipeline and report.
const SILENT_SERVER_LIMIT: Duration = Duration::from_secs(15 + 5);

fn config(url: String) -> SessionConfig {
    SessionConfig::builder(url)
        .profile(StreamProfile::P270)
        .build()
        .unwrap()
}

/// Starts a session and returns the error that fails it and how long that took, within `limit`.
fn fails_with(url: String, limit: Duration) -> (Error, Duration) {
    let session = LiveSession::new(config(url)).unwrap();
    let started = Instant::now();
    session.start().unwrap();
    let result = session.wait(Some(limit));
    let took = started.elapsed();
    assert_eq!(
        session.state(),
        SessionState::Failed,
        "no failure within {limit:?}: {result:?}"
    );
    let err = result.unwrap_err();
    eprintln!("failed after {took:?}: {err}");
    (err, took)
}

/// The cause an `IngestUnreachable` error carries; panics on any other error.
fn unreachable_cause(err: &Error) -> IngestCause {
    match err {
        Error::IngestUnreachable { cause, .. } => *cause,
        other => panic!("expected IngestUnreachable, got {other:?}"),
    }
}

/// A TCP server on a free loopback port that hands every connection to `serve`; connections
/// `serve` returns are held open until the server is dropped.
struct FakeServer {
    port: u16,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl FakeServer {
    fn start(serve: impl Fn(TcpStream) -> Option<TcpStream> + Send + 'static) -> FakeServer {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut held = Vec::new();
            while !stopping.load(Ordering::Acquire) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        stream.set_nonblocking(false).unwrap();
                        held.extend(serve(stream));
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(20));
                    }
                    Err(e) => panic!("accept: {e}"),
                }
            }
        });
        FakeServer {
            port,
            stop,
            thread: Some(thread),
        }
    }

    fn url(&self) -> String {
        format!("rtmp://127.0.0.1:{}/live/k", self.port)
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Reads what the client sends until it waits for an answer (a short silence) or `max` bytes.
fn read_some(stream: &mut TcpStream, max: usize) -> usize {
    stream
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut buf = [0u8; 4096];
    let mut total = 0;
    while total < max {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => total += n,
        }
    }
    total
}

#[test]
fn nothing_listening_is_refused() {
    let url = format!("rtmp://127.0.0.1:{}/live/k", free_port().unwrap());
    let (err, took) = fails_with(url, Duration::from_secs(10));
    assert_eq!(unreachable_cause(&err), IngestCause::Refused, "{err}");
    assert!(took < Duration::from_secs(5), "{took:?}");
}

#[test]
fn a_server_that_is_not_rtmp_fails_the_handshake() {
    let server = FakeServer::start(|mut stream| {
        // C0 and C1 of the RTMP handshake: 1 + 1536 bytes.
        read_some(&mut stream, 1537);
        let _ = stream.write_all(
            b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        );
        let _ = stream.shutdown(Shutdown::Write);
        // Closing with unread bytes would reset the connection instead of closing it.
        read_some(&mut stream, usize::MAX);
        None
    });
    let (err, took) = fails_with(server.url(), Duration::from_secs(10));
    assert_eq!(unreachable_cause(&err), IngestCause::Handshake, "{err}");
    assert!(took < Duration::from_secs(5), "{took:?}");
}

#[test]
fn a_server_that_never_answers_fails_in_bounded_time() {
    let server = FakeServer::start(Some);
    let (err, took) = fails_with(server.url(), SILENT_SERVER_LIMIT);
    // The connection was made: the server did not complete the RTMP handshake in time.
    let cause = unreachable_cause(&err);
    eprintln!("a silent server gives {cause:?} after {took:?}");
    assert_eq!(cause, IngestCause::Handshake, "{err}");
}

#[test]
fn a_rejected_stream_key_is_rejected_and_the_accepted_one_goes_live() {
    let ingest = LocalIngest::start_with_key_check("goodkey")
        .unwrap_or_else(|e| panic!("local ingest: {e}"));
    let (err, took) = fails_with(ingest.url("wrongkey"), Duration::from_secs(10));
    assert!(
        matches!(
            err,
            Error::IngestRejected {
                cause: IngestCause::Rejected,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(took < Duration::from_secs(5), "{took:?}");
    assert!(
        !err.to_string().contains("wrongkey"),
        "the error shows the stream key: {err}"
    );
    assert_eq!(ingest.checked_keys(), ["wrongkey"]);

    let (session, _events) = start_live(config(ingest.url("goodkey")));
    std::thread::sleep(Duration::from_secs(2));
    session.stop();
    assert_eq!(
        session.wait(Some(Duration::from_secs(15))).unwrap(),
        SessionState::Ended
    );
    assert_eq!(ingest.checked_keys(), ["wrongkey", "goodkey"]);
    let r = report(&ingest.recording("goodkey"));
    assert_eq!(r.stream("video").expect("video stream").codec, "h264");
    assert_eq!(r.stream("audio").expect("audio stream").codec, "aac");
    assert!(r.duration_secs > 1.5, "{r}");
}
