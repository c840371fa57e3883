//! Helpers shared by the integration tests.

#![allow(dead_code)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::util::display::array_value_to_string;
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

/// Runs the `c360` binary from the repository root with warnings-only logs.
pub fn c360(args: &[&str]) -> std::process::Output {
    c360_in(&repo_root(), args)
}

/// Runs the `c360` binary from `dir` with warnings-only logs.
pub fn c360_in(dir: &Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_c360"))
        .args(args)
        .current_dir(dir)
        .env("C360_LOG", "warn")
        .output()
        .expect("the c360 binary starts")
}

/// The repository root (where Cargo.toml, jobs/, sql/ and sample_data/ live).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every file (not folder) under `dir`, recursively, sorted; empty if `dir` is missing.
pub fn files_under(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(next) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&next) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// Reads every Parquet file of a partition folder with the parquet crate's own reader.
pub fn read_partition(dir: &Path) -> Vec<RecordBatch> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
        .collect();
    files.sort();
    files
        .iter()
        .flat_map(|f| {
            ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(f).unwrap())
                .unwrap()
                .build()
                .unwrap()
                .map(|b| b.unwrap())
        })
        .collect()
}

/// Every published partition of the warehouse for `date`, as sorted text rows,
/// keyed by its folder relative to the warehouse.
pub fn published_partitions(wh: &Path, date: &str) -> Vec<(PathBuf, Vec<String>)> {
    let mut dirs: BTreeSet<PathBuf> = BTreeSet::new();
    for file in files_under(wh) {
        let rel = file.strip_prefix(wh).unwrap().to_path_buf();
        if rel.starts_with("_c360") {
            continue;
        }
        let dir = rel.parent().unwrap().to_path_buf();
        let leaf = dir.file_name().unwrap().to_string_lossy().into_owned();
        if leaf == format!("snapshot_date={date}") || leaf == format!("run_date={date}") {
            dirs.insert(dir);
        }
    }
    dirs.into_iter()
        .map(|dir| {
            let rows = sorted_rows(&wh.join(&dir));
            (dir, rows)
        })
        .collect()
}

/// The `channel_engagement` rows (as [`published_partitions`] gives them) of
/// the customer whose identity map holds email `email`.
pub fn engagement_of_email<'a>(
    partitions: &'a [(PathBuf, Vec<String>)],
    email: &str,
) -> Vec<&'a String> {
    let rows = |table: &str| {
        let found = partitions.iter().find(|(dir, _)| dir.starts_with(table));
        &found.unwrap().1
    };
    let key = (rows("identity_map").iter())
        .find(|l| l.contains(&format!("|{email}|")))
        .map(|l| l.split('|').nth(2).unwrap().to_string())
        .unwrap();
    (rows("channel_engagement").iter())
        .filter(|l| l.starts_with(&format!("{key}|")))
        .collect()
}

/// Every row of a partition folder as `|`-joined text, sorted (rows equal on an
/// output's sort keys may come in either order).
pub fn sorted_rows(dir: &Path) -> Vec<String> {
    let mut rows = Vec::new();
    for batch in read_partition(dir) {
        for row in 0..batch.num_rows() {
            let cells: Vec<String> = (0..batch.num_columns())
                .map(|c| array_value_to_string(batch.column(c), row).unwrap())
                .collect();
            rows.push(cells.join("|"));
        }
    }
    rows.sort();
    rows
}
