//! Reading back what the commit published: the `_SUCCESS` marker of a partition,
//! the files it lists, and the newest committed daily snapshot before a date.
//! Readers inside c360 (`c360 query`, the run report) read only marker-listed
//! files, so they never see a half-published partition.

use std::sync::Arc;

use chrono::NaiveDate;
use datafusion::prelude::SessionContext;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};

use super::SinkError;
use crate::storage::StorageLocation;

/// The marker written last in every published partition.
pub const SUCCESS_MARKER: &str = "_SUCCESS";

/// The content of `_SUCCESS`: which run published the partition and exactly which
/// files belong to it. Readers inside c360 read only the files listed here.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SuccessMarker {
    pub run_id: String,
    /// File names (not paths) inside the partition folder.
    pub files: Vec<String>,
    pub rows: u64,
}

impl SuccessMarker {
    /// The files it lists, as paths inside `partition`.
    pub fn paths(&self, partition: &Path) -> Vec<Path> {
        self.files
            .iter()
            .map(|name| partition.clone().join(name.as_str()))
            .collect()
    }
}

/// The `_SUCCESS` marker of `partition`: `None` when there is none (never
/// written, or a first publish still in progress or interrupted).
pub async fn read_marker(
    store: &Arc<dyn ObjectStore>,
    partition: &Path,
) -> Result<Option<SuccessMarker>, SinkError> {
    let marker = partition.clone().join(SUCCESS_MARKER);
    let bytes = match store.get(&marker).await {
        Ok(result) => result.bytes().await,
        Err(object_store::Error::NotFound { .. }) => return Ok(None),
        Err(e) => Err(e),
    }
    .map_err(|source| SinkError::Store {
        path: marker.to_string(),
        source,
    })?;
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| SinkError::Marker {
            path: marker.to_string(),
            message: e.to_string(),
        })
}

/// The files of a committed partition: `None` when `partition` has no `_SUCCESS`
/// (never written, or a first publish in progress or interrupted). While a later
/// run replaces the partition, this keeps returning one complete snapshot: the
/// old files until the new marker is in place, the new files after.
pub async fn committed_files(
    store: &Arc<dyn ObjectStore>,
    partition: &Path,
) -> Result<Option<Vec<Path>>, SinkError> {
    Ok(read_marker(store, partition)
        .await?
        .map(|marker| marker.paths(partition)))
}

/// The partition column of daily snapshots: the run's logical date.
pub const SNAPSHOT_COLUMN: &str = "snapshot_date";

/// The Hive folder name of the snapshot of `date` (`snapshot_date=2026-03-01`).
pub fn snapshot_partition(date: NaiveDate) -> String {
    format!("{SNAPSHOT_COLUMN}={date}")
}

/// A committed snapshot partition of an output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedSnapshot {
    pub date: NaiveDate,
    /// The partition folder.
    pub partition: Path,
    pub marker: SuccessMarker,
}

impl CommittedSnapshot {
    /// The files the marker lists, as paths.
    pub fn files(&self) -> Vec<Path> {
        self.marker.paths(&self.partition)
    }
}

/// The newest committed snapshot under `output` strictly before `date`: the latest
/// `snapshot_date=` partition with a `_SUCCESS` marker. Strictly before, so a rerun
/// or backfill of a date never reads its own earlier result.
pub async fn latest_committed_before(
    store: &Arc<dyn ObjectStore>,
    output: &Path,
    date: NaiveDate,
) -> Result<Option<CommittedSnapshot>, SinkError> {
    let mut dates = snapshot_partitions(store, output).await?;
    dates.retain(|(day, _)| *day < date);
    for (day, dir) in dates.into_iter().rev() {
        if let Some(marker) = read_marker(store, &dir).await? {
            return Ok(Some(CommittedSnapshot {
                date: day,
                partition: dir,
                marker,
            }));
        }
    }
    Ok(None)
}

/// The `snapshot_date=` folders under `output`, oldest first, committed or not.
pub async fn snapshot_partitions(
    store: &Arc<dyn ObjectStore>,
    output: &Path,
) -> Result<Vec<(NaiveDate, Path)>, SinkError> {
    let prefix = format!("{SNAPSHOT_COLUMN}=");
    let mut dates = hive_folders(store, output, &prefix)
        .await?
        .into_iter()
        .filter_map(|(name, dir)| {
            let day = NaiveDate::parse_from_str(&name, "%Y-%m-%d").ok()?;
            Some((day, dir))
        })
        .collect::<Vec<_>>();
    dates.sort_by_key(|(day, _)| *day);
    Ok(dates)
}

