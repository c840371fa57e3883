//! Property tests (proptest) of the parsers that read what c360 does not
//! control: the CSV and NDJSON row parsers and the job-file parser. They never
//! panic, every row read is accepted or rejected, and every job-file problem
//! has a `file:line:col` inside the file.
//!
//! Each suite runs 256 cases (a few seconds in all) so `cargo test` stays fast;
//! run them longer with, e.g.,
//! `PROPTEST_CASES=100000 cargo test --test it fuzz::`. A failing case is
//! shrunk and printed; proptest keeps it under `proptest-regressions/` to try
//! first next time.

use std::sync::Arc;

use c360::job::{self, ContractSchema, Format, SourceLimits};
use c360::source::{CollectSink, SourceError, SourceInput, SourceReport, read_source};
use chrono::NaiveDate;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use proptest::prelude::*;

use crate::source::spec;
use crate::util::repo_root;

fn config() -> ProptestConfig {
    // `PROPTEST_CASES` overrides the count (proptest reads it into the default).
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(256);
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Reads `bytes` as the one file of a source; the report (or file error) and
/// the rows that reached each sink.
fn read_file(
    bytes: Vec<u8>,
    format: Format,
    schema: ContractSchema,
    limits: SourceLimits,
) -> (Result<SourceReport, SourceError>, usize, usize) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let store = InMemory::new();
        let name = if format == Format::Csv {
            "f.csv"
        } else {
            "f.ndjson"
        };
        let path = Path::from(format!("raw/x/{name}"));
        store.put(&path, PutPayload::from(bytes)).await.unwrap();
        let mut spec = spec("x", format, schema, false);
        spec.limits = limits;
        let input = SourceInput {
            spec: Arc::new(spec),
            store: Arc::new(store) as Arc<dyn ObjectStore>,
            root: Path::from("raw"),
            location: path,
            url: "memory:///raw/x".into(),
            date: NaiveDate::from_ymd_opt(2026, 1, 1).unwrap(),
            currencies: None,
            batch_rows: 7,
        };
        let (mut accepted, mut rejects) = (CollectSink::default(), CollectSink::default());
        let result = read_source(input, &mut accepted, &mut rejects).await;
        let rows = |s: &CollectSink| s.batches.iter().map(|b| b.num_rows()).sum();
        (result, rows(&accepted), rows(&rejects))
    })
}

/// Small limits, so that the size rules are hit often.
fn limits() -> impl Strategy<Value = SourceLimits> {
    (1u64..40, 1u64..80, 1u64..6).prop_map(|(field, record, columns)| SourceLimits {
        max_field_bytes: field,
        max_record_bytes: record,
        max_decompressed_bytes: u64::MAX,
        max_columns: columns,
    })
}

/// Bytes a CSV parser finds interesting, glued into records.
fn csv_text() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        Just(b",".to_vec()),
        Just(b"\"".to_vec()),
        Just(b"\"\"".to_vec()),
        Just(b"\n".to_vec()),
        Just(b"\r\n".to_vec()),
        Just(b"\r".to_vec()),
        Just(b"EUR".to_vec()),
        Just(b"1.5".to_vec()),
        Just(b"\xef\xbb\xbf".to_vec()),
        Just(b"\xff".to_vec()),
        Just("é".as_bytes().to_vec()),
        Just(br#"=HYPERLINK("http://x","y")"#.to_vec()),
        proptest::collection::vec(any::<u8>(), 0..8),
    ];
    proptest::collection::vec(piece, 0..60).prop_map(|p| p.concat())
}

/// A report whose rows add up, with each row in exactly one sink.
fn adds_up(report: &SourceReport, accepted: usize, rejected: usize) -> bool {
    report.rows_read == report.rows_accepted + report.rows_rejected
        && report.rows_accepted == accepted as u64
        && report.rows_rejected == rejected as u64
        && report.rejects_by_reason.values().sum::<u64>() == report.rows_rejected
}

