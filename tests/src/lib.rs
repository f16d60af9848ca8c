//! Helpers shared by the end-to-end tests: the local ingest, running a session, reading media back,
//! a headless browser, a relay that can cut a publisher off, a filesystem that can cut the power,
//! and the pieces of the long soak run.

pub mod browser;
pub mod powerfs;
pub mod relay;
pub mod soak;
pub mod tls_front;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use fieldcast_core::{
    Catalog, Error, LiveSession, LiveStats, Pins, Product, SessionConfig, SessionEvent,
    SessionState, Store,
};
pub use fieldcast_sandbox::{LocalIngest, MediaReport};
use tokio::sync::broadcast::{Receiver, error::TryRecvError};

/// A product of the local catalog for tests: `ID (test)`, 15.00 CNY a box, 10 in stock.
pub fn test_product(id: &str) -> Product {
    Product {
        id: id.into(),
        title: format!("{id} (test)"),
        price_minor: 1500,
        currency: "CNY".into(),
        unit: "box".into(),
        stock: 10,
        image_path: None,
    }
}

/// A phone's store in `dir` with the [`test_product`]s `ids` in its catalog, and its pins.
pub fn test_shop(dir: &Path, ids: &[&str]) -> (Store, Pins) {
    let store = Store::open(dir.join("fieldcast.db")).expect("the store opens");
    let catalog = Catalog::new(store.clone());
    for id in ids {
        catalog
            .upsert(&test_product(id))
            .expect("the product is stored");
    }
    let pins = Pins::new(store.clone());
    (store, pins)
}

/// Puts the sandbox's seed catalog ([`fieldcast_sandbox::SEED_CATALOG`]) into `store`'s catalog,
/// with `stock` of each, so that sales of it sync at the platform's prices.
pub fn seed_catalog(store: &Store, stock: i64) {
    let catalog = Catalog::new(store.clone());
    for (id, title, price_minor, unit, _) in fieldcast_sandbox::SEED_CATALOG {
        catalog
            .upsert(&Product {
                id: id.into(),
                title: title.into(),
                price_minor,
                currency: "CNY".into(),
                unit: unit.into(),
                stock,
                image_path: None,
            })
            .expect("the product is stored");
    }
}

/// Starts a local nginx-rtmp ingest, panicking with its log if it cannot.
pub fn ingest() -> LocalIngest {
    LocalIngest::start().unwrap_or_else(|e| panic!("local ingest: {e}"))
}

/// Waits up to `timeout` for an event matching `pred`; returns it, or `None` on timeout.
pub fn wait_event(
    rx: &mut Receiver<SessionEvent>,
    timeout: Duration,
    mut pred: impl FnMut(&SessionEvent) -> bool,
) -> Option<SessionEvent> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        match rx.try_recv() {
            Ok(ev) if pred(&ev) => return Some(ev),
            Ok(_) | Err(TryRecvError::Lagged(_)) => {}
            Err(TryRecvError::Empty) => std::thread::sleep(Duration::from_millis(20)),
            Err(TryRecvError::Closed) => return None,
        }
    }
    None
}

/// True once the session reports `state` within `timeout`.
pub fn wait_state(rx: &mut Receiver<SessionEvent>, state: SessionState, timeout: Duration) -> bool {
    wait_event(
        rx,
        timeout,
        |e| matches!(e, SessionEvent::StateChanged { to, .. } if *to == state),
    )
    .is_some()
}

/// The first error event within `timeout`.
pub fn wait_error(rx: &mut Receiver<SessionEvent>, timeout: Duration) -> Option<Error> {
    match wait_event(rx, timeout, |e| matches!(e, SessionEvent::Error(_))) {
        Some(SessionEvent::Error(e)) => Some(e),
        _ => None,
    }
}

/// Starts a session and waits until the ingest accepts media; panics if it does not within 10 s.
pub fn start_live(config: SessionConfig) -> (LiveSession, Receiver<SessionEvent>) {
    let session = LiveSession::new(config).expect("session builds");
    let mut rx = session.subscribe();
    session.start().expect("session starts");
    assert!(
        wait_state(&mut rx, SessionState::Live, Duration::from_secs(10)),
        "session did not go live"
    );
    (session, rx)
}

