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

use super::{Bound, Progress, Run, RunError, record, staging::StagedSource};
use crate::commit::{Lease, PartitionToCommit};
use crate::erasure::{self, ErasedIdentifiers, ErasureRecord};
use crate::job::SourceSpec;

/// Where an extract's rejects of this run are published.
pub(super) fn target(bound: &Bound, extract: &str) -> Path {
    bound
        .warehouse
        .prefix
        .clone()
        .join("rejects")
        .join(format!("extract={extract}"))
        .join(format!("run_date={}", bound.date))
}

/// The published location of an extract's rejects, as the run log names it.
pub(super) fn location(bound: &Bound, extract: &str) -> String {
    format!(
        "{}{}",
        bound.warehouse.store_url.as_str(),
        target(bound, extract)
    )
}

/// The identifiers to keep out of the rejects: all erased ones after the steps
/// succeeded, else the requests' own.
pub(super) async fn identifiers(
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
/// erasure counts in `p`.
pub(super) async fn publish(
    r: &Run<'_>,
    lease: &Lease,
    p: &mut Progress,
    sources: &[(&SourceSpec, StagedSource)],
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
