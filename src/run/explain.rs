//! `c360 explain`: what a run of a job for a date would do, without doing it.
//!
//! The job is bound as a run binds it (`--set`, the date, storage roots), then:
//! each source with its resolved location, the raw days a run reads and how many
//! of them the typed staging cache holds for the same raw files; the steps in
//! the order they run, each with its materialization and what it reads (a text
//! DAG); the checks; the outputs with the partition they replace. `--verbose`
//! adds DataFusion's logical and physical plan of each step, planned over empty
//! inputs (`plan.rs`). Nothing is written. Params and storage options are not
//! printed, so no secret is; URLs never hold credentials (refused at bind).

use std::fmt::Write as _;

use datafusion::physical_plan::displayable;

use super::{Bound, RunError, RunOptions, bind, dag};
use crate::job::{Job, StepKind};
use crate::source;

/// The explanation of `job` for the run `options` describe.
pub async fn explain(job: &Job, options: &RunOptions, verbose: bool) -> Result<String, RunError> {
    let bound = bind(job, options)?;
    let mut out = String::new();
    let w = &mut out;
    let _ = writeln!(w, "job {} for {}", job.name, bound.date);
    let _ = writeln!(w, "  raw        {}", bound.raw.url);
    let _ = writeln!(w, "  warehouse  {}", bound.warehouse.url);

    let _ = writeln!(w, "\nsources");
    for spec in &job.sources {
        let _ = writeln!(w, "{}", source_line(&bound, spec).await?);
    }

    let _ = writeln!(w, "\nsteps, in the order they run (<- what each reads)");
    for step in &job.steps {
        let materialize = match dag::materialized(job, step, &step.name) {
            dag::Materialized::Output => "output",
            dag::Materialized::Table => "table",
            dag::Materialized::View => "view",
        };
        let what = match &step.kind {
            StepKind::Sql { file, .. } => {
                let shown = file.strip_prefix(&job.base_dir).unwrap_or(file);
                shown.display().to_string()
            }
            StepKind::Builtin { builtin, .. } => format!("builtin {}", builtin.name()),
        };
        let _ = writeln!(
            w,
            "  {:<24} {:<7} {:<40} <- {}",
            step.name,
            materialize,
            what,
            step.depends_on.join(", ")
        );
        if let Some(incremental) = &step.incremental {
            let merged: Vec<String> = (incremental.merge.iter())
                .map(|(column, how)| format!("{column} ({})", how.as_str()))
                .collect();
            let _ = writeln!(
                w,
                "  {:<24} incremental: carried in _c360/state/{}/, new days merged into {}",
                "",
                step.name,
                merged.join(", ")
            );
        }
        if let Some(days) = &step.window_days {
            let _ = writeln!(
                w,
                "  {:<24} window_days: reads its sources' days within {days} days of the date",
                ""
            );
        }
        for also in &step.also_defines {
            let _ = writeln!(
                w,
                "  {:<24} {:<7} {:<40} <- {}",
                also, "table", "(computed with it)", step.name
            );
        }
    }

    let _ = writeln!(w, "\nchecks");
    for (table, checks) in &job.checks {
        for check in checks {
            let _ = writeln!(w, "  {:<24} {}", table, crate::checks::check_name(check));
        }
    }

    let _ = writeln!(w, "\noutputs");
    for output in &job.outputs {
        let (_, location) = dag::confined_location(&bound, output)?;
        let partition = if output.partition_by.is_empty() {
            String::new()
        } else {
            format!("/{}", crate::outputs::snapshot_partition(bound.date))
        };
        let sort = if output.sort_by.is_empty() {
            String::new()
        } else {
            format!("  sorted by {}", output.sort_by.join(", "))
        };
        let _ = writeln!(w, "  {:<24} {}{partition}{sort}", output.name, location.url);
    }

    if verbose {
        let (ctx, findings) = super::plan::planned(job).await;
        for error in &findings.errors {
            let _ = writeln!(w, "\n(not planned) {error}");
        }
        if let Some(ctx) = ctx {
            for step in &job.steps {
                let StepKind::Sql { sql, .. } = &step.kind else {
                    let _ = writeln!(w, "\nstep {}: a builtin (Rust), no SQL plan", step.name);
                    continue;
                };
                let plan = |e: datafusion::error::DataFusionError| RunError::Query {
                    what: format!("explain {}", step.name),
                    source: e,
                };
                let text = crate::job::interpolate(sql, &bound.vars)
                    .map_err(|e| RunError::Bind(format!("step {}: {e}", step.name)))?;
                let Ok(frame) = ctx.sql(&text).await else {
                    continue;
                };
                let logical = frame.into_optimized_plan().map_err(plan)?;
                let physical = ctx
                    .state()
                    .create_physical_plan(&logical)
                    .await
                    .map_err(plan)?;
                let _ = writeln!(
                    w,
                    "\nstep {}: logical plan\n{}",
                    step.name,
                    logical.display_indent()
                );
                let _ = writeln!(
                    w,
                    "step {}: physical plan (over empty inputs: sizes and partitions differ in a run)\n{}",
                    step.name,
                    displayable(physical.as_ref()).indent(true)
                );
            }
        }
    }
    Ok(out)
}

/// One source: its location, the raw days a run reads, how many are cached.
async fn source_line(bound: &Bound, spec: &crate::job::SourceSpec) -> Result<String, RunError> {
    let (input, location) = source::stage::source_input(&bound.stage_env(), spec, None)?;
    let read_err = |source| {
        RunError::Staging(source::StagingError::Read {
            name: spec.name.clone(),
            source,
        })
    };
    let listing = source::list_source(&input).await.map_err(read_err)?;
    let mut line = format!(
        "  {:<16} {:<14} {}  {} file(s)",
        spec.name,
        format!("{:?}", spec.format).to_lowercase(),
        location.url,
        listing.files.len()
    );
    if let (Some(first), Some(last)) = (listing.partitions.first(), listing.partitions.last()) {
        let _ = write!(
            line,
            ", {} day(s) {first} .. {last}",
            listing.partitions.len()
        );
        if spec.schema != crate::job::ContractSchema::Suppressions {
            let dir = source::stage::cache_dir(&bound.warehouse.prefix, &spec.name);
            let cached = source::days_cached(&bound.warehouse.store, &dir, &listing).await?;
            let _ = write!(line, ", {cached} cached for the same raw files");
        }
    }
    if !listing.skipped.is_empty() {
        let _ = write!(
            line,
            ", {} skipped (not of the format)",
            listing.skipped.len()
        );
    }
    Ok(line)
}
