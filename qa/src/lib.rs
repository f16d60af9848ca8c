//! The FieldCast field lab, for QA: a phone emulated by a device profile (CPU and memory held
//! by cgroups) behind a network profile (the network lab), a whole live played out from a
//! scenario file through the real SDK, and a report people can read (`report.html` with PNG
//! plots, `summary.json`). The command is `fieldcast qa`; see docs/QA.md, "Field lab".

pub mod app;
pub mod cage;
pub mod calibrate;
pub mod child;
pub mod device;
pub mod events;
pub mod ledger;
pub mod platform;
pub mod plot;
pub mod process;
pub mod record;
pub mod report;
pub mod run;
pub mod scenario;
pub mod stop;
