//! Recovery at the start of a run: finish or undo the commits of crashed runs
//! (from their records), then delete their staging folders. Runs under the
//! lease, so every other run's staging folder belongs to a dead run.

use std::collections::BTreeSet;

use object_store::path::Path;

use super::record::{self, CommitRecord, CommitState};
use super::{CommitError, CommitMode, Committer, delete_if_present, store_err};
use crate::outputs;

/// What recovery did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recovery {
    /// Commits undone (crashed before their commit point): `run_id-label`.
    pub rolled_back: Vec<String>,
    /// Commits finished (crashed after their commit point): `run_id-label`.
    pub rolled_forward: Vec<String>,
    /// Runs whose staging folder or commit record was left behind.
    pub dead_runs: BTreeSet<String>,
}

pub(super) async fn recover(c: &Committer, live_run: &str) -> Result<Recovery, CommitError> {
    let mut recovery = Recovery::default();
    let commits = c.internal().join("commits");
    if let CommitMode::Directories(_) = c.mode {
        // Records a killed run was writing: never complete, so never applied.
        crate::storage::remove_interrupted_writes(&commits)?;
    }
    let listing = c
        .store
        .list_with_delimiter(Some(&commits))
        .await
        .map_err(store_err(&commits))?;
    let mut records: Vec<Path> = listing.objects.into_iter().map(|o| o.location).collect();
    records.sort();
    for path in records {
        let record = record::read(&c.store, &path).await?;
        if record.run_id == live_run {
            continue;
        }
        let id = format!("{}-{}", record.run_id, record.label);
        match record.state {
            CommitState::Prepared => {
                roll_back(c, &record).await?;
                recovery.rolled_back.push(id);
            }
            CommitState::Committed => {
                for partition in &record.partitions {
                    c.apply(&record.run_id, partition).await?;
                }
                recovery.rolled_forward.push(id);
            }
        }
        recovery.dead_runs.insert(record.run_id.clone());
        delete_if_present(&c.store, &path).await?;
    }

    let tmp = c.internal().join("tmp");
    let listing = c
        .store
        .list_with_delimiter(Some(&tmp))
        .await
        .map_err(store_err(&tmp))?;
    for dir in listing.common_prefixes {
        let Some(run) = dir.filename().map(String::from) else {
            continue;
        };
        if run == live_run {
            continue;
        }
        match &c.mode {
            CommitMode::Directories(dirs) => dirs.remove_all(&dir)?,
            CommitMode::Manifest => outputs::remove_prefix(&c.store, &dir).await?,
        }
        recovery.dead_runs.insert(run);
    }
    if !recovery.dead_runs.is_empty() {
        tracing::warn!(
            runs = ?recovery.dead_runs,
            rolled_back = recovery.rolled_back.len(),
            rolled_forward = recovery.rolled_forward.len(),
            "cleaned up after crashed runs"
        );
    }
    Ok(recovery)
}

/// Before the commit point only object stores have anything outside staging:
/// the run-unique copies, which no `_SUCCESS` lists yet.
async fn roll_back(c: &Committer, record: &CommitRecord) -> Result<(), CommitError> {
    if let CommitMode::Directories(_) = c.mode {
        return Ok(());
    }
    for partition in &record.partitions {
        let target = Path::from(partition.target.as_str());
        let current = outputs::read_marker(&c.store, &target).await?;
        for name in &partition.marker.files {
            let listed = current
                .as_ref()
                .is_some_and(|m| m.files.iter().any(|f| f == name));
            if !listed {
                delete_if_present(&c.store, &target.clone().join(name.as_str())).await?;
            }
        }
    }
    Ok(())
}