/// The folders directly under `dir` named `<prefix><value>`: (value, folder).
pub async fn hive_folders(
    store: &Arc<dyn ObjectStore>,
    dir: &Path,
    prefix: &str,
) -> Result<Vec<(String, Path)>, SinkError> {
    let listing = store
        .list_with_delimiter(Some(dir))
        .await
        .map_err(|source| SinkError::Store {
            path: dir.to_string(),
            source,
        })?;
    Ok(listing
        .common_prefixes
        .into_iter()
        .filter_map(|folder| {
            let value = folder.filename()?.strip_prefix(prefix)?.to_string();
            Some((value, folder))
        })
        .collect())
}

/// Where an extract's rejects of the run of `date` are published under the
/// warehouse `prefix`: `rejects/extract=<extract>/run_date=<date>`.
pub fn rejects_partition(prefix: &Path, extract: &str, date: NaiveDate) -> Path {
    prefix
        .clone()
        .join("rejects")
        .join(format!("extract={extract}"))
        .join(format!("run_date={date}"))
}

/// What a reader of an output folder sees as of a date.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadableSnapshot {
    /// The files its `_SUCCESS` lists.
    pub files: Vec<Path>,
    /// The snapshot's date; `None` for an output without `snapshot_date=` partitions.
    pub date: Option<NaiveDate>,
    pub rows: u64,
}

/// The committed content of the output folder `dir` strictly before `before`:
/// the latest `snapshot_date=` partition with a `_SUCCESS` marker, or for an
/// unpartitioned output the folder's own marker. `None`: nothing committed.
pub async fn readable_snapshot(
    store: &Arc<dyn ObjectStore>,
    dir: &Path,
    before: NaiveDate,
) -> Result<Option<ReadableSnapshot>, SinkError> {
    if let Some(snapshot) = latest_committed_before(store, dir, before).await? {
        return Ok(Some(ReadableSnapshot {
            files: snapshot.files(),
            date: Some(snapshot.date),
            rows: snapshot.marker.rows,
        }));
    }
    Ok(read_marker(store, dir)
        .await?
        .map(|marker| ReadableSnapshot {
            files: marker.paths(dir),
            date: None,
            rows: marker.rows,
        }))
}

/// Registers as table `name` on `ctx` the snapshot of the output folder `dir`
/// (in `warehouse`'s store) strictly before `before` ([`readable_snapshot`]).
/// `None`, and nothing registered, when nothing is committed there.
pub async fn register_committed(
    ctx: &SessionContext,
    name: &str,
    warehouse: &StorageLocation,
    dir: &Path,
    before: NaiveDate,
) -> Result<Option<ReadableSnapshot>, SinkError> {
    let Some(snapshot) = readable_snapshot(&warehouse.store, dir, before).await? else {
        return Ok(None);
    };
    if snapshot.files.is_empty() {
        return Ok(None);
    }
    crate::engine::register_staged_files(ctx, name, warehouse.store_url.as_str(), &snapshot.files)
        .await
        .map_err(|source| SinkError::Read {
            table: name.to_string(),
            source,
        })?;
    Ok(Some(snapshot))
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::PutPayload;
    use object_store::memory::InMemory;

    #[tokio::test]
    async fn committed_files_are_the_ones_the_marker_lists() {
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let partition = Path::from("wh/out/snapshot_date=2026-01-01");
        // A stray file next to the committed one is not part of the snapshot.
        for name in ["part-00000-r1.parquet", "part-00000-r2.parquet"] {
            store
                .put(&partition.clone().join(name), PutPayload::from_static(b"x"))
                .await
                .unwrap();
        }
        assert_eq!(committed_files(&store, &partition).await.unwrap(), None);
        let marker = br#"{"run_id":"r1","files":["part-00000-r1.parquet"],"rows":3}"#;
        store
            .put(
                &partition.clone().join(SUCCESS_MARKER),
                PutPayload::from_static(marker),
            )
            .await
            .unwrap();
        assert_eq!(
            committed_files(&store, &partition).await.unwrap(),
            Some(vec![partition.clone().join("part-00000-r1.parquet")])
        );
        store
            .put(
                &partition.clone().join(SUCCESS_MARKER),
                PutPayload::from_static(b"not json"),
            )
            .await
            .unwrap();
        assert!(matches!(
            committed_files(&store, &partition).await,
            Err(SinkError::Marker { .. })
        ));
    }
}
