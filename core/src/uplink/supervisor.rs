//! The uplink thread: keeps one [`Connection`] fed from the send window, notices failures and
//! stalls, and reconnects by itself with backoff while the session is live. Before the first
//! successful connection a failure is final (the app asked to go live to an unusable ingest).

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use gstreamer as gst;
use gstreamer::prelude::*;

use super::connection::{Connection, Track};
use super::feed::Feed;
use super::reconnect::{FailureKind, ReconnectDecision, ReconnectPolicy, Reconnector, classify};
use super::send_window::PacketKind;
use super::socket::{self, IngestSockets};
use super::target::IngestTarget;

/// No byte reached the network for this long while media waited: the connection is stalled.
const STALL_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a connection may take to be answered by the ingest before it counts as stalled: the
/// handshake on a lossy link with a long round trip can take several seconds (a lost SYN alone
/// costs one), and rtmp2sink gives up by itself after its own 10 s timeout.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// How long the last media may take to reach the ingest when the session ends.
const FINISH_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the thread sleeps when there is nothing to move.
const TICK: Duration = Duration::from_millis(20);
/// How often the connection's errors, bytes and progress are read.
const CHECK: Duration = Duration::from_millis(100);

/// What the uplink reports to the session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum UplinkEvent {
    /// Media reaches the ingest (first time, or again after a reconnect).
    Connected,
    /// The connection broke; the uplink reconnects by itself.
    Lost(String),
    /// The connection cannot be made or was refused for good (before the first connection, or
    /// an auth / stream key rejection).
    Failed { reason: String, rejected: bool },
    /// Everything up to end-of-stream reached the ingest (or could not, and was given up).
    Drained,
}

/// Handle of the uplink thread.
pub(crate) struct Uplink {
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
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
    /// The fastest the socket may send, kbit/s (0: as fast as TCP likes).
    pacing_kbps: AtomicU32,
    /// Connections that failed (refused, broken or stalled), since the start.
    failures: AtomicU64,
}

