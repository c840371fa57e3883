//! One load, end to end: bind the job to a logical date, take the warehouse
//! lease and clean up after crashed runs, read and validate every source into
//! typed staging files, run the steps, stage and check the outputs, commit.
//!
//! ```text
//! bind ─► lease + recovery ─► sources ─► typed staging (+ rejects)
//!      ─► deduplication + row accounting ─► reject budgets ─► steps (each once; outputs staged)
//!      ─► checks on the staged outputs ─► commit rejects minus erased people's rows
//!      ─► commit outputs (atomic) ─► run log
//! ```
//! Nothing but rejects is published until every output is staged and every
//! error-level check passed, so a failing step, query or check leaves every
//! previous snapshot as it was. Rejects are published after a failure too, filtered
//! by the erasure requests alone (`rejects.rs`). The commit protocol is in
//! `crate::commit`.

mod dag;
mod dedup;
mod error;
mod outputs;
mod plan;
mod record;
mod rejects;
mod source_cache;
mod staging;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use chrono::NaiveDate;
use datafusion::prelude::SessionContext;
use object_store::ObjectStoreExt;

use crate::checks::{self, CheckOutcome, OutputFacts};
use crate::clock::Clock;
use crate::commit::{self, Committer, Lease, PartitionToCommit};
use crate::engine::{self, EngineOptions};
use crate::job::{ContractSchema, Job, SourceSpec};
pub use crate::runlog::RowAccounting;
use crate::runlog::{RunLog, RunRecord};
use crate::source::SourceReport;
use crate::storage::{StorageLocation, StorageRegistry};
pub use error::RunError;
pub use plan::{PlanFindings, plan_job};

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
    /// Parse every raw partition again instead of reusing the typed staging
    /// cache (`--full-refresh`), rewriting the cache entries of the days read.
    pub full_refresh: bool,
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
    pub accounting: Vec<RowAccounting>,
    pub checks: Vec<CheckOutcome>,
    /// What erasure removed.
    pub erasure: crate::erasure::ErasureRecord,
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

/// The run's shared handles.
struct Run<'a> {
    job: &'a Job,
    options: &'a RunOptions,
    bound: Bound,
    run_id: String,
    committer: Committer,
    log: RunLog,
    /// How the run's DataFusion session is sized.
    engine: EngineOptions,
}

/// The run record being filled in, and the full source reports for the summary.
struct Progress {
    record: RunRecord,
    sources: Vec<SourceSummary>,
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
    let r = Run {
        job,
        options,
        committer: Committer::for_location(&bound.warehouse),
        log: RunLog::new(bound.warehouse.store.clone(), &bound.warehouse.prefix),
        engine: EngineOptions {
            // Resolved once: the default reads /proc/meminfo.
            memory_limit: Some(
                options
                    .memory_limit
                    .or(job.engine.memory_limit)
                    .unwrap_or_else(engine::default_memory_limit),
            ),
            spill_dir: job.engine.spill_dir.as_ref().map(|d| job.base_dir.join(d)),
            target_partitions: job.engine.target_partitions,
        },
        run_id,
        bound,
    };
    let mut progress = Progress {
        record: record::start(&r),
        sources: Vec::new(),
    };
    if let Err(e) = r.log.write(&progress.record).await {
        tracing::warn!(error = %e, "could not write the run record");
    }
    let result = with_lease(&r, &mut progress).await;
    let Progress {
        mut record,
        sources,
    } = progress;
    record::finish(&mut record, options.clock.now(), result.as_ref().err());
    if let Err(e) = r.log.finish(&record).await {
        tracing::warn!(error = %e, "could not write the run record");
    }
    result?;
    let summary = record::summary(&record, sources, started.elapsed().as_secs_f64());
    tracing::info!(elapsed_secs = summary.elapsed_secs, "run succeeded");
    Ok(summary)
}

/// Takes the warehouse lease, recovers from crashed runs, loads, releases.
async fn with_lease(r: &Run<'_>, p: &mut Progress) -> Result<(), RunError> {
    let t = record::StageStart::now();
    let lock = r.bound.warehouse.prefix.clone().join("_c360").join("lock");
    let mut lease = Lease::acquire(
        r.bound.warehouse.store.clone(),
        lock,
        &r.run_id,
        &r.job.name,
        r.options.clock.clone(),
        commit::lease::DEFAULT_TTL,
    )
    .await?;
    lease.keep_renewed(commit::lease::DEFAULT_TTL / 3);
    let result = async {
        let recovery = r.committer.recover(&r.run_id).await?;
        let dead: Vec<String> = recovery.dead_runs.into_iter().collect();
        r.log.mark_abandoned(&dead, r.options.clock.now()).await;
        p.record.recovered_runs = dead;
        record::stage(&mut p.record, "lease_and_recovery", t);
        load(r, &lease, p).await
    }
    .await;
    // Still under the lease, so no other run is recovering this folder meanwhile.
    if let Err(e) = r.committer.remove_staging(&r.run_id).await {
        tracing::warn!(error = %e, "could not remove the run's staging folder");
    }
    if let Err(e) = lease.release().await {
        tracing::warn!(error = %e, "could not release the lease");
    }
    result
}

