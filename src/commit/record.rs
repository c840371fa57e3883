//! The commit record `_c360/commits/<run_id>-<label>.json`: what a commit is about
//! to do (`prepared`) and, once its state is `committed`, everything recovery
//! needs to finish it after a crash.

use std::sync::Arc;

use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

use super::{CommitError, CommitMode, PartitionToCommit, store_err};
use crate::outputs::{self, SuccessMarker};

/// Where a commit stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CommitState {
    /// New content is being put in place where readers do not look; a crash rolls back.
    Prepared,
    /// The commit point has passed; a crash rolls forward.
    Committed,
}

/// One partition of a commit.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RecordPartition {
    pub name: String,
    /// Partition folder readers use.
    pub target: String,
    /// The staged folder (local disk: the folder that is renamed into place).
    pub staged_dir: String,
    /// The `_SUCCESS` the partition gets: its final file names and rows.
    pub marker: SuccessMarker,
}

impl RecordPartition {
    /// Final file names: the staged names on local disk (the folder moves as a
    /// whole), run-unique names on object stores (old and new files coexist
    /// until the old ones are deleted).
    pub(super) fn plan(run_id: &str, part: &PartitionToCommit, mode: &CommitMode) -> Self {
        let files = part
            .staged
            .files
            .iter()
            .enumerate()
            .map(|(n, file)| match mode {
                CommitMode::Directories(_) => file
                    .path
                    .filename()
                    .map_or_else(|| outputs::part_name(n), String::from),
                CommitMode::Manifest => format!("part-{n:05}-{run_id}.parquet"),
            })
            .collect();
        Self {
            name: part.name.clone(),
            target: part.target.to_string(),
            staged_dir: part.staged.dir.to_string(),
            marker: SuccessMarker {
                run_id: run_id.to_string(),
                files,
                rows: part.staged.rows(),
            },
        }
    }
}

/// The whole record.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CommitRecord {
    pub run_id: String,
    pub label: String,
    /// `directories` or `manifest`.
    pub mode: String,
    pub state: CommitState,
    pub partitions: Vec<RecordPartition>,
}

/// Writes (or overwrites) the record; a single put, so it is never half written.
pub(super) async fn write(
    store: &Arc<dyn ObjectStore>,
    path: &Path,
    record: &CommitRecord,
) -> Result<(), CommitError> {
    let body = serde_json::to_vec_pretty(record).map_err(|e| CommitError::Record {
        path: path.to_string(),
        message: e.to_string(),
    })?;
    store
        .put(path, PutPayload::from(body))
        .await
        .map_err(store_err(path))?;
    Ok(())
}

/// Reads one record.
pub(super) async fn read(
    store: &Arc<dyn ObjectStore>,
    path: &Path,
) -> Result<CommitRecord, CommitError> {
    let bytes = store
        .get(path)
        .await
        .map_err(store_err(path))?
        .bytes()
        .await
        .map_err(store_err(path))?;
    serde_json::from_slice(&bytes).map_err(|e| CommitError::Record {
        path: path.to_string(),
        message: e.to_string(),
    })
}
