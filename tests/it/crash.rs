//! Crash safety with real processes: `c360 run` killed with SIGKILL at moments
//! spread over a run leaves the last good snapshot complete and readable, and
//! the next run cleans up and gives identical results. And two runs of one job
//! at the same time: exactly one publishes.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Instant;

use c360::clock::SystemClock;
use c360::commit::CommitError;
use c360::run::{RunError, RunOptions, run};
use chrono::NaiveDate;
use datafusion::arrow::util::pretty::pretty_format_batches;
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::util::{files_under, repo_root};

const DATE: &str = "2026-01-20";
const OUTPUTS: [&str; 2] = ["customer_360", "order_lines"];

fn c360(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_c360"));
    command
        .args(args)
        .current_dir(repo_root())
        .env("C360_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    command
}

fn run_args<'a>(raw: &'a str, wh: &'a str) -> Vec<String> {
    ["run", "jobs/customer_360.yaml", "--date", DATE]
        .iter()
        .map(|s| s.to_string())
        .chain([format!("--set=raw={raw}"), format!("--set=warehouse={wh}")])
        .collect()
}

/// Rows of the given Parquet files as one sorted, printable table.
fn table(files: &[PathBuf]) -> String {
    let mut batches = Vec::new();
    for f in files {
        let reader = ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(f).unwrap())
            .unwrap()
            .build()
            .unwrap();
        batches.extend(reader.map(|b| b.unwrap()));
    }
    let text = pretty_format_batches(&batches).unwrap().to_string();
    let mut lines: Vec<&str> = text.lines().collect();
    lines.sort();
    lines.join("\n")
}

/// Each output's partition as a plain reader (every `*.parquet`) and as c360
/// (the files `_SUCCESS` lists) sees it; they must agree.
fn snapshot(wh: &Path) -> Vec<String> {
    OUTPUTS
        .iter()
        .map(|output| {
            let dir = wh.join(output).join(format!("snapshot_date={DATE}"));
            let plain: Vec<PathBuf> = files_under(&dir)
                .into_iter()
                .filter(|f| f.extension().is_some_and(|e| e == "parquet"))
                .collect();
            let marker: c360::outputs::SuccessMarker =
                serde_json::from_slice(&std::fs::read(dir.join("_SUCCESS")).unwrap()).unwrap();
            let listed: Vec<PathBuf> = marker.files.iter().map(|f| dir.join(f)).collect();
            let rows = table(&plain);
            assert_eq!(
                rows,
                table(&listed),
                "{output}: plain and committed views differ"
            );
            rows
        })
        .collect()
}

/// A tiny deterministic generator for kill moments (xorshift).
fn jitter(state: &mut u64) -> f64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    (*state % 1000) as f64 / 1000.0
}

#[test]
fn kill_9_at_any_moment_leaves_the_last_snapshot_complete_and_a_rerun_identical() {
    let tmp = tempfile::tempdir().unwrap();
    let (raw, wh) = (tmp.path().join("raw"), tmp.path().join("wh"));
    let (raw_s, wh_s) = (raw.display().to_string(), wh.display().to_string());
    let status = c360(&[
        "generate",
        "--customers",
        "300",
        "--days",
        "20",
        "--seed",
        "3",
        "--out",
        &raw_s,
    ])
    .status()
    .unwrap();
    assert!(status.success());
    let args = run_args(&raw_s, &wh_s);
    let started = Instant::now();
    assert!(c360(&[]).args(&args).status().unwrap().success());
    let full = started.elapsed();
    let good = snapshot(&wh);

    // Five kills, one in each fifth of a run's duration, at a seeded moment inside it.
    let mut seed = 0x5eed_u64;
    for trial in 0..5 {
        let at = full.mul_f64((trial as f64 + jitter(&mut seed)) / 5.0);
        let mut child = c360(&[]).args(&args).spawn().unwrap();
        std::thread::sleep(at);
        // SIGKILL on Unix: no destructors, no cleanup.
        let _ = child.kill();
        child.wait().unwrap();
        assert_eq!(snapshot(&wh), good, "after a kill at {at:?}");
    }

    let status = c360(&[]).args(&args).status().unwrap();
    assert!(status.success());
    assert_eq!(snapshot(&wh), good);
    assert_state_complete(&wh);
    assert!(files_under(&wh.join("_c360/tmp")).is_empty());
    assert!(files_under(&wh.join("_c360/commits")).is_empty());
    assert!(!wh.join("_c360/lock").exists());
    // The history shows the good runs and, for killed runs, what happened.
    let out = c360(&["status", "jobs/customer_360.yaml", "--warehouse", &wh_s])
        .stdout(Stdio::piped())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    // The first and the last run succeed; a kill that lands after a run has already
    // finished (the machine may be slow) leaves a third success, never a failure.
    let runs: Vec<&str> = text
        .lines()
        .skip(1)
        .filter(|l| !l.starts_with(' '))
        .collect();
    assert_eq!(runs.len(), 7, "{text}");
    assert!(text.matches("succeeded").count() >= 2, "{text}");
    for line in runs {
        assert!(
            line.contains("succeeded") || line.contains("abandoned") || line.contains("running"),
            "{text}"
        );
    }
}

