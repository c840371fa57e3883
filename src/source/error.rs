//! Errors of the source layer. Each names the file (or location) it came from;
//! the caller adds the phase (`source`) when it wraps them.

use chrono::NaiveDate;
use datafusion::arrow::error::ArrowError;
use datafusion::parquet::errors::ParquetError;

/// Why reading a source failed (as opposed to a row being rejected).
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// A file's header (or Parquet schema) lacks a contract column.
    #[error("{file}: header lacks contract column `{column}`")]
    MissingColumn { file: String, column: String },
    /// A non-optional source has no data file for the run.
    #[error("no data files at {location}{found}")]
    NoFiles {
        extract: String,
        /// The source's location as a URL.
        location: String,
        /// What is there instead.
        found: Box<NoFilesFound>,
    },
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
    /// A file over one of its source's `limits` (docs/rules.md, "Hostile input"):
    /// a CSV header too long or too wide, or too many bytes once decompressed.
    /// `at` is `file:line`, or the file alone when no line applies; `what`
    /// states the limit's value.
    #[error("{at}: {what}, the source's limits.{limit}")]
    OverLimit {
        at: String,
        what: String,
        /// The limit's key under `limits:`, e.g. `max_decompressed_bytes`.
        limit: &'static str,
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

/// Why staging a source failed: its path, its store, reading it, writing its
/// typed files, its reject budget, or its rows not adding up. The run wraps it
/// (`RunError::Staging`) and shows it as is.
#[derive(Debug, thiserror::Error)]
pub enum StagingError {
    /// The source's path does not resolve (a problem of the job or `--set`).
    #[error("job: {0}")]
    Bind(String),
    #[error("storage: {0}")]
    Storage(#[from] crate::storage::StorageError),
    #[error("source {name}: {source}")]
    Read { name: String, source: SourceError },
    #[error(
        "source {name}: {rejected} of {read} rows rejected, over the budget ({budget}); top reasons: {reasons}; rejects are in {rejects}"
    )]
    RejectBudget {
        name: String,
        rejected: u64,
        read: u64,
        budget: String,
        reasons: String,
        rejects: String,
    },
    #[error("accounting: source {name}: rows do not add up: {detail}")]
    Accounting { name: String, detail: String },
    #[error("engine: {what}: {source}")]
    Query {
        what: String,
        source: datafusion::error::DataFusionError,
    },
    #[error(transparent)]
    Sink(#[from] crate::outputs::SinkError),
}

/// A byte count as a person would write the limit: `1 MiB`, `16 GiB`, `1500 bytes`.
pub(crate) fn human_bytes(n: u64) -> String {
    const UNITS: [(u64, &str); 4] = [
        (1 << 40, "TiB"),
        (1 << 30, "GiB"),
        (1 << 20, "MiB"),
        (1 << 10, "KiB"),
    ];
    UNITS
        .iter()
        .find(|(size, _)| n >= *size && n.is_multiple_of(*size))
        .map(|(size, unit)| format!("{} {unit}", n / size))
        .unwrap_or_else(|| format!("{n} bytes"))
}

/// What a [`SourceError::NoFiles`] found instead of data files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoFilesFound {
    /// The logical date: partitions `dt <= date` are read.
    pub date: NaiveDate,
    /// Whether the source is a folder of `dt=` partitions.
    pub partitioned: bool,
    /// Partitions `dt <= date` that hold no data file of the declared format.
    pub empty: Vec<NaiveDate>,
    /// Partitions after the date (not read by this run).
    pub later: Vec<NaiveDate>,
}

impl NoFilesFound {
    /// What to do about it.
    fn next_step(&self) -> String {
        match (self.partitioned, self.empty.as_slice(), self.later.as_slice()) {
            (true, [], [first, .., last] | [first @ last]) => format!(
                "run a date on or after {first} (`--date {last}` reads every partition there is)"
            ),
            (true, [_, ..], _) => "put the day's extract files in those folders (or fix the source's `format:`), then rerun the date".into(),
            _ => "check the raw root and the source's `path:` (`--set raw=URL` points a run at other extracts; `c360 explain JOB` lists what each source reads)".into(),
        }
    }
}

impl std::fmt::Display for NoFilesFound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let range = |days: &[NaiveDate]| match days {
            [] => String::new(),
            [one] => format!("dt={one}"),
            [first, .., last] => format!("dt={first} … dt={last} ({} partitions)", days.len()),
        };
        let date = self.date;
        match (
            self.partitioned,
            self.empty.as_slice(),
            self.later.as_slice(),
        ) {
            (false, _, _) => write!(f, ": nothing of the source's format there"),
            (true, [], []) => write!(f, ": no dt=YYYY-MM-DD partition there"),
            (true, [], later) => write!(
                f,
                " for {date}: a run reads partitions dt <= {date}, and the extract starts later: {}",
                range(later)
            ),
            (true, empty, _) => write!(
                f,
                " for {date}: {} hold no file of the source's format",
                range(empty)
            ),
        }
    }
}

impl StagingError {
    /// The layer that failed, as the run log names it.
    pub fn layer(&self) -> &'static str {
        match self {
            Self::Bind(_) => "job",
            Self::Storage(_) => "storage",
            Self::Read { .. } | Self::RejectBudget { .. } => "source",
            Self::Accounting { .. } => "accounting",
            Self::Query { .. } => "engine",
            Self::Sink(_) => "sink",
        }
    }

    /// What the engineer should do next.
    pub fn next_step(&self) -> String {
        match self {
            Self::Bind(_) => "fix the job file or the command line, then rerun".into(),
            Self::Storage(_) => "check the storage URL, options and credentials".into(),
            Self::Read {
                source: SourceError::NoFiles { found, .. },
                ..
            } => found.next_step(),
            Self::Read {
                name,
                source: SourceError::OverLimit { limit, .. },
            } => format!(
                "if the file is a genuine extract, raise `sources.{name}.limits.{limit}` in the job; otherwise remove it from the raw zone; then rerun the date"
            ),
            Self::Read { .. } => {
                "fix or remove the raw file named in the error, then rerun the date".into()
            }
            Self::RejectBudget { rejects, .. } => format!(
                "read the rejects in {rejects}, fix the extract upstream (or raise the source's rejects budget), then rerun the date"
            ),
            Self::Accounting { .. } => {
                "rows were lost between reading and staging: a c360 bug; keep this run record and report it".into()
            }
            Self::Query { .. } => {
                "fix the SQL (or memory limit) named in the error, then rerun the date".into()
            }
            Self::Sink(_) => {
                "rerun the date: readers still see complete snapshots, and the rerun finishes or undoes this commit".into()
            }
        }
    }

    /// Whether a retry may succeed: storage and network trouble, not bad input
    /// (a retry would read the same bytes and fail the same way).
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Storage(_) | Self::Sink(crate::outputs::SinkError::Store { .. }) => true,
            Self::Read { source, .. } => match source {
                SourceError::List { .. } => true,
                // A read that fails on bytes it got (bad gzip, bad UTF-8) fails again.
                SourceError::Read { source, .. } => {
                    source.kind() != std::io::ErrorKind::InvalidData
                }
                _ => false,
            },
            _ => false,
        }
    }
}
