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

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use chrono::NaiveDate;
use datafusion::arrow::array::{Array, ArrayRef, AsArray, BooleanArray, StringArray};
use datafusion::arrow::compute::{cast, filter_record_batch};
use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::parquet::arrow::ParquetRecordBatchStreamBuilder;
use datafusion::parquet::arrow::ProjectionMask;
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

use super::{ErasedIdentifiers, ErasureError};
use crate::commit::PartitionToCommit;
use crate::job::{Compression, FileLayout};
use crate::outputs::{self, ParquetFileWriter, SinkError, StagedPartition, WrittenFile};
use crate::source::ObjectReader;

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
    let keys = erased_keys_by_date(store, outputs, date, identifiers).await?;
    let no_keys = HashSet::new();
    for output in outputs {
        for (day, partition, files) in earlier_partitions(store, &output.dir, date).await? {
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

/// The committed `snapshot_date=` partitions under `dir` for dates other than
/// `date`: (date, folder, the files its `_SUCCESS` lists).
async fn earlier_partitions(
    store: &Arc<dyn ObjectStore>,
    dir: &Path,
    date: NaiveDate,
) -> Result<Vec<(NaiveDate, Path, Vec<Path>)>, ErasureError> {
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
/// erased identifier (empty when there is no identity map output).
async fn erased_keys_by_date(
    store: &Arc<dyn ObjectStore>,
    outputs: &[HistoryOutput],
    date: NaiveDate,
    identifiers: &ErasedIdentifiers,
) -> Result<BTreeMap<NaiveDate, HashSet<String>>, ErasureError> {
    let mut by_date = BTreeMap::new();
    for output in outputs {
        for (day, _, files) in earlier_partitions(store, &output.dir, date).await? {
            for file in &files {
                let mut batches = match open(store, file, &IDENTITY_MAP_COLUMNS).await? {
                    Some(batches) => batches,
                    // Not the identity map: no other partition of it is either.
                    None => break,
                };
                let keys: &mut HashSet<String> = by_date.entry(day).or_default();
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

/// The columns that make an output the identity map, in the order read.
const IDENTITY_MAP_COLUMNS: [&str; 3] = ["id_type", "id_value", "customer_key"];

type Batches = std::pin::Pin<
    Box<
        dyn futures::Stream<Item = Result<RecordBatch, datafusion::parquet::errors::ParquetError>>
            + Send,
    >,
>;

/// The batches of Parquet file `path` with exactly `columns`, in that order;
/// `None` when it lacks one of them.
async fn open(
    store: &Arc<dyn ObjectStore>,
    path: &Path,
    columns: &[&str],
) -> Result<Option<Batches>, ErasureError> {
    projected(stream_builder(store, path).await?, path, columns)
}

/// A streaming reader of Parquet file `path`.
async fn stream_builder(
    store: &Arc<dyn ObjectStore>,
    path: &Path,
) -> Result<ParquetRecordBatchStreamBuilder<ObjectReader>, ErasureError> {
    let reader = ObjectReader::open(store, path)
        .await
        .map_err(store_err(path))?;
    ParquetRecordBatchStreamBuilder::new(reader)
        .await
        .map_err(read_err(path))
}

/// [`open`] on a reader already opened.
fn projected(
    builder: ParquetRecordBatchStreamBuilder<ObjectReader>,
    path: &Path,
    columns: &[&str],
) -> Result<Option<Batches>, ErasureError> {
    let fields = builder.parquet_schema().root_schema().get_fields();
    let mut indices = Vec::new();
    for column in columns {
        match fields.iter().position(|f| f.name() == *column) {
            Some(i) => indices.push(i),
            None => return Ok(None),
        }
    }
    let mask = ProjectionMask::roots(builder.parquet_schema(), indices.iter().copied());
    let stream = builder
        .with_projection(mask)
        .build()
        .map_err(read_err(path))?;
    // A projection yields the columns in file order; put them in `columns` order.
    let order: Vec<usize> = {
        let mut sorted = indices.clone();
        sorted.sort_unstable();
        indices
            .iter()
            .map(|i| sorted.iter().position(|s| s == i).unwrap_or(0))
            .collect()
    };
    Ok(Some(Box::pin(stream.map_ok(move |batch| {
        batch.project(&order).unwrap_or(batch)
    }))))
}

fn read_err(
    path: &Path,
) -> impl Fn(datafusion::parquet::errors::ParquetError) -> ErasureError + '_ {
    move |e| ErasureError::Read {
        path: path.to_string(),
        message: e.to_string(),
    }
}

/// A column as text (keys and identifiers are strings; anything else is cast).
fn text(column: &ArrayRef) -> Result<StringArray, ErasureError> {
    let cast = cast(column, &DataType::Utf8).map_err(|e| ErasureError::Read {
        path: "(column)".into(),
        message: e.to_string(),
    })?;
    Ok(cast.as_string::<i32>().clone())
}

/// Which rows of one earlier partition belong to an erased person (module docs).
struct RowMatcher<'a> {
    /// Customer keys of that date's identity map that an erased identifier maps to.
    keys: &'a HashSet<String>,
    identifiers: &'a ErasedIdentifiers,
}

impl RowMatcher<'_> {
    /// The columns of `names` this matcher reads.
    fn columns<'n>(names: impl Iterator<Item = &'n str>) -> Vec<&'n str> {
        names
            .filter(|n| {
                n.ends_with("_key")
                    || matches!(
                        *n,
                        "id_type"
                            | "id_value"
                            | "source_system"
                            | "source_customer_id"
                            | "email"
                            | "phone"
                    )
            })
            .collect()
    }

    /// Per row of `batch` (which holds at least [`Self::columns`]), whether it stays.
    fn keep(&self, batch: &RecordBatch) -> Result<BooleanArray, ErasureError> {
        let schema = batch.schema();
        let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        let column = |name: &str| -> Result<Option<StringArray>, ErasureError> {
            names
                .iter()
                .position(|n| *n == name)
                .map(|i| text(batch.column(i)))
                .transpose()
        };
        let keys = names
            .iter()
            .filter(|n| n.ends_with("_key"))
            .map(|n| column(n))
            .collect::<Result<Vec<_>, _>>()?
            .into_iter()
            .flatten()
            .collect::<Vec<_>>();
        let pairs = [
            (column("id_type")?, column("id_value")?, None),
            (
                column("source_system")?,
                column("source_customer_id")?,
                Some("source"),
            ),
        ];
        let email = column("email")?;
        let phone = column("phone")?;
        fn value(c: &StringArray, row: usize) -> Option<&str> {
            c.is_valid(row).then(|| c.value(row))
        }
        let mut normalised = String::new();
        let keep = (0..batch.num_rows()).map(|row| {
            let by_key = keys
                .iter()
                .any(|k| value(k, row).is_some_and(|k| self.keys.contains(k)));
            let by_pair = pairs.iter().any(|(a, b, kind)| match (a, b) {
                (Some(a), Some(b)) => match (value(a, row), value(b, row)) {
                    (Some(a), Some(b)) => match kind {
                        Some(kind) => self.identifiers.names(kind, &format!("{a}:{b}")),
                        None => self.identifiers.names(a, b),
                    },
                    _ => false,
                },
                _ => false,
            });
            let by_email = email.as_ref().and_then(|c| value(c, row)).is_some_and(|e| {
                normalised.clear();
                crate::udf::email::normalize_email_into(e, &mut normalised)
                    && self.identifiers.names("email", &normalised)
            });
            let by_phone = phone
                .as_ref()
                .and_then(|c| value(c, row))
                .is_some_and(|p| self.identifiers.names("phone", p));
            Some(!(by_key || by_pair || by_email || by_phone))
        });
        Ok(keep.collect())
    }
}

/// Whether any row of the partition's `files` belongs to an erased person,
/// reading only the columns the matcher needs.
async fn any_erased(
    store: &Arc<dyn ObjectStore>,
    files: &[Path],
    matcher: &RowMatcher<'_>,
) -> Result<bool, ErasureError> {
    for file in files {
        let builder = stream_builder(store, file).await?;
        let names: Vec<String> = builder
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        let wanted = RowMatcher::columns(names.iter().map(String::as_str));
        if wanted.is_empty() {
            return Ok(false);
        }
        let Some(mut batches) = projected(builder, file, &wanted)? else {
            continue;
        };
        while let Some(batch) = batches.try_next().await.map_err(read_err(file))? {
            if matcher.keep(&batch)?.false_count() > 0 {
                return Ok(true);
            }
        }
    }
    Ok(false)
}

/// Copies the rows of `files` that stay into `out`, file by file, in order (so
/// the output's sort order holds); returns the staged partition and the rows left out.
async fn filter_partition(
    store: &Arc<dyn ObjectStore>,
    files: &[Path],
    matcher: &RowMatcher<'_>,
    output: &HistoryOutput,
    out: &Path,
) -> Result<(StagedPartition, u64), ErasureError> {
    let mut written = Vec::new();
    let mut removed = 0;
    for (n, file) in files.iter().enumerate() {
        let builder = stream_builder(store, file).await?;
        let schema = builder.schema().clone();
        let mut batches = builder.build().map_err(read_err(file))?;
        let mut writer = ParquetFileWriter::create(
            store.clone(),
            out.clone().join(outputs::part_name(n)),
            schema,
            output.compression,
            &output.layout,
        )?;
        while let Some(batch) = batches.try_next().await.map_err(read_err(file))? {
            let keep = matcher.keep(&batch)?;
            removed += keep.false_count() as u64;
            let kept = filter_record_batch(&batch, &keep).map_err(|e| ErasureError::Read {
                path: file.to_string(),
                message: e.to_string(),
            })?;
            writer.write(&kept).await?;
        }
        written.push(writer.finish().await?);
    }
    Ok((
        StagedPartition {
            dir: out.clone(),
            files: written,
        },
        removed,
    ))
}
