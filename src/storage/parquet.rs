//! Reading Parquet objects: ranged reads of one object ([`ObjectReader`]) and
//! its batches with exactly the columns asked for ([`columns`]).

use std::sync::Arc;

use datafusion::arrow::record_batch::RecordBatch;
use datafusion::parquet::arrow::ParquetRecordBatchStreamBuilder;
use datafusion::parquet::arrow::ProjectionMask;
use datafusion::parquet::arrow::arrow_reader::ArrowReaderOptions;
use datafusion::parquet::arrow::async_reader::AsyncFileReader;
use datafusion::parquet::errors::ParquetError;
use datafusion::parquet::file::metadata::{ParquetMetaData, ParquetMetaDataReader};
use futures::future::BoxFuture;
use futures::{FutureExt, TryFutureExt, TryStreamExt};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};

/// Ranged reads of one object of known size. Parquet's own `ParquetObjectReader`
/// is deprecated in favour of implementing `AsyncFileReader` directly, like this.
pub struct ObjectReader {
    store: Arc<dyn ObjectStore>,
    path: Path,
    size: u64,
}

impl ObjectReader {
    /// A reader of `path`, whose size is `size`.
    pub fn new(store: &Arc<dyn ObjectStore>, path: &Path, size: u64) -> Self {
        Self {
            store: store.clone(),
            path: path.clone(),
            size,
        }
    }

    /// A reader of `path`, its size asked of the store.
    pub async fn open(
        store: &Arc<dyn ObjectStore>,
        path: &Path,
    ) -> Result<Self, object_store::Error> {
        let size = store.head(path).await?.size;
        Ok(Self::new(store, path, size))
    }
}

fn store_err(e: object_store::Error) -> ParquetError {
    ParquetError::External(Box::new(e))
}

impl AsyncFileReader for ObjectReader {
    fn get_bytes(
        &mut self,
        range: std::ops::Range<u64>,
    ) -> BoxFuture<'_, datafusion::parquet::errors::Result<bytes::Bytes>> {
        self.store
            .get_range(&self.path, range)
            .map_err(store_err)
            .boxed()
    }

    fn get_metadata<'a>(
        &'a mut self,
        options: Option<&'a ArrowReaderOptions>,
    ) -> BoxFuture<'a, datafusion::parquet::errors::Result<Arc<ParquetMetaData>>> {
        async move {
            let size = self.size;
            let metadata = ParquetMetaDataReader::new()
                .with_arrow_reader_options(options)
                .load_and_finish(self, size)
                .await?;
            Ok(Arc::new(metadata))
        }
        .boxed()
    }
}

/// A stream of record batches read from Parquet.
pub type Batches =
    std::pin::Pin<Box<dyn futures::Stream<Item = Result<RecordBatch, ParquetError>> + Send>>;

/// A streaming reader of Parquet object `path` (its footer read).
pub async fn stream_builder(
    store: &Arc<dyn ObjectStore>,
    path: &Path,
) -> Result<ParquetRecordBatchStreamBuilder<ObjectReader>, ParquetError> {
    let reader = ObjectReader::open(store, path).await.map_err(store_err)?;
    ParquetRecordBatchStreamBuilder::new(reader).await
}

/// The batches of `builder`'s file with exactly `columns` (top-level), in that
/// order; `None` when the file lacks one of them.
pub fn columns(
    builder: ParquetRecordBatchStreamBuilder<ObjectReader>,
    columns: &[&str],
) -> Result<Option<Batches>, ParquetError> {
    let fields = builder.parquet_schema().root_schema().get_fields();
    let mut indices = Vec::with_capacity(columns.len());
    for column in columns {
        match fields.iter().position(|f| f.name() == *column) {
            Some(i) => indices.push(i),
            None => return Ok(None),
        }
    }
    let mask = ProjectionMask::roots(builder.parquet_schema(), indices.iter().copied());
    let stream = builder.with_projection(mask).build()?;
    // A projection yields the columns in file order; put them in `columns` order.
    let mut sorted = indices.clone();
    sorted.sort_unstable();
    let order: Vec<usize> = indices
        .iter()
        .filter_map(|i| sorted.iter().position(|s| s == i))
        .collect();
    Ok(Some(Box::pin(stream.and_then(move |batch| {
        futures::future::ready(batch.project(&order).map_err(ParquetError::from))
    }))))
}
