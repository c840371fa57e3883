//! The run log: one JSON record per run in `{warehouse}/_c360/runs/<run_id>.json`
//! and the last run's `{warehouse}/_c360/run_results.json` (shaped like dbt's).
//!
//! A run writes its record when it starts (`running`) and again when it ends
//! (`succeeded` / `failed`). A record still `running` whose run left debris that
//! a later run cleaned up is rewritten as `abandoned` (killed or crashed).
//! Run ids start with the UTC start time, so the file names sort by start.

mod results;
mod status;

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

use crate::checks::CheckOutcome;
pub use crate::source::RowAccounting;
pub use results::RunResults;
pub use status::status_table;

/// Errors of the run log.
#[derive(Debug, thiserror::Error)]
pub enum RunLogError {
    #[error(
        "run log: storage error on {path}: {}",
        crate::storage::describe(source)
    )]
    Store {
        path: String,
        source: object_store::Error,
    },
    #[error("run log: unreadable record {path}: {message}")]
    Record { path: String, message: String },
}

/// Where a run stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Running,
    Succeeded,
    Failed,
    /// Killed or crashed; a later run cleaned up after it.
    Abandoned,
}

/// Time spent in one stage of the run.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct StageTiming {
    pub stage: String,
    pub secs: f64,
    /// The process's peak resident memory while the stage ran (Linux; absent
    /// elsewhere): what the memory pool does not see shows here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peak_rss_bytes: Option<u64>,
}

/// One step of the run's DAG: how it ran and what it cost.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct StepRecord {
    pub name: String,
    /// `table` (written once to staging), `output` (written once as the staged
    /// output partition) or `view` (planned into its readers; no figures).
    pub materialize: String,
    /// `hash` or `sort_merge`: the joins the step was planned with.
    pub join: String,
    /// Staged Parquet the step's plan reads (sources and tables beneath its views).
    pub input_bytes: u64,
    pub rows: Option<u64>,
    pub bytes: Option<u64>,
    pub secs: f64,
    /// Peak of DataFusion's memory pool while the step ran.
    pub peak_memory_bytes: u64,
    /// The process's peak resident memory while the step ran (Linux; absent elsewhere).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peak_rss_bytes: Option<u64>,
    pub spilled_bytes: u64,
    pub spill_files: u64,
    /// An incremental step: what it read from its carried state and folded in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incremental: Option<crate::steps::carried::Carried>,
    /// A step with `window_days`: the source days it read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_days_read: Option<u64>,
}

/// Rows per source, as read.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SourceRecord {
    pub name: String,
    pub files: u64,
    pub rows_read: u64,
    pub rows_accepted: u64,
    pub rows_rejected: u64,
    pub rejects_by_reason: BTreeMap<String, u64>,
    /// `dt` partitions parsed by this run into the typed staging cache, and
    /// those read from it (empty for unpartitioned sources).
    #[serde(default)]
    pub days_parsed: Vec<chrono::NaiveDate>,
    #[serde(default)]
    pub days_reused: Vec<chrono::NaiveDate>,
}

/// One published partition (an output, or an extract's rejects).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PartitionRecord {
    pub name: String,
    pub location: String,
    pub rows: u64,
    /// File names inside `location`.
    pub files: Vec<String>,
}

/// Why a run failed and what to do next.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ErrorRecord {
    /// `job`, `storage`, `source`, `engine`, `check`, `accounting`, `sink`, `commit`.
    pub layer: String,
    pub message: String,
    pub next_step: String,
}

/// One run.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RunRecord {
    pub run_id: String,
    pub job: String,
    pub job_file: String,
    pub logical_date: NaiveDate,
    /// Bound variables: params after `--set`, plus `date`, `raw`, `warehouse`.
    pub params: BTreeMap<String, String>,
    pub started_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
    pub status: RunStatus,
    pub stages: Vec<StageTiming>,
    /// The steps in the order they ran; absent in records of older versions.
    #[serde(default)]
    pub steps: Vec<StepRecord>,
    pub sources: Vec<SourceRecord>,
    pub accounting: Vec<RowAccounting>,
    pub outputs: Vec<PartitionRecord>,
    pub rejects: Vec<PartitionRecord>,
    pub checks: Vec<CheckOutcome>,
    /// Runs whose debris this run cleaned up.
    pub recovered_runs: Vec<String>,
    pub error: Option<ErrorRecord>,
    /// What erasure removed (docs/rules.md "Erasure"); absent in records of older versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub erasure: Option<crate::erasure::ErasureRecord>,
    /// The Ballista scheduler the run's queries ran on (`ballista://host:port`);
    /// absent: this process.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine: Option<String>,
}

