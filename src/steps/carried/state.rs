//! An incremental step's state in the warehouse: its manifest, its base
//! (written, then named by the manifest, then the old one deleted), and the
//! erased people taken out of it at the end of a run.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::NaiveDate;
use datafusion::prelude::DataFrame;
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use serde::{Deserialize, Serialize};

use super::{CarryEnv, Plan};
use crate::job::{Compression, FileLayout, StepSpec};
use crate::outputs::{self, StagingDir};
use crate::source::ErasedIdentifiers;
use crate::steps::StepError;

/// Bumped when the state layout or its meaning changes.
pub(super) const STATE_FORMAT: u32 = 2;

pub(super) const MANIFEST: &str = "manifest.json";

/// `manifest.json` of a step's state.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Manifest {
    pub(super) format: u32,
    pub(super) c360_version: String,
    /// Digest of the interpolated SQL and the merge.
    pub(super) query: String,
    /// Source -> day -> the digest of the cache entry folded in.
    pub(super) days: BTreeMap<String, BTreeMap<NaiveDate, String>>,
    /// Source -> day -> digest of the cached days not folded when the state was
    /// written: their rows were known then (a key's winner was chosen among
    /// them), so they may be folded later even when older than a folded day.
    #[serde(default)]
    pub(super) pending: BTreeMap<String, BTreeMap<NaiveDate, String>>,
    /// The erased set ([`ErasedIdentifiers::fingerprint`]) every folded day was
    /// clean for, and the base is.
    pub(super) clean_for: Option<u64>,
    /// The base: the step over the days folded when it was last written,
    /// merged (unique on every column but the merged ones).
    pub(super) base: Part,
    /// The step over each fold since, unmerged: a run merges them with its own
    /// new rows (a fold writes one day's rows, not the whole base again), and a
    /// fold merges them into a new base once they reach 1/[`COMPACT_AT`] of it.
    #[serde(default)]
    pub(super) deltas: Vec<Part>,
    pub(super) written_by: String,
}

/// A fold writes a new base once the deltas hold this fraction of its rows.
pub(super) const COMPACT_AT: u64 = 16;

/// One folder of a step's state: Parquet files of the step's rows.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Part {
    /// The folder, in the state folder.
    pub(super) dir: String,
    pub(super) files: Vec<String>,
    pub(super) rows: u64,
}

impl Part {
    /// The part's files, under state folder `dir`.
    pub(super) fn paths(&self, dir: &Path) -> Vec<Path> {
        let folder = dir.clone().join(self.dir.as_str());
        (self.files.iter())
            .map(|f| folder.clone().join(f.as_str()))
            .collect()
    }
}

impl Manifest {
    /// Every file of the state (base and deltas), under state folder `dir`.
    pub(super) fn paths(&self, dir: &Path) -> Vec<Path> {
        let parts = std::iter::once(&self.base).chain(&self.deltas);
        parts.flat_map(|p| p.paths(dir)).collect()
    }

    /// The deltas' files, under state folder `dir`.
    pub(super) fn delta_paths(&self, dir: &Path) -> Vec<Path> {
        self.deltas.iter().flat_map(|p| p.paths(dir)).collect()
    }

    /// Whether the next fold merges the deltas into a new base: they hold at
    /// least 1/[`COMPACT_AT`] of its rows.
    pub(super) fn due_for_compaction(&self) -> bool {
        let rows: u64 = self.deltas.iter().map(|p| p.rows).sum();
        rows.saturating_mul(COMPACT_AT) >= self.base.rows
    }
}

/// `_c360/state/<step>` under the warehouse root.
pub(super) fn state_dir(warehouse: &Path, step: &str) -> Path {
    warehouse.clone().join("_c360").join("state").join(step)
}

/// Writes `frame` into folder `folder` of state folder `dir` (files first:
/// the manifest names them only once [`save`] puts it).
pub(super) async fn write_part(
    frame: DataFrame,
    step: &StepSpec,
    folder: String,
    dir: &Path,
    env: &CarryEnv,
) -> Result<Part, StepError> {
    let name = step.name.as_str();
    let to = StagingDir {
        store: env.store.clone(),
        store_url: &env.store_url,
        dir: &dir.clone().join(folder.as_str()),
    };
    let layout = FileLayout::staging();
    let (staged, _) = outputs::write_frame(name, frame, to, Compression::Snappy, &layout, false)
        .await
        .map_err(|source| StepError::Write {
            step: name.to_string(),
            source,
        })?;
    Ok(Part {
        dir: folder,
        files: (staged.files.iter())
            .filter_map(|f| f.path.filename().map(str::to_string))
            .collect(),
        rows: staged.files.iter().map(|f| f.rows).sum(),
    })
}

