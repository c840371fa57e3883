//! The real job over the bundled sample (`sample_data/raw`, made by `c360 generate`):
//! what a newcomer's first run produces, checked against the generator's ground truth.

use std::collections::BTreeSet;
use std::sync::Arc;

use c360::clock::SystemClock;
use c360::run::{RunOptions, run};
use chrono::NaiveDate;
use datafusion::arrow::array::AsArray;
use datafusion::arrow::datatypes::Int64Type;
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::util::{files_under, repo_root};

type RejectKey = (String, String, i64, String);

fn ground_truth_rejects() -> BTreeSet<RejectKey> {
    let path = repo_root().join("sample_data/raw/_ground_truth/rejects.csv");
    let mut reader = csv::Reader::from_path(&path).unwrap();
    reader
        .records()
        .map(|r| {
            let r = r.unwrap();
            (
                r[0].to_string(),
                r[1].to_string(),
                r[2].parse().unwrap(),
                r[3].to_string(),
            )
        })
        .collect()
}

#[tokio::test]
async fn sample_run_rejects_exactly_the_ground_truth_rows() {
    let wh = tempfile::tempdir().unwrap();
    let job = c360::job::load(&repo_root().join("jobs/customer_360.yaml")).unwrap();
    let options = RunOptions {
        date: Some(NaiveDate::from_ymd_opt(2026, 3, 1).unwrap()),
        overrides: vec![("warehouse".into(), wh.path().display().to_string())],
        memory_limit: None,
        clock: Arc::new(SystemClock),
    };
    let summary = run(&job, &options).await.unwrap();

    let mut ours = BTreeSet::new();
    for file in files_under(&wh.path().join("rejects")) {
        if file.extension().is_none_or(|e| e != "parquet") {
            continue;
        }
        // The extract is the Hive partition value in the path: rejects/extract=E/run_date=D/.
        let extract = file
            .ancestors()
            .filter_map(|p| {
                p.file_name()?
                    .to_str()?
                    .strip_prefix("extract=")
                    .map(String::from)
            })
            .next()
            .unwrap();
        let reader = ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(&file).unwrap())
            .unwrap()
            .build()
            .unwrap();
        for batch in reader {
            let batch = batch.unwrap();
            let files = batch
                .column_by_name("file")
                .unwrap()
                .as_string::<i32>()
                .clone();
            let lines = batch
                .column_by_name("line")
                .unwrap()
                .as_primitive::<Int64Type>()
                .clone();
            let reasons = batch
                .column_by_name("reason")
                .unwrap()
                .as_string::<i32>()
                .clone();
            for i in 0..batch.num_rows() {
                ours.insert((
                    extract.clone(),
                    files.value(i).to_string(),
                    lines.value(i),
                    reasons.value(i).to_string(),
                ));
            }
        }
    }
    let truth = ground_truth_rejects();
    let missing: Vec<_> = truth.difference(&ours).take(10).collect();
    let unexpected: Vec<_> = ours.difference(&truth).take(10).collect();
    assert!(
        missing.is_empty() && unexpected.is_empty(),
        "missing {missing:?}\nunexpected {unexpected:?}"
    );
    assert!(truth.len() >= 12, "the sample holds every reject reason");

    let customers = summary
        .outputs
        .iter()
        .find(|o| o.name == "customer_360")
        .unwrap();
    // 2,000 generated people, 4 of them erased by requests dated up to 2026-02-07
    // (sample_data/raw/_ground_truth/suppressions.csv).
    assert_eq!(customers.rows, 2000 - 4);
    assert_eq!(summary.erasure.erased_customers, Some(4));
    assert_eq!(summary.erasure.requested_identifiers, 4);
    assert!(
        wh.path()
            .join("customer_360/snapshot_date=2026-03-01/_SUCCESS")
            .exists(),
        "partition path and marker"
    );
}
