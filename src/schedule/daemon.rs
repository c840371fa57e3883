//! The long-running `c360 scheduler`: loads the job files of a folder, asks
//! tokio-cron-scheduler to wake it at each job's cron ticks, and hands every wake
//! to the [`Dispatcher`]. Around it: signals, reloads and the health file.
//!
//! tokio-cron-scheduler's limits and how they are covered:
//! - its cron needs a seconds field: `cron` normalises 5-field expressions;
//! - it fixes a job's UTC offset when the job is added, so after a DST change its
//!   ticks are an hour off, and it collapses ticks missed while the process was
//!   down or busy: the heartbeat wakes the dispatcher too, which recomputes the
//!   due ticks from the clock and the zone rules (`plan`), so a tick is late by at
//!   most one heartbeat and never lost or doubled; the jobs are re-registered on
//!   every reload;
//! - it does not prevent overlapping runs: the dispatcher's `overlap` policy does;
//! - it keeps no state we trust: the run history (the warehouse run log) says
//!   what ran, and catch-up on start runs what is missing.
//!
//! Signals: SIGTERM/SIGINT stop triggering, give running loads `grace` to finish,
//! then cancel them (a cancelled run publishes nothing, the last good partition
//! stays) and exit 0. SIGHUP, or a changed file in the folder, reloads the jobs;
//! an invalid edit is logged and the previous version of that job keeps running.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;
use tokio_cron_scheduler::{Job as CronJob, JobScheduler};
use uuid::Uuid;

use super::dispatch::{Dispatcher, ScheduledJob};
use super::jobs_dir::Fingerprint;
use super::status::{DaemonStatus, write_status};
use crate::clock::Clock;

/// How the daemon runs.
#[derive(Debug, Clone)]
pub struct DaemonOptions {
    pub jobs_dir: PathBuf,
    /// The health file, rewritten on every wake and run end.
    pub status_file: PathBuf,
    /// How long running loads may finish after SIGTERM before they are cancelled.
    pub grace: Duration,
    /// How often the daemon wakes without a cron tick (file changes, late ticks, health).
    pub heartbeat: Duration,
}

/// Errors that stop the daemon from starting.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("scheduler: jobs folder {0} is not a readable folder")]
    JobsDir(PathBuf),
    #[error("scheduler: cannot install signal handlers: {0}")]
    Signals(std::io::Error),
    #[error("scheduler: tokio-cron-scheduler: {0}")]
    Cron(String),
}

/// The job files of the folder as last loaded, by path; an invalid edit keeps the old entry.
type Loaded = BTreeMap<PathBuf, ScheduledJob>;

/// Runs the daemon until SIGTERM or SIGINT.
pub async fn run_daemon(
    options: DaemonOptions,
    mut dispatcher: Dispatcher,
    clock: Arc<dyn Clock>,
) -> Result<(), DaemonError> {
    if !options.jobs_dir.is_dir() {
        return Err(DaemonError::JobsDir(options.jobs_dir.clone()));
    }
    let started_at = clock.now();
    let mut sigterm = signal(SignalKind::terminate()).map_err(DaemonError::Signals)?;
    let mut sigint = signal(SignalKind::interrupt()).map_err(DaemonError::Signals)?;
    let mut sighup = signal(SignalKind::hangup()).map_err(DaemonError::Signals)?;

    let mut fingerprint = Fingerprint::of(&options.jobs_dir);
    let mut loaded = load_jobs(&fingerprint.files(), &Loaded::new());
    dispatcher.set_jobs(loaded.values().cloned().collect());
    let (wake_tx, mut wake_rx) = mpsc::unbounded_channel::<()>();
    let cron = JobScheduler::new().await.map_err(cron_error)?;
    let mut registered = register(&cron, &loaded, &wake_tx, &[]).await;
    cron.start().await.map_err(cron_error)?;
    tracing::info!(jobs = loaded.len(), dir = %options.jobs_dir.display(), "scheduler started");

    let write = |dispatcher: &Dispatcher, state: &'static str| {
        let status = DaemonStatus {
            pid: std::process::id(),
            started_at,
            heartbeat: clock.now(),
            state,
            jobs_dir: options.jobs_dir.clone(),
            jobs: dispatcher.status(),
        };
        if let Err(e) = write_status(&options.status_file, &status) {
            tracing::warn!(file = %options.status_file.display(), error = %e, "cannot write the status file");
        }
    };
    let mut heartbeat = tokio::time::interval(options.heartbeat);
    heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let mut reload = false;
        tokio::select! {
            _ = sigterm.recv() => { tracing::info!(signal = "SIGTERM", "shutting down"); break; }
            _ = sigint.recv() => { tracing::info!(signal = "SIGINT", "shutting down"); break; }
            _ = sighup.recv() => { tracing::info!(signal = "SIGHUP", "reloading job files"); reload = true; }
            Some(()) = wake_rx.recv() => dispatcher.wake().await,
            _ = heartbeat.tick() => {
                let now = Fingerprint::of(&options.jobs_dir);
                if now != fingerprint {
                    tracing::info!("job files changed; reloading");
                    reload = true;
                } else {
                    dispatcher.wake().await;
                }
            }
            Some(finished) = dispatcher.next_finished() => dispatcher.on_finished(finished),
        }
        if reload {
            fingerprint = Fingerprint::of(&options.jobs_dir);
            loaded = load_jobs(&fingerprint.files(), &loaded);
            dispatcher.set_jobs(loaded.values().cloned().collect());
            registered = register(&cron, &loaded, &wake_tx, &registered).await;
            dispatcher.wake().await;
        }
        write(&dispatcher, "running");
    }
    write(&dispatcher, "stopping");
    let mut cron = cron;
    if let Err(e) = cron.shutdown().await {
        tracing::warn!(error = %e, "tokio-cron-scheduler did not shut down cleanly");
    }
    dispatcher.shutdown(options.grace).await;
    write(&dispatcher, "stopped");
    tracing::info!("scheduler stopped");
    Ok(())
}

