//! Erasure in the typed staging cache (docs/rules.md "Erasure"): the rows and
//! rejects of an entry that carry an erased identifier are taken out of its
//! files, and the manifest keeps only where they are in the raw files, so a
//! later run reads them back from there ([`SourceCache::read_back`]; see the
//! parent module).

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::NaiveDate;
use datafusion::arrow::array::{Array, AsArray, BooleanArray, RecordBatch};
use datafusion::arrow::compute::{cast, filter_record_batch};
use datafusion::arrow::datatypes::{DataType, Int64Type};
use datafusion::parquet::arrow::ProjectionMask;
use futures::StreamExt;
use object_store::ObjectStore;
use object_store::path::Path;

use super::{
    EntryFile, MANIFEST, Manifest, ParquetSink, SourceCache, delete, fetch, parquet_reader,
    put_manifest, read_manifest,
};
use crate::job::{Compression, FileLayout};
use crate::outputs::{ParquetFileWriter, SinkError, WrittenFile};
use crate::source::{self, ErasedIdentifiers, Listing, RawFile, SourceInput, StagingError};

/// The held-out records of a source's entries, read back by this run.
pub(super) struct ReadBack {
    pub typed: WrittenFile,
    pub rejects: WrittenFile,
}

impl SourceCache {
    /// Reads the records the `entries` hold out back from their days' raw files
    /// (unchanged: each entry's key matched) into one file of the run's scratch
    /// folder (one, not one per day: every file is a unit of work for the steps
    /// that read the source), skipping every other record unparsed; `None` when
    /// no entry holds any out.
    pub(super) async fn read_back(
        &self,
        input: &SourceInput,
        raw_files: &BTreeMap<NaiveDate, Vec<RawFile>>,
        entries: &[(NaiveDate, Manifest, bool)],
    ) -> Result<Option<ReadBack>, StagingError> {
        let mut listing = Listing::default();
        for (dt, manifest, _) in entries {
            if manifest.held_out.is_empty() {
                continue;
            }
            for (file, lines) in &manifest.held_out {
                let lines = Arc::new(lines.iter().copied().collect::<hashbrown::HashSet<i64>>());
                listing.only_lines.insert(file.clone(), lines);
            }
            let day_files = raw_files.get(dt).into_iter().flatten();
            listing.files.extend(
                day_files
                    .filter(|f| manifest.held_out.contains_key(&f.rel))
                    .cloned(),
            );
            listing.partitions.push(*dt);
        }
        if listing.files.is_empty() {
            return Ok(None);
        }
        let mut typed = ParquetSink::typed(
            &self.store,
            self.scratch.clone().join("typed.parquet"),
            &input.spec,
        )?;
        let mut rejects =
            ParquetSink::rejects(&self.store, self.scratch.clone().join("rejects.parquet"))?;
        source::read_listing(input, listing, &mut typed, &mut rejects)
            .await
            .map_err(|source| StagingError::Read {
                name: input.spec.name.clone(),
                source,
            })?;
        Ok(Some(ReadBack {
            typed: typed.writer.finish().await?,
            rejects: rejects.writer.finish().await?,
        }))
    }
}

/// What [`forget_erased`] did to a source's entries.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Forgotten {
    /// Days whose entry now holds out more records.
    pub held_out: Vec<NaiveDate>,
    /// Days whose entry was deleted (raw Parquet: no lines to hold out by).
    pub deleted: Vec<NaiveDate>,
}

/// Takes every row and reject that carries one of `identifiers` out of the
/// cache entries of `days` under `dir`, so the warehouse keeps no trace of
/// erased people (docs/rules.md "Erasure"); the manifest holds out their raw
/// file and line instead. The match is the rejects' text match
/// ([`ErasedIdentifiers::carried_by`]) over a row's identifier columns, which
/// errs towards holding out: a held-out record is read back from the raw file
/// by the next run, so it never changes a result. An entry of raw Parquet files
/// is deleted instead (parsed again by the next run). An entry found clean
/// records the set's fingerprint and is not read again until the set changes.
/// New files are named after `run_id` and written before the manifest that
/// names them; the old ones are deleted after it.
pub(crate) async fn forget_erased(
    store: &Arc<dyn ObjectStore>,
    dir: &Path,
    days: &[NaiveDate],
    identifiers: &ErasedIdentifiers,
    run_id: &str,
) -> Result<Forgotten, StagingError> {
    let mut done = Forgotten::default();
    if identifiers.is_empty() {
        return Ok(done);
    }
    let fingerprint = identifiers.fingerprint();
    let identifiers = Arc::new(identifiers.clone());
    // Days two at a time, each a task: matching is CPU work on every cached row.
    let entries: Vec<Path> = days
        .iter()
        .map(|dt| dir.clone().join(format!("dt={dt}")))
        .collect();
    let (store_owned, run_id_owned) = (store.clone(), run_id.to_string());
    let tasks = entries.into_iter().map(move |entry| {
        let (store, identifiers) = (store_owned.clone(), identifiers.clone());
        let run_id = run_id_owned.clone();
        tokio::spawn(
            async move { forget_day(&store, &entry, &identifiers, fingerprint, &run_id).await },
        )
    });
    let outcomes: Vec<Result<Result<Option<Outcome>, StagingError>, tokio::task::JoinError>> =
        futures::stream::iter(tasks)
            .buffered(crate::source::PARALLEL_FILES)
            .collect()
            .await;
    for (&dt, outcome) in days.iter().zip(outcomes) {
        let outcome = outcome.map_err(|e| StagingError::Bind(format!("internal: {e}")))??;
        match outcome {
            Some(Outcome::HeldOut) => done.held_out.push(dt),
            Some(Outcome::Deleted) => done.deleted.push(dt),
            None => {}
        }
    }
    Ok(done)
}

