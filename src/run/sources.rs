//! The sources stage: every source read into typed staging files (a partitioned
//! source through the typed staging cache) and registered as a table. Reference
//! data first, so transactions can check their currencies against it.

use datafusion::prelude::SessionContext;

use super::{Progress, Run, RunError, SourceSummary, record};
use crate::job::{ContractSchema, SourceSpec};
use crate::source::stage::{self, StagedSource};

/// The job's sources, each with what staging it produced, in staging order.
pub(super) type StagedSources<'a> = Vec<(&'a SourceSpec, StagedSource)>;

/// Stages every source of the job; records each in `p`.
pub(super) async fn stage_sources<'a>(
    r: &Run<'a>,
    ctx: &SessionContext,
    p: &mut Progress,
) -> Result<StagedSources<'a>, RunError> {
    let t = record::StageStart::now();
    let staged = stage_all(r, ctx, p).await;
    // Timed whether or not it failed: a source that fails the run (e.g. over its
    // `limits`) still shows what reading it cost.
    record::stage(&mut p.record, "sources", t);
    staged
}

async fn stage_all<'a>(
    r: &Run<'a>,
    ctx: &SessionContext,
    p: &mut Progress,
) -> Result<StagedSources<'a>, RunError> {
    let tmp = r.committer.staging_dir(&r.run_id);
    let mut ordered: Vec<&'a SourceSpec> = r.job.sources.iter().collect();
    ordered.sort_by_key(|s| s.schema != ContractSchema::FxRates);
    let env = r.bound.stage_env();
    let progress = crate::progress::Progress::start("sources", 0);
    let mut staged_sources = Vec::new();
    for spec in ordered {
        let currencies = match &spec.currencies {
            Some(fx) => Some(stage::known_currencies(ctx, fx).await?),
            None => None,
        };
        let cache = crate::source::CacheUse {
            run_id: r.run_id.as_str().into(),
            full_refresh: r.options.full_refresh,
            sweep: !p.record.recovered_runs.is_empty(),
            progress: progress.clone(),
        };
        let staged = stage::stage_source(ctx, &env, spec, currencies, &tmp, cache).await?;
        p.record.sources.push(record::source(&spec.name, &staged));
        p.sources.push(SourceSummary {
            name: spec.name.clone(),
            report: staged.report.clone(),
        });
        staged_sources.push((spec, staged));
    }
    Ok(staged_sources)
}
