//! The network lab: a publisher namespace and an ingest namespace joined by a veth pair, shaped
//! over time by a [`Profile`] (rate, one-way delay, random loss, outages). See docs/QA.md,
//! "Network lab", for the profile format and how to run anything inside a lab.

mod lab;
mod ns;
mod profile;
mod relay;
mod run;
mod shaping;
mod timeline;

pub use lab::{NetLab, REQUIRE_LAB_ENV, cleanup_stale};
pub use profile::{Change, Conditions, Profile, Step};
pub use run::{INGEST_ENV, run_command};
pub use shaping::ShapingMode;
pub use timeline::{AppliedChange, ChangeObserver};

use crate::ingest::IngestError;

/// Why a lab could not be set up or run.
#[derive(Debug, thiserror::Error)]
pub enum NetLabError {
    /// Not root, or `ip`, `tc` or `nft` missing; says which.
    #[error("the network lab cannot run here: {0}")]
    Unavailable(String),
    /// Neither a readable file nor a shipped profile.
    #[error(
        "no profile file or shipped profile named `{0}` (shipped: {names})",
        names = Profile::builtin_names().join(", ")
    )]
    UnknownProfile(String),
    /// A profile that does not parse or does not make sense.
    #[error("invalid network profile {origin}: {reason}")]
    Profile {
        /// The file or name it came from.
        origin: String,
        /// What is wrong, with line and column for JSON errors.
        reason: String,
    },
    /// `ip`, `tc` or `nft` failed.
    #[error("`{command}` failed: {output}")]
    Tool {
        /// The command line.
        command: String,
        /// Its error output.
        output: String,
    },
    /// The profile's first conditions could not be put in force.
    #[error("cannot shape the lab link: {0}")]
    Shaping(String),
    /// `run_command` was given no command.
    #[error("no command to run in the lab")]
    NoCommand,
    /// Starting the ingest inside the lab failed.
    #[error(transparent)]
    Ingest(#[from] IngestError),
    /// A system call failed.
    #[error("network lab: {0}")]
    Io(#[from] std::io::Error),
}
