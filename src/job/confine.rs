//! Path confinement (SECURITY.md): outputs are written only under the warehouse
//! root, SQL files are read only from the job's project folder. Templates are
//! checked lexically when the job is loaded (`..`, absolute paths, another
//! root); [`within`] resolves the symlinks of the parts of a path that exist,
//! so a link inside the root that points out of it is caught too.

use std::path::{Component, Path, PathBuf};

/// Why output path template `template` could write outside the warehouse, if
/// it could: it must be `{warehouse}/<relative path>` without `..`.
pub(crate) fn output_path_problem(template: &str) -> Option<&'static str> {
    let Some(rest) = template.strip_prefix("{warehouse}/") else {
        return Some(
            "must start with `{warehouse}/`: outputs are written only under the warehouse root",
        );
    };
    if rest.split(['/', '\\']).any(|part| part == "..") {
        return Some("must not contain `..`: outputs are written only under the warehouse root");
    }
    if rest.trim_matches('/').is_empty() {
        return Some("must name a folder under the warehouse root, not the root itself");
    }
    None
}

/// Whether `path` is inside folder `root` (both absolute), with the symlinks
/// of their existing parts resolved; a path that cannot be resolved is not.
pub fn within(root: &Path, path: &Path) -> bool {
    match (resolve_existing(root), resolve_existing(path)) {
        (Some(root), Some(path)) => path.starts_with(root),
        _ => false,
    }
}

/// `path` with its longest existing ancestor canonicalized (symlinks
/// resolved) and the rest appended; `None` when the rest holds `..` or `.`.
fn resolve_existing(path: &Path) -> Option<PathBuf> {
    let mut existing = path;
    let mut rest = Vec::new();
    loop {
        if let Ok(resolved) = existing.canonicalize() {
            return Some(rest.iter().rev().fold(resolved, |out, part| out.join(part)));
        }
        match existing.components().next_back()? {
            Component::Normal(part) => rest.push(part),
            _ => return None,
        }
        existing = existing.parent()?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_templates_stay_under_the_warehouse() {
        assert_eq!(output_path_problem("{warehouse}/customer_360"), None);
        assert_eq!(output_path_problem("{warehouse}/{env}/orders"), None);
        for escaping in [
            "{warehouse}/../../escaped",
            "{warehouse}/a/../../b",
            "{warehouse}\\..\\x",
            "/tmp/elsewhere",
            "s3://other-bucket/x",
            "{raw}/customer_360",
            "{warehouse}/",
        ] {
            assert!(output_path_problem(escaping).is_some(), "{escaping}");
        }
    }

    #[test]
    fn a_symlink_out_of_the_root_is_outside_it() {
        let dir = tempfile::tempdir().unwrap();
        let (root, outside) = (dir.path().join("wh"), dir.path().join("elsewhere"));
        std::fs::create_dir_all(&root).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        assert!(within(
            &root,
            &root.join("customer_360/snapshot_date=2026-01-01")
        ));
        assert!(!within(&root, &outside.join("x")));
        assert!(!within(&root, &root.join("a/../../elsewhere")));
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(&outside, root.join("link")).unwrap();
            assert!(!within(&root, &root.join("link/customer_360")));
        }
    }
}
