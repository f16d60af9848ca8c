//! The live output: ingest URLs, the send window, and the connection that carries the encoded
//! media to the ingest (RTMP(S) on a socket of its own, SRT through srtsink).

pub mod abr;
#[cfg(test)]
mod abr_fill_tests;
pub(crate) mod connection;
pub(crate) mod delivery;
pub(crate) mod feed;
pub(crate) mod flv;
pub(crate) mod link;
pub(crate) mod publisher;
pub mod reconnect;
pub(crate) mod rtmp;
pub(crate) mod rtmp_inbound;
#[cfg(test)]
mod rtmp_props;
pub mod send_window;
pub(crate) mod socket;
pub(crate) mod srt;
pub(crate) mod supervisor;
pub mod target;
pub(crate) mod tls;
pub(crate) mod waker;
