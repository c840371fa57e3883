//! `c360 validate`'s second pass: the job planned over the declared schemas
//! before any data is read, so a typo in a column is a `file:line:col` error in
//! seconds, not a failed run after every source was staged.
//!
//! ```text
//! sources ─► empty tables of their typed schema (+ <source>_deduped views)
//! steps   ─► SQL planned as views; builtins run over their (empty) inputs
//! outputs ─► partition, sort and bloom filter keys against the step's columns
//! checks  ─► every check query planned, none run
//! charts  ─► every `report.charts` query planned over the outputs and
//!            `previous.<output>`; its columns must fit the chart's kind
//! ```
//! The same code registers steps and dedup views in a real run, so what plans here
//! plans there. A step that fails is reported once: the steps reading it are
//! skipped rather than reported again. Warnings (Vector's habit): a param nothing
//! uses, a step nothing reads, an output without a `unique` check.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;

use datafusion::datasource::MemTable;
use datafusion::error::DataFusionError;
use datafusion::prelude::SessionContext;
use tracing::instrument::WithSubscriber;

use crate::engine::{self, EngineOptions};
use crate::job::{CheckSpec, Diagnostic, Job, StepKind, StepSpec, template_position};
use crate::source::dedup::register_deduped;
use crate::steps::{PublishedLocations, StepEnv, StepError};
use crate::storage::StorageRegistry;

/// What planning a job found.
#[derive(Debug, Default)]
pub struct PlanFindings {
    /// Problems a run would fail on.
    pub errors: Vec<Diagnostic>,
    /// Likely mistakes that do not stop a run (messages start with `warning:`).
    pub warnings: Vec<Diagnostic>,
}

/// Plans every step, output and check of `job` (loaded and valid) over empty
/// tables of the sources' typed schemas.
pub async fn plan_job(job: &Job) -> PlanFindings {
    planned(job).await.1
}

/// [`plan_job`], and the session the steps are registered on (`None` when it
/// could not be built): `c360 explain --verbose` prints each step's plans.
pub(super) async fn planned(job: &Job) -> (Option<SessionContext>, PlanFindings) {
    let mut findings = PlanFindings::default();
    let at_job = |place: Option<&(u32, u32)>, message: String| {
        let (line, column) = place.copied().unwrap_or((1, 1));
        Diagnostic::new(&job.file, line, column, message)
    };
    let ctx = match session() {
        Ok(ctx) => ctx,
        Err(e) => {
            findings
                .errors
                .push(at_job(None, format!("cannot plan the job: {e}")));
            return (None, findings);
        }
    };
    let date = chrono::Utc::now().date_naive();
    let mut vars = job.params.clone();
    vars.insert("date".into(), date.to_string());
    for (root, template) in [
        ("raw", &job.storage.raw),
        ("warehouse", &job.storage.warehouse),
    ] {
        let bound = crate::job::interpolate(template, &vars).unwrap_or_else(|_| template.clone());
        vars.insert(root.into(), bound);
    }
    let registry = StorageRegistry::for_job(job.base_dir.clone(), &job.storage);
    let warehouse = registry.resolve(&vars["warehouse"]).ok();

    for spec in &job.sources {
        let schema = crate::source::typed_schema(spec.schema);
        let registered = MemTable::try_new(schema, vec![Vec::new()])
            .and_then(|table| ctx.register_table(spec.name.as_str(), Arc::new(table)));
        let rule = spec.schema.dedup_rule();
        let deduped = match registered {
            Ok(_) if !rule.key.is_empty() => {
                register_deduped(&ctx, &rule, &spec.name, None, date).await
            }
            other => other.map(|_| ()),
        };
        if let Err(e) = deduped {
            let message = format!("source {}: {}", spec.name, message(&e));
            findings.errors.push(at_job(None, message));
        }
    }

    let env = StepEnv {
        vars: &vars,
        date,
        published: PublishedLocations::new(),
        carry: None,
    };
    let mut broken: BTreeSet<&str> = BTreeSet::new();
    for step in &job.steps {
        let tables =
            std::iter::once(step.name.as_str()).chain(step.also_defines.iter().map(|t| t.as_str()));
        if step.depends_on.iter().any(|d| broken.contains(d.as_str())) {
            broken.extend(tables);
            continue;
        }
        // A builtin over empty inputs logs as if it ran; validation keeps quiet.
        let registered = crate::steps::register_step(&ctx, step, &env)
            .with_subscriber(tracing::subscriber::NoSubscriber::default())
            .await;
        if let Err(e) = registered {
            findings.errors.push(step_problem(job, step, &e, &vars));
            broken.extend(tables);
            continue;
        }
        // What a run writes once, later steps scan: an empty table of its
        // schema, so each step's plan is its own SQL over its inputs.
        for table in tables {
            if super::dag::materialized(job, step, table) == super::dag::Materialized::View {
                continue;
            }
            let replaced = async {
                let schema = Arc::clone(ctx.table(table).await?.schema().inner());
                ctx.deregister_table(table)?;
                let empty = MemTable::try_new(schema, vec![Vec::new()])?;
                ctx.register_table(table, Arc::new(empty))
            }
            .await;
            if let Err(e) = replaced {
                let message = format!("step {}: {}", step.name, message(&e));
                findings
                    .errors
                    .push(at_job(job.places.steps.get(&step.name), message));
            }
        }
    }

    let mut pii_warnings = Vec::new();
    for output in &job.outputs {
        if broken.contains(output.name.as_str()) {
            continue;
        }
        let place = job.places.outputs.get(&output.name);
        // Symlinks out of the warehouse, where the folders exist already.
        let location = crate::job::interpolate(&output.path, &vars)
            .ok()
            .and_then(|path| registry.resolve(&path).ok());
        if let (Some(warehouse), Some(location)) = (&warehouse, &location)
            && !warehouse.contains(location)
        {
            let message = format!(
                "outputs.{}.path: {} is not under the warehouse {} (outputs are written only there)",
                output.name, location.url, warehouse.url
            );
            findings.errors.push(at_job(place, message));
        }
        let fields: Vec<_> = match ctx.table(output.name.as_str()).await {
            Ok(frame) => frame.schema().fields().iter().cloned().collect(),
            Err(e) => {
                let message = format!("outputs.{}: {}", output.name, message(&e));
                findings.errors.push(at_job(place, message));
                continue;
            }
        };
        let columns: Vec<String> = fields.iter().map(|f| f.name().clone()).collect();
        if let Some(problem) = crate::outputs::key_problem(output, &columns) {
            let message = format!("outputs.{}: {problem}", output.name);
            findings.errors.push(at_job(place, message));
        }
        for column in crate::outputs::unprotected_pii(output, &fields) {
            let message = format!(
                "warning: outputs.{}: column `{column}` looks like personal contact data and has no pii policy (keep, hash, mask or drop)",
                output.name
            );
            pii_warnings.push(at_job(place, message));
        }
    }

    for (table, specs) in &job.checks {
        if broken.contains(table.as_str()) {
            continue;
        }
        for spec in specs {
            if let Err(e) = crate::checks::plan_check(&ctx, table, spec, &vars).await {
                let message = format!("checks.{table}: {e}");
                findings
                    .errors
                    .push(at_job(job.places.checks.get(table), message));
            }
        }
    }

    findings
        .errors
        .extend(plan_charts(&ctx, job, &vars, &broken).await);
    findings.warnings = warnings(job)
        .into_iter()
        .map(|(place, message)| at_job(place, format!("warning: {message}")))
        .chain(pii_warnings)
        .collect();
    (Some(ctx), findings)
}

