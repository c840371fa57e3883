//! The unified customer view through the real job: hand-made extracts whose
//! customers, keys and golden records were worked out by hand, key stability across
//! days, and the generator's ground truth.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;

use c360::clock::SystemClock;
use c360::run::{RunOptions, run};
use chrono::NaiveDate;
use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::datatypes::Int64Type;

use crate::run::keys_by_identifier;
use crate::util::{read_partition, repo_root};

const PROFILE_HEADER: &str = "source_system,source_customer_id,email,phone,first_name,last_name,birth_date,city,postal_code,country_code,account_type,signup_ts,email_opt_in,sms_opt_in,updated_at\n";
const ORDER_HEADER: &str = "transaction_id,line_no,source_system,source_customer_id,email,order_ts,channel,product_id,category,quantity,unit_price,discount,unit_cost,currency,status\n";

// Keys derived from each customer's smallest identifier, computed independently in
// Python (see src/steps/identity/tests.rs for the formula).
const KEY_ANN: &str = "f777b5c02ca0bc480733"; // source:crm:C1
const KEY_CAROL: &str = "a97dd90e0d93a66fd308"; // source:crm:C3

fn write(root: &Path, rel: &str, text: &str) {
    let path = root.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// Day 1 extracts (all in dt=2026-03-01):
/// - Ann: crm C1 (email with caps and spaces, updated 20 Feb), web W1 (same email, a
///   London number, city Leeds, updated 1 Mar 09:00), pos P1 (the same number written
///   internationally, updated 1 Mar 09:00) and a guest order T1 with her email;
/// - Bob: crm C2 with an invalid email; his guest order T2 with it is unattributed;
/// - Carol: crm C3 (updated 1 Mar);
/// - four till records P7-P10 carrying the placeholder noemail@store.com and
///   a guest order T4 with it: four source records, over the cap of 3 (T4 is
///   unattributed; a guest order never counts towards the cap);
/// - Dee: no profile, five guest orders G1-G5 under dee@x.com, more than the cap
///   of 3 but all hers: one customer with five orders.
fn day_one(raw: &Path) {
    write(
        raw,
        "reference/fx_rates.csv",
        "currency,rate_to_reporting\nEUR,1\n",
    );
    write(
        raw,
        "profiles/dt=2026-03-01/p.csv",
        &format!(
            "{PROFILE_HEADER}\
crm,C1, Ann@X.com ,,Ann,Lee,,London,N1 1AA,GB,consumer,,true,,2026-02-20T08:00:00Z\n\
web,W1,ann@x.com,020 7946 0958,,,,Leeds,LS1 1AA,GB,,,false,,2026-03-01T09:00:00Z\n\
pos,P1,,+44 20 7946 0958,,,,,LS9 9ZZ,GB,,,,true,2026-03-01T09:00:00Z\n\
crm,C2,bob(at)x.com,,Bob,Ray,,York,,GB,consumer,,,,2026-03-01T10:00:00Z\n\
crm,C3,carol@x.com,,Carol,King,,Bath,,GB,consumer,,,,2026-03-01T11:00:00Z\n\
pos,P7,noemail@store.com,,,,,,,GB,,,,,2026-03-01T12:00:00Z\n\
pos,P8,noemail@store.com,,,,,,,GB,,,,,2026-03-01T12:00:00Z\n\
pos,P9,noemail@store.com,,,,,,,GB,,,,,2026-03-01T12:00:00Z\n\
pos,P10,noemail@store.com,,,,,,,GB,,,,,2026-03-01T12:00:00Z\n"
        ),
    );
    write(
        raw,
        "transactions/dt=2026-03-01/t.csv",
        &format!(
            "{ORDER_HEADER}\
T1,1,web,, ANN@X.COM ,2026-03-01T10:00:00Z,online,P1,shoes,1,10.00,,,EUR,completed\n\
T2,1,web,,bob(at)x.com,2026-03-01T10:00:00Z,online,P1,shoes,1,30.00,,,EUR,completed\n\
T3,1,crm,C2,,2026-03-01T10:00:00Z,online,P1,shoes,2,10.00,,,EUR,completed\n\
T4,1,pos,,noemail@store.com,2026-03-01T10:00:00Z,store,P1,shoes,1,5.00,,,EUR,completed\n\
G1,1,web,,dee@x.com,2026-02-25T10:00:00Z,online,P1,shoes,1,1.00,,,EUR,completed\n\
G2,1,web,,Dee@X.com,2026-02-26T10:00:00Z,online,P1,shoes,1,2.00,,,EUR,completed\n\
G3,1,web,,dee@x.com,2026-02-27T10:00:00Z,online,P1,shoes,1,3.00,,,EUR,completed\n\
G4,1,web,,dee@x.com,2026-02-28T10:00:00Z,online,P1,shoes,1,4.00,,,EUR,completed\n\
G5,1,web,,dee@x.com,2026-03-01T10:00:00Z,online,P1,shoes,1,5.00,,,EUR,completed\n"
        ),
    );
    write(raw, "communications/dt=2026-03-01/e.ndjson", "");
}

/// Day 2: a web record with Carol's email and Ann's phone bridges the two.
fn bridge(raw: &Path) {
    write(
        raw,
        "profiles/dt=2026-03-02/p.csv",
        &format!(
            "{PROFILE_HEADER}web,W9,carol@x.com,020 7946 0958,,,,,,GB,,,,,2026-03-02T08:00:00Z\n"
        ),
    );
}

async fn run_on(raw: &Path, warehouse: &Path, on: &str) -> c360::run::RunSummary {
    let job = c360::job::load(&repo_root().join("jobs/customer_360.yaml")).unwrap();
    let options = RunOptions {
        date: Some(NaiveDate::parse_from_str(on, "%Y-%m-%d").unwrap()),
        overrides: vec![
            ("raw".into(), raw.display().to_string()),
            ("warehouse".into(), warehouse.display().to_string()),
            ("max_records_per_identifier".into(), "3".into()),
        ],
        memory_limit: None,
        engine: None,
        clock: Arc::new(SystemClock),
        full_refresh: false,
    };
    run(&job, &options).await.unwrap()
}

/// `column -> value as text` of the customer_360 row of `key`.
fn customer(warehouse: &Path, date: &str, key: &str) -> BTreeMap<String, String> {
    let batches = read_partition(&warehouse.join(format!("customer_360/snapshot_date={date}")));
    for b in &batches {
        let keys = b.column_by_name("customer_key").unwrap().as_string::<i32>();
        if let Some(row) = (0..b.num_rows()).find(|&i| keys.value(i) == key) {
            return row_text(b, row);
        }
    }
    panic!("no customer {key} on {date}");
}

fn row_text(b: &RecordBatch, row: usize) -> BTreeMap<String, String> {
    let options = Default::default();
    b.schema()
        .fields()
        .iter()
        .zip(b.columns())
        .map(|(f, c)| {
            let text =
                datafusion::arrow::util::display::ArrayFormatter::try_new(c.as_ref(), &options)
                    .unwrap()
                    .value(row)
                    .to_string();
            (
                f.name().clone(),
                if c.is_null(row) { "NULL".into() } else { text },
            )
        })
        .collect()
}

fn rows(warehouse: &Path, output: &str, date: &str) -> usize {
    read_partition(&warehouse.join(format!("{output}/snapshot_date={date}")))
        .iter()
        .map(RecordBatch::num_rows)
        .sum()
}

fn merges(warehouse: &Path, date: &str) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for b in read_partition(&warehouse.join(format!("identity_merges/snapshot_date={date}"))) {
        let text = row_text(&b, 0);
        for row in 0..b.num_rows() {
            let t = if row == 0 {
                text.clone()
            } else {
                row_text(&b, row)
            };
            out.push((
                t["merged_key"].clone(),
                t["surviving_key"].clone(),
                t["merged_on"].clone(),
            ));
        }
    }
    out
}

