//! The real job (`jobs/customer_360.yaml` and `sql/`) over hand-made extracts
//! whose answers were worked out by hand, and over the bundled sample.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use c360::clock::SystemClock;
use c360::run::{RunOptions, run};
use chrono::NaiveDate;
use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::datatypes::{
    DataType, Date32Type, Decimal128Type, Int32Type, Int64Type, TimeUnit,
};

use crate::util::{files_under, read_partition, repo_root};

fn date(text: &str) -> NaiveDate {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
}

pub(crate) async fn run_job(raw: &Path, warehouse: &Path, on: &str) -> c360::run::RunSummary {
    let job = c360::job::load(&repo_root().join("jobs/customer_360.yaml")).unwrap();
    let options = RunOptions {
        date: Some(date(on)),
        overrides: vec![
            ("raw".into(), raw.display().to_string()),
            ("warehouse".into(), warehouse.display().to_string()),
        ],
        memory_limit: None,
        engine: None,
        clock: Arc::new(SystemClock),
        full_refresh: false,
    };
    run(&job, &options).await.unwrap()
}

/// `id_value -> customer_key` of a published identity map partition, e.g.
/// `crm:C1` or `ann.lee@example.com` to the key of that customer.
pub(crate) fn keys_by_identifier(warehouse: &Path, date: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for b in read_partition(&warehouse.join(format!("identity_map/snapshot_date={date}"))) {
        let values = b
            .column_by_name("id_value")
            .unwrap()
            .as_string::<i32>()
            .clone();
        let keys = b
            .column_by_name("customer_key")
            .unwrap()
            .as_string::<i32>()
            .clone();
        for i in 0..b.num_rows() {
            out.insert(values.value(i).to_string(), keys.value(i).to_string());
        }
    }
    out
}

/// One customer's measures, as a user reads them.
#[derive(Debug, PartialEq)]
struct Measures {
    frequency: i64,
    frequency_net: i64,
    purchase_days: i64,
    monetary_cents: i128,
    first: Option<NaiveDate>,
    last: Option<NaiveDate>,
    recency_days: Option<i32>,
}

fn measures_by_key(batches: &[RecordBatch]) -> BTreeMap<String, Measures> {
    let mut out = BTreeMap::new();
    for b in batches {
        let col = |name: &str| b.column_by_name(name).unwrap().clone();
        let keys = col("customer_key");
        let keys = keys.as_string::<i32>();
        let (freq, net, days) = (col("frequency"), col("frequency_net"), col("purchase_days"));
        let money = col("monetary");
        let (first, last, recency) = (
            col("first_purchase_date"),
            col("last_purchase_date"),
            col("recency_days"),
        );
        let d = |a: &dyn Array, i: usize| {
            a.is_valid(i).then(|| {
                NaiveDate::from_num_days_from_ce_opt(
                    a.as_primitive::<Date32Type>().value(i) + 719_163,
                )
                .unwrap()
            })
        };
        for i in 0..b.num_rows() {
            out.insert(
                keys.value(i).to_string(),
                Measures {
                    frequency: freq.as_primitive::<Int64Type>().value(i),
                    frequency_net: net.as_primitive::<Int64Type>().value(i),
                    purchase_days: days.as_primitive::<Int64Type>().value(i),
                    monetary_cents: money.as_primitive::<Decimal128Type>().value(i),
                    first: d(first.as_ref(), i),
                    last: d(last.as_ref(), i),
                    recency_days: recency
                        .is_valid(i)
                        .then(|| recency.as_primitive::<Int32Type>().value(i)),
                },
            );
        }
    }
    out
}

