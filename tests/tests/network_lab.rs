//! FieldCast through the network lab: the `fieldcast` binary goes live from the lab's publisher
//! namespace to nginx-rtmp in its ingest namespace while `fieldcast probe --follow --frames`
//! watches from the ingest side, and what both saw is checked against the profile's timeline.
//!
//! - collapse: the bitrate follows the link down within 10 s, latency stays low, and it climbs
//!   back within 40 s of the recovery;
//! - flaky: after every outage frames reach the viewer within 3 s of the link returning, each new
//!   connection starts with audio and video together, the session never ends by itself, and
//!   the local recording has no gap;
//! - edge: two minutes live on 300 kbit/s, 300 ms and 2 % loss, at a rung that fits, filling at
//!   least 80 % of it;
//! - steady-outage: a 700 kbit/s link with a 7 s outage is filled to 85 % while up, and the
//!   stream is back to 90 % of its rate within 10 s of the link's return;
//! - step-up: when a 500 kbit/s link becomes 1500 kbit/s, the stream reaches 85 % of it within
//!   15 s.
//!
//! These need root, `ip`, `tc` and `nft`; without them each test prints `skipped: <reason>` and
//! passes. The labs are independent (own namespaces, nginx, ports and temp dirs), so the tests
//! run side by side. Run with `--nocapture` to see the figures.

use std::io::{BufRead, BufReader, Read};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use fieldcast_core::LatencyReport;
use fieldcast_core::probe::now_ms;
use fieldcast_core::receiver::FrameArrival;
use fieldcast_sandbox::netlab::{AppliedChange, NetLab, Profile};
use fieldcast_tests::{fieldcast_binary, largest_step, packets, span};
use serde::Deserialize;

/// How long nginx may take to listen.
const INGEST_START: Duration = Duration::from_secs(10);
/// How long a child may run past the duration it was given before the test gives up on it.
const EXIT_GRACE: Duration = Duration::from_secs(30);
/// The receiver plays this much longer than the publisher, to see the end.
const RECEIVER_EXTRA_SECS: u64 = 3;
/// With this set to a directory, each test keeps what it saw in `<dir>/<profile>/`: the
/// publisher's and the receiver's lines, the ingest's recordings and its log.
const KEEP_ENV: &str = "FIELDCAST_LAB_OUT";
/// The viewer's p95 latency through the 30 s a link is collapsed to 300 kbit/s.
const COLLAPSE_P95_MS: u64 = 2_500;
/// The viewer's p95 latency over two minutes of EDGE.
const EDGE_P95_MS: u64 = 2_500;
/// The least share of EDGE's link the stream fills on average after the first 15 s.
const EDGE_FILL: f64 = 0.8;
/// Time from a collapse to a sent bitrate at or below 90% of the new capacity.
const COLLAPSE_ADAPT_MS: u64 = 10_000;
/// The sent bitrate's share of the new capacity within that time.
const COLLAPSE_SHARE: f64 = 0.9;
/// Time from the link's recovery to a sent bitrate back at 70% of where it was.
const RECOVERY_MS: u64 = 40_000;
/// The least share of a steady link the stream fills on average while the link is up.
const STEADY_FILL: f64 = 0.85;
/// After an outage, the stream is back to this share of its earlier rate...
const STEADY_BACK_SHARE: f64 = 0.9;
/// ...within this long of the link's return.
const STEADY_BACK_MS: u64 = 10_000;
/// The viewer's p95 latency over the steady link with its outage.
const STEADY_P95_MS: u64 = 2_000;
/// After the link steps up, the stream reaches this share of its new capacity...
const STEP_UP_SHARE: f64 = 0.85;
/// ...within this long.
const STEP_UP_MS: u64 = 15_000;

/// nginx-rtmp in a lab's ingest namespace, recording every publish to its own file
/// (`<key>-<unix time>.flv`); stopped by its PID when dropped.
struct LabIngest {
    child: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
}

impl LabIngest {
    /// Starts nginx inside the lab's ingest namespace and waits until it listens.
    fn start(lab: &NetLab) -> LabIngest {
        let dir = tempfile::Builder::new()
            .prefix("fieldcast-lab-ingest-")
            .tempdir()
            .unwrap();
        let port = lab
            .in_ingest(fieldcast_sandbox::ingest::free_port)
            .unwrap()
            .unwrap();
        std::fs::create_dir(dir.path().join("recordings")).unwrap();
        let conf = dir.path().join("nginx.conf");
        std::fs::write(&conf, nginx_config(dir.path(), port)).unwrap();
        let mut cmd = Command::new("/usr/sbin/nginx");
        cmd.arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(&conf)
            .arg("-e")
            .arg(dir.path().join("error.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        lab.command_in_ingest(&mut cmd).unwrap();
        let ingest = LabIngest {
            child: Some(
                cmd.spawn()
                    .expect("nginx starts (Debian nginx + libnginx-mod-rtmp)"),
            ),
            port,
            dir,
        };
        ingest.wait_listening(lab);
        ingest
    }

    fn wait_listening(&self, lab: &NetLab) {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        let deadline = Instant::now() + INGEST_START;
        while Instant::now() < deadline {
            let connect = || TcpStream::connect_timeout(&addr, Duration::from_millis(200));
            if lab.in_ingest(connect).unwrap().is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("nginx did not listen in the lab: {}", self.log());
    }

    /// The URL a viewer inside the ingest namespace plays.
    fn play_url(&self, key: &str) -> String {
        format!("rtmp://127.0.0.1:{}/live/{key}", self.port)
    }

    /// The recordings of `key`, oldest first (one per publish).
    fn recordings(&self, key: &str) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(self.dir.path().join("recordings"))
            .unwrap()
            .filter_map(|e| Some(e.ok()?.path()))
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with(&format!("{key}-")) && n.ends_with(".flv"))
            })
            .collect();
        files.sort();
        files
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default()
    }
}

