//! Writing Parquet: staging files and publishing partitions.
//!
//! Every Parquet file c360 writes (typed source rows, rejects, outputs) goes
//! through [`ParquetFileWriter`], so compression, statistics and types are the
//! same everywhere. Outputs are first written under a run-private staging folder
//! and then [`publish`]ed into `<output>/<key>=<value>/…`.
//!
//! Publish protocol (interim, single writer; the atomic multi-output commit with
//! manifests and a lease replaces it later):
//!
//! ```text
//! 1. delete  <partition>/_SUCCESS           readers that honour _SUCCESS stop reading
//! 2. rename  staging/part-NNNNN.parquet  ->  <partition>/part-NNNNN.parquet  (overwrites)
//! 3. delete  <partition>/* not written by this run (older, higher-numbered parts)
//! 4. put     <partition>/_SUCCESS           {"run_id": …, "files": …, "rows": …}
//! ```
//! Other partitions of the output are never touched, so re-running a date
//! replaces exactly that date.

use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::error::DataFusionError;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::parquet::arrow::AsyncArrowWriter;
use datafusion::parquet::basic::{Compression as ParquetCompression, ZstdLevel};
use datafusion::parquet::errors::ParquetError;
use datafusion::parquet::file::properties::{EnabledStatistics, WriterProperties};
use futures::StreamExt;
use object_store::buffered::BufWriter;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

use crate::job::Compression;

/// Rows per Parquet file before the writer rolls over to the next part.
pub const DEFAULT_ROWS_PER_FILE: usize = 5_000_000;
/// Rows per row group: large enough for good compression, small enough to prune.
const ROW_GROUP_ROWS: usize = 256 * 1024;

/// Errors of the sink layer.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("sink: cannot write parquet {path}: {source}")]
    Parquet { path: String, source: ParquetError },
    #[error("sink: query failed while writing {output}: {source}")]
    Query {
        output: String,
        source: DataFusionError,
    },
    #[error("sink: unreadable marker {path}: {message}")]
    Marker { path: String, message: String },
    #[error("sink: storage error on {path}: {source}")]
    Store {
        path: String,
        source: object_store::Error,
    },
}

/// Parquet writer settings for one file.
pub fn writer_properties(compression: Compression) -> WriterProperties {
    let codec = match compression {
        // Level 3 is zstd's own default: a good ratio at high speed.
        Compression::Zstd => ParquetCompression::ZSTD(ZstdLevel::try_new(3).unwrap_or_default()),
        Compression::Snappy => ParquetCompression::SNAPPY,
        Compression::Uncompressed => ParquetCompression::UNCOMPRESSED,
    };
    WriterProperties::builder()
        .set_compression(codec)
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .set_created_by(format!("c360 {}", env!("CARGO_PKG_VERSION")))
        .build()
}

/// One Parquet file being written to an object store, batch by batch.
pub struct ParquetFileWriter {
    path: Path,
    writer: AsyncArrowWriter<BufWriter>,
    rows: u64,
}

impl ParquetFileWriter {
    /// Starts a file at `path`; nothing is visible there until [`Self::finish`].
    pub fn create(
        store: Arc<dyn ObjectStore>,
        path: Path,
        schema: SchemaRef,
        compression: Compression,
    ) -> Result<Self, SinkError> {
        let object = BufWriter::new(store, path.clone());
        let writer =
            AsyncArrowWriter::try_new(object, schema, Some(writer_properties(compression)))
                .map_err(|source| SinkError::Parquet {
                    path: path.to_string(),
                    source,
                })?;
        Ok(Self {
            path,
            writer,
            rows: 0,
        })
    }

    /// Appends one batch.
    pub async fn write(&mut self, batch: &RecordBatch) -> Result<(), SinkError> {
        self.rows += batch.num_rows() as u64;
        self.writer
            .write(batch)
            .await
            .map_err(|source| SinkError::Parquet {
                path: self.path.to_string(),
                source,
            })
    }

    /// Rows written so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Writes the footer and completes the upload; returns the file written.
    pub async fn finish(self) -> Result<WrittenFile, SinkError> {
        let path = self.path;
        self.writer
            .close()
            .await
            .map_err(|source| SinkError::Parquet {
                path: path.to_string(),
                source,
            })?;
        Ok(WrittenFile {
            path,
            rows: self.rows,
        })
    }
}

