//! The `scheduler` and `backfill` subcommands: build the real runner and history,
//! run, print, and turn the result into an exit code (0 ok, 1 failed, 2 invalid).
//!
//! The history is the run log in each job's warehouse (`schedule::WarehouseHistory`):
//! a restarted daemon or a resumed backfill sees every earlier run.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use chrono::NaiveDate;
use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;

use super::{RunFlags, exit};
use crate::clock::{Clock, SystemClock};
use crate::job::RetryPolicy;
use crate::schedule::WarehouseHistory;
use crate::schedule::backfill::{BackfillSummary, DateRange, backfill};
use crate::schedule::daemon::{DaemonError, DaemonOptions, run_daemon};
use crate::schedule::dispatch::Dispatcher;
use crate::schedule::policy::{AttemptPolicy, random_jitter};
use crate::schedule::runner::JobRunner;

/// The runner of real runs and the history of the warehouses they write, both
/// after the command's `--set` overrides.
fn real_runner(clock: Arc<dyn Clock>, flags: RunFlags) -> (Arc<JobRunner>, Arc<WarehouseHistory>) {
    let history = WarehouseHistory {
        overrides: flags.sets.clone(),
    };
    let runner = JobRunner {
        clock,
        overrides: flags.sets,
        memory_limit: flags.memory_limit,
        engine: flags.engine,
    };
    (Arc::new(runner), Arc::new(history))
}

/// `c360 scheduler [JOBS_DIR]`.
pub async fn scheduler(
    jobs_dir: PathBuf,
    status_file: PathBuf,
    grace: Duration,
    heartbeat: Duration,
    flags: RunFlags,
) -> ExitCode {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let (runner, history) = real_runner(clock.clone(), flags);
    let dispatcher = Dispatcher::new(clock.clone(), runner, history, random_jitter());
    let options = DaemonOptions {
        jobs_dir,
        status_file,
        grace,
        heartbeat,
    };
    match run_daemon(options, dispatcher, clock).await {
        Ok(()) => ExitCode::from(exit::SUCCESS),
        Err(e @ DaemonError::JobsDir(_)) => {
            eprintln!("error: {e}");
            ExitCode::from(exit::INVALID)
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(exit::RUN_FAILED)
        }
    }
}

/// `c360 backfill JOB --from D --to D [--force] [--set k=v] [--memory-limit M]`.
pub async fn backfill_command(
    job: PathBuf,
    from: NaiveDate,
    to: NaiveDate,
    force: bool,
    flags: RunFlags,
) -> ExitCode {
    let job = match super::load_job(&job) {
        Ok(job) => job,
        Err(code) => return code,
    };
    // A bad `--set` is a usage error before any date runs.
    if let Err(e) = crate::job::apply_overrides(&job, &flags.sets) {
        eprintln!("error: {e}");
        return ExitCode::from(exit::INVALID);
    }
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let (runner, history) = real_runner(clock, flags);
    let schedule = job.schedule.as_ref();
    let policy = AttemptPolicy {
        retries: schedule.map_or_else(RetryPolicy::default, |s| s.retries),
        max_runtime: schedule.and_then(|s| s.max_runtime),
        jitter: random_jitter(),
    };
    let cancel = CancellationToken::new();
    spawn_interrupt(cancel.clone());
    let result = backfill(
        &job,
        DateRange { from, to },
        force,
        runner.as_ref(),
        history.as_ref(),
        &policy,
        &cancel,
    )
    .await;
    match result {
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(exit::INVALID)
        }
        Ok(summary) => {
            print_summary(&job.name, &summary);
            if summary.is_complete() {
                ExitCode::from(exit::SUCCESS)
            } else {
                ExitCode::from(exit::RUN_FAILED)
            }
        }
    }
}

/// SIGINT/SIGTERM cancel the running date (nothing half-published) and end the backfill.
fn spawn_interrupt(cancel: CancellationToken) {
    tokio::spawn(async move {
        let (Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) else {
            return;
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        tracing::warn!("interrupted; cancelling the running date");
        cancel.cancel();
    });
}

fn print_summary(job: &str, summary: &BackfillSummary) {
    let list = |dates: &[NaiveDate]| {
        dates
            .iter()
            .map(|d| d.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    println!("backfill of {job}:");
    println!(
        "  succeeded ({}): {}",
        summary.succeeded.len(),
        list(&summary.succeeded)
    );
    println!(
        "  skipped, already succeeded ({}): {}",
        summary.skipped.len(),
        list(&summary.skipped)
    );
    if let Some((date, why)) = &summary.stopped_at {
        println!("  stopped at {date}: {why}");
        println!(
            "  not run ({}): {}",
            summary.not_run.len(),
            list(&summary.not_run)
        );
        println!("run the same command again to resume from {date}");
    }
}
