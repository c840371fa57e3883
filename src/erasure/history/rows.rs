//! Reading earlier partitions row by row: which rows belong to an erased person
//! ([`RowMatcher`], the rule in the parent module's docs), whether a partition
//! holds any, and a copy of it without them.

use std::collections::HashSet;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, BooleanArray, StringArray};
use datafusion::arrow::compute::{cast, filter_record_batch};
use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::parquet::arrow::ParquetRecordBatchStreamBuilder;
use futures::TryStreamExt;
use object_store::ObjectStore;
use object_store::path::Path;

use super::super::{ErasedIdentifiers, ErasureError};
use super::HistoryOutput;
use crate::outputs::{self, ParquetFileWriter, StagedPartition};
use crate::storage::parquet::{self, Batches, ObjectReader};

/// The columns that make an output the identity map, in the order read.
pub(super) const IDENTITY_MAP_COLUMNS: [&str; 3] = ["id_type", "id_value", "customer_key"];

/// The batches of Parquet file `path` with exactly `columns`, in that order;
/// `None` when it lacks one of them.
pub(super) async fn open(
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
    parquet::stream_builder(store, path)
        .await
        .map_err(read_err(path))
}

/// [`open`] on a reader already opened.
fn projected(
    builder: ParquetRecordBatchStreamBuilder<ObjectReader>,
    path: &Path,
    columns: &[&str],
) -> Result<Option<Batches>, ErasureError> {
    parquet::columns(builder, columns).map_err(read_err(path))
}

pub(super) fn read_err(
    path: &Path,
) -> impl Fn(datafusion::parquet::errors::ParquetError) -> ErasureError + '_ {
    move |e| ErasureError::Read {
        path: path.to_string(),
        message: e.to_string(),
    }
}

/// A column as text (keys and identifiers are strings; anything else is cast).
pub(super) fn text(column: &ArrayRef) -> Result<StringArray, ErasureError> {
    let cast = cast(column, &DataType::Utf8).map_err(|e| ErasureError::Read {
        path: "(column)".into(),
        message: e.to_string(),
    })?;
    Ok(cast.as_string::<i32>().clone())
}

/// Which rows of one earlier partition belong to an erased person (module docs).
pub(super) struct RowMatcher<'a> {
    /// Customer keys of that date's identity map that an erased identifier maps to.
    pub keys: &'a HashSet<String>,
    pub identifiers: &'a ErasedIdentifiers,
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
pub(super) async fn any_erased(
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
pub(super) async fn filter_partition(
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
