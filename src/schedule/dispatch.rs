//! The scheduler's decisions, free of signals and timers so tests drive them with
//! an injected clock: on each wake, every job's ticks since the last wake (or, at
//! start, within its `catchup` window) are found by `plan`, ticks the run history
//! shows done are dropped, and the rest are started, queued, skipped or replace
//! the running one per the job's `overlap`. Runs are tokio tasks that report back
//! through a channel; [`Dispatcher::on_finished`] starts whatever waits next.
//!
//! Because every wake recomputes ticks from the clock, ticks that
//! tokio-cron-scheduler collapsed or fired at a stale UTC offset are still found.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::history::RunHistory;
use super::plan::{self, Tick};
use super::policy::{self, AttemptPolicy, Attempted, Jitter, OnDue};
use super::runner::{RunOutcome, Runner};
use super::status::{JobStatus, LastRun, RunningStatus};
use crate::clock::Clock;
use crate::job::cron::{CronError, CronSchedule};
use crate::job::{Job, ScheduleSpec};

/// A job with a `schedule:` block, its cron parsed.
#[derive(Debug, Clone)]
pub struct ScheduledJob {
    pub job: Arc<Job>,
    pub spec: ScheduleSpec,
    pub cron: CronSchedule,
}

impl ScheduledJob {
    /// `None` for a job without `schedule:` (it runs only on demand).
    pub fn new(job: Job) -> Result<Option<Self>, CronError> {
        let Some(spec) = job.schedule.clone() else {
            return Ok(None);
        };
        let cron = CronSchedule::parse(&spec.cron)?;
        Ok(Some(Self {
            job: Arc::new(job),
            spec,
            cron,
        }))
    }

    pub fn name(&self) -> &str {
        &self.job.name
    }
}

/// A run that ended, reported by its task.
#[derive(Debug)]
pub struct Finished {
    pub job: String,
    pub tick: Tick,
    pub result: Attempted,
}

struct Active {
    tick: Tick,
    started_at: DateTime<Utc>,
    cancel: CancellationToken,
    handle: JoinHandle<()>,
}

struct Slot {
    sj: ScheduledJob,
    /// Ticks up to here were handled; `None` until the first wake (then: catch-up).
    considered_until: Option<DateTime<Utc>>,
    active: Option<Active>,
    queue: VecDeque<Tick>,
    replace_with: Option<Tick>,
    last: Option<LastRun>,
    skipped_ticks: u64,
    /// Its job file went away: dropped once the running load ends.
    removed: bool,
}

/// The scheduler state of every job.
pub struct Dispatcher {
    clock: Arc<dyn Clock>,
    runner: Arc<dyn Runner>,
    history: Arc<dyn RunHistory>,
    jitter: Jitter,
    slots: BTreeMap<String, Slot>,
    events_tx: mpsc::UnboundedSender<Finished>,
    events_rx: mpsc::UnboundedReceiver<Finished>,
    stopping: bool,
}

impl Dispatcher {
    pub fn new(
        clock: Arc<dyn Clock>,
        runner: Arc<dyn Runner>,
        history: Arc<dyn RunHistory>,
        jitter: Jitter,
    ) -> Self {
        let (events_tx, events_rx) = mpsc::unbounded_channel();
        Self {
            clock,
            runner,
            history,
            jitter,
            slots: BTreeMap::new(),
            events_tx,
            events_rx,
            stopping: false,
        }
    }

    /// Installs the current set of jobs (at start and on reload). A changed job keeps
    /// its place in time and its running load (which finishes on the old version);
    /// a new job starts with catch-up; a vanished job is dropped when idle.
    pub fn set_jobs(&mut self, jobs: Vec<ScheduledJob>) {
        let mut seen = Vec::new();
        for sj in jobs {
            let name = sj.name().to_string();
            seen.push(name.clone());
            match self.slots.get_mut(&name) {
                Some(slot) => {
                    slot.sj = sj;
                    slot.removed = false;
                }
                None => {
                    self.slots.insert(name, Slot::new(sj));
                }
            }
        }
        for (name, slot) in self.slots.iter_mut() {
            if !seen.contains(name) {
                slot.removed = true;
                slot.queue.clear();
                slot.replace_with = None;
            }
        }
        self.slots.retain(|_, s| !(s.removed && s.active.is_none()));
    }