/// The errors a text file may end in: its bytes, never a c360 fault.
fn is_file_error(e: &SourceError) -> bool {
    matches!(
        e,
        SourceError::Malformed { .. }
            | SourceError::MissingColumn { .. }
            | SourceError::OverLimit { .. }
    )
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn csv_rows_are_accepted_or_rejected_whatever_the_bytes(
        body in csv_text(),
        header in prop_oneof![Just(&b"currency,rate_to_reporting\n"[..]), Just(&b"\"currency\",rate_to_reporting,x\r\n"[..]), Just(&b""[..])],
        limits in prop_oneof![Just(SourceLimits::default()), limits()],
    ) {
        let file = [header, &body[..]].concat();
        let (result, accepted, rejected) = read_file(file, Format::Csv, ContractSchema::FxRates, limits);
        match result {
            Ok(report) => prop_assert!(adds_up(&report, accepted, rejected), "{report:?}"),
            Err(e) => prop_assert!(is_file_error(&e), "{e}"),
        }
    }

    #[test]
    fn csv_of_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let (result, accepted, rejected) =
            read_file(bytes, Format::Csv, ContractSchema::FxRates, SourceLimits::default());
        if let Ok(report) = result {
            prop_assert!(adds_up(&report, accepted, rejected));
        }
    }

    #[test]
    fn ndjson_lines_are_accepted_or_rejected_one_row_per_non_blank_line(
        lines in proptest::collection::vec(prop_oneof![
            Just(r#"{"event_id":"E1","channel":"email","direction":"outbound","event_type":"sent","event_ts":"2026-01-01T10:00:00Z"}"#.to_string()),
            Just(r#"{"event_id":"E2","cost":[[[1]]],"x":{"y":null}}"#.to_string()),
            Just(String::new()),
            Just("  ".to_string()),
            "[\\[\\]{}\",:a-z0-9 \\\\]{0,30}",
            any::<String>(),
        ], 0..20),
        crlf in any::<bool>(),
    ) {
        let end = if crlf { "\r\n" } else { "\n" };
        let file: String = lines.iter().map(|l| format!("{l}{end}")).collect();
        // Worked out from the lines themselves: a row per line that is not
        // blank (a generated line may hold line breaks of its own).
        let non_blank = file
            .strip_prefix('\u{feff}')
            .unwrap_or(&file)
            .split('\n')
            .filter(|l| !l.bytes().all(|b| b.is_ascii_whitespace()))
            .count() as u64;
        let (result, accepted, rejected) = read_file(
            file.into_bytes(),
            Format::Ndjson,
            ContractSchema::Communications,
            SourceLimits::default(),
        );
        let report = result.map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert!(adds_up(&report, accepted, rejected), "{report:?}");
        prop_assert_eq!(report.rows_read, non_blank);
    }

    #[test]
    fn ndjson_of_arbitrary_bytes_never_panics(
        bytes in proptest::collection::vec(any::<u8>(), 0..400),
        limits in prop_oneof![Just(SourceLimits::default()), limits()],
    ) {
        let (result, accepted, rejected) =
            read_file(bytes, Format::Ndjson, ContractSchema::Communications, limits);
        let report = result.map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert!(adds_up(&report, accepted, rejected), "{report:?}");
    }

    #[test]
    fn job_files_of_arbitrary_text_fail_at_a_place_in_the_file(text in job_text()) {
        check_job_text(&text)?;
    }

    #[test]
    fn mutations_of_the_bundled_job_fail_at_a_place_in_the_file(
        edits in proptest::collection::vec((any::<prop::sample::Index>(), 0usize..40, mutation()), 1..4),
    ) {
        let mut text = bundled_job().to_string();
        for (at, len, insert) in edits {
            let start = floor_char(&text, at.index(text.len() + 1));
            let end = floor_char(&text, (start + len).min(text.len()));
            text.replace_range(start..end, &insert);
        }
        check_job_text(&text)?;
    }
}

fn bundled_job() -> &'static str {
    static TEXT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    TEXT.get_or_init(|| {
        std::fs::read_to_string(repo_root().join("jobs/customer_360.yaml")).unwrap()
    })
}

fn floor_char(text: &str, mut i: usize) -> usize {
    while !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// What replaces a span of the bundled job: YAML punctuation, keys, values.
fn mutation() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just(": ".into()),
        Just("\n  ".into()),
        Just("{".into()),
        Just("[".into()),
        Just("- ".into()),
        Just("&a ".into()),
        Just("*a".into()),
        Just("\"".into()),
        Just("limits: { max_field_bytes: 0 }".into()),
        Just("max_fraction: 2".into()),
        Just("{raw}/../x".into()),
        "[a-z_ :{}\\[\\],\"'\n-]{0,12}",
    ]
}

/// YAML-ish text: the job's keys and YAML's punctuation in any order.
fn job_text() -> impl Strategy<Value = String> {
    let token = prop_oneof![
        Just("name: j\n".to_string()),
        Just("storage: { raw: r, warehouse: w }\n".to_string()),
        Just("sources:\n".to_string()),
        Just("  s: { path: p, format: csv, schema: fx_rates }\n".to_string()),
        Just("steps:\n  - { name: a, sql: a.sql }\n".to_string()),
        Just("outputs: { a: { path: \"{warehouse}/a\" } }\n".to_string()),
        Just("&x [1, *x]\n".to_string()),
        Just("!!binary aGk=\n".to_string()),
        Just("? [a]\n: b\n".to_string()),
        Just("\t".to_string()),
        "[a-z:{}\\[\\],&*!|>\"'# \n-]{0,10}",
        any::<String>(),
    ];
    proptest::collection::vec(token, 0..12).prop_map(|t| t.concat())
}

/// Loads `text` as a job file: fine, or problems each at a line and column of
/// the file (or of a SQL file it names).
fn check_job_text(text: &str) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("job.yaml");
    std::fs::write(&path, text).unwrap();
    let lines = text.split('\n').count() as u32;
    if let Err(problems) = job::load_with_base(&path, &repo_root()) {
        prop_assert!(!problems.0.is_empty());
        for p in &problems.0 {
            prop_assert!(p.line >= 1 && p.column >= 1, "{p}");
            if p.file == path {
                prop_assert!(p.line <= lines + 1, "{p} (the file has {lines} lines)");
                let shown = p.to_string();
                let place = format!("{}:{}:{}: ", path.display(), p.line, p.column);
                prop_assert!(shown.starts_with(&place), "{shown}");
            }
        }
    }
    Ok(())
}

#[test]
fn a_job_file_nested_a_hundred_thousand_deep_or_an_alias_bomb_is_a_located_error() {
    let deep = format!("name: {}1{}\n", "[".repeat(100_000), "]".repeat(100_000));
    let mut laughs = String::from("a0: &a0 [\"lol\"]\n");
    for i in 1..30 {
        let prev = i - 1;
        let refs = vec![format!("*a{prev}"); 10].join(", ");
        laughs.push_str(&format!("a{i}: &a{i} [{refs}]\n"));
    }
    for text in [deep, laughs] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("job.yaml");
        std::fs::write(&path, &text).unwrap();
        let problems = job::load_with_base(&path, &repo_root()).unwrap_err();
        let first = problems.0[0].to_string();
        assert!(
            first.starts_with(&format!("{}:", path.display())),
            "{first}"
        );
    }
}
