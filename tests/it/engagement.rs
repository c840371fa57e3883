//! Engagement, permission and relationship stage in the shipped job over the
//! hand-made extracts of `tests/fixtures/engage_raw` (logical date 2026-03-01):
//! one customer per ladder rung, lifecycle stage reachable without P(alive), and
//! marketable case. `stage_sql.rs` covers the P(alive) rules over in-memory tables.

use std::collections::BTreeMap;
use std::path::Path;

use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, TimeUnit};

use crate::run::{keys_by_identifier, run_job};
use crate::util::{read_partition, repo_root};

const DATE: &str = "2026-03-01";

/// Every column of every row as text (`None` for NULL), keyed by `key(row)`.
pub(crate) fn rows_as_text(
    batches: &[RecordBatch],
    key: impl Fn(&BTreeMap<String, Option<String>>) -> String,
) -> BTreeMap<String, BTreeMap<String, Option<String>>> {
    let mut out = BTreeMap::new();
    for b in batches {
        let columns: Vec<_> = b
            .schema()
            .fields()
            .iter()
            .zip(b.columns())
            .map(|(f, c)| (f.name().clone(), cast(c, &DataType::Utf8).unwrap()))
            .collect();
        for i in 0..b.num_rows() {
            let row: BTreeMap<_, _> = columns
                .iter()
                .map(|(name, c)| {
                    let text = c
                        .is_valid(i)
                        .then(|| c.as_string::<i32>().value(i).to_string());
                    (name.clone(), text)
                })
                .collect();
            out.insert(key(&row), row);
        }
    }
    out
}

/// Runs the shipped job over the fixture; customer_360 rows keyed by `crm:<id>`.
async fn customer_360_by_source_id(
    wh: &Path,
) -> BTreeMap<String, BTreeMap<String, Option<String>>> {
    run_job(&repo_root().join("tests/fixtures/engage_raw"), wh, DATE).await;
    let keys = keys_by_identifier(wh, DATE);
    let source_of: BTreeMap<_, _> = keys
        .iter()
        .filter(|(id, _)| id.starts_with("crm:"))
        .map(|(id, key)| (key.clone(), id.clone()))
        .collect();
    let rows = read_partition(&wh.join(format!("customer_360/snapshot_date={DATE}")));
    rows_as_text(&rows, |row| {
        let key = row["customer_key"].as_deref().unwrap();
        source_of[key].clone()
    })
}

fn text(v: &str) -> Option<String> {
    (v != "NULL").then(|| v.to_string())
}

