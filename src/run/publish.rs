//! The commit stage: every staged output published at once by the commit
//! protocol (`crate::commit`), with the earlier partitions `erasure.rewrite_history`
//! rewrites, then recorded in the run record.

use super::{Progress, Run, RunError, dag, record};
use crate::commit::{Lease, PartitionToCommit};
use crate::erasure::ErasedIdentifiers;
use crate::erasure::history::{self, HistoryOutput, HistoryRewrite};
use crate::outputs::{SNAPSHOT_COLUMN, StagedOutput};

/// Commits the staged outputs (and the rewritten history, when the job asks for
/// it, in the same commit); records each published partition in `p`.
pub(super) async fn commit_outputs(
    r: &Run<'_>,
    lease: &Lease,
    p: &mut Progress,
    staged_outputs: &[StagedOutput],
    erased: &ErasedIdentifiers,
) -> Result<(), RunError> {
    let t = record::StageStart::now();
    let mut parts: Vec<PartitionToCommit> = staged_outputs
        .iter()
        .map(|o| PartitionToCommit {
            name: o.name.clone(),
            staged: o.staged.clone(),
            target: o.target.clone(),
        })
        .collect();
    let outputs = parts.len();
    let rewrite = stage_history(r, erased).await?;
    parts.extend(rewrite.parts.iter().cloned());
    let published = r
        .committer
        .commit(&r.run_id, "outputs", &parts, Some(lease))
        .await?;
    for (done, part) in published.iter().zip(&parts).take(outputs) {
        tracing::info!(output = %part.name, rows = done.rows, files = done.files.len(), "output published");
        p.record
            .outputs
            .push(record::partition(&part.name, &r.bound.warehouse, done));
    }
    if !rewrite.parts.is_empty() {
        let erasure = p.record.erasure.get_or_insert_with(Default::default);
        erasure.history_partitions_rewritten = rewrite.parts.len() as u64;
        erasure.history_rows_removed = rewrite.rows_removed.clone();
    }
    let store = &r.bound.warehouse.store;
    let prefix = &r.bound.warehouse.prefix;
    if rewrite.looked() {
        // Reports first: the history counts as clean only once they are too.
        match crate::report::forget_erased(store, prefix, &r.job.name, r.bound.date, erased).await {
            Ok(dates) => {
                for date in dates {
                    tracing::info!(%date, "earlier run report showed an erased person: deleted");
                }
                if let Err(e) = history::mark_clean(store, prefix, &rewrite).await {
                    tracing::warn!(error = %e, "could not record the erased set the history is clean for");
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "earlier run reports could not be checked for erased people; the next run tries again")
            }
        }
    }
    record::stage(&mut p.record, "commit_outputs", t);
    Ok(())
}

/// The earlier partitions to rewrite (`crate::erasure::history`): none unless
/// the job's `erasure.rewrite_history` is on.
async fn stage_history(
    r: &Run<'_>,
    erased: &ErasedIdentifiers,
) -> Result<HistoryRewrite, RunError> {
    if !r.job.erasure.as_ref().is_some_and(|e| e.rewrite_history) {
        return Ok(HistoryRewrite::default());
    }
    let mut outputs = Vec::new();
    for o in &r.job.outputs {
        if o.partition_by
            .iter()
            .map(String::as_str)
            .ne([SNAPSHOT_COLUMN])
        {
            continue;
        }
        let (_, location) = dag::confined_location(&r.bound, o)?;
        outputs.push(HistoryOutput {
            name: o.name.clone(),
            dir: location.prefix,
            compression: o.compression,
            layout: o.layout.clone(),
        });
    }
    let tmp = r.committer.staging_dir(&r.run_id);
    Ok(history::stage(
        &r.bound.warehouse.store,
        &r.bound.warehouse.prefix,
        &outputs,
        r.bound.date,
        erased,
        &tmp,
    )
    .await?)
}
