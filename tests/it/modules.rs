//! The crate's modules depend on each other in one direction only (README, "Code
//! layout"): a module uses only modules below it in [`LAYERS`], so there is no
//! cycle and a lower layer owns the types it needs. Checked by reading every
//! `crate::<module>` path in the code (comments aside) under `src/`.

use std::collections::BTreeSet;
use std::path::Path;

use crate::util::repo_root;

/// Top-level modules, lowest first.
const LAYERS: [&str; 19] = [
    "clock", "progress", "udf", "generate", "engine", "job", "storage", "cluster", "outputs",
    "source", "commit", "checks", "steps", "erasure", "runlog", "report", "run", "schedule", "cli",
];

fn rank(module: &str) -> usize {
    LAYERS
        .iter()
        .position(|m| *m == module)
        .unwrap_or_else(|| panic!("module `{module}` is not in LAYERS: place it there"))
}

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `crate::name` paths on the code lines of `text`.
fn referenced(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for line in text.lines() {
        let code = line.split("//").next().unwrap_or("");
        let mut rest = code;
        while let Some(at) = rest.find("crate::") {
            rest = &rest[at + "crate::".len()..];
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                .collect();
            if !name.is_empty() {
                out.insert(name);
            }
        }
    }
    out
}

#[test]
fn modules_use_only_the_layers_below_them() {
    let src = repo_root().join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut violations = Vec::new();
    let mut seen = BTreeSet::new();
    for file in files {
        let relative = file.strip_prefix(&src).unwrap();
        let first = relative
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy();
        let module = first.trim_end_matches(".rs").to_string();
        if module == "lib" || module == "main" {
            continue;
        }
        seen.insert(module.clone());
        let text = std::fs::read_to_string(&file).unwrap();
        for target in referenced(&text) {
            if target != module && rank(&target) > rank(&module) {
                violations.push(format!("{} uses crate::{target}", relative.display()));
            }
        }
    }
    assert_eq!(
        seen.len(),
        LAYERS.len(),
        "every layer is a module: {seen:?}"
    );
    assert!(
        violations.is_empty(),
        "upward dependencies: {violations:#?}"
    );
}

#[test]
fn the_check_sees_an_upward_path_and_skips_comments() {
    let text = "use crate::job::Job; // crate::cli in a comment\n// crate::run::x\nlet x = crate::schedule::plan;";
    let found: Vec<String> = referenced(text).into_iter().collect();
    assert_eq!(found, ["job", "schedule"]);
}
