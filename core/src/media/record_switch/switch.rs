//! The pure part of the recording's switch: which encoding's frames go into the recording, and
//! where one hands over to the other. Both encodings carry the same pictures with the same
//! timestamps, so a hand-over is a cut in time: the frames before it come from the old encoding,
//! the frames from it on from the new one, and the new one starts there with a keyframe.

use std::collections::VecDeque;

/// Which encoding a recorded frame comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// The live stream's encoder, while the live stream is at full quality.
    Live,
    /// The recording's own encoder, while the live stream is below full quality.
    Own,
}

/// A frame as the switch sees it: a timestamp (ns, the same clock for both encodings) and
/// whether a decoder can start there.
pub trait Timed {
    /// Presentation time, ns.
    fn pts(&self) -> u64;
    /// True for a keyframe.
    fn keyframe(&self) -> bool;
}

/// What an offer ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handover {
    /// The recording now takes `to`'s frames, from `at` (ns) on.
    Done { to: Origin, at: u64 },
    /// `to` gave no keyframe while the recording held `held` frames of the other encoding for
    /// it: the switch stays where it was, with nothing lost.
    GaveUp { to: Origin, held: usize },
}

/// A hand-over under way.
struct Pending<T> {
    to: Origin,
    /// The new encoding's first keyframe, once seen.
    cut: Option<u64>,
    /// The old encoding's frames, held until the cut is known.
    old: VecDeque<T>,
    /// The new encoding's frames from the cut on, held until the old one has passed the cut.
    new: VecDeque<T>,
    /// The old encoding gives no more frames (it ended or failed): the cut completes it.
    old_ended: bool,
}

/// Chooses, frame by frame, the encoding the recording takes. Frames of each encoding arrive in
/// order, but the two encodings run on their own threads, so either may be ahead: around a
/// hand-over the switch holds frames until it knows where the cut is and that the old encoding
/// has reached it. What it returns is in time order, with neither gap nor overlap.
pub struct Switch<T> {
    current: Origin,
    pending: Option<Pending<T>>,
    /// The most frames held for one encoding before a hand-over is given up (old) or completed
    /// without waiting further for the old encoding (new).
    max_held: usize,
}

impl<T: Timed> Switch<T> {
    /// A switch taking `from`'s frames, holding at most `max_held` frames of one encoding.
    pub fn new(from: Origin, max_held: usize) -> Self {
        Switch {
            current: from,
            pending: None,
            max_held: max_held.max(1),
        }
    }

    /// The encoding the recording takes now.
    pub fn current(&self) -> Origin {
        self.current
    }

    /// The encoding the recording takes or is handing over to.
    pub fn target(&self) -> Origin {
        self.pending.as_ref().map_or(self.current, |p| p.to)
    }

    /// Hands the recording over to `to` at that encoding's next keyframe. A hand-over the other
    /// way that has not happened yet is called off: the frames it held go to `out`.
    pub fn switch_to(&mut self, to: Origin, out: &mut Vec<T>) {
        if self.target() == to {
            return;
        }
        match self.pending.take() {
            // Called off: back to the current encoding, which lost nothing.
            Some(pending) => out.extend(pending.old),
            None => {
                self.pending = Some(Pending {
                    to,
                    cut: None,
                    old: VecDeque::new(),
                    new: VecDeque::new(),
                    old_ended: false,
                })
            }
        }
    }

