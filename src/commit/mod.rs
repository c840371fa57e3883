//! The atomic commit: how a run's staged partitions become visible together, and
//! how a crashed run's debris is rolled back or forward by the next run.
//!
//! Every output (and each extract's rejects) is first written under the run's
//! private staging folder `_c360/tmp/<run_id>/…` and verified (file count, row
//! counts from the Parquet footers). Then, with the warehouse lease held
//! ([`lease`]), one of two protocols publishes them. Both write a commit record
//! `_c360/commits/<run_id>-<label>.json` whose `committed` state is the single
//! commit point of the whole set of partitions:
//!
//! ```text
//!  local disk (file://): directory renames
//!  ────────────────────────────────────────────────────────────────────────────
//!  1 verify   staged dirs: file count, footer rows == rows written
//!  2 record   commits/<run>-<label>.json  {state: prepared}
//!  3 marker   tmp/<run>/…/D/_SUCCESS      (inside each staged dir, last file)
//!  4 record   {state: committed}          ◄── commit point
//!  5 swap     per partition: exchange(tmp/<run>/…/D, out/D)  (renameat2 EXCHANGE;
//!             rename when out/D is new; two renames where EXCHANGE is unsupported)
//!  6 remove   the swapped-out old dir (now under tmp/<run>/…)
//!  7 delete   the record
//!
//!  object stores (s3://, gs://, az://): run-unique names + manifest + _SUCCESS
//!  ────────────────────────────────────────────────────────────────────────────
//!  1 verify   staged files: count, footer rows
//!  2 record   {state: prepared, files to copy}
//!  3 copy     tmp/<run>/…/part-N.parquet -> out/D/part-N-<run>.parquet
//!  4 record   {state: committed, every partition's new _SUCCESS}  ◄── commit point
//!  5 marker   put out/D/_SUCCESS (overwrite: one atomic switch per partition)
//!  6 delete   out/D/* not listed in the new _SUCCESS (the previous run's files)
//!  7 delete   the record
//! ```
//!
//! What readers see. c360 itself reads only the files a `_SUCCESS` lists
//! (`outputs::committed_files`), so it sees, per partition, the old snapshot until
//! step 5 and the new one after it, never a mix. On local disk a plain-Parquet
//! reader globbing `out/*/*.parquet` (DuckDB, Spark) sees the same, because the
//! swap is one rename of the whole folder. On object stores a plain reader sees
//! the new run-unique files appear during step 3 next to the old ones (duplicate
//! rows) until step 6: it must read the files `_SUCCESS` lists, or read only
//! while no run is committing. Across partitions a reader can, for the few
//! milliseconds of step 5, see one output new and another still old.
//!
//! Crashes. A run killed before step 4 changed nothing outside its staging
//! folder and the record: the next run rolls it back (deletes its copies and
//! staging). A run killed after step 4 is rolled forward by the next run (the
//! record holds everything needed), so the set of partitions still becomes
//! visible together. Recovery runs under the lease, at the start of every run.

pub mod dirs;
pub mod lease;
mod record;
mod recover;
mod verify;

use std::sync::Arc;

use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

use crate::outputs::{self, PublishedPartition, StagedPartition, SuccessMarker};
pub use dirs::{DirectoryOps, StdDirectoryOps};
pub use lease::{Lease, LeaseHolder};
pub use record::{CommitRecord, CommitState, RecordPartition};
pub use recover::Recovery;
pub use verify::footer_rows;

