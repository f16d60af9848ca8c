//! The seller's app of a field-lab run (`fieldcast qa app`, started by `fieldcast qa run`
//! inside the device and network profiles): a phone app built on the SDK as an app developer
//! would build it. It opens its store in `--dir`, syncs it to the platform, and then does what
//! it is told, one JSON command per line on stdin ([`Command`]): go live with frames it pushes
//! itself (a camera-like pattern carrying the latency stamp, encoded with openh264 as on a
//! phone), pin, sell, go to the background, cap its frame rate, end, upload the replay. It
//! prints what happens as [`AppEvent`] lines on stdout. On `exit` (or the end of stdin) it
//! waits for the outbox to drain, prints `done` and exits.
//!
//! Killed with SIGKILL and started again on the same `--dir`, it finds its sales in the store
//! and syncs them.

mod frames;
mod outbox;
mod seller;

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use fieldcast_core::probe::now_ms;
use fieldcast_core::{
    AppVideoFormat, EncoderPreference, LiveSession, Pins, PixelFormat, SessionConfig, SessionEvent,
    SessionState, Source, Store, SyncConfig, SyncEngine,
};
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast::error::RecvError;

use crate::events::AppEvent;
use crate::scenario::Scenario;
use frames::FramePump;
pub use outbox::OutboxReports;
pub use seller::{Seller, report_error};

/// How long the session may take to end.
const END_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the outbox may take to drain before the app exits.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(60);

/// What the app is told to do: one JSON object per line on its stdin.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case")]
pub enum Command {
    /// Go live to `publish_url` with the platform's live session `session_id`.
    GoLive {
        /// Where to publish, `rtmp://HOST:PORT/APP/KEY`.
        publish_url: String,
        /// The platform's live-session id (sales and pins are linked to it).
        session_id: String,
        /// `270p`, `360p`, `480p` or `720p`.
        profile: String,
        /// The adaptive bitrate.
        abr: bool,
        /// Record the replay into `--dir/replay`.
        record: bool,
    },
    /// Pin `product` (ending the open pin first).
    Pin {
        /// The product's id.
        product: String,
    },
    /// End the open pin.
    Unpin,
    /// Take one sale.
    Sell {
        /// The product's id.
        product: String,
        /// Units.
        quantity: i64,
    },
    /// Push no frames for `secs` seconds.
    Background {
        /// How long.
        secs: f64,
    },
    /// Push at most `fps` frames per second (`None`: no cap).
    MaxFps {
        /// The cap.
        fps: Option<u32>,
    },
    /// End the live.
    End,
    /// Upload every recorded segment.
    UploadReplay,
    /// Drain the outbox and exit.
    Exit,
}

impl Command {
    /// Sends the command to an app's stdin as one line.
    pub fn line(&self) -> String {
        serde_json::to_string(self).expect("a command serializes") + "\n"
    }
}

/// Where the app finds the platform and keeps its data.
#[derive(Debug, Clone)]
pub struct AppOptions {
    /// The platform API root as reached from the app, `http://HOST:PORT`.
    pub api: String,
    /// The platform's bearer token.
    pub token: String,
    /// The app's data: its store and its recording.
    pub dir: PathBuf,
}

/// Runs the app until `exit` or the end of stdin; the exit code (0: the outbox drained and no
/// command failed).
pub fn run(options: &AppOptions) -> i32 {
    match App::open(options) {
        Ok(mut app) => {
            AppEvent::Ready { wall_ms: now_ms() }.print();
            let stdin = std::io::stdin().lock();
            for line in stdin.lines() {
                let Ok(line) = line else { break };
                if line.trim().is_empty() {
                    continue;
                }
                match serde_json::from_str::<Command>(&line) {
                    Ok(Command::Exit) => break,
                    Ok(command) => app.obey(command),
                    Err(e) => app.fail("read a command", &format!("{e}: {line}")),
                }
            }
            app.close()
        }
        Err(message) => {
            report_error("start", &message);
            1
        }
    }
}

/// A live with the frames pushed into it.
struct Live {
    session: Arc<LiveSession>,
    pump: FramePump,
    session_id: String,
}