    /// Takes one frame of `origin`; what the recording gets now goes to `out`, in order.
    pub fn offer(&mut self, origin: Origin, frame: T, out: &mut Vec<T>) -> Option<Handover> {
        let max_held = self.max_held;
        let Some(pending) = self.pending.as_mut() else {
            if origin == self.current {
                out.push(frame);
            }
            return None;
        };
        if origin != pending.to {
            // The old encoding.
            match pending.cut {
                None => {
                    pending.old.push_back(frame);
                    if pending.old.len() > max_held {
                        let pending = self.pending.take().expect("a hand-over is pending");
                        let held = pending.old.len();
                        out.extend(pending.old);
                        return Some(Handover::GaveUp {
                            to: pending.to,
                            held,
                        });
                    }
                }
                Some(cut) if frame.pts() < cut => out.push(frame),
                Some(_) => return self.complete(out),
            }
            return None;
        }
        // The new encoding.
        match pending.cut {
            None => {
                if !frame.keyframe() {
                    // Nothing can be decoded from it before its first keyframe.
                    return None;
                }
                let cut = frame.pts();
                pending.cut = Some(cut);
                let mut passed = false;
                for old in pending.old.drain(..) {
                    if old.pts() < cut {
                        out.push(old);
                    } else {
                        passed = true;
                    }
                }
                pending.new.push_back(frame);
                if passed || pending.old_ended {
                    return self.complete(out);
                }
            }
            Some(_) => {
                pending.new.push_back(frame);
                if pending.new.len() > max_held {
                    // The old encoding stopped before the cut (it ended or failed).
                    return self.complete(out);
                }
            }
        }
        None
    }

    /// `origin` gives no more frames. A hand-over away from it then completes at the new
    /// encoding's keyframe without waiting for it to pass the cut.
    pub fn ended(&mut self, origin: Origin, out: &mut Vec<T>) -> Option<Handover> {
        let pending = self.pending.as_mut()?;
        if pending.to == origin {
            return None;
        }
        pending.old_ended = true;
        if pending.cut.is_some() {
            return self.complete(out);
        }
        None
    }

    /// Everything still held, in order, when both encodings have ended: the old encoding's
    /// frames before the cut, then the new one's.
    pub fn finish(&mut self, out: &mut Vec<T>) {
        if let Some(pending) = self.pending.take() {
            let cut = pending.cut.unwrap_or(u64::MAX);
            out.extend(pending.old.into_iter().filter(|f| f.pts() < cut));
            if pending.cut.is_some() {
                self.current = pending.to;
            }
            out.extend(pending.new);
        }
    }