impl Drop for LabIngest {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            fieldcast_sandbox::ingest::terminate(&mut child, Duration::from_secs(3));
        }
    }
}

/// The ingest's config: like the sandbox's `LocalIngest` (players closed when the publisher
/// goes), each publish recorded to its own file, and a publisher silent for 5 s dropped. A
/// publisher whose link vanished leaves nginx a connection that looks alive; until it is
/// dropped, a reconnection under the same key is refused (`already publishing`). 5 s is the
/// publisher's own stall limit, so after an 8 s outage the ingest is ready when the link returns
/// and the figures measure the publisher, not the ingest's timeout.
fn nginx_config(dir: &Path, port: u16) -> String {
    format!(
        r#"load_module /usr/lib/nginx/modules/ngx_rtmp_module.so;
daemon off;
master_process off;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log info;
events {{ worker_connections 256; }}
rtmp {{
    server {{
        listen 127.0.0.1:{port};
        chunk_size 4096;
        application live {{
            live on;
            idle_streams off;
            drop_idle_publisher 5s;
            record all;
            record_path "{dir}/recordings";
            record_unique on;
        }}
    }}
}}
"#,
        dir = dir.display()
    )
}

/// A child process whose output is collected by threads; killed (by its PID) and reaped when
/// dropped, so a failing test leaves nothing running.
struct Spawned {
    name: &'static str,
    child: Child,
    spawned_ms: u64,
    stdout: Arc<Mutex<Vec<String>>>,
    stderr: Arc<Mutex<String>>,
    readers: Vec<JoinHandle<()>>,
}

impl Spawned {
    fn spawn(name: &'static str, cmd: &mut Command) -> Spawned {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{name} does not start: {e}"));
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(String::new()));
        let (out, err) = (stdout.clone(), stderr.clone());
        let (pipe_out, mut pipe_err) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
        let readers = vec![
            std::thread::spawn(move || {
                // Until the child closes its stdout; a line that is not UTF-8 is kept, mangled.
                for line in BufReader::new(pipe_out).split(b'\n').map_while(Result::ok) {
                    out.lock()
                        .unwrap()
                        .push(String::from_utf8_lossy(&line).into_owned());
                }
            }),
            std::thread::spawn(move || {
                let mut text = String::new();
                let _ = pipe_err.read_to_string(&mut text);
                *err.lock().unwrap() = text;
            }),
        ];
        Spawned {
            name,
            child,
            spawned_ms: now_ms(),
            stdout,
            stderr,
            readers,
        }
    }

    /// Waits for the child to exit by itself within `timeout`; returns its status and stdout.
    fn finish(&mut self, timeout: Duration) -> (ExitStatus, Vec<String>) {
        let deadline = Instant::now() + timeout;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "{} still running after {timeout:?}; stderr: {}",
                    self.name,
                    self.stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        for reader in self.readers.drain(..) {
            reader.join().unwrap();
        }
        (status, self.stdout.lock().unwrap().clone())
    }

    /// The end of what the child printed on stderr, for a failure message.
    fn stderr(&self) -> String {
        let text = self.stderr.lock().unwrap();
        let start = text.len().saturating_sub(4000);
        text[text.floor_char_boundary(start)..].to_string()
    }

    /// Everything the child printed on stderr.
    fn whole_stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A lab running a shipped profile, with nginx-rtmp in its ingest namespace. The ingest is
/// stopped before the lab goes (fields drop in order).
struct Rig {
    ingest: LabIngest,
    lab: NetLab,
    /// The wall clock (ms since the epoch) at the profile's time 0.
    t0_ms: u64,
    /// What the publisher dials.
    publish_addr: SocketAddr,
}

