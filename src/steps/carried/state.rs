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
pub(super) const STATE_FORMAT: u32 = 1;

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
    /// The base: its folder in the state folder and the files in it.
    pub(super) base: String,
    pub(super) files: Vec<String>,
    pub(super) written_by: String,
}

impl Manifest {
    /// The base's files, under state folder `dir`.
    pub(super) fn paths(&self, dir: &Path) -> Vec<Path> {
        let base = dir.clone().join(self.base.as_str());
        self.files
            .iter()
            .map(|f| base.clone().join(f.as_str()))
            .collect()
    }
}

/// `_c360/state/<step>` under the warehouse root.
pub(super) fn state_dir(warehouse: &Path, step: &str) -> Path {
    warehouse.clone().join("_c360").join("state").join(step)
}

/// Writes `frame` as the new base of `step` (`base-<run_id>/`), then its
/// manifest (the base's days and the days folded now), then deletes the old
/// base. Returns the files written.
pub(super) async fn write_base(
    frame: DataFrame,
    step: &StepSpec,
    query: String,
    plan: &Plan<'_>,
    dir: &Path,
    env: &CarryEnv,
) -> Result<Vec<Path>, StepError> {
    let name = step.name.as_str();
    let state_err = |message: String| StepError::State {
        step: name.to_string(),
        message,
    };
    let base_name = format!("base-{}", env.run_id);
    let base_dir = dir.clone().join(base_name.as_str());
    let to = StagingDir {
        store: env.store.clone(),
        store_url: &env.store_url,
        dir: &base_dir,
    };
    let layout = FileLayout::staging();
    let (staged, _) = outputs::write_frame(name, frame, to, Compression::Snappy, &layout, false)
        .await
        .map_err(|source| StepError::Write {
            step: name.to_string(),
            source,
        })?;
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
        base: base_name,
        files: (staged.files.iter())
            .filter_map(|f| f.path.filename().map(str::to_string))
            .collect(),
        written_by: env.run_id.clone(),
    };
    put_manifest(&env.store, dir, &manifest)
        .await
        .map_err(state_err)?;
    remove_unnamed(&env.store, dir, &manifest, env.local_disk)
        .await
        .map_err(state_err)?;
    Ok(staged.files.into_iter().map(|f| f.path).collect())
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