#[tokio::test]
async fn hand_made_extracts_give_hand_computed_measures() {
    let wh = tempfile::tempdir().unwrap();
    let raw = repo_root().join("tests/fixtures/tiny_raw");
    let summary = run_job(&raw, wh.path(), "2026-02-02").await;
    assert!(summary.sources.iter().all(|s| s.report.rows_rejected == 0));

    let batches = read_partition(&wh.path().join("customer_360/snapshot_date=2026-02-02"));
    let by_key = measures_by_key(&batches);
    let keys = keys_by_identifier(wh.path(), "2026-02-02");
    let got = |id: &str| &by_key[&keys[id]];
    let m = |frequency,
             frequency_net,
             purchase_days,
             monetary_cents,
             first: Option<&str>,
             last: Option<&str>,
             recency_days| Measures {
        frequency,
        frequency_net,
        purchase_days,
        monetary_cents,
        first: first.map(date),
        last: last.map(date),
        recency_days,
    };
    // C1: T1 = 2 x 10.00 - 1.50 discount + 1 x 6.00 (the re-sent copy in the later file
    // corrects 5.00 to 6.00) = 24.50 EUR; T2 = 3 x 3.33 GBP x 1.15 = 11.4885 EUR, ordered
    // 2026-01-20T23:30-02:00 = 21 Jan UTC. T5 is cancelled; T9 sits in dt=2026-02-03,
    // after the logical date. 24.50 + 11.4885 = 35.9885 -> 35.99; last purchase 21 Jan,
    // 12 days before 2 Feb.
    assert_eq!(
        *got("crm:C1"),
        m(
            2,
            2,
            2,
            3599,
            Some("2026-01-15"),
            Some("2026-01-21"),
            Some(12)
        )
    );
    // C2: 100 USD x 0.9 = 90.00, returned on 2 Feb -> net 0: an order, but not a net one.
    // T8 is dated 3 Feb, after the logical date, although its file is in dt=2026-02-02.
    assert_eq!(
        *got("crm:C2"),
        m(1, 0, 1, 0, Some("2026-01-25"), Some("2026-01-25"), Some(8))
    );
    // C3: 2.50 SEK x 0.05 = 0.125 EUR -> 0.13 (half away from zero, not to even).
    assert_eq!(
        *got("crm:C3"),
        m(1, 1, 1, 13, Some("2026-01-30"), Some("2026-01-30"), Some(3))
    );
    // C4: only a return of 0.125 EUR -> -0.13, no purchase.
    assert_eq!(*got("crm:C4"), m(0, 0, 0, -13, None, None, None));
    // The guest order T4 (no source_customer_id) makes a customer of its email:
    // 1 x 50.00 EUR on 26 Jan, 7 days before 2 Feb. No other record shares an identifier,
    // so there are five customers.
    assert_eq!(
        *got("guest@example.com"),
        m(
            1,
            1,
            1,
            5000,
            Some("2026-01-26"),
            Some("2026-01-26"),
            Some(7)
        )
    );
    assert_eq!(by_key.len(), 5);
}

#[tokio::test]
async fn output_columns_are_typed_for_bi_tools() {
    let wh = tempfile::tempdir().unwrap();
    let raw = repo_root().join("tests/fixtures/tiny_raw");
    run_job(&raw, wh.path(), "2026-02-02").await;
    let batches = read_partition(&wh.path().join("customer_360/snapshot_date=2026-02-02"));
    let schema = batches[0].schema();
    let ty = |name: &str| schema.field_with_name(name).unwrap().data_type().clone();
    assert_eq!(ty("monetary"), DataType::Decimal128(18, 2));
    assert_eq!(ty("first_purchase_date"), DataType::Date32);
    assert_eq!(ty("birth_date"), DataType::Date32);
    assert_eq!(
        ty("signup_ts"),
        DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
    );
    // Every string column is plain Utf8 (older pyarrow and BI tools read no
    // Utf8View), the ones built in SQL with CAST(... AS VARCHAR) included.
    let views: Vec<&str> = schema
        .fields()
        .iter()
        .filter(|f| matches!(f.data_type(), DataType::Utf8View | DataType::LargeUtf8))
        .map(|f| f.name().as_str())
        .collect();
    assert!(views.is_empty(), "not plain Utf8: {views:?}");
    assert_eq!(ty("rfm_cell"), DataType::Utf8);
    // The partition value lives in the path, not in the file.
    assert!(schema.field_with_name("snapshot_date").is_err());
    // Sorted by customer_key.
    let keys: Vec<String> = batches
        .iter()
        .flat_map(|b| {
            let k = b
                .column_by_name("customer_key")
                .unwrap()
                .as_string::<i32>()
                .clone();
            (0..k.len())
                .map(move |i| k.value(i).to_string())
                .collect::<Vec<_>>()
        })
        .collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted);
    // The golden profile of C1 comes from its newest row (2 Feb: Manchester), and the
    // email is the normalised identifier.
    let c1 = &keys_by_identifier(wh.path(), "2026-02-02")["crm:C1"];
    let row = keys.iter().position(|k| k == c1).unwrap();
    let text = |name: &str| {
        batches[0]
            .column_by_name(name)
            .unwrap()
            .as_string::<i32>()
            .value(row)
            .to_string()
    };
    assert_eq!(text("city"), "Manchester");
    assert_eq!(text("email"), "ann.lee@example.com");
    assert_eq!(text("phone"), "+442079460958");
}

