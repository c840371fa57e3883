//! Incremental steps (`incremental:`, README "Nightly loads"): a SQL step whose
//! result is carried in the warehouse from run to run, so a nightly run folds in
//! the new days of its sources instead of reducing every day again.
//!
//! The step must be a distributive reduction of cached sources (a `GROUP BY`
//! per source, `UNION ALL`-ed, with `MIN`/`MAX` columns): its result over rows
//! A ∪ B equals its results over A and B merged on every column but the
//! `merge` ones, each merged by its function. Min and max are idempotent, so a
//! row seen twice (a re-sent row, a held-out row also still carried) changes
//! nothing, and the merged result equals a full recompute exactly.
//!
//! ```text
//! _c360/state/<step>/manifest.json   query digest, days folded (source -> dt -> entry key),
//!                                    the erased set it is clean for, its files
//! _c360/state/<step>/base-<run>/     the carried result: the step over every folded day
//! this run's result = merge(base ∪ step(days not folded) ∪ step(held-out rows read back))
//! ```
//!
//! * A day is folded into the base when its cache entry was last found clean
//!   for the same erased set as the base (so a new day waits one run, until the
//!   end of the run that parsed it has taken erased people's rows out of it);
//!   the others are reduced each run until then.
//! * The base is rebuilt from every day when the query (the interpolated SQL
//!   and the merge), the c360 version or `--full-refresh` says so, or when a
//!   folded day's raw files changed or vanished: a day cannot be taken out of a
//!   min or max.
//! * A run for an earlier date than a folded day (a backfill) leaves the base
//!   alone and computes the step in full.
//! * Erasure: at the end of a run the base loses every row whose identifier
//!   columns carry an erased identifier, by the match the cache's rows get
//!   ([`forget_erased`]); the step keeps those columns as group keys, so a row
//!   taken out is exactly the reduction of rows the cache holds out, which each
//!   run reads back and reduces again.
//! * Crash safety as in the cache: the base is written under the run's name,
//!   then the manifest (one atomic put), then the old files are deleted.
//!
//! On a Ballista cluster the step is computed in full (not carried).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::NaiveDate;
use datafusion::catalog::MemTable;
use datafusion::catalog::MemoryCatalogProviderList;
use datafusion::common::Column;
use datafusion::execution::SessionStateBuilder;
use datafusion::functions_aggregate::expr_fn::{max, min};
use datafusion::prelude::{DataFrame, Expr, SessionContext, col};
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use serde::{Deserialize, Serialize};

use super::StepError;
use crate::engine;
use crate::job::{Compression, FileLayout, Incremental, Merge, StepSpec};
use crate::outputs::{self, StagingDir, WrittenFile};
use crate::source::{CachedDay, ErasedIdentifiers};

/// Bumped when the state layout or its meaning changes.
const STATE_FORMAT: u32 = 1;

const MANIFEST: &str = "manifest.json";

/// One partitioned source as incremental steps read it: its cached days and
/// the held-out records read back this run.
#[derive(Debug, Clone, Default)]
pub struct CachedSource {
    pub(crate) days: Vec<CachedDay>,
    pub(crate) read_back: Option<WrittenFile>,
}

impl CachedSource {
    /// A source read through the cache (`days` in day order).
    pub(crate) fn new(days: Vec<CachedDay>, read_back: Option<WrittenFile>) -> Self {
        Self { days, read_back }
    }
}

/// What incremental steps need from the run besides the session.
pub struct CarryEnv {
    /// The warehouse store, its URL and root folder.
    pub store: Arc<dyn ObjectStore>,
    pub store_url: String,
    pub warehouse: Path,
    /// The warehouse is a root `LocalFileSystem`, whose killed writes leave hidden files.
    pub local_disk: bool,
    /// Names the files this run writes.
    pub run_id: String,
    /// `--full-refresh`: every base is rebuilt.
    pub full_refresh: bool,
    /// Queries run on a cluster: steps are computed in full.
    pub on_cluster: bool,
    /// The cached sources, by name.
    pub sources: BTreeMap<String, CachedSource>,
}