/// Errors of the commit layer.
#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    #[error(
        "commit: storage error on {path}: {}",
        crate::storage::describe(source)
    )]
    Store {
        path: String,
        source: object_store::Error,
    },
    #[error("commit: {path}: {source}")]
    Directory {
        path: String,
        source: std::io::Error,
    },
    #[error("commit: staged partition {dir} failed verification: {message}")]
    Verify { dir: String, message: String },
    #[error("commit: unreadable {path}: {message}")]
    Record { path: String, message: String },
    #[error(
        "commit: another run holds the warehouse lease: run {} of job {} on {} (pid {}), until {}",
        .0.run_id, .0.job, .0.host, .0.pid, .0.expires_at
    )]
    Locked(Box<LeaseHolder>),
    #[error(
        "commit: the lease of run {run_id} was lost (expired or taken over); nothing more is published"
    )]
    LeaseLost { run_id: String },
    #[error(transparent)]
    Sink(#[from] SinkError),
    #[error(transparent)]
    Storage(#[from] crate::storage::StorageError),
}

use crate::outputs::SinkError;

/// How partitions are swapped in.
#[derive(Debug, Clone)]
pub enum CommitMode {
    /// Local disk: whole partition folders are renamed into place.
    Directories(Arc<dyn DirectoryOps>),
    /// Object stores: run-unique file names, then `_SUCCESS` as the switch.
    Manifest,
}

/// One staged partition and where it goes.
#[derive(Debug, Clone)]
pub struct PartitionToCommit {
    /// Output (or `rejects/<extract>`) name, for messages.
    pub name: String,
    pub staged: StagedPartition,
    /// The partition folder readers use, e.g. `wh/customer_360/snapshot_date=D`.
    pub target: Path,
}

/// Publishes staged partitions of one warehouse (see the module docs).
#[derive(Debug, Clone)]
pub struct Committer {
    store: Arc<dyn ObjectStore>,
    warehouse: Path,
    mode: CommitMode,
}

impl Committer {
    /// A committer over `store`, whose warehouse root is `warehouse` in it.
    pub fn new(store: Arc<dyn ObjectStore>, warehouse: Path, mode: CommitMode) -> Self {
        Self {
            store,
            warehouse,
            mode,
        }
    }

    /// The protocol that fits `location`: directory renames on local disk
    /// (`file://`, a root `LocalFileSystem`), manifests everywhere else.
    pub fn for_location(location: &crate::storage::StorageLocation) -> Self {
        let mode = if location.is_local_disk() {
            CommitMode::Directories(Arc::new(StdDirectoryOps::root()))
        } else {
            CommitMode::Manifest
        };
        Self::new(location.store.clone(), location.prefix.clone(), mode)
    }

    /// The warehouse root inside the store.
    pub fn warehouse(&self) -> &Path {
        &self.warehouse
    }

    /// The store everything is written to.
    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    /// `_c360/tmp/<run_id>`: the run's staging folder.
    pub fn staging_dir(&self, run_id: &str) -> Path {
        self.internal().join("tmp").join(run_id)
    }

    fn internal(&self) -> Path {
        self.warehouse.clone().join("_c360")
    }

    fn record_path(&self, run_id: &str, label: &str) -> Path {
        self.internal()
            .join("commits")
            .join(format!("{run_id}-{label}.json"))
    }

    /// Verifies and publishes `parts` as one unit. `lease`, when given, is
    /// checked just before the commit point, so a run that lost its lease
    /// publishes nothing.
    pub async fn commit(
        &self,
        run_id: &str,
        label: &str,
        parts: &[PartitionToCommit],
        lease: Option<&Lease>,
    ) -> Result<Vec<PublishedPartition>, CommitError> {
        for part in parts {
            verify::verify_staged(&self.store, &part.staged).await?;
        }
        let mode_name = match self.mode {
            CommitMode::Directories(_) => "directories",
            CommitMode::Manifest => "manifest",
        };
        let mut record = CommitRecord {
            run_id: run_id.to_string(),
            label: label.to_string(),
            mode: mode_name.to_string(),
            state: CommitState::Prepared,
            partitions: parts
                .iter()
                .map(|p| RecordPartition::plan(run_id, p, &self.mode))
                .collect(),
        };
        let record_path = self.record_path(run_id, label);
        record::write(&self.store, &record_path, &record).await?;
        for (part, planned) in parts.iter().zip(&record.partitions) {
            self.prepare(part, planned).await?;
        }
        if let Some(lease) = lease {
            lease.ensure_held().await?;
        }
        record.state = CommitState::Committed;
        record::write(&self.store, &record_path, &record).await?;
        for planned in &record.partitions {
            self.apply(run_id, planned).await?;
        }
        delete_if_present(&self.store, &record_path).await?;
        Ok(record
            .partitions
            .iter()
            .map(|p| {
                let dir = Path::from(p.target.as_str());
                PublishedPartition {
                    files: p
                        .marker
                        .files
                        .iter()
                        .map(|f| dir.clone().join(f.as_str()))
                        .collect(),
                    rows: p.marker.rows,
                    dir,
                }
            })
            .collect())
    }

    /// Steps 3: make the partition's new content complete somewhere readers do not look.
    async fn prepare(
        &self,
        part: &PartitionToCommit,
        planned: &RecordPartition,
    ) -> Result<(), CommitError> {
        match &self.mode {
            CommitMode::Directories(_) => {
                put_marker(&self.store, &part.staged.dir, &planned.marker).await
            }
            CommitMode::Manifest => {
                let target = Path::from(planned.target.as_str());
                for (file, name) in part.staged.files.iter().zip(&planned.marker.files) {
                    let to = target.clone().join(name.as_str());
                    self.store
                        .copy(&file.path, &to)
                        .await
                        .map_err(store_err(&to))?;
                }
                Ok(())
            }
        }
    }

    /// Steps 5–6 for one partition; idempotent, so recovery can roll forward with it.
    async fn apply(&self, run_id: &str, planned: &RecordPartition) -> Result<(), CommitError> {
        let target = Path::from(planned.target.as_str());
        let current = outputs::read_marker(&self.store, &target).await?;
        let already = current.as_ref().is_some_and(|m| m.run_id == run_id);
        match &self.mode {
            CommitMode::Directories(dirs) => {
                let staged = Path::from(planned.staged_dir.as_str());
                if !already {
                    dirs.swap_in(&staged, &target)?;
                }
                // After the swap the staged path holds the old partition (or nothing).
                dirs.remove_all(&staged)?;
            }
            CommitMode::Manifest => {
                if !already {
                    put_marker(&self.store, &target, &planned.marker).await?;
                }
                remove_unlisted(&self.store, &target, &planned.marker).await?;
            }
        }
        Ok(())
    }

    /// Removes the run's staging folder, unless a commit record of the run is
    /// left (a commit that failed midway): the next run's recovery needs both.
    pub async fn remove_staging(&self, run_id: &str) -> Result<(), CommitError> {
        let commits = self.internal().join("commits");
        let listing = self
            .store
            .list_with_delimiter(Some(&commits))
            .await
            .map_err(store_err(&commits))?;
        let prefix = format!("{run_id}-");
        if listing.objects.iter().any(|o| {
            o.location
                .filename()
                .is_some_and(|f| f.starts_with(&prefix))
        }) {
            tracing::warn!(
                run_id,
                "commit incomplete: staging kept for the next run to finish or undo it"
            );
            return Ok(());
        }
        let dir = self.staging_dir(run_id);
        match &self.mode {
            CommitMode::Directories(dirs) => dirs.remove_all(&dir),
            CommitMode::Manifest => Ok(outputs::remove_prefix(&self.store, &dir).await?),
        }
    }

    /// Rolls back or forward what crashed runs left, and removes every staging
    /// folder except `live_run`'s. Call with the lease held.
    pub async fn recover(&self, live_run: &str) -> Result<Recovery, CommitError> {
        recover::recover(self, live_run).await
    }
}

/// Writes `dir/_SUCCESS`.
async fn put_marker(
    store: &Arc<dyn ObjectStore>,
    dir: &Path,
    marker: &SuccessMarker,
) -> Result<(), CommitError> {
    let path = dir.clone().join(outputs::SUCCESS_MARKER);
    let body = serde_json::to_vec(marker).map_err(|e| CommitError::Record {
        path: path.to_string(),
        message: e.to_string(),
    })?;
    store
        .put(&path, PutPayload::from(body))
        .await
        .map_err(store_err(&path))?;
    Ok(())
}

/// Deletes every object directly in `dir` that `marker` does not list (keeps `_SUCCESS`).
async fn remove_unlisted(
    store: &Arc<dyn ObjectStore>,
    dir: &Path,
    marker: &SuccessMarker,
) -> Result<(), CommitError> {
    let listing = store
        .list_with_delimiter(Some(dir))
        .await
        .map_err(store_err(dir))?;
    for object in listing.objects {
        let name = object.location.filename().unwrap_or_default();
        if name != outputs::SUCCESS_MARKER && !marker.files.iter().any(|f| f == name) {
            delete_if_present(store, &object.location).await?;
        }
    }
    Ok(())
}

async fn delete_if_present(store: &Arc<dyn ObjectStore>, path: &Path) -> Result<(), CommitError> {
    match store.delete(path).await {
        Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
        Err(e) => Err(store_err(path)(e)),
    }
}

fn store_err(path: &Path) -> impl FnOnce(object_store::Error) -> CommitError {
    let path = path.to_string();
    move |source| CommitError::Store { path, source }
}
