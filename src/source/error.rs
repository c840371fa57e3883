//! Errors of the source layer. Each names the file (or location) it came from;
//! the caller adds the phase (`source`) when it wraps them.

use datafusion::arrow::error::ArrowError;
use datafusion::parquet::errors::ParquetError;

/// Why reading a source failed (as opposed to a row being rejected).
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// A file's header (or Parquet schema) lacks a contract column.
    #[error("{file}: header lacks contract column `{column}`")]
    MissingColumn { file: String, column: String },
    /// A non-optional source has no data file for the run.
    #[error("source `{extract}`: no data files at `{location}`")]
    NoFiles { extract: String, location: String },
    /// Listing the source location failed.
    #[error("listing `{location}`: {}", crate::storage::describe(source))]
    List {
        location: String,
        #[source]
        source: object_store::Error,
    },
    /// Opening or reading an object failed (including decompression errors).
    #[error("{file}: {source}")]
    Read {
        file: String,
        #[source]
        source: std::io::Error,
    },
    /// Bytes that break the file format itself (e.g. a CSV field that is not UTF-8).
    #[error("{file}:{line}: {message}")]
    Malformed {
        file: String,
        line: u64,
        message: String,
    },
    /// A Parquet file could not be decoded.
    #[error("{file}: {source}")]
    Parquet {
        file: String,
        #[source]
        source: ParquetError,
    },
    /// An Arrow operation failed on a file's data.
    #[error("{file}: {source}")]
    Arrow {
        file: String,
        #[source]
        source: ArrowError,
    },
    /// The blocking reader task of a file died.
    #[error("{file}: reader task failed: {message}")]
    Task { file: String, message: String },
    /// A `BatchSink` refused a batch.
    #[error("writing batch: {0}")]
    Sink(#[source] Box<dyn std::error::Error + Send + Sync>),
}
