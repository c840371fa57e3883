//! One load, end to end. `run` binds the job to a logical date and starts the
//! run record; `with_lease` takes the warehouse lease and recovers from crashed
//! runs; `load` then runs the stages in order, each in its own file:
//!
//! ```text
//! sources.rs     every source read into typed staging files and registered
//!                (`crate::source::stage`, the typed staging cache)
//! accounting.rs  duplicates resolved and every row accounted for
//!                (`crate::source::dedup`),
//!                reject budgets
//! dag.rs         the steps in dependency order, each computed at most once;
//!                outputs staged sorted (outputs.rs)
//! checking.rs    checks on the staged outputs
//! rejects.rs     rejects minus erased people's rows, committed, also after a failure
//! publish.rs     every staged output committed at once (crate::commit)
//! ```
//! and `run` finishes the run record (record.rs, `crate::runlog`). Nothing but
//! rejects is published until every output is staged and every error-level check
//! passed, so a failing step, query or check leaves every previous snapshot as it
//! was. `plan.rs` is `c360 validate`'s planning of the same steps over empty inputs.

mod accounting;
mod checking;
mod dag;
mod error;
mod explain;
mod plan;
mod publish;
mod record;
mod rejects;
mod sources;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use chrono::NaiveDate;
use datafusion::prelude::SessionContext;
use object_store::ObjectStoreExt;

use crate::checks::CheckOutcome;
use crate::clock::Clock;
use crate::commit::{self, Committer, Lease};
use crate::engine::{self, EngineOptions};
use crate::job::Job;
pub use crate::runlog::RowAccounting;
use crate::runlog::{RunLog, RunRecord};
use crate::source::SourceReport;
use crate::storage::{StorageLocation, StorageRegistry};
pub use error::RunError;
pub use explain::explain;
pub use plan::{PlanFindings, plan_job};

/// What the caller chose for this run.
pub struct RunOptions {
    /// Logical date; `None` = today in the job's time zone.
    pub date: Option<NaiveDate>,
    /// `--set key=value` overrides: `raw`, `warehouse`, or any param.
    pub overrides: Vec<(String, String)>,
    /// Overrides the job's `memory_limit` (bytes).
    pub memory_limit: Option<u64>,
    /// Overrides the job's `engine.cluster` (`--engine`).
    pub engine: Option<crate::job::EngineChoice>,
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
    /// The Ballista scheduler the queries ran on; `None`: this process.
    pub engine: Option<String>,
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

impl Bound {
    /// What staging a source needs of the bound run.
    fn stage_env(&self) -> crate::source::stage::StageEnv<'_> {
        crate::source::stage::StageEnv {
            vars: &self.vars,
            registry: &self.registry,
            raw: &self.raw,
            warehouse: &self.warehouse,
            date: self.date,
        }
    }
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
    // Every output under the warehouse, before anything is read or written.
    for output in &job.outputs {
        dag::confined_location(&bound, output)?;
    }
    // The hash key is checked before anything is read, not when the output is written.
    if crate::outputs::hashes_pii(&job.outputs) {
        match crate::udf::pii::PiiKey::from_env() {
            Ok(Some(_)) => {}
            Ok(None) => {
                return Err(RunError::Bind(format!(
                    "an output hashes personal data (pii: hash) and no key is set: put a random secret of at least {} bytes in {} or in the file {} names",
                    crate::udf::pii::MIN_KEY_BYTES,
                    crate::udf::pii::KEY_ENV,
                    crate::udf::pii::KEY_FILE_ENV
                )));
            }
            Err(e) => return Err(RunError::Bind(e)),
        }
    }
    if let Some(path) = bound.raw.local_path()
        && !path.exists()
    {
        return Err(RunError::Bind(format!(
            "the raw root {} does not exist (`storage.raw` of the job, or `--set raw=PATH|URL`)",
            path.display()
        )));
    }
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
            cluster: match &options.engine {
                Some(crate::job::EngineChoice::Local) => None,
                Some(crate::job::EngineChoice::Ballista(url)) => Some(url.clone()),
                None => job.engine.cluster.clone(),
            },
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
    // A run that never held the warehouse lease did nothing: another load holds
    // it (the date's report is that load's to write) or the warehouse cannot be
    // reached (nor written to).
    if record.stages.iter().any(|s| s.stage == LEASE_STAGE) {
        write_report(&r, &mut record).await;
    }
    result?;
    let summary = record::summary(&record, sources, started.elapsed().as_secs_f64());
    tracing::info!(elapsed_secs = summary.elapsed_secs, "run succeeded");
    Ok(summary)
}