/// The app's state.
struct App {
    /// Dropped first: its thread reads the store.
    _outbox: OutboxReports,
    store: Store,
    engine: SyncEngine,
    seller: Seller,
    dir: PathBuf,
    live: Option<Live>,
}

impl App {
    fn open(options: &AppOptions) -> Result<App, String> {
        let store = Store::open(options.dir.join("fieldcast.db")).map_err(|e| e.to_string())?;
        let engine =
            SyncEngine::start(store.clone(), SyncConfig::new(&options.api, &options.token))
                .map_err(|e| e.to_string())?;
        // The catalog comes from the platform; offline, the one in the store is used.
        if let Err(e) = engine.refresh_catalog() {
            log::warn!("catalog not refreshed: {e}");
        }
        Ok(App {
            _outbox: OutboxReports::start(store.clone())?,
            seller: Seller::new(store.clone()),
            store,
            engine,
            dir: options.dir.clone(),
            live: None,
        })
    }

    fn fail(&mut self, action: &str, message: &str) {
        self.seller.fail(action, message);
    }

    fn obey(&mut self, command: Command) {
        match command {
            Command::GoLive {
                publish_url,
                session_id,
                profile,
                abr,
                record,
            } => {
                if let Err(e) = self.go_live(&publish_url, &session_id, &profile, abr, record) {
                    self.fail("go live", &e);
                }
            }
            Command::Pin { product } => match &self.live {
                Some(live) => self.seller.pin(&live.session, &product),
                None => self.fail("pin", "not live"),
            },
            Command::Unpin => match &self.live {
                Some(live) => self.seller.unpin(&live.session),
                None => self.fail("unpin", "not live"),
            },
            Command::Sell { product, quantity } => self.seller.sell(&product, quantity),
            Command::Background { secs } => match &self.live {
                Some(live) => live.pump.pause(Duration::from_secs_f64(secs.max(0.0))),
                None => self.fail("background", "not live"),
            },
            Command::MaxFps { fps } => match &self.live {
                Some(live) => live.pump.cap_fps(fps),
                None => self.fail("cap the frame rate", "not live"),
            },
            Command::End => self.end(),
            Command::UploadReplay => self.upload_replay(),
            Command::Exit => {}
        }
    }

    fn go_live(
        &mut self,
        publish_url: &str,
        session_id: &str,
        profile: &str,
        abr: bool,
        record: bool,
    ) -> Result<(), String> {
        if self.live.is_some() {
            return Err("already live".into());
        }
        let profile = Scenario::stream_profile(profile)
            .ok_or_else(|| format!("unknown stream profile {profile}"))?;
        let (width, height) = profile.size();
        let mut config = SessionConfig::builder(publish_url)
            .source(Source::App {
                video: AppVideoFormat {
                    format: PixelFormat::I420,
                    width,
                    height,
                },
                audio: None,
            })
            .profile(profile)
            .adaptive_bitrate(abr)
            // The camera paints each frame's capture time; the session keeps it readable on
            // every rung, for the viewer's latency.
            .latency_stamp(true)
            // As in the phone library, which has no x264.
            .encoder(EncoderPreference::OpenH264);
        if record {
            config = config.record_to(self.dir.join("replay"));
        }
        let config = config.build().map_err(|e| e.to_string())?;
        let session = Arc::new(LiveSession::new(config).map_err(|e| e.to_string())?);
        session.link_commerce(Pins::new(self.store.clone()), session_id);
        report_session_events(&session)?;
        session.start().map_err(|e| e.to_string())?;
        let pump = FramePump::start(session.clone(), width, height)?;
        AppEvent::Live {
            wall_ms: now_ms(),
            session_id: session_id.into(),
        }
        .print();
        self.seller.set_session(session_id);
        self.live = Some(Live {
            session,
            pump,
            session_id: session_id.into(),
        });
        Ok(())
    }

    /// Ends the open pin, stops pushing and stops the session.
    fn end(&mut self) {
        let Some(live) = self.live.take() else {
            return self.fail("end", "not live");
        };
        self.seller.unpin(&live.session);
        AppEvent::Stopping { wall_ms: now_ms() }.print();
        live.pump.stop();
        live.session.stop();
        match live.session.wait(Some(END_TIMEOUT)) {
            Ok(SessionState::Ended) => {}
            Ok(state) => self.fail("end", &format!("the session stopped as {state:?}")),
            Err(e) => self.fail("end", &e.to_string()),
        }
        log::info!("live {} ended", live.session_id);
    }