/// Each chart of `report.charts` planned over the outputs as empty tables, and
/// `previous.<output>` the same; its columns must fit its kind.
async fn plan_charts(
    ctx: &SessionContext,
    job: &Job,
    vars: &BTreeMap<String, String>,
    broken: &BTreeSet<&str>,
) -> Vec<Diagnostic> {
    if job.report.charts.is_empty() {
        return Vec::new();
    }
    let catalog = ctx
        .state()
        .config()
        .options()
        .catalog
        .default_catalog
        .clone();
    let previous = Arc::new(datafusion::catalog::MemorySchemaProvider::new());
    let registered = match ctx.catalog(&catalog) {
        Some(catalog) => catalog.register_schema(crate::report::PREVIOUS, previous),
        None => Err(DataFusionError::Plan(format!("no catalog {catalog}"))),
    };
    let mut out = Vec::new();
    let at = |i: usize, message: String| {
        let (line, column) = job.places.charts.get(i).copied().unwrap_or((1, 1));
        Diagnostic::new(&job.file, line, column, message)
    };
    if let Err(e) = registered {
        out.push(at(
            0,
            format!("report: cannot plan the charts: {}", message(&e)),
        ));
        return out;
    }
    for output in &job.outputs {
        if let Ok(frame) = ctx.table(output.name.as_str()).await {
            let schema = Arc::clone(frame.schema().inner());
            let name = format!("{}.{}", crate::report::PREVIOUS, output.name);
            if let Ok(empty) = MemTable::try_new(schema, vec![Vec::new()]) {
                let _ = ctx.register_table(name.as_str(), Arc::new(empty));
            }
        }
    }
    for (i, chart) in job.report.charts.iter().enumerate() {
        let Ok(sql) = crate::job::interpolate(&chart.sql, vars) else {
            continue; // reported when the job was loaded
        };
        let reads_broken = crate::job::referenced_tables(&sql).is_ok_and(|tables| {
            tables
                .iter()
                .any(|t| broken.contains(t.strip_prefix("previous.").unwrap_or(t)))
        });
        if reads_broken {
            continue;
        }
        let context = format!("report.charts[{i}] ({})", chart.title);
        match ctx.sql(&sql).await {
            Err(e) => out.push(at(i, format!("{context}: {}", message(&e)))),
            Ok(frame) => {
                if let Some(problem) =
                    crate::report::columns_problem(chart.kind, frame.schema().as_arrow())
                {
                    out.push(at(i, format!("{context}: {problem}")));
                }
            }
        }
    }
    out
}

