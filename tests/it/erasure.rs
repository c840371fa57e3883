//! Erasure (DATA_CONTRACT.md, "Erasure") with the real job over the hand-made
//! extracts in `tests/fixtures/erasure_raw` (its README says who is who).
//!
//! Worked by hand from the fixture:
//! - customers: Eve {crm:E1, web:W1, eve@example.com, +442079460111}, Bob
//!   {crm:B1, bob@example.com}, Cara {web:C1, cara@example.com}: 3 customers,
//!   4 + 2 + 2 = 8 identity map rows; order lines T1..T5 = 5.
//! - rejects: profiles lines 6 (Eve's phone), 7 (Bob's email), 8 (Eve's id and
//!   email) = 3; transactions lines 7 (T6, crm E1), 8 (T7, crm B1) = 2;
//!   communications lines 4 (Eve's email), 5 (Bob's email) = 2.
//! - 2026-02-04: only the crm:ZZ9 request applies (Eve's is 2026-02-05 04:30 UTC):
//!   nobody erased. 2026-02-05: crm:E1 and cara@example.com apply too: Eve and Cara
//!   erased; 1 customer, 2 map rows, order lines T3 and T4, rejects 1 + 1 + 1.

use std::path::Path;
use std::sync::Arc;

use c360::clock::SystemClock;
use c360::run::{RunOptions, RunSummary, run};
use chrono::NaiveDate;
use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::run::keys_by_identifier;
use crate::util::{files_under, read_partition, repo_root};

/// The sample's people whose erasure applies on `on` (ground truth: person ids and
/// request times in `suppressions.csv`; a request applies from its UTC date).
pub(crate) fn sample_erased_people(on: NaiveDate) -> std::collections::BTreeSet<String> {
    let path = repo_root().join("sample_data/raw/_ground_truth/suppressions.csv");
    csv::Reader::from_path(&path)
        .unwrap()
        .records()
        .map(Result::unwrap)
        .filter(|r| {
            let at = chrono::DateTime::parse_from_rfc3339(&r[1]).unwrap();
            at.with_timezone(&chrono::Utc).date_naive() <= on
        })
        .map(|r| r[0].to_string())
        .collect()
}

fn raw() -> std::path::PathBuf {
    repo_root().join("tests/fixtures/erasure_raw")
}

/// The real job; `relaxed` lifts the reject budgets, which a seven-row extract
/// with rejected rows exceeds.
fn real_job(relaxed: bool) -> c360::job::Job {
    let mut job = c360::job::load(&repo_root().join("jobs/customer_360.yaml")).unwrap();
    if relaxed {
        for source in &mut job.sources {
            source.rejects.max_fraction = 1.0;
        }
    }
    job
}

/// Runs the real job on `on` (`relaxed`: [`real_job`]).
async fn run_on(warehouse: &Path, on: &str, relaxed: bool) -> Result<RunSummary, String> {
    run_job_on(&real_job(relaxed), warehouse, on).await
}

async fn run_job_on(
    job: &c360::job::Job,
    warehouse: &Path,
    on: &str,
) -> Result<RunSummary, String> {
    let options = RunOptions {
        date: Some(NaiveDate::parse_from_str(on, "%Y-%m-%d").unwrap()),
        overrides: vec![
            ("raw".into(), raw().display().to_string()),
            ("warehouse".into(), warehouse.display().to_string()),
        ],
        memory_limit: None,
        engine: None,
        clock: Arc::new(SystemClock),
        full_refresh: false,
    };
    run(job, &options).await.map_err(|e| e.to_string())
}

/// Rows of the Parquet files in the folder `dir` (a published partition).
fn rows_in(dir: &Path) -> i64 {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
        .map(|p| {
            ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(p).unwrap())
                .unwrap()
                .metadata()
                .file_metadata()
                .num_rows()
        })
        .sum()
}

fn rows(summary: &RunSummary, name: &str) -> u64 {
    let outputs = summary.outputs.iter().chain(&summary.rejects);
    outputs.filter(|o| o.name == name).map(|o| o.rows).sum()
}

