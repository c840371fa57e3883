//! Incremental steps (`incremental:`, README "Nightly loads"): a SQL step whose
//! result is carried in the warehouse from run to run, so a nightly run folds in
//! the new days of its sources instead of reducing every day again.
//!
//! The step must be a distributive reduction of cached sources (a `GROUP BY`
//! per source, `UNION ALL`-ed, with `MIN`/`MAX`/`SUM` columns): its result over
//! rows A ∪ B equals its results over A and B merged on every column but the
//! `merge` ones, each merged by its function. Min and max are idempotent, so a
//! row seen twice (a re-sent row) changes nothing. A sum counts each row once,
//! so a step that sums reads a source's deduplicated rows (`<source>_deduped`,
//! allowed where the first copy wins): each day's rows are bound to the run's
//! duplicates, and a carried winner is never displaced, since a new day comes
//! after every folded one (or the base is rebuilt). Either way the merged
//! result equals a full recompute exactly.
//!
//! ```text
//! _c360/state/<step>/manifest.json   query digest, days folded (source -> dt -> the parse),
//!                                    the erased set it is clean for, its files
//! _c360/state/<step>/base-<run>/     the step over the days folded up to a compaction, merged
//! _c360/state/<step>/delta-<run>/    the step over the days one later run folded
//! this run's result = merge(base ∪ deltas ∪ step(days not folded) ∪ step(held-out rows read back))
//! ```
//!
//! A fold writes only the new days' rows (a delta), so a night does not rewrite
//! the base; once the deltas hold 1/16 of the base's rows, a fold merges them
//! all into a new base (a compaction). Every run merges the deltas with its own
//! new rows, then joins them to the base once.
//!
//! * A day is folded into the base when its cache entry was last found clean
//!   for the same erased set as the base (so a new day waits one run, until the
//!   end of the run that parsed it has taken erased people's rows out of it);
//!   the others are reduced each run until then.
//! * The base is rebuilt from every day when the query (the interpolated SQL
//!   and the merge), the c360 version or `--full-refresh` says so, or when a
//!   folded day was parsed again (its raw files changed, or `--full-refresh`
//!   rewrote its cache entry, which puts its held-out rows back in its files) or
//!   vanished (a day cannot be taken out of a min or max), when a day older
//!   than a folded one arrived since the state was written (its copies could
//!   win over carried ones; the days pending then were known), or when
//!   a folded day's entry was cleaned for another erased set than the base (a
//!   run killed between the two scans at its end: held-out rows read back
//!   would be counted twice).
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

mod merge;
mod state;
mod window;

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::NaiveDate;
use datafusion::prelude::SessionContext;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use serde::{Deserialize, Serialize};

use super::StepError;
use crate::engine;
use crate::job::{DedupRule, Incremental, StepSpec, deduped_table};
use crate::outputs::WrittenFile;
use crate::source::CachedDay;
use merge::{Inputs, delta_rows, merge_into, sub_context};
pub use state::forget_erased;
use state::{MANIFEST, Manifest, STATE_FORMAT, read_manifest, save, state_dir, write_part};
pub use window::{Window, register_windowed};

/// One partitioned source as incremental steps read it: its cached days, the
/// held-out records read back this run and its duplicate rule.
#[derive(Debug, Clone)]
pub struct CachedSource {
    pub(crate) days: Vec<CachedDay>,
    pub(crate) read_back: Option<WrittenFile>,
    pub(crate) dedup: DedupRule,
}

impl CachedSource {
    /// A source read through the cache (`days` in day order).
    pub(crate) fn new(
        days: Vec<CachedDay>,
        read_back: Option<WrittenFile>,
        dedup: DedupRule,
    ) -> Self {
        Self {
            days,
            read_back,
            dedup,
        }
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

impl CarryEnv {
    /// The cached sources behind a step's `reads` (each a cached source or its
    /// deduplicated rows), and the rule of those read deduplicated.
    fn bind<'a>(&'a self, reads: &[String]) -> Result<Bound<'a>, String> {
        let mut sources = BTreeMap::new();
        let mut deduped = BTreeMap::new();
        for read in reads {
            let found = self.sources.iter().find_map(|(source, cached)| {
                let plain = read == source;
                (plain || *read == deduped_table(source)).then_some((source, cached, plain))
            });
            let Some((source, cached, plain)) = found else {
                return Err(format!("`{read}` is not a cached source"));
            };
            sources.insert(source.as_str(), cached.clone());
            if !plain {
                deduped.insert(source.as_str(), cached.dedup);
            }
        }
        Ok((sources, deduped))
    }
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
    /// Parquet bytes of the base this run read, and of what it merged into it
    /// (the deltas, the days not folded, the held-out rows read back): the
    /// step's joins are chosen from these, not from its sources' sizes.
    #[serde(default)]
    pub base_bytes: u64,
    #[serde(default)]
    pub new_bytes: u64,
}