/// Goes live with `config`, stays live for `secs` after the ingest accepted media, stops cleanly,
/// and returns the final statistics. Panics if it does not go live or does not end cleanly.
pub fn run_live(config: SessionConfig, secs: f64) -> LiveStats {
    let (session, _events) = start_live(config);
    std::thread::sleep(Duration::from_secs_f64(secs));
    session.stop();
    let end = session
        .wait(Some(Duration::from_secs(15)))
        .expect("session ends without error");
    assert_eq!(end, SessionState::Ended);
    session.stats()
}

/// Reads back what a file holds, after giving the ingest a moment to close it.
pub fn report(path: &Path) -> MediaReport {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match MediaReport::probe(path) {
            Ok(r) if r.duration_secs > 0.0 => return r,
            other if Instant::now() > deadline => {
                panic!("cannot read {}: {other:?}", path.display())
            }
            _ => std::thread::sleep(Duration::from_millis(200)),
        }
    }
}

/// Asserts that `frames` is within `tolerance` (fraction) of `duration * fps`.
pub fn assert_frame_count(frames: u64, duration_secs: f64, fps: f64, tolerance: f64) {
    let expected = duration_secs * fps;
    let off = (frames as f64 - expected).abs() / expected;
    assert!(
        off <= tolerance,
        "{frames} frames in {duration_secs:.2} s at {fps} fps: {:.1}% off (allowed {:.1}%)",
        off * 100.0,
        tolerance * 100.0
    );
}

/// A recording starts at the first frame its connection carried: stream time zero when the
/// connection took the stream's first keyframe, a later keyframe when connecting took longer
/// (the connection then starts at the newest one, or at one asked for). At most one GOP of the
/// session's 2 s keyframe interval, plus a frame.
pub const RECORDING_START_MAX_MS: u64 = 2_034;

/// Where stream time zero falls in a recording, from a message sent for stream time `sent_ms`
/// and first carried by the recorded frame at `seen_ms`: the stream time of the recording's first
/// frame. Asserts that it is a start the uplink can make (see [`RECORDING_START_MAX_MS`]) and
/// prints it, so that the other messages can be checked against the same time line.
pub fn recording_start_ms(sent_ms: u64, seen_ms: u64) -> u64 {
    let start = sent_ms.saturating_sub(seen_ms);
    assert!(
        seen_ms <= sent_ms + 34 && start <= RECORDING_START_MAX_MS,
        "a message sent for {sent_ms} ms was first carried at {seen_ms} ms of the recording"
    );
    eprintln!("the recording starts at stream time {start} ms");
    start
}

/// Decodes frame `index` of a file and returns its mean (R, G, B).
pub fn mean_rgb(path: &Path, index: u64) -> (f64, f64, f64) {
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(path)
        .args([
            "-vf",
            &format!("select=eq(n\\,{index})"),
            "-frames:v",
            "1",
            "-f",
            "rawvideo",
            "-pix_fmt",
            "rgb24",
            "-",
        ])
        .output()
        .expect("ffmpeg runs");
    assert!(
        out.status.success() && !out.stdout.is_empty(),
        "ffmpeg: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let n = (out.stdout.len() / 3) as f64;
    let mut sum = (0.0, 0.0, 0.0);
    for px in out.stdout.chunks_exact(3) {
        sum.0 += px[0] as f64;
        sum.1 += px[1] as f64;
        sum.2 += px[2] as f64;
    }
    (sum.0 / n, sum.1 / n, sum.2 / n)
}

/// True when the first video packet of a file is a keyframe (what a player needs to start).
pub fn starts_on_keyframe(path: &Path) -> bool {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-show_entries",
            "packet=flags",
            "-of",
            "csv=p=0",
        ])
        .args(["-read_intervals", "%+#1"])
        .arg(path)
        .output()
        .expect("ffprobe runs");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()
        .is_some_and(|flags| flags.starts_with('K'))
}

/// The `fieldcast` binary of this build (`target/<profile>/fieldcast`), built once per test
/// process so that it matches the sources (tests of another package cannot use
/// `CARGO_BIN_EXE_*`).
pub fn fieldcast_binary() -> PathBuf {
    static BINARY: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BINARY.get_or_init(build_fieldcast).clone()
}

