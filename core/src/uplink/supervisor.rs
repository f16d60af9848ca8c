//! The uplink thread: keeps one [`Connection`] fed from the send window, notices failures and
//! stalls, and reconnects by itself with backoff while the session is live. Before the first
//! successful connection a failure is final (the app asked to go live to an unusable ingest).
//!
//! The thread sleeps in its [`Waker`] on the connection's socket and on wakes (new media, stop,
//! pacing, the network back); its only timers are the deadlines it enforces (connect, stall,
//! retry, finish), so with no media waiting it does not wake at all.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use gstreamer as gst;
use gstreamer::prelude::*;

use super::connection::{Connection, Endpoint};
use super::delivery::{DeliveryMeter, Saturation};
use super::feed::Feed;
use super::reconnect::{FailureKind, ReconnectDecision, ReconnectPolicy, Reconnector, classify};
use super::send_window::PacketKind;
use super::waker::Readiness;
use crate::error::IngestCause;
use crate::media::encoded::Track;
use crate::worker::Worker;

/// No byte reached the network for this long while media waited: the connection is stalled.
const STALL_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a connection may take to be accepted by the ingest (TCP, TLS, the RTMP handshake,
/// `connect` and `publish`): the handshake on a lossy link with a long round trip can take
/// several seconds (a lost SYN alone costs one).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// How long the last media may take to reach the ingest when the session ends.
const FINISH_TIMEOUT: Duration = Duration::from_secs(5);

/// What the uplink reports to the session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum UplinkEvent {
    /// Media reaches the ingest (first time, or again after a reconnect).
    Connected,
    /// The connection broke; the uplink reconnects by itself.
    Lost(LinkFailure),
    /// The connection cannot be made or was refused for good (before the first connection, or
    /// an auth / stream key rejection).
    Failed(LinkFailure),
    /// Everything up to end-of-stream reached the ingest (or could not, and was given up).
    Drained,
}

/// Why a connection failed, typed, with a message for people (never the stream key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LinkFailure {
    pub cause: IngestCause,
    pub reason: String,
}

impl LinkFailure {
    /// A failure reported as text by a network sink, classified.
    pub fn from_text(reason: String) -> Self {
        LinkFailure {
            cause: classify(&reason),
            reason,
        }
    }
}

/// Handle of the uplink thread.
pub(crate) struct Uplink {
    shared: Arc<Shared>,
    thread: Worker,
}

struct Shared {
    feed: Arc<Feed>,
    stop: AtomicBool,
    network_returned: AtomicBool,
    /// Bytes written by finished connections plus the current one.
    bytes_before: AtomicU64,
    bytes_current: AtomicU64,
    /// The least the current connection's socket held not yet sent, over the reads since the
    /// last [`Uplink::take_socket_backlog`] (`u64::MAX`: no read).
    socket_unsent_min: AtomicU64,
    /// What the path delivered since the last [`Uplink::take_delivery`].
    delivery: DeliveryMeter,
    /// The fastest the socket may send, kbit/s (0: as fast as TCP likes).
    pacing_kbps: AtomicU32,
    /// Connections that failed (refused, broken or stalled), since the start.
    failures: AtomicU64,
}

impl Shared {
    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Acquire)
    }
}

impl Uplink {
    /// Starts the uplink thread for `endpoint`, reading from `feed`; `on_event` hears what it
    /// reports, on the uplink's thread.
    pub fn start(
        endpoint: Endpoint,
        feed: Arc<Feed>,
        main: &gst::Pipeline,
        on_event: impl Fn(UplinkEvent) + Send + 'static,
    ) -> std::io::Result<Self> {
        let shared = Arc::new(Shared {
            feed,
            stop: AtomicBool::new(false),
            network_returned: AtomicBool::new(false),
            bytes_before: AtomicU64::new(0),
            bytes_current: AtomicU64::new(0),
            socket_unsent_min: AtomicU64::new(u64::MAX),
            delivery: DeliveryMeter::default(),
            pacing_kbps: AtomicU32::new(0),
            failures: AtomicU64::new(0),
        });
        let worker = shared.clone();
        let main = main.downgrade();
        let thread = std::thread::Builder::new()
            .name("fieldcast-uplink".into())
            .spawn(move || run(&worker, &endpoint, &main, &on_event))?;
        Ok(Uplink {
            shared,
            thread: Worker::new(thread),
        })
    }

    /// The send window and its counters.
    pub fn feed(&self) -> &Arc<Feed> {
        &self.shared.feed
    }

