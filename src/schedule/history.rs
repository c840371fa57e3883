//! The scheduler's memory: which (job, logical date) runs succeeded or failed and
//! when. The run log in the warehouse (`{warehouse}/_c360/runs/`) is the source of
//! truth (`schedule::WarehouseHistory` reads it); this module is the seam the
//! scheduler reads it through, plus an in-memory implementation for tests.

use std::sync::Mutex;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};

use crate::job::Job;

/// How a recorded run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PastRunStatus {
    Succeeded,
    Failed,
    Cancelled,
}

/// One run of a job for a logical date, as the run log records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PastRun {
    pub job: String,
    pub date: NaiveDate,
    pub run_id: String,
    pub started_at: DateTime<Utc>,
    pub status: PastRunStatus,
}

/// Reading the run history failed (e.g. the warehouse is unreachable).
#[derive(Debug, thiserror::Error)]
#[error("run history: {0}")]
pub struct HistoryError(pub String);

/// What ran, per job and logical date.
#[async_trait]
pub trait RunHistory: Send + Sync {
    /// Every recorded run of `job` with a logical date in `from..=to`, any order.
    async fn runs(
        &self,
        job: &Job,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<PastRun>, HistoryError>;

    /// Whether `date` has a successful run that started at or after `since`
    /// (`None`: ever). A scheduled tick is satisfied by a success started after it.
    async fn succeeded_since(
        &self,
        job: &Job,
        date: NaiveDate,
        since: Option<DateTime<Utc>>,
    ) -> Result<bool, HistoryError> {
        let runs = self.runs(job, date, date).await?;
        Ok(runs.iter().any(|r| {
            r.status == PastRunStatus::Succeeded && since.is_none_or(|s| r.started_at >= s)
        }))
    }
}

/// A run history held in memory: the fake for tests.
#[derive(Debug, Default)]
pub struct MemoryRunHistory {
    records: Mutex<Vec<PastRun>>,
}

impl MemoryRunHistory {
    /// Adds one record.
    pub fn record(&self, record: PastRun) {
        if let Ok(mut records) = self.records.lock() {
            records.push(record);
        }
    }

    /// Every record, in the order they were added.
    pub fn all(&self) -> Vec<PastRun> {
        self.records.lock().map(|r| r.clone()).unwrap_or_default()
    }

    /// Logical dates of `job` with a successful run, sorted, each once.
    pub fn succeeded_dates(&self, job: &str) -> Vec<NaiveDate> {
        let mut dates: Vec<NaiveDate> = self
            .all()
            .into_iter()
            .filter(|r| r.job == job && r.status == PastRunStatus::Succeeded)
            .map(|r| r.date)
            .collect();
        dates.sort();
        dates.dedup();
        dates
    }
}

#[async_trait]
impl RunHistory for MemoryRunHistory {
    async fn runs(
        &self,
        job: &Job,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<PastRun>, HistoryError> {
        let records = self
            .records
            .lock()
            .map_err(|_| HistoryError("in-memory history poisoned".into()))?;
        Ok(records
            .iter()
            .filter(|r| r.job == job.name && r.date >= from && r.date <= to)
            .cloned()
            .collect())
    }
}
