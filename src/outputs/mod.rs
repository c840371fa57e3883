//! Outputs: writing Parquet, staging each output, and reading published data back.
//!
//! Every Parquet file c360 writes (typed source rows, rejects, outputs) goes
//! through [`ParquetFileWriter`], so compression, statistics and types are the
//! same everywhere. Each output is first written, sorted by its keys, under a
//! run-private staging folder (`stage.rs`, [`write_stream`]) and then committed
//! into `<output>/<key>=<value>/…`.
//!
//! Making staged files visible is the commit protocol's job (`crate::commit`);
//! `committed.rs` owns the `_SUCCESS` marker format and [`committed_files`], the
//! one way c360 reads published data back.

use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::error::DataFusionError;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::parquet::arrow::AsyncArrowWriter;
use datafusion::parquet::basic::{Compression as ParquetCompression, ZstdLevel};
use datafusion::parquet::errors::ParquetError;
use datafusion::parquet::file::properties::{EnabledStatistics, WriterProperties};
use datafusion::parquet::schema::types::ColumnPath;
use futures::StreamExt;
use object_store::buffered::BufWriter;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};

use crate::job::{Compression, FileLayout};

mod committed;
mod distributed;
mod stage;

pub use committed::{
    CommittedSnapshot, ReadableSnapshot, SNAPSHOT_COLUMN, SUCCESS_MARKER, SuccessMarker,
    committed_files, hive_folders, latest_committed_before, read_marker, readable_snapshot,
    register_committed, rejects_partition, snapshot_partition, snapshot_partitions,
};
pub use distributed::{StagingDir, write_frame};
pub use stage::{StagedOutput, hashes_pii, key_problem, stage_output, unprotected_pii};

/// Distinct values a bloom filter is first sized for; the writer folds it down
/// to what the row group really held, so this only bounds the false-positive rate.
const BLOOM_FILTER_MAX_NDV: u64 = 2_000_000;

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
    /// An output's declaration does not fit its step (a job problem).
    #[error("output {output}: {message}")]
    Spec { output: String, message: String },
    /// A committed output could not be registered as a table for reading.
    #[error("outputs: cannot read committed {table}: {source}")]
    Read {
        table: String,
        source: DataFusionError,
    },
    #[error("sink: unreadable marker {path}: {message}")]
    Marker { path: String, message: String },
    #[error("sink: storage error on {path}: {}", crate::storage::describe(source))]
    Store {
        path: String,
        source: object_store::Error,
    },
}