    /// Bytes written to the ingest over all connections.
    pub fn bytes_sent(&self) -> u64 {
        self.shared.bytes_before.load(Ordering::Relaxed)
            + self.shared.bytes_current.load(Ordering::Relaxed)
    }

    /// The backlog in the socket since the last call: the least it held not yet sent over that
    /// time.
    /// Media there waits on the phone as much as the send window's, but can no longer be
    /// dropped. The least, because the socket takes whole messages and sends them off: only a
    /// backlog that never drained is one.
    pub fn take_socket_backlog(&self) -> u64 {
        match self
            .shared
            .socket_unsent_min
            .swap(u64::MAX, Ordering::Relaxed)
        {
            u64::MAX => 0,
            bytes => bytes,
        }
    }

    /// What the path delivered while the socket never ran dry (see [`super::delivery`]), since
    /// the last call that returned it: kbit/s and the time measured; `None` while that time is
    /// under `at_least`.
    pub fn take_delivery(&self, at_least: Duration) -> Option<(u32, Duration)> {
        self.shared.delivery.take(at_least)
    }

    /// Caps how fast the connection's socket sends (kbit/s; 0 lifts the cap), now and for the
    /// connections after it. TCP paces by its own estimate of the link, which a burst on an idle
    /// link can put far above it; when the link then falls, it floods the network's queue and
    /// loses more than it delivers.
    pub fn set_pacing_kbps(&self, kbps: u32) {
        if self.shared.pacing_kbps.swap(kbps, Ordering::Relaxed) != kbps {
            self.shared.feed.waker.wake();
        }
    }

    /// Connections that failed since the start.
    pub fn failures(&self) -> u64 {
        self.shared.failures.load(Ordering::Relaxed)
    }

    /// The app saw the network come back: a pending reconnect wait ends now.
    pub fn network_available(&self) {
        self.shared.network_returned.store(true, Ordering::Release);
        self.shared.feed.waker.wake();
    }

    /// Stops the thread (abandoning what is not sent) and waits for it.
    pub fn stop(&self) {
        self.shared.stop.store(true, Ordering::Release);
        self.shared.feed.waker.wake();
        self.thread.join("uplink");
    }
}

impl Drop for Uplink {
    fn drop(&mut self) {
        self.stop();
    }
}

/// How one connection ended.
enum End {
    Failed(LinkFailure),
    Drained,
    Stopped,
}

/// What the reconnect logic remembers across connections.
struct Attempts {
    reconnector: Reconnector,
    ever_connected: bool,
    started: Instant,
}

fn run(
    shared: &Shared,
    endpoint: &Endpoint,
    main: &gst::glib::WeakRef<gst::Pipeline>,
    events: &dyn Fn(UplinkEvent),
) {
    let mut attempts = Attempts {
        reconnector: Reconnector::new(ReconnectPolicy::default()),
        ever_connected: false,
        started: Instant::now(),
    };
    loop {
        let Some(caps) = wait_for_caps(shared) else {
            if !shared.stopped() {
                events(UplinkEvent::Drained);
            }
            return;
        };
        let Some(main) = main.upgrade() else { return };
        let (end, was_connected) = run_connection(
            shared,
            endpoint,
            (&caps.0, &caps.1),
            &main,
            events,
            &mut attempts,
        );
        let failure = match end {
            End::Stopped => return,
            End::Drained => {
                events(UplinkEvent::Drained);
                return;
            }
            End::Failed(failure) => failure,
        };
        if !retry_after(shared, failure, was_connected, &mut attempts, events) {
            return;
        }
        if shared.feed.lock().ended {
            events(UplinkEvent::Drained);
            return;
        }
    }
}

/// Waits until both streams' caps are known; `None` when stopped, or when the media ended first
/// (nothing left to send, or a track ended before it had caps: nothing could be muxed).
fn wait_for_caps(shared: &Shared) -> Option<(gst::Caps, gst::Caps)> {
    loop {
        {
            let state = shared.feed.lock();
            if shared.stopped() || (state.ended && state.window.is_empty()) {
                return None;
            }
            if let (Some(v), Some(a)) = (&state.video_caps, &state.audio_caps) {
                return Some((v.clone(), a.clone()));
            }
            if state.ended {
                return None;
            }
        }
        shared.feed.waker.wait(None, None);
    }
}

