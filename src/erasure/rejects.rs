//! Filtering one extract's staged rejects before they are published: a reject row
//! whose raw text carries an erased identifier is left out
//! (`crate::source::ErasedIdentifiers`).
//!
//! The staged files were written by this run under its staging folder; the kept
//! rows go to a sibling folder, which is what the commit then publishes.

use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, BooleanArray};
use datafusion::arrow::compute::filter_record_batch;
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};

use super::{ErasedIdentifiers, ErasureError};
use crate::job::{Compression, FileLayout};
use crate::outputs::{self, ParquetFileWriter, StagedPartition};

/// One extract's rejects after the filter.
#[derive(Debug, Clone)]
pub struct FilteredRejects {
    /// What to publish.
    pub staged: StagedPartition,
    /// Reject rows left out.
    pub removed: u64,
}

/// Copies the rows of `staged` that carry none of `identifiers` into `out_dir`.
/// With nothing to match, `staged` is returned as it is.
pub async fn filter_staged(
    store: &Arc<dyn ObjectStore>,
    staged: &StagedPartition,
    identifiers: &ErasedIdentifiers,
    out_dir: &Path,
) -> Result<FilteredRejects, ErasureError> {
    if identifiers.is_empty() {
        return Ok(FilteredRejects {
            staged: staged.clone(),
            removed: 0,
        });
    }
    let mut files = Vec::new();
    let mut removed = 0;
    for (n, file) in staged.files.iter().enumerate() {
        let read_err = |message: String| ErasureError::Read {
            path: file.path.to_string(),
            message,
        };
        // Reject files are bounded by the reject budget (1% of an extract by
        // default), so one is read whole.
        let bytes = match store.get(&file.path).await {
            Ok(result) => result.bytes().await,
            Err(e) => Err(e),
        }
        .map_err(|e| read_err(e.to_string()))?;
        let builder =
            ParquetRecordBatchReaderBuilder::try_new(bytes).map_err(|e| read_err(e.to_string()))?;
        let schema = builder.schema().clone();
        let reader = builder.build().map_err(|e| read_err(e.to_string()))?;
        let mut writer = ParquetFileWriter::create(
            store.clone(),
            out_dir.clone().join(outputs::part_name(n)),
            schema,
            Compression::Zstd,
            &FileLayout::default(),
        )?;
        for batch in reader {
            let batch = batch.map_err(|e| read_err(e.to_string()))?;
            let raw = batch
                .column_by_name("raw")
                .and_then(|c| c.as_string_opt::<i32>())
                .ok_or_else(|| read_err("no text column `raw`".into()))?;
            let keep: BooleanArray = (0..raw.len())
                .map(|i| Some(raw.is_null(i) || !identifiers.carried_by(raw.value(i))))
                .collect();
            removed += (keep.len() - keep.true_count()) as u64;
            let kept = filter_record_batch(&batch, &keep).map_err(|e| read_err(e.to_string()))?;
            writer.write(&kept).await?;
        }
        files.push(writer.finish().await?);
    }
    Ok(FilteredRejects {
        staged: StagedPartition {
            dir: out_dir.clone(),
            files,
        },
        removed,
    })
}
