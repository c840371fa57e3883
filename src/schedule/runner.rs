//! The seam between the scheduler and a load: a [`Runner`] runs one (job, logical
//! date) and says how it ended. [`JobRunner`] is the real one, over the same
//! `run::run` that `c360 run` calls: the scheduler has no copy of the load logic.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::NaiveDate;
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::job::Job;
use crate::outputs::SinkError;
use crate::run::{self, RunError, RunOptions};

/// How one attempt of a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunOutcome {
    /// The run committed its outputs.
    Succeeded { run_id: String },
    /// The run failed; `retryable` failures (storage, network) may pass on a retry,
    /// the others (invalid data, reject budget, failed checks, bad SQL) will not.
    Failed { retryable: bool, message: String },
    /// The run was cancelled (shutdown, `overlap: replace`) before it committed.
    Cancelled,
    /// The run exceeded `max_runtime` and was cancelled.
    TimedOut,
}

/// Runs one (job, logical date).
#[async_trait]
pub trait Runner: Send + Sync {
    /// Runs `job` for `date`. When `cancel` fires the run must stop promptly and
    /// leave the last committed output as it was, returning [`RunOutcome::Cancelled`].
    async fn run(&self, job: &Job, date: NaiveDate, cancel: CancellationToken) -> RunOutcome;
}

/// The real runner: `run::run` for the date, dropped at its next await point when
/// cancelled. Dropping is safe because a run publishes only after every output is
/// staged, and a partition only becomes visible with its `_SUCCESS` marker.
pub struct JobRunner {
    pub clock: Arc<dyn Clock>,
    /// `--set` overrides applied to every run.
    pub overrides: Vec<(String, String)>,
    pub memory_limit: Option<u64>,
    /// `--engine` applied to every run.
    pub engine: Option<crate::job::EngineChoice>,
}

#[async_trait]
impl Runner for JobRunner {
    async fn run(&self, job: &Job, date: NaiveDate, cancel: CancellationToken) -> RunOutcome {
        let options = RunOptions {
            date: Some(date),
            overrides: self.overrides.clone(),
            memory_limit: self.memory_limit,
            engine: self.engine.clone(),
            clock: self.clock.clone(),
            full_refresh: false,
        };
        tokio::select! {
            biased;
            _ = cancel.cancelled() => RunOutcome::Cancelled,
            result = run::run(job, &options) => match result {
                Ok(summary) => RunOutcome::Succeeded { run_id: summary.run_id },
                Err(e) => RunOutcome::Failed { retryable: is_retryable(&e), message: e.to_string() },
            },
        }
    }
}

/// Whether a run error is worth retrying: storage and network trouble is, bad
/// input is not (a retry would read the same bytes and fail the same way).
pub fn is_retryable(error: &RunError) -> bool {
    match error {
        RunError::Storage(_) => true,
        RunError::Sink(SinkError::Store { .. }) => true,
        RunError::Staging(e) => e.is_retryable(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::{SourceError, StagingError};

    #[test]
    fn storage_and_network_errors_are_retryable_data_errors_are_not() {
        let store = || object_store::Error::NotFound {
            path: "x".into(),
            source: "gone".into(),
        };
        assert!(is_retryable(&RunError::Storage(
            crate::storage::StorageError::EmptyLocation
        )));
        assert!(is_retryable(&RunError::Sink(SinkError::Store {
            path: "p".into(),
            source: store(),
        })));
        let source = |source| {
            RunError::Staging(StagingError::Read {
                name: "orders".into(),
                source,
            })
        };
        assert!(is_retryable(&source(SourceError::List {
            location: "s3://b/raw".into(),
            source: store(),
        })));
        let reset = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset");
        assert!(is_retryable(&source(SourceError::Read {
            file: "f".into(),
            source: reset,
        })));
        let bad_gzip = std::io::Error::new(std::io::ErrorKind::InvalidData, "bad gzip");
        assert!(!is_retryable(&source(SourceError::Read {
            file: "f".into(),
            source: bad_gzip,
        })));
        assert!(!is_retryable(&RunError::Staging(
            StagingError::RejectBudget {
                name: "orders".into(),
                rejected: 5,
                read: 10,
                budget: "1%".into(),
                reasons: String::new(),
                rejects: String::new(),
            }
        )));
        assert!(!is_retryable(&RunError::Bind("bad --set".into())));
    }
}
