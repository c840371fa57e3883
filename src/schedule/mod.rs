//! The scheduler: `c360 scheduler` runs every job with a `schedule:` block at its
//! cron ticks, and `c360 backfill` runs a job over a range of logical dates. Both
//! are loops around the same `run::run` (through the [`Runner`] seam) and read
//! what already ran from the run history ([`RunHistory`]), never from their own
//! state.
//!
//! - `cron`: 5- and 6-field expressions; `plan`: ticks, logical dates, DST, catch-up;
//! - `policy`: overlap, retries with backoff and jitter, `max_runtime`;
//! - `dispatch`: the decisions, driven by an injected clock; `daemon`: signals,
//!   tokio-cron-scheduler wake-ups, reloads and the health file (`status`);
//! - `backfill`: dates in order, skip done, stop at the first failure.

pub mod backfill;
pub mod daemon;
pub mod dispatch;
#[cfg(test)]
mod fakes;
pub mod history;
mod jobs_dir;
pub mod plan;
pub mod policy;
pub mod runner;
pub mod status;
#[cfg(test)]
mod test_support;
mod warehouse_history;

pub use history::{MemoryRunHistory, PastRun, PastRunStatus, RunHistory};
pub use runner::{JobRunner, RunOutcome, Runner};
pub use warehouse_history::WarehouseHistory;
