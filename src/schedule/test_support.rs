//! Builders shared by the scheduler's unit tests.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};

use super::dispatch::{Dispatcher, ScheduledJob};
use super::fakes::ScriptedRunner;
use super::history::MemoryRunHistory;
use super::policy::Jitter;
use crate::clock::ManualClock;
use crate::job::{Job, Overlap, RetryPolicy, ScheduleSpec, StorageSpec};

pub fn utc(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap()
        .with_timezone(&Utc)
}

pub fn day(text: &str) -> NaiveDate {
    text.parse().unwrap()
}

pub fn days(texts: &[&str]) -> Vec<NaiveDate> {
    texts.iter().map(|t| day(t)).collect()
}

/// A job with only what the scheduler reads.
pub fn job(name: &str, tz: chrono_tz::Tz, schedule: ScheduleSpec) -> Job {
    Job {
        file: format!("jobs/{name}.yaml").into(),
        base_dir: ".".into(),
        name: name.into(),
        timezone: tz,
        params: Default::default(),
        storage: StorageSpec {
            raw: "raw".into(),
            warehouse: "warehouse".into(),
            options: Default::default(),
            retry: Default::default(),
        },
        sources: vec![],
        steps: vec![],
        checks: Default::default(),
        outputs: vec![],
        engine: Default::default(),
        schedule: Some(schedule),
        erasure: None,
        report: Default::default(),
        places: Default::default(),
    }
}

/// Nightly at `cron` with the given catch-up and overlap, no retries.
pub fn spec(cron: &str, catchup_days: u64, overlap: Overlap) -> ScheduleSpec {
    ScheduleSpec {
        cron: cron.into(),
        catchup: Duration::from_secs(catchup_days * 86_400),
        overlap,
        retries: RetryPolicy {
            attempts: 0,
            backoff: Duration::from_secs(60),
        },
        max_runtime: None,
    }
}

pub fn no_jitter() -> Jitter {
    Arc::new(|| 0.0)
}

/// A dispatcher over a manual clock, a scripted runner and an in-memory history.
pub struct Rig {
    pub clock: Arc<ManualClock>,
    pub history: Arc<MemoryRunHistory>,
    pub runner: Arc<ScriptedRunner>,
    pub dispatcher: Dispatcher,
}

impl Rig {
    pub fn new(now: &str, history: Arc<MemoryRunHistory>) -> Self {
        let clock = Arc::new(ManualClock::new(utc(now)));
        let runner = Arc::new(ScriptedRunner::new(clock.clone(), history.clone()));
        let dispatcher =
            Dispatcher::new(clock.clone(), runner.clone(), history.clone(), no_jitter());
        Self {
            clock,
            history,
            runner,
            dispatcher,
        }
    }

    pub fn with_job(mut self, job: Job) -> Self {
        let sj = ScheduledJob::new(job).unwrap().unwrap();
        self.dispatcher.set_jobs(vec![sj]);
        self
    }

    /// Moves the clock, wakes the dispatcher, and lets quick runs finish.
    pub async fn wake_at(&mut self, now: &str) {
        self.clock.set(utc(now));
        self.dispatcher.wake().await;
    }

    /// Lets every running load and what queues behind it finish.
    pub async fn settle(&mut self) {
        self.dispatcher.settle().await;
    }
}