#[tokio::test]
async fn hand_made_identities_give_hand_worked_customers_and_golden_records() {
    let raw = tempfile::tempdir().unwrap();
    let wh = tempfile::tempdir().unwrap();
    day_one(raw.path());
    run_on(raw.path(), wh.path(), "2026-03-01").await;
    let keys = keys_by_identifier(wh.path(), "2026-03-01");

    // Transitive: C1 =email= W1 =phone= P1, and the guest order's email: one customer.
    for id in ["crm:C1", "web:W1", "pos:P1", "ann@x.com", "+442079460958"] {
        assert_eq!(keys[id], KEY_ANN, "{id}");
    }
    // The invalid email and the capped placeholder are no identifiers.
    assert!(!keys.contains_key("bob(at)x.com"));
    assert!(!keys.contains_key("noemail@store.com"));
    // Customers: Ann, Bob (C2), Carol, Dee, and P7-P10 each on their own.
    assert_eq!(rows(wh.path(), "customer_360", "2026-03-01"), 8);
    // Map: Ann 5 identifiers, C2, C3 + carol@x.com, dee@x.com, P7-P10.
    assert_eq!(rows(wh.path(), "identity_map", "2026-03-01"), 13);

    let ann = customer(wh.path(), "2026-03-01", KEY_ANN);
    // Newest non-empty per attribute: city from W1 (1 Mar) over C1 (20 Feb); first name
    // only on C1 (blank never clears); postal code: W1 and P1 tie on updated_at, web
    // outranks pos; email_opt_in false from W1 (newer), sms_opt_in true from P1.
    assert_eq!(ann["city"], "Leeds");
    assert_eq!(ann["first_name"], "Ann");
    assert_eq!(ann["postal_code"], "LS1 1AA");
    assert_eq!(ann["email"], "ann@x.com");
    assert_eq!(ann["phone"], "+442079460958");
    assert_eq!(ann["email_opt_in"], "false");
    assert_eq!(ann["sms_opt_in"], "true");
    assert_eq!(ann["source_records"], "3");
    // Her guest order T1: 10.00 EUR.
    assert_eq!(ann["monetary"], "10.00");
    assert_eq!(ann["frequency"], "1");

    // Bob: T3 = 2 x 10.00; his guest order T2 with the invalid email is unattributed.
    let bob = customer(wh.path(), "2026-03-01", &keys["crm:C2"]);
    assert_eq!(bob["monetary"], "20.00");
    assert_eq!(bob["email"], "NULL");
    // The placeholder never wins the golden email.
    let p7 = customer(wh.path(), "2026-03-01", &keys["pos:P7"]);
    assert_eq!(p7["email"], "NULL");
    assert_eq!(p7["monetary"], "0.00");
    // Dee's five guest orders on five days: 1 + 2 + 3 + 4 + 5 = 15.00.
    let dee = customer(wh.path(), "2026-03-01", &keys["dee@x.com"]);
    assert_eq!(dee["frequency"], "5");
    assert_eq!(dee["monetary"], "15.00");
    assert_eq!(dee["email"], "NULL");
}

