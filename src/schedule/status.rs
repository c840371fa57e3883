//! The daemon's health file: per job the next scheduled run, what is running or
//! queued and the last outcome, plus a heartbeat and pid so a supervisor (or a
//! person) can tell whether the daemon is alive. Written atomically (temp file +
//! rename) so a reader never sees half a file.

use std::path::{Path, PathBuf};

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

use super::runner::RunOutcome;

/// The whole status file.
#[derive(Debug, Clone, Serialize)]
pub struct DaemonStatus {
    pub pid: u32,
    pub started_at: DateTime<Utc>,
    /// Updated on every wake: older than a few heartbeats means the daemon is gone.
    pub heartbeat: DateTime<Utc>,
    /// `running`, or `stopping` once a shutdown signal arrived, `stopped` at exit.
    pub state: &'static str,
    pub jobs_dir: PathBuf,
    pub jobs: Vec<JobStatus>,
}

/// One scheduled job.
#[derive(Debug, Clone, Serialize)]
pub struct JobStatus {
    pub job: String,
    pub file: PathBuf,
    pub cron: String,
    pub timezone: String,
    pub next_run_at: Option<DateTime<Utc>>,
    pub next_run_date: Option<NaiveDate>,
    pub running: Option<RunningStatus>,
    pub queued: Vec<NaiveDate>,
    pub last: Option<LastRun>,
    /// Ticks dropped by `overlap: skip` since the daemon started.
    pub skipped_ticks: u64,
}

/// The run in progress.
#[derive(Debug, Clone, Serialize)]
pub struct RunningStatus {
    pub date: NaiveDate,
    pub scheduled_at: DateTime<Utc>,
    pub started_at: DateTime<Utc>,
}

/// How the latest run of a job ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LastRun {
    pub date: NaiveDate,
    /// `succeeded`, `failed`, `cancelled` or `timed_out`.
    pub outcome: &'static str,
    pub run_id: Option<String>,
    pub message: Option<String>,
    pub attempts: u32,
    pub finished_at: DateTime<Utc>,
}

impl LastRun {
    /// Summarises a finished run.
    pub fn new(
        date: NaiveDate,
        outcome: &RunOutcome,
        attempts: u32,
        finished_at: DateTime<Utc>,
    ) -> Self {
        let (name, run_id, message) = match outcome {
            RunOutcome::Succeeded { run_id } => ("succeeded", Some(run_id.clone()), None),
            RunOutcome::Failed { message, .. } => ("failed", None, Some(message.clone())),
            RunOutcome::Cancelled => ("cancelled", None, None),
            RunOutcome::TimedOut => ("timed_out", None, None),
        };
        Self {
            date,
            outcome: name,
            run_id,
            message,
            attempts,
            finished_at,
        }
    }
}

/// Writes `status` to `path` atomically.
pub fn write_status(path: &Path, status: &DaemonStatus) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let text = serde_json::to_string_pretty(status).map_err(std::io::Error::other)?;
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path)
}
