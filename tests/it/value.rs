//! Customer value in the shipped job over the hand-made extracts: RFM scores with
//! ties, segments from the shipped reference table, and the CLV fallback when the
//! data cannot identify the models.

use std::collections::BTreeMap;

use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Int32Type};

use crate::run::{keys_by_identifier, run_job};
use crate::util::{read_partition, repo_root};

/// (r, f, m, segment) or NULLs, and whether clv is NULL, by customer_key.
type Value = (Option<i32>, Option<i32>, Option<i32>, Option<String>, bool);

fn values_by_key(batches: &[RecordBatch]) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    for b in batches {
        let col = |name: &str| b.column_by_name(name).unwrap().clone();
        let key = cast(&col("customer_key"), &DataType::Utf8).unwrap();
        let seg = cast(&col("rfm_segment"), &DataType::Utf8).unwrap();
        let (r, f, m, clv) = (col("r_score"), col("f_score"), col("m_score"), col("clv"));
        let score = |a: &dyn Array, i| {
            a.is_valid(i)
                .then(|| a.as_primitive::<Int32Type>().value(i))
        };
        for i in 0..b.num_rows() {
            out.insert(
                key.as_string::<i32>().value(i).to_string(),
                (
                    score(r.as_ref(), i),
                    score(f.as_ref(), i),
                    score(m.as_ref(), i),
                    seg.is_valid(i)
                        .then(|| seg.as_string::<i32>().value(i).to_string()),
                    clv.is_null(i),
                ),
            );
        }
    }
    out
}

#[tokio::test]
async fn rfm_scores_share_ties_and_degenerate_clv_falls_back_to_null() {
    let wh = tempfile::tempdir().unwrap();
    let raw = repo_root().join("tests/fixtures/tiny_raw");
    run_job(&raw, wh.path(), "2026-02-02").await;
    let by_key = values_by_key(&read_partition(
        &wh.path().join("customer_360/snapshot_date=2026-02-02"),
    ));
    let keys = keys_by_identifier(wh.path(), "2026-02-02");
    let got = |id: &str| by_key[&keys[id]].clone();
    let v = |r, f, m, s: &str| (Some(r), Some(f), Some(m), Some(s.to_string()), true);
    // Four purchasers (run.rs works out their measures), percent_rank = (rank-1)/3:
    // recency days C1 12, C2 8, guest 7, C3 3 -> ranks 1..4 (most recent best)
    //   -> 1 + floor(5 * {0, 1/3, 2/3, 1}) = 1, 2, 4, 6 capped at 5;
    // orders C2 = C3 = guest = 1 tie at rank 1 -> 1; C1 2 orders, rank 4 -> 5;
    // monetary C2 0.00, C3 0.13, C1 35.99, guest 50.00 -> 1, 2, 4, 5.
    // Segments (sample_data/reference/make_rfm_segments.py, FM = (F + M) div 2):
    // C1 (1,5,4) FM 4 R 1 -> Can't Lose Them; C2 (2,1,1) -> Hibernating;
    // C3 (5,1,2) -> New; guest (4,1,5): F 1 so not Champions/Loyal -> Promising.
    assert_eq!(got("crm:C1"), v(1, 5, 4, "Can't Lose Them"));
    assert_eq!(got("crm:C2"), v(2, 1, 1, "Hibernating"));
    assert_eq!(got("crm:C3"), v(5, 1, 2, "New"));
    assert_eq!(got("guest@example.com"), v(4, 1, 5, "Promising"));
    // C4 only returned something: no purchase, no scores.
    assert_eq!(got("crm:C4"), (None, None, None, None, true));

    // Only C1 has a repeat purchase day (15 and 21 Jan): Gamma-Gamma cannot be
    // fitted, so CLV is NULL for everyone (above) and the model row says why.
    let model = read_partition(&wh.path().join("clv_model/snapshot_date=2026-02-02"));
    assert_eq!(model.iter().map(|b| b.num_rows()).sum::<usize>(), 1);
    let col = |name: &str| cast(model[0].column_by_name(name).unwrap(), &DataType::Utf8).unwrap();
    assert_eq!(col("status").as_string::<i32>().value(0), "not_identified");
    let reason = col("reason").as_string::<i32>().value(0).to_string();
    assert!(reason.contains("repeat"), "{reason}");
    assert!(model[0].column_by_name("bgnbd_r").unwrap().is_null(0));
}
