//! The run's error: one variant per layer that can fail, each with the layer's
//! name for the run log and the next step an engineer should take.

use datafusion::error::DataFusionError;

use crate::checks::CheckError;
use crate::commit::CommitError;
use crate::engine;
use crate::sink::SinkError;
use crate::source;
use crate::steps::StepError;

/// Errors of a run, by the layer that failed.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("job: {0}")]
    Bind(String),
    #[error("storage: {0}")]
    Storage(#[from] crate::storage::StorageError),
    #[error("engine: {0}")]
    Engine(#[from] engine::EngineError),
    #[error("source {name}: {source}")]
    Source {
        name: String,
        source: source::SourceError,
    },
    #[error(
        "source {name}: {rejected} of {read} rows rejected, over the budget ({budget}); top reasons: {reasons}; rejects are in {rejects}"
    )]
    RejectBudget {
        name: String,
        rejected: u64,
        read: u64,
        budget: String,
        reasons: String,
        rejects: String,
    },
    #[error("accounting: source {name}: rows do not add up: {detail}")]
    Accounting { name: String, detail: String },
    #[error(transparent)]
    Step(#[from] StepError),
    #[error("engine: {what}: {source}")]
    Query {
        what: String,
        source: DataFusionError,
    },
    #[error("output {output}: {message}")]
    OutputSpec { output: String, message: String },
    #[error(transparent)]
    Check(#[from] CheckError),
    #[error(transparent)]
    Sink(#[from] SinkError),
    #[error(transparent)]
    Commit(#[from] CommitError),
    #[error(transparent)]
    Erasure(#[from] crate::erasure::ErasureError),
}

impl RunError {
    /// The layer that failed, as named in the run log.
    pub fn layer(&self) -> &'static str {
        match self {
            RunError::Bind(_) | RunError::OutputSpec { .. } => "job",
            RunError::Storage(_) => "storage",
            RunError::Engine(_) | RunError::Query { .. } | RunError::Step(_) => "engine",
            RunError::Source { .. } | RunError::RejectBudget { .. } => "source",
            RunError::Accounting { .. } => "accounting",
            RunError::Check(_) => "check",
            RunError::Sink(_) => "sink",
            RunError::Commit(_) => "commit",
            RunError::Erasure(_) => "erasure",
        }
    }

    /// What the engineer should do next.
    pub fn next_step(&self) -> String {
        match self {
            RunError::Bind(_) | RunError::OutputSpec { .. } => {
                "fix the job file or the command line, then rerun".into()
            }
            RunError::Storage(_) => "check the storage URL, options and credentials".into(),
            RunError::Engine(_) | RunError::Query { .. } | RunError::Step(_) => {
                "fix the SQL (or memory limit) named in the error, then rerun the date".into()
            }
            RunError::Source { .. } => {
                "fix or remove the raw file named in the error, then rerun the date".into()
            }
            RunError::RejectBudget { rejects, .. } => format!(
                "read the rejects in {rejects}, fix the extract upstream (or raise the source's rejects budget), then rerun the date"
            ),
            RunError::Accounting { .. } => {
                "rows were lost between reading and staging: a c360 bug; keep this run record and report it".into()
            }
            RunError::Check(_) => {
                "look at the offending rows above, fix the data upstream or the step SQL, then rerun the date; the previous snapshot is still published".into()
            }
            RunError::Commit(CommitError::Locked(holder)) => format!(
                "another run ({}) is loading this warehouse: wait for it (c360 status); if it died, rerun after {}",
                holder.run_id, holder.expires_at
            ),
            RunError::Sink(_) | RunError::Commit(_) => {
                "rerun the date: readers still see complete snapshots, and the rerun finishes or undoes this commit".into()
            }
            RunError::Erasure(_) => {
                "fix the erasure steps (erasure_requests, erased_identifiers) or the storage named in the error, then rerun the date; nothing was published".into()
            }
        }
    }
}
