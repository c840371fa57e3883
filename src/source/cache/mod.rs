//! The typed staging cache: each raw `dt=` partition of a source is parsed and
//! validated once into typed Parquet and its rejects, kept at
//! `<warehouse>/_c360/staging/<source>/dt=D/` for later runs (DESIGN.md,
//! "Warehouse layout").
//!
//! An entry is trusted only through its `manifest.json`, which names its files
//! and the key it was parsed under: the raw files of the day (relative name,
//! size, and the store's ETag or modification time), the contract schema and
//! format, the currency codes transactions were checked against, the source's
//! size `limits` (they decide which rows are rejected for their size), and the
//! c360 version (parsing rules change with it). A run whose key for a day
//! differs from the manifest's — a re-sent or changed file, a file added or
//! removed, new currencies — parses the day again; an equal key reuses it;
//! entries of days no longer in the raw listing (up to the run's date) are
//! deleted. Parsing never depends on the logical date (only which days are
//! read does), so an entry serves every later date.
//!
//! Crash safety: a day's files are written under names carrying the run id,
//! then the manifest is put (a single atomic object write), then files the
//! manifest does not name are deleted. A run killed before the put leaves the
//! old manifest naming the old, intact files (or none), so no later run trusts
//! a half-written day; the orphans go when the day is next written. Runs hold
//! the warehouse lease, so one run at a time touches the cache.
//!
//! Erasure: the cache keeps nothing of an erased person, and a run still reads
//! every row a parse of the raw files gives (erasure applies where rows are
//! read: the steps, the rejects filter). At the end of a run, the rows and
//! rejects of an entry that carry an erased identifier are taken out of its
//! files and only their place is kept: the manifest's `held_out` lists each
//! one's raw file and line (`erased`). A later run reuses the entry and reads
//! those records back from the raw files, which its key says are unchanged,
//! skipping every other record unparsed, so it reads exactly the rows of a full
//! parse. Raw Parquet files have no lines: their entries are deleted instead and
//! parsed again. Files: `parquet_sink` (what a day is written with), `erased`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::NaiveDate;
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use futures::StreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};

use crate::outputs::{SinkError, WrittenFile};
use crate::source::StagingError;
use crate::source::{self, Listing, RawFile, SourceError, SourceInput, SourceReport};

mod erased;
mod manifest;
mod parquet_sink;

pub(crate) use erased::{forget_erased, without_erased};
pub(crate) use manifest::days_cached;
use manifest::{
    CACHE_FORMAT, EntryFile, EntryKey, InputFile, MANIFEST, Manifest, put_manifest, read_manifest,
};
pub(super) use parquet_sink::ParquetSink;

/// The Hive path carries the extract name, so reject files leave that column out.
pub(super) const EXTRACT_COLUMN: &str = "extract";

/// Days parsed at once. Each parses its files [`source::PARALLEL_FILES`] at a
/// time, so a source of one file per day still keeps two parsers busy.
const PARALLEL_DAYS: usize = source::PARALLEL_FILES;

/// How a run uses the cache.
#[derive(Debug, Clone)]
pub(crate) struct CacheUse {
    /// Names the files the run writes.
    pub run_id: Arc<str>,
    /// Parse every day again (`--full-refresh`).
    pub full_refresh: bool,
    /// Also delete unnamed files of reused entries: set when the run recovered
    /// after killed runs, whose half-written files are the only such files.
    pub sweep: bool,
    /// Counts each day read, parsed or reused.
    pub progress: crate::progress::Progress,
}

/// One source's cache folder and how this run uses it.
#[derive(Clone)]
pub(super) struct SourceCache {
    pub store: Arc<dyn ObjectStore>,
    /// The store is a root `LocalFileSystem`, whose killed writes leave hidden files.
    pub local_disk: bool,
    /// `_c360/staging/<source>` in the warehouse store.
    pub dir: Path,
    /// Where this run writes the held-out records it reads back: a folder of its
    /// private staging, deleted when the run ends.
    pub scratch: Path,
    pub using: CacheUse,
}

