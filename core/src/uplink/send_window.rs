//! The bounded send side: encoded packets wait here for the socket, never more than about
//! `capacity` of media. When the window overflows it drops whole GOPs of video (never audio), so
//! latency stays bounded and the stream stays decodable. Pure: no clock, no I/O.

use std::collections::VecDeque;
use std::time::Duration;

/// What an encoded packet carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PacketKind {
    /// An H.264 access unit; `keyframe` when it starts a GOP (IDR).
    Video {
        /// True for an IDR frame, where a decoder can start.
        keyframe: bool,
    },
    /// An AAC frame.
    Audio,
}

/// One encoded packet waiting to be sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet<T> {
    /// Audio or video, and whether video is a keyframe.
    pub kind: PacketKind,
    /// Presentation time on the stream clock.
    pub pts: Duration,
    /// Encoded size in bytes.
    pub size: usize,
    /// The encoded data (a GStreamer buffer in the session, anything in tests).
    pub payload: T,
}

impl<T> Packet<T> {
    fn is_video(&self) -> bool {
        matches!(self.kind, PacketKind::Video { .. })
    }

    fn is_keyframe(&self) -> bool {
        self.kind == PacketKind::Video { keyframe: true }
    }
}

/// What a push cost.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PushResult {
    /// Video packets dropped by this push (old GOPs, or frames that cannot start a GOP).
    pub dropped_video: usize,
    /// Ask the encoder for a keyframe now: video can only resume at one.
    pub request_keyframe: bool,
    /// Whole GOPs dropped because the window was full (a sign of congestion).
    pub dropped_gops: usize,
    /// Audio frames dropped because the window held more than twice its capacity of audio
    /// alone (only in an outage: on a slow link video goes first).
    pub dropped_audio: usize,
}

/// How far behind the newest media a new connection may start.
const START_BACKLOG: Duration = Duration::from_secs(1);

/// How far before a connection's first keyframe its audio may start: one AAC frame (1024
/// samples at 44.1 kHz is 23.2 ms).
const AUDIO_OVERLAP: Duration = Duration::from_millis(25);

/// Audio waits for at most this many capacities; beyond it the oldest audio goes.
const AUDIO_SPAN_FACTOR: u32 = 2;

/// How much video may go by after a keyframe was asked for before it is asked for again: an
/// encoder folds a request into one it is still serving, so a request can be lost when the
/// keyframe that served it was dropped here.
const KEYFRAME_RETRY: Duration = Duration::from_millis(500);

/// Whether video may enter the window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum VideoGate {
    /// Video flows.
    Open,
    /// Video resumes at the next keyframe; `asked_at` is the newest video's time when the
    /// encoder was last asked for it (`None`: not asked yet).
    AwaitKeyframe { asked_at: Option<Duration> },
}

/// A FIFO of encoded packets bounded in media time.
#[derive(Debug)]
pub struct SendWindow<T> {
    queue: VecDeque<Packet<T>>,
    capacity: Duration,
    gate: VideoGate,
    /// A new connection waits for its first keyframe: nothing leaves until it is here, so the
    /// connection starts with video and the audio of the same moment.
    holding: bool,
    /// Audio older than this belongs before the keyframe a connection started at; it can still
    /// arrive after that keyframe (the audio encoder lags the video one) and is dropped.
    audio_from: Option<Duration>,
    /// The connection expects video and has not carried any yet: skipping video now must not
    /// let it start with audio alone.
    awaiting_first_video: bool,
    /// The presentation time of the newest video pushed, dropped or not.
    newest_video: Option<Duration>,
}

impl<T> Default for SendWindow<T> {
    /// A window of [`SendWindow::DEFAULT_CAPACITY`].
    fn default() -> Self {
        SendWindow::new(Self::DEFAULT_CAPACITY)
    }
}

impl<T> SendWindow<T> {
    /// About 2 s of media: one GOP at the encoder's 2 s keyframe interval.
    pub const DEFAULT_CAPACITY: Duration = Duration::from_secs(2);

