//! `LiveSession`: runs one live stream from start to end, reporting state, stats and errors.

mod adaptation;
mod pins;

use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use gstreamer as gst;
use gstreamer::prelude::*;
use tokio::sync::broadcast;

use crate::config::SessionConfig;
use crate::error::{Error, IngestCause, Result};
use crate::events::{EventHub, LiveStats, SessionEvent, SessionState};
use crate::frame::{FrameError, VideoFrame};
use crate::media::elements;
use crate::media::encoders::VideoEncoderKind;
use crate::media::pipeline::{self, MediaPipeline};
use crate::media::sources::PushOutcome;
use crate::state::{StateInput, step};
use crate::uplink::connection::{self, Endpoint};
use crate::uplink::feed::Feed;
use crate::uplink::send_window::SendWindow;
use crate::uplink::supervisor::{LinkFailure, Uplink, UplinkEvent};
use crate::worker::Worker;
use adaptation::{Adaptation, LiveRendition};

/// How long a stop may take to drain before the pipeline is torn down anyway.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(8);
/// How often the session's figures are reported.
const STATS_EVERY: Duration = Duration::from_secs(1);

/// What wakes the session thread: it sleeps until one of these comes or a timer is due.
enum Wake {
    /// End-of-stream, an error or a warning on the pipeline's bus.
    Bus(gst::Message),
    /// What the uplink reports.
    Uplink(UplinkEvent),
    /// The state changed (a stop asked for from another thread).
    State,
}

/// One live stream. Create it with [`LiveSession::new`], subscribe, then [`LiveSession::start`].
pub struct LiveSession {
    inner: Arc<Inner>,
}

struct Inner {
    config: SessionConfig,
    media: MediaPipeline,
    /// The live stream's encoded media, waiting for the connection.
    feed: Arc<Feed>,
    /// Where the live stream goes.
    endpoint: Endpoint,
    commerce: Mutex<Option<pins::CommerceLink>>,
    uplink: Mutex<Option<Arc<Uplink>>>,
    events: EventHub,
    status: Mutex<Status>,
    changed: Condvar,
    monitor: Worker,
    /// Wakes the session thread.
    wake: Sender<Wake>,
    /// The session thread's end of `wake`, taken when it starts.
    woken: Mutex<Option<Receiver<Wake>>>,
}

struct Status {
    state: SessionState,
    started: Option<Instant>,
    ending_since: Option<Instant>,
    error: Option<Error>,
    stats: LiveStats,
}

impl LiveSession {
    /// Builds the pipeline for `config`; fails fast on missing elements and unusable sources.
    pub fn new(config: SessionConfig) -> Result<Self> {
        elements::init()?;
        config.validate()?;
        connection::check_elements(&config.target)?;
        let endpoint = Endpoint::of(&config.target, config.ingest_ca_pem.as_deref())?;
        let feed = Feed::new(SendWindow::<()>::DEFAULT_CAPACITY)
            .map_err(|e| Error::io("cannot create the uplink's wake-up channel", &e))?;
        let media = pipeline::build(&config, feed.clone())?;
        let (wake, woken) = channel();
        Ok(LiveSession {
            inner: Arc::new(Inner {
                config,
                media,
                feed,
                endpoint,
                commerce: Mutex::new(None),
                uplink: Mutex::new(None),
                events: EventHub::new(),
                status: Mutex::new(Status {
                    state: SessionState::Idle,
                    started: None,
                    ending_since: None,
                    error: None,
                    stats: LiveStats::default(),
                }),
                changed: Condvar::new(),
                monitor: Worker::default(),
                wake,
                woken: Mutex::new(Some(woken)),
            }),
        })
    }

