//! The run log as the scheduler's memory: [`RunHistory`] over the run
//! records in each job's warehouse (`{warehouse}/_c360/runs/`), so a restarted
//! daemon or a resumed backfill sees every run, whoever started it.

use async_trait::async_trait;
use chrono::NaiveDate;

use super::history::{HistoryError, PastRun, PastRunStatus, RunHistory};
use crate::job::Job;
use crate::runlog::{RunLog, RunStatus};
use crate::storage::StorageRegistry;

/// Reads run history from the warehouse of the job asked about, as the runs
/// see it: after the same `--set` overrides.
#[derive(Debug, Default, Clone)]
pub struct WarehouseHistory {
    /// `--set` overrides applied to every job (`crate::job::apply_overrides`).
    pub overrides: Vec<(String, String)>,
}

impl WarehouseHistory {
    /// The run log of `job`'s warehouse (its `storage.warehouse` after the
    /// overrides, params interpolated).
    fn log_of(&self, job: &Job) -> Result<RunLog, HistoryError> {
        let bound = crate::job::apply_overrides(job, &self.overrides)
            .map_err(|e| HistoryError(format!("job {}: {e}", job.name)))?;
        let warehouse = crate::job::interpolate(&bound.warehouse, &bound.params)
            .map_err(|e| HistoryError(format!("job {}: warehouse: {e}", job.name)))?;
        let registry = StorageRegistry::for_job(job.base_dir.clone(), &job.storage);
        let location = registry
            .resolve(&warehouse)
            .map_err(|e| HistoryError(e.to_string()))?;
        Ok(RunLog::new(location.store.clone(), &location.prefix))
    }
}

#[async_trait]
impl RunHistory for WarehouseHistory {
    async fn runs(
        &self,
        job: &Job,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<PastRun>, HistoryError> {
        let records = self
            .log_of(job)?
            .recent(Some(&job.name), usize::MAX)
            .await
            .map_err(|e| HistoryError(e.to_string()))?;
        Ok(records
            .into_iter()
            .filter(|r| r.logical_date >= from && r.logical_date <= to)
            .map(|r| PastRun {
                job: r.job,
                date: r.logical_date,
                run_id: r.run_id,
                started_at: r.started_at,
                status: match r.status {
                    RunStatus::Succeeded => PastRunStatus::Succeeded,
                    RunStatus::Failed => PastRunStatus::Failed,
                    // A run still marked running is either in progress or was killed;
                    // neither satisfies a tick.
                    RunStatus::Running | RunStatus::Abandoned => PastRunStatus::Cancelled,
                },
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_warehouse_without_runs_has_no_history() {
        let wh = tempfile::tempdir().unwrap();
        let job = crate::job::load(
            &std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("jobs/customer_360.yaml"),
        );
        let mut job = job.unwrap();
        job.storage.warehouse = wh.path().display().to_string();
        let day = NaiveDate::from_ymd_opt(2026, 3, 1).unwrap();
        assert!(
            WarehouseHistory::default()
                .runs(&job, day, day)
                .await
                .unwrap()
                .is_empty()
        );
        assert!(
            !WarehouseHistory::default()
                .succeeded_since(&job, day, None)
                .await
                .unwrap()
        );
    }
}