    /// An empty window holding at most `capacity` of media (plus the GOP being dropped). Video
    /// starts at the first keyframe, so every connection begins decodable.
    pub fn new(capacity: Duration) -> Self {
        SendWindow {
            queue: VecDeque::new(),
            capacity,
            gate: VideoGate::AwaitKeyframe { asked_at: None },
            holding: false,
            audio_from: None,
            awaiting_first_video: false,
            newest_video: None,
        }
    }

    /// Adds a packet without ever blocking. Video that cannot start a GOP after a drop is dropped
    /// itself (and the keyframe asked for again when it is `KEYFRAME_RETRY` late); when the
    /// window then spans more than the capacity, the oldest GOPs of video go.
    pub fn push(&mut self, packet: Packet<T>) -> PushResult {
        let mut result = PushResult::default();
        if packet.is_video() {
            self.newest_video = Some(packet.pts);
        }
        match (packet.kind, self.gate) {
            (PacketKind::Video { keyframe: false }, VideoGate::AwaitKeyframe { asked_at }) => {
                result.dropped_video = 1;
                if asked_at.is_none_or(|at| packet.pts.saturating_sub(at) >= KEYFRAME_RETRY) {
                    result.request_keyframe = true;
                    self.gate = VideoGate::AwaitKeyframe {
                        asked_at: Some(packet.pts),
                    };
                }
                return result;
            }
            (PacketKind::Video { keyframe: true }, _) => self.gate = VideoGate::Open,
            (PacketKind::Audio, _) if self.audio_from.is_some_and(|from| packet.pts < from) => {
                return result;
            }
            _ => {}
        }
        let starts_held_connection = self.holding && packet.is_keyframe();
        self.queue.push_back(packet);
        if starts_held_connection {
            self.holding = false;
            self.align_to_start_keyframe();
        }
        // With no video left to drop (an outage), audio alone must not pile up either.
        while self.level() > self.capacity * AUDIO_SPAN_FACTOR
            && self.queue.front().is_some_and(|p| !p.is_video())
        {
            self.queue.pop_front();
            result.dropped_audio += 1;
        }
        while self.video_age() > self.capacity {
            let (dropped, reached_newest) = self.drop_oldest_gop();
            result.dropped_video += dropped;
            result.dropped_gops += 1;
            if reached_newest {
                result.request_keyframe = true;
                self.gate = self.asked_now();
                break;
            }
        }
        result
    }

    /// The next packet to send: the earlier of the oldest video and the oldest audio waiting
    /// (each track is in push order), so that what was pushed out of step (the audio encoder
    /// lags the video one, most at the start) leaves in step; a muxer clamps media that comes
    /// behind the other track's. Nothing while a new connection waits for its keyframe.
    pub fn pop(&mut self) -> Option<Packet<T>> {
        if self.holding {
            return None;
        }
        let first = self.queue.front()?;
        let other = self
            .queue
            .iter()
            .position(|p| p.is_video() != first.is_video());
        let packet = match other {
            Some(i) if self.queue[i].pts < first.pts => self.queue.remove(i),
            _ => self.queue.pop_front(),
        };
        if packet.as_ref().is_some_and(Packet::is_video) {
            self.awaiting_first_video = false;
        }
        packet
    }

    /// True while a new connection waits for its first keyframe.
    pub fn holding(&self) -> bool {
        self.holding
    }

    /// True when nothing waits to be sent.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Bytes of media waiting.
    pub fn bytes(&self) -> usize {
        self.queue.iter().map(|p| p.size).sum()
    }

    /// The span of media waiting: newest minus oldest presentation time. Video is kept within the
    /// capacity; audio of a dropped GOP stays, so the span is at most the capacity plus one GOP.
    pub fn level(&self) -> Duration {
        let pts = self.queue.iter().map(|p| p.pts);
        match (pts.clone().min(), pts.max()) {
            (Some(oldest), Some(newest)) => newest - oldest,
            _ => Duration::ZERO,
        }
    }