#[tokio::test]
async fn ladder_lifecycle_permission_and_engagement_follow_the_hand_worked_rules() {
    let wh = tempfile::tempdir().unwrap();
    let by_id = customer_360_by_source_id(wh.path()).await;
    let get = |id: &str, column: &str| by_id[id][column].clone();
    assert_eq!(by_id.len(), 20, "20 profiles, no identifier shared");

    // Only PM has more than one purchase day (CL and SU bought twice on one day), so
    // Gamma-Gamma has 1 repeat buyer: P(alive) is NULL and only the recency rules of
    // the lifecycle apply here.
    let model = read_partition(&wh.path().join(format!("clv_model/snapshot_date={DATE}")));
    let status = cast(model[0].column_by_name("status").unwrap(), &DataType::Utf8).unwrap();
    assert_eq!(status.as_string::<i32>().value(0), "not_identified");

    // (ladder, lifecycle), days counted back from 2026-03-01 (Feb 2026 has 28 days):
    // P1 profile only -> Prospect, no lifecycle.
    // C1 one order 2026-02-15: 14 days <= 90 -> Customer, new.
    // NB one order 2025-12-01: 31 + 31 + 28 = 90 days <= 90 -> Customer, new (boundary).
    // LB business account, one order 2025-03-01: 365 days, not > 365 -> Customer (a
    //    business account alone is no Partner), active (boundary).
    // CL two orders 2025-10-01: 151 days -> Client, active; its open on 2025-11-30 is
    //    1 + 31 + 31 + 28 = 91 days ago > 90 -> not a Supporter.
    // SU two orders 2025-06-01 (273 days) -> active; open 2025-12-01, 90 days -> Supporter.
    // AD a review, one order 2024-12-01: 455 days > 365 -> Advocate, lapsed.
    // PA business account with a referral, no order -> Partner, no lifecycle.
    // PM an order on the 15th of every month 2024-03 .. 2026-02 = 24 consecutive
    //    months -> Partner; first purchase 716 days ago, last 14 -> active.
    let stage = |ladder: &str, life: &str| (text(ladder), text(life));
    for (id, want) in [
        ("crm:P1", stage("Prospect", "NULL")),
        ("crm:C1", stage("Customer", "new")),
        ("crm:NB", stage("Customer", "new")),
        ("crm:LB", stage("Customer", "active")),
        ("crm:CL", stage("Client", "active")),
        ("crm:SU", stage("Supporter", "active")),
        ("crm:AD", stage("Advocate", "lapsed")),
        ("crm:PA", stage("Partner", "NULL")),
        ("crm:PM", stage("Partner", "active")),
    ] {
        let got = (get(id, "ladder_stage"), get(id, "lifecycle_stage"));
        assert_eq!(got, want, "{id}");
    }

    // (email_marketable, sms_marketable); opt-ins given by rows updated 2026-01-10T10:00Z:
    // E1 opt-in, then an unsubscribe on 01-20 (event carries only the email) -> false.
    // E2 unsubscribed 01-05, re-opted in by the row updated 01-10 (landed in a later
    //    extract) -> true; its phone and sms opt-in, no sms events -> sms true.
    // E3 a bounce on 2025-12-01, before the opt-in: any bounce -> false.
    // E4 complaint 02-01 after the opt-in -> false.
    // E5 email opt-in empty (unknown) -> false; sms opt-in but no phone -> false.
    // E6 opt-in but "not-an-email" -> false.
    // E7 email opt-in, no email event -> true; sms unsubscribe 02-01 after the sms
    //    opt-in -> sms false.
    // E8 unsubscribe at exactly 2026-01-10T10:00Z: not *after* the opt-in -> true.
    // E9 unsubscribe on 2026-03-02, after the logical date, not counted yet -> true.
    // P1 no opt-in at all -> false, false.
    for (id, email, sms) in [
        ("crm:E1", "false", "false"),
        ("crm:E2", "true", "true"),
        ("crm:E3", "false", "false"),
        ("crm:E4", "false", "false"),
        ("crm:E5", "false", "false"),
        ("crm:E6", "false", "false"),
        ("crm:E7", "true", "false"),
        ("crm:E8", "true", "false"),
        ("crm:E9", "true", "false"),
        ("crm:P1", "false", "false"),
    ] {
        let got = (get(id, "email_marketable"), get(id, "sms_marketable"));
        assert_eq!(got, (text(email), text(sms)), "{id}");
    }

    // EN (window: days since <= 30, i.e. UTC dates 2026-01-30 .. 2026-03-01).
    // Contacts: email sent 01-29T23:59:59Z (31 days: out), sent 01-31T00:30+01:00 =
    // 01-30 UTC (30 days: in), sent 02-20 (in); sms sent 02-25, inbound reply 02-25;
    // inbound phone service contact 02-27 -> 5. Opens, clicks, deliveries are no
    // contacts; the email sent on 03-02 is after the logical date.
    // Engagements: email open + click (02-20), sms reply + click (02-26), push open
    // (02-28): email and sms tie on 2 -> the later engagement wins -> sms.
    // Cost: 3 email sends x 0.10 (the 03-02 one is cut) + sms 0.05 + call 2.50 = 2.85.
    // email: sent 3, delivered 2, opened 1, clicked 1 -> rates 1/2, 1/2.
    // sms: sent 1, delivered 1, opened 0, clicked 1 -> open rate 0/1 = 0, click 1/1.
    let en = |column: &str| get("crm:EN", column);
    assert_eq!(en("preferred_channel"), text("sms"));
    assert_eq!(en("contacts_last_30d"), text("5"));
    assert_eq!(en("last_contact_ts"), text("2026-02-27T10:00:00Z"));
    assert_eq!(en("last_engagement_ts"), text("2026-02-28T10:00:00Z"));
    assert_eq!(en("contact_cost"), text("2.85"));
    assert_eq!(en("reviews_referrals"), text("0"));
    for (column, want) in [
        ("email_sent", "3"),
        ("email_delivered", "2"),
        ("email_opened", "1"),
        ("email_clicked", "1"),
        ("email_bounced", "0"),
        ("email_open_rate", "0.5"),
        ("email_click_rate", "0.5"),
        ("sms_sent", "1"),
        ("sms_delivered", "1"),
        ("sms_opened", "0"),
        ("sms_clicked", "1"),
        ("sms_open_rate", "0.0"),
        ("sms_click_rate", "1.0"),
    ] {
        assert_eq!(en(column), text(want), "{column}");
    }
    // ET: one email and one sms open at the same instant -> tie on count and time ->
    // channel name order -> email. P1 never engaged: no preference, counts 0, rates NULL.
    assert_eq!(get("crm:ET", "preferred_channel"), text("email"));
    assert_eq!(get("crm:P1", "preferred_channel"), None);
    assert_eq!(get("crm:P1", "contacts_last_30d"), text("0"));
    assert_eq!(get("crm:P1", "email_sent"), text("0"));
    assert_eq!(get("crm:P1", "email_open_rate"), None);
    assert_eq!(get("crm:P1", "contact_cost"), text("0.00"));
    // AD's review and PA's referral (02-01: 28 days ago, an inbound contact).
    assert_eq!(get("crm:AD", "reviews_referrals"), text("1"));
    assert_eq!(get("crm:PA", "contacts_last_30d"), text("1"));
}