async fn load(r: &Run<'_>, lease: &Lease, p: &mut Progress) -> Result<(), RunError> {
    let (job, bound, run_id) = (r.job, &r.bound, r.run_id.as_str());
    let tmp = r.committer.staging_dir(run_id);
    let ctx = engine::session(&r.engine, engine::runtime(&r.engine)?);
    bound.registry.register_with(ctx.runtime_env().as_ref());
    // The staging folder exists from the start, so a run killed while it only
    // wrote typed staging cache entries is found by the next run's recovery,
    // which then sweeps the cache of its files (source_cache).
    let marker = tmp.clone().join("_running");
    bound
        .warehouse
        .store
        .put(&marker, object_store::PutPayload::default())
        .await
        .map_err(|source| crate::sink::SinkError::Store {
            path: marker.to_string(),
            source,
        })?;

    // Sources: reference data first, so transactions can check currencies.
    let t = record::StageStart::now();
    let mut ordered: Vec<&SourceSpec> = job.sources.iter().collect();
    ordered.sort_by_key(|s| s.schema != ContractSchema::FxRates);
    let mut staged_sources = Vec::new();
    for spec in ordered {
        let currencies = match &spec.currencies {
            Some(fx) => Some(staging::known_currencies(&ctx, fx).await?),
            None => None,
        };
        let cache = source_cache::CacheUse {
            run_id: run_id.into(),
            full_refresh: r.options.full_refresh,
            sweep: !p.record.recovered_runs.is_empty(),
        };
        let staged = staging::stage_source(&ctx, bound, spec, currencies, &tmp, cache).await?;
        p.record.sources.push(record::source(&spec.name, &staged));
        p.sources.push(SourceSummary {
            name: spec.name.clone(),
            report: staged.report.clone(),
        });
        staged_sources.push((spec, staged));
    }
    record::stage(&mut p.record, "sources", t);

    let transformed = transform(r, &ctx, p, &staged_sources, &tmp).await;

    // Rejects are published even when the run failed, minus erased people's rows
    // (run/rejects.rs says which identifiers count when).
    let t = record::StageStart::now();
    match rejects::identifiers(r, &ctx, transformed.is_ok()).await {
        Ok(identifiers) => {
            for (_, staged) in &staged_sources {
                let Some(dir) = &staged.cache_dir else {
                    continue;
                };
                let mut days = staged.days_parsed.clone();
                days.extend(&staged.days_reused);
                source_cache::forget_erased(&bound.warehouse.store, dir, &days, &identifiers)
                    .await?;
            }
            rejects::publish(r, lease, p, &staged_sources, &identifiers).await?;
            let erasure = p.record.erasure.get_or_insert_with(Default::default);
            erasure.requested_identifiers = identifiers.len() as u64;
            if transformed.is_ok()
                && let Some(spec) = &r.job.erasure
            {
                erasure.requested_identifiers = crate::erasure::count(&ctx, &spec.requests)
                    .await?
                    .unwrap_or(0);
                erasure.erased_customers = crate::erasure::count(&ctx, &spec.customers).await?;
            }
        }
        Err(e) if transformed.is_err() => {
            tracing::error!(error = %e, "rejects not published: the erasure requests could not be read");
        }
        Err(e) => return Err(e),
    }
    record::stage(&mut p.record, "commit_rejects", t);
    let staged_outputs = transformed?;

    let t = record::StageStart::now();
    let parts: Vec<PartitionToCommit> = staged_outputs
        .iter()
        .map(|o| PartitionToCommit {
            name: o.name.clone(),
            staged: o.staged.clone(),
            target: o.target.clone(),
        })
        .collect();
    let published = r
        .committer
        .commit(run_id, "outputs", &parts, Some(lease))
        .await?;
    for (done, part) in published.iter().zip(&parts) {
        tracing::info!(output = %part.name, rows = done.rows, files = done.files.len(), "output published");
        p.record
            .outputs
            .push(record::partition(&part.name, &bound.warehouse, done));
    }
    record::stage(&mut p.record, "commit_outputs", t);
    Ok(())
}

