//! Publishing the run's rejects, minus the rows that carry an erased person's
//! identifiers (docs/rules.md "Erasure").
//!
//! Rejects are published whether or not the run succeeds: they are what the
//! engineer needs to fix upstream. Which identifiers are kept out depends on how
//! far the run got: all identifiers of the erased customers when the steps ran,
//! the erasure requests' own identifiers when the run failed earlier. When even
//! those cannot be read, nothing is published: a reject row must not outlive an
//! erasure request because the run broke.

use std::collections::BTreeMap;

use datafusion::prelude::SessionContext;
use object_store::path::Path;

use super::sources::StagedSources;
use super::{Bound, Progress, Run, RunError, record};
use crate::commit::{Lease, PartitionToCommit};
use crate::erasure::{self, ErasedIdentifiers, ErasureRecord};

/// Where an extract's rejects of this run are published.
pub(super) fn target(bound: &Bound, extract: &str) -> Path {
    crate::outputs::rejects_partition(&bound.warehouse.prefix, extract, bound.date)
}

/// The published location of an extract's rejects, as the run log names it.
pub(super) fn location(bound: &Bound, extract: &str) -> String {
    format!(
        "{}{}",
        bound.warehouse.store_url.as_str(),
        target(bound, extract)
    )
}

/// The rejects stage, run whether or not the steps succeeded (`steps_ok`):
/// the typed staging cache holds erased people's rows out, every source's rejects are
/// committed without their rows, and the erasure counts are recorded in `p`.
/// Fails only when the steps succeeded: after a failed run the run's own error
/// is the one to report, and rejects that cannot be filtered are not published.
/// Returns the identifiers kept out.
pub(super) async fn publish_rejects(
    r: &Run<'_>,
    ctx: &SessionContext,
    lease: &Lease,
    p: &mut Progress,
    sources: &StagedSources<'_>,
    steps_ok: bool,
) -> Result<ErasedIdentifiers, RunError> {
    let t = record::StageStart::now();
    let identifiers = match identifiers(r, ctx, steps_ok).await {
        Ok(identifiers) => identifiers,
        Err(e) if !steps_ok => {
            tracing::error!(error = %e, "rejects not published: the erasure requests could not be read");
            record::stage(&mut p.record, "commit_rejects", t);
            return Ok(ErasedIdentifiers::default());
        }
        Err(e) => return Err(e),
    };
    for (_, staged) in sources {
        let Some(dir) = &staged.cache_dir else {
            continue;
        };
        let mut days = staged.days_parsed.clone();
        days.extend(&staged.days_reused);
        let store = &r.bound.warehouse.store;
        crate::source::forget_erased(store, dir, &days, &identifiers, &r.run_id).await?;
    }
    // The incremental steps' carried state, by the same match as the cache.
    let carried: Vec<&str> = (r.job.steps.iter())
        .filter(|s| s.incremental.is_some())
        .map(|s| s.name.as_str())
        .collect();
    let warehouse = &r.bound.warehouse;
    let (store, root, local) = (
        &warehouse.store,
        &warehouse.prefix,
        warehouse.is_local_disk(),
    );
    crate::steps::carried::forget_erased(store, root, &carried, &identifiers, &r.run_id, local)
        .await?;
    commit_rejects(r, lease, p, sources, &identifiers).await?;
    let erasure = p.record.erasure.get_or_insert_with(Default::default);
    erasure.requested_identifiers = identifiers.len() as u64;
    if steps_ok && let Some(spec) = &r.job.erasure {
        erasure.requested_identifiers = erasure::count(ctx, &spec.requests).await?.unwrap_or(0);
        erasure.erased_customers = erasure::count(ctx, &spec.customers).await?;
    }
    record::stage(&mut p.record, "commit_rejects", t);
    Ok(identifiers)
}

/// The identifiers to keep out of the rejects: all erased ones after the steps
/// succeeded, else the requests' own.
async fn identifiers(
    r: &Run<'_>,
    ctx: &SessionContext,
    steps_ok: bool,
) -> Result<ErasedIdentifiers, RunError> {
    let Some(spec) = &r.job.erasure else {
        return Ok(ErasedIdentifiers::default());
    };
    Ok(if steps_ok {
        erasure::collect(ctx, spec).await?
    } else {
        erasure::requested(ctx, spec, &r.job.steps, &r.bound.vars).await?
    })
}

/// Filters and commits every source's staged rejects; records them and the
/// rows left out in `p`.
async fn commit_rejects(
    r: &Run<'_>,
    lease: &Lease,
    p: &mut Progress,
    sources: &StagedSources<'_>,
    identifiers: &ErasedIdentifiers,
) -> Result<(), RunError> {
    let store = &r.bound.warehouse.store;
    let tmp = r.committer.staging_dir(&r.run_id);
    let mut parts = Vec::new();
    let mut removed = BTreeMap::new();
    for (spec, staged) in sources {
        let out = tmp.clone().join("rejects_kept").join(spec.name.as_str());
        let filtered = erasure::filter_staged(store, &staged.rejects, identifiers, &out).await?;
        if filtered.removed > 0 {
            tracing::info!(source = %spec.name, rows = filtered.removed, "reject rows of erased people left out");
            removed.insert(spec.name.clone(), filtered.removed);
        }
        parts.push(PartitionToCommit {
            name: format!("rejects/{}", spec.name),
            staged: filtered.staged,
            target: target(&r.bound, &spec.name),
        });
    }
    let published = r
        .committer
        .commit(&r.run_id, "rejects", &parts, Some(lease))
        .await?;
    p.record.rejects = published
        .iter()
        .zip(&parts)
        .map(|(done, part)| {
            record::partition(&part.name["rejects/".len()..], &r.bound.warehouse, done)
        })
        .collect();
    let erasure = p.record.erasure.get_or_insert_with(ErasureRecord::default);
    erasure.reject_rows_removed = removed;
    Ok(())
}
