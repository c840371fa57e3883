//! The jobs folder the daemon watches: which job files exist and whether any
//! changed since the last look (size and modification time), so an edit is
//! picked up without a SIGHUP.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// Size and modification time of every `*.yaml` / `*.yml` file in a folder.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Fingerprint(BTreeMap<PathBuf, (u64, Option<SystemTime>)>);

impl Fingerprint {
    /// Looks at `dir` now; an unreadable folder reads as empty.
    pub(crate) fn of(dir: &Path) -> Self {
        let mut files = BTreeMap::new();
        if let Ok(entries) = std::fs::read_dir(dir) {
            for entry in entries.flatten() {
                let path = entry.path();
                let is_yaml = path.extension().is_some_and(|e| e == "yaml" || e == "yml");
                if let (true, Ok(meta)) = (is_yaml, entry.metadata())
                    && meta.is_file()
                {
                    files.insert(path, (meta.len(), meta.modified().ok()));
                }
            }
        }
        Self(files)
    }

    /// The job files, sorted.
    pub(crate) fn files(&self) -> Vec<PathBuf> {
        self.0.keys().cloned().collect()
    }
}
