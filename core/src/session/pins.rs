//! Pinning products while live: each pin is stored (with its outbox event) and written into the
//! video as an SEI message at the stream time it was stored with.

use crate::commerce::{Pin, Pins};
use crate::error::{Error, Result};

use super::LiveSession;

/// How far ahead of the next frame a pin is timed, so it is stored before that frame is encoded
/// and lands in exactly the frame whose stream time it carries.
pub const PIN_LEAD_MS: u64 = 100;

/// The store's pins and the platform's id of this live session.
pub(super) struct CommerceLink {
    pins: Pins,
    session_id: String,
}

/// The in-stream JSON of a pin event.
fn message(action: &str, pin: &Pin, at_ms: u64) -> Vec<u8> {
    serde_json::json!({
        "fc": 1,
        "type": action,
        "pin": pin.id,
        "product": pin.product_id,
        "session": pin.session_id,
        "t": at_ms,
    })
    .to_string()
    .into_bytes()
}

impl LiveSession {
    /// Lets this session pin products: pins are kept in `pins` under the platform's live-session id.
    pub fn link_commerce(&self, pins: Pins, platform_session_id: impl Into<String>) {
        *self
            .inner
            .commerce
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(CommerceLink {
            pins,
            session_id: platform_session_id.into(),
        });
    }

    /// Pins a product now: stored with its stream time (ending the open pin), queued for the
    /// platform, and carried in the video (repeated on the next keyframes).
    pub fn pin_product(&self, product_id: &str) -> Result<Pin> {
        self.with_link("pin a product", |link, at| {
            let pin = link.pins.start_pin(&link.session_id, product_id, at)?;
            Ok((message("pin", &pin, at), pin))
        })
    }

    /// Ends a pin now; the ended pin is a chapter of the replay.
    pub fn unpin_product(&self, pin_id: &str) -> Result<Pin> {
        self.with_link("unpin a product", |link, at| {
            let pin = link.pins.end_pin(pin_id, at)?;
            Ok((message("unpin", &pin, at), pin))
        })
    }

    /// Plans the stream time, runs `store` (which returns the message and the pin), then
    /// schedules the message into the frame at that time.
    fn with_link(
        &self,
        action: &'static str,
        store: impl FnOnce(&CommerceLink, u64) -> Result<(Vec<u8>, Pin)>,
    ) -> Result<Pin> {
        let state = self.state();
        if !state.is_running() {
            return Err(Error::InvalidState { state, action });
        }
        let guard = self
            .inner
            .commerce
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let link = guard.as_ref().ok_or_else(|| {
            Error::InvalidConfig("no store linked to this session: call link_commerce first".into())
        })?;
        let tagger = &self.inner.media.tagger;
        let at = tagger.plan_ms(PIN_LEAD_MS);
        let (json, pin) = store(link, at)?;
        tagger.schedule_at(at, &json)?;
        Ok(pin)
    }
}