fn build_fieldcast() -> PathBuf {
    let exe = std::env::current_exe().expect("the test knows its own path");
    // target/<profile>/deps/<test binary>
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("a test binary lives in target/<profile>/deps");
    let target_dir = profile_dir.parent().expect("target/<profile> has a parent");
    let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") => "dev",
        Some(other) => other,
        None => panic!("no profile directory in {}", exe.display()),
    };
    let status = Command::new(option_env!("CARGO").unwrap_or("cargo"))
        .args([
            "build",
            "--quiet",
            "-p",
            "fieldcast-cli",
            "--profile",
            profile,
        ])
        .arg("--target-dir")
        .arg(target_dir)
        .status()
        .expect("cargo runs");
    assert!(status.success(), "building fieldcast failed");
    profile_dir.join("fieldcast")
}

/// One packet of a media file, as ffprobe lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct Packet {
    /// `video` or `audio`.
    pub kind: String,
    /// Presentation time, seconds.
    pub pts_secs: f64,
    /// Duration, seconds, when the container says.
    pub duration_secs: Option<f64>,
}

/// Every packet of a file with a presentation time, in file order.
pub fn packets(path: &Path) -> Vec<Packet> {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "packet=codec_type,pts_time,duration_time",
            "-of",
            "csv=p=0",
        ])
        .arg(path)
        .output()
        .expect("ffprobe runs");
    assert!(
        out.status.success(),
        "ffprobe {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(',').collect();
            let [kind, pts, duration, ..] = fields[..] else {
                return None;
            };
            Some(Packet {
                kind: kind.to_string(),
                pts_secs: pts.parse().ok()?,
                duration_secs: duration.parse().ok(),
            })
        })
        .collect()
}

/// The first and last presentation time (last plus its duration) of one kind of packet.
pub fn span(packets: &[Packet], kind: &str) -> Option<(f64, f64)> {
    let of_kind: Vec<&Packet> = packets.iter().filter(|p| p.kind == kind).collect();
    let first = of_kind.iter().map(|p| p.pts_secs).reduce(f64::min)?;
    let last = of_kind
        .iter()
        .map(|p| p.pts_secs + p.duration_secs.unwrap_or(0.0))
        .reduce(f64::max)?;
    Some((first, last))
}

/// The largest step between consecutive presentation times of one kind of packet, seconds.
pub fn largest_step(packets: &[Packet], kind: &str) -> f64 {
    let mut times: Vec<f64> = packets
        .iter()
        .filter(|p| p.kind == kind)
        .map(|p| p.pts_secs)
        .collect();
    times.sort_by(f64::total_cmp);
    times.windows(2).map(|w| w[1] - w[0]).fold(0.0, f64::max)
}

/// How long an [`FfmpegListener`] may take to start listening.
const LISTENER_START_TIMEOUT: Duration = Duration::from_secs(10);

/// An RTMP server made of ffmpeg's own RTMP listener, as a second ingest beside nginx-rtmp:
/// `ffmpeg -listen 1 -i rtmp://127.0.0.1:PORT/live/KEY -c copy -f flv OUT` on a free loopback
/// port, which copies what one publisher sends into an FLV file without re-encoding it. Stopped
/// (SIGTERM by its PID, then SIGKILL) when dropped.
///
/// How ffmpeg 5.1's listener behaves:
/// - It serves exactly one connection and then exits. Any TCP connection counts: a bare
///   connect-and-close (a port probe) makes it exit with status 1 and `Unable to read handshake`.
///   So it is only ever waited for by looking for its listening socket in `/proc/net/tcp`.
/// - It accepts any application and stream key; a different one is only logged at `-v verbose`
///   (`App field don't match up`, `Unexpected stream …, expecting …`).
/// - It reads what arrives with libavformat's FLV demuxer, probing the first packets for the
///   streams (`onMetaData` is optional: a publisher without it is received alike), and starts
///   writing the output once it has found them. What the FLV demuxer or muxer complains about
///   lands in its stderr, kept at `-v warning`; tags repeating the previous tag's timestamp pass
///   without a word (`-c copy` takes them), so the file still has to be decoded to be called
///   clean.
/// - When the publisher disconnects, cleanly or not, it logs `rtmp://…: Input/output error`,
///   finishes the output file and exits with status 0: that one line is expected, see
///   [`FfmpegListener::problems`].
/// - With no publisher it waits up to `-timeout` seconds (set to 60 here), then exits with
///   `Connection timed out`.
pub struct FfmpegListener {
    child: Option<std::process::Child>,
    port: u16,
    key: String,
    dir: tempfile::TempDir,
}

