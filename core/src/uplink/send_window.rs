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
}

/// Whether video may enter the window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum VideoGate {
    /// Video flows.
    Open,
    /// Video resumes at the next keyframe; `requested` once the encoder was asked for it.
    AwaitKeyframe { requested: bool },
}

/// A FIFO of encoded packets bounded in media time.
#[derive(Debug)]
pub struct SendWindow<T> {
    queue: VecDeque<Packet<T>>,
    capacity: Duration,
    gate: VideoGate,
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
            gate: VideoGate::AwaitKeyframe { requested: false },
        }
    }

    /// Adds a packet without ever blocking. Video that cannot start a GOP after a drop is dropped
    /// itself; when the window then spans more than the capacity, the oldest GOPs of video go.
    pub fn push(&mut self, packet: Packet<T>) -> PushResult {
        let mut result = PushResult::default();
        match (packet.kind, self.gate) {
            (PacketKind::Video { keyframe: false }, VideoGate::AwaitKeyframe { requested }) => {
                result.dropped_video = 1;
                result.request_keyframe = !requested;
                self.gate = VideoGate::AwaitKeyframe { requested: true };
                return result;
            }
            (PacketKind::Video { keyframe: true }, _) => self.gate = VideoGate::Open,
            _ => {}
        }
        self.queue.push_back(packet);
        while self.video_age() > self.capacity {
            let (dropped, reached_newest) = self.drop_oldest_gop();
            result.dropped_video += dropped;
            result.dropped_gops += 1;
            if reached_newest {
                result.request_keyframe = true;
                self.gate = VideoGate::AwaitKeyframe { requested: true };
                break;
            }
        }
        result
    }

    /// The oldest packet, in push order.
    pub fn pop(&mut self) -> Option<Packet<T>> {
        self.queue.pop_front()
    }

    /// True when nothing waits to be sent.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
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

    /// Prepares the window for a new connection: drops video up to the oldest waiting keyframe
    /// and the audio before it (all but the one audio frame that overlaps the keyframe),
    /// so the new connection starts decodable with audio and video in step. Without a waiting
    /// keyframe all video goes and video resumes at the next one; audio stays. Returns the number
    /// of video packets dropped.
    pub fn reset_for_reconnect(&mut self) -> usize {
        let Some(key) = self.queue.iter().position(Packet::is_keyframe) else {
            let before = self.queue.len();
            self.queue.retain(|p| !p.is_video());
            self.gate = VideoGate::AwaitKeyframe { requested: false };
            return before - self.queue.len();
        };
        let key_pts = self.queue[key].pts;
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
            let keep = index >= key || (!p.is_video() && Some(index) == overlapping_audio);
            dropped_video += usize::from(!keep && p.is_video());
            index += 1;
            keep
        });
        dropped_video
    }

    /// Drops all waiting video (the stream goes audio only); video resumes at the next keyframe,
    /// which the caller asks for when it wants video back. Returns the number dropped.
    pub fn drop_video(&mut self) -> usize {
        let before = self.queue.len();
        self.queue.retain(|p| !p.is_video());
        self.gate = VideoGate::AwaitKeyframe { requested: true };
        before - self.queue.len()
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
        // One request per GOP that outgrew the window, not one per dropped frame.
        assert_eq!(requests, 3);
        assert_eq!(gops, 3);
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
        let dropped = window.reset_for_reconnect();
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
        assert_eq!(window.drop_video(), 2);
        let late = window.push(video(false, 66));
        assert_eq!(late.dropped_video, 1);
        assert!(
            !late.request_keyframe,
            "the caller asks when it wants video back"
        );
        window.push(video(true, 100));
        let order: Vec<u64> = std::iter::from_fn(|| window.pop())
            .map(|p| p.payload)
            .collect();
        assert_eq!(order, [40, 100]);
    }

    #[test]
    fn reconnect_without_a_waiting_keyframe_keeps_audio_and_waits_for_one() {
        let mut window = SendWindow::default();
        window.push(video(true, 0));
        window.push(video(false, 33));
        window.pop();
        window.push(Packet {
            kind: PacketKind::Audio,
            pts: Duration::from_millis(40),
            size: 400,
            payload: 40,
        });
        assert_eq!(window.reset_for_reconnect(), 1);
        let late = window.push(video(false, 66));
        assert!(late.request_keyframe && late.dropped_video == 1);
        window.push(video(true, 100));
        let order: Vec<u64> = std::iter::from_fn(|| window.pop())
            .map(|p| p.payload)
            .collect();
        assert_eq!(order, [40, 100]);
    }
}