    /// A new receiver of every event from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<SessionEvent> {
        self.inner.events.subscribe()
    }

    /// The current state.
    pub fn state(&self) -> SessionState {
        self.inner.status().state
    }

    /// The most recent one-second statistics.
    pub fn stats(&self) -> LiveStats {
        self.inner.status().stats
    }

    /// The configuration the session runs with.
    pub fn config(&self) -> &SessionConfig {
        &self.inner.config
    }

    /// The H.264 encoder in use.
    pub fn encoder(&self) -> VideoEncoderKind {
        self.inner.media.encoder_kind
    }

    /// Starts capturing, encoding and connecting; returns at once (state `Connecting`).
    pub fn start(&self) -> Result<()> {
        self.inner.transition(StateInput::Start, "start")?;
        self.inner.status().started = Some(Instant::now());
        let woken = self
            .inner
            .woken
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
            .ok_or(Error::InvalidState {
                state: SessionState::Connecting,
                action: "start",
            })?;
        self.inner.watch_bus();
        let wake = self.inner.wake.clone();
        let uplink = Uplink::start(
            self.inner.endpoint.clone(),
            self.inner.feed.clone(),
            &self.inner.media.pipeline,
            move |event| {
                let _ = wake.send(Wake::Uplink(event));
            },
        )
        .map_err(|e| {
            self.inner
                .fail_to_start(Error::io("cannot start the uplink thread", &e))
        })?;
        let uplink = Arc::new(uplink);
        let inner = self.inner.clone();
        let monitored = uplink.clone();
        let handle = std::thread::Builder::new()
            .name("fieldcast-monitor".into())
            .spawn(move || inner.monitor(monitored, woken))
            .map_err(|e| {
                uplink.stop();
                self.inner
                    .fail_to_start(Error::io("cannot start the session thread", &e))
            })?;
        *self.inner.uplink.lock().unwrap_or_else(|p| p.into_inner()) = Some(uplink);
        self.inner.monitor.set(handle);
        if let Err(e) = self.inner.media.pipeline.set_state(gst::State::Playing) {
            // The reason is on the bus; the monitor turns it into a typed error.
            log::debug!("pipeline refused PLAYING: {e}");
        }
        Ok(())
    }

    /// Asks the session to end: sends end-of-stream so the ingest and recording close cleanly.
    /// Returns at once; use [`LiveSession::wait`] to wait for `Ended`.
    pub fn stop(&self) {
        let state = self.state();
        if state == SessionState::Idle {
            let _ = self.inner.transition(StateInput::StopRequested, "stop");
            return;
        }
        if self
            .inner
            .transition(StateInput::StopRequested, "stop")
            .is_ok()
        {
            self.inner.status().ending_since = Some(Instant::now());
            self.inner.media.end_of_stream();
        }
    }

    /// Blocks until the session has ended or failed, or `timeout` passes; returns the final state,
    /// or the error that failed it.
    pub fn wait(&self, timeout: Option<Duration>) -> Result<SessionState> {
        let deadline = timeout.map(|t| Instant::now() + t);
        let mut status = self.inner.status();
        while !status.state.is_terminal() {
            let wait = match deadline {
                Some(d) => match d.checked_duration_since(Instant::now()) {
                    Some(left) => left,
                    None => return Ok(status.state),
                },
                None => Duration::from_secs(3600),
            };
            status = self
                .inner
                .changed
                .wait_timeout(status, wait)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        match (&status.state, &status.error) {
            (SessionState::Failed, Some(e)) => Err(e.clone()),
            (state, _) => Ok(*state),
        }
    }

    /// Pushes one app video frame; never blocks. `Dropped` means the encoder is behind.
    pub fn push_video_frame(&self, frame: &VideoFrame<'_>) -> Result<PushOutcome> {
        self.app_input()?.push_video(frame)
    }

    /// Pushes interleaved S16LE audio captured at `timestamp_us` (same clock as the video).
    pub fn push_audio(&self, data: &[u8], timestamp_us: Option<u64>) -> Result<PushOutcome> {
        self.app_input()?.push_audio(data, timestamp_us)
    }

    /// Tells the session whether the device has a network (from the app's connectivity
    /// callback). When it comes back, a pending reconnect wait ends at once.
    pub fn set_network_available(&self, available: bool) {
        let uplink = self
            .inner
            .uplink
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if let (true, Some(uplink)) = (available, uplink) {
            uplink.network_available();
        }
    }

    /// Inserts a compact JSON message (at most 1 KiB) into the video as an H.264 SEI
    /// `user_data_unregistered` message on the next frame, repeated on the next keyframes.
    /// `build` receives the stream time of that frame (ms since the first video frame) and returns
    /// the JSON; the same time is returned.
    pub fn insert_stream_message(&self, build: impl FnOnce(u64) -> Vec<u8>) -> Result<u64> {
        let state = self.state();
        if !state.is_running() {
            return Err(Error::InvalidState {
                state,
                action: "insert a stream message",
            });
        }
        self.inner.media.tagger.schedule(build)
    }

    fn app_input(&self) -> Result<&crate::media::sources::AppInput> {
        let app = self.inner.media.app.as_ref().ok_or_else(|| {
            Error::from(FrameError::NotAppSource(self.inner.config.source.label()))
        })?;
        let state = self.state();
        if !state.is_running() {
            return Err(Error::InvalidState {
                state,
                action: "push media",
            });
        }
        Ok(app)
    }
}

