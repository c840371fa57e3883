//! Scheduler behaviour with an injected clock and paused tokio time: no test
//! waits in real time for a tick, a backoff or a grace period. In March 2026
//! London is on GMT until the 29th, so 02:30 local is 02:30Z on the dates used.

use std::sync::Arc;
use std::time::Duration;

use chrono_tz::America::New_York;
use chrono_tz::Europe::London;
use tokio::sync::Notify;

use super::*;
use crate::job::{Overlap, RetryPolicy};
use crate::schedule::fakes::Step;
use crate::schedule::history::{MemoryRunHistory, PastRun, PastRunStatus};
use crate::schedule::test_support::*;

fn nightly(overlap: Overlap, catchup_days: u64) -> Job {
    job("c360", London, spec("30 2 * * *", catchup_days, overlap))
}

fn succeeded(date: &str, started: &str) -> PastRun {
    PastRun {
        job: "c360".into(),
        date: day(date),
        run_id: format!("before-{date}"),
        started_at: utc(started),
        status: PastRunStatus::Succeeded,
    }
}

#[tokio::test(start_paused = true)]
async fn catch_up_after_a_three_day_outage_runs_missed_dates_oldest_first() {
    // The daemon ran 1 March's load, then was down from 1 March 03:00 until 4 March 10:00.
    let history = Arc::new(MemoryRunHistory::default());
    history.record(succeeded("2026-03-01", "2026-03-01T02:30:01Z"));
    let mut rig =
        Rig::new("2026-03-04T10:00:00Z", history.clone()).with_job(nightly(Overlap::Skip, 3));
    rig.dispatcher.wake().await;
    rig.settle().await;
    assert_eq!(
        rig.runner.dates(),
        days(&["2026-03-02", "2026-03-03", "2026-03-04"])
    );

    // Restarted again an hour later: every date has its success, nothing runs twice.
    let mut again =
        Rig::new("2026-03-04T11:00:00Z", history.clone()).with_job(nightly(Overlap::Skip, 3));
    again.dispatcher.wake().await;
    again.settle().await;
    assert!(again.runner.dates().is_empty());
    assert_eq!(
        history.succeeded_dates("c360"),
        days(&["2026-03-01", "2026-03-02", "2026-03-03", "2026-03-04"])
    );
    let successes = history
        .all()
        .iter()
        .filter(|r| r.status == PastRunStatus::Succeeded)
        .count();
    assert_eq!(successes, 4, "exactly one successful run per logical date");
}

#[tokio::test(start_paused = true)]
async fn catch_up_reaches_back_only_as_far_as_the_window() {
    // Down until 8 March 10:00 with catchup 3d: ticks after 5 March 10:00 are caught up
    // (6, 7, 8 March); 2-5 March stay missing for a backfill.
    let history = Arc::new(MemoryRunHistory::default());
    let mut rig = Rig::new("2026-03-08T10:00:00Z", history).with_job(nightly(Overlap::Skip, 3));
    rig.dispatcher.wake().await;
    rig.settle().await;
    assert_eq!(
        rig.runner.dates(),
        days(&["2026-03-06", "2026-03-07", "2026-03-08"])
    );
}

#[tokio::test(start_paused = true)]
async fn without_catchup_only_future_ticks_run() {
    let history = Arc::new(MemoryRunHistory::default());
    let mut rig = Rig::new("2026-03-04T10:00:00Z", history).with_job(nightly(Overlap::Skip, 0));
    rig.dispatcher.wake().await;
    assert!(!rig.dispatcher.is_busy());
    rig.wake_at("2026-03-05T02:29:59Z").await;
    assert!(!rig.dispatcher.is_busy());
    rig.wake_at("2026-03-05T02:30:00Z").await;
    rig.settle().await;
    rig.wake_at("2026-03-05T02:45:00Z").await;
    rig.settle().await;
    assert_eq!(rig.runner.dates(), days(&["2026-03-05"]));
    let status = rig.dispatcher.status();
    assert_eq!(status[0].next_run_at, Some(utc("2026-03-06T02:30:00Z")));
    assert_eq!(
        status[0].last.as_ref().map(|l| l.outcome),
        Some("succeeded")
    );
}

#[tokio::test(start_paused = true)]
async fn dst_nights_run_once_each_when_woken_every_five_minutes() {
    let history = Arc::new(MemoryRunHistory::default());
    let ny = job("c360", New_York, spec("30 2 * * *", 0, Overlap::Skip));
    let mut rig = Rig::new("2026-03-07T12:00:00Z", history).with_job(ny);
    rig.dispatcher.wake().await;
    let mut at = utc("2026-03-07T12:00:00Z");
    while at < utc("2026-03-09T12:00:00Z") {
        at += chrono::Duration::minutes(5);
        rig.clock.set(at);
        rig.dispatcher.wake().await;
        rig.settle().await;
    }
    // 8 March: 02:30 does not exist in New York; the run happens once, at 03:00 EDT.
    assert_eq!(rig.runner.dates(), days(&["2026-03-08", "2026-03-09"]));
}

