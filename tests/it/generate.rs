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

mod contract_check;

/// The sample size (2,000 people, 60 days), generated once for all tests.
async fn sample() -> (&'static BTreeMap<String, Vec<u8>>, contract_check::Reading) {
    static SAMPLE: tokio::sync::OnceCell<BTreeMap<String, Vec<u8>>> =
        tokio::sync::OnceCell::const_new();
    let files = SAMPLE.get_or_init(|| run(2_000, 60, 42)).await;
    let fx = text("fx", &files["reference/fx_rates.csv"]);
    let currencies: BTreeSet<String> = fx
        .lines()
        .skip(1)
        .filter_map(|l| l.split(',').next())
        .map(String::from)
        .collect();
    let mut reading = contract_check::Reading::default();
    for (name, bytes) in files {
        let extract = name.split('/').next().unwrap_or_default();
        if ["profiles", "transactions", "communications", "suppressions"].contains(&extract) {
            reading.read(name, &text(name, bytes), &currencies);
        }
    }
    (files, reading)
}

fn truth_rejects(files: &BTreeMap<String, Vec<u8>>) -> BTreeSet<contract_check::Reject> {
    let mut rdr = csv::Reader::from_reader(&files["_ground_truth/rejects.csv"][..]);
    rdr.records()
        .map(|r| {
            let r = r.expect("rejects row");
            (
                r[0].to_string(),
                r[1].to_string(),
                r[2].parse().expect("line"),
                r[3].to_string(),
            )
        })
        .collect()
}

#[tokio::test]
async fn ground_truth_rejects_match_an_independent_first_match_reading() {
    let (files, reading) = sample().await;
    let truth = truth_rejects(files);
    assert_eq!(reading.rejects, truth);

    let reasons: BTreeSet<&str> = truth.iter().map(|r| r.3.as_str()).collect();
    let all = [
        "wrong_column_count",
        "broken_json",
        "missing_required",
        "bad_timestamp",
        "bad_date",
        "bad_number",
        "negative_quantity",
        "negative_amount",
        "unknown_currency",
        "bad_bool",
        "bad_enum",
        "no_customer_identifier",
    ];
    assert_eq!(reasons, all.into_iter().collect());

    let summary: serde_json::Value =
        serde_json::from_slice(&files["_ground_truth/summary.json"]).expect("json");
    for (extract, rows) in &reading.rows {
        assert_eq!(summary["rows"][extract].as_u64(), Some(*rows), "{extract}");
        let rejected = truth.iter().filter(|r| &r.0 == extract).count() as u64;
        assert!(
            rejected * 100 < *rows,
            "{extract}: {rejected} of {rows} rejected, over 1%"
        );
    }
}

#[tokio::test]
async fn a_ground_truth_reject_line_shows_the_malformed_value() {
    let (files, _) = sample().await;
    let truth = truth_rejects(files);
    let at = |reason: &str| {
        let r = truth.iter().find(|r| r.3 == reason).expect(reason);
        let body = text(&r.1, &files[&r.1]);
        body.split('\n')
            .nth(r.2 as usize - 1)
            .expect("line")
            .to_string()
    };
    assert!(at("unknown_currency").contains(",XYZ,") || at("unknown_currency").contains(",BTC,"));
    assert!(at("negative_quantity").contains(",0,") || at("negative_quantity").contains(",-1,"));
    assert!(at("broken_json").starts_with('{') && !at("broken_json").ends_with('}'));
    assert!(at("bad_date").contains("1985-02-30") || at("bad_date").contains("12/03/1985"));
}

