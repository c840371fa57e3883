//! The source layer against hand-made raw extracts in `tests/fixtures/raw/`
//! (plain text of the compressed ones in `tests/fixtures/make_raw.py`). Every
//! expected file, line and reason below was worked out by reading the fixtures.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use c360::job::{ContractSchema, Format, RejectBudget, SourceSpec};
use c360::source::{
    BatchSink, CollectSink, SourceError, SourceInput, SourceReport, read_source, rejects_schema,
    typed_schema,
};
use chrono::NaiveDate;
use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::compute::concat_batches;
use datafusion::arrow::datatypes::{
    Date32Type, Decimal128Type, Int64Type, SchemaRef, TimestampMicrosecondType,
};
use futures::future::BoxFuture;
use object_store::ObjectStore;
use object_store::local::LocalFileSystem;
use object_store::path::Path;

use crate::util::repo_root;

fn spec(name: &str, format: Format, schema: ContractSchema, partitioned: bool) -> SourceSpec {
    SourceSpec {
        name: name.to_string(),
        path: format!("{{raw}}/{name}"),
        format,
        schema,
        partitions: if partitioned {
            vec!["dt".to_string()]
        } else {
            Vec::new()
        },
        rejects: RejectBudget::default(),
        currencies: None,
        optional: false,
    }
}

fn fixtures() -> Arc<dyn ObjectStore> {
    let dir = repo_root().join("tests/fixtures");
    Arc::new(LocalFileSystem::new_with_prefix(dir).expect("fixtures folder exists"))
}

fn day(d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 1, d).expect("valid date")
}

struct Read {
    result: Result<SourceReport, SourceError>,
    accepted: RecordBatch,
    rejects: RecordBatch,
    accepted_batches: usize,
}

async fn read_with(
    store: Arc<dyn ObjectStore>,
    spec: &SourceSpec,
    location: &str,
    date: NaiveDate,
    currencies: Option<&[&str]>,
    batch_rows: usize,
) -> Read {
    let input = SourceInput {
        spec,
        store,
        root: Path::from("raw"),
        location: Path::from(location),
        date,
        currencies: currencies.map(|c| c.iter().map(|s| s.to_string()).collect::<HashSet<_>>()),
        batch_rows,
    };
    let mut accepted = CollectSink::default();
    let mut rejects = CollectSink::default();
    let result = read_source(input, &mut accepted, &mut rejects).await;
    let merge = |schema: SchemaRef, batches: &[RecordBatch]| {
        concat_batches(&schema, batches).expect("batches share the schema")
    };
    Read {
        result,
        accepted: merge(typed_schema(spec.schema), &accepted.batches),
        rejects: merge(rejects_schema(), &rejects.batches),
        accepted_batches: accepted.batches.len(),
    }
}

async fn read(
    spec: &SourceSpec,
    location: &str,
    date: NaiveDate,
    currencies: Option<&[&str]>,
) -> Read {
    read_with(fixtures(), spec, location, date, currencies, 8192).await
}

fn text(batch: &RecordBatch, column: &str) -> Vec<Option<String>> {
    let col = batch.column_by_name(column).expect("column exists");
    let col = col.as_string::<i32>();
    (0..col.len())
        .map(|i| col.is_valid(i).then(|| col.value(i).to_string()))
        .collect()
}

fn ints(batch: &RecordBatch, column: &str) -> Vec<i64> {
    let col = batch.column_by_name(column).expect("column exists");
    col.as_primitive::<Int64Type>().values().to_vec()
}

/// (file, line, reason) of every reject, in the order written.
fn rejects(r: &Read) -> Vec<(String, i64, String)> {
    let files = text(&r.rejects, "file");
    let lines = ints(&r.rejects, "line");
    let reasons = text(&r.rejects, "reason");
    files
        .into_iter()
        .zip(lines)
        .zip(reasons)
        .map(|((f, l), reason)| (f.unwrap_or_default(), l, reason.unwrap_or_default()))
        .collect()
}

fn raw_at(r: &Read, line: i64) -> Option<String> {
    let lines = ints(&r.rejects, "line");
    let i = lines.iter().position(|l| *l == line)?;
    text(&r.rejects, "raw")[i].clone()
}

fn owned(rows: &[(&str, i64, &str)]) -> Vec<(String, i64, String)> {
    rows.iter()
        .map(|(f, l, r)| (f.to_string(), *l, r.to_string()))
        .collect()
}

