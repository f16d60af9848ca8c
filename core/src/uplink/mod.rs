//! The live output: ingest URLs and network sinks.

pub(crate) mod sinks;
pub mod target;