impl Rig {
    /// The lab for `profile`, or `None` (with the reason printed) where labs cannot run.
    fn start(profile: &str) -> Option<Rig> {
        if !NetLab::available_or_skip() {
            return None;
        }
        // Built before the lab starts, so the profile's timeline is the session's.
        fieldcast_binary();
        let name = profile.to_string();
        let lab = NetLab::start_observed(
            Profile::builtin(profile).unwrap(),
            Box::new(move |c| eprintln!("[{name}] netlab: {c}")),
        )
        .unwrap();
        let t0_ms = now_ms() - lab.started().elapsed().as_millis() as u64;
        let ingest = LabIngest::start(&lab);
        let publish_addr = lab.forward(ingest.port).unwrap();
        Some(Rig {
            ingest,
            lab,
            t0_ms,
            publish_addr,
        })
    }

    /// `fieldcast live` from the publisher namespace, from the test source with stamps, at 480p.
    fn publish(&self, key: &str, secs: u64, record: Option<&Path>) -> Spawned {
        self.publish_at(key, "480p", secs, record)
    }

    /// `fieldcast live` as [`Rig::publish`], asking for `profile`.
    fn publish_at(&self, key: &str, profile: &str, secs: u64, record: Option<&Path>) -> Spawned {
        let mut cmd = Command::new(fieldcast_binary());
        cmd.args(["live", "--ingest"])
            .arg(format!("rtmp://{}/live/{key}", self.publish_addr))
            .args(["--source", "test", "--latency-stamp", "--profile", profile])
            .args(["--json-events", "--duration", &secs.to_string()]);
        if let Some(dir) = record {
            cmd.arg("--record").arg(dir);
        }
        self.lab.command_in_publisher(&mut cmd).unwrap();
        Spawned::spawn("fieldcast live", &mut cmd)
    }

    /// `fieldcast probe --follow --frames` from the ingest namespace.
    fn receive(&self, key: &str, secs: u64) -> Spawned {
        let mut cmd = Command::new(fieldcast_binary());
        cmd.args(["probe", "--url", &self.ingest.play_url(key)])
            .args(["--follow", "--frames", "--duration", &secs.to_string()]);
        self.lab.command_in_ingest(&mut cmd).unwrap();
        Spawned::spawn("fieldcast probe", &mut cmd)
    }

    /// Wall clock (ms) of a change the lab applied.
    fn wall_ms(&self, change: &AppliedChange) -> u64 {
        self.t0_ms + change.applied_after.as_millis() as u64
    }

    /// Where to keep what this test saw, when [`KEEP_ENV`] asks for it.
    fn keep_dir(&self) -> Option<PathBuf> {
        let dir = PathBuf::from(std::env::var_os(KEEP_ENV)?).join(&self.lab.profile().name);
        std::fs::create_dir_all(&dir).ok()?;
        Some(dir)
    }

    /// Keeps a child's output lines as `<file>`, when asked to.
    fn keep(&self, file: &str, lines: &[String]) {
        if let Some(dir) = self.keep_dir() {
            let _ = std::fs::write(dir.join(file), lines.join("\n"));
        }
    }
}

impl Drop for Rig {
    /// Keeps the ingest's recordings and log, when asked to, before the ingest and the lab go.
    fn drop(&mut self) {
        let Some(dir) = self.keep_dir() else {
            return;
        };
        let from = self.ingest.dir.path();
        let _ = std::fs::copy(from.join("error.log"), dir.join("nginx-error.log"));
        for entry in std::fs::read_dir(from.join("recordings"))
            .into_iter()
            .flatten()
        {
            let path = entry.map(|e| e.path()).unwrap_or_default();
            if let Some(name) = path.file_name() {
                let _ = std::fs::copy(&path, dir.join(name));
            }
        }
        eprintln!("kept in {}", dir.display());
    }
}

/// One line of `fieldcast live --json-events`.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
enum LiveEvent {
    State {
        wall_ms: u64,
        from: String,
        to: String,
    },
    Stats(Stats),
    Adapt {
        wall_ms: u64,
        action: String,
        reason: String,
    },
    Error {
        wall_ms: u64,
        message: String,
    },
    Ended {
        wall_ms: u64,
        uptime_ms: u64,
        frames_encoded: u64,
        bytes_sent: u64,
        dropped_frames: u64,
    },
}

/// The once-a-second statistics line.
#[derive(Debug, Clone, Deserialize)]
struct Stats {
    wall_ms: u64,
    uptime_ms: u64,
    video_kbps: f64,
    audio_kbps: f64,
    target_video_kbps: f64,
    width: u32,
    height: u32,
    fps: f64,
    audio_only: bool,
    send_queue_ms: u64,
    dropped_frames: u64,
    link_kbps: u64,
}

impl Stats {
    /// What the encoders produced in this second: video + audio, kbit/s.
    fn sent_kbps(&self) -> f64 {
        self.video_kbps + self.audio_kbps
    }
}

/// Everything `fieldcast live --json-events` printed.
struct Publisher {
    spawned_ms: u64,
    secs: u64,
    lines: Vec<String>,
    events: Vec<LiveEvent>,
}

