//! `erasure.rewrite_history: true` (docs/rules.md "Erasure"): a run also removes
//! the erased people from the earlier snapshots of every output and from the
//! rejects published by earlier runs, for users whose retention demands it.
//!
//! The rewritten partitions are staged under the run's staging folder and
//! published by the run's own output commit, with its new snapshot: a killed run
//! leaves every earlier partition as it was, and readers see each partition
//! whole, old or rewritten (`crate::commit`).
//!
//! Which rows of an earlier partition go:
//! - **snapshot outputs** (`snapshot_date=D`): a row whose customer key column
//!   (`customer_key`, or any column named `…_key`, as `identity_merges`'
//!   `surviving_key`) holds a key that the identity map *of the same date*
//!   gives one of the erased identifiers; or whose identifier columns name one
//!   itself: `id_type` + `id_value`, `source_system` + `source_customer_id`, a
//!   normalised `email`, a `phone`. The identity map is the output with
//!   `id_type`, `id_value` and `customer_key` columns. Outputs without such
//!   columns (aggregates such as `segment_summary`, `clv_model`) hold no row of
//!   a person and stay as they are.
//! - **rejects** (`rejects/extract=*/run_date=D`): the text match of the
//!   published rejects (`crate::source::ErasedIdentifiers::carried_by`).
//!
//! Cost: every earlier partition's identifier columns are read once per new set
//! of erased identifiers; a partition is rewritten only when it holds a row to
//! remove. The set the history was last cleaned for is recorded in
//! `_c360/erasure/history.json` (a fingerprint, no identifier), so a nightly run
//! whose erased set did not change reads no history at all.

mod rows;

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use chrono::NaiveDate;
use datafusion::arrow::array::Array;
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

use super::{ErasedIdentifiers, ErasureError};
use crate::commit::PartitionToCommit;
use crate::job::{Compression, FileLayout};
use crate::outputs::{self, SinkError, StagedPartition, WrittenFile};
use rows::{IDENTITY_MAP_COLUMNS, RowMatcher, any_erased, filter_partition, open, read_err, text};

/// An output whose earlier `snapshot_date=` partitions may be rewritten.
#[derive(Debug, Clone)]
pub struct HistoryOutput {
    pub name: String,
    /// The output folder (its partitions are `snapshot_date=D` below it).
    pub dir: Path,
    pub compression: Compression,
    pub layout: FileLayout,
}

/// The earlier partitions a run rewrites, staged and ready for its commit.
#[derive(Debug, Default)]
pub struct HistoryRewrite {
    /// One per rewritten partition.
    pub parts: Vec<PartitionToCommit>,
    /// Output (or `rejects/<extract>`) -> rows left out over its earlier partitions.
    pub rows_removed: BTreeMap<String, u64>,
    /// The fingerprint of the identifiers the history is clean for once the
    /// parts are committed; `None` when nothing was looked at.
    clean_for: Option<u64>,
}

impl HistoryRewrite {
    /// Whether [`stage`] looked at the history (the erased set was new to it).
    pub fn looked(&self) -> bool {
        self.clean_for.is_some()
    }
}

/// What `_c360/erasure/history.json` holds.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct HistoryMarker {
    /// [`ErasedIdentifiers::fingerprint`] of the set the history was last cleaned for.
    clean_for: u64,
}

fn marker_path(warehouse: &Path) -> Path {
    warehouse
        .clone()
        .join("_c360")
        .join("erasure")
        .join("history.json")
}

fn store_err(path: &Path) -> impl Fn(object_store::Error) -> ErasureError + '_ {
    move |source| {
        ErasureError::Sink(SinkError::Store {
            path: path.to_string(),
            source,
        })
    }
}

/// Stages, under `tmp`, every partition of `outputs` and of the rejects under
/// `warehouse` for a date other than `date` that holds a row of an erased
/// person, without those rows (module docs). Nothing when `identifiers` is empty
/// or the history is already clean for them.
pub async fn stage(
    store: &Arc<dyn ObjectStore>,
    warehouse: &Path,
    outputs: &[HistoryOutput],
    date: NaiveDate,
    identifiers: &ErasedIdentifiers,
    tmp: &Path,
) -> Result<HistoryRewrite, ErasureError> {
    let mut rewrite = HistoryRewrite::default();
    if identifiers.is_empty() {
        return Ok(rewrite);
    }
    let fingerprint = identifiers.fingerprint();
    let marker = marker_path(warehouse);
    match store.get(&marker).await {
        Ok(found) => {
            let bytes = found.bytes().await.map_err(store_err(&marker))?;
            if serde_json::from_slice::<HistoryMarker>(&bytes)
                .is_ok_and(|m| m.clean_for == fingerprint)
            {
                return Ok(rewrite);
            }
        }
        Err(object_store::Error::NotFound { .. }) => {}
        Err(e) => return Err(store_err(&marker)(e)),
    }
    rewrite.clean_for = Some(fingerprint);
    let mut earlier = Vec::with_capacity(outputs.len());
    for output in outputs {
        earlier.push((output, earlier_partitions(store, &output.dir, date).await?));
    }
    let keys = erased_keys_by_date(store, &earlier, identifiers).await?;
    let no_keys = HashSet::new();
    for (output, partitions) in earlier {
        for (day, partition, files) in partitions {
            let matcher = RowMatcher {
                keys: keys.get(&day).unwrap_or(&no_keys),
                identifiers,
            };
            if !any_erased(store, &files, &matcher).await? {
                continue;
            }
            let out = tmp
                .clone()
                .join("history")
                .join(output.name.as_str())
                .join(outputs::snapshot_partition(day));
            let (staged, removed) = filter_partition(store, &files, &matcher, output, &out).await?;
            tracing::info!(output = %output.name, snapshot = %day, rows = removed, "earlier snapshot rewritten without erased people");
            *rewrite.rows_removed.entry(output.name.clone()).or_default() += removed;
            rewrite.parts.push(PartitionToCommit {
                name: format!("{} (snapshot {day})", output.name),
                staged,
                target: partition,
            });
        }
    }
    stage_rejects(store, warehouse, date, identifiers, tmp, &mut rewrite).await?;
    Ok(rewrite)
}

