//! Hostile input at the parser level (docs/rules.md, "Hostile input"): deep
//! nesting, invalid UTF-8, formula-like text, a gzip bomb, an object of too
//! many fields. The huge ones run through the binary in `hostile.rs`.

use super::*;
use c360::job::SourceLimits;
use object_store::memory::InMemory;
use object_store::{ObjectStoreExt, PutPayload};

const EVENT: &str = r#""channel":"email","direction":"outbound","event_type":"sent","event_ts":"2026-01-01T10:00:00Z""#;

async fn store_with(files: &[(&str, Vec<u8>)]) -> Arc<dyn ObjectStore> {
    let store = InMemory::new();
    for (path, bytes) in files {
        let payload = PutPayload::from(bytes.clone());
        store.put(&Path::from(*path), payload).await.unwrap();
    }
    Arc::new(store)
}

async fn read_events(bytes: Vec<u8>, name: &str, limits: SourceLimits) -> Read {
    let path = format!("raw/communications/dt=2026-01-01/{name}");
    let store = store_with(&[(&path, bytes)]).await;
    let mut spec = spec(
        "communications",
        Format::Ndjson,
        ContractSchema::Communications,
        true,
    );
    spec.limits = limits;
    read_with(store, &spec, "raw/communications", day(1), None, 8192).await
}

async fn read_fx(bytes: &[u8]) -> Read {
    let store = store_with(&[("raw/fx.csv", bytes.to_vec())]).await;
    let spec = spec("fx", Format::Csv, ContractSchema::FxRates, false);
    read_with(store, &spec, "raw/fx.csv", day(1), None, 8192).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_nested_a_hundred_thousand_deep_is_broken_json_in_a_contract_field() {
    let (open, close) = ("[".repeat(100_000), "]".repeat(100_000));
    // In a contract field: past serde_json's depth limit (128), broken JSON. In
    // an unknown field: skipped without recursion, so the row is accepted.
    let deep = format!(
        "{{\"event_id\":\"E1\",{EVENT},\"cost\":{open}1{close}}}\n{{\"event_id\":\"E2\",{EVENT},\"x\":{open}1{close}}}\n",
    );
    let r = read_events(deep.into_bytes(), "a.ndjson", SourceLimits::default()).await;
    let report = r.result.as_ref().unwrap();
    assert_eq!((report.rows_read, report.rows_accepted), (2, 1));
    assert_eq!(report.rejects_by_reason, counts(&[("broken_json", 1)]));
    assert_eq!(text(&r.accepted, "event_id"), vec![Some("E2".to_string())]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_object_of_too_many_fields_is_record_too_large() {
    let many: String = (0..2000).map(|i| format!(",\"k{i}\":0")).collect();
    let file =
        format!("{{\"event_id\":\"E1\",{EVENT}{many}}}\n{{\"event_id\":\"E2\",{EVENT},\"k\":1}}\n");
    let r = read_events(file.into_bytes(), "a.ndjson", SourceLimits::default()).await;
    let report = r.result.as_ref().unwrap();
    assert_eq!((report.rows_read, report.rows_accepted), (2, 1));
    assert_eq!(report.rejects_by_reason, counts(&[("record_too_large", 1)]));
    // Unknown names of the accepted line only: the rejected line's are not counted.
    assert_eq!(report.extra_columns, counts(&[("k", 1)]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_utf8_is_broken_json_in_ndjson() {
    let mut file = format!("{{\"event_id\":\"E1\",{EVENT}}}\n").into_bytes();
    file.extend_from_slice(b"{\"event_id\":\"E\xff\xfe2\",");
    file.extend_from_slice(format!("{EVENT}}}\n").as_bytes());
    let r = read_events(file, "a.ndjson", SourceLimits::default()).await;
    let report = r.result.as_ref().unwrap();
    assert_eq!(report.rejects_by_reason, counts(&[("broken_json", 1)]));
    // The raw text shows the bad bytes as U+FFFD.
    assert!(
        raw_at(&r, 2)
            .unwrap()
            .starts_with("{\"event_id\":\"E\u{fffd}\u{fffd}2\"")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_utf8_in_a_csv_contract_field_is_a_file_error_and_in_an_extra_column_is_ignored() {
    let r = read_fx(b"currency,rate_to_reporting\nEUR,1\nG\xffP,1\n").await;
    match r.result {
        Err(e @ SourceError::Malformed { .. }) => {
            assert_eq!(e.to_string(), "raw/fx.csv:3: field is not valid UTF-8")
        }
        other => panic!("expected a file error, got {other:?}"),
    }
    let r = read_fx(b"currency,rate_to_reporting,note\nEUR,1,caf\xe9\n").await;
    let report = r.result.as_ref().unwrap();
    assert_eq!((report.rows_read, report.rows_accepted), (1, 1));
    let r = read_fx(b"currency,rate_\xffto_reporting\nEUR,1\n").await;
    let err = r.result.unwrap_err().to_string();
    assert_eq!(err, "raw/fx.csv:1: header is not valid UTF-8");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn formula_like_text_is_data_kept_verbatim_in_rows_and_rejects() {
    let formula = r#"=HYPERLINK("http://x","y")"#;
    let quoted = r#""=HYPERLINK(""http://x"",""y"")""#;
    let file =
        format!("currency,rate_to_reporting,note\nEUR,1,{quoted}\n{quoted},-1\n@SUM(A1),x,+1\n");
    let r = read_fx(file.as_bytes()).await;
    let report = r.result.as_ref().unwrap();
    assert_eq!((report.rows_read, report.rows_accepted), (3, 1));
    // Accepted: the formula is the currency code of no row, but a text value;
    // here it sits in an extra column, so the row is stored as is.
    assert_eq!(text(&r.accepted, "currency"), vec![Some("EUR".to_string())]);
    // Rejected: the raw text is the line exactly as written, quotes and all.
    assert_eq!(raw_at(&r, 3).unwrap(), format!("{quoted},-1"));
    assert_eq!(raw_at(&r, 4).unwrap(), "@SUM(A1),x,+1");
    // The CSV-unquoted value reaches the typed rows unchanged (no escaping).
    let line = format!(
        "{{\"event_id\":\"{}\",{EVENT}}}\n",
        formula.replace('"', "\\\"")
    );
    let r = read_events(line.into_bytes(), "a.ndjson", SourceLimits::default()).await;
    r.result.unwrap();
    assert_eq!(
        text(&r.accepted, "event_id"),
        vec![Some(formula.to_string())]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gzip_bomb_stops_at_the_limit_with_a_file_error() {
    use std::io::Write;
    // One 8 MiB member of zeros repeated: 256 MiB once decompressed, 16 MiB allowed.
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(&vec![0u8; 8 << 20]).unwrap();
    let bomb = enc.finish().unwrap().repeat(32);
    assert!(bomb.len() < 4 << 20, "{}", bomb.len());
    let limits = SourceLimits {
        max_decompressed_bytes: 16 << 20,
        ..SourceLimits::default()
    };
    let r = read_events(bomb, "bomb.ndjson.gz", limits).await;
    let err = r.result.unwrap_err();
    assert_eq!(
        err.to_string(),
        "raw/communications/dt=2026-01-01/bomb.ndjson.gz: holds more than 16 MiB once decompressed, the source's limits.max_decompressed_bytes"
    );
}