impl Drop for LiveSession {
    fn drop(&mut self) {
        if !self.state().is_terminal() {
            self.stop();
            let _ = self.wait(Some(DRAIN_TIMEOUT + Duration::from_secs(2)));
        }
        self.inner.monitor.join("session monitor");
        let _ = self.inner.media.pipeline.set_state(gst::State::Null);
    }
}

impl Inner {
    fn status(&self) -> MutexGuard<'_, Status> {
        self.status.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Applies a state-machine input; emits the change after the lock is released.
    fn transition(&self, input: StateInput, action: &'static str) -> Result<SessionState> {
        let (from, to) = {
            let mut status = self.status();
            let from = status.state;
            let to = step(from, input).ok_or(Error::InvalidState {
                state: from,
                action,
            })?;
            status.state = to;
            (from, to)
        };
        self.changed.notify_all();
        let _ = self.wake.send(Wake::State);
        self.events.emit(SessionEvent::StateChanged { from, to });
        Ok(to)
    }

    fn fail(&self, error: Error) {
        log::error!("{error}");
        self.status().error = Some(error.clone());
        self.events.emit(SessionEvent::Error(error));
        let _ = self.transition(StateInput::Fatal, "fail");
    }

    /// Fails a session whose threads could not start (no thread runs to end it otherwise): the
    /// app sees `Failed` and the error, [`LiveSession::wait`] returns it. Returns the error.
    fn fail_to_start(&self, error: Error) -> Error {
        self.fail(error.clone());
        let _ = self.media.pipeline.set_state(gst::State::Null);
        error
    }

    /// Hands the pipeline's end-of-stream, errors and warnings to the session thread as they are
    /// posted; the rest of the bus is dropped (nothing else reads it).
    fn watch_bus(&self) {
        let Some(bus) = self.media.pipeline.bus() else {
            return;
        };
        let wake = self.wake.clone();
        bus.set_sync_handler(move |_, msg| {
            if matches!(
                msg.view(),
                gst::MessageView::Eos(_)
                    | gst::MessageView::Error(_)
                    | gst::MessageView::Warning(_)
            ) {
                let _ = wake.send(Wake::Bus(msg.clone()));
            }
            gst::BusSyncReply::Drop
        });
        // What was posted before the watch (while the pipeline was built) is still queued.
        while let Some(msg) = bus.pop() {
            let _ = self.wake.send(Wake::Bus(msg));
        }
    }

