//! Data checks and row accounting over the hand-made extracts (`tiny_raw`), with
//! the real job's SQL. Expected counts are worked out from the fixture by hand.
//!
//! As of 2026-02-02 `customer_360` has four rows, all `crm`: C1 (last purchase
//! 21 Jan), C2 (25 Jan), C3 (30 Jan), C4 (only a return: monetary -0.13, no
//! purchase date). `order_lines` has 8 rows on 2 Feb and 7 on 1 Feb.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use c360::checks::{CheckError, CheckStatus};
use c360::clock::SystemClock;
use c360::job::{CheckSpec, Job, Severity};
use c360::run::{RunError, RunOptions, RunSummary, run};
use c360::runlog::{RunLog, RunStatus};
use chrono::NaiveDate;

use crate::util::{files_under, repo_root};

fn job_with(checks: Vec<(&str, CheckSpec)>) -> Job {
    let mut job = c360::job::load(&repo_root().join("jobs/customer_360.yaml")).unwrap();
    let mut map: BTreeMap<String, Vec<CheckSpec>> = BTreeMap::new();
    for (table, check) in checks {
        map.entry(table.to_string()).or_default().push(check);
    }
    job.checks = map;
    job
}

async fn run_on(job: &Job, wh: &Path, on: &str) -> Result<RunSummary, RunError> {
    let options = RunOptions {
        date: Some(NaiveDate::parse_from_str(on, "%Y-%m-%d").unwrap()),
        overrides: vec![
            (
                "raw".into(),
                repo_root()
                    .join("tests/fixtures/tiny_raw")
                    .display()
                    .to_string(),
            ),
            ("warehouse".into(), wh.display().to_string()),
        ],
        memory_limit: None,
        engine: None,
        clock: Arc::new(SystemClock),
        full_refresh: false,
    };
    run(job, &options).await
}

/// Every published file with its bytes, so "untouched" can be checked exactly.
fn published(wh: &Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    ["customer_360", "order_lines"]
        .iter()
        .flat_map(|o| files_under(&wh.join(o)))
        .map(|f| {
            let bytes = std::fs::read(&f).unwrap();
            (f, bytes)
        })
        .collect()
}

const E: Severity = Severity::Error;

fn cols(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| s.to_string()).collect()
}

#[tokio::test]
async fn every_check_kind_passes_on_good_data() {
    let wh = tempfile::tempdir().unwrap();
    run_on(&job_with(vec![]), wh.path(), "2026-02-01")
        .await
        .unwrap();
    let checks = vec![
        ("customer_360", CheckSpec::Unique { columns: cols(&["customer_key"]), severity: E }),
        ("customer_360", CheckSpec::NotNull { columns: cols(&["customer_key", "source_records"]), severity: E }),
        // Only C1 and C2 have a profile (GB); NULLs are not_null's business.
        ("customer_360", CheckSpec::AcceptedValues { column: "country_code".into(), values: cols(&["GB"]), severity: E }),
        ("customer_360", CheckSpec::Relationships { column: "customer_key".into(), to: "identity_map".into(), field: "customer_key".into(), severity: E }),
        // 5 customers (C1-C4 and the guest buyer) on 1 Feb and on 2 Feb: a 0% change.
        ("customer_360", CheckSpec::RowCount { min: Some(5), max: Some(5), max_change_pct: Some(0.0), severity: E }),
        // Newest purchase 30 Jan is 3 days before 2 Feb: exactly the limit.
        ("customer_360", CheckSpec::Freshness { column: "last_purchase_date".into(), max_age_days: 3, severity: E }),
        ("customer_360", CheckSpec::Sql { name: "net_within_gross".into(), sql: "SELECT * FROM customer_360 WHERE frequency_net > frequency OR last_purchase_date > DATE '{date}'".into(), severity: E }),
    ];
    let summary = run_on(&job_with(checks), wh.path(), "2026-02-02")
        .await
        .unwrap();
    assert_eq!(summary.checks.len(), 7);
    for outcome in &summary.checks {
        assert_eq!(outcome.status, CheckStatus::Pass, "{outcome:?}");
    }
    assert_eq!(
        summary.checks[4].message,
        "5 rows (0.0% vs snapshot_date=2026-02-01)"
    );
    assert_eq!(summary.checks[5].message, "newest 2026-01-30, 3 day(s) old");
}