/// Every value of every string column of every Parquet file under `dir` whose
/// path contains `only` (e.g. a partition's date), lower-cased.
fn strings_under(dir: &Path, only: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for file in files_under(dir) {
        let name = file.display().to_string();
        if !name.ends_with(".parquet") || !name.contains(only) {
            continue;
        }
        let reader = ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(&file).unwrap())
            .unwrap()
            .build()
            .unwrap();
        for batch in reader {
            let batch = batch.unwrap();
            for column in batch.columns() {
                if !matches!(
                    column.data_type(),
                    DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8
                ) {
                    continue;
                }
                let text = cast(column, &DataType::Utf8).unwrap();
                let text = text.as_string::<i32>();
                for i in 0..text.len() {
                    if text.is_valid(i) {
                        out.push((name.clone(), text.value(i).to_lowercase()));
                    }
                }
            }
        }
    }
    out
}

/// Eve's and Cara's traces: identifiers in every form the fixture writes them,
/// Eve's surname (only in her rows) and their customer keys.
fn erased_traces(keys: &[&str]) -> Vec<String> {
    let mut traces: Vec<String> = [
        "crm:e1",
        "web:w1",
        "eve@example.com",
        "+442079460111",
        "7946 0111",
        "adams",
        "web:c1",
        "cara@example.com",
        "cole",
    ]
    .map(String::from)
    .to_vec();
    traces.extend(keys.iter().map(|k| k.to_lowercase()));
    traces
}

fn assert_no_trace(values: &[(String, String)], traces: &[String]) {
    assert!(!values.is_empty(), "scanned something");
    for (file, value) in values {
        for trace in traces {
            assert!(
                !value.contains(trace.as_str()),
                "{file}: `{value}` carries {trace}"
            );
        }
        // Source ids stand alone in order_lines (source_customer_id).
        assert!(
            value != "e1" && value != "w1" && value != "c1",
            "{file}: `{value}`"
        );
    }
}