/// What an incremental step did this run (the run log's `incremental`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Carried {
    /// Why the base was rebuilt from every day, when it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rebuilt: Option<String>,
    /// Source days read from the carried base.
    pub days_carried: u64,
    /// Source days folded into the base by this run.
    pub days_folded: u64,
    /// Source days reduced for this run only (not yet clean for the base's set).
    pub days_pending: u64,
}

/// Days of each source, by source name.
type DaysBySource<'a> = BTreeMap<&'a str, Vec<&'a CachedDay>>;

/// `manifest.json` of a step's state.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Manifest {
    format: u32,
    c360_version: String,
    /// Digest of the interpolated SQL and the merge.
    query: String,
    /// Source -> day -> the digest of the cache entry folded in.
    days: BTreeMap<String, BTreeMap<NaiveDate, String>>,
    /// The erased set ([`ErasedIdentifiers::fingerprint`]) every folded day was
    /// clean for, and the base is.
    clean_for: Option<u64>,
    /// The base: its folder in the state folder and the files in it.
    base: String,
    files: Vec<String>,
    written_by: String,
}

impl Manifest {
    /// The base's files, under state folder `dir`.
    fn paths(&self, dir: &Path) -> Vec<Path> {
        let base = dir.clone().join(self.base.as_str());
        self.files
            .iter()
            .map(|f| base.clone().join(f.as_str()))
            .collect()
    }
}

/// `_c360/state/<step>` under the warehouse root.
fn state_dir(warehouse: &Path, step: &str) -> Path {
    warehouse.clone().join("_c360").join("state").join(step)
}