    /// The session thread: it sleeps until the bus, the uplink or a stop wakes it, or until the
    /// adaptive bitrate's next sample, the next stats or the drain timeout is due.
    fn monitor(self: Arc<Self>, uplink: Arc<Uplink>, woken: Receiver<Wake>) {
        let started = self.status().started.unwrap_or_else(Instant::now);
        let mut meter = StatsMeter::new(started, &self.config);
        let mut adaptation = Adaptation::new(&self.config, started);
        let (mut main_drained, mut uplink_drained) = (false, false);
        let mut next_stats = started + STATS_EVERY;
        let adapts =
            |state: SessionState| matches!(state, SessionState::Live | SessionState::Reconnecting);
        if self.config.adaptive && self.config.record.is_some() && self.config.one_video_encoder {
            self.events.emit(SessionEvent::ReplayAtLiveQuality {
                reason: "the device runs one video encoder at a time".into(),
            });
        }
        loop {
            let (state, ending_since) = {
                let s = self.status();
                (s.state, s.ending_since)
            };
            if state.is_terminal() {
                break;
            }
            let drain_deadline = ending_since.map(|t| t + DRAIN_TIMEOUT);
            let due = [
                adaptation
                    .as_ref()
                    .filter(|_| adapts(state))
                    .map(Adaptation::next_sample),
                drain_deadline,
            ]
            .into_iter()
            .flatten()
            .fold(next_stats, Instant::min);
            match woken.recv_timeout(due.saturating_duration_since(Instant::now())) {
                Ok(Wake::Bus(msg)) => match msg.view() {
                    gst::MessageView::Eos(_) => main_drained = true,
                    gst::MessageView::Error(err) if self.own_encoder_failed(err, &uplink) => {}
                    gst::MessageView::Error(err) => {
                        self.record_final_stats(&mut meter, &uplink);
                        self.fail(crate::media::bus::classify(err));
                    }
                    gst::MessageView::Warning(w) => log::warn!(
                        "{}: {}",
                        w.src().map(|s| s.name()).unwrap_or_default(),
                        w.error()
                    ),
                    _ => {}
                },
                Ok(Wake::Uplink(event)) => match event {
                    UplinkEvent::Drained => uplink_drained = true,
                    UplinkEvent::Failed(_) => {
                        self.record_final_stats(&mut meter, &uplink);
                        self.on_uplink(event);
                    }
                    _ => self.on_uplink(event),
                },
                Ok(Wake::State) | Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            if main_drained && uplink_drained {
                self.record_final_stats(&mut meter, &uplink);
                let _ = self.transition(StateInput::Drained, "finish");
                continue;
            }
            let state = self.status().state;
            if state.is_terminal() {
                continue;
            }
            let now = Instant::now();
            if let Some(adaptation) = adaptation
                .as_mut()
                .filter(|a| adapts(state) && now >= a.next_sample())
            {
                for event in adaptation.tick(&self.media, &uplink) {
                    log::info!("adaptive bitrate: {event:?}");
                    self.events.emit(event);
                }
                meter.rendition = adaptation.rendition();
                meter.capacity_kbps = adaptation.capacity_kbps();
            }
            if now >= next_stats {
                next_stats = now + STATS_EVERY;
                if let Some(stats) = meter.tick(&self.media, &uplink) {
                    self.status().stats = stats;
                    self.events.emit(SessionEvent::Stats(stats));
                }
            }
            if drain_deadline.is_some_and(|d| now >= d) {
                log::warn!("end-of-stream did not drain in {DRAIN_TIMEOUT:?}; stopping anyway");
                self.record_final_stats(&mut meter, &uplink);
                let _ = self.transition(StateInput::Drained, "finish");
                break;
            }
        }
        uplink.stop();
        let _ = self.media.pipeline.set_state(gst::State::Null);
    }

    /// Handles an error of the recording's own encoder: the session goes on, the recording
    /// follows the live rendition from then on (a device may refuse a second hardware encoder),
    /// and the app is told. False when the error is not the own encoder's.
    fn own_encoder_failed(&self, err: &gst::message::Error, uplink: &Uplink) -> bool {
        let Some(record) = &self.media.record else {
            return false;
        };
        if !err.src().is_some_and(|src| record.owns(src)) {
            return false;
        }
        if record.fail_own(&self.media.pipeline) {
            let reason = format!(
                "the recording's own encoder failed: {}",
                crate::media::bus::describe(err)
            );
            log::warn!("{reason}; the replay follows the live rendition");
            uplink.feed().request_keyframe();
            self.events
                .emit(SessionEvent::ReplayAtLiveQuality { reason });
        }
        true
    }

    /// Applies what the uplink reports: connected, lost (reconnecting), failed for good.
    fn on_uplink(&self, event: UplinkEvent) {
        // Errors and events show the ingest without its stream key.
        let url = self.config.target.redacted();
        match event {
            UplinkEvent::Connected => {
                let _ = self.transition(StateInput::Connected, "connect");
            }
            UplinkEvent::Lost(LinkFailure { cause, reason }) => {
                self.events
                    .emit(SessionEvent::Error(Error::IngestDisconnected {
                        url,
                        cause,
                        reason,
                    }));
                let _ = self.transition(StateInput::Disconnected, "reconnect");
            }
            UplinkEvent::Failed(LinkFailure { cause, reason }) => {
                let error = if cause == IngestCause::Rejected {
                    Error::IngestRejected { url, cause, reason }
                } else if self.status().state == SessionState::Connecting {
                    Error::IngestUnreachable { url, cause, reason }
                } else {
                    Error::IngestDisconnected { url, cause, reason }
                };
                self.fail(error);
            }
            UplinkEvent::Drained => {}
        }
    }

    /// Stores the figures up to now, before a terminal state wakes the waiters.
    fn record_final_stats(&self, meter: &mut StatsMeter, uplink: &Uplink) {
        if let Some(stats) = meter.tick(&self.media, uplink) {
            self.status().stats = stats;
        }
    }
}

/// Turns the running counters into per-second statistics.
struct StatsMeter {
    /// What the live stream is sent at (updated by the adaptive bitrate).
    rendition: LiveRendition,
    /// The path's capacity as the adaptive bitrate estimates it, kbit/s.
    capacity_kbps: Option<u32>,
    started: Instant,
    last: Instant,
    last_frames_in: u64,
    last_frames_out: u64,
    last_video_bytes: u64,
    last_audio_bytes: u64,
}

impl StatsMeter {
    fn new(started: Instant, config: &SessionConfig) -> Self {
        StatsMeter {
            rendition: LiveRendition {
                video_kbps: config.video_kbps,
                profile: config.profile,
                fps: config.fps,
                audio_only: false,
            },
            capacity_kbps: None,
            started,
            last: started,
            last_frames_in: 0,
            last_frames_out: 0,
            last_video_bytes: 0,
            last_audio_bytes: 0,
        }
    }