    /// Prepares the window for a connection that is about to take media: it must start decodable,
    /// with audio and video in step, and close to now. It starts at the oldest waiting keyframe
    /// at most `START_BACKLOG` (1 s) behind the newest media (else at the newest keyframe): a backlog
    /// built while connecting would otherwise stay as latency on a link with no capacity to spare.
    /// Video before that keyframe goes, with the audio before it (all but the one audio frame
    /// that overlaps the keyframe). Without a
    /// waiting keyframe everything goes and the window holds what comes next until a keyframe
    /// arrives (the caller asks the encoder for one). With `expect_video` false (the stream is
    /// audio only) audio starts at once. Returns the number of video packets dropped.
    pub fn start_connection(&mut self, expect_video: bool) -> usize {
        self.awaiting_first_video = expect_video;
        if !expect_video {
            self.holding = false;
            return 0;
        }
        if self.queue.iter().any(Packet::is_keyframe) {
            self.holding = false;
            return self.align_to_start_keyframe();
        }
        let dropped_video = self.queue.iter().filter(|p| p.is_video()).count();
        self.queue.clear();
        self.gate = VideoGate::AwaitKeyframe { asked_at: None };
        self.holding = true;
        dropped_video
    }

    /// Drops video before the keyframe a connection starts at (the oldest one at most
    /// `START_BACKLOG` (1 s) behind the newest media, else the newest) and the audio before it but the
    /// frame that overlaps it; returns the number of video packets dropped.
    fn align_to_start_keyframe(&mut self) -> usize {
        let newest = self.queue.iter().map(|p| p.pts).max().unwrap_or_default();
        let keyframes = || {
            self.queue
                .iter()
                .enumerate()
                .filter(|(_, p)| p.is_keyframe())
        };
        let recent = keyframes()
            .find(|(_, p)| newest.saturating_sub(p.pts) <= START_BACKLOG)
            .or_else(|| keyframes().last())
            .map(|(i, _)| i);
        let Some(key) = recent else {
            return 0;
        };
        let key_pts = self.queue[key].pts;
        self.audio_from = Some(key_pts.saturating_sub(AUDIO_OVERLAP));
        // The last audio frame starting before the keyframe covers it: keep that one.
        let overlapping_audio = self
            .queue
            .iter()
            .enumerate()
            .filter(|(_, p)| !p.is_video() && p.pts < key_pts)
            .max_by_key(|(_, p)| p.pts)
            .map(|(i, _)| i);
        let mut dropped_video = 0;
        let mut index = 0;
        self.queue.retain(|p| {
            let audio_kept =
                !p.is_video() && (p.pts >= key_pts || Some(index) == overlapping_audio);
            let keep = index >= key || audio_kept;
            dropped_video += usize::from(!keep && p.is_video());
            index += 1;
            keep
        });
        dropped_video
    }

    /// Drops all waiting video to skip a backlog; audio stays. Video resumes at the next
    /// keyframe, which the caller asks for now. A connection that has not carried video yet
    /// holds again until that keyframe, so that it still starts with audio and video in step.
    /// Returns the number dropped.
    pub fn skip_video(&mut self) -> usize {
        let before = self.queue.len();
        self.queue.retain(|p| !p.is_video());
        self.gate = self.asked_now();
        if self.awaiting_first_video {
            self.holding = true;
        }
        before - self.queue.len()
    }

    /// Drops all waiting video (the stream goes audio only, and its audio leaves at once); video
    /// resumes at the next keyframe, which the caller asks for when it wants video back. Returns
    /// the number dropped.
    pub fn drop_video(&mut self) -> usize {
        self.awaiting_first_video = false;
        let dropped = self.skip_video();
        self.holding = false;
        dropped
    }

    /// The gate of video that waits for a keyframe the encoder was asked for now.
    fn asked_now(&self) -> VideoGate {
        VideoGate::AwaitKeyframe {
            asked_at: Some(self.newest_video.unwrap_or_default()),
        }
    }

    /// How long the oldest waiting video has waited, measured against the newest packet.
    fn video_age(&self) -> Duration {
        let newest = self.queue.iter().map(|p| p.pts).max();
        let oldest_video = self
            .queue
            .iter()
            .filter(|p| p.is_video())
            .map(|p| p.pts)
            .min();
        match (newest, oldest_video) {
            (Some(newest), Some(oldest)) => newest.saturating_sub(oldest),
            _ => Duration::ZERO,
        }
    }