/// Opens one connection, feeds it until it ends, and settles its accounts; returns how it
/// ended and whether media had reached the ingest through it.
fn run_connection(
    shared: &Shared,
    endpoint: &Endpoint,
    caps: (&gst::Caps, &gst::Caps),
    main: &gst::Pipeline,
    events: &dyn Fn(UplinkEvent),
    attempts: &mut Attempts,
) -> (End, bool) {
    let opened = Instant::now();
    let waker = &shared.feed.waker;
    let stopped = || shared.stopped();
    let mut connection = match Connection::open(
        endpoint,
        caps,
        main,
        waker,
        opened + CONNECT_TIMEOUT,
        &stopped,
    ) {
        Ok(connection) => connection,
        Err(_) if shared.stopped() => return (End::Stopped, false),
        Err(failure) => {
            shared.failures.fetch_add(1, Ordering::Relaxed);
            return (End::Failed(failure), false);
        }
    };
    let end = pump(shared, &mut connection, opened, events, attempts);
    if matches!(end, End::Drained) {
        connection.finish(waker, Instant::now() + FINISH_TIMEOUT);
    }
    shared
        .bytes_before
        .fetch_add(connection.bytes_sent(), Ordering::Relaxed);
    shared.bytes_current.store(0, Ordering::Relaxed);
    shared.socket_unsent_min.store(u64::MAX, Ordering::Relaxed);
    let was_connected = connection.media_flowing();
    if matches!(end, End::Failed(_)) {
        shared.failures.fetch_add(1, Ordering::Relaxed);
        shared.feed.count_lost(connection.lost_video());
        connection.abort();
    }
    (end, was_connected)
}

/// After a failed connection: reports it and waits before the next attempt; false when the
/// uplink is done (a final failure, or stopped).
fn retry_after(
    shared: &Shared,
    failure: LinkFailure,
    was_connected: bool,
    attempts: &mut Attempts,
    events: &dyn Fn(UplinkEvent),
) -> bool {
    let kind = FailureKind::from(failure.cause);
    if !attempts.ever_connected || kind == FailureKind::Rejected {
        events(UplinkEvent::Failed(failure));
        return false;
    }
    let jitter = rand::random::<f64>();
    let started = attempts.started;
    match attempts
        .reconnector
        .on_failure(started.elapsed(), kind, jitter)
    {
        ReconnectDecision::GiveUp { reason } => {
            events(UplinkEvent::Failed(LinkFailure {
                cause: IngestCause::Rejected,
                reason,
            }));
            false
        }
        decision => {
            // The app hears of the loss once; failed attempts to come back are only logged.
            if was_connected {
                events(UplinkEvent::Lost(failure));
            } else {
                log::info!("reconnect attempt failed: {}", failure.reason);
            }
            match decision {
                ReconnectDecision::RetryAfter(delay) => wait_before_retry(shared, delay, attempts),
                _ => true,
            }
        }
    }
}

/// The progress of one connection, as the supervisor watches it.
struct Watch {
    opened: Instant,
    live: bool,
    connected: bool,
    last_bytes: u64,
    last_progress: Instant,
    pacing_applied: Option<u32>,
    saturation: Saturation,
}

impl Watch {
    fn new(opened: Instant) -> Self {
        Watch {
            opened,
            live: false,
            connected: false,
            last_bytes: 0,
            last_progress: opened,
            pacing_applied: None,
            saturation: Saturation::default(),
        }
    }

    /// When the connection fails unless something happens: not accepted in time, or no byte
    /// left while media waited.
    fn deadline(&self, waiting: bool) -> Option<Instant> {
        if !self.live {
            Some(self.opened + CONNECT_TIMEOUT)
        } else if waiting {
            Some(self.last_progress + STALL_TIMEOUT)
        } else {
            None
        }
    }

    /// The failure a passed deadline means.
    fn expired(&self, waiting: bool) -> Option<LinkFailure> {
        let deadline = self.deadline(waiting)?;
        if Instant::now() < deadline {
            return None;
        }
        Some(if self.live {
            LinkFailure {
                cause: IngestCause::Stalled,
                reason: format!(
                    "stalled: no byte reached the ingest for {} s",
                    STALL_TIMEOUT.as_secs()
                ),
            }
        } else {
            LinkFailure {
                cause: IngestCause::Handshake,
                reason: format!(
                    "the ingest did not accept the stream within {} s of connecting",
                    CONNECT_TIMEOUT.as_secs()
                ),
            }
        })
    }
}

