use super::*;
use crate::job::ContractSchema;
use crate::source::rows::FileContext;
use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::Int64Type;

/// Hands out one byte per read: the worst case for BOM detection and for
/// keeping the raw window in step with the parser.
struct OneByte<'a>(&'a [u8]);

impl Read for OneByte<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        match (self.0.split_first(), out.is_empty()) {
            (Some((b, rest)), false) => {
                out[0] = *b;
                self.0 = rest;
                Ok(1)
            }
            _ => Ok(0),
        }
    }
}

fn fx_rows(limits: SourceLimits) -> FileRows {
    fx_rows_of(limits, None)
}

fn fx_rows_of(
    limits: SourceLimits,
    only_lines: Option<std::sync::Arc<hashbrown::HashSet<i64>>>,
) -> FileRows {
    let ctx = FileContext {
        extract: "fx_rates".into(),
        file: "reference/fx.csv".into(),
        schema: ContractSchema::FxRates,
        currencies: None,
        batch_rows: 100,
        limits,
        only_lines,
    };
    FileRows::new(ctx).unwrap()
}

fn run(bytes: &[u8]) -> Result<(Vec<Output>, FileStats), SourceError> {
    run_limited(bytes, SourceLimits::default())
}

fn run_limited(
    bytes: &[u8],
    limits: SourceLimits,
) -> Result<(Vec<Output>, FileStats), SourceError> {
    let mut out = Vec::new();
    let stats = read_csv(
        OneByte(bytes),
        fx_rows(limits),
        "raw/reference/fx.csv",
        &mut |o| {
            out.push(o);
            Ok(())
        },
    )?;
    Ok((out, stats))
}

#[test]
fn byte_by_byte_reading_keeps_lines_raw_text_and_bom_handling() {
    let file = "\u{feff}currency,rate_to_reporting\r\n\"E\r\nUR\",1\r\n\r\nUSD,-1\r\nGBP\r\n";
    let (out, stats) = run(file.as_bytes()).unwrap();
    assert_eq!((stats.rows_accepted, stats.rows_rejected), (1, 2));
    for o in out {
        match o {
            Output::Accepted(b) => {
                assert_eq!(b.column(0).as_string::<i32>().value(0), "E\r\nUR");
                assert_eq!(b.column(3).as_primitive::<Int64Type>().value(0), 2);
            }
            Output::Rejected(b) => {
                let lines = b.column(2).as_primitive::<Int64Type>();
                let raw = b.column(4).as_string::<i32>();
                assert_eq!((lines.value(0), raw.value(0)), (5, "USD,-1"));
                assert_eq!((lines.value(1), raw.value(1)), (6, "GBP"));
                assert_eq!(
                    b.column(3).as_string::<i32>().value(1),
                    "wrong_column_count"
                );
                assert!(!raw.is_null(1));
            }
        }
    }
}