impl Publisher {
    /// Waits for the publisher to end by itself, and checks it ended well.
    fn finish(rig: &Rig, mut spawned: Spawned, secs: u64) -> Publisher {
        let (status, lines) = spawned.finish(Duration::from_secs(secs) + EXIT_GRACE);
        rig.keep("publisher.jsonl", &lines);
        rig.keep("publisher.log", &[spawned.whole_stderr()]);
        let events: Vec<LiveEvent> = lines
            .iter()
            .map(|l| {
                serde_json::from_str(l).unwrap_or_else(|e| panic!("not an event line ({e}): {l}"))
            })
            .collect();
        let publisher = Publisher {
            spawned_ms: spawned.spawned_ms,
            secs,
            lines,
            events,
        };
        publisher.print_log();
        assert!(
            status.success(),
            "fieldcast live exited with {status}; stderr: {}",
            spawned.stderr()
        );
        publisher
    }

    fn stats(&self) -> Vec<Stats> {
        self.events
            .iter()
            .filter_map(|e| match e {
                LiveEvent::Stats(s) => Some(s.clone()),
                _ => None,
            })
            .collect()
    }

    /// Every state change as (wall ms, to).
    fn states(&self) -> Vec<(u64, &str)> {
        self.events
            .iter()
            .filter_map(|e| match e {
                LiveEvent::State { wall_ms, to, .. } => Some((*wall_ms, to.as_str())),
                _ => None,
            })
            .collect()
    }

    /// The state changes, adaptations and errors, and a stats line every 5 s, timed from the
    /// start of the process.
    fn print_log(&self) {
        let t = |ms: u64| (ms as f64 - self.spawned_ms as f64) / 1000.0;
        for (line, event) in self.lines.iter().zip(&self.events) {
            match event {
                LiveEvent::State { wall_ms, from, to } => {
                    eprintln!("  {:6.1}s state {from} -> {to}", t(*wall_ms))
                }
                LiveEvent::Adapt {
                    wall_ms,
                    action,
                    reason,
                } => eprintln!("  {:6.1}s adapt {action} ({reason}): {line}", t(*wall_ms)),
                LiveEvent::Error { wall_ms, message } => {
                    eprintln!("  {:6.1}s error {message}", t(*wall_ms))
                }
                LiveEvent::Stats(s) if (s.uptime_ms / 1000).is_multiple_of(5) => eprintln!(
                    "  {:6.1}s {}x{}@{} video {:.0} + audio {:.0} kbit/s (target {:.0}, link {}), queue {} ms, dropped {}{}",
                    t(s.wall_ms),
                    s.width,
                    s.height,
                    s.fps,
                    s.video_kbps,
                    s.audio_kbps,
                    s.target_video_kbps,
                    s.link_kbps,
                    s.send_queue_ms,
                    s.dropped_frames,
                    if s.audio_only { ", audio only" } else { "" }
                ),
                LiveEvent::Stats(_) => {}
                LiveEvent::Ended {
                    wall_ms,
                    uptime_ms,
                    frames_encoded,
                    bytes_sent,
                    dropped_frames,
                } => eprintln!(
                    "  {:6.1}s ended: up {uptime_ms} ms, {frames_encoded} frames, {bytes_sent} bytes, {dropped_frames} dropped",
                    t(*wall_ms)
                ),
            }
        }
    }

    /// The session went live, never failed, and ended only when its duration was over.
    fn assert_stayed_up(&self) {
        let states = self.states();
        assert!(
            states.iter().any(|(_, to)| *to == "live"),
            "never live: {states:?}"
        );
        assert!(
            !states.iter().any(|(_, to)| *to == "failed"),
            "the session failed: {states:?}"
        );
        let due = self.spawned_ms + self.secs * 1000;
        if let Some((at, to)) = states
            .iter()
            .find(|(_, to)| matches!(*to, "ending" | "ended"))
        {
            assert!(
                *at + 500 >= due,
                "the session went {to} {} ms before its duration was over",
                due - at
            );
        }
        assert!(
            self.events
                .iter()
                .any(|e| matches!(e, LiveEvent::Ended { .. })),
            "no final `ended` line"
        );
    }

    /// Time spent reconnecting (from each `reconnecting` to the next other state), ms.
    fn reconnecting_ms(&self) -> u64 {
        let states = self.states();
        states
            .windows(2)
            .filter(|w| w[0].1 == "reconnecting")
            .map(|w| w[1].0 - w[0].0)
            .sum()
    }

    /// Wall clock of the first `live`.
    fn first_live_ms(&self) -> u64 {
        self.states()
            .iter()
            .find(|(_, to)| *to == "live")
            .map(|(at, _)| *at)
            .expect("the session went live")
    }
}

/// Everything the receiver printed: one frame per line, then its summary.
fn receiver_frames(rig: &Rig, mut spawned: Spawned, secs: u64) -> Vec<FrameArrival> {
    let (status, lines) = spawned.finish(Duration::from_secs(secs) + EXIT_GRACE);
    rig.keep("receiver.jsonl", &lines);
    let (summary, frames): (Vec<&String>, Vec<&String>) =
        lines.iter().partition(|l| l.contains("\"event\""));
    eprintln!("receiver: {} frames; {summary:?}", frames.len());
    assert!(
        status.success(),
        "fieldcast probe exited with {status}; stderr: {}",
        spawned.stderr()
    );
    assert_eq!(summary.len(), 1, "one summary line");
    frames
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a frame line ({e}): {l}")))
        .collect()
}

