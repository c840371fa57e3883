//! Building the run's record (`crate::runlog::RunRecord`) as the run goes, and
//! the summary returned to the caller.

use std::time::Instant;

use chrono::{DateTime, Utc};

use super::{OutputSummary, Run, RunError, RunSummary, SourceSummary};
use crate::engine::RssPeak;
use crate::outputs::PublishedPartition;
use crate::runlog::{
    ErrorRecord, PartitionRecord, RunRecord, RunStatus, SourceRecord, StageTiming,
};
use crate::source::stage::StagedSource;
use crate::storage::StorageLocation;

/// The record of a run that is starting.
pub(super) fn start(r: &Run<'_>) -> RunRecord {
    RunRecord {
        run_id: r.run_id.clone(),
        job: r.job.name.clone(),
        job_file: r.job.file.display().to_string(),
        logical_date: r.bound.date,
        params: r.bound.vars.clone(),
        started_at: r.options.clock.now(),
        ended_at: None,
        status: RunStatus::Running,
        stages: Vec::new(),
        steps: Vec::new(),
        sources: Vec::new(),
        accounting: Vec::new(),
        outputs: Vec::new(),
        rejects: Vec::new(),
        checks: Vec::new(),
        recovered_runs: Vec::new(),
        error: None,
        erasure: None,
        engine: r.engine.cluster.clone(),
    }
}

/// Records that `stage` took from `since` until now.
pub(super) fn stage(record: &mut RunRecord, stage: &str, since: StageStart) {
    record.stages.push(StageTiming {
        stage: stage.to_string(),
        secs: since.at.elapsed().as_secs_f64(),
        peak_rss_bytes: since.rss.finish(),
    });
}

/// When a stage began, and its resident-memory peak since.
pub(super) struct StageStart {
    at: Instant,
    rss: RssPeak,
}

impl StageStart {
    pub fn now() -> Self {
        Self {
            at: Instant::now(),
            rss: RssPeak::start(),
        }
    }
}

pub(super) fn source(name: &str, staged: &StagedSource) -> SourceRecord {
    let report = &staged.report;
    SourceRecord {
        name: name.to_string(),
        files: report.files,
        rows_read: report.rows_read,
        rows_accepted: report.rows_accepted,
        rows_rejected: report.rows_rejected,
        rejects_by_reason: report.rejects_by_reason.clone(),
        days_parsed: staged.days_parsed.clone(),
        days_reused: staged.days_reused.clone(),
    }
}

pub(super) fn partition(
    name: &str,
    warehouse: &StorageLocation,
    published: &PublishedPartition,
) -> PartitionRecord {
    PartitionRecord {
        name: name.to_string(),
        location: format!("{}{}", warehouse.store_url.as_str(), published.dir),
        rows: published.rows,
        files: published
            .files
            .iter()
            .filter_map(|f| f.filename().map(String::from))
            .collect(),
    }
}

/// Sets the end time, final status and error.
pub(super) fn finish(record: &mut RunRecord, now: DateTime<Utc>, error: Option<&RunError>) {
    record.ended_at = Some(now);
    match error {
        None => record.status = RunStatus::Succeeded,
        Some(e) => {
            record.status = RunStatus::Failed;
            record.error = Some(ErrorRecord {
                layer: e.layer().to_string(),
                message: e.to_string(),
                next_step: e.next_step(),
            });
        }
    }
}

/// The caller's view of a successful run.
pub(super) fn summary(
    record: &RunRecord,
    sources: Vec<SourceSummary>,
    elapsed_secs: f64,
) -> RunSummary {
    let to_summary = |p: &PartitionRecord| OutputSummary {
        name: p.name.clone(),
        location: p.location.clone(),
        files: p.files.len(),
        rows: p.rows,
    };
    RunSummary {
        run_id: record.run_id.clone(),
        job: record.job.clone(),
        date: record.logical_date,
        sources,
        outputs: record.outputs.iter().map(to_summary).collect(),
        rejects: record.rejects.iter().map(to_summary).collect(),
        accounting: record.accounting.clone(),
        checks: record.checks.clone(),
        erasure: record.erasure.clone().unwrap_or_default(),
        engine: record.engine.clone(),
        elapsed_secs,
    }
}
