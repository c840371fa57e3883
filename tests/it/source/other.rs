//! NDJSON, Parquet, optional sources and sink errors.

use super::*;

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
        spec: Arc::new(spec),
        store: fixtures(),
        root: Path::from("raw"),
        location: Path::from("raw/transactions"),
        url: "memory:///raw/transactions".into(),
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
    input: SourceInput,
    a: &'static mut CollectSink,
    b: &'static mut CollectSink,
) {
    fn assert_send<T: Send>(_: T) {}
    assert_send(read_source(input, a, b));
}
