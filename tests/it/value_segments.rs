//! Actual value, potential value and value segments (`sql/staging/customer_value.sql`)
//! over hand-made CLV results, so every figure can be worked out on paper: the
//! shipped SQL with the shipped job's params, its inputs registered as tables.

use std::collections::BTreeMap;

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Float64Type, Int32Type};
use datafusion::prelude::SessionContext;

use crate::util::repo_root;

/// The logical date of every case here.
const DATE: &str = "2026-03-01";

/// (customer_key, expected_purchases, expected_margin, clv, first purchase, purchase days).
type Case = (&'static str, f64, f64, Option<f64>, &'static str, i64);

/// Cohort 1 (first purchase 2025-11-21, 100 days before: 100 div 90 = 1): purchases
/// 2, 10, 10, 10 -> 75th percentile (position 0.75 * 3 = 2.25 of the sorted list) = 10;
/// margin 100 everywhere -> 100. Cohort 0 (2026-02-01, 28 days): 1 and 20 everywhere.
const CLV: [Case; 11] = [
    ("H1", 10.0, 100.0, Some(900.0), "2025-11-21", 3),
    ("H2", 10.0, 100.0, Some(900.0), "2025-11-21", 3),
    ("H3", 10.0, 100.0, Some(905.0), "2025-11-21", 3),
    ("H4", 2.0, 100.0, Some(300.0), "2025-11-21", 2),
    ("N1", 1.0, 20.0, Some(19.0), "2026-02-01", 1),
    ("N2", 1.0, 20.0, Some(15.0), "2026-02-01", 1),
    ("N3", 1.0, 20.0, Some(10.0), "2026-02-01", 1),
    ("N4", 1.0, 20.0, Some(5.0), "2026-02-01", 1),
    ("N5", 1.0, 20.0, Some(2.0), "2026-02-01", 2),
    ("N6", 1.0, 20.0, Some(3.0), "2026-02-01", 1),
    // Models not identified for this one: no value, no segment.
    ("P1", 1.0, 20.0, None, "2026-02-01", 1),
];

async fn context() -> SessionContext {
    let ctx = SessionContext::new();
    let rows: Vec<String> = CLV
        .iter()
        .map(|(k, p, m, clv, first, days)| {
            let clv = clv.map_or("CAST(NULL AS DOUBLE)".to_string(), |v| format!("{v:?}"));
            format!("('{k}', 0.9, {p:?}, {m:?}, {clv}, DATE '{first}', {days})")
        })
        .collect();
    let tables = [
        format!(
            "CREATE TABLE base AS SELECT * FROM (VALUES {}) AS t(customer_key, p_alive, \
             expected_purchases, expected_margin, clv, first_purchase_date, purchase_days)",
            rows.join(", ")
        ),
        "CREATE VIEW clv AS SELECT customer_key, p_alive, expected_purchases, \
         expected_margin, clv FROM base"
            .into(),
        "CREATE VIEW customer_measures AS SELECT customer_key, first_purchase_date, \
         purchase_days FROM base"
            .into(),
        // N6 first seen 30 days before the date: 31 days observed; everyone else
        // on their first purchase day.
        "CREATE VIEW identity_map AS SELECT customer_key, CASE customer_key \
         WHEN 'N6' THEN DATE '2026-01-30' ELSE first_purchase_date END AS first_seen \
         FROM base"
            .into(),
        // N6's contacts cost 10.00 in all; N1's events cost nothing.
        "CREATE TABLE customer_engagement AS SELECT * FROM (VALUES \
         ('N6', CAST(10.00 AS DECIMAL(18, 2))), ('N1', CAST(0 AS DECIMAL(18, 2)))) \
         AS t(customer_key, contact_cost)"
            .into(),
        // N5 returned a line with margin 4.00 (a completed line does not count).
        "CREATE TABLE customer_lines AS SELECT * FROM (VALUES \
         ('N5', 'returned', CAST(4.00 AS DECIMAL(30, 10))), \
         ('N5', 'completed', CAST(9.00 AS DECIMAL(30, 10)))) AS t(customer_key, status, margin)"
            .into(),
    ];
    for sql in tables {
        ctx.sql(&sql).await.unwrap().collect().await.unwrap();
    }
    ctx
}

