//! Source staging: each source is read once per run into typed Parquet under the
//! run's staging folder (and its rejects beside it), then registered as a table.
//! Later steps read the typed Parquet, never the raw files again.

use std::collections::HashSet;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::prelude::SessionContext;
use futures::future::BoxFuture;
use object_store::path::Path;

use super::{Bound, RunError};
use crate::job::{Compression, FileLayout, SourceSpec};
use crate::sink::{self, ParquetFileWriter, StagedPartition, WrittenFile};
use crate::source::{self, BatchSink, SourceError, SourceReport};
use crate::storage::StorageLocation;

/// Rows of each source batch read from raw files.
const SOURCE_BATCH_ROWS: usize = 8192;

/// The Hive path carries the extract name, so reject files leave that column out.
const EXTRACT_COLUMN: &str = "extract";

/// Writes batches to one Parquet file, optionally leaving out one column.
struct ParquetSink {
    writer: ParquetFileWriter,
    keep: Option<Vec<usize>>,
}

impl ParquetSink {
    fn create(
        store: &std::sync::Arc<dyn object_store::ObjectStore>,
        path: Path,
        schema: SchemaRef,
        drop_column: Option<&str>,
    ) -> Result<Self, RunError> {
        let keep: Option<Vec<usize>> = drop_column.map(|name| {
            (0..schema.fields().len())
                .filter(|&i| schema.field(i).name() != name)
                .collect()
        });
        let file_schema = match &keep {
            Some(indices) => std::sync::Arc::new(schema.project(indices).map_err(|e| {
                RunError::Bind(format!("internal: cannot project reject schema: {e}"))
            })?),
            None => schema,
        };
        Ok(Self {
            writer: ParquetFileWriter::create(
                store.clone(),
                path,
                file_schema,
                Compression::Zstd,
                &FileLayout::staging(),
            )?,
            keep,
        })
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

/// One source read into staging.
pub(super) struct StagedSource {
    pub report: SourceReport,
    /// The typed rows (registered as the source's table).
    pub typed: WrittenFile,
    pub rejects: StagedPartition,
}

/// Reads one source into `tmp/sources/<name>/` (typed) and `tmp/rejects/<name>/`,
/// and registers the typed rows as table `<name>`.
pub(super) async fn stage_source(
    ctx: &SessionContext,
    bound: &Bound,
    spec: &SourceSpec,
    currencies: Option<HashSet<String>>,
    tmp: &Path,
) -> Result<StagedSource, RunError> {
    let path = crate::job::interpolate(&spec.path, &bound.vars)
        .map_err(|e| RunError::Bind(format!("source {}: {e}", spec.name)))?;
    let location = bound.registry.resolve(&path)?;
    let store = &bound.warehouse.store;
    let typed_dir = tmp.clone().join("sources").join(spec.name.as_str());
    let rejects_dir = tmp.clone().join("rejects").join(spec.name.as_str());
    let rejects_path = rejects_dir.clone().join(sink::part_name(0));
    let mut accepted = ParquetSink::create(
        store,
        typed_dir.clone().join(sink::part_name(0)),
        source::typed_schema(spec.schema),
        None,
    )?;
    let mut rejected = ParquetSink::create(
        store,
        rejects_path,
        source::rejects_schema(),
        Some(EXTRACT_COLUMN),
    )?;
    let input = source::SourceInput {
        spec,
        store: location.store.clone(),
        root: reject_root(&bound.raw, &location),
        location: location.prefix.clone(),
        date: bound.date,
        currencies,
        batch_rows: SOURCE_BATCH_ROWS,
    };
    let report = source::read_source(input, &mut accepted, &mut rejected)
        .await
        .map_err(|source| RunError::Source {
            name: spec.name.clone(),
            source,
        })?;
    let typed = accepted.writer.finish().await?;
    let rejects = StagedPartition {
        dir: rejects_dir,
        files: vec![rejected.writer.finish().await?],
    };
    tracing::info!(
        source = %spec.name,
        files = report.files,
        rows_read = report.rows_read,
        accepted = report.rows_accepted,
        rejected = report.rows_rejected,
        unknown_fields = report.unknown_fields,
        "source staged"
    );
    for (column, files) in &report.extra_columns {
        tracing::warn!(source = %spec.name, column = %column, files, "extra column ignored");
    }
    if !report.skipped_files.is_empty() {
        tracing::warn!(source = %spec.name, skipped = ?report.skipped_files, "files skipped: not of the declared format");
    }
    let store_url = bound.warehouse.store_url.as_str();
    crate::engine::register_staged_dir(ctx, &spec.name, store_url, &typed_dir)
        .await
        .map_err(|source| RunError::Query {
            what: format!("source {}", spec.name),
            source,
        })?;
    Ok(StagedSource {
        report,
        typed,
        rejects,
    })
}

/// Reject rows name their file relative to the raw root when the source lives
/// under it, else relative to the source's own location.
fn reject_root(raw: &StorageLocation, location: &StorageLocation) -> Path {
    if location.url.as_str().starts_with(raw.url.as_str()) {
        raw.prefix.clone()
    } else {
        location.prefix.clone()
    }
}

/// Currency codes of the fx source `fx` (already staged and registered).
pub(super) async fn known_currencies(
    ctx: &SessionContext,
    fx: &str,
) -> Result<HashSet<String>, RunError> {
    let query_err = |source| RunError::Query {
        what: format!("source {fx}"),
        source,
    };
    let batches = ctx
        .table(fx)
        .await
        .map_err(query_err)?
        .collect()
        .await
        .map_err(query_err)?;
    Ok(source::known_currencies(&batches))
}

/// Fails the run when a source's rejects exceed its budget.
pub(super) fn check_reject_budget(
    spec: &SourceSpec,
    report: &SourceReport,
    rejects_location: String,
) -> Result<(), RunError> {
    let budget = spec.rejects;
    if report.within_budget(&budget) {
        return Ok(());
    }
    let mut reasons: Vec<_> = report.rejects_by_reason.iter().collect();
    reasons.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let reasons = reasons
        .iter()
        .take(3)
        .map(|(reason, n)| format!("{reason} {n}"))
        .collect::<Vec<_>>()
        .join(", ");
    let budget_text = match budget.max_rows {
        Some(max) => format!("max_fraction {}, max_rows {max}", budget.max_fraction),
        None => format!("max_fraction {}", budget.max_fraction),
    };
    Err(RunError::RejectBudget {
        name: spec.name.clone(),
        rejected: report.rows_rejected,
        read: report.rows_read,
        budget: budget_text,
        reasons,
        rejects: rejects_location,
    })
}
