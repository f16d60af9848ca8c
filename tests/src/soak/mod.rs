//! The soak run: a long market day through the network lab. `soak_app` is the seller's app (a
//! store, its sync to the platform, a live session with pins, a sale every few seconds) running
//! as its own process in the lab's publisher namespace; `soak` is the orchestrator, which builds
//! the lab with its outages, runs the sandbox and a viewer in the ingest namespace, samples the
//! app every 10 s, checks the targets and draws the figure. See docs/QA.md, "Soak".

pub mod figure;
pub mod outages;
pub mod samples;
pub mod targets;