/// (tenure_cohort, cost_to_serve, actual, potential, unrealized, segment) by key.
type Row = (i32, f64, f64, f64, f64, String);

async fn customer_value(ctx: &SessionContext, overrides: &[(&str, &str)]) -> BTreeMap<String, Row> {
    let job = c360::job::load(&repo_root().join("jobs/customer_360.yaml")).unwrap();
    let mut vars = job.params.clone();
    vars.insert("date".into(), DATE.into());
    for (k, v) in overrides {
        vars.insert((*k).into(), (*v).into());
    }
    let text = std::fs::read_to_string(repo_root().join("sql/staging/customer_value.sql")).unwrap();
    let sql = c360::job::interpolate(&text, &vars).unwrap();
    let batches = ctx.sql(&sql).await.unwrap().collect().await.unwrap();
    let mut out = BTreeMap::new();
    for b in &batches {
        let col = |n: &str| b.column_by_name(n).unwrap().clone();
        let f = |n: &str| cast(&col(n), &DataType::Float64).unwrap();
        let (cost, actual, potential, unrealized) = (
            f("cost_to_serve"),
            f("actual_value"),
            f("potential_value"),
            f("unrealized_potential"),
        );
        let key = cast(&col("customer_key"), &DataType::Utf8).unwrap();
        let seg = cast(&col("value_segment"), &DataType::Utf8).unwrap();
        let cohort = cast(&col("tenure_cohort"), &DataType::Int32).unwrap();
        let v = |a: &dyn Array, i| a.as_primitive::<Float64Type>().value(i);
        for i in 0..b.num_rows() {
            out.insert(
                key.as_string::<i32>().value(i).to_string(),
                (
                    cohort.as_primitive::<Int32Type>().value(i),
                    v(cost.as_ref(), i),
                    v(actual.as_ref(), i),
                    v(potential.as_ref(), i),
                    v(unrealized.as_ref(), i),
                    seg.as_string::<i32>().value(i).to_string(),
                ),
            );
        }
    }
    out
}

fn close(got: f64, want: f64) -> bool {
    (got - want).abs() < 1e-6 * want.abs().max(1.0)
}