/// A step's sources by name, and the rule of each it reads deduplicated.
type Bound<'a> = (
    BTreeMap<&'a str, CachedSource>,
    BTreeMap<&'a str, DedupRule>,
);

/// Days of each source, by source name.
type DaysBySource<'a> = BTreeMap<&'a str, Vec<&'a CachedDay>>;

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
    let (sources, deduped) = env.bind(reads).map_err(state_err)?;
    let inputs = |files| Inputs {
        files,
        deduped: &deduped,
        date,
        store_url: &env.store_url,
    };
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
    let plan = Plan::new(previous, &query, &sources, env.full_refresh);
    let folds = plan.base.is_none() || plan.carried.days_folded > 0;
    let state = match &plan.base {
        Some(m) if !folds => m.clone(),
        _ => {
            let fold = files_of(&sources, &plan.fold, |_| None);
            let sub = sub_context(ctx);
            let frame = (inputs(fold).step(ctx, &sub, text).await).map_err(sql_err)?;
            let run = &env.run_id;
            let parts = match &plan.base {
                None => (
                    write_part(frame, step, format!("base-{run}"), &dir, env).await?,
                    vec![],
                ),
                // The days folded now, beside the base: no rewrite of the base.
                Some(m) if !m.due_for_compaction() => {
                    let delta = write_part(frame, step, format!("delta-{run}"), &dir, env).await?;
                    let deltas = m.deltas.iter().cloned().chain([delta]).collect();
                    (m.base.clone(), deltas)
                }
                // base ∪ deltas ∪ step(days to fold), merged: the new base.
                Some(m) => {
                    let deltas = delta_rows(&sub, &env.store_url, &m.delta_paths(&dir)).await;
                    let new = match deltas.map_err(sql_err)? {
                        Some(deltas) => frame.union(deltas).map_err(sql_err)?,
                        None => frame,
                    };
                    let base = m.base.paths(&dir);
                    let frame = merge_into(&sub, &env.store_url, &base, new, incremental).await;
                    let frame = frame.map_err(sql_err)?;
                    (
                        write_part(frame, step, format!("base-{run}"), &dir, env).await?,
                        vec![],
                    )
                }
            };
            save(step, query, &plan, parts, &dir, env).await?
        }
    };
    let mut carried = plan.carried;

    // This run's result: the base, merged with the deltas and what is not
    // (yet) in the state.
    let read_back = |source: &str| sources[source].read_back.as_ref().map(|f| f.path.clone());
    let rest = files_of(&sources, &plan.pending, read_back);
    let deltas = state.delta_paths(&dir);
    let base_files = state.base.paths(&dir);
    let new_files: Vec<Path> = rest.values().flatten().chain(&deltas).cloned().collect();
    carried.new_bytes = file_bytes(&env.store, &new_files)
        .await
        .map_err(state_err)?;
    carried.base_bytes = file_bytes(&env.store, &base_files)
        .await
        .map_err(state_err)?;
    let sub = sub_context(ctx);
    let rest = if rest.values().all(Vec::is_empty) {
        None
    } else {
        Some((inputs(rest).step(ctx, &sub, text).await).map_err(sql_err)?)
    };
    let new = match (rest, delta_rows(&sub, &env.store_url, &deltas).await) {
        (Some(rest), Ok(Some(d))) => rest.union(d).map(Some),
        (rest, d) => d.map(|d| rest.or(d)),
    };
    let new = new.map_err(sql_err)?;
    let frame = match new {
        None => {
            engine::register_staged_files(&sub, "_c360_base", &env.store_url, &base_files)
                .await
                .map_err(sql_err)?;
            sub.table("_c360_base").await.map_err(sql_err)?
        }
        Some(new) => merge_into(&sub, &env.store_url, &base_files, new, incremental)
            .await
            .map_err(sql_err)?,
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

/// The total size of `files`.
async fn file_bytes(store: &Arc<dyn ObjectStore>, files: &[Path]) -> Result<u64, String> {
    let mut total = 0;
    for file in files {
        let meta = store.head(file).await.map_err(|e| format!("{file}: {e}"))?;
        total += meta.size;
    }
    Ok(total)
}

/// Which days a run reads from the base, folds into it and reduces for itself.
struct Plan<'a> {
    /// The base, when every day it folded is still cached as it was folded.
    base: Option<Manifest>,
    /// The erased set the base is (or a new base will be) clean for.
    clean_for: Option<u64>,
    /// Days not in the base that are clean for the same set: folded in now.
    fold: DaysBySource<'a>,
    /// The other days not in the base: reduced for this run only.
    pending: DaysBySource<'a>,
    carried: Carried,
}