/// Latency over the stamped frames that arrived between `from_ms` and `to_ms`.
fn latency(frames: &[FrameArrival], from_ms: u64, to_ms: u64) -> LatencyReport {
    let samples = frames
        .iter()
        .filter(|f| (from_ms..=to_ms).contains(&f.wall_ms))
        .filter_map(|f| f.latency_ms)
        .collect();
    LatencyReport::from_samples(samples, 0)
}

/// Mean video + audio kbit/s over the stats whose second lies within `from_ms..=to_ms`.
fn mean_kbps(stats: &[Stats], from_ms: u64, to_ms: u64) -> Option<f64> {
    let inside: Vec<f64> = stats
        .iter()
        .filter(|s| s.wall_ms >= from_ms + 1000 && s.wall_ms <= to_ms)
        .map(Stats::sent_kbps)
        .collect();
    (!inside.is_empty()).then(|| inside.iter().sum::<f64>() / inside.len() as f64)
}

/// Video + audio kbit/s of every two consecutive seconds (one keyframe interval) within
/// `from_ms..=to_ms`, as (end of the window, mean kbit/s).
fn two_second_rates(stats: &[Stats], from_ms: u64, to_ms: u64) -> Vec<(u64, f64)> {
    let inside: Vec<&Stats> = stats
        .iter()
        .filter(|s| s.wall_ms >= from_ms + 1000 && s.wall_ms <= to_ms)
        .collect();
    inside
        .windows(2)
        .map(|w| (w[1].wall_ms, (w[0].sent_kbps() + w[1].sent_kbps()) / 2.0))
        .collect()
}

/// The outages the lab applied, as (went down, came back) wall clock ms.
fn outages(rig: &Rig) -> Vec<(u64, u64)> {
    let mut found = Vec::new();
    let mut down = None;
    for change in rig.lab.applied() {
        match (change.change.conditions.outage, down) {
            (true, None) => down = Some(rig.wall_ms(&change)),
            (false, Some(at)) => {
                found.push((at, rig.wall_ms(&change)));
                down = None;
            }
            _ => {}
        }
    }
    found
}

#[test]
fn collapse_the_bitrate_follows_the_link_down_and_back_up() {
    let Some(rig) = Rig::start("collapse") else {
        return;
    };
    let profile = rig.lab.profile();
    let (fall_s, low_kbit, recover_s) = (
        profile.steps[1].at_s,
        profile.steps[1].rate_kbit.unwrap(),
        profile.steps[2].at_s,
    );
    let secs = (recover_s + 42.0).ceil() as u64;
    let receiver = rig.receive("collapse", secs + RECEIVER_EXTRA_SECS);
    let publisher = Publisher::finish(&rig, rig.publish("collapse", secs, None), secs);
    let frames = receiver_frames(&rig, receiver, secs + RECEIVER_EXTRA_SECS);
    publisher.assert_stayed_up();

    let applied = rig.lab.applied();
    let at = |s: f64| {
        let change = applied
            .iter()
            .find(|c| c.change.at_s == s)
            .unwrap_or_else(|| panic!("the lab applied no change at {s} s: {applied:?}"));
        rig.wall_ms(change)
    };
    let (fall, recover) = (at(fall_s), at(recover_s));
    let stats = publisher.stats();
    let ceiling = COLLAPSE_SHARE * f64::from(low_kbit);

    let before = mean_kbps(&stats, fall - 10_000, fall).expect("stats before the fall");
    let adapted = two_second_rates(&stats, fall, recover)
        .into_iter()
        .find(|(_, kbps)| *kbps <= ceiling)
        .map(|(end, _)| end - fall);
    let settled = mean_kbps(&stats, fall + 10_000, recover).expect("stats while the link is low");
    let low = latency(&frames, fall, recover);
    let back = two_second_rates(&stats, recover, recover + RECOVERY_MS)
        .into_iter()
        .find(|(_, kbps)| *kbps >= 0.7 * before)
        .map(|(end, _)| end - recover);
    eprintln!(
        "collapse: before the fall {before:.0} kbit/s; at or below {ceiling:.0} kbit/s {adapted:?} ms after the fall; \
         {settled:.0} kbit/s from 10 s after the fall to the recovery; latency while low: {low:?}; \
         back to {:.0} kbit/s {back:?} ms after the recovery",
        0.7 * before
    );
    let adapted = adapted.unwrap_or_else(|| panic!("never at or below {ceiling} kbit/s"));
    assert!(
        adapted <= COLLAPSE_ADAPT_MS,
        "at or below {ceiling} kbit/s only {adapted} ms after the fall"
    );
    // Probing for more included, the stream stays within the link on average.
    assert!(
        settled <= f64::from(low_kbit),
        "{settled:.0} kbit/s on average from 10 s after the fall on a {low_kbit} kbit/s link"
    );
    // Half the frames of the lowest rung (15 fps) at least, or the latency says nothing.
    let least = ((recover - fall) as f64 / 1000.0 * 15.0 * 0.5) as usize;
    assert!(
        low.samples >= least,
        "{} stamped frames while the link was low",
        low.samples
    );
    assert!(
        low.p95_ms <= COLLAPSE_P95_MS,
        "p95 latency while low: {low:?}"
    );
    back.unwrap_or_else(|| {
        panic!(
            "not back to 70% of {before:.0} kbit/s within {} s",
            RECOVERY_MS / 1000
        )
    });
}

