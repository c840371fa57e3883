//! Reading back the previous committed identity map (DESIGN.md: only committed
//! partitions are ever read back).
//!
//! The previous map is the partition `snapshot_date=P` of the step's own output
//! with the latest `P` strictly before the logical date that has a `_SUCCESS`
//! marker; only the files the marker lists are read. Strictly before, so a rerun
//! or backfill of a date never reads its own earlier result and gives the same keys.

use std::sync::Arc;

use chrono::NaiveDate;
use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Date32Type};
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};

use super::IdentityError;
use super::intern::Interner;
use super::keys::Previous;
use crate::outputs::{self, CommittedSnapshot};

/// The latest committed `snapshot_date=` partition under `output` before `date`.
pub async fn latest_before(
    store: &Arc<dyn ObjectStore>,
    output: &Path,
    date: NaiveDate,
) -> Result<Option<CommittedSnapshot>, IdentityError> {
    outputs::latest_committed_before(store, output, date)
        .await
        .map_err(|e| IdentityError::Previous {
            path: output.to_string(),
            message: e.to_string(),
        })
}

/// Streams the snapshot's rows into a [`Previous`] resolved against `interner`.
pub async fn read(
    store: &Arc<dyn ObjectStore>,
    snapshot: &CommittedSnapshot,
    interner: &Interner,
) -> Result<Previous, IdentityError> {
    let mut previous = Previous::new(interner.len());
    for file in &snapshot.files() {
        let error = |message: String| IdentityError::Previous {
            path: file.to_string(),
            message,
        };
        // One file at a time in memory: a map file is a few bytes per identifier.
        let bytes = match store.get(file).await {
            Ok(result) => result.bytes().await,
            Err(e) => Err(e),
        }
        .map_err(|e| error(e.to_string()))?;
        let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)
            .and_then(|b| b.build())
            .map_err(|e| error(e.to_string()))?;
        for batch in reader {
            let batch = batch.map_err(|e| error(e.to_string()))?;
            add_batch(&mut previous, interner, &batch).map_err(error)?;
        }
    }
    Ok(previous)
}

fn add_batch(
    previous: &mut Previous,
    interner: &Interner,
    batch: &RecordBatch,
) -> Result<(), String> {
    let text = |name: &str| {
        let column = batch
            .column_by_name(name)
            .ok_or_else(|| format!("no column `{name}`"))?;
        cast(column, &DataType::Utf8).map_err(|e| format!("column `{name}`: {e}"))
    };
    let (id_type, id_value, key) = (text("id_type")?, text("id_value")?, text("customer_key")?);
    let (id_type, id_value, key) = (
        id_type.as_string::<i32>(),
        id_value.as_string::<i32>(),
        key.as_string::<i32>(),
    );
    let first_seen = batch
        .column_by_name("first_seen")
        .ok_or("no column `first_seen`")?;
    let first_seen =
        cast(first_seen, &DataType::Date32).map_err(|e| format!("column `first_seen`: {e}"))?;
    let first_seen = first_seen.as_primitive::<Date32Type>();
    for row in 0..batch.num_rows() {
        if id_type.is_null(row) || id_value.is_null(row) || key.is_null(row) {
            continue;
        }
        let seen = first_seen.is_valid(row).then(|| first_seen.value(row));
        previous.add(
            interner,
            id_type.value(row),
            id_value.value(row),
            key.value(row),
            seen,
        );
    }
    Ok(())
}
