//! `fieldcast live`: one session with a live status line; Ctrl-C, SIGTERM and `--duration` stop it
//! cleanly.

use std::fmt;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;

use crate::event_json;
use crate::signals::StopSignals;
use fieldcast_core::uplink::target::redact_url;
use fieldcast_core::{
    EncoderPreference, LiveSession, LiveStats, SessionConfig, SessionEvent, SessionState, Source,
};
use indicatif::{ProgressBar, ProgressStyle};
use tokio::sync::broadcast::error::RecvError;

/// Options of `fieldcast live`. Its `Debug` shows the ingest URL without its stream key.
#[derive(Args, Clone)]
pub struct LiveArgs {
    /// Ingest URL: rtmp://host[:port]/app/key, rtmps://..., or srt://host:port. Printed and
    /// logged without its stream key.
    #[arg(long)]
    pub ingest: String,
    /// Also trust the certificate authorities in this PEM file for an rtmps:// ingest, besides
    /// the system's roots (an ingest behind a private CA).
    #[arg(long, value_name = "FILE")]
    pub ingest_ca: Option<PathBuf>,
    /// test, camera, camera:/dev/videoN, or file:PATH.
    #[arg(long, default_value = "test")]
    pub source: String,
    /// Output rung: 270p, 360p, 480p, 540p or 720p.
    #[arg(long, default_value = "480p")]
    pub profile: String,
    /// Video bitrate in kbit/s (default: the profile's).
    #[arg(long)]
    pub video_kbps: Option<u32>,
    /// Frame rate.
    #[arg(long, default_value_t = 30)]
    pub fps: u32,
    /// H.264 encoder: auto (hardware first, then x264, then openh264), x264 or openh264.
    #[arg(long, default_value = "auto")]
    pub encoder: String,
    /// x264's speed preset when x264 encodes: ultrafast, superfast, veryfast, faster, fast,
    /// medium, slow, slower or veryslow.
    #[arg(long, default_value = "veryfast")]
    pub x264_preset: String,
    /// Also record the encoded stream as MP4 segments in this directory.
    #[arg(long)]
    pub record: Option<PathBuf>,
    /// The device runs one video encoder at a time: with --record and the adaptive bitrate, the
    /// replay follows the live rendition instead of running a second encoder while the live
    /// stream is below full quality.
    #[arg(long)]
    pub one_encoder: bool,
    /// Stop after this many seconds.
    #[arg(long)]
    pub duration: Option<f64>,
    /// Stamp each test-source frame with its capture time for `fieldcast probe`.
    #[arg(long)]
    pub latency_stamp: bool,
    /// No status line; print state changes only.
    #[arg(long, short)]
    pub quiet: bool,
    /// Keep the configured bitrate, size and frame rate whatever the uplink does (the adaptive
    /// bitrate is on by default).
    #[arg(long)]
    pub no_abr: bool,
    /// Print every session event (state, stats, adaptive-bitrate decisions, errors) as one JSON
    /// object per line on stdout, stamped with `wall_ms`; the status line and the state lines on
    /// stderr are off (stderr keeps warnings and notes).
    #[arg(long)]
    pub json_events: bool,
}

impl fmt::Debug for LiveArgs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LiveArgs")
            .field("ingest", &redact_url(&self.ingest))
            .field("ingest_ca", &self.ingest_ca)
            .field("source", &self.source)
            .field("profile", &self.profile)
            .field("video_kbps", &self.video_kbps)
            .field("fps", &self.fps)
            .field("encoder", &self.encoder)
            .field("x264_preset", &self.x264_preset)
            .field("record", &self.record)
            .field("one_encoder", &self.one_encoder)
            .field("duration", &self.duration)
            .field("latency_stamp", &self.latency_stamp)
            .field("quiet", &self.quiet)
            .field("no_abr", &self.no_abr)
            .field("json_events", &self.json_events)
            .finish()
    }
}