/// Registers incremental `step` (SQL `text`, already interpolated, read from
/// `file`) on `ctx`: from its carried base when that is usable, folding in
/// what it can (module docs). `None` when computed in full instead (a backfill
/// behind the base, or a cluster).
pub async fn register_carried(
    ctx: &SessionContext,
    step: &StepSpec,
    incremental: &Incremental,
    file: &str,
    text: &str,
    date: NaiveDate,
    env: &CarryEnv,
) -> Result<Option<Carried>, StepError> {
    let (name, reads) = (step.name.as_str(), &step.depends_on);
    let sql_err = |source| StepError::Sql {
        step: name.to_string(),
        file: file.to_string(),
        source,
    };
    let state_err = |message: String| StepError::State {
        step: name.to_string(),
        message,
    };
    let reads: BTreeSet<&str> = reads.iter().map(String::as_str).collect();
    let sources: BTreeMap<&str, CachedSource> = reads
        .iter()
        .map(|s| (*s, env.sources.get(*s).cloned().unwrap_or_default()))
        .collect();
    let dir = state_dir(&env.warehouse, name);
    let query = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(format!(
            "{text}\n{:?}",
            incremental.merge
        )))
    };
    let previous = if env.full_refresh {
        None
    } else {
        read_manifest(&env.store, &dir.clone().join(MANIFEST))
            .await
            .map_err(state_err)?
    };
    let ahead = previous.as_ref().is_some_and(|m| {
        m.days
            .values()
            .any(|days| days.keys().next_back().is_some_and(|d| *d > date))
    });
    if env.on_cluster || ahead {
        let frame = ctx.sql(text).await.map_err(sql_err)?;
        ctx.register_table(name, frame.into_view())
            .map_err(sql_err)?;
        return Ok(None);
    }
    // The base, when every day it folded is still cached as it was folded.
    let mut rebuilt = None;
    let base = match previous {
        None if env.full_refresh => {
            rebuilt = Some("--full-refresh".to_string());
            None
        }
        None => {
            rebuilt = Some("no carried state".to_string());
            None
        }
        Some(m) => match stale(&m, &query, &sources) {
            Some(why) => {
                rebuilt = Some(why);
                None
            }
            None => Some(m),
        },
    };
    let folded: BTreeMap<String, BTreeMap<NaiveDate, String>> =
        base.as_ref().map(|m| m.days.clone()).unwrap_or_default();
    let clean_for = match &base {
        Some(m) => m.clean_for,
        None => most_common_clean_for(&sources),
    };
    // Days not in the base: folded now when clean for the base's set, else pending.
    let mut carried = Carried {
        rebuilt,
        ..Carried::default()
    };
    let (mut fold, mut pending): (DaysBySource, DaysBySource) = Default::default();
    for (source, cached) in &sources {
        for day in &cached.days {
            if folded.get(*source).is_some_and(|f| f.contains_key(&day.dt)) {
                carried.days_carried += 1;
            } else if day.clean_for == clean_for {
                fold.entry(source).or_default().push(day);
            } else {
                pending.entry(source).or_default().push(day);
            }
        }
    }
    carried.days_folded = fold.values().map(|d| d.len() as u64).sum();
    carried.days_pending = pending.values().map(|d| d.len() as u64).sum();

    let base_files: Vec<Path> = base.as_ref().map(|m| m.paths(&dir)).unwrap_or_default();
    let base_files = if base.is_none() || carried.days_folded > 0 {
        // base ∪ step(days to fold), merged: the new base.
        let sub = sub_context(ctx);
        for source in &reads {
            let files = fold
                .get(source)
                .into_iter()
                .flatten()
                .filter_map(|d| d.typed.as_ref().map(|f| f.path.clone()))
                .collect::<Vec<_>>();
            register_files(ctx, &sub, source, &env.store_url, &files)
                .await
                .map_err(sql_err)?;
        }
        let mut frame = sub.sql(text).await.map_err(sql_err)?;
        if !base_files.is_empty() {
            frame = merge_into(&sub, &env.store_url, &base_files, frame, incremental)
                .await
                .map_err(sql_err)?;
        }
        let base_name = format!("base-{}", env.run_id);
        let base_dir = dir.clone().join(base_name.as_str());
        let to = StagingDir {
            store: env.store.clone(),
            store_url: &env.store_url,
            dir: &base_dir,
        };
        let (staged, _) = outputs::write_frame(
            name,
            frame,
            to,
            Compression::Snappy,
            &FileLayout::staging(),
            false,
        )
        .await
        .map_err(|source| StepError::Write {
            step: name.to_string(),
            source,
        })?;
        let mut days = folded;
        for (source, list) in &fold {
            let entry = days.entry(source.to_string()).or_default();
            for day in list {
                entry.insert(day.dt, day.key.clone());
            }
        }
        let files: Vec<String> = staged
            .files
            .iter()
            .filter_map(|f| f.path.filename().map(str::to_string))
            .collect();
        let manifest = Manifest {
            format: STATE_FORMAT,
            c360_version: env!("CARGO_PKG_VERSION").to_string(),
            query,
            days,
            clean_for,
            base: base_name,
            files,
            written_by: env.run_id.clone(),
        };
        put_manifest(&env.store, &dir, &manifest)
            .await
            .map_err(state_err)?;
        remove_unnamed(&env.store, &dir, &manifest, env.local_disk)
            .await
            .map_err(state_err)?;
        staged.files.into_iter().map(|f| f.path).collect()
    } else {
        base_files
    };

    // This run's result: the base, merged with what is not (yet) in it.
    let rest: BTreeMap<&str, Vec<Path>> = reads
        .iter()
        .map(|source| {
            let days = pending.get(source).into_iter().flatten();
            let mut files: Vec<Path> = days
                .filter_map(|d| d.typed.as_ref().map(|f| f.path.clone()))
                .collect();
            files.extend(sources[source].read_back.as_ref().map(|f| f.path.clone()));
            (*source, files)
        })
        .collect();
    let sub = sub_context(ctx);
    let frame = if rest.values().all(Vec::is_empty) {
        table_over(&sub, &env.store_url, &base_files)
            .await
            .map_err(sql_err)?
    } else {
        for (source, files) in &rest {
            register_files(ctx, &sub, source, &env.store_url, files)
                .await
                .map_err(sql_err)?;
        }
        let frame = sub.sql(text).await.map_err(sql_err)?;
        merge_into(&sub, &env.store_url, &base_files, frame, incremental)
            .await
            .map_err(sql_err)?
    };
    ctx.register_table(name, frame.into_view())
        .map_err(sql_err)?;
    tracing::info!(
        step = name,
        rebuilt = carried.rebuilt.as_deref().unwrap_or(""),
        days_carried = carried.days_carried,
        days_folded = carried.days_folded,
        days_pending = carried.days_pending,
        "incremental step"
    );
    Ok(Some(carried))
}

