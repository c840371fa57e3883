//! `sql/staging/relationship_stage.sql` over small in-memory input tables (the SQL-tested-
//! with-SQL habit of STYLE.md): the P(alive) lifecycle rules, which the hand-made
//! extracts cannot reach because their CLV models are not identified, and the
//! consecutive-month Partner rule. Params are the shipped job's defaults.

use std::collections::BTreeMap;

use c360::engine::{EngineOptions, runtime, session};
use datafusion::prelude::SessionContext;

use crate::engagement::rows_as_text;
use crate::util::repo_root;

/// Session with the step's input tables (only the columns the SQL reads).
async fn inputs(lines: &str) -> SessionContext {
    let ctx = session(
        &EngineOptions::default(),
        runtime(&EngineOptions::default()).unwrap(),
    );
    let tables = [
        "CREATE TABLE golden_profile (customer_key VARCHAR, account_type VARCHAR) AS VALUES
            ('biz_adv', 'business'), ('biz', 'business'), ('adv', 'consumer')",
        // customer_key, frequency, first and last purchase date.
        "CREATE TABLE customer_measures (customer_key VARCHAR, frequency BIGINT,
            first_purchase_date DATE, last_purchase_date DATE) AS VALUES
            ('active', 3, DATE '2025-01-01', DATE '2026-02-01'),
            ('half', 3, DATE '2025-01-01', DATE '2026-02-01'),
            ('risk', 3, DATE '2025-01-01', DATE '2026-02-01'),
            ('fifth', 3, DATE '2025-01-01', DATE '2026-02-01'),
            ('lapsed', 3, DATE '2025-01-01', DATE '2026-02-01'),
            ('old', 3, DATE '2024-01-01', DATE '2025-02-28'),
            ('new', 1, DATE '2026-02-01', DATE '2026-02-01'),
            ('unfitted', 3, DATE '2025-01-01', DATE '2026-02-01'),
            ('returned_only', 0, NULL, NULL),
            ('r23', 24, DATE '2023-11-10', DATE '2025-11-10'),
            ('r24', 25, DATE '2023-01-10', DATE '2024-12-10'),
            ('biz', 1, DATE '2026-01-01', DATE '2026-01-01'),
            ('sup', 2, DATE '2025-06-01', DATE '2025-06-01')",
        "CREATE TABLE clv (customer_key VARCHAR, p_alive DOUBLE) AS VALUES
            ('active', 0.6), ('half', 0.5), ('risk', 0.49), ('fifth', 0.2),
            ('lapsed', 0.19), ('old', 0.9), ('new', 0.1)",
        "CREATE TABLE customer_engagement (customer_key VARCHAR, reviews_referrals BIGINT,
            last_engagement_ts TIMESTAMP) AS VALUES
            ('biz_adv', 1, NULL), ('adv', 2, NULL),
            ('sup', 0, TIMESTAMP '2025-12-01T23:59:00')",
        &format!(
            "CREATE TABLE customer_lines (customer_key VARCHAR, order_date DATE, status VARCHAR)
             AS VALUES {lines}"
        ),
        "CREATE TABLE identity_map (customer_key VARCHAR) AS
            SELECT customer_key FROM customer_measures
            UNION ALL SELECT customer_key FROM golden_profile
            UNION ALL SELECT 'ghost'",
    ];
    for sql in tables {
        ctx.sql(sql).await.unwrap().collect().await.unwrap();
    }
    let job = c360::job::load(&repo_root().join("jobs/customer_360.yaml")).unwrap();
    let mut vars = job.params.clone();
    vars.insert("date".into(), "2026-03-01".into());
    let file = repo_root().join("sql/staging/relationship_stage.sql");
    let sql = std::fs::read_to_string(&file).unwrap();
    c360::steps::register_sql_step(&ctx, "relationship_stage", &file, &sql, &vars)
        .await
        .unwrap();
    ctx
}