#[tokio::test]
async fn identities_are_exactly_the_valid_identifiers_and_phones_are_valid() {
    let (files, reading) = sample().await;
    let mut rdr = csv::Reader::from_reader(&files["_ground_truth/identities.csv"][..]);
    let mut owner: BTreeMap<(String, String), String> = BTreeMap::new();
    for r in rdr.records() {
        let r = r.expect("identity row");
        let prev = owner.insert((r[1].to_string(), r[2].to_string()), r[0].to_string());
        assert!(prev.is_none(), "identifier {} listed twice", &r[2]);
    }
    let of = |kind: &str| -> BTreeSet<String> {
        owner
            .keys()
            .filter(|k| k.0 == kind)
            .map(|k| k.1.clone())
            .collect()
    };

    assert_eq!(of("source"), reading.sources);

    let email_re = regex::Regex::new(r"^[a-z0-9._%+-]+@([a-z0-9-]+\.)+[a-z]{2,}$").expect("regex");
    let placeholder: Vec<(&String, &u64)> =
        reading.emails.iter().filter(|(_, n)| **n > 50).collect();
    assert_eq!(placeholder.len(), 1, "one shared till email");
    let valid_emails: BTreeSet<String> = reading
        .emails
        .iter()
        .filter(|(e, n)| **n <= 50 && email_re.is_match(e))
        .map(|(e, _)| e.clone())
        .collect();
    assert_eq!(of("email"), valid_emails);
    assert!(
        reading.emails.keys().any(|e| !email_re.is_match(e)),
        "some junk email"
    );

    let mut from_rows = BTreeSet::new();
    let mut formats = BTreeSet::new();
    for (country, raw) in &reading.phones {
        let region = country.parse().expect("country");
        let Ok(number) = phonenumber::parse(Some(region), raw) else {
            continue;
        };
        if number.is_valid() {
            from_rows.insert(number.format().mode(phonenumber::Mode::E164).to_string());
            formats.insert(
                raw.chars()
                    .map(|c| if c.is_ascii_digit() { '9' } else { c })
                    .collect::<String>(),
            );
        }
    }
    assert_eq!(of("phone"), from_rows);
    for e164 in of("phone") {
        let n = phonenumber::parse(None, &e164).expect("E.164 parses");
        assert!(n.is_valid(), "{e164}");
    }
    for shape in [
        "+99 99 9999 9999",
        "999 9999 9999",
        "(999) 999-9999",
        "+9 999-999-9999",
    ] {
        assert!(formats.contains(shape), "phone format {shape}");
    }
    assert!(
        reading
            .phones
            .iter()
            .any(|(_, p)| p == "n/a" || p == "12345"),
        "some junk phone"
    );
}

/// The person an identifier belongs to per `identities.csv`.
fn owners(files: &BTreeMap<String, Vec<u8>>) -> BTreeMap<String, String> {
    let mut rdr = csv::Reader::from_reader(&files["_ground_truth/identities.csv"][..]);
    rdr.records()
        .map(|r| r.expect("row"))
        .map(|r| (r[2].to_string(), r[0].to_string()))
        .collect()
}

#[tokio::test]
async fn linking_the_valid_rows_gives_exactly_the_ground_truth_people() {
    let (files, reading) = sample().await;
    let owner = owners(files);
    let email_re = regex::Regex::new(r"^[a-z0-9._%+-]+@([a-z0-9-]+\.)+[a-z]{2,}$").expect("regex");
    let email_id = |e: &str| {
        (email_re.is_match(e) && reading.emails.get(e).is_some_and(|n| *n <= 50))
            .then(|| e.to_string())
    };
    // Union-find over identifiers, as a loader would link them.
    let mut parent: BTreeMap<String, String> = BTreeMap::new();
    fn root(parent: &mut BTreeMap<String, String>, x: &str) -> String {
        let p = parent
            .entry(x.to_string())
            .or_insert_with(|| x.to_string())
            .clone();
        if p == x {
            p
        } else {
            let r = root(parent, &p);
            parent.insert(x.to_string(), r.clone());
            r
        }
    }
    let mut link = |ids: Vec<String>| {
        for pair in ids.windows(2) {
            let (a, b) = (root(&mut parent, &pair[0]), root(&mut parent, &pair[1]));
            parent.insert(a, b);
        }
        if let Some(one) = ids.first() {
            root(&mut parent, one);
        }
    };
    for [source, email, country, phone] in &reading.profile_rows {
        let mut ids = vec![source.clone()];
        ids.extend(email_id(email.trim()));
        let number = country
            .parse()
            .ok()
            .and_then(|c| phonenumber::parse(Some(c), phone).ok());
        if let Some(n) = number.filter(|n| n.is_valid()) {
            ids.push(n.format().mode(phonenumber::Mode::E164).to_string());
        }
        link(ids);
    }
    for (source, email) in &reading.activity {
        let ids: Vec<String> = [source.clone()]
            .into_iter()
            .filter(|s| !s.is_empty())
            .chain(email_id(email.trim()))
            .collect();
        for id in &ids {
            assert!(
                owner.contains_key(id),
                "activity carries {id}, which no person owns"
            );
        }
        link(ids);
    }
    let mut person_of_root: BTreeMap<String, String> = BTreeMap::new();
    let mut root_of_person: BTreeMap<String, String> = BTreeMap::new();
    for (id, person) in &owner {
        let r = root(&mut parent, id);
        assert_eq!(
            person_of_root
                .entry(r.clone())
                .or_insert_with(|| person.clone()),
            person,
            "{id} merged two people"
        );
        assert_eq!(
            root_of_person.entry(person.clone()).or_insert(r.clone()),
            &r,
            "person {person} split at {id}"
        );
    }
}