#[tokio::test]
async fn a_request_erases_the_person_from_every_output_from_its_utc_date_on() {
    let wh = tempfile::tempdir().unwrap();
    let before = run_on(wh.path(), "2026-02-04", true).await.unwrap();
    assert_eq!(rows(&before, "customer_360"), 3);
    assert_eq!(rows(&before, "identity_map"), 8);
    assert_eq!(rows(&before, "order_lines"), 5);
    assert_eq!(
        [
            rows(&before, "profiles"),
            rows(&before, "transactions"),
            rows(&before, "communications")
        ],
        [3, 2, 2]
    );
    assert_eq!(before.erasure.requested_identifiers, 1, "crm:ZZ9 only");
    assert_eq!(before.erasure.erased_customers, Some(0));
    assert!(before.erasure.reject_rows_removed.is_empty());
    let keys = keys_by_identifier(wh.path(), "2026-02-04");
    let (eve, bob, cara) = (&keys["crm:E1"], &keys["crm:B1"], &keys["web:C1"]);
    assert_eq!(&keys["eve@example.com"], eve);
    assert_eq!(&keys["+442079460111"], eve);
    // The scan finds them when they are there (output columns and reject text).
    let present = strings_under(wh.path(), "2026-02-04");
    for trace in ["eve@example.com", "adams", "7946 0111", "cara@example.com"] {
        assert!(present.iter().any(|(_, v)| v.contains(trace)), "{trace}");
    }

    let after = run_on(wh.path(), "2026-02-05", true).await.unwrap();
    assert_eq!(rows(&after, "customer_360"), 1);
    assert_eq!(rows(&after, "identity_map"), 2);
    assert_eq!(rows(&after, "identity_merges"), 0);
    assert_eq!(rows(&after, "order_lines"), 2, "Bob's T3 and T4");
    assert_eq!(
        [
            rows(&after, "profiles"),
            rows(&after, "transactions"),
            rows(&after, "communications")
        ],
        [1, 1, 1],
        "Bob's rejects stay"
    );
    // crm:E1, crm:ZZ9, cara@example.com.
    assert_eq!(after.erasure.requested_identifiers, 3);
    assert_eq!(after.erasure.erased_customers, Some(2));
    let removed: Vec<(&str, u64)> = after
        .erasure
        .reject_rows_removed
        .iter()
        .map(|(k, v)| (k.as_str(), *v))
        .collect();
    assert_eq!(
        removed,
        [("communications", 1), ("profiles", 2), ("transactions", 1)]
    );
    // Bob keeps his key: the stitch step read the previous identity_map snapshot.
    let keys_after = keys_by_identifier(wh.path(), "2026-02-05");
    assert_eq!(&keys_after["crm:B1"], bob);
    assert_eq!(&keys_after["bob@example.com"], bob);

    // Nothing of this run's partitions carries Eve or Cara (the 2026-02-04
    // snapshot is not rewritten: docs/rules.md "Erasure").
    let values = strings_under(wh.path(), "2026-02-05");
    assert_no_trace(&values, &erased_traces(&[eve, cara]));
    assert!(values.iter().any(|(_, v)| v == "bob@example.com"));
    assert!(values.iter().any(|(_, v)| v == "brown"));

    // The run reports show reject examples as published: Eve's rows on the
    // day before her request, none of hers or Cara's from the day it applies.
    let report = |day: &str| {
        let path = wh
            .path()
            .join(format!("_c360/reports/customer_360/{day}.html"));
        std::fs::read_to_string(path).unwrap().to_lowercase()
    };
    assert!(report("2026-02-04").contains("eve@example.com"));
    let after_report = report("2026-02-05");
    assert!(
        after_report.contains("bob@example.com"),
        "Bob's rejects stay"
    );
    for trace in erased_traces(&[eve, cara]) {
        assert!(!after_report.contains(&trace), "{trace} in the report");
    }
}

#[tokio::test]
async fn rewrite_history_takes_the_person_out_of_earlier_snapshots_rejects_and_reports() {
    let wh = tempfile::tempdir().unwrap();
    run_on(wh.path(), "2026-02-04", true).await.unwrap();
    let keys = keys_by_identifier(wh.path(), "2026-02-04");
    let (eve, cara) = (&keys["crm:E1"], &keys["web:C1"]);
    let day = |output: &str| wh.path().join(output).join("snapshot_date=2026-02-04");
    let summary_before = strings_under(&day("segment_summary"), "");
    // Eve's and Cara's channel rows, one per channel they were reached on.
    let channel_rows = rows_of(&day("channel_engagement"), &[eve, cara]);
    assert!(channel_rows > 0);
    let report = |d: &str| {
        wh.path()
            .join(format!("_c360/reports/customer_360/{d}.html"))
    };
    assert!(report("2026-02-04").exists());

    let mut job = real_job(true);
    job.erasure.as_mut().unwrap().rewrite_history = true;
    let after = run_job_on(&job, wh.path(), "2026-02-05").await.unwrap();
    assert_eq!(after.erasure.erased_customers, Some(2));
    // Worked from the fixture: on 2026-02-04 Eve and Cara held 2 of 3 customers,
    // 6 of 8 map rows, 3 of 5 order lines (T1, T2, T5) and the rejects below.
    let removed: Vec<(&str, u64)> = after
        .erasure
        .history_rows_removed
        .iter()
        .map(|(k, v)| (k.as_str(), *v))
        .collect();
    assert_eq!(
        removed,
        [
            ("channel_engagement", channel_rows),
            ("customer_360", 2),
            ("identity_map", 6),
            ("order_lines", 3),
            ("rejects/communications", 1),
            ("rejects/profiles", 2),
            ("rejects/transactions", 1),
        ]
    );
    assert_eq!(rows_in(&day("customer_360")), 1);
    assert_eq!(rows_in(&day("identity_map")), 2);
    assert_eq!(rows_in(&day("order_lines")), 2);
    // Aggregates hold no row of a person and stay as they were.
    assert_eq!(strings_under(&day("segment_summary"), ""), summary_before);

    // Nothing anywhere in the warehouse carries them; Bob stays in the earlier snapshot.
    let values = strings_under(wh.path(), "");
    assert_no_trace(&values, &erased_traces(&[eve, cara]));
    let earlier = strings_under(wh.path(), "2026-02-04");
    assert!(earlier.iter().any(|(_, v)| v == "bob@example.com"));
    assert!(earlier.iter().any(|(_, v)| v == "brown"));
    // The earlier report showed Eve's rejects: deleted; the run's own report stays.
    assert!(!report("2026-02-04").exists());
    assert!(report("2026-02-05").exists());

    // A rerun with the same erased people reads no history again.
    let again = run_job_on(&job, wh.path(), "2026-02-05").await.unwrap();
    assert_eq!(again.erasure.history_partitions_rewritten, 0);
    assert_eq!(rows_in(&day("customer_360")), 1);
}

