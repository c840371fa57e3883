//! Source staging: each source is read once per run into typed Parquet (a
//! partitioned source through the typed staging cache, `cache/`) and its
//! rejects into the run's staging folder, then registered as a table. Later
//! steps read the typed Parquet, never the raw files again.

use std::collections::HashSet;
use std::sync::Arc;

use chrono::NaiveDate;
use datafusion::prelude::SessionContext;
use object_store::ObjectStore;
use object_store::path::Path;

use super::StagingError;
use super::cache::{CacheUse, ParquetSink, SourceCache, parquet_file};
use crate::job::{ContractSchema, SourceSpec};
use crate::outputs::{self, SinkError, StagedPartition, WrittenFile};
use crate::source::{self, SourceReport};
use crate::storage::StorageLocation;

/// Rows of each source batch read from raw files.
const SOURCE_BATCH_ROWS: usize = 8192;

/// Where and when a run stages its sources: the bound variables (for `{raw}`
/// and params in source paths), the job's stores, the logical date.
pub(crate) struct StageEnv<'a> {
    pub vars: &'a std::collections::BTreeMap<String, String>,
    pub registry: &'a crate::storage::StorageRegistry,
    pub raw: &'a StorageLocation,
    pub warehouse: &'a StorageLocation,
    pub date: NaiveDate,
}

/// The typed staging cache folder of `source` in the warehouse at `warehouse`:
/// `_c360/staging/<source>`.
pub(crate) fn cache_dir(warehouse: &Path, source: &str) -> Path {
    warehouse.clone().join("_c360").join("staging").join(source)
}

/// One source read into staging.
pub(crate) struct StagedSource {
    pub report: SourceReport,
    /// The typed rows (registered as the source's table): the cache entries of
    /// a partitioned source, one file in the run's staging folder otherwise.
    pub typed: Vec<WrittenFile>,
    pub rejects: StagedPartition,
    /// The source's folder of the typed staging cache, when read through it.
    pub cache_dir: Option<Path>,
    /// Days parsed by this run and days read from the typed staging cache.
    pub days_parsed: Vec<NaiveDate>,
    pub days_reused: Vec<NaiveDate>,
    /// Every cached day, in day order (empty when not read through the cache).
    pub days: Vec<super::CachedDay>,
    /// The held-out records read back from the raw files (module `cache`).
    pub read_back: Option<WrittenFile>,
}

