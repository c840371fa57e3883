//! Sources: raw extracts read, validated, staged and accounted for, the first
//! stages of a run after the job is loaded.
//!
//! Reading: `read_source` lists the files of one source in the raw layout
//! (`layout`), streams and decompresses each (`decode`), parses it per its declared
//! format (`csv`, `ndjson`, `parquet`) and classifies every row (`rows`, `typing`)
//! into a typed accepted row or a reject (`reject`) per DATA_CONTRACT.md. Batches go
//! to two `BatchSink`s as they fill, so memory stays bounded by the batch size.
//!
//! Staging (`stage`): each source of a run read once into typed Parquet, a
//! partitioned source through the typed staging cache (`cache`), and registered as
//! a table. Accounting (`dedup`): each key's copies resolved by the schema's rule,
//! `<source>_deduped` registered, and every row read accounted for.

mod cache;
mod csv;
mod decode;
pub(crate) mod dedup;
mod erased;
mod error;
pub mod layout;
mod ndjson;
mod parquet;
mod reject;
mod rows;
mod schema;
pub(crate) mod stage;
mod typing;

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use chrono::NaiveDate;
use datafusion::arrow::record_batch::RecordBatch;
use futures::future::BoxFuture;
use object_store::ObjectStore;
use object_store::path::Path;
use tokio::sync::mpsc;

pub(crate) use cache::{CacheUse, CachedDay, days_cached, forget_erased, without_erased};
pub use dedup::RowAccounting;
pub use erased::ErasedIdentifiers;
pub use error::{NoFilesFound, SourceError, StagingError};
pub use layout::{Codec, Listing, RawFile, list_files};
pub use reject::{Reason, rejects_schema};
pub use rows::FileStats;
pub use schema::{
    ContractFields, FILE_COLUMN, FieldKind, FieldSpec, LINE_COLUMN, contract_fields, typed_schema,
};

use crate::job::{Format, RejectBudget, SourceSpec};
use rows::{FileContext, FileRows, Output};

/// Where accepted and rejected batches go.
pub trait BatchSink: Send {
    /// Takes one batch; an error stops the read.
    fn write(&mut self, batch: RecordBatch) -> BoxFuture<'_, Result<(), SourceError>>;
}

/// A sink that keeps every batch in memory: for tests and small reference data.
#[derive(Debug, Default)]
pub struct CollectSink {
    pub batches: Vec<RecordBatch>,
}

impl BatchSink for CollectSink {
    fn write(&mut self, batch: RecordBatch) -> BoxFuture<'_, Result<(), SourceError>> {
        self.batches.push(batch);
        Box::pin(async { Ok(()) })
    }
}

/// What to read for one source in one run. Owned (cheap to clone), so that a
/// read can be split into tasks of its own, such as one per cached day.
#[derive(Clone)]
pub struct SourceInput {
    pub spec: Arc<SourceSpec>,
    /// The raw store.
    pub store: Arc<dyn ObjectStore>,
    /// The raw root: reject `file` and `_file` are relative to it.
    pub root: Path,
    /// The interpolated source path: a folder of `dt=` partitions, or one file / a folder of files.
    pub location: Path,
    /// `location` as a URL (`file:///…`, `s3://…`), for messages.
    pub url: String,
    /// The logical date: partitions with `dt <= date` are read.
    pub date: NaiveDate,
    /// Known currency codes (upper case); `unknown_currency` is checked only when set.
    pub currencies: Option<HashSet<String>>,
    /// Rows per output batch (e.g. 8192).
    pub batch_rows: usize,
}

/// Counts of one source read, for the run log (and, per day, for the typed
/// staging cache's manifests).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SourceReport {
    /// Source name.
    pub extract: String,
    /// Data files read.
    pub files: u64,
    /// Rows seen (accepted + rejected; blank NDJSON lines are not rows).
    pub rows_read: u64,
    pub rows_accepted: u64,
    pub rows_rejected: u64,
    /// Reason name -> rejected rows.
    pub rejects_by_reason: BTreeMap<String, u64>,
    /// Extra CSV/Parquet column or unknown JSON field -> number of files having it.
    pub extra_columns: BTreeMap<String, u64>,
    /// Unknown JSON fields, one per (row, field) occurrence.
    pub unknown_fields: u64,
    /// Objects and folders ignored (relative to the raw root).
    pub skipped_files: Vec<String>,
    /// Data files read, relative to the raw root, in reading order.
    pub read_files: Vec<String>,
    /// `dt` partitions read, ascending (empty for unpartitioned sources).
    pub partitions: Vec<NaiveDate>,
}

impl SourceReport {
    /// Rejected share of the rows read (0 when nothing was read).
    pub fn reject_fraction(&self) -> f64 {
        if self.rows_read == 0 {
            0.0
        } else {
            self.rows_rejected as f64 / self.rows_read as f64
        }
    }

    /// Whether the rejects stay within `budget` (fraction and optional row cap).
    pub fn within_budget(&self, budget: &RejectBudget) -> bool {
        self.reject_fraction() <= budget.max_fraction
            && budget.max_rows.is_none_or(|max| self.rows_rejected <= max)
    }

