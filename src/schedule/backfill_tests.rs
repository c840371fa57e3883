//! Backfill over a scripted runner and an in-memory run history.

use std::sync::Arc;

use chrono_tz::Europe::London;
use tokio::sync::Notify;

use super::*;
use crate::clock::ManualClock;
use crate::job::{Overlap, RetryPolicy};
use crate::schedule::fakes::{ScriptedRunner, Step};
use crate::schedule::history::{MemoryRunHistory, PastRun, PastRunStatus};
use crate::schedule::test_support::*;

struct Setup {
    job: Job,
    history: Arc<MemoryRunHistory>,
    runner: Arc<ScriptedRunner>,
    policy: AttemptPolicy,
}

fn setup() -> Setup {
    let clock = Arc::new(ManualClock::new(utc("2026-03-10T12:00:00Z")));
    let history = Arc::new(MemoryRunHistory::default());
    let runner = Arc::new(ScriptedRunner::new(clock, history.clone()));
    Setup {
        job: job("c360", London, spec("30 2 * * *", 0, Overlap::Skip)),
        history,
        runner,
        policy: AttemptPolicy {
            retries: RetryPolicy::default(),
            max_runtime: None,
            jitter: no_jitter(),
        },
    }
}

impl Setup {
    async fn backfill(&self, from: &str, to: &str, force: bool) -> BackfillSummary {
        let cancel = CancellationToken::new();
        backfill(
            &self.job,
            DateRange {
                from: day(from),
                to: day(to),
            },
            force,
            self.runner.as_ref(),
            self.history.as_ref(),
            &self.policy,
            &cancel,
        )
        .await
        .unwrap()
    }
}

#[tokio::test]
async fn dates_run_in_order_and_succeeded_ones_are_skipped_unless_forced() {
    let s = setup();
    s.history.record(PastRun {
        job: "c360".into(),
        date: day("2026-03-02"),
        run_id: "earlier".into(),
        started_at: utc("2026-03-02T02:30:00Z"),
        status: PastRunStatus::Succeeded,
    });
    let summary = s.backfill("2026-03-01", "2026-03-04", false).await;
    assert_eq!(
        summary.succeeded,
        days(&["2026-03-01", "2026-03-03", "2026-03-04"])
    );
    assert_eq!(summary.skipped, days(&["2026-03-02"]));
    assert!(summary.is_complete());
    let forced = s.backfill("2026-03-01", "2026-03-02", true).await;
    assert_eq!(forced.succeeded, days(&["2026-03-01", "2026-03-02"]));
    assert_eq!(
        s.runner.dates(),
        days(&[
            "2026-03-01",
            "2026-03-03",
            "2026-03-04",
            "2026-03-01",
            "2026-03-02"
        ])
    );
}

#[tokio::test]
async fn the_first_failure_stops_the_backfill_and_a_rerun_resumes_there() {
    let s = setup();
    s.runner
        .script(day("2026-03-02"), vec![Step::Fail { retryable: false }]);
    let summary = s.backfill("2026-03-01", "2026-03-04", false).await;
    assert_eq!(summary.succeeded, days(&["2026-03-01"]));
    assert_eq!(
        summary.stopped_at,
        Some((day("2026-03-02"), "scripted failure for 2026-03-02".into()))
    );
    assert_eq!(summary.not_run, days(&["2026-03-03", "2026-03-04"]));
    let resumed = s.backfill("2026-03-01", "2026-03-04", false).await;
    assert_eq!(resumed.skipped, days(&["2026-03-01"]));
    assert_eq!(
        resumed.succeeded,
        days(&["2026-03-02", "2026-03-03", "2026-03-04"])
    );
}

#[tokio::test]
async fn a_killed_backfill_resumes_after_the_last_succeeded_date() {
    let s = Arc::new(setup());
    let never = Arc::new(Notify::new());
    s.runner
        .script(day("2026-03-03"), vec![Step::WaitFor(never)]);
    let running = {
        let s = s.clone();
        tokio::spawn(async move { s.backfill("2026-03-01", "2026-03-05", false).await })
    };
    while s.runner.dates().len() < 3 {
        tokio::task::yield_now().await;
    }
    // Killed while 3 March is running: the process is gone, no summary, no cleanup.
    running.abort();
    assert!(running.await.unwrap_err().is_cancelled());
    let resumed = s.backfill("2026-03-01", "2026-03-05", false).await;
    assert_eq!(resumed.skipped, days(&["2026-03-01", "2026-03-02"]));
    assert_eq!(
        resumed.succeeded,
        days(&["2026-03-03", "2026-03-04", "2026-03-05"])
    );
}

#[tokio::test]
async fn an_interrupted_backfill_reports_where_it_stopped() {
    let s = setup();
    s.runner.script(day("2026-03-02"), vec![Step::Hang]);
    let cancel = CancellationToken::new();
    cancel.cancel();
    let summary = backfill(
        &s.job,
        DateRange {
            from: day("2026-03-02"),
            to: day("2026-03-03"),
        },
        false,
        s.runner.as_ref(),
        s.history.as_ref(),
        &s.policy,
        &cancel,
    )
    .await
    .unwrap();
    assert_eq!(
        summary.stopped_at,
        Some((day("2026-03-02"), "interrupted".into()))
    );
    assert_eq!(summary.not_run, days(&["2026-03-03"]));
}

#[tokio::test]
async fn an_empty_range_is_refused() {
    let s = setup();
    let cancel = CancellationToken::new();
    let err = backfill(
        &s.job,
        DateRange {
            from: day("2026-03-02"),
            to: day("2026-03-01"),
        },
        false,
        s.runner.as_ref(),
        s.history.as_ref(),
        &s.policy,
        &cancel,
    )
    .await
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "backfill: --from 2026-03-02 is after --to 2026-03-01"
    );
}