/// A source read through the cache.
pub(super) struct CachedRead {
    /// The whole read, as if every day had been parsed now.
    pub report: SourceReport,
    /// Typed rows, one file per day with rows, in day order.
    pub typed: Vec<WrittenFile>,
    /// Reject files of the days with rejects, in day order.
    pub rejects: Vec<WrittenFile>,
    pub days_parsed: Vec<NaiveDate>,
    pub days_reused: Vec<NaiveDate>,
    /// Held-out records read back from the raw files (module docs).
    pub rows_read_back: u64,
    /// Every day read, in day order, as an incremental step folds it.
    pub days: Vec<CachedDay>,
    /// The typed held-out records read back (also last in `typed`).
    pub read_back: Option<WrittenFile>,
}

/// One day of a cached source as an incremental step sees it
/// (`crate::steps::carried`): what it was parsed from, whether it was last found
/// clean of erased people, and its typed rows.
#[derive(Debug, Clone)]
pub(crate) struct CachedDay {
    pub dt: NaiveDate,
    /// Names the parse the entry holds: its key's digest (the day's raw files,
    /// the rules) and the run that parsed it. A day parsed again, even from the
    /// same files (`--full-refresh`), is another parse: its held-out rows are
    /// back in its files.
    pub key: String,
    /// The erased set the entry was last found clean for ([`forget_erased`]).
    pub clean_for: Option<u64>,
    /// The entry's typed rows (none when every row was rejected or held out).
    pub typed: Option<WrittenFile>,
}

impl SourceCache {
    /// Reads the partitioned source of `listing` (from `source::list_files`):
    /// each day from its entry when the key matches, else parsed into a new one.
    pub async fn read(
        &self,
        input: &SourceInput,
        listing: Listing,
    ) -> Result<CachedRead, StagingError> {
        let spec = &input.spec;
        let mut days: Vec<(NaiveDate, Vec<RawFile>)> = Vec::new();
        for file in listing.files {
            let Some(dt) = file.dt else { continue };
            match days.last_mut() {
                Some((d, files)) if *d == dt => files.push(file),
                _ => days.push((dt, vec![file])),
            }
        }
        self.using.progress.add_total(days.len() as u64);
        self.using.progress.working_on(&spec.name);
        let listed: BTreeSet<NaiveDate> = days.iter().map(|(d, _)| *d).collect();
        self.drop_vanished(&listed, input.date).await?;
        let currencies = input.currencies.as_ref().map(|codes| {
            let mut sorted: Vec<String> = codes.iter().cloned().collect();
            sorted.sort();
            sorted
        });
        let base = EntryKey {
            cache_format: CACHE_FORMAT,
            c360_version: env!("CARGO_PKG_VERSION").to_string(),
            schema: format!("{:?}", spec.schema),
            format: format!("{:?}", spec.format),
            currencies,
            limits: Some(spec.limits),
            files: Vec::new(),
        };
        // Each day is a task of its own, so that two days' Parquet encoding runs
        // on both runtime workers while their parsers use blocking threads.
        let raw_files: BTreeMap<NaiveDate, Vec<RawFile>> = days.iter().cloned().collect();
        let entries: Vec<(NaiveDate, Manifest, bool)> =
            futures::stream::iter(days.into_iter().map(|(dt, files)| {
                let key = EntryKey {
                    files: files
                        .iter()
                        .map(|f| InputFile {
                            rel: f.rel.clone(),
                            size: f.size,
                            version: f.version.clone(),
                        })
                        .collect(),
                    ..base.clone()
                };
                let (cache, input) = (self.clone(), input.clone());
                tokio::spawn(async move {
                    let (manifest, parsed) = cache.day(&input, dt, &files, key).await?;
                    let day = format!("{} dt={dt}", input.spec.name);
                    cache.using.progress.done_one(&day);
                    Ok::<_, StagingError>((dt, manifest, parsed))
                })
            }))
            .buffered(PARALLEL_DAYS)
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .map(|joined| {
                joined.map_err(|e| StagingError::Read {
                    name: spec.name.clone(),
                    source: SourceError::Task {
                        file: self.dir.to_string(),
                        message: e.to_string(),
                    },
                })?
            })
            .collect::<Result<_, _>>()?;

        let mut read = CachedRead {
            report: SourceReport {
                extract: spec.name.clone(),
                skipped_files: listing.skipped,
                partitions: listing.partitions,
                ..SourceReport::default()
            },
            typed: Vec::new(),
            rejects: Vec::new(),
            days_parsed: Vec::new(),
            days_reused: Vec::new(),
            rows_read_back: 0,
            days: Vec::new(),
            read_back: None,
        };
        for &(dt, ref manifest, parsed) in &entries {
            read.report.add(&manifest.report);
            let dir = self.entry_dir(dt);
            let file = |f: &EntryFile| WrittenFile {
                path: dir.clone().join(f.name.as_str()),
                rows: f.rows,
                bytes: f.bytes,
            };
            let typed = (manifest.typed.rows > 0).then(|| file(&manifest.typed));
            read.typed.extend(typed.clone());
            read.days.push(CachedDay {
                dt,
                key: format!("{} {}", manifest.key.digest(), manifest.written_by),
                clean_for: manifest.clean_for,
                typed,
            });
            if manifest.rejects.rows > 0 {
                read.rejects.push(file(&manifest.rejects));
            }
            if parsed {
                read.days_parsed.push(dt);
            } else {
                read.days_reused.push(dt);
            }
        }
        // After the days' own files: the held-out records, all days in one file.
        if let Some(back) = self.read_back(input, &raw_files, &entries).await? {
            read.rows_read_back = back.typed.rows + back.rejects.rows;
            if back.typed.rows > 0 {
                read.typed.push(back.typed.clone());
                read.read_back = Some(back.typed);
            }
            read.rejects
                .extend((back.rejects.rows > 0).then_some(back.rejects));
        }
        Ok(read)
    }

