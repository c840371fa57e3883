//! `c360 backfill JOB --from D --to D`: runs each logical date in order, skips
//! dates the run history shows succeeded (unless forced), and stops at the first
//! failure, like `dbt retry`: run the same command again to resume where it
//! stopped, since what succeeded is in the run history.

use chrono::NaiveDate;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::history::RunHistory;
use super::policy::{self, AttemptPolicy};
use super::runner::{RunOutcome, Runner};
use crate::job::Job;

/// What a backfill did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct BackfillSummary {
    pub succeeded: Vec<NaiveDate>,
    /// Already succeeded before (not re-run without `--force`).
    pub skipped: Vec<NaiveDate>,
    /// The date that failed (or was interrupted) and why; the backfill stopped there.
    pub stopped_at: Option<(NaiveDate, String)>,
    /// Dates after the stop that were not attempted.
    pub not_run: Vec<NaiveDate>,
}

impl BackfillSummary {
    /// Whether every date is now done.
    pub fn is_complete(&self) -> bool {
        self.stopped_at.is_none()
    }
}

/// Errors before any date ran.
#[derive(Debug, thiserror::Error)]
pub enum BackfillError {
    #[error("backfill: --from {from} is after --to {to}")]
    EmptyRange { from: NaiveDate, to: NaiveDate },
}

/// An inclusive range of logical dates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DateRange {
    pub from: NaiveDate,
    pub to: NaiveDate,
}

/// Runs `job` for every date in `range`, in order.
pub async fn backfill(
    job: &Job,
    range: DateRange,
    force: bool,
    runner: &dyn Runner,
    history: &dyn RunHistory,
    policy: &AttemptPolicy,
    cancel: &CancellationToken,
) -> Result<BackfillSummary, BackfillError> {
    let DateRange { from, to } = range;
    if from > to {
        return Err(BackfillError::EmptyRange { from, to });
    }
    let dates: Vec<NaiveDate> = from.iter_days().take_while(|d| *d <= to).collect();
    let mut summary = BackfillSummary::default();
    for (i, date) in dates.iter().copied().enumerate() {
        if !force {
            match history.succeeded_since(job, date, None).await {
                Ok(true) => {
                    tracing::info!(job = %job.name, date = %date, "already succeeded; skipped");
                    summary.skipped.push(date);
                    continue;
                }
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(job = %job.name, date = %date, error = %e, "cannot read run history; running the date")
                }
            }
        }
        let span = tracing::info_span!("backfill", job = %job.name, date = %date);
        let attempted = policy::run_attempts(runner, job, date, policy, cancel)
            .instrument(span)
            .await;
        let why = match attempted.outcome {
            RunOutcome::Succeeded { .. } => {
                summary.succeeded.push(date);
                continue;
            }
            RunOutcome::Failed { message, .. } => message,
            RunOutcome::Cancelled => "interrupted".to_string(),
            RunOutcome::TimedOut => "exceeded max_runtime".to_string(),
        };
        summary.stopped_at = Some((date, why));
        summary.not_run = dates[i + 1..].to_vec();
        break;
    }
    Ok(summary)
}

#[cfg(test)]
#[path = "backfill_tests.rs"]
mod tests;