/// A finished Parquet file.
#[derive(Debug, Clone)]
pub struct WrittenFile {
    pub path: Path,
    pub rows: u64,
}

/// The files of one partition, written to staging and not yet published.
#[derive(Debug, Clone, Default)]
pub struct StagedPartition {
    pub files: Vec<WrittenFile>,
}

impl StagedPartition {
    /// Total rows over all files.
    pub fn rows(&self) -> u64 {
        self.files.iter().map(|f| f.rows).sum()
    }
}

/// Name of the n-th data file of a partition.
pub fn part_name(n: usize) -> String {
    format!("part-{n:05}.parquet")
}

/// Streams `stream` into `dir/part-NNNNN.parquet` files of at most `rows_per_file` rows.
///
/// Always writes at least one file, so an empty result is an empty (but
/// readable, typed) partition rather than a missing one.
pub async fn write_stream(
    output: &str,
    mut stream: SendableRecordBatchStream,
    store: Arc<dyn ObjectStore>,
    dir: &Path,
    compression: Compression,
    rows_per_file: usize,
) -> Result<StagedPartition, SinkError> {
    let rows_per_file = rows_per_file.max(1);
    let schema = stream.schema();
    let mut staged = StagedPartition::default();
    let mut writer = ParquetFileWriter::create(
        store.clone(),
        dir.clone().join(part_name(0)),
        schema.clone(),
        compression,
    )?;
    while let Some(batch) = stream.next().await {
        let batch = batch.map_err(|source| SinkError::Query {
            output: output.to_string(),
            source,
        })?;
        let mut offset = 0;
        while offset < batch.num_rows() {
            if writer.rows() as usize >= rows_per_file {
                staged.files.push(writer.finish().await?);
                let next = dir.clone().join(part_name(staged.files.len()));
                writer =
                    ParquetFileWriter::create(store.clone(), next, schema.clone(), compression)?;
            }
            let take = (rows_per_file - writer.rows() as usize).min(batch.num_rows() - offset);
            writer.write(&batch.slice(offset, take)).await?;
            offset += take;
        }
    }
    staged.files.push(writer.finish().await?);
    Ok(staged)
}

/// What [`publish`] made visible.
#[derive(Debug, Clone)]
pub struct PublishedPartition {
    pub dir: Path,
    pub files: Vec<Path>,
    pub rows: u64,
}

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

/// The files of a committed partition: `None` when `partition` has no `_SUCCESS`
/// (never written, or a publish in progress or interrupted).
pub async fn committed_files(
    store: &Arc<dyn ObjectStore>,
    partition: &Path,
) -> Result<Option<Vec<Path>>, SinkError> {
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
    let parsed: SuccessMarker = serde_json::from_slice(&bytes).map_err(|e| SinkError::Marker {
        path: marker.to_string(),
        message: e.to_string(),
    })?;
    Ok(Some(
        parsed
            .files
            .iter()
            .map(|name| partition.clone().join(name.as_str()))
            .collect(),
    ))
}

/// Moves staged files into `target` (a partition folder), replacing what was
/// there, and writes `_SUCCESS` last. See the module docs for the order.
pub async fn publish(
    store: &Arc<dyn ObjectStore>,
    staged: &StagedPartition,
    target: &Path,
    run_id: &str,
) -> Result<PublishedPartition, SinkError> {
    let store_err = |path: &Path| {
        let path = path.to_string();
        move |source| SinkError::Store { path, source }
    };
    let marker = target.clone().join(SUCCESS_MARKER);
    match store.delete(&marker).await {
        Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
        Err(e) => return Err(store_err(&marker)(e)),
    }
    let mut published = Vec::with_capacity(staged.files.len());
    for (n, file) in staged.files.iter().enumerate() {
        let to = target.clone().join(part_name(n));
        store
            .rename(&file.path, &to)
            .await
            .map_err(store_err(&to))?;
        published.push(to);
    }
    let existing: Vec<_> = store
        .list(Some(target))
        .map(|meta| meta.map(|m| m.location))
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_, _>>()
        .map_err(store_err(target))?;
    for stale in existing.iter().filter(|p| !published.contains(p)) {
        match store.delete(stale).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(store_err(stale)(e)),
        }
    }
    let rows = staged.rows();
    let marker_body = SuccessMarker {
        run_id: run_id.to_string(),
        files: published
            .iter()
            .filter_map(|p| p.filename().map(String::from))
            .collect(),
        rows,
    };
    let body = serde_json::to_vec(&marker_body).unwrap_or_default();
    store
        .put(&marker, PutPayload::from(body))
        .await
        .map_err(store_err(&marker))?;
    Ok(PublishedPartition {
        dir: target.clone(),
        files: published,
        rows,
    })
}