    fn entry_dir(&self, dt: NaiveDate) -> Path {
        self.dir.clone().join(format!("dt={dt}"))
    }

    /// The entry of day `dt`: the cached one when its key is `key`, else a new
    /// parse of `files`. `true` when parsed now.
    async fn day(
        &self,
        input: &SourceInput,
        dt: NaiveDate,
        files: &[RawFile],
        key: EntryKey,
    ) -> Result<(Manifest, bool), StagingError> {
        let dir = self.entry_dir(dt);
        let manifest_path = dir.clone().join(MANIFEST);
        if !self.using.full_refresh
            && let Some(cached) = read_manifest(&self.store, &manifest_path).await?
            && cached.key == key
        {
            if self.using.sweep {
                self.remove_unnamed(&dir, &cached).await?;
            }
            return Ok((cached, false));
        }
        let run_id = &*self.using.run_id;
        let typed_name = format!("typed-{run_id}.parquet");
        let rejects_name = format!("rejects-{run_id}.parquet");
        let mut accepted = ParquetSink::typed(
            &self.store,
            dir.clone().join(typed_name.as_str()),
            &input.spec,
        )?;
        let mut rejected =
            ParquetSink::rejects(&self.store, dir.clone().join(rejects_name.as_str()))?;
        let listing = Listing {
            files: files.to_vec(),
            partitions: vec![dt],
            ..Listing::default()
        };
        let report = source::read_listing(input, listing, &mut accepted, &mut rejected)
            .await
            .map_err(|source| StagingError::Read {
                name: input.spec.name.clone(),
                source,
            })?;
        let entry_file = |name: String, written: WrittenFile| EntryFile {
            name,
            rows: written.rows,
            bytes: written.bytes,
        };
        let manifest = Manifest {
            key,
            typed: entry_file(typed_name, accepted.writer.finish().await?),
            rejects: entry_file(rejects_name, rejected.writer.finish().await?),
            report,
            written_by: run_id.to_string(),
            clean_for: None,
            held_out: BTreeMap::new(),
        };
        put_manifest(&self.store, &manifest_path, &manifest).await?;
        self.remove_unnamed(&dir, &manifest).await?;
        Ok((manifest, true))
    }