/// Why `manifest` cannot serve as the base for `query` over `sources`, if it cannot.
fn stale(
    manifest: &Manifest,
    query: &str,
    sources: &BTreeMap<&str, CachedSource>,
) -> Option<String> {
    if manifest.format != STATE_FORMAT || manifest.c360_version != env!("CARGO_PKG_VERSION") {
        return Some("written by another c360 version".into());
    }
    if manifest.query != query {
        return Some("the step's SQL or merge changed".into());
    }
    for (source, days) in &manifest.days {
        let Some(cached) = sources.get(source.as_str()) else {
            return Some(format!("the step no longer reads {source}"));
        };
        let now: BTreeMap<NaiveDate, &str> =
            cached.days.iter().map(|d| (d.dt, d.key.as_str())).collect();
        for (dt, key) in days {
            match now.get(dt) {
                None => return Some(format!("{source} dt={dt} is gone")),
                Some(k) if k != key => return Some(format!("{source} dt={dt} was parsed again")),
                Some(_) => {}
            }
        }
    }
    None
}

/// The erased set most of the days were last found clean for: what a new base
/// is clean for (normally every day's).
fn most_common_clean_for(sources: &BTreeMap<&str, CachedSource>) -> Option<u64> {
    let mut counts: BTreeMap<Option<u64>, usize> = BTreeMap::new();
    for day in sources.values().flat_map(|s| &s.days) {
        *counts.entry(day.clean_for).or_default() += 1;
    }
    counts
        .into_iter()
        .max_by_key(|(_, n)| *n)
        .and_then(|(fingerprint, _)| fingerprint)
}

/// A session with `ctx`'s settings, functions and runtime but its own (empty)
/// catalog, where a step's sources can be bound to some of their days.
fn sub_context(ctx: &SessionContext) -> SessionContext {
    let state = ctx.state();
    let config = state
        .config()
        .clone()
        .with_create_default_catalog_and_schema(true);
    let state = SessionStateBuilder::new_from_existing(state)
        .with_config(config)
        .with_catalog_list(Arc::new(MemoryCatalogProviderList::new()))
        .build();
    SessionContext::new_with_state(state)
}

/// Registers `source` on `sub` over `files`, or empty with the schema it has on `ctx`.
async fn register_files(
    ctx: &SessionContext,
    sub: &SessionContext,
    source: &str,
    store_url: &str,
    files: &[Path],
) -> Result<(), datafusion::error::DataFusionError> {
    if files.is_empty() {
        let schema = ctx.table_provider(source).await?.schema();
        sub.register_table(source, Arc::new(MemTable::try_new(schema, vec![vec![]])?))?;
        return Ok(());
    }
    engine::register_staged_files(sub, source, store_url, files).await
}

/// A frame over the Parquet `files` (at least one).
async fn table_over(
    sub: &SessionContext,
    store_url: &str,
    files: &[Path],
) -> Result<DataFrame, datafusion::error::DataFusionError> {
    engine::register_staged_files(sub, "_c360_base", store_url, files).await?;
    sub.table("_c360_base").await
}

