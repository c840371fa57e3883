//! Output column policies for personal data (`pii:`, docs/rules.md "Personal
//! data in outputs"): hashed with the key from the environment (checked against
//! Python's own `hmac`), masked, dropped; no key, no run; `pii_hash` in SQL.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use datafusion::arrow::array::{Array, AsArray, RecordBatch};

use crate::util::{read_partition, repo_root};

const KEY: &str = "c360-test-pii-key-0123456789";

/// HMAC-SHA256 hex of each value, computed by Python's standard library.
fn python_hmac(values: &[String]) -> Vec<String> {
    let mut child = Command::new("python3")
        .args([
            "-c",
            "import hmac, hashlib, sys\nfor line in sys.stdin.read().splitlines():\n    print(hmac.new(sys.argv[1].encode(), line.encode(), hashlib.sha256).hexdigest())",
            KEY,
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(values.join("\n").as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(String::from)
        .collect()
}

fn run(job: &Path, warehouse: &Path, key: Option<&str>) -> std::process::Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_c360"));
    command
        .args(["run", &job.display().to_string(), "--date", "2026-03-01"])
        .arg(format!("--set=warehouse={}", warehouse.display()))
        .current_dir(repo_root())
        .env("C360_LOG", "warn")
        .env_remove("C360_PII_KEY")
        .env_remove("C360_PII_KEY_FILE");
    if let Some(key) = key {
        command.env("C360_PII_KEY", key);
    }
    command.output().unwrap()
}

/// Column `name` of `batches` as optional strings.
fn strings(batches: &[RecordBatch], name: &str) -> Vec<Option<String>> {
    let mut out = Vec::new();
    for batch in batches {
        let column = batch.column_by_name(name).expect("column exists");
        let column =
            datafusion::arrow::compute::cast(column, &datafusion::arrow::datatypes::DataType::Utf8)
                .unwrap();
        let column = column.as_string::<i32>();
        out.extend(
            (0..column.len()).map(|i| column.is_valid(i).then(|| column.value(i).to_string())),
        );
    }
    out
}

#[test]
fn outputs_hash_mask_and_drop_the_columns_their_policies_name() {
    let dir = tempfile::tempdir().unwrap();
    let job = std::fs::read_to_string(repo_root().join("jobs/customer_360.yaml")).unwrap();
    let job = job.replace(
        "pii: { email: keep, phone: keep }",
        "pii: { email: hash, phone: mask, first_name: drop }",
    );
    let job_path = dir.path().join("pii.yaml");
    std::fs::write(&job_path, job).unwrap();

    // No key: refused before anything is read or published.
    let wh = dir.path().join("wh");
    let out = run(&job_path, &wh, None);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("C360_PII_KEY"), "{stderr}");
    assert!(!wh.join("customer_360").exists());

    let out = run(&job_path, &wh, Some(KEY));
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let customers = read_partition(&wh.join("customer_360/snapshot_date=2026-03-01"));
    assert!(customers[0].column_by_name("first_name").is_none());
    assert!(customers[0].column_by_name("last_name").is_some());

    // Each hashed email is the HMAC of one of that customer's emails in the
    // (unhashed) identity map, as Python computes it.
    let map = read_partition(&wh.join("identity_map/snapshot_date=2026-03-01"));
    let mut emails_of: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for ((key, id_type), value) in strings(&map, "customer_key")
        .into_iter()
        .zip(strings(&map, "id_type"))
        .zip(strings(&map, "id_value"))
    {
        if id_type.as_deref() == Some("email") {
            emails_of
                .entry(key.unwrap())
                .or_default()
                .push(value.unwrap());
        }
    }
    let keys = strings(&customers, "customer_key");
    let hashed = strings(&customers, "email");
    let mut checked = 0;
    for (key, hash) in keys.iter().zip(&hashed) {
        let Some(hash) = hash else { continue };
        assert!(
            hash.len() == 64
                && hash
                    .chars()
                    .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()),
            "{hash}"
        );
        if checked < 50 {
            let candidates = &emails_of[key.as_ref().unwrap()];
            let expected: BTreeSet<String> = python_hmac(candidates).into_iter().collect();
            assert!(
                expected.contains(hash),
                "{key:?}: {hash} not among {expected:?}"
            );
            checked += 1;
        }
    }
    assert_eq!(checked, 50);

    // Masked phones show at most their last 4 digits.
    let phones: Vec<String> = strings(&customers, "phone").into_iter().flatten().collect();
    assert!(!phones.is_empty());
    for phone in &phones {
        let digits = phone.chars().filter(char::is_ascii_digit).count();
        assert!(digits <= 4 && phone.contains('*'), "{phone}");
    }
}

#[test]
fn pii_hash_is_a_sql_function_keyed_from_the_environment() {
    let wh = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_c360"))
        .args([
            "query",
            "--warehouse",
            &wh.path().display().to_string(),
            "--format",
            "csv",
        ])
        .arg("SELECT pii_hash('ann@example.com') AS h, pii_mask('ann@example.com') AS m")
        .env("C360_PII_KEY", KEY)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let expected = python_hmac(&["ann@example.com".to_string()]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("h,m\n{},a***@example.com\n", expected[0])
    );
}

#[test]
fn canary_secrets_appear_in_no_log_record_report_or_output() {
    let wh = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_c360"))
        .args(["run", "jobs/customer_360.yaml", "--date", "2026-03-01"])
        .arg(format!("--set=warehouse={}", wh.path().display()))
        .current_dir(repo_root())
        .env("C360_LOG", "c360=trace,info")
        .env("AWS_SECRET_ACCESS_KEY", "canary-aws-0123456789")
        .env("C360_PII_KEY", "canary-pii-0123456789")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stderr.len() > 10_000, "trace logs were written");
    let mut texts = vec![out.stdout, out.stderr];
    for file in crate::util::files_under(wh.path()) {
        texts.push(std::fs::read(&file).unwrap());
    }
    for text in &texts {
        let text = String::from_utf8_lossy(text);
        assert!(!text.contains("canary-"), "a secret leaked");
    }
}
