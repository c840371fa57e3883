//! The real job over the bundled sample (`sample_data/raw`, made by `c360 generate`):
//! what a newcomer's first run produces, checked against the generator's ground truth.

use std::collections::BTreeSet;
use std::sync::Arc;

use c360::clock::SystemClock;
use c360::run::{RunOptions, run};
use chrono::NaiveDate;
use datafusion::arrow::array::AsArray;
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::{DataType, Float64Type, Int64Type};
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::util::{files_under, read_partition, repo_root};

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
        engine: None,
        clock: Arc::new(SystemClock),
        full_refresh: false,
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
    clv_fit_recovers_the_generator_parameters(wh.path());
}

/// The first value of column `name` of a one-row partition, as f64.
fn one_f64(batches: &[RecordBatch], name: &str) -> f64 {
    let col = batches[0].column_by_name(name).unwrap();
    let col = datafusion::arrow::compute::cast(col, &DataType::Float64).unwrap();
    col.as_primitive::<Float64Type>().value(0)
}

/// The sample's people follow BG/NBD and Gamma-Gamma with the parameters in
/// `summary.json` (`behaviour_model`): the job's fit on 2,000 people must be
/// non-degenerate and land near them, and P(alive) must spread over (0, 1).
fn clv_fit_recovers_the_generator_parameters(wh: &std::path::Path) {
    let summary: serde_json::Value = serde_json::from_slice(
        &std::fs::read(repo_root().join("sample_data/raw/_ground_truth/summary.json")).unwrap(),
    )
    .unwrap();
    let truth = |k: &str| summary["behaviour_model"][k].as_f64().unwrap();
    let model = read_partition(&wh.join("clv_model/snapshot_date=2026-03-01"));
    let status = model[0].column_by_name("status").unwrap();
    assert_eq!(status.as_string::<i32>().value(0), "fitted");
    // The job fits Gamma-Gamma to *margin* per purchase day (DOMAIN.md), while the
    // generator draws *spend* from Gamma-Gamma and prices goods at a cost of 40 % to
    // 75 % of the price per SKU (mean 57.5 %). Scaling every spend by the margin share
    // keeps the shapes p and q and scales γ: truth for margins ~ γ * 0.425.
    let margin_share = 1.0 - 0.575;
    // Within a factor 1.5 of the truth: the sampling error of ~1,650 buyers
    // (~1,150 repeat buyers for Gamma-Gamma) is well inside that.
    for (fitted, truth_value) in [
        ("bgnbd_r", truth("r")),
        ("bgnbd_alpha", truth("alpha")),
        ("bgnbd_a", truth("a")),
        ("bgnbd_b", truth("b")),
        ("gg_p", truth("p")),
        ("gg_q", truth("q")),
        ("gg_gamma", truth("gamma") * margin_share),
    ] {
        let f = one_f64(&model, fitted);
        assert!(
            f / truth_value > 1.0 / 1.5 && f / truth_value < 1.5,
            "{fitted} = {f}, truth {truth_value}"
        );
    }
    // The mean margin per purchase day p γ / (q − 1) is pinned down much better than
    // its parts: spend 6 * 40 / 3 = 80 times the margin share 0.425 = 34, a little
    // less after discounts (which come off the margin whole): within 15 %.
    let (p, q, g) = (
        one_f64(&model, "gg_p"),
        one_f64(&model, "gg_q"),
        one_f64(&model, "gg_gamma"),
    );
    let mean_margin = p * g / (q - 1.0);
    let want = 80.0 * margin_share;
    assert!(
        (mean_margin - want).abs() < 0.15 * want,
        "mean margin {mean_margin}, want about {want}"
    );

    let mut p_alive: Vec<f64> = read_partition(&wh.join("customer_360/snapshot_date=2026-03-01"))
        .iter()
        .flat_map(|b| {
            let c = b.column_by_name("p_alive").unwrap();
            c.as_primitive::<Float64Type>()
                .iter()
                .flatten()
                .collect::<Vec<_>>()
        })
        .collect();
    p_alive.sort_by(f64::total_cmp);
    let share = |f: &dyn Fn(f64) -> bool| {
        p_alive.iter().filter(|x| f(**x)).count() as f64 / p_alive.len() as f64
    };
    // Lapsed (< 0.2), at risk (< 0.5) and surely alive (> 0.9) all occur.
    assert!(share(&|x| x < 0.2) > 0.1, "lapsed");
    assert!(share(&|x| (0.2..0.5).contains(&x)) > 0.05, "at risk");
    assert!(share(&|x| x > 0.9) > 0.3, "alive");
    // On average the fit's P(alive) matches the share of buyers alive at the end
    // in the generator's truth (behaviour.csv).
    let mut rdr =
        csv::Reader::from_path(repo_root().join("sample_data/raw/_ground_truth/behaviour.csv"))
            .unwrap();
    let (mut buyers, mut alive) = (0.0, 0.0);
    for r in rdr.records() {
        let r = r.unwrap();
        if &r[1] == "true" {
            buyers += 1.0;
            alive += f64::from(u8::from(&r[8] == "true"));
        }
    }
    let mean = p_alive.iter().sum::<f64>() / p_alive.len() as f64;
    assert!(
        (mean - alive / buyers).abs() < 0.05,
        "mean P(alive) {mean}, alive share {}",
        alive / buyers
    );
}