#[tokio::test]
async fn every_value_segment_from_hand_made_customers() {
    let ctx = context().await;
    let got = customer_value(&ctx, &[]).await;
    // Mean monthly discount factor over 12 months at 10 % a year:
    // rm = 1.1^(1/12) - 1, d = (1 - 1.1^-1) / (12 rm) = 0.0909091 / 0.0956897 = 0.950040.
    let rm = 1.1_f64.powf(1.0 / 12.0) - 1.0;
    let d = (1.0 - 1.0 / 1.1) / (12.0 * rm);
    assert!((d - 0.950_040).abs() < 1e-6, "{d}");
    // Potential CLV per cohort: cohort 1 = 10 * 100 * d = 950.040; cohort 0 = 1 * 20 * d.
    let (p1, p0) = (1000.0 * d, 20.0 * d);

    // N6: contacts 10.00 over 31 days = 31 / 30.4375 = 1.01848 months -> 9.81855 a
    // month, * 12 * d = 111.937 to serve; actual 3 - 111.937 = -108.937 < 0.
    let n6_cost = 10.0 / (31.0 / 30.4375) * 12.0 * d;
    assert!((n6_cost - 111.937).abs() < 1e-3, "{n6_cost}");
    // N5: return margin 4.00 over 2 purchase days = 2.00 a purchase, * 1 expected
    // purchase * d = 1.90008; actual 2 - 1.90008 = 0.09992.
    let n5_cost = 2.0 * d;

    // Unrealized = max(cohort potential - clv, 0) (the cost is taken from both):
    //   H4 950.04 - 300 = 650.04, H1 = H2 = 50.04, H3 45.04, N5 19.0008 - 2 = 17.0008,
    //   N6 16.0008, N4 14.0008, N3 9.0008, N2 4.0008, N1 0.0008.
    // Ten valued customers, percent_rank = position / 9, top = below 0.2 (first two
    // positions, ties share):
    //   actual:     H3 905 (0), H1 = H2 900 (1/9) -> top; H4 300 (3/9) not.
    //   unrealized: H4 (0), H1 = H2 (1/9) -> top; H3 (3/9) not.
    // Segments: H1, H2 both tops -> Super-Growth; H3 Most Valuable; H4 Most Growable;
    // N6 Below-Zero; N1..N5 Low-Maintenance. P1 (no CLV) is not valued.
    let want: [(&str, i32, f64, f64, f64, &str); 10] = [
        ("H1", 1, 0.0, 900.0, p1, "Super-Growth"),
        ("H2", 1, 0.0, 900.0, p1, "Super-Growth"),
        ("H3", 1, 0.0, 905.0, p1, "Most Valuable"),
        ("H4", 1, 0.0, 300.0, p1, "Most Growable"),
        ("N1", 0, 0.0, 19.0, p0, "Low-Maintenance"),
        ("N2", 0, 0.0, 15.0, p0, "Low-Maintenance"),
        ("N3", 0, 0.0, 10.0, p0, "Low-Maintenance"),
        ("N4", 0, 0.0, 5.0, p0, "Low-Maintenance"),
        (
            "N5",
            0,
            n5_cost,
            2.0 - n5_cost,
            p0 - n5_cost,
            "Low-Maintenance",
        ),
        ("N6", 0, n6_cost, 3.0 - n6_cost, p0 - n6_cost, "Below-Zero"),
    ];
    assert_eq!(got.len(), want.len(), "{got:?}");
    for (key, cohort, cost, actual, potential, segment) in want {
        let (c, co, a, p, u, s) = &got[key];
        assert_eq!((*c, s.as_str()), (cohort, segment), "{key}");
        assert!(close(*co, cost), "{key} cost {co} want {cost}");
        assert!(close(*a, actual), "{key} actual {a} want {actual}");
        assert!(close(*p, potential), "{key} potential {p} want {potential}");
        assert!(close(*u, potential - actual), "{key} unrealized {u}");
        assert!(*p >= *a, "{key}: potential never below actual");
    }
}

#[tokio::test]
async fn potential_is_never_below_actual_and_thresholds_are_params() {
    let ctx = context().await;
    // Top half instead of top fifth: positions 0..4 of 9 are below 0.5.
    //   actual: H3 (0), H1 = H2 (1/9), H4 (3/9), N1 (4/9) -> top.
    //   unrealized: H4, H1, H2, H3 (3/9), N5 (4/9) -> top.
    // The 100th percentile gives the same cohort figures here (10 * 100, 1 * 20), so
    // unrealized is as in the test above.
    let got = customer_value(
        &ctx,
        &[
            ("value_top_fraction", "0.5"),
            ("potential_percentile", "1.0"),
        ],
    )
    .await;
    let seg = |k: &str| got[k].5.clone();
    assert_eq!(seg("H1"), "Super-Growth");
    assert_eq!(seg("H3"), "Super-Growth");
    assert_eq!(seg("H4"), "Super-Growth");
    assert_eq!(seg("N1"), "Most Valuable");
    assert_eq!(seg("N5"), "Most Growable");
    assert_eq!(seg("N2"), "Low-Maintenance");
    // A customer above their cohort's potential keeps their own value as potential.
    let ctx = context().await;
    let low = customer_value(&ctx, &[("potential_percentile", "0.0")]).await;
    // Cohort 1 at the minimum: 2 purchases * 100 * d = 190.008 < H1's 900 -> 900.
    let (_, _, a, p, u, _) = low["H1"];
    assert!(close(p, a) && u == 0.0, "{:?}", low["H1"]);
}
