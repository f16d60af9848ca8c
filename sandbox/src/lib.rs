//! FieldCast sandbox: a local stand-in for the platform, starting with the RTMP ingest
//! (nginx with libnginx-mod-rtmp) and a read-back of what it received.

pub mod ingest;
pub mod report;

pub use ingest::{IngestError, LocalIngest};
pub use report::{MediaReport, StreamReport};