/// Rows of the published partition `dir` whose `customer_key` is one of `keys`.
fn rows_of(dir: &Path, keys: &[&String]) -> u64 {
    let mut n = 0;
    for batch in read_partition(dir) {
        let column = cast(
            batch.column_by_name("customer_key").unwrap(),
            &DataType::Utf8,
        )
        .unwrap();
        let column = column.as_string::<i32>();
        n += (0..column.len())
            .filter(|&i| column.is_valid(i) && keys.iter().any(|k| *k == column.value(i)))
            .count() as u64;
    }
    n
}

/// The shipped job and its SQL copied under `root` with the erasure steps renamed
/// (`erasure_requests` -> `asked`, `erased_customers` -> `gone_people`,
/// `erased_identifiers` -> `gone_ids`) in the job, its `erasure:` section and every
/// SQL file: erasure follows the section, not fixed names.
fn renamed_job(root: &Path) -> c360::job::Job {
    let rename = |text: &str| {
        text.replace("erasure_requests", "asked")
            .replace("erased_customers", "gone_people")
            .replace("erased_identifiers", "gone_ids")
    };
    std::fs::create_dir_all(root.join("jobs")).unwrap();
    for folder in ["sql/staging", "sql/marts"] {
        std::fs::create_dir_all(root.join(folder)).unwrap();
        for entry in std::fs::read_dir(repo_root().join(folder)).unwrap() {
            let path = entry.unwrap().path();
            let name = rename(&path.file_name().unwrap().to_string_lossy());
            let text = std::fs::read_to_string(&path).unwrap();
            std::fs::write(root.join(folder).join(name), rename(&text)).unwrap();
        }
    }
    let text = std::fs::read_to_string(repo_root().join("jobs/customer_360.yaml")).unwrap();
    let renamed = rename(&text);
    assert!(
        renamed.contains("identifiers: gone_ids"),
        "the section was renamed"
    );
    let path = root.join("jobs/renamed.yaml");
    std::fs::write(&path, renamed).unwrap();
    let mut job = c360::job::load_with_base(&path, root).unwrap();
    for source in &mut job.sources {
        source.rejects.max_fraction = 1.0;
    }
    job
}

#[tokio::test]
async fn renamed_erasure_steps_still_keep_the_person_out_of_the_rejects() {
    let root = tempfile::tempdir().unwrap();
    let job = renamed_job(root.path());
    let other = tempfile::tempdir().unwrap();
    run_on(other.path(), "2026-02-04", true).await.unwrap();
    let keys = keys_by_identifier(other.path(), "2026-02-04");

    let wh = tempfile::tempdir().unwrap();
    let options = RunOptions {
        date: Some(NaiveDate::from_ymd_opt(2026, 2, 5).unwrap()),
        overrides: vec![
            ("raw".into(), raw().display().to_string()),
            ("warehouse".into(), wh.path().display().to_string()),
            (
                "reference".into(),
                repo_root()
                    .join("sample_data/reference")
                    .display()
                    .to_string(),
            ),
        ],
        memory_limit: None,
        engine: None,
        clock: Arc::new(SystemClock),
        full_refresh: false,
    };
    let after = run(&job, &options).await.unwrap();
    assert_eq!(rows(&after, "customer_360"), 1);
    assert_eq!(after.erasure.erased_customers, Some(2));
    let values = strings_under(wh.path(), "");
    assert_no_trace(&values, &erased_traces(&[&keys["crm:E1"], &keys["web:C1"]]));
}

