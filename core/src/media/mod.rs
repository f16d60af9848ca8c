//! The media path: sources, encoders and the GStreamer graph.

pub(crate) mod bus;
pub mod elements;
pub(crate) mod encoded;
pub mod encoders;
pub(crate) mod pipeline;
pub mod platform;
pub(crate) mod record_switch;
pub mod sei;
#[cfg(test)]
mod sei_props;
pub mod sources;
pub(crate) mod tagging;
pub(crate) mod y4m;