/// Reads one source and registers its typed rows as table `<name>`; its rejects
/// go to `tmp/rejects/<name>/`. A partitioned source is read through the typed
/// staging cache (`cache/`); an unpartitioned one (reference data, small)
/// and the erasure requests (which name the people to forget, so they are kept
/// nowhere) are parsed each run into `tmp/sources/<name>/`.
pub(crate) async fn stage_source(
    ctx: &SessionContext,
    env: &StageEnv<'_>,
    spec: &SourceSpec,
    currencies: Option<HashSet<String>>,
    tmp: &Path,
    cache: CacheUse,
) -> Result<StagedSource, StagingError> {
    let (input, _) = source_input(env, spec, currencies)?;
    let store = &env.warehouse.store;
    let typed_path = tmp
        .clone()
        .join("sources")
        .join(spec.name.as_str())
        .join(outputs::part_name(0));
    let rejects_dir = tmp.clone().join("rejects").join(spec.name.as_str());
    let mut rejected =
        ParquetSink::rejects(store, rejects_dir.clone().join(outputs::part_name(0)))?;
    let source_err = |source| StagingError::Read {
        name: spec.name.clone(),
        source,
    };
    let listing = source::list_source(&input).await.map_err(source_err)?;
    let cached = !spec.partitions.is_empty()
        && !listing.files.is_empty()
        && spec.schema != ContractSchema::Suppressions;
    let cache_dir = cached.then(|| cache_dir(&env.warehouse.prefix, &spec.name));
    let (mut days, mut read_back) = (Vec::new(), None);
    let (report, mut typed, days_parsed, days_reused) = if let Some(dir) = &cache_dir {
        let cache = SourceCache {
            store: store.clone(),
            local_disk: env.warehouse.is_local_disk(),
            dir: dir.clone(),
            scratch: tmp.clone().join("held_out").join(spec.name.as_str()),
            using: cache,
        };
        let read = cache.read(&input, listing).await?;
        if read.rows_read_back > 0 {
            tracing::info!(source = %spec.name, rows = read.rows_read_back, "held-out rows of erased people read back from the raw files");
        }
        copy_rejects(store, &read.rejects, &mut rejected).await?;
        (days, read_back) = (read.days, read.read_back);
        (read.report, read.typed, read.days_parsed, read.days_reused)
    } else {
        let mut accepted = ParquetSink::typed(store, typed_path.clone(), spec)?;
        let report = source::read_listing(&input, listing, &mut accepted, &mut rejected)
            .await
            .map_err(source_err)?;
        (
            report,
            vec![accepted.writer.finish().await?],
            Vec::new(),
            Vec::new(),
        )
    };
    if typed.is_empty() {
        // Every day was rejected whole: an empty file gives the table its schema.
        typed.push(
            ParquetSink::typed(store, typed_path, spec)?
                .writer
                .finish()
                .await?,
        );
    }
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
        days_parsed = days_parsed.len(),
        days_reused = days_reused.len(),
        "source staged"
    );
    for (column, files) in &report.extra_columns {
        tracing::warn!(source = %spec.name, column = %column, files, "extra column ignored");
    }
    if !report.skipped_files.is_empty() {
        tracing::warn!(source = %spec.name, skipped = ?report.skipped_files, "files skipped: not of the declared format");
    }
    let store_url = env.warehouse.store_url.as_str();
    let paths: Vec<Path> = typed.iter().map(|f| f.path.clone()).collect();
    crate::engine::register_staged_files(ctx, &spec.name, store_url, &paths)
        .await
        .map_err(|source| StagingError::Query {
            what: format!("source {}", spec.name),
            source,
        })?;
    Ok(StagedSource {
        report,
        typed,
        rejects,
        cache_dir,
        days_parsed,
        days_reused,
        days,
        read_back,
    })
}

/// Appends the rows of cached reject files (bounded by the reject budget, so
/// each is read whole) to the run's reject file.
async fn copy_rejects(
    store: &Arc<dyn ObjectStore>,
    files: &[WrittenFile],
    to: &mut ParquetSink,
) -> Result<(), StagingError> {
    for file in files {
        let parquet_err = |source| SinkError::Parquet {
            path: file.path.to_string(),
            source,
        };
        let reader = parquet_file(store, &file.path)
            .await?
            .build()
            .map_err(parquet_err)?;
        for batch in reader {
            let batch = batch.map_err(|e| parquet_err(e.into()))?;
            to.writer.write(&batch).await?;
        }
    }
    Ok(())
}

/// What the reader of source `spec` needs, and where the source lives: its
/// path interpolated with the bound variables and resolved, reject files named
/// relative to the raw root.
pub(crate) fn source_input(
    env: &StageEnv<'_>,
    spec: &SourceSpec,
    currencies: Option<HashSet<String>>,
) -> Result<(source::SourceInput, StorageLocation), StagingError> {
    let path = crate::job::interpolate(&spec.path, env.vars)
        .map_err(|e| StagingError::Bind(format!("source {}: {e}", spec.name)))?;
    let location = env.registry.resolve(&path)?;
    let input = source::SourceInput {
        spec: Arc::new(spec.clone()),
        store: location.store.clone(),
        root: reject_root(env.raw, &location),
        location: location.prefix.clone(),
        url: location.url.to_string(),
        date: env.date,
        currencies,
        batch_rows: SOURCE_BATCH_ROWS,
    };
    Ok((input, location))
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
pub(crate) async fn known_currencies(
    ctx: &SessionContext,
    fx: &str,
) -> Result<HashSet<String>, StagingError> {
    let query_err = |source| StagingError::Query {
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
pub(crate) fn check_reject_budget(
    spec: &SourceSpec,
    report: &SourceReport,
    rejects_location: String,
) -> Result<(), StagingError> {
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
    Err(StagingError::RejectBudget {
        name: spec.name.clone(),
        rejected: report.rows_rejected,
        read: report.rows_read,
        budget: budget_text,
        reasons,
        rejects: rejects_location,
    })
}