/// `'key', DATE 'y-m-d', 'completed'` rows for one completed order in each month
/// from (year, month) on, `months` months long.
fn monthly(key: &str, year: i32, month: i32, months: i32) -> Vec<String> {
    (0..months)
        .map(|i| {
            let n = year * 12 + (month - 1) + i;
            format!(
                "('{key}', DATE '{}-{:02}-10', 'completed')",
                n / 12,
                n % 12 + 1
            )
        })
        .collect()
}

async fn stages() -> BTreeMap<String, (Option<String>, Option<String>)> {
    let mut lines = monthly("r23", 2023, 11, 23); // 2023-11 .. 2025-09
    lines.push("('r23', DATE '2025-11-10', 'completed')".into()); // after a gap
    lines.push("('r23', DATE '2025-10-10', 'returned')".into()); // no purchase
    lines.extend(monthly("r24", 2023, 1, 24)); // 2023-01 .. 2024-12
    lines.push("('r24', DATE '2023-06-20', 'completed')".into()); // same month twice
    let ctx = inputs(&lines.join(", ")).await;
    let batches = ctx
        .sql("SELECT * FROM relationship_stage")
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    rows_as_text(&batches, |row| row["customer_key"].clone().unwrap())
        .into_iter()
        .map(|(k, row)| {
            (
                k,
                (row["ladder_stage"].clone(), row["lifecycle_stage"].clone()),
            )
        })
        .collect()
}

fn stage(ladder: &str, life: Option<&str>) -> (Option<String>, Option<String>) {
    (Some(ladder.to_string()), life.map(str::to_string))
}

#[tokio::test]
async fn lifecycle_uses_p_alive_thresholds_after_new_and_recency() {
    let got = stages().await;
    // All bought 3 times, first 2025-01-01 (424 days ago, not new), last 2026-02-01
    // (28 days ago), so only P(alive) decides (at_risk < 0.5, lapsed < 0.2):
    assert_eq!(got["active"], stage("Client", Some("active"))); // 0.6
    assert_eq!(got["half"], stage("Client", Some("active"))); // 0.5 is not < 0.5
    assert_eq!(got["risk"], stage("Client", Some("at_risk"))); // 0.49
    assert_eq!(got["fifth"], stage("Client", Some("at_risk"))); // 0.2 is not < 0.2
    assert_eq!(got["lapsed"], stage("Client", Some("lapsed"))); // 0.19
    // Last purchase 2025-02-28: 1 + 365 = 366 days > 365 -> lapsed despite P(alive) 0.9.
    assert_eq!(got["old"], stage("Client", Some("lapsed")));
    // First purchase 28 days ago: new is tested first, P(alive) 0.1 does not matter.
    assert_eq!(got["new"], stage("Customer", Some("new")));
    // No clv row (model not identified): recency 28 days -> active.
    assert_eq!(got["unfitted"], stage("Client", Some("active")));
    // No completed order: no lifecycle; people with no purchase are Prospects.
    assert_eq!(got["returned_only"], stage("Prospect", None));
    assert_eq!(got["ghost"], stage("Prospect", None));
}

#[tokio::test]
async fn ladder_rungs_are_tested_top_down() {
    let got = stages().await;
    // 23 consecutive months (2023-11 .. 2025-09), a gap in 2025-10 (only a return),
    // then 2025-11: the longest run is 23 < 24 -> not a Partner, just a Client.
    assert_eq!(got["r23"].0, stage("Client", None).0);
    // 24 consecutive months 2023-01 .. 2024-12 (one month bought twice), ended 14
    // months ago: a run ending anywhere counts -> Partner.
    assert_eq!(got["r24"].0, stage("Partner", None).0);
    // Business account with a referral -> Partner even without a purchase.
    assert_eq!(got["biz_adv"], stage("Partner", None));
    // Business account, no review or referral, one purchase -> Customer.
    assert_eq!(got["biz"].0, stage("Customer", None).0);
    // Consumer with reviews, no purchase -> Advocate.
    assert_eq!(got["adv"], stage("Advocate", None));
    // Two orders and an engagement on UTC date 2025-12-01, 90 days ago -> Supporter.
    assert_eq!(got["sup"].0, stage("Supporter", None).0);
}