#[tokio::test]
async fn keys_survive_merges_reruns_and_splits() {
    let raw = tempfile::tempdir().unwrap();
    let wh = tempfile::tempdir().unwrap();
    day_one(raw.path());
    run_on(raw.path(), wh.path(), "2026-03-01").await;
    let day1 = keys_by_identifier(wh.path(), "2026-03-01");
    assert_eq!(day1["crm:C3"], KEY_CAROL);
    assert!(merges(wh.path(), "2026-03-01").is_empty());

    // Day 2: W9 bridges Ann and Carol. Ann's key is older (first seen 20 Feb) and survives.
    bridge(raw.path());
    run_on(raw.path(), wh.path(), "2026-03-02").await;
    let day2 = keys_by_identifier(wh.path(), "2026-03-02");
    for id in ["crm:C1", "crm:C3", "carol@x.com", "web:W9", "+442079460958"] {
        assert_eq!(day2[id], KEY_ANN, "{id}");
    }
    let expected = vec![(
        KEY_CAROL.to_string(),
        KEY_ANN.to_string(),
        "2026-03-02".to_string(),
    )];
    assert_eq!(merges(wh.path(), "2026-03-02"), expected);
    // Everyone else keeps their key.
    for id in [
        "crm:C2",
        "pos:P7",
        "pos:P8",
        "pos:P9",
        "pos:P10",
        "dee@x.com",
    ] {
        assert_eq!(day2[id], day1[id], "{id}");
    }
    assert_eq!(rows(wh.path(), "customer_360", "2026-03-02"), 7);

    // Rerun of day 2: the previous map is still day 1's, so the same keys and merge.
    run_on(raw.path(), wh.path(), "2026-03-02").await;
    assert_eq!(keys_by_identifier(wh.path(), "2026-03-02"), day2);
    assert_eq!(merges(wh.path(), "2026-03-02"), expected);

    // Day 3 without the bridging record (removed upstream): a split. Ann's part holds
    // the founding identifier crm:C1 and keeps the key; Carol's part gets the key her
    // smallest identifier derives, which is her old one. A split records no merge.
    std::fs::remove_dir_all(raw.path().join("profiles/dt=2026-03-02")).unwrap();
    run_on(raw.path(), wh.path(), "2026-03-03").await;
    let day3 = keys_by_identifier(wh.path(), "2026-03-03");
    assert_eq!(day3["crm:C1"], KEY_ANN);
    assert_eq!(day3["crm:C3"], KEY_CAROL);
    assert_eq!(day3["carol@x.com"], KEY_CAROL);
    assert!(!day3.contains_key("web:W9"));
    assert!(merges(wh.path(), "2026-03-03").is_empty());
}