/// The carried rows of the Parquet `base` files (unique on every column but
/// the merged ones) with the step's rows `new` merged in: `new` is merged on
/// its own (it is small: a few days), then joined to the base on every other
/// column (NULL matching NULL), each merged column taking the smaller or larger
/// value. One pass over the base, and no hash table of all its rows: the join
/// is built on the new rows. No base: `new` merged.
async fn merge_into(
    sub: &SessionContext,
    store_url: &str,
    base: &[Path],
    new: DataFrame,
    incremental: &Incremental,
) -> Result<DataFrame, datafusion::error::DataFusionError> {
    let new = merge(new, incremental)?;
    if base.is_empty() {
        return Ok(new);
    }
    let names: Vec<String> = new
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    sub.register_table("_c360_new", new.into_view())?;
    engine::register_staged_files(sub, "_c360_base", store_url, base).await?;
    let how: BTreeMap<&str, Merge> = (incremental.merge.iter())
        .map(|(c, m)| (c.as_str(), *m))
        .collect();
    let mut select = Vec::new();
    let mut on = Vec::new();
    for name in &names {
        let c = engine::sql_ident(name);
        let (b, n) = (format!("b.{c}"), format!("n.{c}"));
        select.push(match how.get(name.as_str()) {
            None => {
                on.push(format!("({b} IS NOT DISTINCT FROM {n})"));
                format!("COALESCE({b}, {n}) AS {c}")
            }
            // NULLs merge as MIN and MAX treat them: the other value wins.
            Some(m) => {
                let better = if *m == Merge::Min { "<" } else { ">" };
                format!(
                    "CASE WHEN {b} IS NULL THEN {n} WHEN {n} IS NULL THEN {b} \
                     WHEN {n} {better} {b} THEN {n} ELSE {b} END AS {c}"
                )
            }
        });
    }
    let on = if on.is_empty() {
        "TRUE".to_string()
    } else {
        on.join(" AND ")
    };
    let sql = format!(
        "SELECT {} FROM _c360_base b FULL JOIN _c360_new n ON {on}",
        select.join(", ")
    );
    sub.sql(&sql).await
}

/// `frame` grouped on every column but the merged ones, each merged by its
/// function; columns in their order.
fn merge(
    frame: DataFrame,
    incremental: &Incremental,
) -> Result<DataFrame, datafusion::error::DataFusionError> {
    let names: Vec<String> = frame
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    let how: BTreeMap<&str, Merge> = incremental
        .merge
        .iter()
        .map(|(c, m)| (c.as_str(), *m))
        .collect();
    if let Some(missing) = how.keys().find(|c| !names.iter().any(|n| n == *c)) {
        return Err(datafusion::error::DataFusionError::Plan(format!(
            "incremental.merge names `{missing}`, which the step's result does not have"
        )));
    }
    let column = |n: &str| col(Column::from_name(n));
    let keys: Vec<Expr> = names
        .iter()
        .filter(|n| !how.contains_key(n.as_str()))
        .map(|n| column(n))
        .collect();
    let merged: Vec<Expr> = how
        .iter()
        .map(|(n, m)| match m {
            Merge::Min => min(column(n)).alias(*n),
            Merge::Max => max(column(n)).alias(*n),
        })
        .collect();
    frame
        .aggregate(keys, merged)?
        .select(names.iter().map(|n| column(n)).collect::<Vec<_>>())
}