impl Uplink {
    /// Starts the uplink thread for `target`, reading from `feed`; `on_event` hears what it
    /// reports, on the uplink's thread.
    pub fn start(
        target: IngestTarget,
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
            pacing_kbps: AtomicU32::new(0),
            failures: AtomicU64::new(0),
        });
        let worker = shared.clone();
        let main = main.downgrade();
        let thread = std::thread::Builder::new()
            .name("fieldcast-uplink".into())
            .spawn(move || run(&worker, &target, &main, &on_event))?;
        Ok(Uplink {
            shared,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Bytes written to the ingest over all connections.
    pub fn bytes_sent(&self) -> u64 {
        self.shared.bytes_before.load(Ordering::Relaxed)
            + self.shared.bytes_current.load(Ordering::Relaxed)
    }

    /// The backlog in the socket since the last call: the least it held not yet sent (see
    /// [`socket`]) over that time. Media there waits on the phone as much as the send window's,
    /// but can no longer be dropped. The least, because the socket takes whole messages and
    /// sends them off: only a backlog that never drained is one.
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

    /// Caps how fast the connection's socket sends (kbit/s; 0 lifts the cap), now and for the
    /// connections after it. TCP paces by its own estimate of the link, which a burst on an idle
    /// link can put far above it; when the link then falls, it floods the network's queue and
    /// loses more than it delivers.
    pub fn set_pacing_kbps(&self, kbps: u32) {
        self.shared.pacing_kbps.store(kbps, Ordering::Relaxed);
    }

    /// Connections that failed since the start.
    pub fn failures(&self) -> u64 {
        self.shared.failures.load(Ordering::Relaxed)
    }

    /// The app saw the network come back: a pending reconnect wait ends now.
    pub fn network_available(&self) {
        self.shared.network_returned.store(true, Ordering::Release);
    }

    /// Stops the thread (abandoning what is not sent) and waits for it.
    pub fn stop(&self) {
        self.shared.stop.store(true, Ordering::Release);
        if let Some(thread) = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Uplink {
    fn drop(&mut self) {
        self.stop();
    }
}

/// How one connection ended.
enum End {
    Failed(String),
    Drained,
    Stopped,
}

fn run(
    shared: &Shared,
    target: &IngestTarget,
    main: &gst::glib::WeakRef<gst::Pipeline>,
    events: &dyn Fn(UplinkEvent),
) {
    let started = Instant::now();
    let mut reconnector = Reconnector::new(ReconnectPolicy::default());
    let mut ever_connected = false;
    loop {
        let Some((video_caps, audio_caps)) = wait_for_caps(shared) else {
            if !shared.stop.load(Ordering::Acquire) {
                events(UplinkEvent::Drained);
            }
            return;
        };
        let Some(main) = main.upgrade() else { return };
        let connection = match Connection::open(target, &video_caps, &audio_caps, &main) {
            Ok(c) => c,
            Err(e) => {
                events(UplinkEvent::Failed {
                    reason: e.to_string(),
                    rejected: false,
                });
                return;
            }
        };
        let end = pump(
            shared,
            target,
            &connection,
            events,
            &mut reconnector,
            &mut ever_connected,
            started,
        );
        if matches!(end, End::Drained) {
            connection.finish(FINISH_TIMEOUT);
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
            connection.sockets.borrow().abort_on_close();
        }
        drop(connection);
        let reason = match end {
            End::Stopped => return,
            End::Drained => {
                events(UplinkEvent::Drained);
                return;
            }
            End::Failed(reason) => reason,
        };
        let kind = classify(&reason);
        if !ever_connected || kind == FailureKind::Rejected {
            let rejected = kind == FailureKind::Rejected;
            events(UplinkEvent::Failed { reason, rejected });
            return;
        }
        let jitter = rand::random::<f64>();
        match reconnector.on_failure(started.elapsed(), kind, jitter) {
            ReconnectDecision::GiveUp { reason } => {
                events(UplinkEvent::Failed {
                    reason,
                    rejected: true,
                });
                return;
            }
            decision => {
                // The app hears of the loss once; failed attempts to come back are only logged.
                if was_connected {
                    events(UplinkEvent::Lost(reason));
                } else {
                    log::info!("reconnect attempt failed: {reason}");
                }
                if let ReconnectDecision::RetryAfter(delay) = decision
                    && !wait_before_retry(shared, delay, &mut reconnector, started)
                {
                    return;
                }
            }
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
    let mut state = shared.feed.lock();
    loop {
        if shared.stop.load(Ordering::Acquire) || (state.ended && state.window.is_empty()) {
            return None;
        }
        if let (Some(v), Some(a)) = (&state.video_caps, &state.audio_caps) {
            return Some((v.clone(), a.clone()));
        }
        if state.ended {
            return None;
        }
        state = shared.feed.wait(state, TICK);
    }
}

/// Feeds one connection until it fails, the media ends, or the uplink stops.
fn pump(
    shared: &Shared,
    target: &IngestTarget,
    connection: &Connection,
    events: &dyn Fn(UplinkEvent),
    reconnector: &mut Reconnector,
    ever_connected: &mut bool,
    started: Instant,
) -> End {
    let mut ready = false;
    let mut connected = false;
    let mut last_bytes = 0;
    let mut last_progress = Instant::now();
    let mut last_check: Option<Instant> = None;
    let mut pacing_applied = 0;
    loop {
        if shared.stop.load(Ordering::Acquire) {
            return End::Stopped;
        }
        // The connection's health is read every CHECK, not per packet: each read of the sink's
        // statistics builds a structure. Until it is ready, more often, so media starts at once.
        let every = if ready { CHECK } else { TICK };
        if last_check.is_none_or(|t| t.elapsed() >= every) {
            last_check = Some(Instant::now());
            if let Some(error) = connection.error() {
                return End::Failed(error);
            }
            if !ready && connection.ready() {
                ready = true;
                // The stall limit for media starts now, not with the handshake.
                last_progress = Instant::now();
                // The connection starts on a keyframe with the audio of the same moment.
                shared.feed.start_connection();
                if let Some(port) = target.tcp_port() {
                    let sockets = IngestSockets::find(port);
                    let limited = sockets.limit_unsent(socket::UNSENT_LIMIT);
                    log::debug!("limited the unsent bytes of {limited} socket(s) to port {port}");
                    *connection.sockets.borrow_mut() = sockets;
                }
            }
            let pacing = shared.pacing_kbps.load(Ordering::Relaxed);
            if ready && pacing != pacing_applied {
                pacing_applied = pacing;
                let limit = if pacing == 0 { u32::MAX / 125 } else { pacing };
                connection.sockets.borrow().limit_pacing(limit);
            }
            let bytes = connection.bytes_sent();
            shared.bytes_current.store(bytes, Ordering::Relaxed);
            if !connected && connection.media_flowing() {
                connected = true;
                *ever_connected = true;
                reconnector.on_connected(started.elapsed());
                events(UplinkEvent::Connected);
            }
            let waiting = !shared.feed.lock().window.is_empty() || !connection.is_drained();
            let stall_limit = if ready {
                STALL_TIMEOUT
            } else {
                CONNECT_TIMEOUT
            };
            if bytes != last_bytes || !waiting {
                last_bytes = bytes;
                last_progress = Instant::now();
            } else if last_progress.elapsed() > stall_limit {
                return End::Failed(format!(
                    "stalled: no byte reached the ingest for {} s",
                    stall_limit.as_secs()
                ));
            }
        }
        let mut state = shared.feed.lock();
        // Ended while waiting for a keyframe: nothing that is left can start a picture.
        if state.ended && (state.window.is_empty() || state.window.holding()) {
            return End::Drained;
        }
        // Media waits in the window (where it can be dropped by whole GOPs) until the connection
        // is up, and then moves in one go as far as the connection has room and the socket is
        // not holding a backlog of its own.
        let unsent = if ready {
            connection.sockets.borrow().unsent_bytes()
        } else {
            None
        };
        if let Some(bytes) = unsent {
            shared.socket_unsent_min.fetch_min(bytes, Ordering::Relaxed);
        }
        let socket_busy = unsent.is_some_and(|b| b >= u64::from(socket::UNSENT_LIMIT));
        let mut room = if ready && !socket_busy {
            connection.room()
        } else {
            0
        };
        let mut moved = false;
        while room > 0
            && let Some(packet) = state.window.pop()
        {
            let track = match packet.kind {
                PacketKind::Video { .. } => Track::Video,
                PacketKind::Audio => Track::Audio,
            };
            if let Err(e) = connection.push(track, packet.payload) {
                return End::Failed(e);
            }
            room -= 1;
            moved = true;
        }
        if !moved {
            drop(shared.feed.wait(state, TICK));
        }
    }
}

/// Sleeps `delay` unless stopped (false) or the app reports the network back (ends early).
fn wait_before_retry(
    shared: &Shared,
    delay: Duration,
    reconnector: &mut Reconnector,
    started: Instant,
) -> bool {
    let deadline = Instant::now() + delay;
    while Instant::now() < deadline {
        if shared.stop.load(Ordering::Acquire) {
            return false;
        }
        if shared.network_returned.swap(false, Ordering::AcqRel) {
            let _ = reconnector.network_available(started.elapsed());
            return true;
        }
        std::thread::sleep(TICK);
    }
    true
}
