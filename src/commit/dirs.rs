//! Folder operations of the local-disk commit: swapping a staged partition
//! folder into place and removing folders. A trait, so tests can inject faults
//! between any two operations.

use std::path::PathBuf;

use object_store::path::Path;

use super::CommitError;

/// Folder operations on the store's paths.
pub trait DirectoryOps: Send + Sync + std::fmt::Debug {
    /// Moves `staged` to `target` in one step; if `target` exists, its old
    /// content ends up at `staged` (to be removed by the caller).
    fn swap_in(&self, staged: &Path, target: &Path) -> Result<(), CommitError>;
    /// Removes a folder and everything in it; a missing folder is fine.
    fn remove_all(&self, dir: &Path) -> Result<(), CommitError>;
}

/// The real file system, for a root `LocalFileSystem` (store path `a/b` is `/a/b`).
#[derive(Debug, Clone)]
pub struct StdDirectoryOps {
    root: PathBuf,
}

impl StdDirectoryOps {
    /// Operations for store paths relative to `/`.
    pub fn root() -> Self {
        Self {
            root: PathBuf::from("/"),
        }
    }

    fn fs(&self, path: &Path) -> PathBuf {
        path.parts()
            .fold(self.root.clone(), |dir, part| dir.join(part.as_ref()))
    }
}

fn io_err(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> CommitError {
    let path = path.display().to_string();
    move |source| CommitError::Directory { path, source }
}

impl DirectoryOps for StdDirectoryOps {
    fn swap_in(&self, staged: &Path, target: &Path) -> Result<(), CommitError> {
        let (from, to) = (self.fs(staged), self.fs(target));
        if to.exists() {
            return exchange(&from, &to);
        }
        if let Some(parent) = to.parent() {
            std::fs::create_dir_all(parent).map_err(io_err(parent))?;
        }
        std::fs::rename(&from, &to).map_err(io_err(&to))
    }

    fn remove_all(&self, dir: &Path) -> Result<(), CommitError> {
        let path = self.fs(dir);
        match std::fs::remove_dir_all(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io_err(&path)(e)),
            _ => Ok(()),
        }
    }
}

/// Swaps two existing folders atomically where the kernel can (Linux
/// `renameat2(RENAME_EXCHANGE)`), so readers never find the partition missing.
#[cfg(target_os = "linux")]
fn exchange(a: &std::path::Path, b: &std::path::Path) -> Result<(), CommitError> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let c = |p: &std::path::Path| {
        CString::new(p.as_os_str().as_bytes()).map_err(|e| CommitError::Directory {
            path: p.display().to_string(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidInput, e),
        })
    };
    let (ca, cb) = (c(a)?, c(b)?);
    // SAFETY: both arguments are valid NUL-terminated paths that outlive the call;
    // renameat2 only reads them.
    let rc = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            ca.as_ptr(),
            libc::AT_FDCWD,
            cb.as_ptr(),
            libc::RENAME_EXCHANGE,
        )
    };
    if rc == 0 {
        return Ok(());
    }
    let error = std::io::Error::last_os_error();
    match error.raw_os_error() {
        // The file system (or an old kernel) cannot exchange: fall back.
        Some(libc::EINVAL) | Some(libc::ENOSYS) | Some(libc::EOPNOTSUPP) => two_renames(a, b),
        _ => Err(io_err(b)(error)),
    }
}

#[cfg(not(target_os = "linux"))]
fn exchange(a: &std::path::Path, b: &std::path::Path) -> Result<(), CommitError> {
    two_renames(a, b)
}

/// Old partition aside, new one in, old one to where the new one was. Between
/// the two renames the partition is briefly missing (never partial).
fn two_renames(staged: &std::path::Path, target: &std::path::Path) -> Result<(), CommitError> {
    let aside = staged.with_extension("old");
    std::fs::rename(target, &aside).map_err(io_err(target))?;
    std::fs::rename(staged, target).map_err(io_err(target))?;
    std::fs::rename(&aside, staged).map_err(io_err(staged))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn swap_in_exchanges_existing_folders_and_moves_new_ones() {
        let tmp = tempfile::tempdir().unwrap();
        let ops = StdDirectoryOps {
            root: tmp.path().to_path_buf(),
        };
        std::fs::create_dir_all(tmp.path().join("stage/a")).unwrap();
        std::fs::write(tmp.path().join("stage/a/new"), "new").unwrap();
        // A new target (parents created).
        ops.swap_in(&Path::from("stage/a"), &Path::from("out/d=1"))
            .unwrap();
        assert!(tmp.path().join("out/d=1/new").exists());
        assert!(!tmp.path().join("stage/a").exists());
        // An existing target: the old content lands in the staged folder.
        std::fs::create_dir_all(tmp.path().join("stage/b")).unwrap();
        std::fs::write(tmp.path().join("stage/b/newer"), "x").unwrap();
        ops.swap_in(&Path::from("stage/b"), &Path::from("out/d=1"))
            .unwrap();
        assert!(tmp.path().join("out/d=1/newer").exists());
        assert!(!tmp.path().join("out/d=1/new").exists());
        assert!(tmp.path().join("stage/b/new").exists());
        ops.remove_all(&Path::from("stage")).unwrap();
        ops.remove_all(&Path::from("stage")).unwrap();
        assert!(!tmp.path().join("stage").exists());
    }
}