/// Feeds one connection until it fails, the media ends, or the uplink stops.
fn pump(
    shared: &Shared,
    connection: &mut Connection,
    opened: Instant,
    events: &dyn Fn(UplinkEvent),
    attempts: &mut Attempts,
) -> End {
    let mut watch = Watch::new(opened);
    let mut ready = Readiness::default();
    loop {
        if shared.stopped() {
            return End::Stopped;
        }
        if watch.live
            && let Some((bytes, took)) = watch.saturation.woke(connection.reading())
        {
            shared.delivery.add(bytes, took);
        }
        if let Err(failure) = connection.service(ready) {
            return End::Failed(failure);
        }
        if !watch.live && connection.is_live() {
            go_live(shared, &mut watch);
        }
        apply_pacing(shared, connection, &mut watch);
        let waiting = match move_media(shared, connection) {
            Ok(Flow::Ended) => return End::Drained,
            Ok(Flow::Waiting(waiting)) => waiting,
            Err(failure) => return End::Failed(failure),
        };
        note_progress(shared, connection, &mut watch, waiting, events, attempts);
        if let Some(failure) = watch.expired(waiting) {
            return End::Failed(failure);
        }
        ready = shared
            .feed
            .waker
            .wait(connection.wait_on(), watch.deadline(waiting));
    }
}

/// The ingest accepted the stream: the connection starts on a keyframe with the audio of the
/// same moment, and the stall limit for media starts now, not with the handshake.
fn go_live(shared: &Shared, watch: &mut Watch) {
    watch.live = true;
    watch.last_progress = Instant::now();
    shared.feed.start_connection();
}

/// Applies a new pacing cap to the live connection's socket.
fn apply_pacing(shared: &Shared, connection: &Connection, watch: &mut Watch) {
    let pacing = shared.pacing_kbps.load(Ordering::Relaxed);
    if watch.live && watch.pacing_applied != Some(pacing) {
        watch.pacing_applied = Some(pacing);
        connection.set_pacing(pacing);
    }
}

/// What moving media found.
enum Flow {
    /// The media ended and everything that could be sent was handed over.
    Ended,
    /// Whether media still waits (in the window or in the connection).
    Waiting(bool),
}

/// Moves media from the window into the connection as far as it takes it. Media waits in the
/// window (where it can be dropped by whole GOPs) until the connection is live and has room.
fn move_media(shared: &Shared, connection: &mut Connection) -> Result<Flow, LinkFailure> {
    loop {
        let packet = {
            let mut state = shared.feed.lock();
            // Ended while waiting for a keyframe: nothing that is left can start a picture.
            if state.ended && (state.window.is_empty() || state.window.holding()) {
                return Ok(Flow::Ended);
            }
            if !connection.wants_media() {
                return Ok(Flow::Waiting(
                    !state.window.is_empty() || !connection.is_drained(),
                ));
            }
            match state.window.pop() {
                Some(packet) => packet,
                None => return Ok(Flow::Waiting(!connection.is_drained())),
            }
        };
        let track = match packet.kind {
            PacketKind::Video { .. } => Track::Video,
            PacketKind::Audio => Track::Audio,
        };
        connection.push(track, packet.payload)?;
    }
}

/// Records the bytes sent and the backlog, restarts the stall clock on progress, and reports
/// the first media through the connection.
fn note_progress(
    shared: &Shared,
    connection: &Connection,
    watch: &mut Watch,
    waiting: bool,
    events: &dyn Fn(UplinkEvent),
    attempts: &mut Attempts,
) {
    let bytes = connection.bytes_sent();
    shared.bytes_current.store(bytes, Ordering::Relaxed);
    if watch.live
        && let Some(backlog) = connection.backlog()
    {
        shared
            .socket_unsent_min
            .fetch_min(backlog, Ordering::Relaxed);
    }

    if bytes != watch.last_bytes || !waiting {
        watch.last_bytes = bytes;
        watch.last_progress = Instant::now();
    }
    if !watch.connected && connection.media_flowing() {
        watch.connected = true;
        attempts.ever_connected = true;
        attempts
            .reconnector
            .on_connected(attempts.started.elapsed());
        events(UplinkEvent::Connected);
    }
}

/// Sleeps `delay` unless stopped (false) or the app reports the network back (ends early).
fn wait_before_retry(shared: &Shared, delay: Duration, attempts: &mut Attempts) -> bool {
    let deadline = Instant::now() + delay;
    loop {
        if shared.stopped() {
            return false;
        }
        if shared.network_returned.swap(false, Ordering::AcqRel) {
            let _ = attempts
                .reconnector
                .network_available(attempts.started.elapsed());
            return true;
        }
        if Instant::now() >= deadline {
            return true;
        }
        shared.feed.waker.wait(None, Some(deadline));
    }
}