fn counts(pairs: &[(&str, u64)]) -> BTreeMap<String, u64> {
    pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions_reject_every_reason_at_its_file_and_line() {
    let spec = spec(
        "transactions",
        Format::Csv,
        ContractSchema::Transactions,
        true,
    );
    // batch_rows 2 forces several batches per file.
    let r = read_with(
        fixtures(),
        &spec,
        "raw/transactions",
        day(5),
        Some(&["EUR", "GBP"]),
        2,
    )
    .await;
    let report = r.result.as_ref().expect("transactions read");

    let p1 = "transactions/dt=2026-01-01/part-1.csv";
    let p2 = "transactions/dt=2026-01-02/part-2.csv.gz";
    let p3 = "transactions/dt=2026-01-03/part-3.csv.zst";
    assert_eq!(
        rejects(&r),
        owned(&[
            // T2's category holds a line break, so T3 starts on line 5 (record 4).
            (p1, 5, "wrong_column_count"),
            (p1, 6, "missing_required"),
            (p1, 7, "bad_timestamp"),
            (p1, 8, "bad_number"),
            (p1, 9, "negative_quantity"),
            (p1, 10, "negative_amount"),
            (p1, 11, "unknown_currency"),
            (p1, 12, "bad_enum"),
            (p1, 13, "no_customer_identifier"),
            // bad_timestamp, bad_enum, negative_quantity, unknown_currency: timestamp wins.
            (p1, 14, "bad_timestamp"),
            // 9.999 has three decimal places.
            (p1, 15, "bad_number"),
            (p2, 3, "bad_number"),
            (p2, 4, "bad_enum"),
            // Line 2 is blank: physical lines still count it.
            (p3, 4, "wrong_column_count"),
        ])
    );
    assert_eq!(
        raw_at(&r, 15).as_deref(),
        Some(
            r#""T13","1","crm","C11","","2026-01-01T12:00:00Z","online","P1","Robert ""Bob""",1,"9.999",,4.00,EUR,completed"#
        )
    );
    assert_eq!(
        raw_at(&r, 5).as_deref(),
        Some("T3,1,crm,C2,,2026-01-01T12:00:00Z,online,P1,toys,1,9.99,,4.00,EUR")
    );
    assert!(
        text(&r.rejects, "extract")
            .iter()
            .all(|e| e.as_deref() == Some("transactions"))
    );

    assert_eq!(
        text(&r.accepted, "_file"),
        vec![
            Some(p1.into()),
            Some(p1.into()),
            Some(p2.into()),
            Some(p3.into())
        ]
    );
    assert_eq!(ints(&r.accepted, "_line"), vec![2, 3, 2, 3]);
    assert_eq!(
        text(&r.accepted, "transaction_id"),
        vec![
            Some("T1".into()),
            Some("T2".into()),
            Some("T20".into()),
            Some("T30".into())
        ]
    );
    assert_eq!(
        text(&r.accepted, "category")[1].as_deref(),
        Some("Garden\ntools")
    );
    assert_eq!(
        text(&r.accepted, "category")[0].as_deref(),
        Some("Toys, games")
    );
    // "eur" is upper-cased; an empty email is NULL.
    assert_eq!(text(&r.accepted, "currency")[0].as_deref(), Some("EUR"));
    assert_eq!(text(&r.accepted, "email")[0], None);
    let price = r.accepted.column_by_name("unit_price").expect("unit_price");
    let price = price.as_primitive::<Decimal128Type>();
    assert_eq!(
        (
            price.value(0),
            price.value(1),
            price.value(2),
            price.value(3)
        ),
        (999, 500, 350, 125)
    );
    let ts = r.accepted.column_by_name("order_ts").expect("order_ts");
    // T2: 2026-01-01T11:00:00+01:00 = 2026-01-01T10:00:00Z = 1767261600 s.
    assert_eq!(
        ts.as_primitive::<TimestampMicrosecondType>().value(1),
        1_767_261_600_000_000
    );
    assert_eq!(ints(&r.accepted, "quantity"), vec![2, 1, 1, 4]);
    assert!(r.accepted_batches >= 3, "one batch per file at least");

    assert_eq!(report.files, 3);
    assert_eq!(report.read_files, vec![p1, p2, p3]);
    assert_eq!(report.partitions, vec![day(1), day(2), day(3)]);
    assert_eq!(
        (report.rows_read, report.rows_accepted, report.rows_rejected),
        (18, 4, 14)
    );
    assert_eq!(
        report.rejects_by_reason,
        counts(&[
            ("bad_enum", 2),
            ("bad_number", 3),
            ("bad_timestamp", 2),
            ("missing_required", 1),
            ("negative_amount", 1),
            ("negative_quantity", 1),
            ("no_customer_identifier", 1),
            ("unknown_currency", 1),
            ("wrong_column_count", 2),
        ])
    );
    let mut skipped = report.skipped_files.clone();
    skipped.sort();
    assert_eq!(
        skipped,
        vec!["transactions/dt=2026-01-01/_SUCCESS", "transactions/notes"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitions_after_the_logical_date_are_not_read() {
    let spec = spec(
        "transactions",
        Format::Csv,
        ContractSchema::Transactions,
        true,
    );
    let r = read(&spec, "raw/transactions", day(1), Some(&["EUR", "GBP"])).await;
    let report = r.result.expect("read");
    assert_eq!(
        report.read_files,
        vec!["transactions/dt=2026-01-01/part-1.csv"]
    );
    assert_eq!(report.rows_read, 13);

    // On 2026-01-09 the late partition is read too: its only row has status `lost`.
    let r = read(&spec, "raw/transactions", day(9), Some(&["EUR", "GBP"])).await;
    let report = r.result.as_ref().expect("read");
    assert_eq!(report.files, 4);
    assert_eq!(
        rejects(&r).last().cloned(),
        Some((
            "transactions/dt=2026-01-09/part-9.csv".to_string(),
            2,
            "bad_enum".to_string()
        ))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn profiles_with_crlf_bom_and_an_extra_column() {
    let spec = spec("profiles", Format::Csv, ContractSchema::Profiles, true);
    let r = read(&spec, "raw/profiles", day(1), None).await;
    let report = r.result.as_ref().expect("profiles read");
    let f = "profiles/dt=2026-01-01/profiles.csv";
    assert_eq!(
        rejects(&r),
        owned(&[
            (f, 4, "bad_date"),
            (f, 5, "bad_bool"),
            (f, 6, "bad_enum"),
            (f, 7, "bad_timestamp"),
            (f, 8, "missing_required"),
        ])
    );
    // The raw text keeps the original record but not its CRLF.
    assert_eq!(
        raw_at(&r, 5).as_deref(),
        Some("pos,P1,,020 7946 0958,Cy,Lee,,Leeds,LS1,GB,business,,yes,,,2026-01-01T09:00:00Z")
    );
    assert_eq!(report.extra_columns, counts(&[("loyalty_tier", 1)]));
    assert_eq!((report.rows_read, report.rows_accepted), (7, 2));

    // The BOM did not end up in the first column name: source_system was found and read.
    assert_eq!(
        text(&r.accepted, "source_system"),
        vec![Some("crm".into()), Some("crm".into())]
    );
    assert_eq!(ints(&r.accepted, "_line"), vec![2, 9]);
    assert_eq!(
        text(&r.accepted, "email")[0].as_deref(),
        Some("Ann.Smith@Example.COM")
    );
    assert_eq!(
        text(&r.accepted, "last_name")[0].as_deref(),
        Some("Smith, Jr.")
    );
    // The quoted line break inside a CRLF file keeps its CRLF.
    assert_eq!(
        text(&r.accepted, "postal_code")[0].as_deref(),
        Some("1 High St\r\nFlat 2")
    );
    let birth = r.accepted.column_by_name("birth_date").expect("birth_date");
    // 1980-02-29 is 3711 days after 1970-01-01 (Python's datetime.date arithmetic).
    assert_eq!(birth.as_primitive::<Date32Type>().value(0), 3711);
    let opt_in = r
        .accepted
        .column_by_name("email_opt_in")
        .expect("email_opt_in");
    assert!(opt_in.as_boolean().value(0));
    assert!(
        r.accepted
            .column_by_name("sms_opt_in")
            .expect("sms_opt_in")
            .is_null(0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_header_missing_a_contract_column_is_an_error() {
    let spec = spec("profiles", Format::Csv, ContractSchema::Profiles, true);
    let r = read(&spec, "raw/broken/profiles", day(1), None).await;
    match r.result {
        Err(SourceError::MissingColumn { file, column }) => {
            assert_eq!(column, "updated_at");
            assert!(
                file.ends_with("broken/profiles/dt=2026-01-01/p.csv"),
                "{file}"
            );
        }
        other => panic!("expected MissingColumn, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ndjson_broken_lines_and_unknown_fields() {
    let spec = spec(
        "communications",
        Format::Ndjson,
        ContractSchema::Communications,
        true,
    );
    let r = read(&spec, "raw/communications", day(1), None).await;
    let report = r.result.as_ref().expect("communications read");
    let f = "communications/dt=2026-01-01/events.ndjson";
    assert_eq!(
        rejects(&r),
        owned(&[
            (f, 2, "broken_json"),
            // Line 3 is blank: skipped, not a row.
            (f, 4, "broken_json"),
            (f, 5, "bad_enum"),
            (f, 6, "missing_required"),
            (f, 7, "bad_number"),
            (f, 8, "bad_timestamp"),
        ])
    );
    assert_eq!(raw_at(&r, 4).as_deref(), Some(r#"["E3"]"#));
    assert_eq!(
        (report.rows_read, report.rows_accepted, report.rows_rejected),
        (8, 2, 6)
    );
    assert_eq!(report.unknown_fields, 3);
    assert_eq!(
        report.extra_columns,
        counts(&[("agent", 1), ("device", 1), ("queue", 1)])
    );
    assert_eq!(
        text(&r.accepted, "event_id"),
        vec![Some("E1".into()), Some("E8".into())]
    );
    assert_eq!(ints(&r.accepted, "_line"), vec![1, 9]);
    let cost = r.accepted.column_by_name("cost").expect("cost");
    let cost = cost.as_primitive::<Decimal128Type>();
    assert_eq!((cost.value(0), cost.value(1)), (5, 200));
    let ts = r.accepted.column_by_name("event_ts").expect("event_ts");
    // 2026-01-01T23:59:59-05:00 = 2026-01-02T04:59:59Z = 1767329999 s.
    assert_eq!(
        ts.as_primitive::<TimestampMicrosecondType>().value(1),
        1_767_329_999_000_000
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fx_rates_from_one_unpartitioned_file() {
    let spec = spec("fx_rates", Format::Csv, ContractSchema::FxRates, false);
    let r = read(&spec, "raw/reference/fx_rates.csv", day(1), None).await;
    let report = r.result.as_ref().expect("fx read");
    let f = "reference/fx_rates.csv";
    assert_eq!(
        rejects(&r),
        owned(&[(f, 4, "bad_number"), (f, 6, "missing_required")])
    );
    assert_eq!(
        text(&r.accepted, "currency"),
        vec![Some("EUR".into()), Some("GBP".into()), Some("JPY".into())]
    );
    let rate = r
        .accepted
        .column_by_name("rate_to_reporting")
        .expect("rate");
    let rate = rate.as_primitive::<Decimal128Type>();
    assert_eq!(
        rate.values().to_vec(),
        vec![100_000_000, 115_000_000, 612_345]
    );
    assert_eq!(report.partitions, Vec::<NaiveDate>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_location_is_empty_only_when_optional() {
    let mut spec = spec(
        "suppressions",
        Format::Csv,
        ContractSchema::Suppressions,
        true,
    );
    let r = read(&spec, "raw/suppressions", day(1), None).await;
    match r.result {
        Err(SourceError::NoFiles { extract, .. }) => assert_eq!(extract, "suppressions"),
        other => panic!("expected NoFiles, got {other:?}"),
    }
    spec.optional = true;
    let r = read(&spec, "raw/suppressions", day(1), None).await;
    let report = r.result.expect("optional source");
    assert_eq!((report.files, report.rows_read), (0, 0));
    assert_eq!(r.accepted.num_rows(), 0);
}

/// A sink that refuses everything.
struct FailingSink;

impl BatchSink for FailingSink {
    fn write(&mut self, _batch: RecordBatch) -> BoxFuture<'_, Result<(), SourceError>> {
        Box::pin(async { Err(SourceError::Sink("disk full".into())) })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sink_error_stops_the_read() {
    let spec = spec(
        "transactions",
        Format::Csv,
        ContractSchema::Transactions,
        true,
    );
    let input = SourceInput {
        spec: &spec,
        store: fixtures(),
        root: Path::from("raw"),
        location: Path::from("raw/transactions"),
        date: day(5),
        currencies: None,
        batch_rows: 1,
    };
    let mut rejects = CollectSink::default();
    let result = read_source(input, &mut FailingSink, &mut rejects).await;
    assert!(matches!(result, Err(SourceError::Sink(_))), "{result:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tiny_parquet_file_follows_the_same_rules() {
    use datafusion::arrow::array::{
        ArrayRef, Decimal128Array, Float64Array, Int32Array, Int64Array, StringArray,
        TimestampMicrosecondArray,
    };
    use datafusion::parquet::arrow::ArrowWriter;

    let dir = tempfile::tempdir().expect("tempdir");
    let part = dir.path().join("raw/transactions/dt=2026-01-04");
    std::fs::create_dir_all(&part).expect("mkdir");
    let s = |v: [&str; 3]| Arc::new(StringArray::from(v.to_vec())) as ArrayRef;
    // 2026-01-04T12:00:00Z = 1767528000 s.
    let ts = TimestampMicrosecondArray::from(vec![1_767_528_000_000_000; 3]).with_timezone("UTC");
    let money = |v: Vec<Option<i128>>| {
        Arc::new(
            Decimal128Array::from(v)
                .with_precision_and_scale(12, 2)
                .expect("decimal"),
        ) as ArrayRef
    };
    let batch = RecordBatch::try_from_iter(vec![
        ("transaction_id", s(["P1", "P2", "P3"])),
        (
            "line_no",
            Arc::new(Int64Array::from(vec![1, 1, 1])) as ArrayRef,
        ),
        ("source_system", s(["pos", "pos", "pos"])),
        ("source_customer_id", s(["S1", "S2", "S3"])),
        (
            "email",
            Arc::new(StringArray::from(vec![None::<&str>; 3])) as ArrayRef,
        ),
        ("order_ts", Arc::new(ts) as ArrayRef),
        ("channel", s(["store", "store", "store"])),
        ("product_id", s(["X", "X", "X"])),
        ("category", s(["c", "c", "c"])),
        (
            "quantity",
            Arc::new(Int32Array::from(vec![2, 0, 1])) as ArrayRef,
        ),
        (
            "unit_price",
            money(vec![Some(1000), Some(1000), Some(1000)]),
        ),
        ("discount", money(vec![None, None, None])),
        (
            "unit_cost",
            Arc::new(Float64Array::from(vec![4.5, 4.5, 4.5])) as ArrayRef,
        ),
        ("currency", s(["EUR", "EUR", "XYZ"])),
        ("status", s(["completed", "completed", "completed"])),
        ("store_id", s(["1", "2", "3"])),
    ])
    .expect("batch");
    let file = std::fs::File::create(part.join("part-0.parquet")).expect("create");
    let mut writer = ArrowWriter::try_new(file, batch.schema(), None).expect("writer");
    writer.write(&batch).expect("write");
    writer.close().expect("close");

    let store: Arc<dyn ObjectStore> =
        Arc::new(LocalFileSystem::new_with_prefix(dir.path()).expect("store"));
    let spec = spec(
        "transactions",
        Format::Parquet,
        ContractSchema::Transactions,
        true,
    );
    let r = read_with(
        store,
        &spec,
        "raw/transactions",
        day(5),
        Some(&["EUR"]),
        8192,
    )
    .await;
    let report = r.result.as_ref().expect("parquet read");
    let f = "transactions/dt=2026-01-04/part-0.parquet";
    assert_eq!(
        rejects(&r),
        owned(&[(f, 2, "negative_quantity"), (f, 3, "unknown_currency")])
    );
    let raw: serde_json::Value =
        serde_json::from_str(&raw_at(&r, 3).expect("raw rendering")).expect("raw is JSON");
    assert_eq!(raw["currency"], "XYZ");
    assert_eq!(raw["email"], serde_json::Value::Null);
    assert_eq!(report.extra_columns, counts(&[("store_id", 1)]));
    assert_eq!(ints(&r.accepted, "_line"), vec![1]);
    let cost = r.accepted.column_by_name("unit_cost").expect("unit_cost");
    assert_eq!(cost.as_primitive::<Decimal128Type>().value(0), 450);
    let ts = r.accepted.column_by_name("order_ts").expect("order_ts");
    assert_eq!(
        ts.as_primitive::<TimestampMicrosecondType>().value(0),
        1_767_528_000_000_000
    );
}

/// The run module may spawn source reads on the runtime: the future must be `Send`.
#[allow(dead_code)]
fn read_source_future_is_send(
    input: SourceInput<'static>,
    a: &'static mut CollectSink,
    b: &'static mut CollectSink,
) {
    fn assert_send<T: Send>(_: T) {}
    assert_send(read_source(input, a, b));
}
