//! The step DAG (README "How a run flows"): every output of the sample job is the
//! same row for row whether steps are tables, views where allowed, or run under a
//! memory pool so small that the plans must spill; and a step with several
//! readers runs once.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use c360::clock::SystemClock;
use c360::job::{Job, JoinStrategy, Materialize, StepKind};
use c360::run::{RunOptions, run};
use c360::runlog::RunRecord;
use chrono::NaiveDate;

use crate::util::{repo_root, sorted_rows};

const OUTPUTS: [&str; 7] = [
    "customer_360",
    "identity_map",
    "identity_merges",
    "order_lines",
    "segment_summary",
    "clv_model",
    "channel_engagement",
];

/// Runs `job` on the sample into a fresh warehouse; returns every output's rows
/// (as text, sorted) and the run record.
async fn run_sample(
    job: &Job,
    memory_limit: Option<u64>,
) -> (BTreeMap<&'static str, Vec<String>>, RunRecord) {
    let wh = tempfile::tempdir().unwrap();
    let options = RunOptions {
        date: Some(NaiveDate::from_ymd_opt(2026, 3, 1).unwrap()),
        overrides: vec![("warehouse".into(), wh.path().display().to_string())],
        memory_limit,
        engine: None,
        clock: Arc::new(SystemClock),
        full_refresh: false,
    };
    run(job, &options).await.unwrap();
    let mut outputs = BTreeMap::new();
    for name in OUTPUTS {
        let dir = wh.path().join(name).join("snapshot_date=2026-03-01");
        let rows = sorted_rows(&dir);
        outputs.insert(name, rows);
    }
    (outputs, run_record(wh.path()))
}

fn run_record(wh: &Path) -> RunRecord {
    let dir = wh.join("_c360/runs");
    let file = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "json"))
        .unwrap();
    serde_json::from_slice(&std::fs::read(file).unwrap()).unwrap()
}

fn sample_job() -> Job {
    c360::job::load(&repo_root().join("jobs/customer_360.yaml")).unwrap()
}

fn assert_same(what: &str, got: &BTreeMap<&str, Vec<String>>, want: &BTreeMap<&str, Vec<String>>) {
    for name in OUTPUTS {
        assert!(
            !want[name].is_empty() || name == "identity_merges",
            "{name}"
        );
        assert_eq!(got[name].len(), want[name].len(), "{what}: rows of {name}");
        for (g, w) in got[name].iter().zip(&want[name]) {
            assert_eq!(g, w, "{what}: {name}");
        }
    }
}

#[tokio::test]
async fn outputs_are_the_same_for_tables_and_views() {
    let default_job = sample_job();
    let (want, record) = run_sample(&default_job, None).await;
    assert!(record.steps.iter().all(|s| s.spilled_bytes == 0));

    let mut tables = sample_job();
    for step in &mut tables.steps {
        step.materialize = Materialize::Table;
    }
    let (got, record) = run_sample(&tables, None).await;
    assert!(record.steps.iter().all(|s| s.materialize != "view"));
    assert_same("every step a table", &got, &want);

    // Views wherever a step is not published and not a builtin.
    let mut views = sample_job();
    let published: Vec<String> = views.outputs.iter().map(|o| o.name.clone()).collect();
    for step in &mut views.steps {
        if !published.contains(&step.name) && matches!(step.kind, StepKind::Sql { .. }) {
            step.materialize = Materialize::View;
        }
    }
    let (got, _) = run_sample(&views, None).await;
    assert_same("views where allowed", &got, &want);
}

#[tokio::test]
async fn outputs_are_the_same_when_the_pool_forces_spilling() {
    let (want, _) = run_sample(&sample_job(), None).await;

    // Sort-merge joins under a pool far smaller than the sample's working set:
    // sorts and aggregations must spill, and the result must not change.
    let mut spilling = sample_job();
    for step in &mut spilling.steps {
        step.join = JoinStrategy::SortMerge;
    }
    let (got, record) = run_sample(&spilling, Some(SPILL_LIMIT)).await;
    let spilled: u64 = record.steps.iter().map(|s| s.spilled_bytes).sum();
    assert!(spilled > 0, "no step spilled: {:?}", record.steps);
    assert!(record.steps.iter().all(|s| s.join == "sort_merge"));
    assert_same("spilling", &got, &want);
}

/// Small enough that the sample's sorts and aggregations spill.
const SPILL_LIMIT: u64 = 48 * 1024 * 1024;

#[tokio::test]
async fn a_step_with_three_readers_runs_once() {
    let job = sample_job();
    let readers = |name: &str| {
        job.steps
            .iter()
            .filter(|s| s.depends_on.iter().any(|d| d == name))
            .count()
    };
    let step = job
        .steps
        .iter()
        .find(|s| s.name == "customer_lines")
        .unwrap();
    assert!(readers(&step.name) >= 3, "customer_lines has fewer readers");
    assert_eq!(step.materialize, Materialize::Table);
    let (_, record) = run_sample(&job, None).await;
    let runs: Vec<_> = record
        .steps
        .iter()
        .filter(|s| s.name == "customer_lines")
        .collect();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].materialize, "table");
    assert!(runs[0].rows.unwrap_or(0) > 0);
    // A one-reader step stays a view and has no figures of its own; one the job
    // marks `materialize: table` is a table with its rows.
    let summary = record
        .steps
        .iter()
        .find(|s| s.name == "clv_summary")
        .unwrap();
    assert_eq!((summary.materialize.as_str(), summary.rows), ("view", None));
    let rfm = record.steps.iter().find(|s| s.name == "rfm").unwrap();
    assert_eq!(rfm.materialize, "table");
    assert!(rfm.rows.unwrap_or(0) > 0);
}
