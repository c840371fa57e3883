//! One load, end to end: bind the job to a logical date, read and validate every
//! source into typed staging files, run the steps, write and publish outputs.
//!
//! ```text
//! bind vars ─► sources ─► typed staging (+ rejects) ─► reject budgets
//!          ─► steps (views) ─► outputs to staging ─► publish rejects + outputs ─► clean up
//! ```
//! Nothing is published until every output has been written to staging, so a
//! failing step or query leaves every previous snapshot as it was.

mod outputs;
mod staging;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use chrono::NaiveDate;
use datafusion::error::DataFusionError;
use object_store::path::Path;

use crate::clock::Clock;
use crate::engine::{self, EngineOptions};
use crate::job::{ContractSchema, Job, SourceSpec};
use crate::sink::{self, SinkError};
use crate::source::{self, SourceReport};
use crate::steps::{self, StepError};
use crate::storage::{StorageLocation, StorageRegistry};

/// What the caller chose for this run.
pub struct RunOptions {
    /// Logical date; `None` = today in the job's time zone.
    pub date: Option<NaiveDate>,
    /// `--set key=value` overrides: `raw`, `warehouse`, or any param.
    pub overrides: Vec<(String, String)>,
    /// Overrides the job's `memory_limit` (bytes).
    pub memory_limit: Option<u64>,
    /// Where "now" comes from.
    pub clock: Arc<dyn Clock>,
}