/// Parquet writer settings for one file: page statistics (and so a page index),
/// row groups and bloom filters as `layout` asks.
pub fn writer_properties(compression: Compression, layout: &FileLayout) -> WriterProperties {
    let codec = match compression {
        // Level 3 is zstd's own default: a good ratio at high speed.
        Compression::Zstd => ParquetCompression::ZSTD(ZstdLevel::try_new(3).unwrap_or_default()),
        Compression::Snappy => ParquetCompression::SNAPPY,
        Compression::Uncompressed => ParquetCompression::UNCOMPRESSED,
    };
    let row_group_bytes = usize::try_from(layout.row_group_bytes.max(1)).unwrap_or(usize::MAX);
    let mut builder = WriterProperties::builder()
        .set_compression(codec)
        .set_statistics_enabled(if layout.column_statistics {
            EnabledStatistics::Page
        } else {
            EnabledStatistics::None
        })
        .set_max_row_group_bytes(Some(row_group_bytes))
        .set_created_by(format!("c360 {}", env!("CARGO_PKG_VERSION")));
    for column in &layout.bloom_filter {
        let path = ColumnPath::from(column.as_str());
        builder = builder
            .set_column_bloom_filter_enabled(path.clone(), true)
            .set_column_bloom_filter_max_ndv(path, BLOOM_FILTER_MAX_NDV);
    }
    builder.build()
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
        layout: &FileLayout,
    ) -> Result<Self, SinkError> {
        let object = BufWriter::new(store, path.clone());
        let properties = writer_properties(compression, layout);
        let writer =
            AsyncArrowWriter::try_new(object, schema, Some(properties)).map_err(|source| {
                SinkError::Parquet {
                    path: path.to_string(),
                    source,
                }
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

    /// Bytes of the file so far: flushed row groups plus the one being built.
    pub fn bytes(&self) -> u64 {
        (self.writer.bytes_written() + self.writer.in_progress_size()) as u64
    }

    /// Writes the footer and completes the upload; returns the file written.
    pub async fn finish(self) -> Result<WrittenFile, SinkError> {
        let path = self.path;
        let mut writer = self.writer;
        writer.finish().await.map_err(|source| SinkError::Parquet {
            path: path.to_string(),
            source,
        })?;
        // `finish` wrote the footer and completed the upload.
        let bytes = writer.bytes_written() as u64;
        Ok(WrittenFile {
            path,
            rows: self.rows,
            bytes,
        })
    }
}

/// A finished Parquet file.
#[derive(Debug, Clone)]
pub struct WrittenFile {
    pub path: Path,
    pub rows: u64,
    /// Size of the file (footer included).
    pub bytes: u64,
}

/// The files of one partition, written to staging and not yet published.
#[derive(Debug, Clone, Default)]
pub struct StagedPartition {
    /// The staging folder holding exactly these files (and nothing else).
    pub dir: Path,
    pub files: Vec<WrittenFile>,
}

impl StagedPartition {
    /// Total rows over all files.
    pub fn rows(&self) -> u64 {
        self.files.iter().map(|f| f.rows).sum()
    }

    /// Total bytes over all files.
    pub fn bytes(&self) -> u64 {
        self.files.iter().map(|f| f.bytes).sum()
    }
}

/// Name of the n-th data file of a partition.
pub fn part_name(n: usize) -> String {
    format!("part-{n:05}.parquet")
}

/// Streams `stream` into `dir/part-NNNNN.parquet` files, starting the next part
/// once a file reaches `layout.target_file_bytes` (checked between batches).
///
/// Always writes at least one file, so an empty result is an empty (but
/// readable, typed) partition rather than a missing one.
pub async fn write_stream(
    output: &str,
    mut stream: SendableRecordBatchStream,
    store: Arc<dyn ObjectStore>,
    dir: &Path,
    compression: Compression,
    layout: &FileLayout,
) -> Result<StagedPartition, SinkError> {
    let schema = stream.schema();
    let mut staged = StagedPartition {
        dir: dir.clone(),
        files: Vec::new(),
    };
    let create = |n: usize| {
        let path = dir.clone().join(part_name(n));
        ParquetFileWriter::create(store.clone(), path, schema.clone(), compression, layout)
    };
    let mut writer = create(0)?;
    while let Some(batch) = stream.next().await {
        let batch = batch.map_err(|source| SinkError::Query {
            output: output.to_string(),
            source,
        })?;
        if batch.num_rows() == 0 {
            continue;
        }
        if writer.rows() > 0 && writer.bytes() >= layout.target_file_bytes {
            let full = std::mem::replace(&mut writer, create(staged.files.len() + 1)?);
            staged.files.push(full.finish().await?);
        }
        writer.write(&batch).await?;
    }
    staged.files.push(writer.finish().await?);
    Ok(staged)
}

/// A partition made visible by the commit protocol (`crate::commit`).
#[derive(Debug, Clone)]
pub struct PublishedPartition {
    pub dir: Path,
    pub files: Vec<Path>,
    pub rows: u64,
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
    async fn files_roll_over_at_the_size_target() {
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        // A one-byte target: every batch after the first starts a new file.
        let tiny = FileLayout {
            target_file_bytes: 1,
            ..FileLayout::default()
        };
        let batches = vec![
            numbers(vec![1, 2, 3]),
            numbers(vec![4, 5]),
            numbers(vec![6]),
        ];
        let staging = Path::from("wh/_c360/tmp/r1/out");
        let staged = write_stream(
            "out",
            stream_of(batches.clone()),
            store.clone(),
            &staging,
            Compression::Zstd,
            &tiny,
        )
        .await
        .unwrap();
        assert_eq!(
            staged.files.iter().map(|f| f.rows).collect::<Vec<_>>(),
            vec![3, 2, 1]
        );
        // The default target keeps them in one file.
        let one = write_stream(
            "out",
            stream_of(batches),
            store.clone(),
            &Path::from("wh/_c360/tmp/r2/out"),
            Compression::Zstd,
            &FileLayout::default(),
        )
        .await
        .unwrap();
        assert_eq!(one.files.len(), 1);
        assert_eq!(one.rows(), 6);
        assert_eq!(staged.dir, staging);
        assert_eq!(
            names(&store, &staging).await,
            vec![
                "part-00000.parquet",
                "part-00001.parquet",
                "part-00002.parquet"
            ]
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
            &FileLayout::default(),
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