    /// Starts, queues, skips or replaces every tick due by now.
    pub async fn wake(&mut self) {
        if self.stopping {
            return;
        }
        let now = self.clock.now();
        let names: Vec<String> = self.slots.keys().cloned().collect();
        for name in names {
            let due = self.due_ticks(&name, now).await;
            for (index, tick) in due.into_iter().enumerate() {
                self.dispatch(&name, tick, index > 0);
            }
        }
    }

    /// Ticks of `name` in (last wake, now], one per date, minus those already done.
    async fn due_ticks(&mut self, name: &str, now: DateTime<Utc>) -> Vec<Tick> {
        let Some(slot) = self.slots.get_mut(name) else {
            return Vec::new();
        };
        if slot.removed {
            return Vec::new();
        }
        let catchup =
            chrono::Duration::from_std(slot.sj.spec.catchup).unwrap_or(chrono::Duration::MAX);
        let from = slot
            .considered_until
            .unwrap_or_else(|| now.checked_sub_signed(catchup).unwrap_or(now));
        slot.considered_until = Some(now);
        let ticks = plan::one_per_date(plan::ticks_between(
            &slot.sj.cron,
            slot.sj.job.timezone,
            from,
            now,
        ));
        let mut due = Vec::new();
        for tick in ticks {
            // A success that started after the tick (another daemon, a backfill, a run
            // before a restart) already did this tick's work.
            match self
                .history
                .succeeded_since(&slot.sj.job, tick.date, Some(tick.at))
                .await
            {
                Ok(true) => {
                    tracing::info!(job = %name, date = %tick.date, "tick already satisfied by a successful run")
                }
                Ok(false) => due.push(tick),
                Err(e) => {
                    tracing::warn!(job = %name, date = %tick.date, error = %e, "cannot read run history; running the tick");
                    due.push(tick);
                }
            }
        }
        due
    }

    fn dispatch(&mut self, name: &str, tick: Tick, backlog: bool) {
        let Some(slot) = self.slots.get_mut(name) else {
            return;
        };
        // Catch-up ticks found together run one after another whatever the policy:
        // the policy is about a new tick meeting a run that is already going.
        let action = if backlog {
            OnDue::Queue
        } else {
            policy::on_due(slot.sj.spec.overlap, slot.active.is_some())
        };
        match action {
            OnDue::Start => self.start(name, tick),
            OnDue::Skip => {
                slot.skipped_ticks += 1;
                tracing::warn!(job = %name, date = %tick.date, "tick skipped: previous run still going (overlap: skip)");
            }
            OnDue::Queue => {
                // A newer tick of a queued date replaces it: one snapshot per date.
                slot.queue.retain(|t| t.date != tick.date);
                slot.queue.push_back(tick);
                tracing::info!(job = %name, date = %tick.date, queued = slot.queue.len(), "tick queued");
            }
            OnDue::Replace => {
                if let Some(active) = &slot.active {
                    tracing::warn!(job = %name, date = %active.tick.date, replaced_by = %tick.date, "cancelling the running load (overlap: replace)");
                    active.cancel.cancel();
                }
                slot.replace_with = Some(tick);
            }
        }
    }

    fn start(&mut self, name: &str, tick: Tick) {
        let Some(slot) = self.slots.get_mut(name) else {
            return;
        };
        let cancel = CancellationToken::new();
        let policy = AttemptPolicy {
            retries: slot.sj.spec.retries,
            max_runtime: slot.sj.spec.max_runtime,
            jitter: self.jitter.clone(),
        };
        let (runner, job, tx, token) = (
            self.runner.clone(),
            slot.sj.job.clone(),
            self.events_tx.clone(),
            cancel.clone(),
        );
        let span = tracing::info_span!("scheduled_run", job = %name, date = %tick.date, scheduled_at = %tick.at);
        let handle = tokio::spawn(
            async move {
                tracing::info!("run started");
                let result =
                    policy::run_attempts(runner.as_ref(), &job, tick.date, &policy, &token).await;
                let _ = tx.send(Finished {
                    job: job.name.clone(),
                    tick,
                    result,
                });
            }
            .instrument(span),
        );
        slot.active = Some(Active {
            tick,
            started_at: self.clock.now(),
            cancel,
            handle,
        });
    }

    /// Waits for the next run to end. Never returns `None` while the dispatcher
    /// lives: it holds a sender itself.
    pub async fn next_finished(&mut self) -> Option<Finished> {
        self.events_rx.recv().await
    }

