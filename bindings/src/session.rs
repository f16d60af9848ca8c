//! The live session object, its listener and the subscription handle.

use std::sync::Arc;
use std::time::Duration;

use fieldcast_core as core;

use crate::commerce::{Pin, Store};
use crate::error::{FieldCastError, thread_error};
use crate::types::{FrameInfo, LiveStats, PushOutcome, SessionConfig, SessionEvent, SessionState};

/// Receives a live session's events, in order, on a FieldCast thread (never the caller's and
/// never under a FieldCast lock).
#[uniffi::export(with_foreign)]
pub trait SessionListener: Send + Sync {
    /// One event.
    fn on_event(&self, event: SessionEvent);
}

/// A running event delivery; [`Subscription::cancel`] or dropping it ends it.
#[derive(uniffi::Object)]
pub struct Subscription {
    inner: core::Delivery,
}

impl Subscription {
    pub(crate) fn new(inner: core::Delivery) -> Arc<Self> {
        Arc::new(Subscription { inner })
    }
}

#[uniffi::export]
impl Subscription {
    /// Stops delivery; once this returns no event arrives (from within the listener: none after
    /// the current one). Idempotent.
    pub fn cancel(&self) {
        self.inner.cancel()
    }

    /// True once cancelled.
    pub fn is_cancelled(&self) -> bool {
        self.inner.is_cancelled()
    }
}

/// One live stream: create, subscribe, start, push media, pin products, stop.
#[derive(uniffi::Object)]
pub struct LiveSession {
    inner: Arc<core::LiveSession>,
}

#[uniffi::export]
impl LiveSession {
    /// Builds the session; fails fast on a bad configuration or a missing component.
    #[uniffi::constructor]
    pub fn new(config: SessionConfig) -> Result<Arc<Self>, FieldCastError> {
        let config = core::SessionConfig::try_from(config)?;
        Ok(Arc::new(LiveSession {
            inner: Arc::new(core::LiveSession::new(config)?),
        }))
    }

    /// Delivers every event from now on to `listener` until the subscription is cancelled.
    pub fn subscribe(
        &self,
        listener: Arc<dyn SessionListener>,
    ) -> Result<Arc<Subscription>, FieldCastError> {
        let delivery =
            core::Delivery::spawn("fieldcast-events", self.inner.subscribe(), move |e| {
                listener.on_event(SessionEvent::from(e))
            })
            .map_err(thread_error)?;
        Ok(Subscription::new(delivery))
    }

    /// Starts capturing, encoding and connecting; returns at once (state `Connecting`).
    pub fn start(&self) -> Result<(), FieldCastError> {
        Ok(self.inner.start()?)
    }

    /// Asks the session to end cleanly; returns at once.
    pub fn stop(&self) {
        self.inner.stop()
    }

    /// The current state.
    pub fn state(&self) -> SessionState {
        self.inner.state().into()
    }

    /// The latest one-second statistics.
    pub fn stats(&self) -> LiveStats {
        self.inner.stats().into()
    }

    /// The H.264 encoder in use.
    pub fn encoder(&self) -> String {
        format!("{:?}", self.inner.encoder())
    }

    /// Blocks until the session ends or fails, or `timeout_ms` passes (null: no limit); returns
    /// the state then, or the error that failed the session.
    pub fn wait(&self, timeout_ms: Option<u64>) -> Result<SessionState, FieldCastError> {
        Ok(self
            .inner
            .wait(timeout_ms.map(Duration::from_millis))?
            .into())
    }

    /// Pushes one frame; its planes (up to three, in the format's order; unused ones empty) are
    /// borrowed for the call and copied once. Never blocks: `Dropped` means the encoder is behind.
    pub fn push_video_frame(
        &self,
        info: FrameInfo,
        plane0: &[u8],
        plane1: &[u8],
        plane2: &[u8],
    ) -> Result<PushOutcome, FieldCastError> {
        let planes: Vec<core::Plane<'_>> = info
            .planes
            .iter()
            .zip([plane0, plane1, plane2])
            .map(|(layout, data)| core::Plane::new(data, layout.row_stride, layout.pixel_stride))
            .collect();
        let frame = core::VideoFrame {
            format: info.format.into(),
            width: info.width,
            height: info.height,
            planes: &planes,
            timestamp_us: info.timestamp_us,
        };
        Ok(self.inner.push_video_frame(&frame)?.into())
    }

    /// Pushes interleaved S16LE audio captured at `timestamp_us` (the video's clock).
    pub fn push_audio(
        &self,
        pcm: &[u8],
        timestamp_us: Option<u64>,
    ) -> Result<PushOutcome, FieldCastError> {
        Ok(self.inner.push_audio(pcm, timestamp_us)?.into())
    }

    /// Whether the device has a network; when it returns, a pending reconnect wait ends at once.
    pub fn set_network_available(&self, available: bool) {
        self.inner.set_network_available(available)
    }

    /// Links the session to the store for pins, under the platform's live session id.
    pub fn link_commerce(&self, store: Arc<Store>, platform_session_id: String) {
        self.inner
            .link_commerce(core::Pins::new(store.core()), platform_session_id)
    }

    /// Pins a product now: stored, queued for the platform, and in the video as SEI.
    pub fn pin_product(&self, product_id: String) -> Result<Pin, FieldCastError> {
        Ok(self.inner.pin_product(&product_id)?.into())
    }

    /// Ends a pin now.
    pub fn unpin_product(&self, pin_id: String) -> Result<Pin, FieldCastError> {
        Ok(self.inner.unpin_product(&pin_id)?.into())
    }
}