    fn complete(&mut self, out: &mut Vec<T>) -> Option<Handover> {
        let pending = self.pending.take().expect("a hand-over is pending");
        let at = pending.cut.expect("a hand-over completes at its cut");
        out.extend(pending.new);
        self.current = pending.to;
        Some(Handover::Done { to: pending.to, at })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    struct F {
        from: Origin,
        n: u64,
        key: bool,
    }

    impl Timed for F {
        fn pts(&self) -> u64 {
            self.n * 33
        }
        fn keyframe(&self) -> bool {
            self.key
        }
    }

    fn live(n: u64) -> F {
        F {
            from: Origin::Live,
            n,
            key: n.is_multiple_of(60),
        }
    }

    /// The recording's own encoder, started at frame `start` (a keyframe there).
    fn own(n: u64, start: u64) -> F {
        F {
            from: Origin::Own,
            n,
            key: n == start || (n - start).is_multiple_of(60),
        }
    }

    /// Frame numbers and origins of what the switch gave out.
    fn numbers(out: &[F]) -> Vec<(u64, Origin)> {
        out.iter().map(|f| (f.n, f.from)).collect()
    }

    /// Checks that `out` holds every frame of `range` once, in order, switching at `cut`.
    fn assert_whole(out: &[F], range: std::ops::Range<u64>, cut: u64, before: Origin) {
        let expected: Vec<(u64, Origin)> = range
            .map(|n| {
                let from = if n < cut {
                    before
                } else if before == Origin::Live {
                    Origin::Own
                } else {
                    Origin::Live
                };
                (n, from)
            })
            .collect();
        assert_eq!(numbers(out), expected);
    }

    #[test]
    fn without_a_hand_over_only_the_current_encoding_passes() {
        let mut switch = Switch::new(Origin::Live, 30);
        let mut out = Vec::new();
        for n in 0..5 {
            assert_eq!(switch.offer(Origin::Live, live(n), &mut out), None);
            assert_eq!(switch.offer(Origin::Own, own(n, 0), &mut out), None);
        }
        assert_eq!(
            numbers(&out),
            (0..5).map(|n| (n, Origin::Live)).collect::<Vec<_>>()
        );
    }

    #[test]
    fn the_own_encoder_takes_over_at_its_first_keyframe_when_it_is_behind() {
        // The live encoder is two frames ahead of the own encoder, which starts at frame 10.
        let mut switch = Switch::new(Origin::Live, 30);
        let mut out = Vec::new();
        for n in 0..10 {
            switch.offer(Origin::Live, live(n), &mut out);
        }
        switch.switch_to(Origin::Own, &mut out);
        let mut done = None;
        for n in 10..20 {
            done = done.or(switch.offer(Origin::Live, live(n + 2), &mut out));
            if let Some(h) = switch.offer(Origin::Own, own(n, 10), &mut out) {
                done = Some(h);
            }
        }
        assert_eq!(
            done,
            Some(Handover::Done {
                to: Origin::Own,
                at: 330
            })
        );
        assert_eq!(switch.current(), Origin::Own);
        assert_whole(&out, 0..20, 10, Origin::Live);
    }

    #[test]
    fn the_own_encoder_takes_over_at_its_first_keyframe_when_it_is_ahead() {
        // Own frames 10.. arrive before the live encoder has given frames 8 and 9.
        let mut switch = Switch::new(Origin::Live, 30);
        let mut out = Vec::new();
        for n in 0..8 {
            switch.offer(Origin::Live, live(n), &mut out);
        }
        switch.switch_to(Origin::Own, &mut out);
        for n in 10..14 {
            assert_eq!(switch.offer(Origin::Own, own(n, 10), &mut out), None);
        }
        assert_eq!(switch.offer(Origin::Live, live(8), &mut out), None);
        assert_eq!(switch.offer(Origin::Live, live(9), &mut out), None);
        // The live frame at the cut is the old encoding passing it: the hand-over is done.
        assert_eq!(
            switch.offer(Origin::Live, live(10), &mut out),
            Some(Handover::Done {
                to: Origin::Own,
                at: 330
            })
        );
        switch.offer(Origin::Own, own(14, 10), &mut out);
        assert_whole(&out, 0..15, 10, Origin::Live);
    }

    #[test]
    fn the_live_encoder_takes_back_at_its_keyframe_and_own_frames_before_it_are_kept() {
        let mut switch = Switch::new(Origin::Own, 90);
        let mut out = Vec::new();
        for n in 0..50 {
            switch.offer(Origin::Own, own(n, 0), &mut out);
        }
        switch.switch_to(Origin::Live, &mut out);
        // Live frames before its next keyframe (60) are of no use; own frames up to it are held.
        for n in 50..60 {
            switch.offer(Origin::Live, live(n), &mut out);
            switch.offer(Origin::Own, own(n, 0), &mut out);
        }
        assert_eq!(switch.offer(Origin::Live, live(60), &mut out), None);
        assert_eq!(
            switch.offer(Origin::Own, own(60, 0), &mut out),
            Some(Handover::Done {
                to: Origin::Live,
                at: 1980
            })
        );
        switch.offer(Origin::Live, live(61), &mut out);
        switch.offer(Origin::Own, own(61, 0), &mut out);
        assert_whole(&out, 0..62, 60, Origin::Own);
    }

    #[test]
    fn a_new_encoding_without_a_keyframe_is_given_up_and_nothing_is_lost() {
        let mut switch = Switch::new(Origin::Own, 5);
        let mut out = Vec::new();
        switch.switch_to(Origin::Live, &mut out);
        let mut gave_up = None;
        for n in 1..8 {
            // Live frames 1..8 hold no keyframe.
            switch.offer(Origin::Live, live(n), &mut out);
            gave_up = gave_up.or(switch.offer(Origin::Own, own(n, 0), &mut out));
        }
        assert_eq!(
            gave_up,
            Some(Handover::GaveUp {
                to: Origin::Live,
                held: 6
            })
        );
        assert_eq!(switch.current(), Origin::Own);
        assert_eq!(switch.target(), Origin::Own);
        assert_eq!(
            numbers(&out),
            (1..8).map(|n| (n, Origin::Own)).collect::<Vec<_>>()
        );
    }

    #[test]
    fn a_hand_over_called_off_returns_the_held_frames() {
        let mut switch = Switch::new(Origin::Live, 30);
        let mut out = Vec::new();
        switch.switch_to(Origin::Own, &mut out);
        for n in 0..3 {
            switch.offer(Origin::Live, live(n), &mut out);
        }
        assert!(out.is_empty(), "held until the own encoder's keyframe");
        switch.switch_to(Origin::Live, &mut out);
        switch.offer(Origin::Live, live(3), &mut out);
        assert_eq!(
            numbers(&out),
            (0..4).map(|n| (n, Origin::Live)).collect::<Vec<_>>()
        );
        assert_eq!(switch.target(), Origin::Live);
    }

    #[test]
    fn an_old_encoding_that_stops_before_the_cut_does_not_hold_the_new_one_forever() {
        let mut switch = Switch::new(Origin::Live, 4);
        let mut out = Vec::new();
        switch.offer(Origin::Live, live(0), &mut out);
        switch.switch_to(Origin::Own, &mut out);
        let mut done = None;
        for n in 5..12 {
            done = done.or(switch.offer(Origin::Own, own(n, 5), &mut out));
        }
        assert_eq!(
            done,
            Some(Handover::Done {
                to: Origin::Own,
                at: 165
            })
        );
        assert_eq!(numbers(&out)[0], (0, Origin::Live));
        assert_eq!(numbers(&out)[1], (5, Origin::Own));
        assert_eq!(out.len(), 1 + 7);
    }

    #[test]
    fn a_failed_encoding_is_left_at_the_next_keyframe_of_the_other() {
        let mut switch = Switch::new(Origin::Own, 90);
        let mut out = Vec::new();
        for n in 0..10 {
            switch.offer(Origin::Own, own(n, 0), &mut out);
        }
        // The own encoder fails: nothing more comes from it.
        switch.switch_to(Origin::Live, &mut out);
        assert_eq!(switch.ended(Origin::Own, &mut out), None);
        for n in 10..60 {
            assert_eq!(switch.offer(Origin::Live, live(n), &mut out), None);
        }
        assert_eq!(
            switch.offer(Origin::Live, live(60), &mut out),
            Some(Handover::Done {
                to: Origin::Live,
                at: 1980
            })
        );
        switch.offer(Origin::Live, live(61), &mut out);
        let expected: Vec<(u64, Origin)> = (0..10)
            .map(|n| (n, Origin::Own))
            .chain((60..62).map(|n| (n, Origin::Live)))
            .collect();
        assert_eq!(numbers(&out), expected);
    }

    #[test]
    fn finishing_keeps_what_each_encoding_gave_before_and_after_the_cut() {
        let mut switch = Switch::new(Origin::Live, 30);
        let mut out = Vec::new();
        switch.switch_to(Origin::Own, &mut out);
        for n in 0..2 {
            switch.offer(Origin::Live, live(n), &mut out);
        }
        for n in 2..4 {
            switch.offer(Origin::Own, own(n, 2), &mut out);
        }
        // The live encoder ended before reaching the cut: its frames and the own encoder's are
        // still held.
        assert_eq!(switch.current(), Origin::Live);
        switch.finish(&mut out);
        assert_whole(&out, 0..4, 2, Origin::Live);
        assert_eq!(switch.current(), Origin::Own);
    }
}
