//! FieldCast sandbox: a local stand-in for the platform. It serves the platform API of
//! `docs/api/openapi.yaml` (axum + SQLite) with QA-only fault injection, runs and supervises the
//! RTMP ingest (nginx with libnginx-mod-rtmp), and reads back what the ingest received.

pub mod ingest;
pub mod netlab;
pub mod report;
mod server;

#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub use server::fuzzing;

pub use ingest::{IngestError, LocalIngest};
pub use netlab::{NetLab, NetLabError, Profile};
pub use report::{MediaReport, StreamReport};
pub use server::{SEED_CATALOG, Sandbox, SandboxError, SandboxOptions, run_until_signal};
