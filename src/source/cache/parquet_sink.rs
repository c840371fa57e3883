//! The Parquet sink a source read writes to: a cache entry's typed rows and
//! rejects, or the run's own staging file of an unpartitioned source.

use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use futures::future::BoxFuture;
use object_store::ObjectStore;
use object_store::path::Path;

use super::EXTRACT_COLUMN;
use crate::job::{Compression, FileLayout, SourceSpec};
use crate::outputs::ParquetFileWriter;
use crate::source::StagingError;
use crate::source::{self, BatchSink, SourceError};

/// Writes batches to one Parquet file, optionally leaving out one column.
///
/// Snappy, like the staged step tables: the files stay private to the
/// warehouse, and at 200k customers zstd made the sources stage about 15%
/// slower (a compression context per page: `ZSTD_createCCtx` and the kernel
/// zeroing its pages were 8% of that stage's profile).
pub(crate) struct ParquetSink {
    pub writer: ParquetFileWriter,
    keep: Option<Vec<usize>>,
}

impl ParquetSink {
    pub fn create(
        store: &Arc<dyn ObjectStore>,
        path: Path,
        schema: SchemaRef,
        drop_column: Option<&str>,
    ) -> Result<Self, StagingError> {
        let keep: Option<Vec<usize>> = drop_column.map(|name| {
            (0..schema.fields().len())
                .filter(|&i| schema.field(i).name() != name)
                .collect()
        });
        let file_schema = match &keep {
            Some(indices) => Arc::new(schema.project(indices).map_err(|e| {
                StagingError::Bind(format!("internal: cannot project reject schema: {e}"))
            })?),
            None => schema,
        };
        Ok(Self {
            writer: ParquetFileWriter::create(
                store.clone(),
                path,
                file_schema,
                Compression::Snappy,
                &FileLayout::staging(),
            )?,
            keep,
        })
    }

    /// A sink for a source's typed rows.
    pub fn typed(
        store: &Arc<dyn ObjectStore>,
        path: Path,
        spec: &SourceSpec,
    ) -> Result<Self, StagingError> {
        Self::create(store, path, source::typed_schema(spec.schema), None)
    }

    /// A sink for a source's rejects (without the `extract` column).
    pub fn rejects(store: &Arc<dyn ObjectStore>, path: Path) -> Result<Self, StagingError> {
        Self::create(store, path, source::rejects_schema(), Some(EXTRACT_COLUMN))
    }
}

impl BatchSink for ParquetSink {
    fn write(&mut self, batch: RecordBatch) -> BoxFuture<'_, Result<(), SourceError>> {
        Box::pin(async move {
            let batch = match &self.keep {
                Some(indices) => batch
                    .project(indices)
                    .map_err(|e| SourceError::Sink(Box::new(e)))?,
                None => batch,
            };
            self.writer
                .write(&batch)
                .await
                .map_err(|e| SourceError::Sink(Box::new(e)))
        })
    }
}
