//! Per-job policies around a run: what to do when a run is due while another is
//! going (`overlap`), and the attempt loop with `max_runtime` and retries with
//! exponential backoff and jitter. The daemon and `c360 backfill` share
//! [`run_attempts`], so a date is run the same way whoever asks.

use std::sync::Arc;
use std::time::Duration;

use chrono::NaiveDate;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::runner::{RunOutcome, Runner};
use crate::job::{Job, Overlap, RetryPolicy};

/// What to do with a tick that is due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnDue {
    /// Nothing is running: start it.
    Start,
    /// A run is going: drop this tick (`overlap: skip`).
    Skip,
    /// A run is going: start this tick when it ends (`overlap: queue`).
    Queue,
    /// A run is going: cancel it, then start this tick (`overlap: replace`).
    Replace,
}

/// The overlap decision, like Kubernetes CronJob's `concurrencyPolicy`
/// (Forbid = skip, Replace = replace; queue runs them one after another).
pub fn on_due(overlap: Overlap, busy: bool) -> OnDue {
    match (busy, overlap) {
        (false, _) => OnDue::Start,
        (true, Overlap::Skip) => OnDue::Skip,
        (true, Overlap::Queue) => OnDue::Queue,
        (true, Overlap::Replace) => OnDue::Replace,
    }
}

/// Longest wait between two attempts, however many retries came before.
pub const MAX_BACKOFF: Duration = Duration::from_secs(3600);

/// Wait before retry number `retry` (1 = the first retry): `backoff · 2^(retry-1)`,
/// capped at [`MAX_BACKOFF`], with "equal jitter": half of it fixed, half scaled by
/// `jitter` in `[0, 1)`. The fixed half keeps retries from hammering a store that
/// is down; the random half keeps many jobs from retrying in lockstep.
pub fn retry_delay(backoff: Duration, retry: u32, jitter: f64) -> Duration {
    let factor = 2u32.saturating_pow(retry.saturating_sub(1));
    let full = backoff.saturating_mul(factor).min(MAX_BACKOFF);
    let half = full / 2;
    half + half.mul_f64(jitter.clamp(0.0, 1.0))
}

/// A source of jitter in `[0, 1)`; injected so tests get fixed delays.
pub type Jitter = Arc<dyn Fn() -> f64 + Send + Sync>;

/// Jitter from the thread-local random generator.
pub fn random_jitter() -> Jitter {
    Arc::new(rand::random::<f64>)
}

/// How a date's run ended after every attempt it was allowed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempted {
    pub outcome: RunOutcome,
    /// Attempts made (1 = no retry).
    pub attempts: u32,
}

/// Limits of one date's run.
#[derive(Clone)]
pub struct AttemptPolicy {
    pub retries: RetryPolicy,
    /// Each attempt is cancelled after this long (`None`: no limit).
    pub max_runtime: Option<Duration>,
    pub jitter: Jitter,
}

/// Runs `job` for `date` until it succeeds, fails for good, or `cancel` fires.
/// Only retryable failures are retried; a timed-out attempt is not (a load that
/// overran once will overrun again and would pile up behind the next tick).
pub async fn run_attempts(
    runner: &dyn Runner,
    job: &Job,
    date: NaiveDate,
    policy: &AttemptPolicy,
    cancel: &CancellationToken,
) -> Attempted {
    let mut attempt = 1;
    loop {
        let span = tracing::info_span!("attempt", job = %job.name, date = %date, attempt);
        let outcome = one_attempt(runner, job, date, policy.max_runtime, cancel)
            .instrument(span)
            .await;
        match outcome {
            RunOutcome::Failed {
                retryable: true,
                message,
            } if attempt <= policy.retries.attempts && !cancel.is_cancelled() => {
                let delay = retry_delay(policy.retries.backoff, attempt, (policy.jitter)());
                tracing::warn!(job = %job.name, date = %date, attempt, delay_secs = delay.as_secs_f64(), error = %message, "retryable failure; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = cancel.cancelled() => return Attempted { outcome: RunOutcome::Cancelled, attempts: attempt },
                }
                attempt += 1;
            }
            outcome => {
                return Attempted {
                    outcome,
                    attempts: attempt,
                };
            }
        }
    }
}

async fn one_attempt(
    runner: &dyn Runner,
    job: &Job,
    date: NaiveDate,
    max_runtime: Option<Duration>,
    cancel: &CancellationToken,
) -> RunOutcome {
    let token = cancel.child_token();
    let run = runner.run(job, date, token.clone());
    tokio::pin!(run);
    let Some(limit) = max_runtime else {
        return run.await;
    };
    tokio::select! {
        outcome = &mut run => outcome,
        _ = tokio::time::sleep(limit) => {
            tracing::warn!(job = %job.name, date = %date, max_runtime_secs = limit.as_secs(), "run exceeded max_runtime; cancelling");
            // Cancel and wait, so the run stops cleanly instead of being dropped mid-write.
            token.cancel();
            let _ = run.await;
            RunOutcome::TimedOut
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlap_decisions() {
        assert_eq!(on_due(Overlap::Skip, false), OnDue::Start);
        assert_eq!(on_due(Overlap::Replace, false), OnDue::Start);
        assert_eq!(on_due(Overlap::Skip, true), OnDue::Skip);
        assert_eq!(on_due(Overlap::Queue, true), OnDue::Queue);
        assert_eq!(on_due(Overlap::Replace, true), OnDue::Replace);
    }

    #[test]
    fn backoff_doubles_with_equal_jitter_and_a_cap() {
        let m = Duration::from_secs(60);
        // jitter 0: half of 60·2^(n-1); jitter ~1: all of it.
        assert_eq!(retry_delay(m, 1, 0.0), Duration::from_secs(30));
        assert_eq!(retry_delay(m, 2, 0.0), Duration::from_secs(60));
        assert_eq!(retry_delay(m, 3, 0.0), Duration::from_secs(120));
        assert_eq!(retry_delay(m, 3, 0.5), Duration::from_secs(180));
        assert_eq!(retry_delay(m, 3, 1.0), Duration::from_secs(240));
        // 60s·2^9 = 8.5h is capped at 1h, so 30..60 minutes.
        assert_eq!(retry_delay(m, 10, 0.0), Duration::from_secs(1800));
        assert_eq!(retry_delay(m, 40, 1.0), Duration::from_secs(3600));
    }
}