/// What [`forget_day`] did to an entry that carried erased people.
enum Outcome {
    HeldOut,
    Deleted,
}

/// [`forget_erased`] for the entry in folder `entry`.
async fn forget_day(
    store: &Arc<dyn ObjectStore>,
    entry: &Path,
    identifiers: &ErasedIdentifiers,
    fingerprint: u64,
    run_id: &str,
) -> Result<Option<Outcome>, StagingError> {
    let manifest_path = entry.clone().join(MANIFEST);
    let Some(mut manifest) = read_manifest(store, &manifest_path).await? else {
        return Ok(None);
    };
    if manifest.clean_for == Some(fingerprint) {
        return Ok(None);
    }
    let old = [manifest.typed.clone(), manifest.rejects.clone()];
    let mut held = Vec::new();
    let mut replaced = [None, None];
    for (slot, (file, kind)) in old.iter().zip([Kind::Typed, Kind::Rejects]).enumerate() {
        if file.rows == 0 {
            continue;
        }
        let path = entry.clone().join(file.name.as_str());
        let name = format!("{}-{run_id}-e{fingerprint:016x}.parquet", kind.prefix());
        let kept = entry.clone().join(name.as_str());
        if let Some(out) = hold_out(store, &path, kind, identifiers, &kept).await? {
            let (lines, written) = (out.lines, out.kept);
            held.extend(lines);
            replaced[slot] = Some(EntryFile {
                name,
                rows: written.rows,
                bytes: written.bytes,
            });
        }
    }
    if held.is_empty() {
        manifest.clean_for = Some(fingerprint);
        put_manifest(store, &manifest_path, &manifest).await?;
        return Ok(None);
    }
    if manifest.key.format == "Parquet" {
        tracing::info!(entry = %entry, "cache entry of raw Parquet holds erased people's rows: deleted");
        delete(store, &manifest_path).await?;
        let written = replaced.iter().flatten().map(|f| f.name.as_str());
        for file in old.iter().map(|f| f.name.as_str()).chain(written) {
            delete(store, &entry.clone().join(file)).await?;
        }
        return Ok(Some(Outcome::Deleted));
    }
    tracing::info!(entry = %entry, rows = held.len(), "erased people's rows taken out of a cache entry");
    add_lines(&mut manifest.held_out, held);
    let [typed, rejects] = replaced;
    if let Some(typed) = typed {
        manifest.typed = typed;
    }
    if let Some(rejects) = rejects {
        manifest.rejects = rejects;
    }
    manifest.clean_for = Some(fingerprint);
    put_manifest(store, &manifest_path, &manifest).await?;
    for file in &old {
        if file.name != manifest.typed.name && file.name != manifest.rejects.name {
            delete(store, &entry.clone().join(file.name.as_str())).await?;
        }
    }
    Ok(Some(Outcome::HeldOut))
}

/// Merges `(file, line)` pairs into the manifest's sorted, distinct lines per file.
fn add_lines(held_out: &mut BTreeMap<String, Vec<i64>>, pairs: Vec<(String, i64)>) {
    for (file, line) in pairs {
        held_out.entry(file).or_default().push(line);
    }
    for lines in held_out.values_mut() {
        lines.sort_unstable();
        lines.dedup();
    }
}

/// Takes the rows that carry one of `identifiers` out of `path`, a file of an
/// incremental step's carried result (`crate::steps::carried`), by the match
/// the cache's typed rows get over the same identifier columns: the rows kept
/// go to `kept`. Returns how many rows were taken out and the file written, or
/// `None` (nothing written) when no row carries one.
pub(crate) async fn without_erased(
    store: &Arc<dyn ObjectStore>,
    path: &Path,
    identifiers: &ErasedIdentifiers,
    kept: &Path,
) -> Result<Option<(u64, WrittenFile)>, StagingError> {
    let out = hold_out(store, path, Kind::Carried, identifiers, kept).await?;
    Ok(out.map(|out| (out.rows, out.kept)))
}

/// The files matched: an entry's two, or a carried result's.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Typed,
    Rejects,
    Carried,
}