    /// Adds the files, rows and reasons of a read of some of the source's
    /// partitions (e.g. one cached day) to this one, which lists the partitions
    /// and skipped objects itself.
    pub fn add(&mut self, part: &SourceReport) {
        self.files += part.files;
        self.read_files.extend(part.read_files.iter().cloned());
        self.rows_read += part.rows_read;
        self.rows_accepted += part.rows_accepted;
        self.rows_rejected += part.rows_rejected;
        for (reason, n) in &part.rejects_by_reason {
            *self.rejects_by_reason.entry(reason.clone()).or_default() += n;
        }
        for (column, files) in &part.extra_columns {
            *self.extra_columns.entry(column.clone()).or_default() += files;
        }
        self.unknown_fields += part.unknown_fields;
    }

    fn add_file(&mut self, rel: &str, stats: FileStats) {
        self.files += 1;
        self.read_files.push(rel.to_string());
        self.rows_read += stats.rows_read;
        self.rows_accepted += stats.rows_accepted;
        self.rows_rejected += stats.rows_rejected;
        for (reason, n) in stats.rejects_by_reason {
            *self
                .rejects_by_reason
                .entry(reason.to_string())
                .or_default() += n;
        }
        for column in stats.extra_columns {
            *self.extra_columns.entry(column).or_default() += 1;
        }
        self.unknown_fields += stats.unknown_fields;
    }
}

/// Reads one source: every row of every file ends up in `accepted` (typed, with
/// `typed_schema(spec.schema)`) or in `rejects` (`rejects_schema()`).
///
/// An optional source with no files gives an empty report; any other source with
/// no files is `SourceError::NoFiles`.
pub async fn read_source(
    input: SourceInput,
    accepted: &mut impl BatchSink,
    rejects: &mut impl BatchSink,
) -> Result<SourceReport, SourceError> {
    let listing = list_source(&input).await?;
    read_listing(&input, listing, accepted, rejects).await
}

/// The files a run reads for `input` ([`list_files`]); none is
/// `SourceError::NoFiles` unless the source is optional.
pub async fn list_source(input: &SourceInput) -> Result<Listing, SourceError> {
    // Only `dt` partitioning exists in the raw layout; the job validator rejects others.
    let partitioned = !input.spec.partitions.is_empty();
    let listing = list_files(
        input.store.as_ref(),
        &input.root,
        &input.location,
        input.spec.format,
        partitioned,
        input.date,
    )
    .await?;
    if listing.files.is_empty() && !input.spec.optional {
        return Err(SourceError::NoFiles {
            extract: input.spec.name.clone(),
            location: input.url.clone(),
            found: Box::new(NoFilesFound {
                date: input.date,
                partitioned,
                empty: listing.partitions,
                later: listing.later,
            }),
        });
    }
    Ok(listing)
}

/// Text files parsed at once: each parser runs on its own blocking thread and
/// the batches of all of them go through one channel to the two sinks, so
/// parsing and Parquet encoding together keep both cores of a small machine busy.
pub const PARALLEL_FILES: usize = 2;

/// Reads the files of `listing` (from `list_files`), e.g. one partition at a time
/// for a staging cache. Unlike `read_source`, an empty listing is not an error.
///
/// CSV and NDJSON files are parsed [`PARALLEL_FILES`] at a time; their batches
/// interleave in the sinks (row order carries no meaning: every row has its
/// `_file` and `_line`), while the report lists files in reading order.
pub async fn read_listing(
    input: &SourceInput,
    listing: Listing,
    accepted: &mut impl BatchSink,
    rejects: &mut impl BatchSink,
) -> Result<SourceReport, SourceError> {
    let mut report = SourceReport {
        extract: input.spec.name.clone(),
        skipped_files: listing.skipped,
        partitions: listing.partitions,
        ..SourceReport::default()
    };
    let currencies = input.currencies.clone().map(Arc::new);
    let context = |file: &RawFile| FileContext {
        extract: input.spec.name.as_str().into(),
        file: file.rel.as_str().into(),
        schema: input.spec.schema,
        currencies: currencies.clone(),
        batch_rows: input.batch_rows.max(1),
        limits: input.spec.limits,
        only_lines: listing.only_lines.get(&file.rel).cloned(),
    };
    let done = |report: &mut SourceReport, file: &RawFile, stats: FileStats| {
        tracing::debug!(
            file = %file.rel,
            rows = stats.rows_read,
            rejected = stats.rows_rejected,
            "source file read"
        );
        report.add_file(&file.rel, stats);
    };
    if input.spec.format == Format::Parquet {
        for file in &listing.files {
            let rows = file_rows(file, context(file))?;
            let stats = parquet::read_parquet(
                &input.store,
                file,
                rows,
                accepted,
                rejects,
                input.batch_rows,
            )
            .await?;
            done(&mut report, file, stats);
        }
        return Ok(report);
    }

    // A few batches in flight per parser: they run ahead of the sinks by at most that.
    let (tx, mut rx) = mpsc::channel::<Output>(2 * PARALLEL_FILES);
    let mut pending = std::collections::VecDeque::new();
    let mut files = listing.files.iter();
    loop {
        while pending.len() < PARALLEL_FILES {
            let Some(file) = files.next() else { break };
            let rows = file_rows(file, context(file))?;
            let task = start_text_file(input, file, rows, tx.clone());
            pending.push_back((file, task));
        }
        let Some((_, oldest)) = pending.front_mut() else {
            break;
        };
        tokio::select! {
            finished = oldest => {
                let Some((file, _)) = pending.pop_front() else { continue };
                let stats = finished.map_err(|e| SourceError::Task {
                    file: file.path.to_string(),
                    message: e.to_string(),
                })??;
                done(&mut report, file, stats);
            }
            Some(out) = rx.recv() => {
                // On a sink error the receiver is dropped, which stops the parsers at their next batch.
                route(out, accepted, rejects).await?;
            }
        }
    }
    drop(tx);
    while let Some(out) = rx.recv().await {
        route(out, accepted, rejects).await?;
    }
    Ok(report)
}