#[tokio::test]
async fn a_failing_check_publishes_nothing_and_names_check_output_and_rows() {
    let wh = tempfile::tempdir().unwrap();
    run_on(&job_with(vec![]), wh.path(), "2026-02-01")
        .await
        .unwrap();
    run_on(&job_with(vec![]), wh.path(), "2026-02-02")
        .await
        .unwrap();
    let before = published(wh.path());
    // (table, check, expected failures, text the error must contain)
    let cases: Vec<(&str, CheckSpec, u64, &str)> = vec![
        (
            "customer_360",
            CheckSpec::Unique {
                columns: cols(&["country_code"]),
                severity: E,
            },
            1,
            "unique(country_code) on customer_360: 1 duplicated key(s), e.g. [country_code=GB, copies=2]",
        ),
        (
            "customer_360",
            CheckSpec::NotNull {
                columns: cols(&["first_purchase_date"]),
                severity: E,
            },
            1,
            // C4 (only a return) has the key derived from its identifier `crm:C4`.
            "customer_key=1605be8c28c4bc9bfdbd",
        ),
        (
            "customer_360",
            CheckSpec::AcceptedValues {
                column: "country_code".into(),
                values: cols(&["FR"]),
                severity: E,
            },
            2,
            "accepted_values(country_code) on customer_360: 2 row(s), e.g. [country_code=GB]",
        ),
        // order_lines is sorted by (transaction_id, line_no, status), so a unique
        // check on a prefix of that counts adjacent copies in its staged files
        // (`checks/sorted.rs`); the same rule as the SQL form above. As of 2 Feb:
        // T1 has lines 1 and 2, T3 line 1 is completed and returned.
        (
            "order_lines",
            CheckSpec::Unique {
                columns: cols(&["transaction_id"]),
                severity: E,
            },
            2,
            "unique(transaction_id) on order_lines: 2 duplicated key(s), e.g. [transaction_id=T1, copies=2] [transaction_id=T3, copies=2]",
        ),
        (
            "order_lines",
            CheckSpec::Unique {
                columns: cols(&["transaction_id", "line_no"]),
                severity: E,
            },
            1,
            "unique(transaction_id, line_no) on order_lines: 1 duplicated key(s), e.g. [transaction_id=T3, line_no=1, copies=2]",
        ),
        (
            "order_lines",
            CheckSpec::Relationships {
                column: "source_customer_id".into(),
                to: "profiles_current".into(),
                field: "source_customer_id".into(),
                severity: E,
            },
            2,
            "relationships(source_customer_id -> profiles_current.source_customer_id) on order_lines: 2 row(s)",
        ),
        (
            "customer_360",
            CheckSpec::RowCount {
                min: Some(6),
                max: None,
                max_change_pct: None,
                severity: E,
            },
            1,
            "5 rows, below the minimum 6",
        ),
        // 8 order lines vs 7 the day before: +14.3%.
        (
            "order_lines",
            CheckSpec::RowCount {
                min: None,
                max: None,
                max_change_pct: Some(10.0),
                severity: E,
            },
            1,
            "8 rows vs 7 in snapshot_date=2026-02-01: a 14.3% change, above 10%",
        ),
        (
            "customer_360",
            CheckSpec::Freshness {
                column: "last_purchase_date".into(),
                max_age_days: 2,
                severity: E,
            },
            1,
            "newest 2026-01-30 is 3 days before 2026-02-02, more than 2",
        ),
        (
            "customer_360",
            CheckSpec::Sql {
                name: "no_negative_value".into(),
                sql: "SELECT customer_key, monetary FROM customer_360 WHERE monetary < 0".into(),
                severity: E,
            },
            1,
            "sql(no_negative_value) on customer_360: 1 row(s), e.g. [customer_key=1605be8c28c4bc9bfdbd, monetary=-0.13]",
        ),
    ];
    for (table, check, failures, text) in cases {
        let error = run_on(&job_with(vec![(table, check)]), wh.path(), "2026-02-02")
            .await
            .unwrap_err();
        let message = error.to_string();
        assert!(message.contains(text), "{message}");
        assert!(message.contains("nothing was published"), "{message}");
        let RunError::Check(CheckError::Failed(failed)) = error else {
            panic!("not a check failure: {message}");
        };
        assert_eq!(failed.len(), 1);
        assert_eq!(failed[0].failures, failures, "{message}");
        assert_eq!(
            published(wh.path()),
            before,
            "a failed check changed {message}"
        );
    }
    // No debris, and the log tells what happened.
    assert!(files_under(&wh.path().join("_c360/tmp")).is_empty());
    assert!(files_under(&wh.path().join("_c360/commits")).is_empty());
    let store: Arc<dyn object_store::ObjectStore> =
        Arc::new(object_store::local::LocalFileSystem::new_with_prefix(wh.path()).unwrap());
    let recent = RunLog::new(store, &object_store::path::Path::from(""))
        .recent(None, 1)
        .await
        .unwrap();
    assert_eq!(recent[0].status, RunStatus::Failed);
    let error = recent[0].error.as_ref().unwrap();
    assert_eq!(error.layer, "check");
    assert!(
        error
            .next_step
            .contains("previous snapshot is still published")
    );
}