    fn upload_replay(&mut self) {
        let Some(session_id) = self.seller.session_id().map(str::to_string) else {
            return self.fail("upload the replay", "no live to upload");
        };
        let segments = match recorded_segments(&self.dir.join("replay")) {
            Ok(segments) if !segments.is_empty() => segments,
            Ok(_) => return self.fail("upload the replay", "nothing was recorded"),
            Err(e) => return self.fail("upload the replay", &e),
        };
        let mut bytes = 0;
        for segment in &segments {
            match self.engine.upload_file(segment, &session_id) {
                Ok(result) => bytes += result.size,
                Err(e) => {
                    return self.fail("upload the replay", &format!("{}: {e}", segment.display()));
                }
            }
        }
        AppEvent::Replay {
            wall_ms: now_ms(),
            files: segments.len(),
            bytes,
        }
        .print();
    }

    /// Ends a live still running, drains the outbox and reports; the exit code.
    fn close(mut self) -> i32 {
        if self.live.is_some() {
            self.end();
        }
        self.engine.sync_now();
        let drained = self.engine.wait_idle(DRAIN_TIMEOUT);
        match self.store.outbox_counts() {
            Ok(counts) => AppEvent::Done {
                wall_ms: now_ms(),
                drained,
                pending: counts.pending,
                in_flight: counts.in_flight,
                conflicted: counts.conflicted,
                synced: counts.synced,
            }
            .print(),
            Err(e) => self.fail("read the outbox", &e.to_string()),
        }
        self.engine.stop();
        i32::from(!drained || self.seller.failures > 0)
    }
}

/// The recording's segments in `dir`, in order.
fn recorded_segments(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let mut segments: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "mp4"))
        .collect();
    segments.sort();
    Ok(segments)
}

/// Prints the session's state changes, errors and statistics as they come, on a thread that
/// ends when the session is dropped.
pub fn report_session_events(session: &LiveSession) -> Result<(), String> {
    let mut events = session.subscribe();
    std::thread::Builder::new()
        .name("session-events".into())
        .spawn(move || {
            loop {
                match events.blocking_recv() {
                    Ok(SessionEvent::StateChanged { to, .. }) => AppEvent::State {
                        wall_ms: now_ms(),
                        to: format!("{to:?}").to_lowercase(),
                    }
                    .print(),
                    Ok(SessionEvent::Error(e)) => AppEvent::SessionError {
                        wall_ms: now_ms(),
                        message: e.to_string(),
                    }
                    .print(),
                    Ok(SessionEvent::Stats(stats)) => AppEvent::Stats {
                        wall_ms: now_ms(),
                        video_kbps: stats.video_kbps,
                        target_kbps: stats.target_video_kbps,
                        link_kbps: stats.link_kbps,
                        output_fps: stats.output_fps,
                        input_fps: stats.input_fps,
                    }
                    .print(),
                    Ok(_) | Err(RecvError::Lagged(_)) => {}
                    Err(RecvError::Closed) => break,
                }
            }
        })
        .map(drop)
        .map_err(|e| format!("event thread: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_tagged_json_lines() {
        let line = Command::Sell {
            product: "egg-tray".into(),
            quantity: 2,
        }
        .line();
        assert_eq!(
            line,
            "{\"cmd\":\"sell\",\"product\":\"egg-tray\",\"quantity\":2}\n"
        );
        assert_eq!(
            serde_json::from_str::<Command>(r#"{"cmd":"max_fps","fps":null}"#).unwrap(),
            Command::MaxFps { fps: None }
        );
    }

    #[test]
    fn segments_are_listed_in_order() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["fieldcast-00001.mp4", "fieldcast-00000.mp4", "notes.txt"] {
            std::fs::write(dir.path().join(name), b"x").unwrap();
        }
        let names: Vec<String> = recorded_segments(dir.path())
            .unwrap()
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["fieldcast-00000.mp4", "fieldcast-00001.mp4"]);
        assert!(recorded_segments(&dir.path().join("absent")).is_err());
    }
}