/// Every file of every typed staging cache entry under `wh` is the manifest or
/// named by it.
fn assert_cache_entries_complete(wh: &Path) {
    let staging = wh.join("_c360/staging");
    let mut entries = std::collections::BTreeSet::new();
    for file in files_under(&staging) {
        entries.insert(file.parent().unwrap().to_path_buf());
    }
    assert!(entries.len() > 20, "{entries:?}");
    for entry in entries {
        let manifest: serde_json::Value =
            serde_json::from_slice(&std::fs::read(entry.join("manifest.json")).unwrap()).unwrap();
        let mut named = vec!["manifest.json".to_string()];
        for part in ["typed", "rejects"] {
            named.push(manifest[part]["name"].as_str().unwrap().to_string());
        }
        named.sort();
        let mut present: Vec<String> = std::fs::read_dir(&entry)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        present.sort();
        assert_eq!(present, named, "{}", entry.display());
    }
}

/// Every file of the carried states under `wh` is a manifest or named by it
/// (its base or a delta): a killed run's half-written part is swept.
fn assert_state_complete(wh: &Path) {
    for step in ["identity_link_rows", "channel_activity_rows"] {
        let dir = wh.join("_c360/state").join(step);
        let manifest: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
        let deltas = manifest["deltas"].as_array().unwrap().iter();
        let mut named: Vec<PathBuf> = std::iter::once(&manifest["base"])
            .chain(deltas)
            .flat_map(|part| {
                let folder = dir.join(part["dir"].as_str().unwrap());
                let files = part["files"].as_array().unwrap().iter();
                files.map(move |f| folder.join(f.as_str().unwrap()))
            })
            .chain([dir.join("manifest.json")])
            .collect();
        named.sort();
        let mut present = files_under(&dir);
        present.sort();
        assert_eq!(present, named, "{step}");
    }
}

// Runs killed while they parse raw days into the typed staging cache (a full
// refresh rewrites every entry) leave no entry a later run trusts wrongly: the
// next run's outputs equal those of a run that never saw the cache, and the
// killed runs' half-written files are swept.
#[test]
fn kill_9_while_the_cache_is_written_then_a_rerun_equals_a_fresh_run() {
    let tmp = tempfile::tempdir().unwrap();
    let (raw, fresh, wh) = (
        tmp.path().join("raw"),
        tmp.path().join("fresh"),
        tmp.path().join("wh"),
    );
    let raw_s = raw.display().to_string();
    let generated = c360(&[
        "generate",
        "--customers",
        "300",
        "--days",
        "20",
        "--seed",
        "4",
        "--out",
        &raw_s,
    ])
    .status()
    .unwrap();
    assert!(generated.success());
    let started = Instant::now();
    let fresh_args = run_args(&raw_s, fresh.to_str().unwrap());
    assert!(c360(&[]).args(&fresh_args).status().unwrap().success());
    let full = started.elapsed();
    let good = snapshot(&fresh);

    let args = run_args(&raw_s, wh.to_str().unwrap());
    assert!(c360(&[]).args(&args).status().unwrap().success());
    let mut seed = 0xcac4e_u64;
    for trial in 0..4 {
        // Within the first 40% of a run: the sources stage.
        let at = full.mul_f64(0.4 * (trial as f64 + jitter(&mut seed)) / 4.0);
        let mut child = c360(&["run", "--full-refresh"])
            .args(&args[1..])
            .spawn()
            .unwrap();
        std::thread::sleep(at);
        let _ = child.kill();
        child.wait().unwrap();
    }
    assert!(c360(&[]).args(&args).status().unwrap().success());
    assert_eq!(snapshot(&wh), good);
    assert_cache_entries_complete(&wh);
    assert_state_complete(&wh);
}

