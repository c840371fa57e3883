//! Examples of rejected rows for the report, read from the rejects the run
//! published: the files each partition's `_SUCCESS` lists, which are the rows
//! left after the erasure filter (`crate::erasure`). A run that published no
//! rejects (it failed before, or the erasure requests could not be read) shows
//! none.

use std::collections::BTreeMap;

use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::datatypes::Int64Type;
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use object_store::ObjectStoreExt;

use super::ReportError;
use crate::runlog::RunRecord;
use crate::storage::StorageLocation;

/// Examples shown per extract and reason.
pub(super) const EXAMPLES_PER_REASON: usize = 3;

/// One published reject row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct RejectExample {
    /// The raw file, relative to the raw root.
    pub file: String,
    pub line: i64,
    /// The raw text as read (hostile input: escape before showing).
    pub raw: Option<String>,
}

/// Extract -> reason -> the first examples, in file order.
pub(super) type Examples = BTreeMap<String, BTreeMap<String, Vec<RejectExample>>>;

/// The first [`EXAMPLES_PER_REASON`] published reject rows per extract and reason.
pub(super) async fn examples(
    warehouse: &StorageLocation,
    record: &RunRecord,
) -> Result<Examples, ReportError> {
    let mut out = Examples::new();
    for published in &record.rejects {
        // The reasons of the extract's rejected rows: reading stops once each has its examples.
        let reasons: Vec<&String> = record
            .sources
            .iter()
            .filter(|s| s.name == published.name)
            .flat_map(|s| s.rejects_by_reason.iter())
            .filter(|(_, rows)| **rows > 0)
            .map(|(reason, _)| reason)
            .collect();
        let partition = crate::outputs::rejects_partition(
            &warehouse.prefix,
            &published.name,
            record.logical_date,
        );
        // The marker, not the record: a later run of the date may have replaced them.
        let files = crate::outputs::committed_files(&warehouse.store, &partition)
            .await?
            .unwrap_or_default();
        let by_reason = out.entry(published.name.clone()).or_default();
        let satisfied = |by_reason: &BTreeMap<String, Vec<RejectExample>>| {
            reasons.iter().all(|r| {
                by_reason
                    .get(*r)
                    .is_some_and(|e| e.len() >= EXAMPLES_PER_REASON)
            })
        };
        for file in files {
            if satisfied(by_reason) {
                break;
            }
            let read_err = |message: String| ReportError::Rejects {
                path: file.to_string(),
                message,
            };
            // Reject files are bounded by the reject budget, so one is read whole
            // (as the erasure filter reads it).
            let bytes = match warehouse.store.get(&file).await {
                Ok(result) => result.bytes().await,
                Err(e) => Err(e),
            }
            .map_err(|e| read_err(e.to_string()))?;
            let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)
                .and_then(|b| b.build())
                .map_err(|e| read_err(e.to_string()))?;
            for batch in reader {
                let batch = batch.map_err(|e| read_err(e.to_string()))?;
                collect(&batch, by_reason).map_err(read_err)?;
                if satisfied(by_reason) {
                    break;
                }
            }
        }
    }
    Ok(out)
}

/// Adds the rows of `batch` to the reasons that still want examples.
fn collect(
    batch: &RecordBatch,
    by_reason: &mut BTreeMap<String, Vec<RejectExample>>,
) -> Result<(), String> {
    let text = |name: &str| {
        batch
            .column_by_name(name)
            .and_then(|c| c.as_string_opt::<i32>())
            .ok_or_else(|| format!("no text column `{name}`"))
    };
    let (reason, file, raw) = (text("reason")?, text("file")?, text("raw")?);
    let line = batch
        .column_by_name("line")
        .and_then(|c| c.as_primitive_opt::<Int64Type>())
        .ok_or_else(|| "no integer column `line`".to_string())?;
    for i in 0..batch.num_rows() {
        let kept = by_reason.entry(reason.value(i).to_string()).or_default();
        if kept.len() < EXAMPLES_PER_REASON {
            kept.push(RejectExample {
                file: file.value(i).to_string(),
                line: line.value(i),
                raw: (!raw.is_null(i)).then(|| raw.value(i).to_string()),
            });
        }
    }
    Ok(())
}
