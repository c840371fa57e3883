//! The manifest of a cache entry and the key it was parsed under (see the
//! parent module): what decides whether a cached day is the parse of the raw
//! files a run lists.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::NaiveDate;
use object_store::ObjectStore;
use object_store::path::Path;
use serde::{Deserialize, Serialize};

use super::store_err;
use crate::source::{Listing, SourceReport, StagingError};

/// Bumped when the entry layout or the manifest changes meaning (2: `held_out`,
/// which a reader of format 1 would ignore).
pub(super) const CACHE_FORMAT: u32 = 2;

/// The manifest of an entry, beside its Parquet files.
pub(super) const MANIFEST: &str = "manifest.json";

/// What a day was parsed from: equal keys mean the cached entry is the parse.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct EntryKey {
    pub(super) cache_format: u32,
    pub(super) c360_version: String,
    pub(super) schema: String,
    pub(super) format: String,
    /// The known currency codes, sorted, for a source checked against them.
    pub(super) currencies: Option<Vec<String>>,
    /// Absent from entries written before limits existed: they are parsed again.
    #[serde(default)]
    pub(super) limits: Option<crate::job::SourceLimits>,
    pub(super) files: Vec<InputFile>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct InputFile {
    pub(super) rel: String,
    pub(super) size: u64,
    pub(super) version: String,
}

/// One file of an entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct EntryFile {
    pub(super) name: String,
    pub(super) rows: u64,
    pub(super) bytes: u64,
}

/// `manifest.json` of an entry.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Manifest {
    pub(super) key: EntryKey,
    pub(super) typed: EntryFile,
    pub(super) rejects: EntryFile,
    /// The day's read: counts, reasons, files in reading order.
    pub(super) report: SourceReport,
    pub(super) written_by: String,
    /// [`ErasedIdentifiers::fingerprint`] of the set the entry was last found
    /// to carry none of ([`forget_erased`]).
    #[serde(default)]
    pub(super) clean_for: Option<u64>,
    /// Raw file (relative name) -> lines of the records taken out of the
    /// entry's files because they carry an erased identifier (module docs);
    /// a run reads them back from the raw file.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub(super) held_out: BTreeMap<String, Vec<i64>>,
}

impl EntryKey {
    /// SHA-256 of the key's JSON, in hex: stable across runs and c360 builds.
    pub(super) fn digest(&self) -> String {
        use sha2::Digest;
        let json = serde_json::to_vec(self).unwrap_or_default();
        hex::encode(sha2::Sha256::digest(json))
    }
}

pub(super) async fn read_manifest(
    store: &Arc<dyn ObjectStore>,
    path: &Path,
) -> Result<Option<Manifest>, StagingError> {
    let what = "the day is parsed again";
    let manifest = crate::storage::read_json(store, path, what).await;
    Ok(manifest.map_err(store_err(path))?)
}

pub(super) async fn put_manifest(
    store: &Arc<dyn ObjectStore>,
    path: &Path,
    manifest: &Manifest,
) -> Result<(), StagingError> {
    let put = crate::storage::put_json(store, path, manifest).await;
    Ok(put.map_err(store_err(path))?)
}

/// How many days of `listing` (a partitioned source's raw files) have a cache
/// entry under `dir` parsed from the same raw files (names, sizes, versions):
/// the days a run reuses, unless the contract, the format, the currency codes
/// or c360 itself changed since (`c360 explain`).
pub(crate) async fn days_cached(
    store: &Arc<dyn ObjectStore>,
    dir: &Path,
    listing: &Listing,
) -> Result<usize, StagingError> {
    let mut days: Vec<(NaiveDate, Vec<InputFile>)> = Vec::new();
    for file in &listing.files {
        let Some(dt) = file.dt else { continue };
        let input = InputFile {
            rel: file.rel.clone(),
            size: file.size,
            version: file.version.clone(),
        };
        match days.last_mut() {
            Some((d, files)) if *d == dt => files.push(input),
            _ => days.push((dt, vec![input])),
        }
    }
    let mut cached = 0;
    for (dt, files) in days {
        let path = dir.clone().join(format!("dt={dt}")).join(MANIFEST);
        if read_manifest(store, &path)
            .await?
            .is_some_and(|m| m.key.files == files)
        {
            cached += 1;
        }
    }
    Ok(cached)
}