/// Deletes everything under `prefix` (a run's staging folder); missing is fine.
pub async fn remove_prefix(store: &Arc<dyn ObjectStore>, prefix: &Path) -> Result<(), SinkError> {
    let paths: Vec<_> = store
        .list(Some(prefix))
        .map(|meta| meta.map(|m| m.location))
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_, _>>()
        .map_err(|source| SinkError::Store {
            path: prefix.to_string(),
            source,
        })?;
    for path in paths {
        match store.delete(&path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(source) => {
                return Err(SinkError::Store {
                    path: path.to_string(),
                    source,
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::Int64Array;
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
    use object_store::memory::InMemory;

    fn numbers(values: Vec<i64>) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![Field::new("n", DataType::Int64, false)]));
        RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from(values))]).unwrap()
    }

    fn stream_of(batches: Vec<RecordBatch>) -> SendableRecordBatchStream {
        let schema = batches[0].schema();
        Box::pin(RecordBatchStreamAdapter::new(
            schema,
            futures::stream::iter(batches.into_iter().map(Ok)),
        ))
    }

    async fn names(store: &Arc<dyn ObjectStore>, dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = store
            .list(Some(dir))
            .map(|m| m.unwrap().location.filename().unwrap().to_string())
            .collect()
            .await;
        names.sort();
        names
    }

    #[tokio::test]
    async fn files_roll_over_at_the_row_limit_and_publish_replaces_stale_parts() {
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let target = Path::from("wh/out/snapshot_date=2026-01-01");
        // A previous run left four parts; this run writes five rows at two per file.
        for n in 0..4 {
            store
                .put(
                    &target.clone().join(part_name(n)),
                    PutPayload::from_static(b"old"),
                )
                .await
                .unwrap();
        }
        let stream = stream_of(vec![numbers(vec![1, 2, 3]), numbers(vec![4, 5])]);
        let staging = Path::from("wh/_c360/tmp/r1/out");
        let staged = write_stream("out", stream, store.clone(), &staging, Compression::Zstd, 2)
            .await
            .unwrap();
        assert_eq!(
            staged.files.iter().map(|f| f.rows).collect::<Vec<_>>(),
            vec![2, 2, 1]
        );

        let published = publish(&store, &staged, &target, "r1").await.unwrap();
        assert_eq!(published.rows, 5);
        assert_eq!(
            names(&store, &target).await,
            vec![
                "_SUCCESS",
                "part-00000.parquet",
                "part-00001.parquet",
                "part-00002.parquet"
            ]
        );
        assert!(names(&store, &staging).await.is_empty());
        let marker = store
            .get(&target.clone().join(SUCCESS_MARKER))
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        let marker: SuccessMarker = serde_json::from_slice(&marker).unwrap();
        assert_eq!(marker.run_id, "r1");
        assert_eq!(marker.rows, 5);
        let listed = committed_files(&store, &target).await.unwrap().unwrap();
        assert_eq!(listed, published.files);
        assert_eq!(
            committed_files(&store, &Path::from("wh/out/snapshot_date=2026-01-02"))
                .await
                .unwrap(),
            None
        );
    }

    #[tokio::test]
    async fn an_empty_result_is_still_one_readable_file() {
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let empty = numbers(vec![]);
        let staged = write_stream(
            "out",
            stream_of(vec![empty]),
            store.clone(),
            &Path::from("s"),
            Compression::Zstd,
            10,
        )
        .await
        .unwrap();
        assert_eq!(staged.files.len(), 1);
        assert_eq!(staged.rows(), 0);
        let bytes = store
            .get(&staged.files[0].path)
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        assert_eq!(&bytes[..4], b"PAR1");
    }
}