#[tokio::test(start_paused = true)]
async fn overlap_skip_drops_a_tick_while_the_previous_run_is_going() {
    let history = Arc::new(MemoryRunHistory::default());
    let mut rig = Rig::new("2026-03-01T00:00:00Z", history).with_job(nightly(Overlap::Skip, 0));
    rig.dispatcher.wake().await; // the daemon starts: nothing to catch up
    let gate = Arc::new(Notify::new());
    rig.runner
        .script(day("2026-03-01"), vec![Step::WaitFor(gate.clone())]);
    rig.wake_at("2026-03-01T02:30:00Z").await;
    assert!(rig.dispatcher.is_busy());
    rig.wake_at("2026-03-02T02:30:00Z").await; // the 1 March load is still going
    assert_eq!(rig.dispatcher.status()[0].skipped_ticks, 1);
    gate.notify_one();
    rig.settle().await;
    assert_eq!(rig.runner.dates(), days(&["2026-03-01"]));
}

#[tokio::test(start_paused = true)]
async fn overlap_queue_starts_the_tick_when_the_previous_run_ends() {
    let history = Arc::new(MemoryRunHistory::default());
    let mut rig = Rig::new("2026-03-01T00:00:00Z", history).with_job(nightly(Overlap::Queue, 0));
    rig.dispatcher.wake().await; // the daemon starts: nothing to catch up
    let gate = Arc::new(Notify::new());
    rig.runner
        .script(day("2026-03-01"), vec![Step::WaitFor(gate.clone())]);
    rig.wake_at("2026-03-01T02:30:00Z").await;
    rig.wake_at("2026-03-02T02:30:00Z").await;
    assert_eq!(rig.dispatcher.status()[0].queued, days(&["2026-03-02"]));
    gate.notify_one();
    rig.settle().await;
    assert_eq!(rig.runner.dates(), days(&["2026-03-01", "2026-03-02"]));
    assert_eq!(
        rig.history.succeeded_dates("c360"),
        days(&["2026-03-01", "2026-03-02"])
    );
}

#[tokio::test(start_paused = true)]
async fn overlap_replace_cancels_the_running_load_and_starts_the_new_tick() {
    let history = Arc::new(MemoryRunHistory::default());
    let mut rig = Rig::new("2026-03-01T00:00:00Z", history).with_job(nightly(Overlap::Replace, 0));
    rig.dispatcher.wake().await; // the daemon starts: nothing to catch up
    rig.runner.script(day("2026-03-01"), vec![Step::Hang]);
    rig.wake_at("2026-03-01T02:30:00Z").await;
    rig.wake_at("2026-03-02T02:30:00Z").await;
    rig.settle().await;
    assert_eq!(rig.runner.dates(), days(&["2026-03-01", "2026-03-02"]));
    let statuses: Vec<_> = rig
        .history
        .all()
        .iter()
        .map(|r| (r.date, r.status))
        .collect();
    assert_eq!(
        statuses,
        vec![
            (day("2026-03-01"), PastRunStatus::Cancelled),
            (day("2026-03-02"), PastRunStatus::Succeeded)
        ]
    );
}

fn with_retries(attempts: u32, max_runtime: Option<Duration>) -> Job {
    let mut spec = spec("30 2 * * *", 0, Overlap::Skip);
    spec.retries = RetryPolicy {
        attempts,
        backoff: Duration::from_secs(60),
    };
    spec.max_runtime = max_runtime;
    job("c360", London, spec)
}

#[tokio::test(start_paused = true)]
async fn a_retryable_failure_is_retried_with_backoff_then_succeeds() {
    let history = Arc::new(MemoryRunHistory::default());
    let mut rig = Rig::new("2026-03-01T00:00:00Z", history).with_job(with_retries(3, None));
    rig.dispatcher.wake().await; // the daemon starts: nothing to catch up
    let fail = Step::Fail { retryable: true };
    rig.runner
        .script(day("2026-03-01"), vec![fail.clone(), fail, Step::Succeed]);
    rig.wake_at("2026-03-01T02:30:00Z").await;
    rig.settle().await;
    let at = rig.runner.instants();
    assert_eq!(at.len(), 3);
    // Jitter 0: half of 60s, then half of 120s.
    assert_eq!(at[1] - at[0], Duration::from_secs(30));
    assert_eq!(at[2] - at[1], Duration::from_secs(60));
    let last = rig.dispatcher.status()[0].last.clone().unwrap();
    assert_eq!((last.outcome, last.attempts), ("succeeded", 3));
}