#[test]
fn flaky_every_outage_is_survived_in_sync_and_the_recording_has_no_gap() {
    let Some(rig) = Rig::start("flaky") else {
        return;
    };
    let profile = rig.lab.profile();
    let (period, back_s) = (profile.repeat_every_s.unwrap(), profile.steps[2].at_s);
    // Until 7 s after the second outage.
    let secs = (period + back_s + 7.0).ceil() as u64;
    let replay = tempfile::tempdir().unwrap();
    let receiver = rig.receive("flaky", secs + RECEIVER_EXTRA_SECS);
    let publisher = Publisher::finish(&rig, rig.publish("flaky", secs, Some(replay.path())), secs);
    let frames = receiver_frames(&rig, receiver, secs + RECEIVER_EXTRA_SECS);
    publisher.assert_stayed_up();

    let outages = outages(&rig);
    assert!(
        outages.len() >= 2,
        "two outages in {secs} s: {:?}",
        rig.lab.applied()
    );
    // The media the session took in: its uptime until it began to end (ending drains what is
    // still waiting to be sent, and records nothing more).
    let (uptime_ms, ended_ms) = publisher
        .events
        .iter()
        .find_map(|e| match e {
            LiveEvent::Ended {
                uptime_ms, wall_ms, ..
            } => Some((*uptime_ms, *wall_ms)),
            _ => None,
        })
        .expect("an ended line");
    let ending_ms = publisher
        .states()
        .iter()
        .find(|(_, to)| *to == "ending")
        .map_or(ended_ms, |(at, _)| *at);
    let uptime_secs = (uptime_ms - (ended_ms - ending_ms)) as f64 / 1000.0;
    let mut failures = resume_failures(&publisher, &frames, &outages);
    failures.extend(av_sync_failures(
        &rig.ingest.recordings("flaky"),
        outages.len(),
    ));
    failures.extend(gap_failures(replay.path(), uptime_secs));
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Checks that after each outage a frame captured after the link fell (not an old one flushed
/// late) reaches the viewer within 3 s of the link returning; prints when the publisher was live
/// again too.
fn resume_failures(
    publisher: &Publisher,
    frames: &[FrameArrival],
    outages: &[(u64, u64)],
) -> Vec<String> {
    let mut failures = Vec::new();
    let states = publisher.states();
    for (n, (down, up)) in outages.iter().enumerate() {
        let live = states
            .iter()
            .find(|(at, to)| at >= up && *to == "live")
            .map(|(at, _)| at - up);
        let resumed = frames
            .iter()
            .find(|f| f.wall_ms >= *up && f.capture_ms.is_some_and(|c| c >= *down))
            .map(|f| f.wall_ms - up);
        eprintln!(
            "outage {n}: after the link returned, the publisher live again in {live:?} ms, frames at the viewer in {resumed:?} ms"
        );
        match resumed {
            Some(ms) if ms <= 3000 => {}
            Some(ms) => failures.push(format!(
                "outage {n}: frames again only {ms} ms after the link returned"
            )),
            None => failures.push(format!("outage {n}: no frame after it")),
        }
    }
    failures
}

/// Checks every publish the ingest recorded (one per connection; a refused publish leaves an
/// empty file): audio and video start within 100 ms of each other and last as long, within
/// 100 ms. There must be a new publish after each outage.
fn av_sync_failures(recordings: &[PathBuf], outages: usize) -> Vec<String> {
    let publishes: Vec<&PathBuf> = recordings
        .iter()
        .filter(|p| std::fs::metadata(p).is_ok_and(|m| m.len() > 0))
        .collect();
    eprintln!(
        "{} publishes recorded ({} refused)",
        publishes.len(),
        recordings.len() - publishes.len()
    );
    let mut failures = Vec::new();
    if publishes.len() <= outages {
        failures.push(format!(
            "{} publishes for {outages} outages: {recordings:?}",
            publishes.len()
        ));
    }
    let last = publishes.len().saturating_sub(1);
    for (index, path) in publishes.into_iter().enumerate() {
        let name = path.file_name().unwrap().to_string_lossy();
        let packets = packets(path);
        let (Some((v0, v1)), Some((a0, a1))) = (span(&packets, "video"), span(&packets, "audio"))
        else {
            failures.push(format!("{name} lacks audio or video"));
            continue;
        };
        let (offset, durations) = (v0 - a0, (v1 - v0) - (a1 - a0));
        eprintln!(
            "{name}: video {v0:.3}-{v1:.3} s, audio {a0:.3}-{a1:.3} s: starts {:.0} ms apart, lengths differ by {:.0} ms",
            offset * 1000.0,
            durations * 1000.0
        );
        if offset.abs() > 0.1 {
            failures.push(format!(
                "{name}: first video at {v0:.3} s, first audio at {a0:.3} s"
            ));
        }
        // A publish cut by an outage ends wherever the link cut it, audio and video each with
        // whatever had crossed; only the one ended by the session's end-of-stream must end even.
        if index == last && durations.abs() > 0.1 {
            failures.push(format!(
                "{name}: {:.3} s of video, {:.3} s of audio",
                v1 - v0,
                a1 - a0
            ));
        }
    }
    failures
}

/// Checks the session's own MP4 segments: no step between video frames longer than one frame
/// at 30 fps, none in the audio longer than one AAC frame (5 ms allowed for rounding), and as
/// long as the session was live (within 1 s).
fn gap_failures(dir: &Path, uptime_secs: f64) -> Vec<String> {
    let mut segments: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "mp4"))
        .collect();
    segments.sort();
    let mut failures = Vec::new();
    let mut recorded = 0.0;
    for segment in &segments {
        let name = segment.file_name().unwrap().to_string_lossy();
        let packets = packets(segment);
        let (video_step, audio_step) = (
            largest_step(&packets, "video"),
            largest_step(&packets, "audio"),
        );
        let (v0, v1) = span(&packets, "video").unwrap_or_default();
        recorded += v1 - v0;
        eprintln!(
            "{name}: {:.2} s, largest step video {:.1} ms, audio {:.1} ms",
            v1 - v0,
            video_step * 1000.0,
            audio_step * 1000.0
        );
        if video_step > 1.0 / 30.0 + 0.005 {
            failures.push(format!(
                "{name}: a {:.1} ms step between video frames",
                video_step * 1000.0
            ));
        }
        if audio_step > 1024.0 / 44_100.0 + 0.005 {
            failures.push(format!(
                "{name}: a {:.1} ms step in the audio",
                audio_step * 1000.0
            ));
        }
    }
    eprintln!("local recording: {recorded:.2} s for {uptime_secs:.2} s live before ending");
    if (recorded - uptime_secs).abs() >= 1.0 {
        failures.push(format!(
            "the local recording holds {recorded:.2} s of a {uptime_secs:.2} s session"
        ));
    }
    failures
}