#[test]
fn invalid_utf8_in_a_contract_field_names_file_and_line() {
    let err = run(b"currency,rate_to_reporting\nEUR,1\n\xff\xfe,2\n").unwrap_err();
    match err {
        SourceError::Malformed { file, line, .. } => {
            assert_eq!((file.as_str(), line), ("raw/reference/fx.csv", 3));
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn an_empty_file_has_no_rows_and_a_header_only_file_neither() {
    assert_eq!(run(b"").unwrap().1.rows_read, 0);
    assert_eq!(run(b"currency,rate_to_reporting\n").unwrap().1.rows_read, 0);
}

#[test]
fn a_missing_header_column_is_an_error() {
    match run(b"currency,rate\nEUR,1\n").unwrap_err() {
        SourceError::MissingColumn { column, .. } => assert_eq!(column, "rate_to_reporting"),
        other => panic!("unexpected {other:?}"),
    }
}

/// (line, reason, raw) of every reject.
fn rejected(out: &[Output]) -> Vec<(i64, String, String)> {
    let mut all = Vec::new();
    for o in out {
        if let Output::Rejected(b) = o {
            let lines = b.column(2).as_primitive::<Int64Type>();
            let reasons = b.column(3).as_string::<i32>();
            let raw = b.column(4).as_string::<i32>();
            for i in 0..b.num_rows() {
                let row = (lines.value(i), reasons.value(i), raw.value(i));
                all.push((row.0, row.1.to_string(), row.2.to_string()));
            }
        }
    }
    all
}

fn small() -> SourceLimits {
    // The header `currency,rate_to_reporting` (26 bytes) is within them.
    SourceLimits {
        max_field_bytes: 17,
        max_record_bytes: 30,
        max_decompressed_bytes: u64::MAX,
        max_columns: 3,
    }
}

#[test]
fn rows_over_the_limits_are_rejected_with_a_prefix_and_reading_goes_on() {
    let long_field = format!("\"{}\",1", "x".repeat(18));
    // More columns than the header too: the size reason wins, however the
    // bytes arrive (here one at a time, so the columns pass first).
    let long_record = format!("EUR,1,{}", "y,".repeat(13));
    let file = format!(
        "currency,rate_to_reporting\n{long_field}\nGBP,1\n{long_record}\n\"quoted\n{}\",1\nUSD,2\n",
        "z".repeat(30)
    );
    let (out, stats) = run_limited(file.as_bytes(), small()).unwrap();
    assert_eq!((stats.rows_read, stats.rows_accepted), (5, 2));
    let got = rejected(&out);
    assert_eq!(got[0], (2, "field_too_large".into(), long_field.clone()));
    assert_eq!(got[1].0, 4);
    assert_eq!(got[1].1, "record_too_large");
    // A quoted line break in an oversize record still counts as a line.
    assert_eq!((got[2].0, got[2].1.as_str()), (5, "field_too_large"));
    // USD on line 7: the physical lines after the oversize rows are right.
    let Output::Accepted(b) = &out[0] else {
        panic!("accepted rows first")
    };
    let lines = b.column(3).as_primitive::<Int64Type>();
    assert_eq!((b.num_rows(), lines.value(0), lines.value(1)), (2, 3, 7));
}

#[test]
fn a_header_over_a_limit_is_a_file_error_naming_the_limit() {
    let wide = "currency,rate_to_reporting,a,b\nEUR,1,2,3\n";
    let err = run_limited(wide.as_bytes(), small()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "raw/reference/fx.csv:1: header has more than 3 columns, the source's limits.max_columns"
    );
    let long = "\n\ncurrency,rate_to_reporting,abcd\n";
    let err = run_limited(long.as_bytes(), small()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "raw/reference/fx.csv:3: header is longer than 30 bytes, the source's limits.max_record_bytes"
    );
}

#[test]
fn a_huge_line_is_read_in_bounded_memory() {
    // 64 MiB in one field, streamed: the reader never holds more than the limits.
    struct Field(u64);
    impl Read for Field {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            let n = (out.len() as u64).min(self.0) as usize;
            out[..n].fill(b'x');
            self.0 -= n as u64;
            Ok(n)
        }
    }
    let file = io::Cursor::new(&b"currency,rate_to_reporting\nEUR,1\n"[..])
        .chain(Field(64 << 20))
        .chain(&b",1\nGBP,1\n"[..]);
    let mut records = RecordReader::new(file, SourceLimits::default());
    let mut seen = Vec::new();
    while let Some(r) = records.next(false).unwrap() {
        seen.push((r.line, r.overflow, records.raw.len()));
        assert!(records.out.len() <= 8 << 20 && records.raw.capacity() <= 9 << 20);
    }
    assert_eq!(seen[2], (3, Some(Overflow::Field), RAW_PREFIX_BYTES));
    assert_eq!(seen[3], (4, None, 5));
}

/// (line, currency) of every accepted row and (line, reason, raw) of every
/// reject, read whole from memory (as a fetched file is) through `only_lines`.
fn read_lines(bytes: &[u8], only: Option<&[i64]>) -> Vec<(i64, String, String)> {
    let only = only.map(|l| std::sync::Arc::new(l.iter().copied().collect()));
    let mut out = Vec::new();
    let rows = fx_rows_of(SourceLimits::default(), only);
    read_csv(io::Cursor::new(bytes), rows, "fx.csv", &mut |o| {
        out.push(o);
        Ok(())
    })
    .unwrap();
    let mut all = rejected(&out);
    for o in &out {
        if let Output::Accepted(b) = o {
            let (currency, line) = (b.column(0).as_string::<i32>(), b.column(3));
            for i in 0..b.num_rows() {
                let line = line.as_primitive::<Int64Type>().value(i);
                all.push((line, "accepted".into(), currency.value(i).to_string()));
            }
        }
    }
    all.sort();
    all
}

#[test]
fn reading_some_lines_gives_exactly_those_records_of_a_whole_read() {
    // Plain records, a quoted one over two lines (and a plain-looking line
    // inside it), a lone `\r` ending a record mid-line, blank lines, CRLF, a
    // quote inside an unquoted field and rejects.
    let file = "currency,rate_to_reporting\n\
        EUR,1\n\
        \"G\nBP\",2\n\
        USD,3\r\n\
        \n\
        JPY,4\rCHF,5\n\
        SEK\n\
        \r\n\
        NO\"K,6\n\
        DKK,7";
    let whole = read_lines(file.as_bytes(), None);
    let lines: Vec<i64> = whole.iter().map(|r| r.0).collect();
    // Each record alone, every second one, and lines where no record starts.
    let mut picks: Vec<Vec<i64>> = lines.iter().map(|l| vec![*l]).collect();
    picks.push(lines.iter().copied().step_by(2).collect());
    picks.push(vec![4, 8, 99]);
    for pick in picks {
        let expected: Vec<_> = (whole.iter())
            .filter(|r| pick.contains(&r.0))
            .cloned()
            .collect();
        assert_eq!(
            read_lines(file.as_bytes(), Some(&pick)),
            expected,
            "lines {pick:?}"
        );
    }
    // The records and lines a reader of the file sees (worked out by hand).
    let seen: Vec<(i64, &str)> = whole.iter().map(|r| (r.0, r.2.as_str())).collect();
    assert_eq!(
        seen,
        [
            (2, "EUR"),
            (3, "G\nBP"),
            (5, "USD"),
            (7, "CHF"),
            (7, "JPY"),
            (8, "SEK"),
            (10, "NO\"K"),
            (11, "DKK")
        ]
    );
}