impl Kind {
    fn prefix(self) -> &'static str {
        match self {
            Kind::Typed => "typed",
            Kind::Rejects => "rejects",
            Kind::Carried => "carried",
        }
    }

    /// The columns matched (those present), then the file and line columns of
    /// a file whose rows have them.
    fn columns(self) -> (&'static [&'static str], Option<[&'static str; 2]>) {
        match self {
            Kind::Typed => (&IDENTIFIER_COLUMNS, Some(["_file", "_line"])),
            Kind::Rejects => (&["raw"], Some(["file", "line"])),
            Kind::Carried => (&IDENTIFIER_COLUMNS, None),
        }
    }
}

/// What [`hold_out`] took out of a file and what it kept.
struct HeldOut {
    /// (raw file, line) of each row taken out, when the file has them.
    lines: Vec<(String, i64)>,
    rows: u64,
    kept: WrittenFile,
}

/// The typed columns that can hold an identifier (DATA_CONTRACT.md).
const IDENTIFIER_COLUMNS: [&str; 4] = ["source_system", "source_customer_id", "email", "phone"];

/// Per row of `batch`, whether its matched columns (joined as one line) carry
/// an erased identifier.
fn carrying(
    batch: &RecordBatch,
    columns: &[&str],
    identifiers: &ErasedIdentifiers,
) -> Result<BooleanArray, datafusion::arrow::error::ArrowError> {
    let texts = columns
        .iter()
        .filter_map(|c| batch.column_by_name(c))
        .map(|c| cast(c, &DataType::Utf8))
        .collect::<Result<Vec<_>, _>>()?;
    let mut line = String::new();
    Ok((0..batch.num_rows())
        .map(|row| {
            line.clear();
            for text in &texts {
                let text = text.as_string::<i32>();
                if text.is_valid(row) {
                    line.push_str(text.value(row));
                }
                line.push(',');
            }
            Some(identifiers.carried_by(&line))
        })
        .collect())
}

/// When a row of Parquet file `path` carries an erased identifier: writes the
/// other rows to `kept` and returns the carrying rows' (raw file, line) with
/// the file written. `None` (and nothing written) when no row carries one.
async fn hold_out(
    store: &Arc<dyn ObjectStore>,
    path: &Path,
    kind: Kind,
    identifiers: &ErasedIdentifiers,
    kept: &Path,
) -> Result<Option<HeldOut>, StagingError> {
    let parquet_err = |source| SinkError::Parquet {
        path: path.to_string(),
        source,
    };
    let arrow_err = |e: datafusion::arrow::error::ArrowError| parquet_err(e.into());
    let (matched, place) = kind.columns();
    // Fetched once, read twice: first only the matched columns (most entries
    // carry nobody), then whole when one does.
    let bytes = fetch(store, path).await?;
    let builder = parquet_reader(bytes.clone(), path)?;
    let present: Vec<&str> = matched
        .iter()
        .copied()
        .filter(|c| builder.schema().column_with_name(c).is_some())
        .collect();
    let mask = ProjectionMask::columns(builder.parquet_schema(), present.iter().copied());
    let reader = builder.with_projection(mask).build().map_err(parquet_err)?;
    let mut any = false;
    for batch in reader {
        let batch = batch.map_err(arrow_err)?;
        if carrying(&batch, &present, identifiers)
            .map_err(arrow_err)?
            .true_count()
            > 0
        {
            any = true;
            break;
        }
    }
    if !any {
        return Ok(None);
    }
    let builder = parquet_reader(bytes, path)?;
    let schema = builder.schema().clone();
    let reader = builder.build().map_err(parquet_err)?;
    let mut writer = ParquetFileWriter::create(
        store.clone(),
        kept.clone(),
        schema,
        Compression::Snappy,
        &FileLayout::staging(),
    )?;
    let (mut held, mut rows) = (Vec::new(), 0);
    for batch in reader {
        let batch = batch.map_err(arrow_err)?;
        let carries = carrying(&batch, &present, identifiers).map_err(arrow_err)?;
        rows += carries.true_count() as u64;
        if let Some([file_col, line_col]) = place {
            let (Some(files), Some(lines)) = (
                batch.column_by_name(file_col),
                batch.column_by_name(line_col),
            ) else {
                return Err(StagingError::Bind(format!(
                    "internal: cache file {path} has no `{file_col}`, `{line_col}` columns"
                )));
            };
            let files = cast(files, &DataType::Utf8).map_err(arrow_err)?;
            let files = files.as_string::<i32>();
            let lines = lines.as_primitive_opt::<Int64Type>().ok_or_else(|| {
                StagingError::Bind(format!(
                    "internal: cache file {path}: `{line_col}` is not BIGINT"
                ))
            })?;
            for row in 0..batch.num_rows() {
                if carries.value(row) {
                    held.push((files.value(row).to_string(), lines.value(row)));
                }
            }
        }
        let keep: BooleanArray = carries.iter().map(|c| c.map(|c| !c)).collect();
        writer
            .write(&filter_record_batch(&batch, &keep).map_err(arrow_err)?)
            .await?;
    }
    Ok(Some(HeldOut {
        lines: held,
        rows,
        kept: writer.finish().await?,
    }))
}
