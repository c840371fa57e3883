//! Test doubles for the scheduler seams: a [`ScriptedRunner`] whose runs succeed,
//! fail, hang or wait for the test, per logical date, recording into a
//! [`MemoryRunHistory`] the way the real run log would.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::NaiveDate;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::history::{MemoryRunHistory, PastRun, PastRunStatus};
use super::runner::{RunOutcome, Runner};
use crate::clock::Clock;
use crate::job::Job;

/// What one scripted attempt does.
#[derive(Clone)]
pub enum Step {
    Succeed,
    Fail {
        retryable: bool,
    },
    /// Runs until cancelled.
    Hang,
    /// Waits for the test to notify, then succeeds (or is cancelled first).
    WaitFor(Arc<Notify>),
}

/// A runner that follows a script per date (default: succeed).
pub struct ScriptedRunner {
    clock: Arc<dyn Clock>,
    pub history: Arc<MemoryRunHistory>,
    script: Mutex<BTreeMap<NaiveDate, VecDeque<Step>>>,
    /// Every attempt: date and the (virtual) tokio instant it started.
    pub calls: Mutex<Vec<(NaiveDate, tokio::time::Instant)>>,
}

impl ScriptedRunner {
    pub fn new(clock: Arc<dyn Clock>, history: Arc<MemoryRunHistory>) -> Self {
        Self {
            clock,
            history,
            script: Mutex::new(BTreeMap::new()),
            calls: Mutex::new(Vec::new()),
        }
    }

    /// Queues the behaviour of the next attempts for `date`.
    pub fn script(&self, date: NaiveDate, steps: Vec<Step>) {
        self.script
            .lock()
            .unwrap()
            .entry(date)
            .or_default()
            .extend(steps);
    }

    /// Dates of every attempt, in start order.
    pub fn dates(&self) -> Vec<NaiveDate> {
        self.calls.lock().unwrap().iter().map(|c| c.0).collect()
    }

    /// Instants every attempt started.
    pub fn instants(&self) -> Vec<tokio::time::Instant> {
        self.calls.lock().unwrap().iter().map(|c| c.1).collect()
    }
}

#[async_trait]
impl Runner for ScriptedRunner {
    async fn run(&self, job: &Job, date: NaiveDate, cancel: CancellationToken) -> RunOutcome {
        let started_at = self.clock.now();
        self.calls
            .lock()
            .unwrap()
            .push((date, tokio::time::Instant::now()));
        let step = self
            .script
            .lock()
            .unwrap()
            .get_mut(&date)
            .and_then(|s| s.pop_front())
            .unwrap_or(Step::Succeed);
        let outcome = match step {
            Step::Succeed => RunOutcome::Succeeded {
                run_id: format!("run-{date}"),
            },
            Step::Fail { retryable } => RunOutcome::Failed {
                retryable,
                message: format!("scripted failure for {date}"),
            },
            Step::Hang => {
                cancel.cancelled().await;
                RunOutcome::Cancelled
            }
            Step::WaitFor(notify) => tokio::select! {
                _ = notify.notified() => RunOutcome::Succeeded { run_id: format!("run-{date}") },
                _ = cancel.cancelled() => RunOutcome::Cancelled,
            },
        };
        let status = match outcome {
            RunOutcome::Succeeded { .. } => PastRunStatus::Succeeded,
            RunOutcome::Failed { .. } => PastRunStatus::Failed,
            _ => PastRunStatus::Cancelled,
        };
        self.history.record(PastRun {
            job: job.name.clone(),
            date,
            run_id: format!("run-{date}"),
            started_at,
            status,
        });
        outcome
    }
}
