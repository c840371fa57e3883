//! CSV extracts: every reject reason, partitions, CRLF + BOM, extra and missing columns.

use super::*;

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

    let mut files = text(&r.accepted, "_file");
    files.sort();
    assert_eq!(
        files,
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