#[test]
fn edge_stays_live_for_two_minutes_at_a_rung_that_fits() {
    let Some(rig) = Rig::start("edge") else {
        return;
    };
    let link_kbit = f64::from(rig.lab.profile().steps[0].rate_kbit.unwrap());
    let secs = 120;
    let receiver = rig.receive("edge", secs + RECEIVER_EXTRA_SECS);
    let publisher = Publisher::finish(&rig, rig.publish("edge", secs, None), secs);
    let frames = receiver_frames(&rig, receiver, secs + RECEIVER_EXTRA_SECS);
    publisher.assert_stayed_up();

    let live_from = publisher.first_live_ms();
    let reconnecting = publisher.reconnecting_ms();
    let stats = publisher.stats();
    let last = stats.last().expect("stats").clone();
    let end = last.wall_ms;
    // After the first adaptation (15 s), the stream fits the link on average, probing included.
    let final_kbps = mean_kbps(&stats, live_from + 15_000, end).unwrap();
    let whole = latency(&frames, live_from, u64::MAX);
    eprintln!(
        "edge: live {:.1} s after the start, {reconnecting} ms reconnecting; last rung {}x{}@{}{}, \
         {final_kbps:.0} kbit/s on average after the first 15 s; latency {whole:?}",
        (live_from - publisher.spawned_ms) as f64 / 1000.0,
        last.width,
        last.height,
        last.fps,
        if last.audio_only { " (audio only)" } else { "" }
    );
    assert!(
        reconnecting <= secs * 1000 / 20,
        "{reconnecting} ms of {secs} s reconnecting"
    );
    assert!(
        !last.audio_only && last.height <= 360,
        "last rung {}x{} (audio only: {}) is not a low rung",
        last.width,
        last.height,
        last.audio_only
    );
    assert!(
        (EDGE_FILL * link_kbit..link_kbit).contains(&final_kbps),
        "{final_kbps:.0} kbit/s on average after the first 15 s on a {link_kbit} kbit/s link \
         (at least {:.0} % of it asked)",
        100.0 * EDGE_FILL
    );
    let least = (secs as f64 * 15.0 * 0.5) as usize;
    assert!(
        whole.samples >= least,
        "{} stamped frames in {secs} s",
        whole.samples
    );
    assert!(whole.p95_ms <= EDGE_P95_MS, "p95 latency {whole:?}");
}