/// Takes every row that carries one of `identifiers` out of the bases of
/// `steps` (module docs); the manifests then say which set they are clean for.
/// Nothing to do when the set is empty or a base is already clean for it.
pub async fn forget_erased(
    store: &Arc<dyn ObjectStore>,
    warehouse: &Path,
    steps: &[&str],
    identifiers: &ErasedIdentifiers,
    run_id: &str,
    local_disk: bool,
) -> Result<(), StepError> {
    if identifiers.is_empty() {
        return Ok(());
    }
    let fingerprint = identifiers.fingerprint();
    for step in steps {
        let state_err = |message: String| StepError::State {
            step: step.to_string(),
            message,
        };
        let dir = state_dir(warehouse, step);
        let Some(mut manifest) = read_manifest(store, &dir.clone().join(MANIFEST))
            .await
            .map_err(state_err)?
        else {
            continue;
        };
        if manifest.clean_for == Some(fingerprint) {
            continue;
        }
        // Every file is rewritten into a new folder when any row goes, so the
        // manifest names one folder.
        let kept_base = format!("base-{run_id}-e{fingerprint:016x}");
        let mut removed = 0;
        let mut kept_files = Vec::new();
        let paths = manifest.paths(&dir);
        for (path, name) in paths.iter().zip(&manifest.files) {
            let kept = dir.clone().join(kept_base.as_str()).join(name.as_str());
            let out = crate::source::without_erased(store, path, identifiers, &kept)
                .await
                .map_err(|e| state_err(e.to_string()))?;
            removed += out.as_ref().map_or(0, |(rows, _)| *rows);
            kept_files.push((out.is_some(), path, kept));
        }
        if removed > 0 {
            // Files with nobody to take out are copied, so the base stays one folder.
            for (written, from, to) in &kept_files {
                if !written {
                    store
                        .copy(from, to)
                        .await
                        .map_err(|e| state_err(format!("{from}: {e}")))?;
                }
            }
            tracing::info!(
                step,
                rows = removed,
                "erased people's rows taken out of the carried state"
            );
            manifest.base = kept_base;
        }
        manifest.clean_for = Some(fingerprint);
        manifest.written_by = run_id.to_string();
        put_manifest(store, &dir, &manifest)
            .await
            .map_err(state_err)?;
        remove_unnamed(store, &dir, &manifest, local_disk)
            .await
            .map_err(state_err)?;
    }
    Ok(())
}

async fn read_manifest(
    store: &Arc<dyn ObjectStore>,
    path: &Path,
) -> Result<Option<Manifest>, String> {
    let bytes = match store.get(path).await {
        Ok(found) => found.bytes().await.map_err(|e| format!("{path}: {e}"))?,
        Err(object_store::Error::NotFound { .. }) => return Ok(None),
        Err(e) => return Err(format!("{path}: {e}")),
    };
    match serde_json::from_slice(&bytes) {
        Ok(manifest) => Ok(Some(manifest)),
        Err(e) => {
            tracing::warn!(manifest = %path, error = %e, "unreadable state manifest: the step's state is rebuilt");
            Ok(None)
        }
    }
}

async fn put_manifest(
    store: &Arc<dyn ObjectStore>,
    dir: &Path,
    manifest: &Manifest,
) -> Result<(), String> {
    let path = dir.clone().join(MANIFEST);
    let body = serde_json::to_vec_pretty(manifest).map_err(|e| format!("{path}: {e}"))?;
    store
        .put(&path, PutPayload::from(body))
        .await
        .map_err(|e| format!("{path}: {e}"))?;
    Ok(())
}

/// Deletes every object under `dir` but the manifest and the files it names:
/// the old base, and whatever a killed run left (on local disk, its hidden
/// half-written files too).
async fn remove_unnamed(
    store: &Arc<dyn ObjectStore>,
    dir: &Path,
    manifest: &Manifest,
    local_disk: bool,
) -> Result<(), String> {
    if local_disk {
        let folders = store
            .list_with_delimiter(Some(dir))
            .await
            .map_err(|e| format!("{dir}: {e}"))?
            .common_prefixes;
        for folder in folders.iter().chain([dir]) {
            crate::storage::remove_interrupted_writes(folder).map_err(|e| e.to_string())?;
        }
    }
    let keep: BTreeSet<Path> = manifest
        .paths(dir)
        .into_iter()
        .chain([dir.clone().join(MANIFEST)])
        .collect();
    let objects: Vec<_> = store
        .list(Some(dir))
        .try_collect()
        .await
        .map_err(|e| format!("{dir}: {e}"))?;
    for object in objects.into_iter().filter(|o| !keep.contains(&o.location)) {
        match store.delete(&object.location).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(format!("{}: {e}", object.location)),
        }
    }
    Ok(())
}