/// Errors of a run, by the layer that failed.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("job: {0}")]
    Bind(String),
    #[error("storage: {0}")]
    Storage(#[from] crate::storage::StorageError),
    #[error("engine: {0}")]
    Engine(#[from] engine::EngineError),
    #[error("source {name}: {source}")]
    Source {
        name: String,
        source: source::SourceError,
    },
    #[error(
        "source {name}: {rejected} of {read} rows rejected, over the budget ({budget}); top reasons: {reasons}; rejects are in {rejects}"
    )]
    RejectBudget {
        name: String,
        rejected: u64,
        read: u64,
        budget: String,
        reasons: String,
        rejects: String,
    },
    #[error(transparent)]
    Step(#[from] StepError),
    #[error("engine: {what}: {source}")]
    Query {
        what: String,
        source: DataFusionError,
    },
    #[error("output {output}: {message}")]
    OutputSpec { output: String, message: String },
    #[error(transparent)]
    Sink(#[from] SinkError),
}

/// Per-source counts of a run.
#[derive(Debug, Clone)]
pub struct SourceSummary {
    pub name: String,
    pub report: SourceReport,
}

/// One published partition of an output (or of rejects).
#[derive(Debug, Clone)]
pub struct OutputSummary {
    pub name: String,
    pub location: String,
    pub files: usize,
    pub rows: u64,
}

/// What a successful run did.
#[derive(Debug, Clone)]
pub struct RunSummary {
    pub run_id: String,
    pub job: String,
    pub date: NaiveDate,
    pub sources: Vec<SourceSummary>,
    pub outputs: Vec<OutputSummary>,
    pub rejects: Vec<OutputSummary>,
    pub elapsed_secs: f64,
}

/// Storage roots and variables of one run, after `--set` overrides.
struct Bound {
    date: NaiveDate,
    vars: BTreeMap<String, String>,
    registry: StorageRegistry,
    raw: StorageLocation,
    warehouse: StorageLocation,
}

/// Runs `job` once. See the module docs for the order of work.
pub async fn run(job: &Job, options: &RunOptions) -> Result<RunSummary, RunError> {
    let started = Instant::now();
    let bound = bind(job, options)?;
    let run_id = format!(
        "{}-{}",
        options.clock.now().format("%Y%m%dT%H%M%SZ"),
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    let span = tracing::info_span!("run", job = %job.name, run_id = %run_id, date = %bound.date);
    let _enter = span.enter();
    tracing::info!(raw = %bound.raw.url, warehouse = %bound.warehouse.url, "run started");

    let tmp = bound
        .warehouse
        .prefix
        .clone()
        .join("_c360")
        .join("tmp")
        .join(run_id.as_str());
    let result = execute(job, options, &bound, &run_id, &tmp).await;
    if let Err(e) = sink::remove_prefix(&bound.warehouse.store, &tmp).await {
        tracing::warn!(error = %e, "could not remove the run's staging folder");
    }
    let (sources, outputs, rejects) = result?;
    let summary = RunSummary {
        run_id,
        job: job.name.clone(),
        date: bound.date,
        sources,
        outputs,
        rejects,
        elapsed_secs: started.elapsed().as_secs_f64(),
    };
    tracing::info!(elapsed_secs = summary.elapsed_secs, "run succeeded");
    Ok(summary)
}

type Published = (Vec<SourceSummary>, Vec<OutputSummary>, Vec<OutputSummary>);

async fn execute(
    job: &Job,
    options: &RunOptions,
    bound: &Bound,
    run_id: &str,
    tmp: &Path,
) -> Result<Published, RunError> {
    let engine_options = EngineOptions {
        memory_limit: options.memory_limit.or(job.memory_limit),
        target_partitions: None,
    };
    let ctx = engine::session(&engine_options, engine::runtime(&engine_options)?);
    bound.registry.register_with(ctx.runtime_env().as_ref());

    // Sources: reference data first, so transactions can check currencies.
    let mut ordered: Vec<&SourceSpec> = job.sources.iter().collect();
    ordered.sort_by_key(|s| s.schema != ContractSchema::FxRates);
    let mut sources = Vec::new();
    let mut staged_rejects = Vec::new();
    for spec in ordered {
        let currencies = match &spec.currencies {
            Some(fx) => Some(staging::known_currencies(&ctx, fx).await?),
            None => None,
        };
        let (report, rejects) = staging::stage_source(&ctx, bound, spec, currencies, tmp).await?;
        staged_rejects.push((spec, rejects));
        sources.push(SourceSummary {
            name: spec.name.clone(),
            report,
        });
    }

    // Rejects are always published: they are what the engineer needs to fix upstream.
    let mut rejects = Vec::new();
    for (spec, staged) in &staged_rejects {
        let target = bound
            .warehouse
            .prefix
            .clone()
            .join("rejects")
            .join(format!("extract={}", spec.name))
            .join(format!("run_date={}", bound.date));
        let published = sink::publish(&bound.warehouse.store, staged, &target, run_id).await?;
        rejects.push(summary_of(&spec.name, &bound.warehouse, &published));
    }
    // Budgets are checked once every source's rejects are published.
    for (((spec, _), source), published) in staged_rejects.iter().zip(&sources).zip(&rejects) {
        staging::check_reject_budget(spec, &source.report, published.location.clone())?;
    }

    let env = steps::StepEnv {
        vars: &bound.vars,
        date: bound.date,
        published: outputs::published_locations(bound, &job.outputs)?,
    };
    steps::register_steps(&ctx, &job.steps, &env).await?;

    // Write every output to staging before publishing any of them.
    let mut staged_outputs = Vec::new();
    for output in &job.outputs {
        let (target, staged) = outputs::stage_output(&ctx, bound, output, tmp).await?;
        staged_outputs.push((output, target, staged));
    }
    let mut outputs = Vec::new();
    for (output, target, staged) in &staged_outputs {
        let published = sink::publish(&bound.warehouse.store, staged, target, run_id).await?;
        tracing::info!(output = %output.name, rows = published.rows, files = published.files.len(), "output published");
        outputs.push(summary_of(&output.name, &bound.warehouse, &published));
    }
    Ok((sources, outputs, rejects))
}

/// Applies `--set` overrides, fixes the logical date and resolves storage roots.
fn bind(job: &Job, options: &RunOptions) -> Result<Bound, RunError> {
    let date = options
        .date
        .unwrap_or_else(|| options.clock.today_in(job.timezone));
    let mut raw = job.storage.raw.clone();
    let mut warehouse = job.storage.warehouse.clone();
    let mut vars = job.params.clone();
    for (key, value) in &options.overrides {
        match key.as_str() {
            "raw" => raw = value.clone(),
            "warehouse" => warehouse = value.clone(),
            "date" => {
                return Err(RunError::Bind(
                    "use --date to set the logical date, not --set date=".into(),
                ));
            }
            _ if vars.contains_key(key) => {
                vars.insert(key.clone(), value.clone());
            }
            _ => {
                return Err(RunError::Bind(format!(
                    "--set {key}=…: `{key}` is neither a storage root (raw, warehouse) nor a param of job {}",
                    job.name
                )));
            }
        }
    }
    vars.insert("date".into(), date.to_string());
    let interpolate = |template: &str| {
        crate::job::interpolate(template, &vars).map_err(|e| RunError::Bind(e.to_string()))
    };
    let raw = interpolate(&raw)?;
    let warehouse = interpolate(&warehouse)?;
    let registry = StorageRegistry::new(job.base_dir.clone(), job.storage.options.clone());
    let raw = registry.resolve(&raw)?;
    let warehouse = registry.resolve_for_write(&warehouse)?;
    vars.insert("raw".into(), raw.url.to_string());
    vars.insert("warehouse".into(), warehouse.url.to_string());
    Ok(Bound {
        date,
        vars,
        registry,
        raw,
        warehouse,
    })
}

fn summary_of(
    name: &str,
    warehouse: &StorageLocation,
    published: &sink::PublishedPartition,
) -> OutputSummary {
    OutputSummary {
        name: name.to_string(),
        location: format!("{}{}", warehouse.store_url.as_str(), published.dir),
        files: published.files.len(),
        rows: published.rows,
    }
}