#[tokio::test(start_paused = true)]
async fn retries_stop_when_exhausted_and_never_retry_bad_data() {
    let history = Arc::new(MemoryRunHistory::default());
    let mut rig = Rig::new("2026-03-01T00:00:00Z", history).with_job(with_retries(2, None));
    rig.dispatcher.wake().await; // the daemon starts: nothing to catch up
    let fail = Step::Fail { retryable: true };
    rig.runner.script(
        day("2026-03-01"),
        vec![fail.clone(), fail.clone(), fail, Step::Succeed],
    );
    rig.runner
        .script(day("2026-03-02"), vec![Step::Fail { retryable: false }]);
    rig.wake_at("2026-03-01T02:30:00Z").await;
    rig.settle().await;
    let last = rig.dispatcher.status()[0].last.clone().unwrap();
    assert_eq!((last.outcome, last.attempts), ("failed", 3));
    rig.wake_at("2026-03-02T02:30:00Z").await;
    rig.settle().await;
    let last = rig.dispatcher.status()[0].last.clone().unwrap();
    assert_eq!((last.outcome, last.attempts), ("failed", 1));
    assert_eq!(
        rig.runner.dates(),
        days(&["2026-03-01", "2026-03-01", "2026-03-01", "2026-03-02"])
    );
}

#[tokio::test(start_paused = true)]
async fn max_runtime_cancels_a_run_that_overruns_and_does_not_retry_it() {
    let history = Arc::new(MemoryRunHistory::default());
    let limit = Duration::from_secs(600);
    let mut rig = Rig::new("2026-03-01T00:00:00Z", history).with_job(with_retries(3, Some(limit)));
    rig.dispatcher.wake().await; // the daemon starts: nothing to catch up
    rig.runner.script(day("2026-03-01"), vec![Step::Hang]);
    let started = tokio::time::Instant::now();
    rig.wake_at("2026-03-01T02:30:00Z").await;
    rig.settle().await;
    assert_eq!(started.elapsed(), limit);
    let last = rig.dispatcher.status()[0].last.clone().unwrap();
    assert_eq!((last.outcome, last.attempts), ("timed_out", 1));
    assert_eq!(rig.history.all()[0].status, PastRunStatus::Cancelled);
}

#[tokio::test(start_paused = true)]
async fn shutdown_waits_for_the_grace_period_then_cancels() {
    let history = Arc::new(MemoryRunHistory::default());
    let mut rig = Rig::new("2026-03-01T00:00:00Z", history).with_job(nightly(Overlap::Skip, 0));
    rig.dispatcher.wake().await; // the daemon starts: nothing to catch up
    rig.runner.script(day("2026-03-01"), vec![Step::Hang]);
    rig.wake_at("2026-03-01T02:30:00Z").await;
    let started = tokio::time::Instant::now();
    rig.dispatcher.shutdown(Duration::from_secs(60)).await;
    assert_eq!(started.elapsed(), Duration::from_secs(60));
    assert!(!rig.dispatcher.is_busy());
    assert_eq!(rig.history.all()[0].status, PastRunStatus::Cancelled);
    // A stopped dispatcher triggers nothing more.
    rig.wake_at("2026-03-02T02:30:00Z").await;
    assert_eq!(rig.runner.dates(), days(&["2026-03-01"]));
}

#[tokio::test(start_paused = true)]
async fn shutdown_lets_a_run_that_ends_within_the_grace_period_succeed() {
    let history = Arc::new(MemoryRunHistory::default());
    let mut rig = Rig::new("2026-03-01T00:00:00Z", history).with_job(nightly(Overlap::Skip, 0));
    rig.dispatcher.wake().await; // the daemon starts: nothing to catch up
    let gate = Arc::new(Notify::new());
    rig.runner
        .script(day("2026-03-01"), vec![Step::WaitFor(gate.clone())]);
    rig.wake_at("2026-03-01T02:30:00Z").await;
    let opener = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(10)).await;
        gate.notify_one();
    });
    let started = tokio::time::Instant::now();
    rig.dispatcher.shutdown(Duration::from_secs(60)).await;
    assert_eq!(started.elapsed(), Duration::from_secs(10));
    assert_eq!(rig.history.succeeded_dates("c360"), days(&["2026-03-01"]));
    opener.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_reloaded_job_keeps_its_place_in_time_and_a_removed_one_goes() {
    let history = Arc::new(MemoryRunHistory::default());
    let mut rig = Rig::new("2026-03-01T00:00:00Z", history).with_job(nightly(Overlap::Skip, 3));
    rig.dispatcher.wake().await; // catches up 26-28 Feb (no history)
    rig.settle().await;
    assert_eq!(rig.runner.dates().len(), 3);
    // Same job, new cron: no second catch-up.
    let edited = job("c360", London, spec("0 4 * * *", 3, Overlap::Skip));
    rig.dispatcher
        .set_jobs(vec![ScheduledJob::new(edited).unwrap().unwrap()]);
    rig.wake_at("2026-03-01T03:00:00Z").await;
    assert!(!rig.dispatcher.is_busy(), "02:30 is no longer a tick");
    rig.wake_at("2026-03-01T04:00:00Z").await;
    rig.settle().await;
    assert_eq!(rig.runner.dates().len(), 4);
    rig.dispatcher.set_jobs(vec![]);
    assert!(rig.dispatcher.status().is_empty());
}