/// Reads `--ingest-ca`: a PEM file with at least one certificate.
fn read_ingest_ca(path: &Path) -> Result<String, String> {
    let pem = std::fs::read_to_string(path)
        .map_err(|e| format!("--ingest-ca: cannot read {}: {e}", path.display()))?;
    if !pem.contains("-----BEGIN CERTIFICATE-----") {
        return Err(format!(
            "--ingest-ca: {} holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
            path.display()
        ));
    }
    Ok(pem)
}

/// Parses `--source`.
fn parse_source(raw: &str) -> Result<Source, String> {
    match raw.split_once(':') {
        None if raw == "test" => Ok(Source::Test),
        None if raw == "camera" => Ok(Source::Camera { device: None }),
        Some(("camera", dev)) => Ok(Source::Camera {
            device: Some(dev.into()),
        }),
        Some(("file", path)) => Ok(Source::File(path.into())),
        _ => Err(format!(
            "unknown source `{raw}` (use test, camera[:DEVICE] or file:PATH)"
        )),
    }
}

fn parse_encoder(raw: &str) -> Result<EncoderPreference, String> {
    match raw {
        "auto" => Ok(EncoderPreference::Auto),
        "x264" => Ok(EncoderPreference::X264),
        "openh264" => Ok(EncoderPreference::OpenH264),
        other => Err(format!(
            "unknown encoder `{other}` (use auto, x264 or openh264)"
        )),
    }
}

/// Builds the session configuration from the options.
pub fn config(args: &LiveArgs) -> Result<SessionConfig, String> {
    let source = parse_source(&args.source)?;
    if args.latency_stamp && source != Source::Test {
        return Err("--latency-stamp works with the test source only".into());
    }
    let mut builder = SessionConfig::builder(&args.ingest)
        .source(source)
        .latency_stamp(args.latency_stamp)
        .profile(
            args.profile
                .parse()
                .map_err(|e: fieldcast_core::Error| e.to_string())?,
        )
        .fps(args.fps)
        .encoder(parse_encoder(&args.encoder)?)
        .x264_preset(
            args.x264_preset
                .parse()
                .map_err(|e: fieldcast_core::Error| e.to_string())?,
        )
        .adaptive_bitrate(!args.no_abr)
        .one_video_encoder(args.one_encoder);
    if let Some(kbps) = args.video_kbps {
        builder = builder.video_kbps(kbps);
    }
    if let Some(dir) = &args.record {
        builder = builder.record_to(dir);
    }
    if let Some(path) = &args.ingest_ca {
        builder = builder.ingest_ca_pem(read_ingest_ca(path)?);
    }
    builder.build().map_err(|e| e.to_string())
}

/// Runs `fieldcast live` until the duration, Ctrl-C or SIGTERM, the end of a file, or an error.
pub async fn run(args: LiveArgs) -> Result<(), String> {
    let config = config(&args)?;
    let session = LiveSession::new(config).map_err(|e| e.to_string())?;
    let status = StatusLine::new(args.quiet || args.json_events, !args.json_events);
    status.note(&format!(
        "going live to {} ({} via {})",
        session.config().target.redacted(),
        session.config().profile.name(),
        session.encoder().factory()
    ));
    let final_state = drive(
        &session,
        args.duration.map(Duration::from_secs_f64),
        &status,
        args.json_events,
    )
    .await;
    status.finish();
    let session = std::sync::Arc::new(session);
    let waiter = session.clone();
    let result = tokio::task::spawn_blocking(move || waiter.wait(Some(Duration::from_secs(15))))
        .await
        .map_err(|e| e.to_string())?;
    match result {
        Ok(SessionState::Ended) if args.json_events => {
            println!("{}", event_json::ended(&session.stats()));
            Ok(())
        }
        Ok(SessionState::Ended) => {
            let s = session.stats();
            println!(
                "ended: {:.1} s live, {} frames encoded, {} bytes sent, {} dropped",
                s.uptime.as_secs_f64(),
                s.frames_encoded,
                s.bytes_sent,
                s.dropped_frames
            );
            Ok(())
        }
        Ok(state) => Err(format!(
            "session did not end cleanly (state {state:?}, last event {final_state:?})"
        )),
        Err(e) => Err(e.to_string()),
    }
}