/// Records that the history is clean for the identifiers [`stage`] looked at;
/// call once its parts are committed. Losing this only costs the next run a
/// scan that finds nothing.
pub async fn mark_clean(
    store: &Arc<dyn ObjectStore>,
    warehouse: &Path,
    rewrite: &HistoryRewrite,
) -> Result<(), ErasureError> {
    let Some(clean_for) = rewrite.clean_for else {
        return Ok(());
    };
    let path = marker_path(warehouse);
    let body = serde_json::to_vec(&HistoryMarker { clean_for }).unwrap_or_default();
    store
        .put(&path, PutPayload::from(body))
        .await
        .map_err(store_err(&path))?;
    Ok(())
}

/// Earlier published rejects of every extract, filtered like this run's.
async fn stage_rejects(
    store: &Arc<dyn ObjectStore>,
    warehouse: &Path,
    date: NaiveDate,
    identifiers: &ErasedIdentifiers,
    tmp: &Path,
    rewrite: &mut HistoryRewrite,
) -> Result<(), ErasureError> {
    let root = warehouse.clone().join("rejects");
    for (extract, dir) in outputs::hive_folders(store, &root, "extract=").await? {
        for (day, partition) in outputs::hive_folders(store, &dir, "run_date=").await? {
            if day == date.to_string() {
                continue;
            }
            let Some(files) = outputs::committed_files(store, &partition).await? else {
                continue;
            };
            let committed = StagedPartition {
                dir: partition.clone(),
                files: files
                    .into_iter()
                    .map(|path| WrittenFile {
                        path,
                        rows: 0,
                        bytes: 0,
                    })
                    .collect(),
            };
            let out = tmp
                .clone()
                .join("history")
                .join("rejects")
                .join(extract.as_str())
                .join(day.as_str());
            let filtered = super::filter_staged(store, &committed, identifiers, &out).await?;
            if filtered.removed == 0 {
                continue;
            }
            tracing::info!(extract = %extract, run_date = %day, rows = filtered.removed, "earlier rejects rewritten without erased people");
            *rewrite
                .rows_removed
                .entry(format!("rejects/{extract}"))
                .or_default() += filtered.removed;
            rewrite.parts.push(PartitionToCommit {
                name: format!("rejects/{extract} (run {day})"),
                staged: filtered.staged,
                target: partition,
            });
        }
    }
    Ok(())
}

/// A committed earlier partition: its date, folder and the files its `_SUCCESS` lists.
type EarlierPartition = (NaiveDate, Path, Vec<Path>);

/// The committed `snapshot_date=` partitions under `dir` for dates other than `date`.
async fn earlier_partitions(
    store: &Arc<dyn ObjectStore>,
    dir: &Path,
    date: NaiveDate,
) -> Result<Vec<EarlierPartition>, ErasureError> {
    let mut found = Vec::new();
    for (day, partition) in outputs::snapshot_partitions(store, dir).await? {
        if day == date {
            continue;
        }
        if let Some(files) = outputs::committed_files(store, &partition).await? {
            found.push((day, partition, files));
        }
    }
    Ok(found)
}

/// Per earlier date, the customer keys the identity map of that date gives an
/// erased identifier (empty when there is no identity map output). The identity
/// map is the output whose files have [`IDENTITY_MAP_COLUMNS`]: its first file
/// tells, and every file is opened once.
async fn erased_keys_by_date(
    store: &Arc<dyn ObjectStore>,
    earlier: &[(&HistoryOutput, Vec<EarlierPartition>)],
    identifiers: &ErasedIdentifiers,
) -> Result<BTreeMap<NaiveDate, HashSet<String>>, ErasureError> {
    let mut by_date = BTreeMap::new();
    'outputs: for (_, partitions) in earlier {
        for (day, _, files) in partitions {
            for file in files {
                let Some(mut batches) = open(store, file, &IDENTITY_MAP_COLUMNS).await? else {
                    // Not the identity map: no other partition of it is either.
                    continue 'outputs;
                };
                let keys: &mut HashSet<String> = by_date.entry(*day).or_default();
                while let Some(batch) = batches.try_next().await.map_err(read_err(file))? {
                    let [id_type, id_value, key] = [0, 1, 2].map(|i| text(batch.column(i)));
                    let (id_type, id_value, key) = (id_type?, id_value?, key?);
                    for row in 0..batch.num_rows() {
                        if id_type.is_valid(row)
                            && id_value.is_valid(row)
                            && key.is_valid(row)
                            && identifiers.names(id_type.value(row), id_value.value(row))
                        {
                            keys.insert(key.value(row).to_string());
                        }
                    }
                }
            }
        }
    }
    Ok(by_date)
}