    /// Records a run's end and starts what waits behind it.
    pub fn on_finished(&mut self, finished: Finished) {
        let now = self.clock.now();
        let name = finished.job.clone();
        let Some(slot) = self.slots.get_mut(&name) else {
            return;
        };
        slot.active = None;
        let Attempted { outcome, attempts } = &finished.result;
        slot.last = Some(LastRun::new(finished.tick.date, outcome, *attempts, now));
        let date = finished.tick.date;
        match outcome {
            RunOutcome::Succeeded { run_id } => {
                tracing::info!(job = %name, date = %date, run_id = %run_id, attempts, "scheduled run succeeded")
            }
            RunOutcome::Failed { message, .. } => {
                tracing::error!(job = %name, date = %date, attempts, error = %message, "scheduled run failed")
            }
            RunOutcome::Cancelled => {
                tracing::warn!(job = %name, date = %date, "scheduled run cancelled")
            }
            RunOutcome::TimedOut => {
                tracing::error!(job = %name, date = %date, "scheduled run timed out")
            }
        }
        if slot.removed {
            self.slots.remove(&name);
            return;
        }
        if self.stopping {
            return;
        }
        let next = slot.replace_with.take().or_else(|| slot.queue.pop_front());
        if let Some(tick) = next {
            self.start(&name, tick);
        }
    }

    /// Whether any load is running.
    pub fn is_busy(&self) -> bool {
        self.slots.values().any(|s| s.active.is_some())
    }

    /// Processes finished runs until nothing runs or is waiting (for tests and backfill-like use).
    pub async fn settle(&mut self) {
        while self.is_busy() {
            match self.next_finished().await {
                Some(f) => self.on_finished(f),
                None => return,
            }
        }
    }

    /// Stops triggering, lets running loads finish within `grace`, then cancels
    /// them and waits for them to stop. Queued ticks are dropped: the run history
    /// still lacks them, so the next start catches them up.
    pub async fn shutdown(&mut self, grace: Duration) {
        self.stopping = true;
        for slot in self.slots.values_mut() {
            slot.queue.clear();
            slot.replace_with = None;
        }
        let deadline = tokio::time::sleep(grace);
        tokio::pin!(deadline);
        while self.is_busy() {
            tokio::select! {
                Some(f) = self.events_rx.recv() => self.on_finished(f),
                _ = &mut deadline => break,
            }
        }
        if !self.is_busy() {
            return;
        }
        tracing::warn!(
            grace_secs = grace.as_secs(),
            "grace period over; cancelling running loads"
        );
        for slot in self.slots.values() {
            if let Some(active) = &slot.active {
                active.cancel.cancel();
            }
        }
        // A cancelled run stops at its next await point; do not hang forever on one that does not.
        let hard = tokio::time::sleep(CANCEL_WAIT);
        tokio::pin!(hard);
        while self.is_busy() {
            tokio::select! {
                Some(f) = self.events_rx.recv() => self.on_finished(f),
                _ = &mut hard => {
                    for slot in self.slots.values_mut() {
                        if let Some(active) = slot.active.take() {
                            active.handle.abort();
                        }
                    }
                }
            }
        }
    }

    /// The status of every job, for the health file.
    pub fn status(&self) -> Vec<JobStatus> {
        let now = self.clock.now();
        self.slots
            .values()
            .map(|slot| {
                let next = plan::next_tick(&slot.sj.cron, slot.sj.job.timezone, now);
                JobStatus {
                    job: slot.sj.name().to_string(),
                    file: slot.sj.job.file.clone(),
                    cron: slot.sj.cron.normalized().to_string(),
                    timezone: slot.sj.job.timezone.name().to_string(),
                    next_run_at: next.map(|t| t.at),
                    next_run_date: next.map(|t| t.date),
                    running: slot.active.as_ref().map(|a| RunningStatus {
                        date: a.tick.date,
                        scheduled_at: a.tick.at,
                        started_at: a.started_at,
                    }),
                    queued: slot.queue.iter().map(|t| t.date).collect(),
                    last: slot.last.clone(),
                    skipped_ticks: slot.skipped_ticks,
                }
            })
            .collect()
    }
}

/// How long cancelled runs get to stop before their tasks are aborted.
const CANCEL_WAIT: Duration = Duration::from_secs(30);

impl Slot {
    fn new(sj: ScheduledJob) -> Self {
        Self {
            sj,
            considered_until: None,
            active: None,
            queue: VecDeque::new(),
            replace_with: None,
            last: None,
            skipped_ticks: 0,
            removed: false,
        }
    }
}

#[cfg(test)]
#[path = "dispatch_tests.rs"]
mod tests;