impl FfmpegListener {
    /// Starts the listener for stream key `key` (application `live`) and waits until it listens;
    /// panics with its stderr if it does not.
    pub fn start(key: &str) -> FfmpegListener {
        // The free port may be taken by someone else before ffmpeg binds it: try a few.
        let mut last_log = String::new();
        for _ in 0..3 {
            let port = fieldcast_sandbox::ingest::free_port().expect("a free loopback port");
            let mut listener = FfmpegListener {
                child: None,
                port,
                key: key.to_string(),
                dir: tempfile::Builder::new()
                    .prefix("fieldcast-ffmpeg-listener-")
                    .tempdir()
                    .expect("a temp dir for the listener"),
            };
            listener.spawn();
            if listener.wait_listening() {
                return listener;
            }
            last_log = listener.log();
        }
        panic!("ffmpeg's RTMP listener did not start listening: {last_log}");
    }

    fn spawn(&mut self) {
        let log = std::fs::File::create(self.dir.path().join("ffmpeg.log")).expect("a log file");
        let child = Command::new("ffmpeg")
            .args(["-nostdin", "-hide_banner", "-nostats", "-v", "warning"])
            .args(["-listen", "1", "-timeout", "60", "-i"])
            .arg(self.url())
            .args(["-c", "copy", "-f", "flv", "-y"])
            .arg(self.output())
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(log)
            .spawn()
            .expect("ffmpeg runs (install the Debian package ffmpeg)");
        self.child = Some(child);
    }

    /// True once a socket listens on the port; false if ffmpeg exited or took too long.
    fn wait_listening(&mut self) -> bool {
        let local = format!("0100007F:{:04X}", self.port);
        let deadline = Instant::now() + LISTENER_START_TIMEOUT;
        while Instant::now() < deadline {
            let tcp = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
            let listening = tcp.lines().any(|line| {
                let fields: Vec<&str> = line.split_whitespace().collect();
                fields.get(1) == Some(&local.as_str()) && fields.get(3) == Some(&"0A")
            });
            if listening {
                return true;
            }
            if self.exited() {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.stop();
        false
    }

    /// The URL to publish to, `rtmp://127.0.0.1:PORT/live/KEY`.
    pub fn url(&self) -> String {
        format!("rtmp://127.0.0.1:{}/live/{}", self.port, self.key)
    }

    /// The FLV file the listener writes what it received to.
    pub fn output(&self) -> PathBuf {
        self.dir.path().join(format!("{}.flv", self.key))
    }

    /// ffmpeg's stderr so far (warnings and errors only).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("ffmpeg.log")).unwrap_or_default()
    }

    /// The lines of [`FfmpegListener::log`] other than the one a publisher's disconnection
    /// always logs (`rtmp://…: Input/output error`): empty when the stream arrived cleanly.
    pub fn problems(&self) -> Vec<String> {
        let disconnected = format!("{}: Input/output error", self.url());
        self.log()
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty() && *line != disconnected)
            .map(str::to_string)
            .collect()
    }

    /// Waits up to `timeout` for ffmpeg to exit by itself (it does when the publisher has
    /// disconnected) and returns its exit status, or `None` if it is still running.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            let status = self.child.as_mut().map(|c| c.try_wait());
            match status {
                Some(Ok(Some(status))) => {
                    self.child = None;
                    return Some(status);
                }
                Some(Ok(None)) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                _ => return None,
            }
        }
    }

    fn exited(&mut self) -> bool {
        let gone = match self.child.as_mut() {
            Some(child) => !matches!(child.try_wait(), Ok(None)),
            None => true,
        };
        if gone {
            self.child = None;
        }
        gone
    }

    /// Stops ffmpeg (SIGTERM by its PID, which makes it finish the output file, then SIGKILL
    /// after 3 s) if it still runs.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            fieldcast_sandbox::ingest::terminate(&mut child, Duration::from_secs(3));
        }
    }
}

impl Drop for FfmpegListener {
    fn drop(&mut self) {
        self.stop();
    }
}