/// Feeds events to the status line; stops the session on SIGINT or SIGTERM or after `duration`.
async fn drive(
    session: &LiveSession,
    duration: Option<Duration>,
    status: &StatusLine,
    json_events: bool,
) -> Option<SessionState> {
    let mut events = session.subscribe();
    let mut signals = match StopSignals::new() {
        Ok(signals) => signals,
        Err(e) => {
            status.note(&e);
            return None;
        }
    };
    if let Err(e) = session.start() {
        status.note(&format!("cannot start: {e}"));
        return None;
    }
    let deadline = tokio::time::sleep(duration.unwrap_or(Duration::from_secs(u64::MAX / 4)));
    tokio::pin!(deadline);
    let mut stopping = false;
    let mut state = SessionState::Connecting;
    loop {
        tokio::select! {
            event = events.recv() => {
                if let (true, Ok(event)) = (json_events, &event) {
                    println!("{}", event_json::event(event));
                }
                match event {
                Ok(SessionEvent::Adapted(decision)) => status.note(&format!("adapted: {decision:?}")),
                Ok(SessionEvent::StateChanged { to, .. }) => {
                    state = to;
                    status.state(to);
                    if to.is_terminal() {
                        return Some(to);
                    }
                }
                Ok(SessionEvent::Stats(stats)) => status.stats(state, &stats),
                Ok(SessionEvent::Error(e)) => status.note(&format!("error: {e}")),
                Ok(SessionEvent::EncoderBitrateFixed { encoder, reason }) => status.note(&format!(
                    "{encoder} cannot change its bitrate while live ({reason:?}): the resolution follows the uplink instead"
                )),
                Ok(SessionEvent::ReplayAtLiveQuality { reason }) => status.note(&format!(
                    "the replay follows the live rendition ({reason})"
                )),
                Err(RecvError::Lagged(_)) => {}
                Err(RecvError::Closed) => return Some(state),
                }
            }
            signal = signals.recv(), if !stopping => {
                status.note(&format!("stopping ({signal})..."));
                stopping = true;
                session.stop();
            }
            _ = &mut deadline, if !stopping => {
                stopping = true;
                session.stop();
            }
        }
    }
}

/// One status line on a terminal; plain lines every few seconds otherwise.
struct StatusLine {
    bar: Option<ProgressBar>,
    quiet: bool,
    /// Whether state changes are printed (not when stdout has them as JSON).
    states: bool,
}

impl StatusLine {
    fn new(quiet: bool, states: bool) -> Self {
        let bar = (!quiet && std::io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::new_spinner();
            bar.set_style(ProgressStyle::with_template("{spinner} {msg}").expect("valid template"));
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        StatusLine { bar, quiet, states }
    }

    fn note(&self, line: &str) {
        match &self.bar {
            Some(bar) => bar.println(line),
            None => eprintln!("{line}"),
        }
    }

    fn state(&self, state: SessionState) {
        if self.states {
            self.note(&format!("state: {state:?}"));
        }
    }

    fn stats(&self, state: SessionState, s: &LiveStats) {
        let line = format!(
            "{state:?} | in {:.0} fps, out {:.0} fps | video {:.0} kbit/s, audio {:.0} kbit/s | sent {:.1} MB | dropped {} | up {}",
            s.input_fps,
            s.output_fps,
            s.video_kbps,
            s.audio_kbps,
            s.bytes_sent as f64 / 1e6,
            s.dropped_frames,
            clock(s.uptime)
        );
        match &self.bar {
            Some(bar) => bar.set_message(line),
            None if !self.quiet && s.uptime.as_secs().is_multiple_of(5) => eprintln!("{line}"),
            None => {}
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

fn clock(d: Duration) -> String {
    let s = d.as_secs();
    format!("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}
