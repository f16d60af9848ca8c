//! The session state machine as a pure function: which input moves which state where.

use crate::events::SessionState;

/// What happened to the session, as seen by the state machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateInput {
    /// `start()` was called.
    Start,
    /// The ingest accepted media (first time, or again after a reconnect).
    Connected,
    /// The connection broke while live; the uplink reconnects.
    Disconnected,
    /// `stop()` was called or the duration elapsed.
    StopRequested,
    /// End-of-stream reached every sink.
    Drained,
    /// A fatal error.
    Fatal,
}

/// The next state, or `None` when the input does not apply in `state`.
pub fn step(state: SessionState, input: StateInput) -> Option<SessionState> {
    use SessionState::*;
    use StateInput::*;
    match (state, input) {
        (Idle, Start) => Some(Connecting),
        (Connecting | Reconnecting, Connected) => Some(Live),
        (Live, Disconnected) => Some(Reconnecting),
        (Idle, StopRequested) => Some(Ended),
        (Connecting | Live | Reconnecting, StopRequested) => Some(Ending),
        // A finite source (a file, the app ending its stream) drains without a stop request.
        (Connecting | Live | Reconnecting | Ending, Drained) => Some(Ended),
        (Connecting | Live | Reconnecting | Ending, Fatal) => Some(Failed),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use SessionState::*;
    use StateInput::*;

    #[test]
    fn happy_path() {
        let mut s = Idle;
        for (input, want) in [
            (Start, Connecting),
            (Connected, Live),
            (StopRequested, Ending),
            (Drained, Ended),
        ] {
            s = step(s, input).unwrap();
            assert_eq!(s, want);
        }
    }

    #[test]
    fn a_broken_connection_reconnects_while_live() {
        let mut s = Live;
        for (input, want) in [
            (Disconnected, Reconnecting),
            (Connected, Live),
            (Disconnected, Reconnecting),
        ] {
            s = step(s, input).unwrap();
            assert_eq!(s, want);
        }
        assert_eq!(step(Reconnecting, StopRequested), Some(Ending));
        assert_eq!(step(Reconnecting, Fatal), Some(Failed));
        assert_eq!(
            step(Connecting, Disconnected),
            None,
            "before the first connection a failure is fatal"
        );
    }

    #[test]
    fn terminal_states_ignore_everything() {
        for s in [Ended, Failed] {
            for i in [
                Start,
                Connected,
                Disconnected,
                StopRequested,
                Drained,
                Fatal,
            ] {
                assert_eq!(step(s, i), None, "{s:?} {i:?}");
            }
        }
    }

    #[test]
    fn errors_fail_from_any_running_state() {
        for s in [Connecting, Live, Ending] {
            assert_eq!(step(s, Fatal), Some(Failed));
        }
        assert_eq!(step(Idle, Fatal), None);
        assert_eq!(step(Live, Start), None);
        assert_eq!(step(Idle, StopRequested), Some(Ended));
    }
}