/// Writes the run report of the finished `record` (`crate::report`) and adds its
/// time to the record as the stage `report`. A report that cannot be written is
/// a warning: the load it describes is done either way.
async fn write_report(r: &Run<'_>, record: &mut RunRecord) {
    let t = record::StageStart::now();
    let outputs = r
        .job
        .outputs
        .iter()
        .filter_map(|o| dag::confined_location(&r.bound, o).ok())
        .zip(&r.job.outputs)
        .map(|((_, location), o)| (o.name.clone(), location.prefix))
        .collect();
    let input = crate::report::ReportInput {
        job: r.job,
        record,
        warehouse: &r.bound.warehouse,
        outputs,
    };
    match crate::report::write_report(&input).await {
        Ok(path) => {
            record::stage(record, "report", t);
            let secs = record.stages.last().map_or(0.0, |s| s.secs);
            tracing::info!(path = %path, secs, "run report written");
            if let Err(e) = r.log.write(record).await {
                tracing::warn!(error = %e, "could not write the run record");
            }
        }
        Err(e) => tracing::warn!(error = %e, "could not write the run report"),
    }
}

/// The stage a run records once it holds the warehouse lease and recovered.
const LEASE_STAGE: &str = "lease_and_recovery";

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
        record::stage(&mut p.record, LEASE_STAGE, t);
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

/// The stages under the lease, in order. Rejects are published whether or not
/// the stages before them succeeded; outputs only when all of them did.
async fn load(r: &Run<'_>, lease: &Lease, p: &mut Progress) -> Result<(), RunError> {
    let ctx = open_session(r).await?;
    let sources = sources::stage_sources(r, &ctx, p).await?;
    let transformed = async {
        let sizes = accounting::account(r, &ctx, p, &sources).await?;
        let staged_outputs = dag::stage_steps(r, &ctx, p, sizes, &sources).await?;
        checking::check_outputs(r, &ctx, p, &staged_outputs).await?;
        Ok::<_, RunError>(staged_outputs)
    }
    .await;
    let erased = rejects::publish_rejects(r, &ctx, lease, p, &sources, transformed.is_ok()).await?;
    publish::commit_outputs(r, lease, p, &transformed?, &erased).await
}

/// The run's DataFusion session, with the job's stores registered, and its
/// staging folder, which exists from the start: a run killed while it only
/// wrote typed staging cache entries is found by the next run's recovery, which
/// then sweeps the cache of its files (`crate::source`).
async fn open_session(r: &Run<'_>) -> Result<SessionContext, RunError> {
    let ctx = match &r.engine.cluster {
        None => engine::session(&r.engine, engine::runtime(&r.engine)?),
        Some(url) => crate::cluster::connect(url, &r.engine).await?,
    };
    r.bound.registry.register_with(ctx.runtime_env().as_ref());
    let marker = r.committer.staging_dir(&r.run_id).join("_running");
    r.bound
        .warehouse
        .store
        .put(&marker, object_store::PutPayload::default())
        .await
        .map_err(|source| crate::outputs::SinkError::Store {
            path: marker.to_string(),
            source,
        })?;
    Ok(ctx)
}

/// Applies `--set` overrides, fixes the logical date and resolves storage roots.
fn bind(job: &Job, options: &RunOptions) -> Result<Bound, RunError> {
    let date = options
        .date
        .unwrap_or_else(|| options.clock.today_in(job.timezone));
    let crate::job::Overridden {
        raw,
        warehouse,
        params: mut vars,
    } = crate::job::apply_overrides(job, &options.overrides).map_err(RunError::Bind)?;
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