/// A small session with c360's UDFs that keeps the spans of SQL it plans.
fn session() -> Result<SessionContext, crate::engine::EngineError> {
    let options = EngineOptions {
        memory_limit: Some(256 << 20),
        spill_dir: None,
        target_partitions: Some(1),
        cluster: None,
    };
    let ctx = engine::session(&options, engine::runtime(&options)?);
    ctx.state_ref()
        .write()
        .config_mut()
        .options_mut()
        .sql_parser
        .collect_spans = true;
    Ok(ctx)
}

/// A step's problem where the user fixes it: the SQL file's line and column
/// when DataFusion says where, else the step's entry in the job file.
fn step_problem(
    job: &Job,
    step: &StepSpec,
    error: &StepError,
    vars: &BTreeMap<String, String>,
) -> Diagnostic {
    if let (StepError::Sql { source, .. }, StepKind::Sql { file, sql }) = (error, &step.kind) {
        let (line, column) = sql_position(source)
            .map(|(line, column)| template_position(sql, vars, line, column))
            .unwrap_or((1, 1));
        let shown = file.strip_prefix(&job.base_dir).unwrap_or(file);
        let message = format!("step {}: {}", step.name, message(source));
        return Diagnostic::new(Path::new(shown), line, column, message);
    }
    let (line, column) = job.places.steps.get(&step.name).copied().unwrap_or((1, 1));
    Diagnostic::new(&job.file, line, column, error.to_string())
}

/// Where in the planned SQL an error is: DataFusion's span (an unknown column
/// or table), or the parser's `Line: N, Column: M`.
fn sql_position(error: &DataFusionError) -> Option<(u32, u32)> {
    let to_u32 = |n: u64| u32::try_from(n).ok().filter(|&n| n > 0);
    let spanned = error.iter().find_map(|e| {
        let span = e.diagnostic()?.span?;
        Some((to_u32(span.start.line)?, to_u32(span.start.column)?))
    });
    spanned.or_else(|| {
        let text = error.to_string();
        let number = |key: &str| -> Option<u32> {
            let rest = &text[text.find(key)? + key.len()..];
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            digits.parse().ok()
        };
        Some((number("Line: ")?, number("Column: ")?))
    })
}

/// The error on one line, without DataFusion's diagnostic wrappers and backtraces.
fn message(error: &DataFusionError) -> String {
    let mut inner = error;
    while let DataFusionError::Diagnostic(_, source) = inner {
        inner = source;
    }
    inner.strip_backtrace().replace('\n', " ")
}

/// Likely mistakes: params nothing reads, steps nothing reads, outputs
/// without a key check. Each with where the job file declares it.
fn warnings(job: &Job) -> Vec<(Option<&(u32, u32)>, String)> {
    let mut out = Vec::new();
    // Every template that may hold `{param}`, and the params builtins read.
    let mut texts: Vec<&str> = vec![&job.storage.raw, &job.storage.warehouse];
    texts.extend(job.sources.iter().map(|s| s.path.as_str()));
    texts.extend(job.outputs.iter().map(|o| o.path.as_str()));
    let mut builtin_params: BTreeSet<&str> = BTreeSet::new();
    for step in &job.steps {
        match &step.kind {
            StepKind::Sql { sql, .. } => texts.push(sql),
            StepKind::Builtin { builtin, .. } => builtin_params.extend(builtin.params()),
        }
    }
    for spec in job.checks.values().flatten() {
        if let CheckSpec::Sql { sql, .. } = spec {
            texts.push(sql);
        }
    }
    for param in job.params.keys() {
        let placeholder = format!("{{{param}}}");
        let used = builtin_params.contains(param.as_str())
            || texts.iter().any(|t| t.contains(&placeholder));
        if !used {
            out.push((
                job.places.params.get(param),
                format!("params.{param}: no SQL file, path or builtin step uses it"),
            ));
        }
    }

    let mut read: BTreeSet<&str> = job.outputs.iter().map(|o| o.name.as_str()).collect();
    for step in &job.steps {
        read.extend(step.depends_on.iter().map(|d| d.as_str()));
    }
    read.extend(job.checks.keys().map(|t| t.as_str()));
    if let Some(erasure) = &job.erasure {
        read.extend(erasure.steps());
    }
    for step in &job.steps {
        if !read.contains(step.name.as_str()) {
            out.push((
                job.places.steps.get(&step.name),
                format!(
                    "step {}: nothing reads it (no step, output, check or erasure section)",
                    step.name
                ),
            ));
        }
    }

    for output in &job.outputs {
        // A key check: `unique`, or at most one row (a one-row table is keyed).
        let keyed = job.checks.get(&output.name).is_some_and(|checks| {
            checks.iter().any(|c| {
                matches!(
                    c,
                    CheckSpec::Unique { .. } | CheckSpec::RowCount { max: Some(1), .. }
                )
            })
        });
        if !keyed {
            out.push((
                job.places.outputs.get(&output.name),
                format!(
                    "outputs.{}: no key check (`unique`, or `row_count` with `max: 1`), so duplicated rows would be published",
                    output.name
                ),
            ));
        }
    }
    out
}
