//! The live output: ingest URLs and network sinks.

pub mod abr;
pub(crate) mod connection;
pub(crate) mod feed;
pub mod reconnect;
pub mod send_window;
pub(crate) mod socket;
pub(crate) mod supervisor;
pub mod target;
