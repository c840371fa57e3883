//! One load, end to end: bind the job to a logical date, read and validate every
//! source into typed staging files, run the steps, write and publish outputs.
//!
//! ```text
//! bind vars ─► sources ─► typed staging (+ rejects) ─► reject budgets
//!          ─► steps (views) ─► outputs to staging ─► publish rejects + outputs ─► clean up
//! ```
//! Nothing is published until every output has been written to staging, so a
//! failing step or query leaves every previous snapshot as it was.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use chrono::NaiveDate;
use datafusion::arrow::array::{Array, AsArray};
use datafusion::error::DataFusionError;
use datafusion::prelude::{ParquetReadOptions, SessionContext, ident};
use object_store::path::Path;

use crate::clock::Clock;
use crate::engine::{self, EngineOptions};
use crate::job::{Compression, ContractSchema, Job, OutputSpec, SourceSpec};
use crate::sink::{self, SinkError, StagedPartition};
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
    #[error("output {output}: {source}")]
    Output {
        output: String,
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

/// Rows of each source batch read from raw files.
const SOURCE_BATCH_ROWS: usize = 8192;

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

    let tmp = bound.warehouse.prefix.clone().join("_c360").join("tmp").join(run_id.as_str());
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
            Some(fx) => Some(known_currencies(&ctx, fx).await?),
            None => None,
        };
        let (report, rejects) = stage_source(&ctx, bound, spec, currencies, tmp).await?;
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
    for (spec, summary) in job.sources.iter().filter_map(|spec| {
        sources
            .iter()
            .find(|s| s.name == spec.name)
            .map(|s| (spec, s))
    }) {
        check_reject_budget(spec, &summary.report, &bound.warehouse, bound.date)?;
    }

    steps::register_steps(&ctx, &job.steps, &bound.vars).await?;

    // Write every output to staging before publishing any of them.
    let mut staged_outputs = Vec::new();
    for output in &job.outputs {
        let (target, staged) = stage_output(&ctx, bound, output, tmp).await?;
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

/// Reads one source into `tmp/sources/<name>/` (typed) and `tmp/rejects/<name>/`,
/// and registers the typed rows as table `<name>`.
async fn stage_source(
    ctx: &SessionContext,
    bound: &Bound,
    spec: &SourceSpec,
    currencies: Option<HashSet<String>>,
    tmp: &Path,
) -> Result<(SourceReport, StagedPartition), RunError> {
    let source_err = |source| RunError::Source {
        name: spec.name.clone(),
        source,
    };
    let path = crate::job::interpolate(&spec.path, &bound.vars)
        .map_err(|e| RunError::Bind(format!("source {}: {e}", spec.name)))?;
    let location = bound.registry.resolve(&path)?;
    // Reject rows name their file relative to the raw root when the source lives under it.
    let root = if location.url.as_str().starts_with(bound.raw.url.as_str()) {
        bound.raw.prefix.clone()
    } else {
        location.prefix.clone()
    };
    let store = &bound.warehouse.store;
    let typed_dir = tmp.clone().join("sources").join(spec.name.as_str());
    let rejects_dir = tmp.clone().join("rejects").join(spec.name.as_str());
    let mut accepted = sink::ParquetFileWriter::create(
        store.clone(),
        typed_dir.clone().join(sink::part_name(0)),
        source::typed_schema(spec.schema),
        Compression::Zstd,
    )?;
    let mut rejected = RejectWriter::create(store.clone(), rejects_dir.clone().join(sink::part_name(0)))?;
    let input = source::SourceInput {
        spec,
        store: location.store.clone(),
        root,
        location: location.prefix.clone(),
        date: bound.date,
        currencies,
        batch_rows: SOURCE_BATCH_ROWS,
    };
    let report = source::read_source(input, &mut accepted, &mut rejected)
        .await
        .map_err(source_err)?;
    accepted.finish().await?;
    let rejects = StagedPartition {
        files: vec![rejected.writer.finish().await?],
    };
    tracing::info!(
        source = %spec.name,
        files = report.files,
        rows_read = report.rows_read,
        accepted = report.rows_accepted,
        rejected = report.rows_rejected,
        "source staged"
    );
    let url = format!("{}{}/", bound.warehouse.store_url.as_str(), typed_dir);
    ctx.register_parquet(spec.name.as_str(), &url, ParquetReadOptions::default())
        .await
        .map_err(|e| RunError::Output {
            output: spec.name.clone(),
            source: e,
        })?;
    Ok((report, rejects))
}

/// Currency codes present in the fx source `fx` (already staged).
async fn known_currencies(ctx: &SessionContext, fx: &str) -> Result<HashSet<String>, RunError> {
    let query_err = |source| RunError::Output {
        output: fx.to_string(),
        source,
    };
    let batches = ctx
        .table(fx)
        .await
        .map_err(query_err)?
        .select(vec![ident("currency")])
        .map_err(query_err)?
        .collect()
        .await
        .map_err(query_err)?;
    let mut codes = HashSet::new();
    for batch in &batches {
        let column = datafusion::arrow::compute::cast(
            batch.column(0),
            &datafusion::arrow::datatypes::DataType::Utf8,
        )
        .map_err(|e| query_err(e.into()))?;
        let strings = column.as_string::<i32>();
        codes.extend(
            (0..strings.len())
                .filter(|&i| strings.is_valid(i))
                .map(|i| strings.value(i).to_string()),
        );
    }
    Ok(codes)
}

/// Fails the run when a source's rejects exceed its budget.
fn check_reject_budget(
    spec: &SourceSpec,
    report: &SourceReport,
    warehouse: &StorageLocation,
    date: NaiveDate,
) -> Result<(), RunError> {
    let budget = spec.rejects;
    let over_fraction = report.rows_read > 0
        && report.rows_rejected as f64 > budget.max_fraction * report.rows_read as f64;
    let over_rows = budget
        .max_rows
        .is_some_and(|max| report.rows_rejected > max);
    if !(over_fraction || over_rows) {
        return Ok(());
    }
    let mut reasons: Vec<_> = report.rejects_by_reason.iter().collect();
    reasons.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let reasons = reasons
        .iter()
        .take(3)
        .map(|(reason, n)| format!("{reason} {n}"))
        .collect::<Vec<_>>()
        .join(", ");
    let budget_text = match budget.max_rows {
        Some(max) => format!("max_fraction {}, max_rows {max}", budget.max_fraction),
        None => format!("max_fraction {}", budget.max_fraction),
    };
    Err(RunError::RejectBudget {
        name: spec.name.clone(),
        rejected: report.rows_rejected,
        read: report.rows_read,
        budget: budget_text,
        reasons,
        rejects: format!(
            "{}/rejects/extract={}/run_date={date}",
            warehouse.url, spec.name
        ),
    })
}

/// Writes one output's partition for this run to staging, sorted by its keys.
async fn stage_output(
    ctx: &SessionContext,
    bound: &Bound,
    output: &OutputSpec,
    tmp: &Path,
) -> Result<(Path, StagedPartition), RunError> {
    let query_err = |source| RunError::Output {
        output: output.name.clone(),
        source,
    };
    let path = crate::job::interpolate(&output.path, &bound.vars)
        .map_err(|e| RunError::Bind(format!("output {}: {e}", output.name)))?;
    let location = bound.registry.resolve_for_write(&path)?;
    if location.store_url != bound.warehouse.store_url {
        return Err(RunError::OutputSpec {
            output: output.name.clone(),
            message: format!(
                "path {} must be in the warehouse's store ({})",
                location.url, bound.warehouse.url
            ),
        });
    }
    let mut frame = ctx.table(output.name.as_str()).await.map_err(query_err)?;
    let columns: Vec<String> = frame
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    let mut partition = Vec::new();
    for key in &output.partition_by {
        match key.as_str() {
            "snapshot_date" => partition.push(format!("snapshot_date={}", bound.date)),
            other => {
                return Err(RunError::OutputSpec {
                    output: output.name.clone(),
                    message: format!(
                        "partition_by `{other}`: only snapshot_date (the logical date) is supported"
                    ),
                });
            }
        }
    }
    if columns.iter().any(|c| output.partition_by.contains(c)) {
        // Hive layout: partition values live in the path, not in the files.
        let keep = columns
            .iter()
            .filter(|c| !output.partition_by.contains(c))
            .map(|c| ident(c.as_str()))
            .collect::<Vec<_>>();
        frame = frame.select(keep).map_err(query_err)?;
    }
    if let Some(missing) = output.sort_by.iter().find(|c| !columns.contains(c)) {
        return Err(RunError::OutputSpec {
            output: output.name.clone(),
            message: format!("sort_by column `{missing}` is not a column of the step"),
        });
    }
    if !output.sort_by.is_empty() {
        let keys = output
            .sort_by
            .iter()
            .map(|c| ident(c.as_str()).sort(true, true))
            .collect();
        frame = frame.sort(keys).map_err(query_err)?;
    }
    let staging_dir = partition.iter().fold(
        tmp.clone().join("outputs").join(output.name.as_str()),
        |dir, part| dir.join(part.as_str()),
    );
    let target = partition
        .iter()
        .fold(location.prefix.clone(), |dir, part| dir.join(part.as_str()));
    let stream = frame.execute_stream().await.map_err(query_err)?;
    let staged = sink::write_stream(
        &output.name,
        stream,
        bound.warehouse.store.clone(),
        &staging_dir,
        output.compression,
        sink::DEFAULT_ROWS_PER_FILE,
    )
    .await?;
    Ok((target, staged))
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