impl<'a> Plan<'a> {
    fn new(
        previous: Option<Manifest>,
        query: &str,
        sources: &'a BTreeMap<&'a str, CachedSource>,
        full_refresh: bool,
    ) -> Self {
        let (base, rebuilt) = match previous {
            None if full_refresh => (None, Some("--full-refresh".to_string())),
            None => (None, Some("no carried state".to_string())),
            Some(m) => match stale(&m, query, sources) {
                Some(why) => (None, Some(why)),
                None => (Some(m), None),
            },
        };
        let clean_for = match &base {
            Some(m) => m.clean_for,
            None => most_common_clean_for(sources),
        };
        let mut plan = Plan {
            base,
            clean_for,
            fold: DaysBySource::new(),
            pending: DaysBySource::new(),
            carried: Carried {
                rebuilt,
                ..Carried::default()
            },
        };
        for (source, cached) in sources {
            let folded = (plan.base.as_ref()).and_then(|m| m.days.get(*source));
            for day in &cached.days {
                if folded.is_some_and(|f| f.contains_key(&day.dt)) {
                    plan.carried.days_carried += 1;
                } else if day.clean_for == clean_for {
                    plan.fold.entry(source).or_default().push(day);
                    plan.carried.days_folded += 1;
                } else {
                    plan.pending.entry(source).or_default().push(day);
                    plan.carried.days_pending += 1;
                }
            }
        }
        plan
    }
}

/// The typed files of `days` of each source, plus what `extra` adds.
fn files_of<'a>(
    sources: &BTreeMap<&'a str, CachedSource>,
    days: &DaysBySource,
    extra: impl Fn(&str) -> Option<Path>,
) -> BTreeMap<&'a str, Vec<Path>> {
    sources
        .keys()
        .map(|source| {
            let typed = days.get(source).into_iter().flatten();
            let mut files: Vec<Path> = typed
                .filter_map(|d| d.typed.as_ref().map(|f| f.path.clone()))
                .collect();
            files.extend(extra(source));
            (*source, files)
        })
        .collect()
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
        let now: BTreeMap<NaiveDate, &CachedDay> = cached.days.iter().map(|d| (d.dt, d)).collect();
        for (dt, key) in days {
            match now.get(dt) {
                None => return Some(format!("{source} dt={dt} is gone")),
                Some(d) if d.key != *key => {
                    return Some(format!("{source} dt={dt} was parsed again"));
                }
                Some(d) if d.clean_for != manifest.clean_for => {
                    return Some(format!(
                        "{source} dt={dt} was cleaned for another erased set than the state"
                    ));
                }
                Some(_) => {}
            }
        }
        // A day older than a folded one, new since the state was written: its
        // copies of a key could win over carried ones.
        let newest = days.keys().next_back();
        let known = manifest.pending.get(source);
        let late = (cached.days.iter()).find(|d| {
            !days.contains_key(&d.dt)
                && Some(&d.dt) < newest
                && known.and_then(|k| k.get(&d.dt)) != Some(&d.key)
        });
        if let Some(d) = late {
            return Some(format!(
                "{source} dt={} arrived after later days were folded",
                d.dt
            ));
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