#[tokio::test]
async fn a_warn_check_fails_but_the_run_publishes() {
    let wh = tempfile::tempdir().unwrap();
    let check = CheckSpec::Unique {
        columns: cols(&["country_code"]),
        severity: Severity::Warn,
    };
    let job = job_with(vec![("customer_360", check)]);
    let summary = run_on(&job, wh.path(), "2026-02-02").await.unwrap();
    assert_eq!(summary.checks[0].status, CheckStatus::Warn);
    assert_eq!(summary.checks[0].failures, 1);
    // Every output of the shipped job is published.
    assert_eq!(summary.outputs.len(), job.outputs.len());
}

#[tokio::test]
async fn every_row_read_is_accounted_for() {
    let wh = tempfile::tempdir().unwrap();
    let summary = run_on(&job_with(vec![]), wh.path(), "2026-02-02")
        .await
        .unwrap();
    let of = |name: &str| {
        summary
            .accounting
            .iter()
            .find(|a| a.extract == name)
            .unwrap()
            .clone()
    };
    // Transactions of dt=02-01 (8) and dt=02-02 (4): T1/1 and T1/2 are re-sent (2
    // duplicates); of the 10 left, T8 is dated 3 Feb and T5 is cancelled.
    let t = of("transactions");
    assert_eq!((t.read, t.accepted, t.rejected), (12, 12, 0));
    assert_eq!((t.deduplicated, t.kept), (2, 8));
    assert_eq!(
        t.filtered,
        BTreeMap::from([("after_date".to_string(), 1), ("cancelled".to_string(), 1)])
    );
    // The guest order's email is valid: attributed.
    assert_eq!(t.unattributed, 0);
    assert_eq!(summary.outputs[1].rows, t.kept);
    // C1's profile came twice; E1 was sent twice.
    let p = of("profiles");
    assert_eq!((p.read, p.deduplicated, p.kept), (3, 1, 2));
    let c = of("communications");
    assert_eq!((c.read, c.deduplicated, c.kept), (3, 1, 2));
    assert_eq!(of("fx_rates").kept, 4);
}