#[tokio::test]
async fn a_fresh_warehouse_run_after_the_request_holds_no_trace_anywhere() {
    let wh = tempfile::tempdir().unwrap();
    // Keys derive from the smallest identifier (src/steps/identity/keys.rs), so a
    // run on the earlier date in another warehouse names the same keys.
    let other = tempfile::tempdir().unwrap();
    run_on(other.path(), "2026-02-04", true).await.unwrap();
    let keys = keys_by_identifier(other.path(), "2026-02-04");

    let after = run_on(wh.path(), "2026-02-05", true).await.unwrap();
    assert_eq!(rows(&after, "customer_360"), 1);
    // Every Parquet file under the warehouse: outputs, rejects, anything cached.
    let traces = erased_traces(&[&keys["crm:E1"], &keys["web:C1"]]);
    assert_no_trace(&strings_under(wh.path(), ""), &traces);
    // The cache kept only where their records are in the raw files.
    let manifest = |source: &str| {
        let path = wh.path().join(format!(
            "_c360/staging/{source}/dt=2026-02-01/manifest.json"
        ));
        std::fs::read_to_string(path).unwrap()
    };
    assert!(manifest("profiles").contains("\"held_out\""));
    assert!(
        !manifest("profiles")
            .to_lowercase()
            .contains("eve@example.com")
    );

    // A rerun reuses the entries and reads the held-out records back from the raw
    // files: Eve and Cara are found (only their rows resolve the requests) and
    // erased again, their rejects left out again, and still nothing is kept.
    let again = run_on(wh.path(), "2026-02-05", true).await.unwrap();
    assert_eq!(again.erasure.erased_customers, Some(2));
    assert_eq!(
        again.erasure.reject_rows_removed,
        after.erasure.reject_rows_removed
    );
    assert_eq!(rows(&again, "customer_360"), 1);
    assert_eq!(rows(&again, "order_lines"), 2);
    assert_no_trace(&strings_under(wh.path(), ""), &traces);
}

#[tokio::test]
async fn a_failed_run_publishes_rejects_without_the_requested_identifiers() {
    let wh = tempfile::tempdir().unwrap();
    // Default budgets (1%): 3 of 7 profile rows rejected fails the run.
    let error = run_on(wh.path(), "2026-02-05", false).await.unwrap_err();
    assert!(error.contains("over the budget"), "{error}");
    assert!(
        !wh.path().join("customer_360").exists(),
        "nothing else published"
    );
    // Only the requests' own identifiers are known (crm:E1, cara@example.com): the
    // rows carrying crm,E1 go (profiles line 8, transactions T6); Eve's phone and
    // her email alone were not requested and stay (profiles line 6, communications
    // line 4).
    let values = strings_under(&wh.path().join("rejects"), "2026-02-05");
    let raw_lines: Vec<&str> = values
        .iter()
        .map(|(_, v)| v.as_str())
        .filter(|v| v.contains(','))
        .collect();
    assert_eq!(raw_lines.len(), 2 + 1 + 2, "{raw_lines:#?}");
    assert!(raw_lines.iter().all(|v| !v.contains("crm,e1")));
    assert!(raw_lines.iter().any(|v| v.contains("+44 20 7946 0111")));
    assert!(
        raw_lines
            .iter()
            .any(|v| v.contains("\"email\":\"eve@example.com\""))
    );
}
