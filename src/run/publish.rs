//! The commit stage: every staged output published at once by the commit
//! protocol (`crate::commit`), then recorded in the run record.

use super::{Progress, Run, RunError, record};
use crate::commit::{Lease, PartitionToCommit};
use crate::outputs::StagedOutput;

/// Commits the staged outputs; records each published partition in `p`.
pub(super) async fn commit_outputs(
    r: &Run<'_>,
    lease: &Lease,
    p: &mut Progress,
    staged_outputs: &[StagedOutput],
) -> Result<(), RunError> {
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
        .commit(&r.run_id, "outputs", &parts, Some(lease))
        .await?;
    for (done, part) in published.iter().zip(&parts) {
        tracing::info!(output = %part.name, rows = done.rows, files = done.files.len(), "output published");
        p.record
            .outputs
            .push(record::partition(&part.name, &r.bound.warehouse, done));
    }
    record::stage(&mut p.record, "commit_outputs", t);
    Ok(())
}