    /// The stats since the previous ones (the session thread asks each [`STATS_EVERY`], and once
    /// more for the final figures); `None` when no time has passed.
    fn tick(&mut self, media: &MediaPipeline, uplink: &Uplink) -> Option<LiveStats> {
        let bytes_sent = uplink.bytes_sent();
        let now = Instant::now();
        let secs = now.duration_since(self.last).as_secs_f64();
        if secs <= 0.0 {
            return None;
        }
        let c = &media.counters;
        let frames_in = c.input_frames.load(Ordering::Relaxed);
        let frames_out = c.output_frames.load(Ordering::Relaxed);
        let video_bytes = c.video_bytes.load(Ordering::Relaxed);
        let audio_bytes = c.audio_bytes.load(Ordering::Relaxed);
        let app_dropped = media
            .app
            .as_ref()
            .map_or(0, |a| a.dropped.load(Ordering::Relaxed));
        let rate_dropped = media
            .videorate
            .as_ref()
            .map_or(0, |r| r.property::<u64>("drop"));
        let stats = LiveStats {
            uptime: now.duration_since(self.started),
            input_fps: (frames_in - self.last_frames_in) as f64 / secs,
            output_fps: (frames_out - self.last_frames_out) as f64 / secs,
            video_kbps: (video_bytes - self.last_video_bytes) as f64 * 8.0 / 1000.0 / secs,
            audio_kbps: (audio_bytes - self.last_audio_bytes) as f64 * 8.0 / 1000.0 / secs,
            bytes_sent,
            dropped_frames: app_dropped
                + rate_dropped
                + uplink.feed().dropped_video.load(Ordering::Relaxed),
            frames_encoded: frames_out,
            target_video_kbps: self.rendition.video_kbps,
            width: self.rendition.profile.size().0,
            height: self.rendition.profile.size().1,
            fps: self.rendition.fps,
            audio_only: self.rendition.audio_only,
            send_queue: uplink.feed().lock().window.level(),
            link_kbps: self.capacity_kbps.unwrap_or(0),
            video_encoders: media.record.as_ref().map_or(1, |r| r.encoders()),
        };
        self.last = now;
        self.last_frames_in = frames_in;
        self.last_frames_out = frames_out;
        self.last_video_bytes = video_bytes;
        self.last_audio_bytes = audio_bytes;
        Some(stats)
    }
}