// The moment both kill tests above hit only by chance: a kill inside a local
// write leaves object_store's hidden `name#N` file (in a cache entry, or a
// commit record). The next run removes them.
#[test]
fn hidden_files_of_writes_a_kill_interrupted_are_swept_by_the_next_run() {
    let tmp = tempfile::tempdir().unwrap();
    let (raw, wh) = (tmp.path().join("raw"), tmp.path().join("wh"));
    let raw_s = raw.display().to_string();
    let generated = c360(&[
        "generate",
        "--customers",
        "50",
        "--days",
        "15",
        "--seed",
        "5",
        "--out",
        &raw_s,
    ])
    .status()
    .unwrap();
    assert!(generated.success());
    let args = run_args(&raw_s, wh.to_str().unwrap());
    assert!(c360(&[]).args(&args).status().unwrap().success());
    let entry = wh.join("_c360/staging/transactions/dt=2026-01-12");
    let planted = [
        entry.join("manifest.json#7"),
        entry.join("typed-20260101T000000Z-deadbeef.parquet#1"),
        wh.join("_c360/commits/20260101T000000Z-deadbeef-outputs.json#2"),
    ];
    for file in &planted {
        std::fs::write(file, b"half").unwrap();
    }
    // What a killed run also leaves: its staging folder, which tells the next
    // run to sweep the cache entries it reuses.
    let dead = wh.join("_c360/tmp/20260101T000000Z-deadbeef");
    std::fs::create_dir_all(&dead).unwrap();
    std::fs::write(dead.join("part-00000.parquet"), b"half").unwrap();

    assert!(c360(&[]).args(&args).status().unwrap().success());
    for file in &planted {
        assert!(!file.exists(), "{} left", file.display());
    }
    assert!(files_under(&wh.join("_c360/commits")).is_empty());
    assert!(files_under(&wh.join("_c360/tmp")).is_empty());
    assert_cache_entries_complete(&wh);
}

#[tokio::test]
async fn two_runs_of_a_job_at_once_exactly_one_publishes() {
    let wh = tempfile::tempdir().unwrap();
    let job = c360::job::load(&repo_root().join("jobs/customer_360.yaml")).unwrap();
    let options = || RunOptions {
        date: Some(NaiveDate::from_ymd_opt(2026, 2, 2).unwrap()),
        overrides: vec![
            (
                "raw".into(),
                repo_root()
                    .join("tests/fixtures/tiny_raw")
                    .display()
                    .to_string(),
            ),
            ("warehouse".into(), wh.path().display().to_string()),
        ],
        memory_limit: None,
        engine: None,
        clock: Arc::new(SystemClock),
        full_refresh: false,
    };
    let (first, second) = (options(), options());
    let (a, b) = tokio::join!(run(&job, &first), run(&job, &second));
    let (won, lost) = match (a, b) {
        (Ok(won), Err(lost)) | (Err(lost), Ok(won)) => (won, lost),
        (a, b) => panic!(
            "expected exactly one success: {:?} / {:?}",
            a.is_ok(),
            b.is_ok()
        ),
    };
    let RunError::Commit(CommitError::Locked(holder)) = &lost else {
        panic!("the loser should meet the lease: {lost}");
    };
    assert_eq!(holder.run_id, won.run_id);
    assert_eq!(c360::cli::exit_code(&lost), c360::cli::exit::LOCKED);
    assert!(lost.next_step().contains("wait for it"));
    // The winner's snapshot is there, and nothing else started.
    let marker: c360::outputs::SuccessMarker = serde_json::from_slice(
        &std::fs::read(
            wh.path()
                .join("customer_360/snapshot_date=2026-02-02/_SUCCESS"),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(marker.run_id, won.run_id);
    assert_eq!(marker.rows, 5);
    // The lease is released: a later run goes ahead.
    run(&job, &options()).await.unwrap();
}