#[tokio::test]
async fn channel_engagement_has_one_typed_row_per_customer_and_channel() {
    let wh = tempfile::tempdir().unwrap();
    run_job(
        &repo_root().join("tests/fixtures/engage_raw"),
        wh.path(),
        DATE,
    )
    .await;
    let keys = keys_by_identifier(wh.path(), DATE);
    let batches = read_partition(
        &wh.path()
            .join(format!("channel_engagement/snapshot_date={DATE}")),
    );
    let schema = batches[0].schema();
    let ty = |name: &str| schema.field_with_name(name).unwrap().data_type().clone();
    assert_eq!(ty("sent"), DataType::Int64);
    assert_eq!(ty("open_rate"), DataType::Float64);
    assert_eq!(ty("contact_cost"), DataType::Decimal128(18, 2));
    assert_eq!(
        ty("last_contact_ts"),
        DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
    );

    let rows = rows_as_text(&batches, |row| {
        format!(
            "{}/{}",
            row["customer_key"].as_deref().unwrap(),
            row["channel"].as_deref().unwrap()
        )
    });
    let en = |channel: &str| &rows[&format!("{}/{channel}", keys["crm:EN"])];
    // EN has events on email, sms, phone and push (see the test above for the sums).
    let en_rows = rows
        .keys()
        .filter(|k| k.starts_with(&format!("{}/", keys["crm:EN"])))
        .count();
    assert_eq!(en_rows, 4);
    let pick = |row: &BTreeMap<String, Option<String>>, cols: &[&str]| {
        cols.iter().map(|c| row[*c].clone()).collect::<Vec<_>>()
    };
    let cols = [
        "sent",
        "delivered",
        "opened",
        "clicked",
        "replied",
        "open_rate",
        "click_rate",
        "contacts_last_30d",
        "last_contact_ts",
        "contact_cost",
    ];
    let want = |v: [&str; 10]| v.iter().map(|s| text(s)).collect::<Vec<_>>();
    // email: 2 of the 3 sends in the window; last contact is the 02-20 send.
    assert_eq!(
        pick(en("email"), &cols),
        want([
            "3",
            "2",
            "1",
            "1",
            "0",
            "0.5",
            "0.5",
            "2",
            "2026-02-20T09:00:00Z",
            "0.30"
        ])
    );
    // sms: send + inbound reply are contacts; the reply is the later one.
    assert_eq!(
        pick(en("sms"), &cols),
        want([
            "1",
            "1",
            "0",
            "1",
            "1",
            "0.0",
            "1.0",
            "2",
            "2026-02-25T11:00:00Z",
            "0.05"
        ])
    );
    // phone: one inbound service call, nothing delivered -> rates NULL.
    assert_eq!(
        pick(en("phone"), &cols),
        want([
            "0",
            "0",
            "0",
            "0",
            "0",
            "NULL",
            "NULL",
            "1",
            "2026-02-27T10:00:00Z",
            "2.50"
        ])
    );
    // push: an open only -> no contact at all, cost 0.
    assert_eq!(
        pick(en("push"), &cols),
        want(["0", "0", "1", "0", "0", "NULL", "NULL", "0", "NULL", "0.00"])
    );
    // Customers without any event (C1, P1, ...) have no rows.
    assert!(
        !rows
            .keys()
            .any(|k| k.starts_with(&format!("{}/", keys["crm:C1"])))
    );
}