/// Row accounting, reject budgets, steps, outputs to staging and checks: every
/// stage between the sources and the commit. Returns the staged outputs.
async fn transform(
    r: &Run<'_>,
    ctx: &SessionContext,
    p: &mut Progress,
    staged_sources: &[(&SourceSpec, staging::StagedSource)],
    tmp: &object_store::path::Path,
) -> Result<Vec<outputs::StagedOutput>, RunError> {
    let (job, bound) = (r.job, &r.bound);
    let store = &bound.warehouse.store;
    // Every source is deduplicated and every row accounted for, then budgets
    // are checked.
    let t = record::StageStart::now();
    let mut source_bytes = BTreeMap::new();
    let mut source_views = BTreeMap::new();
    for (spec, staged) in staged_sources {
        let mut typed_rows = 0;
        for file in &staged.typed {
            typed_rows += commit::footer_rows(store, &file.path).await?;
        }
        let mut rejected_rows = 0;
        for file in &staged.rejects.files {
            rejected_rows += commit::footer_rows(store, &file.path).await?;
        }
        let at = dedup::DuplicatesAt {
            store,
            store_url: bound.warehouse.store_url.as_str(),
            dir: tmp.clone().join("duplicates").join(spec.name.as_str()),
        };
        let deduped = dedup::dedup_source(
            ctx,
            spec,
            &staged.report,
            (typed_rows, rejected_rows),
            bound.date,
            &at,
        )
        .await?;
        source_bytes.insert(
            spec.name.clone(),
            staged.typed.iter().map(|f| f.bytes).sum(),
        );
        if let Some(file) = &deduped.duplicates {
            source_bytes.insert(dedup::duplicates_table(&spec.name), file.bytes);
        }
        source_views.extend(dedup::deduped_reads(spec, &deduped));
        p.record.accounting.push(deduped.accounting);
    }
    for (spec, staged) in staged_sources {
        staging::check_reject_budget(spec, &staged.report, rejects::location(bound, &spec.name))?;
    }
    record::stage(&mut p.record, "accounting", t);

    let t = record::StageStart::now();
    let env = crate::steps::StepEnv {
        vars: &bound.vars,
        date: bound.date,
        published: outputs::published_locations(bound, &job.outputs)?,
    };
    // Every output is written to staging before any is published; the checks
    // read exactly what the commit would publish.
    let staged_tables = dag::Sizes {
        bytes: source_bytes,
        view_reads: source_views,
    };
    let done = dag::run_steps(
        ctx,
        bound,
        job,
        &env,
        staged_tables,
        r.engine.pool_bytes(),
        tmp,
    )
    .await;
    record::stage(&mut p.record, "steps", t);
    let done = done?;
    p.record.steps = done.records;
    let staged_outputs = done.outputs;

    let t = record::StageStart::now();
    let mut facts = BTreeMap::new();
    for staged in &staged_outputs {
        let previous = checks::previous_snapshot(
            store,
            &staged.name,
            &staged.root,
            staged.partitioned,
            bound.date,
        )
        .await?;
        facts.insert(
            staged.name.clone(),
            OutputFacts {
                rows: staged.staged.rows(),
                previous,
            },
        );
    }
    let cx = checks::CheckContext {
        ctx,
        date: bound.date,
        vars: &bound.vars,
        outputs: &facts,
    };
    p.record.checks = checks::run_checks(&job.checks, &cx).await?;
    record::stage(&mut p.record, "checks", t);
    if let Some(failed) = checks::failures(&p.record.checks) {
        return Err(failed.into());
    }
    Ok(staged_outputs)
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
    // Builtin settings as overridden: a bad `--set` fails here, before any source
    // is read (the job file's own values were checked when it was loaded).
    for step in &job.steps {
        if let crate::job::StepKind::Builtin { builtin, .. } = &step.kind
            && let Err(e) = builtin.settings(&vars)
        {
            return Err(RunError::Bind(format!("step {}: {e}", step.name)));
        }
    }
    vars.insert("date".into(), date.to_string());
    let interpolate = |template: &str| {
        crate::job::interpolate(template, &vars).map_err(|e| RunError::Bind(e.to_string()))
    };
    let raw = interpolate(&raw)?;
    let warehouse = interpolate(&warehouse)?;
    let registry = StorageRegistry::for_job(job.base_dir.clone(), &job.storage);
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