    /// Drops video from the oldest waiting video packet up to, not including, the next keyframe
    /// after it. Returns how many packets went and whether no keyframe was left (the newest GOP
    /// was dropped too).
    fn drop_oldest_gop(&mut self) -> (usize, bool) {
        let Some(first) = self.queue.iter().position(Packet::is_video) else {
            return (0, true);
        };
        let next_key = self
            .queue
            .iter()
            .skip(first + 1)
            .position(Packet::is_keyframe)
            .map(|i| i + first + 1);
        let end = next_key.unwrap_or(self.queue.len());
        let mut dropped = 0;
        let mut index = 0;
        self.queue.retain(|p| {
            let drop = (first..end).contains(&index) && p.is_video();
            dropped += usize::from(drop);
            index += 1;
            !drop
        });
        (dropped, next_key.is_none())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FRAME: Duration = Duration::from_micros(33_333);
    const AUDIO_FRAME: Duration = Duration::from_micros(23_220);

    /// Encoded media in presentation order: 30 fps video with a keyframe every `gop` (keyframes
    /// 30 KB, other frames 3 KB) and AAC frames of 400 bytes; the payload is the push sequence.
    fn media(length: Duration, gop: Duration) -> Vec<Packet<u64>> {
        let frames_per_gop = (gop.as_secs_f64() / FRAME.as_secs_f64()).round() as u32;
        let mut packets = Vec::new();
        let mut video = 0u32;
        let mut audio = 0u32;
        loop {
            let (vpts, apts) = (FRAME * video, AUDIO_FRAME * audio);
            if vpts.min(apts) >= length {
                break;
            }
            if vpts <= apts {
                let keyframe = video.is_multiple_of(frames_per_gop);
                let size = if keyframe { 30_000 } else { 3_000 };
                packets.push((PacketKind::Video { keyframe }, vpts, size));
                video += 1;
            } else {
                packets.push((PacketKind::Audio, apts, 400));
                audio += 1;
            }
        }
        packets
            .into_iter()
            .zip(0..)
            .map(|((kind, pts, size), payload)| Packet {
                kind,
                pts,
                size,
                payload,
            })
            .collect()
    }

    /// Everything the window lets out, by payload.
    fn drain(window: &mut SendWindow<u64>) -> Vec<u64> {
        std::iter::from_fn(|| window.pop())
            .map(|p| p.payload)
            .collect()
    }

    fn audio(pts_ms: u64) -> Packet<u64> {
        Packet {
            kind: PacketKind::Audio,
            pts: Duration::from_millis(pts_ms),
            size: 400,
            payload: pts_ms,
        }
    }

    fn video(keyframe: bool, pts_ms: u64) -> Packet<u64> {
        Packet {
            kind: PacketKind::Video { keyframe },
            pts: Duration::from_millis(pts_ms),
            size: 3_000,
            payload: pts_ms,
        }
    }

    /// What a consumer draining `bytes_per_s` received while `media` was pushed in real time, and
    /// the highest level seen.
    fn slow_consumer(
        window: &mut SendWindow<u64>,
        media: Vec<Packet<u64>>,
        bytes_per_s: f64,
    ) -> (Vec<Packet<u64>>, Duration, PushResult) {
        let mut sent = Vec::new();
        let mut budget = 0.0;
        let mut last = Duration::ZERO;
        let mut max_level = Duration::ZERO;
        let mut totals = PushResult::default();
        for packet in media {
            budget += (packet.pts.saturating_sub(last)).as_secs_f64() * bytes_per_s;
            last = last.max(packet.pts);
            while window
                .queue
                .front()
                .is_some_and(|p| p.size as f64 <= budget)
            {
                let p = window.pop().unwrap();
                budget -= p.size as f64;
                sent.push(p);
            }
            let result = window.push(packet);
            totals.dropped_video += result.dropped_video;
            totals.request_keyframe |= result.request_keyframe;
            max_level = max_level.max(window.level());
        }
        (sent, max_level, totals)
    }

    #[test]
    fn a_slow_consumer_keeps_the_level_bounded_and_gets_all_audio() {
        let gop = Duration::from_secs(2);
        let media = media(Duration::from_secs(120), gop);
        let audio_in = media.iter().filter(|p| p.kind == PacketKind::Audio).count();
        let mut window = SendWindow::default();
        // 25 KB/s against about 100 KB/s of media.
        let (sent, max_level, totals) = slow_consumer(&mut window, media, 25_000.0);

        assert!(
            max_level <= SendWindow::<u64>::DEFAULT_CAPACITY + gop,
            "level reached {max_level:?}"
        );
        assert!(totals.dropped_video > 1_000, "{totals:?}");
        let audio_out = sent.iter().filter(|p| p.kind == PacketKind::Audio).count()
            + window.queue.iter().filter(|p| !p.is_video()).count();
        assert_eq!(audio_out, audio_in, "no audio is ever dropped");
        assert!(
            sent.windows(2).all(|w| w[0].payload < w[1].payload),
            "order preserved"
        );
    }

    #[test]
    fn video_after_a_drop_starts_with_a_keyframe() {
        let frame_index = |p: &Packet<u64>| (p.pts.as_secs_f64() / FRAME.as_secs_f64()).round();
        for gop in [Duration::from_secs(1), Duration::from_secs(2)] {
            let mut window = SendWindow::default();
            let (sent, _, _) =
                slow_consumer(&mut window, media(Duration::from_secs(60), gop), 30_000.0);
            let sent_video: Vec<_> = sent.iter().filter(|p| p.is_video()).collect();
            assert!(sent_video[0].is_keyframe());
            let mut gaps = 0;
            for pair in sent_video.windows(2) {
                if frame_index(pair[1]) != frame_index(pair[0]) + 1.0 {
                    gaps += 1;
                    assert!(pair[1].is_keyframe(), "resumed at {:?}", pair[1].pts);
                }
            }
            assert!(gaps > 5, "{gaps} gaps with a {gop:?} GOP");
        }
    }

    #[test]
    fn a_stalled_consumer_drops_up_to_the_newest_gop_and_asks_for_a_keyframe() {
        // A 4 s GOP outlives the 2 s window, so only a fresh keyframe can save the video.
        let mut window = SendWindow::default();
        let mut requests = 0;
        let mut dropped = 0;
        let mut gops = 0;
        for packet in media(Duration::from_secs(12), Duration::from_secs(4)) {
            let result = window.push(packet);
            requests += usize::from(result.request_keyframe);
            dropped += result.dropped_video;
            gops += result.dropped_gops;
        }
        // Nothing answers the requests here: one when a GOP outgrew the window, then one per
        // KEYFRAME_RETRY of video still waiting, not one per dropped frame.
        assert_eq!(gops, 3);
        assert_eq!(requests, 12, "{dropped} frames dropped");
        assert!(dropped > 100);
        let video: Vec<_> = window.queue.iter().filter(|p| p.is_video()).collect();
        assert!(video.first().is_none_or(|p| p.is_keyframe()));
        assert!(window.queue.iter().any(|p| !p.is_video()));
    }

    #[test]
    fn video_starts_at_a_keyframe_and_asks_for_one_once() {
        let mut window = SendWindow::default();
        let first = window.push(video(false, 0));
        assert_eq!(
            first,
            PushResult {
                dropped_video: 1,
                request_keyframe: true,
                dropped_gops: 0,
                dropped_audio: 0,
            }
        );
        assert!(!window.push(video(false, 33)).request_keyframe);
        assert_eq!(window.push(video(true, 66)), PushResult::default());
        assert_eq!(window.push(video(false, 100)), PushResult::default());
        let pts: Vec<u64> = std::iter::from_fn(|| window.pop())
            .map(|p| p.payload)
            .collect();
        assert_eq!(pts, [66, 100]);
        assert!(window.is_empty());
        assert_eq!(window.level(), Duration::ZERO);
    }

    #[test]
    fn a_keyframe_still_missing_after_half_a_second_is_asked_for_again() {
        // The encoder never answers: one request per KEYFRAME_RETRY of video, not per frame.
        let mut window = SendWindow::default();
        let requests: Vec<u64> = (0..31)
            .map(|i| i * 33)
            .filter(|&ms| window.push(video(false, ms)).request_keyframe)
            .collect();
        assert_eq!(requests, [0, 528]);
        // Asked by the caller when the backlog was skipped: asked again only 500 ms later.
        window.push(video(true, 1_023));
        assert_eq!(window.skip_video(), 1);
        assert!(!window.push(video(false, 1_056)).request_keyframe);
        assert!(window.push(video(false, 1_551)).request_keyframe);
    }

    #[test]
    fn skipping_video_before_a_connection_carried_any_keeps_it_waiting_for_a_keyframe() {
        // No keyframe waited: the connection holds; a skip must not let its audio go first.
        let mut window = SendWindow::default();
        window.push(video(false, 0));
        window.start_connection(true);
        window.push(audio(10));
        assert_eq!(window.skip_video(), 0);
        window.push(audio(33));
        assert!(window.holding() && window.pop().is_none());
        window.push(video(true, 66));
        window.push(audio(80));
        assert_eq!(drain(&mut window), [33, 66, 80]);

        // A keyframe waited and the connection started at it, but the skip came before any video
        // left: it holds again for the next keyframe.
        let mut window = SendWindow::default();
        window.push(video(true, 0));
        window.push(audio(5));
        window.start_connection(true);
        assert_eq!(window.skip_video(), 1);
        window.push(audio(28));
        assert!(window.holding() && window.pop().is_none());
        window.push(video(true, 40));
        assert_eq!(drain(&mut window), [28, 40]);

        // Once video has left, a skip only drops what waits: audio goes on.
        window.push(video(false, 73));
        window.push(audio(75));
        assert_eq!(window.skip_video(), 1);
        assert!(!window.holding());
        assert_eq!(drain(&mut window), [75]);
    }

    #[test]
    fn reconnect_starts_on_a_keyframe_with_audio_aligned() {
        let mut window = SendWindow::default();
        // 1.5 s of media with keyframes at 0 and 1 s; the consumer took the first 0.3 s.
        for packet in media(Duration::from_millis(1_500), Duration::from_secs(1)) {
            window.push(packet);
        }
        while window
            .queue
            .front()
            .is_some_and(|p| p.pts < Duration::from_millis(300))
        {
            window.pop();
        }
        let dropped = window.start_connection(true);
        assert_eq!(dropped, 20, "frames 10..=29 of the first GOP");

        let rest: Vec<_> = std::iter::from_fn(|| window.pop()).collect();
        let key = rest.iter().find(|p| p.is_video()).unwrap();
        assert!(key.is_keyframe());
        assert_eq!(key.pts, FRAME * 30);
        let first_audio = rest.iter().find(|p| !p.is_video()).unwrap();
        assert!(first_audio.pts <= key.pts && key.pts - first_audio.pts < AUDIO_FRAME);
        let expected_audio = (0..)
            .map(|i| AUDIO_FRAME * i)
            .take_while(|pts| *pts < Duration::from_millis(1_500))
            .filter(|pts| *pts + AUDIO_FRAME > key.pts)
            .count();
        assert_eq!(
            rest.iter().filter(|p| !p.is_video()).count(),
            expected_audio
        );
        assert!(rest.windows(2).all(|w| w[0].payload < w[1].payload));
    }

    #[test]
    fn audio_only_drops_waiting_video_and_video_resumes_at_a_keyframe() {
        let mut window = SendWindow::default();
        window.push(video(true, 0));
        window.push(video(false, 33));
        window.push(Packet {
            kind: PacketKind::Audio,
            pts: Duration::from_millis(40),
            size: 400,
            payload: 40,
        });
        assert_eq!(window.bytes(), 6_400);
        assert_eq!(window.drop_video(), 2);
        assert_eq!(window.bytes(), 400, "audio stays");
        let late = window.push(video(false, 66));
        assert_eq!(late.dropped_video, 1);
        assert!(
            !late.request_keyframe,
            "the caller asks when it wants video back"
        );
        window.push(video(true, 100));
        let order = drain(&mut window);
        assert_eq!(order, [40, 100]);
    }

    #[test]
    fn a_connection_without_a_waiting_keyframe_waits_for_one_with_audio_in_step() {
        let mut window = SendWindow::default();
        window.push(video(true, 0));
        window.push(video(false, 33));
        window.pop();
        window.push(audio(40));
        assert_eq!(window.start_connection(true), 1);
        assert!(
            window.is_empty(),
            "the old audio goes with the video it belonged to"
        );
        // Audio keeps coming while the encoder makes the keyframe: it waits, and what is older
        // than the keyframe (but the frame that overlaps it) goes when the keyframe is here.
        let late = window.push(video(false, 66));
        assert!(late.request_keyframe && late.dropped_video == 1);
        for ms in [70, 93, 116] {
            window.push(audio(ms));
            assert!(window.holding() && window.pop().is_none());
        }
        window.push(video(true, 100));
        window.push(audio(139));
        assert!(!window.holding());
        let order = drain(&mut window);
        // Time order, although the audio at 116 ms came before the keyframe left the encoder.
        assert_eq!(order, [93, 100, 116, 139]);
    }

    #[test]
    fn a_connection_starts_at_most_a_second_behind() {
        // 4.9 s waited while connecting (keyframes every second); the connection starts at 4 s.
        let mut window = SendWindow::new(Duration::from_secs(10));
        for packet in media(Duration::from_millis(4_900), Duration::from_secs(1)) {
            window.push(packet);
        }
        assert_eq!(window.start_connection(true), 120);
        let first_video = std::iter::from_fn(|| window.pop()).find(|p| p.is_video());
        assert_eq!(first_video.map(|p| p.pts), Some(FRAME * 120));
    }

    #[test]
    fn a_quick_first_connection_starts_at_the_first_keyframe() {
        let mut window = SendWindow::default();
        window.push(video(true, 0));
        window.push(video(false, 33));
        window.push(video(true, 66));
        window.push(video(false, 100));
        assert_eq!(window.start_connection(true), 0);
        assert_eq!(window.pop().map(|p| p.payload), Some(0));
    }

    #[test]
    fn late_audio_from_before_the_first_keyframe_is_dropped() {
        let mut window = SendWindow::default();
        window.start_connection(true);
        window.push(video(true, 1_000));
        // The audio encoder lags: audio from before the keyframe arrives after it.
        for ms in [800, 977, 1_000, 1_023] {
            window.push(audio(ms));
        }
        let order = drain(&mut window);
        assert_eq!(order, [977, 1_000, 1_000, 1_023]);
    }

    #[test]
    fn media_pushed_out_of_step_leaves_in_step() {
        // At the start the audio encoder lags: video up to 133 ms is in before the first audio.
        let mut window = SendWindow::default();
        for ms in [0, 33, 66, 100, 133] {
            window.push(video(ms == 0, ms));
        }
        for ms in [0, 23, 46, 70, 93, 116, 139] {
            window.push(audio(ms));
        }
        let order: Vec<u64> = std::iter::from_fn(|| window.pop())
            .map(|p| p.pts.as_millis() as u64)
            .collect();
        assert_eq!(order, [0, 0, 23, 33, 46, 66, 70, 93, 100, 116, 133, 139]);
    }

    #[test]
    fn an_audio_only_connection_starts_at_once() {
        let mut window = SendWindow::default();
        window.push(audio(0));
        assert_eq!(window.start_connection(false), 0);
        assert_eq!(window.pop().map(|p| p.payload), Some(0));
    }

    #[test]
    fn an_outage_keeps_at_most_twice_the_capacity_of_audio() {
        // The consumer is gone for a minute: video goes GOP by GOP, audio is capped too.
        let mut window = SendWindow::default();
        let mut dropped_audio = 0;
        for packet in media(Duration::from_secs(60), Duration::from_secs(2)) {
            dropped_audio += window.push(packet).dropped_audio;
            assert!(window.level() <= SendWindow::<u64>::DEFAULT_CAPACITY * 2 + AUDIO_FRAME);
        }
        assert!(dropped_audio > 2_000, "{dropped_audio}");
        // A reconnect then starts at the newest keyframe with the audio of that moment.
        window.start_connection(true);
        let first = window.pop().unwrap();
        assert!(first.is_keyframe() || !first.is_video());
        let key = window
            .queue
            .iter()
            .chain([&first])
            .find(|p| p.is_keyframe());
        if let Some(key) = key {
            assert!(key.pts.saturating_sub(first.pts) < AUDIO_FRAME);
        }
    }
}