fn file_rows(file: &RawFile, ctx: FileContext) -> Result<FileRows, SourceError> {
    FileRows::new(ctx).map_err(|source| SourceError::Arrow {
        file: file.path.to_string(),
        source,
    })
}

/// Starts fetching and parsing one CSV or NDJSON file on a blocking thread; its
/// batches go to `tx`, its counts come back from the task. The fetch is the
/// task's too: awaited here, it held up the other parser's batches and left a
/// core idle while the file was read (a night's read-back of held-out records
/// kept 1.1 of 2 cores busy).
fn start_text_file(
    input: &SourceInput,
    file: &RawFile,
    rows: FileRows,
    tx: mpsc::Sender<Output>,
) -> tokio::task::JoinHandle<Result<FileStats, SourceError>> {
    let (store, file) = (input.store.clone(), file.clone());
    let format = input.spec.format;
    let max_decompressed = input.spec.limits.max_decompressed_bytes;
    let runtime = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || {
        let bridge = runtime.block_on(decode::open_object(&store, &file))?;
        let task_path = file.path.to_string();
        let reader = decode::decompress(bridge, file.compression, max_decompressed)
            .map_err(|source| decode::read_error(&task_path, source))?;
        let mut emit = |out: Output| {
            tx.blocking_send(out).map_err(|_| SourceError::Task {
                file: task_path.clone(),
                message: "batch receiver closed".into(),
            })
        };
        match format {
            Format::Ndjson => ndjson::read_ndjson(reader, rows, &task_path, &mut emit),
            _ => csv::read_csv(reader, rows, &task_path, &mut emit),
        }
    })
}

/// The currency codes of accepted `fx_rates` batches (already trimmed and upper-cased),
/// for `SourceInput::currencies` of the transactions read.
pub fn known_currencies(fx_batches: &[RecordBatch]) -> HashSet<String> {
    use datafusion::arrow::array::{Array, AsArray};
    use datafusion::arrow::compute::cast;
    use datafusion::arrow::datatypes::DataType;
    let mut codes = HashSet::new();
    for batch in fx_batches {
        // Read back from Parquet, text may arrive as Utf8View: normalise to Utf8.
        let column = batch
            .column_by_name("currency")
            .and_then(|c| cast(c, &DataType::Utf8).ok());
        if let Some(text) = column.as_ref().and_then(|c| c.as_string_opt::<i32>()) {
            codes.extend(
                (0..text.len())
                    .filter(|&i| text.is_valid(i))
                    .map(|i| text.value(i).to_string()),
            );
        }
    }
    codes
}

/// Sends a batch to the sink of its kind.
async fn route(
    out: Output,
    accepted: &mut impl BatchSink,
    rejects: &mut impl BatchSink,
) -> Result<(), SourceError> {
    match out {
        Output::Accepted(batch) => accepted.write(batch).await,
        Output::Rejected(batch) => rejects.write(batch).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_currencies_come_from_the_currency_column() {
        use datafusion::arrow::array::{ArrayRef, StringArray};
        let codes: ArrayRef = Arc::new(StringArray::from(vec![Some("EUR"), None, Some("GBP")]));
        let batch = RecordBatch::try_from_iter(vec![("currency", codes)]).unwrap();
        let expected: HashSet<String> = ["EUR".to_string(), "GBP".to_string()].into();
        assert_eq!(known_currencies(&[batch]), expected);
        assert!(known_currencies(&[]).is_empty());
    }

    #[test]
    fn budget_uses_fraction_and_row_cap() {
        let report = SourceReport {
            rows_read: 200,
            rows_rejected: 2,
            ..SourceReport::default()
        };
        assert!((report.reject_fraction() - 0.01).abs() < 1e-12);
        assert!(report.within_budget(&RejectBudget::default()));
        assert!(!report.within_budget(&RejectBudget {
            max_fraction: 0.009,
            max_rows: None
        }));
        assert!(!report.within_budget(&RejectBudget {
            max_fraction: 0.5,
            max_rows: Some(1)
        }));
        assert_eq!(SourceReport::default().reject_fraction(), 0.0);
    }
}