/// Loads every job file; a file that no longer validates keeps its `previous`
/// version (if it had one), so a bad edit never stops a working schedule.
fn load_jobs(files: &[PathBuf], previous: &Loaded) -> Loaded {
    let mut loaded = Loaded::new();
    let mut names: BTreeMap<String, PathBuf> = BTreeMap::new();
    for file in files {
        let job = match crate::job::load(file) {
            Ok(job) => ScheduledJob::new(job).map_err(|e| e.to_string()),
            Err(diagnostics) => Err(diagnostics.to_string()),
        };
        let job = match job {
            Ok(Some(job)) => job,
            Ok(None) => {
                tracing::debug!(file = %file.display(), "no schedule: block; not scheduled");
                continue;
            }
            Err(problems) => {
                let kept = previous.get(file);
                tracing::error!(file = %file.display(), kept_previous = kept.is_some(), problems = %problems, "invalid job file rejected");
                match kept {
                    Some(job) => job.clone(),
                    None => continue,
                }
            }
        };
        if let Some(first) = names.get(job.name()) {
            tracing::error!(file = %file.display(), job = %job.name(), first = %first.display(), "duplicate job name; file ignored");
            continue;
        }
        names.insert(job.name().to_string(), file.clone());
        loaded.insert(file.clone(), job);
    }
    loaded
}

/// Replaces the cron registrations with one per loaded job; each tick only wakes
/// the dispatcher, which decides what is due.
async fn register(
    cron: &JobScheduler,
    loaded: &Loaded,
    wake: &mpsc::UnboundedSender<()>,
    old: &[Uuid],
) -> Vec<Uuid> {
    for id in old {
        if let Err(e) = cron.remove(id).await {
            tracing::warn!(error = %e, "cannot remove a cron registration");
        }
    }
    let mut ids = Vec::new();
    for sj in loaded.values() {
        let tx = wake.clone();
        let job = CronJob::new_async_tz(sj.cron.normalized(), sj.job.timezone, move |_, _| {
            let tx = tx.clone();
            Box::pin(async move {
                let _ = tx.send(());
            })
        });
        let added = match job {
            Ok(job) => cron.add(job).await,
            Err(e) => Err(e),
        };
        match added {
            Ok(id) => ids.push(id),
            // The heartbeat still wakes the dispatcher: the job runs, just up to a heartbeat late.
            Err(e) => {
                tracing::warn!(job = %sj.name(), error = %e, "cannot register cron wake-up; relying on the heartbeat")
            }
        }
    }
    ids
}

fn cron_error(e: tokio_cron_scheduler::JobSchedulerError) -> DaemonError {
    DaemonError::Cron(e.to_string())
}

/// The default health file: `.c360/scheduler.json` under the current directory.
pub fn default_status_file(base: &Path) -> PathBuf {
    base.join(".c360").join("scheduler.json")
}

#[cfg(test)]
mod tests {
    use super::*;

    const JOB: &str =
        "name: nightly\nstorage: { raw: r, warehouse: w }\nschedule: { cron: \"30 2 * * *\" }\n";

    #[test]
    fn an_invalid_edit_keeps_the_previous_version_and_a_job_without_schedule_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("nightly.yaml");
        std::fs::write(&file, JOB).unwrap();
        std::fs::write(
            dir.path().join("on_demand.yaml"),
            "name: adhoc\nstorage: { raw: r, warehouse: w }\n",
        )
        .unwrap();
        let files = Fingerprint::of(dir.path()).files();
        let first = load_jobs(&files, &Loaded::new());
        assert_eq!(first.len(), 1);
        assert_eq!(first[&file].cron.normalized(), "0 30 2 * * *");

        std::fs::write(&file, JOB.replace("30 2 * * *", "30 2 * *")).unwrap();
        let after_bad_edit = load_jobs(&files, &first);
        assert_eq!(after_bad_edit[&file].cron.normalized(), "0 30 2 * * *");
        // Without a previous version, an invalid file is simply not scheduled.
        assert!(load_jobs(&files, &Loaded::new()).is_empty());

        std::fs::write(&file, JOB.replace("30 2 * * *", "0 4 * * *")).unwrap();
        let after_good_edit = load_jobs(&files, &after_bad_edit);
        assert_eq!(after_good_edit[&file].cron.normalized(), "0 0 4 * * *");
    }

    #[test]
    fn two_files_with_one_job_name_schedule_the_first_only() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.yaml"), JOB).unwrap();
        std::fs::write(dir.path().join("b.yml"), JOB).unwrap();
        let loaded = load_jobs(&Fingerprint::of(dir.path()).files(), &Loaded::new());
        let files: Vec<_> = loaded.keys().map(|p| p.file_name().unwrap()).collect();
        assert_eq!(files, ["a.yaml"]);
    }
}