/// Puts the manifest of `step`'s state after a fold (its days: the base's and
/// those folded now), then deletes what it no longer names. Returns it.
pub(super) async fn save(
    step: &StepSpec,
    query: String,
    plan: &Plan<'_>,
    (base, deltas): (Part, Vec<Part>),
    dir: &Path,
    env: &CarryEnv,
) -> Result<Manifest, StepError> {
    let state_err = |message: String| StepError::State {
        step: step.name.clone(),
        message,
    };
    let mut days = (plan.base.as_ref())
        .map(|m| m.days.clone())
        .unwrap_or_default();
    for (source, list) in &plan.fold {
        let entry = days.entry(source.to_string()).or_default();
        entry.extend(list.iter().map(|day| (day.dt, day.key.clone())));
    }
    let pending = (plan.pending.iter())
        .map(|(source, list)| {
            let list = list.iter().map(|day| (day.dt, day.key.clone()));
            (source.to_string(), list.collect())
        })
        .collect();
    let manifest = Manifest {
        format: STATE_FORMAT,
        c360_version: env!("CARGO_PKG_VERSION").to_string(),
        query,
        days,
        pending,
        clean_for: plan.clean_for,
        base,
        deltas,
        written_by: env.run_id.clone(),
    };
    put_manifest(&env.store, dir, &manifest)
        .await
        .map_err(state_err)?;
    remove_unnamed(&env.store, dir, &manifest, env.local_disk)
        .await
        .map_err(state_err)?;
    Ok(manifest)
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
        let mut removed = 0;
        let parts = std::iter::once(&mut manifest.base).chain(manifest.deltas.iter_mut());
        for (i, part) in parts.enumerate() {
            let kept = match i {
                0 => format!("base-{run_id}-e{fingerprint:016x}"),
                _ => format!("delta{i}-{run_id}-e{fingerprint:016x}"),
            };
            removed += without_erased(store, &dir, part, identifiers, kept)
                .await
                .map_err(state_err)?;
        }
        if removed > 0 {
            tracing::info!(
                step,
                rows = removed,
                "erased people's rows taken out of the carried state"
            );
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

/// Takes the rows carrying one of `identifiers` out of `part` (of state
/// folder `dir`): when any go, every file is written anew into folder `kept`
/// (files without any are copied), so a part stays one folder. Returns the
/// rows taken out.
async fn without_erased(
    store: &Arc<dyn ObjectStore>,
    dir: &Path,
    part: &mut Part,
    identifiers: &ErasedIdentifiers,
    kept: String,
) -> Result<u64, String> {
    let mut removed = 0;
    let mut files = Vec::new();
    for (path, name) in part.paths(dir).iter().zip(&part.files) {
        let to = dir.clone().join(kept.as_str()).join(name.as_str());
        let out = crate::source::without_erased(store, path, identifiers, &to)
            .await
            .map_err(|e| e.to_string())?;
        removed += out.as_ref().map_or(0, |(rows, _)| *rows);
        files.push((out.is_some(), path.clone(), to));
    }
    if removed == 0 {
        return Ok(0);
    }
    for (_, from, to) in files.iter().filter(|(written, ..)| !written) {
        store
            .copy(from, to)
            .await
            .map_err(|e| format!("{from}: {e}"))?;
    }
    part.dir = kept;
    part.rows -= removed;
    Ok(removed)
}

pub(super) async fn read_manifest(
    store: &Arc<dyn ObjectStore>,
    path: &Path,
) -> Result<Option<Manifest>, String> {
    let what = "the step's state is rebuilt";
    let manifest = crate::storage::read_json(store, path, what).await;
    manifest.map_err(|e| format!("{path}: {e}"))
}

async fn put_manifest(
    store: &Arc<dyn ObjectStore>,
    dir: &Path,
    manifest: &Manifest,
) -> Result<(), String> {
    let path = dir.clone().join(MANIFEST);
    let put = crate::storage::put_json(store, &path, manifest).await;
    put.map_err(|e| format!("{path}: {e}"))
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
