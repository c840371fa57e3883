//! The run's error: one variant per layer that can fail, each with the layer's
//! name for the run log and the next step an engineer should take.

use datafusion::error::DataFusionError;

use crate::checks::CheckError;
use crate::commit::CommitError;
use crate::engine;
use crate::outputs::SinkError;
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
    #[error(transparent)]
    Cluster(#[from] crate::cluster::ClusterError),
    #[error(transparent)]
    Staging(#[from] source::StagingError),
    #[error(transparent)]
    Step(#[from] StepError),
    #[error("engine: {what}: {source}")]
    Query {
        what: String,
        source: DataFusionError,
    },
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
            RunError::Bind(_) | RunError::Sink(SinkError::Spec { .. }) => "job",
            RunError::Storage(_) => "storage",
            RunError::Engine(_) | RunError::Query { .. } | RunError::Step(_) => "engine",
            RunError::Staging(e) => e.layer(),
            RunError::Check(_) => "check",
            RunError::Sink(_) => "sink",
            RunError::Commit(_) => "commit",
            RunError::Erasure(_) => "erasure",
            RunError::Cluster(_) => "cluster",
        }
    }

    /// What the engineer should do next.
    pub fn next_step(&self) -> String {
        match self {
            RunError::Bind(_) | RunError::Sink(SinkError::Spec { .. }) => {
                "fix the job file or the command line, then rerun".into()
            }
            RunError::Storage(_) => "check the storage URL, options and credentials".into(),
            RunError::Engine(_) | RunError::Query { .. } | RunError::Step(_) => {
                "fix the SQL (or memory limit) named in the error, then rerun the date".into()
            }
            RunError::Staging(e) => e.next_step(),
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
            RunError::Cluster(_) => {
                "start the scheduler and executors (c360 cluster …) or fix `--engine` / `engine.cluster`, then rerun the date".into()
            }
            RunError::Erasure(_) => {
                "fix the erasure steps (erasure_requests, erased_identifiers) or the storage named in the error, then rerun the date; nothing was published".into()
            }
        }
    }
}