#[tokio::test]
async fn rerunning_a_date_replaces_only_that_partition() {
    let wh = tempfile::tempdir().unwrap();
    let raw = repo_root().join("tests/fixtures/tiny_raw");
    run_job(&raw, wh.path(), "2026-02-01").await;
    run_job(&raw, wh.path(), "2026-02-02").await;
    let before = read_partition(&wh.path().join("customer_360/snapshot_date=2026-02-01"));
    run_job(&raw, wh.path(), "2026-02-02").await;

    let mut files: Vec<_> =
        std::fs::read_dir(wh.path().join("customer_360/snapshot_date=2026-02-02"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
    files.sort();
    assert_eq!(files, vec!["_SUCCESS", "part-00000.parquet"]);
    let again = measures_by_key(&read_partition(
        &wh.path().join("customer_360/snapshot_date=2026-02-02"),
    ));
    let c1 = &keys_by_identifier(wh.path(), "2026-02-02")["crm:C1"];
    assert_eq!(again[c1].monetary_cents, 3599);
    assert_eq!(again.len(), 5);
    // The other date is untouched, and as of 1 Feb C1 had only the first copies: 18.50 + 5.00 + 11.4885.
    let other = measures_by_key(&read_partition(
        &wh.path().join("customer_360/snapshot_date=2026-02-01"),
    ));
    assert_eq!(other, measures_by_key(&before));
    assert_eq!(other[c1].monetary_cents, 3499);
    // No staging debris is left behind.
    assert_eq!(
        files_under(&wh.path().join("_c360/tmp")),
        Vec::<std::path::PathBuf>::new()
    );
}

/// Copies a fixture tree so a test can add files to it.
fn copy_tree(from: &Path, to: &Path) {
    for file in files_under(from) {
        let target = to.join(file.strip_prefix(from).unwrap());
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::copy(&file, &target).unwrap();
    }
}

#[tokio::test]
async fn over_the_reject_budget_the_run_fails_and_publishes_only_rejects() {
    let raw = tempfile::tempdir().unwrap();
    let wh = tempfile::tempdir().unwrap();
    copy_tree(&repo_root().join("tests/fixtures/tiny_raw"), raw.path());
    run_job(raw.path(), wh.path(), "2026-02-01").await;
    let good = read_partition(&wh.path().join("customer_360/snapshot_date=2026-02-01"));

    // One bad row in nine transaction rows is far over the default 1% budget.
    std::fs::write(
        raw.path().join("transactions/dt=2026-02-01/late.csv"),
        "transaction_id,line_no,source_system,source_customer_id,email,order_ts,channel,product_id,category,quantity,unit_price,discount,unit_cost,currency,status\n\
         T10,1,crm,C1,,2026-01-31T10:00:00Z,online,P1,shoes,-1,10.00,,,EUR,completed\n",
    )
    .unwrap();
    let job = c360::job::load(&repo_root().join("jobs/customer_360.yaml")).unwrap();
    let options = RunOptions {
        date: Some(date("2026-02-01")),
        overrides: vec![
            ("raw".into(), raw.path().display().to_string()),
            ("warehouse".into(), wh.path().display().to_string()),
        ],
        memory_limit: None,
        engine: None,
        clock: Arc::new(SystemClock),
        full_refresh: false,
    };
    let error = run(&job, &options).await.unwrap_err().to_string();
    assert!(error.contains("source transactions"), "{error}");
    assert!(error.contains("negative_quantity 1"), "{error}");

    // The rejects are there for the engineer to fix upstream …
    let rejects = read_partition(
        &wh.path()
            .join("rejects/extract=transactions/run_date=2026-02-01"),
    );
    let rows: usize = rejects.iter().map(|b| b.num_rows()).sum();
    assert_eq!(rows, 1);
    let file = rejects[0]
        .column_by_name("file")
        .unwrap()
        .as_string::<i32>()
        .value(0)
        .to_string();
    let line = rejects[0]
        .column_by_name("line")
        .unwrap()
        .as_primitive::<Int64Type>()
        .value(0);
    assert_eq!(
        (file.as_str(), line),
        ("transactions/dt=2026-02-01/late.csv", 2)
    );
    // … and the published snapshot is the previous good one.
    let after = read_partition(&wh.path().join("customer_360/snapshot_date=2026-02-01"));
    assert_eq!(measures_by_key(&after), measures_by_key(&good));
}
