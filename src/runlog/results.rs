//! `run_results.json`: the last run of a warehouse in the shape of dbt's
//! artifact (`metadata`, `elapsed_time`, `args`, one `results` entry per node),
//! so tools that read dbt results need little adapting.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::{RunRecord, RunStatus};
use crate::checks::CheckStatus;

/// The file's top level.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RunResults {
    pub metadata: Metadata,
    pub elapsed_time: f64,
    pub args: BTreeMap<String, String>,
    pub results: Vec<NodeResult>,
}

/// Which run the results are of.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Metadata {
    pub c360_version: String,
    pub generated_at: DateTime<Utc>,
    pub invocation_id: String,
    pub job: String,
    pub logical_date: String,
    pub status: RunStatus,
}

/// One source, check or output.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct NodeResult {
    /// `source.<job>.<name>`, `check.<job>.<table>.<check>`, `output.<job>.<name>`.
    pub unique_id: String,
    /// `success`, `error`, `pass`, `warn`, `fail`.
    pub status: String,
    pub rows: Option<u64>,
    pub failures: Option<u64>,
    pub message: String,
}

impl RunResults {
    /// The results of a finished run.
    pub fn from_record(record: &RunRecord) -> Self {
        let job = &record.job;
        let mut results = Vec::new();
        for source in &record.sources {
            results.push(NodeResult {
                unique_id: format!("source.{job}.{}", source.name),
                status: "success".into(),
                rows: Some(source.rows_accepted),
                failures: Some(source.rows_rejected),
                message: format!(
                    "{} read, {} accepted, {} rejected",
                    source.rows_read, source.rows_accepted, source.rows_rejected
                ),
            });
        }
        for check in &record.checks {
            results.push(NodeResult {
                unique_id: format!("check.{job}.{}.{}", check.table, check.check),
                status: match check.status {
                    CheckStatus::Pass => "pass",
                    CheckStatus::Warn => "warn",
                    CheckStatus::Fail => "fail",
                }
                .into(),
                rows: None,
                failures: Some(check.failures),
                message: check.message.clone(),
            });
        }
        for output in &record.outputs {
            results.push(NodeResult {
                unique_id: format!("output.{job}.{}", output.name),
                status: "success".into(),
                rows: Some(output.rows),
                failures: None,
                message: output.location.clone(),
            });
        }
        if let Some(error) = &record.error {
            results.push(NodeResult {
                unique_id: format!("run.{job}"),
                status: "error".into(),
                rows: None,
                failures: None,
                message: format!("{} (next: {})", error.message, error.next_step),
            });
        }
        Self {
            metadata: Metadata {
                c360_version: env!("CARGO_PKG_VERSION").into(),
                generated_at: record.ended_at.unwrap_or(record.started_at),
                invocation_id: record.run_id.clone(),
                job: job.clone(),
                logical_date: record.logical_date.to_string(),
                status: record.status,
            },
            elapsed_time: record.elapsed_secs(),
            args: record.params.clone(),
            results,
        }
    }
}