    /// Deletes the objects of entry `dir` that `manifest` does not name,
    /// including, on local disk, the hidden files of writes a killed run left.
    async fn remove_unnamed(&self, dir: &Path, manifest: &Manifest) -> Result<(), StagingError> {
        if self.local_disk {
            crate::storage::remove_interrupted_writes(dir)?;
        }
        let listing = self
            .store
            .list_with_delimiter(Some(dir))
            .await
            .map_err(store_err(dir))?;
        let keep = [MANIFEST, &manifest.typed.name, &manifest.rejects.name];
        for object in listing.objects {
            let name = object.location.filename().unwrap_or_default();
            if !keep.contains(&name) {
                self.delete(&object.location).await?;
            }
        }
        Ok(())
    }

    /// Deletes the entries of days up to `date` that are not in `listed`: their
    /// raw partition is gone (or holds no data files any more). Manifest first,
    /// so a crash midway leaves only untrusted files.
    async fn drop_vanished(
        &self,
        listed: &BTreeSet<NaiveDate>,
        date: NaiveDate,
    ) -> Result<(), StagingError> {
        let top = match self.store.list_with_delimiter(Some(&self.dir)).await {
            Ok(top) => top,
            Err(object_store::Error::NotFound { .. }) => return Ok(()),
            Err(e) => return Err(store_err(&self.dir)(e).into()),
        };
        for folder in top.common_prefixes {
            let Some(dt) = folder.filename().and_then(source::layout::parse_partition) else {
                continue;
            };
            if dt > date || listed.contains(&dt) {
                continue;
            }
            tracing::info!(entry = %folder, "raw partition gone: cache entry dropped");
            self.delete(&folder.clone().join(MANIFEST)).await?;
            let content = self
                .store
                .list_with_delimiter(Some(&folder))
                .await
                .map_err(store_err(&folder))?;
            for object in content.objects {
                self.delete(&object.location).await?;
            }
        }
        Ok(())
    }

    async fn delete(&self, path: &Path) -> Result<(), StagingError> {
        delete(&self.store, path).await
    }
}

/// A reader of the Parquet file at `path`, fetched whole: a cache file holds one
/// day of one source.
pub(super) async fn parquet_file(
    store: &Arc<dyn ObjectStore>,
    path: &Path,
) -> Result<ParquetRecordBatchReaderBuilder<bytes::Bytes>, StagingError> {
    parquet_reader(fetch(store, path).await?, path)
}

/// The whole object at `path`.
pub(super) async fn fetch(
    store: &Arc<dyn ObjectStore>,
    path: &Path,
) -> Result<bytes::Bytes, StagingError> {
    let found = store.get(path).await.map_err(store_err(path))?;
    Ok(found.bytes().await.map_err(store_err(path))?)
}

/// A reader of the Parquet file `bytes` fetched from `path` (`Bytes` is a cheap
/// handle: a file fetched once can be read several times).
pub(super) fn parquet_reader(
    bytes: bytes::Bytes,
    path: &Path,
) -> Result<ParquetRecordBatchReaderBuilder<bytes::Bytes>, StagingError> {
    let builder =
        ParquetRecordBatchReaderBuilder::try_new(bytes).map_err(|source| SinkError::Parquet {
            path: path.to_string(),
            source,
        })?;
    Ok(builder)
}

async fn delete(store: &Arc<dyn ObjectStore>, path: &Path) -> Result<(), StagingError> {
    match store.delete(path).await {
        Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
        Err(e) => Err(store_err(path)(e).into()),
    }
}

pub(super) fn store_err(path: &Path) -> impl FnOnce(object_store::Error) -> SinkError {
    let path = path.to_string();
    move |source| SinkError::Store { path, source }
}