impl RunRecord {
    /// Seconds from start to end (or to now while running).
    pub fn elapsed_secs(&self) -> f64 {
        let end = self.ended_at.unwrap_or_else(Utc::now);
        (end - self.started_at).num_milliseconds() as f64 / 1000.0
    }
}

/// The run log of one warehouse.
#[derive(Debug, Clone)]
pub struct RunLog {
    store: Arc<dyn ObjectStore>,
    dir: Path,
    results: Path,
}

impl RunLog {
    /// The run log under `warehouse` (a prefix in `store`).
    pub fn new(store: Arc<dyn ObjectStore>, warehouse: &Path) -> Self {
        let internal = warehouse.clone().join("_c360");
        Self {
            store,
            dir: internal.clone().join("runs"),
            results: internal.join("run_results.json"),
        }
    }

    /// Where `run_results.json` is.
    pub fn results_path(&self) -> &Path {
        &self.results
    }

    /// Writes (or rewrites) a run's record.
    pub async fn write(&self, record: &RunRecord) -> Result<(), RunLogError> {
        let path = self.dir.clone().join(format!("{}.json", record.run_id));
        self.put_json(&path, record).await
    }

    /// Writes the record and `run_results.json` for a finished run.
    pub async fn finish(&self, record: &RunRecord) -> Result<(), RunLogError> {
        self.write(record).await?;
        self.put_json(&self.results, &RunResults::from_record(record))
            .await
    }

    /// Rewrites still-`running` records of `runs` as `abandoned`.
    pub async fn mark_abandoned(&self, runs: &[String], at: DateTime<Utc>) {
        for run in runs {
            let path = self.dir.clone().join(format!("{run}.json"));
            match self.read(&path).await {
                Ok(mut record) if record.status == RunStatus::Running => {
                    record.status = RunStatus::Abandoned;
                    record.ended_at = Some(at);
                    record.error = Some(ErrorRecord {
                        layer: "run".into(),
                        message: "the run stopped without finishing (killed or crashed)".into(),
                        next_step: "nothing to undo: its debris was cleaned up; rerun the date if it has no snapshot".into(),
                    });
                    if let Err(e) = self.write(&record).await {
                        tracing::warn!(run_id = %run, error = %e, "could not mark run abandoned");
                    }
                }
                _ => {}
            }
        }
    }

    /// The most recent `limit` records, newest first, of `job` (or of every job).
    pub async fn recent(
        &self,
        job: Option<&str>,
        limit: usize,
    ) -> Result<Vec<RunRecord>, RunLogError> {
        let mut paths: Vec<Path> = self
            .store
            .list(Some(&self.dir))
            .map_ok(|meta| meta.location)
            .try_collect()
            .await
            .map_err(|source| RunLogError::Store {
                path: self.dir.to_string(),
                source,
            })?;
        paths.retain(|p| p.extension() == Some("json"));
        paths.sort();
        let mut records = Vec::new();
        for path in paths.iter().rev() {
            if records.len() >= limit {
                break;
            }
            let record = self.read(path).await?;
            if job.is_none_or(|j| j == record.job) {
                records.push(record);
            }
        }
        Ok(records)
    }

    async fn read(&self, path: &Path) -> Result<RunRecord, RunLogError> {
        let store_err = |source| RunLogError::Store {
            path: path.to_string(),
            source,
        };
        let bytes = self
            .store
            .get(path)
            .await
            .map_err(store_err)?
            .bytes()
            .await
            .map_err(store_err)?;
        serde_json::from_slice(&bytes).map_err(|e| RunLogError::Record {
            path: path.to_string(),
            message: e.to_string(),
        })
    }

    async fn put_json<T: serde::Serialize>(
        &self,
        path: &Path,
        value: &T,
    ) -> Result<(), RunLogError> {
        let body = serde_json::to_vec_pretty(value).map_err(|e| RunLogError::Record {
            path: path.to_string(),
            message: e.to_string(),
        })?;
        self.store
            .put(path, PutPayload::from(body))
            .await
            .map_err(|source| RunLogError::Store {
                path: path.to_string(),
                source,
            })?;
        Ok(())
    }
}