#[tokio::test]
async fn the_identity_partition_equals_the_ground_truth_people() {
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
    run(&job, &options).await.unwrap();
    let ours = keys_by_identifier(wh.path(), "2026-03-01");

    // Erased people (all 4 requests apply by 2026-03-01) are in no output.
    let erased = crate::erasure::sample_erased_people(NaiveDate::from_ymd_opt(2026, 3, 1).unwrap());
    assert_eq!(erased.len(), 4);
    let path = repo_root().join("sample_data/raw/_ground_truth/identities.csv");
    let mut truth: BTreeMap<String, String> = BTreeMap::new();
    for r in csv::Reader::from_path(&path).unwrap().records() {
        let r = r.unwrap();
        if erased.contains(&r[0]) {
            assert!(!ours.contains_key(&r[2]), "erased {}", &r[2]);
        } else {
            truth.insert(r[2].to_string(), r[0].to_string());
        }
    }
    // Every identifier the truth lists is in the map, and nothing else is.
    let missing: Vec<_> = truth
        .keys()
        .filter(|id| !ours.contains_key(*id))
        .take(5)
        .collect();
    let extra: Vec<_> = ours
        .keys()
        .filter(|id| !truth.contains_key(*id))
        .take(5)
        .collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "missing {missing:?} extra {extra:?}"
    );
    // Same partition: people split over several keys, keys holding several people.
    let mut keys_of_person: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    let mut people_of_key: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for (id, person) in &truth {
        keys_of_person.entry(person).or_default().insert(&ours[id]);
        people_of_key.entry(&ours[id]).or_default().insert(person);
    }
    let split = keys_of_person.values().filter(|k| k.len() > 1).count();
    let merged = people_of_key.values().filter(|p| p.len() > 1).count();
    println!(
        "ground truth: {} people, {} keys; split people {split}, keys holding several people {merged}",
        keys_of_person.len(),
        people_of_key.len()
    );
    assert_eq!((split, merged), (0, 0));
    assert_eq!(people_of_key.len(), 2000 - 4);

    // customer_360: one row per key; the customers' frequencies add up to the completed
    // orders in order_lines whose source id or (guest) email is in the map.
    let batches = read_partition(&wh.path().join("customer_360/snapshot_date=2026-03-01"));
    let count: usize = batches.iter().map(RecordBatch::num_rows).sum();
    assert_eq!(count, 2000 - 4);
    let frequency: i64 = batches
        .iter()
        .map(|b| {
            let f = b.column_by_name("frequency").unwrap();
            f.as_primitive::<Int64Type>().iter().flatten().sum::<i64>()
        })
        .sum();
    let mut attributed = BTreeSet::new();
    for b in read_partition(&wh.path().join("order_lines/snapshot_date=2026-03-01")) {
        let col = |name: &str| b.column_by_name(name).unwrap().as_string::<i32>().clone();
        let (ids, systems, emails) = (
            col("source_customer_id"),
            col("source_system"),
            col("email"),
        );
        let (orders, status) = (col("transaction_id"), col("status"));
        for i in 0..b.num_rows() {
            let id = if ids.is_valid(i) {
                Some(format!("{}:{}", systems.value(i), ids.value(i)))
            } else if emails.is_valid(i) {
                c360::udf::email::normalize_email(emails.value(i))
            } else {
                None
            };
            if status.value(i) == "completed" && id.is_some_and(|id| ours.contains_key(&id)) {
                attributed.insert(orders.value(i).to_string());
            }
        }
    }
    assert_eq!(frequency, attributed.len() as i64);
}