/// The mean of the 2 s rates within `from_ms..=to_ms`, or 0 without any.
fn mean_of(rates: &[(u64, f64)]) -> f64 {
    if rates.is_empty() {
        return 0.0;
    }
    rates.iter().map(|(_, k)| k).sum::<f64>() / rates.len() as f64
}

#[test]
fn steady_outage_fills_the_link_and_is_back_within_ten_seconds() {
    let Some(rig) = Rig::start("steady-outage") else {
        return;
    };
    let link_kbit = f64::from(rig.lab.profile().steps[0].rate_kbit.unwrap());
    let secs = 60;
    let receiver = rig.receive("steady", secs + RECEIVER_EXTRA_SECS);
    let publisher = Publisher::finish(&rig, rig.publish_at("steady", "720p", secs, None), secs);
    let frames = receiver_frames(&rig, receiver, secs + RECEIVER_EXTRA_SECS);
    publisher.assert_stayed_up();

    let (down, back) = *outages(&rig).first().expect("the outage");
    let live_from = publisher.first_live_ms();
    let stats = publisher.stats();
    let end = stats.last().expect("stats").wall_ms;
    let before = two_second_rates(&stats, live_from, down);
    let after = two_second_rates(&stats, back, end);
    let up: Vec<(u64, f64)> = before.iter().chain(&after).copied().collect();
    let mean_up = mean_of(&up);
    // The rate the link carried before the outage: the last 10 s of it.
    let earlier = mean_of(&two_second_rates(&stats, down - 10_000, down));
    let returned = after
        .iter()
        .find(|(_, kbps)| *kbps >= STEADY_BACK_SHARE * earlier)
        .map(|(at, _)| at - back);
    let whole = latency(&frames, live_from, u64::MAX);
    eprintln!(
        "steady-outage: {mean_up:.0} kbit/s on average while the link is up ({:.0} % of \
         {link_kbit} kbit/s; target {:.0} %); {earlier:.0} kbit/s before the outage, back to {:.0} \
         kbit/s {returned:?} ms after it returned (target {} ms); latency {whole:?} (target p95 \
         {STEADY_P95_MS} ms)",
        100.0 * mean_up / link_kbit,
        100.0 * STEADY_FILL,
        STEADY_BACK_SHARE * earlier,
        STEADY_BACK_MS
    );
    assert!(
        mean_up >= STEADY_FILL * link_kbit,
        "{mean_up:.0} kbit/s on average while the link is up: less than {:.0} % of {link_kbit}",
        100.0 * STEADY_FILL
    );
    let returned = returned.unwrap_or_else(|| panic!("never back to 90 % of {earlier:.0} kbit/s"));
    assert!(
        returned <= STEADY_BACK_MS,
        "back to 90 % of {earlier:.0} kbit/s only {returned} ms after the link returned"
    );
    assert!(whole.p95_ms <= STEADY_P95_MS, "p95 latency {whole:?}");
}

#[test]
fn step_up_is_followed_within_fifteen_seconds() {
    let Some(rig) = Rig::start("step-up") else {
        return;
    };
    let profile = rig.lab.profile();
    let (step_s, high_kbit) = (profile.steps[1].at_s, profile.steps[1].rate_kbit.unwrap());
    let secs = (step_s + STEP_UP_MS as f64 / 1000.0 + 10.0).ceil() as u64;
    let receiver = rig.receive("step", secs + RECEIVER_EXTRA_SECS);
    let publisher = Publisher::finish(&rig, rig.publish_at("step", "720p", secs, None), secs);
    let frames = receiver_frames(&rig, receiver, secs + RECEIVER_EXTRA_SECS);
    publisher.assert_stayed_up();

    let step = rig.wall_ms(
        rig.lab
            .applied()
            .iter()
            .find(|c| c.change.at_s == step_s)
            .expect("the step"),
    );
    let stats = publisher.stats();
    let goal = STEP_UP_SHARE * f64::from(high_kbit);
    let reached = two_second_rates(&stats, step, u64::MAX)
        .into_iter()
        .find(|(_, kbps)| *kbps >= goal)
        .map(|(at, _)| at - step);
    let before = mean_kbps(&stats, step - 10_000, step).expect("stats before the step");
    let whole = latency(&frames, publisher.first_live_ms(), u64::MAX);
    eprintln!(
        "step-up: {before:.0} kbit/s on 500 kbit/s; {goal:.0} kbit/s reached {reached:?} ms after \
         the step to {high_kbit} kbit/s (target {STEP_UP_MS} ms); latency {whole:?}"
    );
    let reached = reached.unwrap_or_else(|| panic!("never at {goal:.0} kbit/s after the step"));
    assert!(
        reached <= STEP_UP_MS,
        "{goal:.0} kbit/s only {reached} ms after the step"
    );
}
