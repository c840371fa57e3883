//! Parquet files: typed columns are rendered as text and validated like CSV, so a
//! Parquet extract follows exactly the same rules (a naive timestamp column renders
//! without an offset and is `bad_timestamp`, as the contract demands).
//!
//! Line numbers are 1-based row numbers; the raw text of a reject is a JSON object
//! of the contract columns' text values.

use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, StringArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::parquet::arrow::ParquetRecordBatchStreamBuilder;
use datafusion::parquet::arrow::ProjectionMask;
use futures::TryStreamExt;
use object_store::ObjectStore;

use super::error::SourceError;
use super::layout::RawFile;
use super::rows::{FileRows, FileStats};
use super::{BatchSink, route};
use crate::storage::parquet::ObjectReader;

/// Reads one Parquet file through `rows`, writing batches to the sinks as they fill.
pub(crate) async fn read_parquet(
    store: &Arc<dyn ObjectStore>,
    file: &RawFile,
    mut rows: FileRows,
    accepted: &mut impl BatchSink,
    rejects: &mut impl BatchSink,
    batch_rows: usize,
) -> Result<FileStats, SourceError> {
    let path = file.path.to_string();
    let parquet_err = |source| SourceError::Parquet {
        file: path.clone(),
        source,
    };
    let reader = ObjectReader::new(store, &file.path, file.size);
    let builder = ParquetRecordBatchStreamBuilder::new(reader)
        .await
        .map_err(parquet_err)?;
    let contract = rows.contract();
    let file_schema = builder.schema().clone();
    let mut wanted = Vec::with_capacity(contract.fields.len());
    for field in contract.fields {
        match file_schema.index_of(field.name) {
            Ok(i) => wanted.push(i),
            Err(_) => {
                return Err(SourceError::MissingColumn {
                    file: path.clone(),
                    column: field.name.to_string(),
                });
            }
        }
    }
    for f in file_schema.fields() {
        if !contract.fields.iter().any(|c| c.name == f.name()) {
            rows.stats.extra_columns.insert(f.name().clone());
        }
    }
    let mask = ProjectionMask::roots(builder.parquet_schema(), wanted);
    let mut stream = builder
        .with_projection(mask)
        .with_batch_size(batch_rows.max(1))
        .build()
        .map_err(parquet_err)?;

    let names: Vec<&'static str> = contract.fields.iter().map(|f| f.name).collect();
    let mut row_number: i64 = 0;
    while let Some(batch) = stream.try_next().await.map_err(parquet_err)? {
        let columns = text_columns(&batch, &rows, &path)?;
        for r in 0..batch.num_rows() {
            row_number += 1;
            let values: Vec<Option<&str>> = columns
                .iter()
                .map(|c| c.is_valid(r).then(|| c.value(r)))
                .collect();
            rows.push(&values, row_number, || Some(render_raw(&names, &values)));
            while let Some(out) = rows.take_ready() {
                route(out, accepted, rejects).await?;
            }
        }
    }
    let (rest, stats) = rows.finish();
    for out in rest {
        route(out, accepted, rejects).await?;
    }
    Ok(stats)
}

/// The contract columns of `batch` cast to text, in contract order.
fn text_columns(
    batch: &RecordBatch,
    rows: &FileRows,
    path: &str,
) -> Result<Vec<StringArray>, SourceError> {
    rows.contract()
        .fields
        .iter()
        .map(|f| {
            let column =
                batch
                    .column_by_name(f.name)
                    .ok_or_else(|| SourceError::MissingColumn {
                        file: path.to_string(),
                        column: f.name.to_string(),
                    })?;
            let text = cast(column, &DataType::Utf8).map_err(|source| SourceError::Arrow {
                file: path.to_string(),
                source,
            })?;
            Ok(text.as_string::<i32>().clone())
        })
        .collect()
}

/// `{"column": "text" | null, …}` for a rejected row.
fn render_raw(names: &[&str], values: &[Option<&str>]) -> String {
    let object: serde_json::Map<String, serde_json::Value> = names
        .iter()
        .zip(values)
        .map(|(name, value)| {
            let v = value.map_or(serde_json::Value::Null, |s| {
                serde_json::Value::String(s.to_string())
            });
            (name.to_string(), v)
        })
        .collect();
    serde_json::Value::Object(object).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_is_a_json_object_of_contract_text() {
        let raw = render_raw(&["currency", "rate_to_reporting"], &[Some("usd"), None]);
        assert_eq!(raw, r#"{"currency":"usd","rate_to_reporting":null}"#);
    }
}
