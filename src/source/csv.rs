//! CSV files: header mapping, record parsing and each record's raw text and line.
//!
//! The `csv` crate parses (quotes, doubled quotes, line breaks in fields, CRLF); a
//! tee under its reader keeps the bytes of the current record so that a reject
//! carries the record's exact original text and the physical line it starts on
//! (a quoted line break makes physical lines and record numbers differ). Only the
//! read-ahead window plus the current record is ever held.

use std::cell::RefCell;
use std::io::{self, Read};
use std::rc::Rc;

use csv::ByteRecord;

use super::error::SourceError;
use super::reject::Reason;
use super::rows::{FileRows, FileStats, Output};

/// Bytes read from the file but not yet attributed to a record.
struct RawWindow {
    buf: Vec<u8>,
    /// Byte offset (in the decompressed file) of `buf[0]`.
    start: u64,
    /// Physical line (1-based) at offset `start`.
    line: u64,
}

/// Where one record sits in the window.
struct RecordSpan {
    /// Physical line the record starts on.
    line: u64,
    /// The record's own bytes: without the blank lines before it and its line break.
    text: std::ops::Range<usize>,
    /// Bytes to drop from the window once the record is handled.
    consumed: usize,
    /// Physical line at the end of the consumed bytes.
    next_line: u64,
}

impl RawWindow {
    /// The record that the parser consumed up to absolute offset `end`. The bytes
    /// since the previous record may start with the line break left over from it
    /// (the `\n` of a CRLF) and blank lines the parser skipped.
    fn span(&self, end: u64) -> RecordSpan {
        let consumed = usize::try_from(end.saturating_sub(self.start))
            .unwrap_or(usize::MAX)
            .min(self.buf.len());
        let bytes = &self.buf[..consumed];
        let is_break = |b: &u8| *b == b'\r' || *b == b'\n';
        let lead = bytes.iter().take_while(|b| is_break(b)).count();
        let newlines = |s: &[u8]| s.iter().filter(|b| **b == b'\n').count() as u64;
        let mut stop = consumed;
        if stop > lead && bytes[stop - 1] == b'\n' {
            stop -= 1;
        }
        if stop > lead && bytes[stop - 1] == b'\r' {
            stop -= 1;
        }
        RecordSpan {
            line: self.line + newlines(&bytes[..lead]),
            text: lead..stop,
            consumed,
            next_line: self.line + newlines(bytes),
        }
    }

    fn advance(&mut self, span: &RecordSpan) {
        self.buf.drain(..span.consumed);
        self.start += span.consumed as u64;
        self.line = span.next_line;
    }
}

/// Copies everything read into the shared window.
struct Tee<R> {
    inner: R,
    window: Rc<RefCell<RawWindow>>,
}

impl<R: Read> Read for Tee<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(out)?;
        self.window.borrow_mut().buf.extend_from_slice(&out[..n]);
        Ok(n)
    }
}

fn read_error(path: &str, e: csv::Error) -> SourceError {
    let source = match e.into_kind() {
        csv::ErrorKind::Io(io) => io,
        other => io::Error::other(format!("{other:?}")),
    };
    SourceError::Read {
        file: path.to_string(),
        source,
    }
}

/// Reads one decompressed CSV file through `rows`, handing full batches to `emit`.
pub(crate) fn read_csv(
    reader: impl Read,
    mut rows: FileRows,
    path: &str,
    emit: &mut dyn FnMut(Output) -> Result<(), SourceError>,
) -> Result<FileStats, SourceError> {
    let window = Rc::new(RefCell::new(RawWindow {
        buf: Vec::new(),
        start: 0,
        line: 1,
    }));
    let tee = Tee {
        inner: reader,
        window: window.clone(),
    };
    let mut parser = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(tee);
    let mut record = ByteRecord::new();

    // The header is read as an ordinary record so the window stays in step.
    if !parser
        .read_byte_record(&mut record)
        .map_err(|e| read_error(path, e))?
    {
        // A zero-byte file has no header to check and no rows.
        tracing::warn!(file = path, "empty CSV file");
        return finish(rows, emit);
    }
    let span = window.borrow().span(parser.position().byte());
    window.borrow_mut().advance(&span);
    let header = header_names(&record, path, span.line)?;
    let columns = map_columns(&header, &mut rows, path)?;

    loop {
        if !parser
            .read_byte_record(&mut record)
            .map_err(|e| read_error(path, e))?
        {
            break;
        }
        let span = window.borrow().span(parser.position().byte());
        {
            let w = window.borrow();
            let raw = || Some(String::from_utf8_lossy(&w.buf[span.text.clone()]).into_owned());
            let line = i64::try_from(span.line).unwrap_or(i64::MAX);
            if record.len() != header.len() {
                rows.reject(line, Reason::WrongColumnCount, raw().as_deref());
            } else {
                let values = columns
                    .iter()
                    .map(|&i| record.get(i).map(std::str::from_utf8).transpose())
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|_| SourceError::Malformed {
                        file: path.to_string(),
                        line: span.line,
                        message: "field is not valid UTF-8".into(),
                    })?;
                rows.push(&values, line, raw);
            }
        }
        window.borrow_mut().advance(&span);
        while let Some(batch) = rows.take_ready() {
            emit(batch)?;
        }
    }
    finish(rows, emit)
}

fn finish(
    rows: FileRows,
    emit: &mut dyn FnMut(Output) -> Result<(), SourceError>,
) -> Result<FileStats, SourceError> {
    let (rest, stats) = rows.finish();
    for batch in rest {
        emit(batch)?;
    }
    Ok(stats)
}

/// Header names, trimmed, without a byte-order mark.
fn header_names(record: &ByteRecord, path: &str, line: u64) -> Result<Vec<String>, SourceError> {
    record
        .iter()
        .enumerate()
        .map(|(i, field)| {
            let name = std::str::from_utf8(field).map_err(|_| SourceError::Malformed {
                file: path.to_string(),
                line,
                message: "header is not valid UTF-8".into(),
            })?;
            // csv strips a BOM only when its first buffer holds all three bytes.
            let name = if i == 0 {
                name.trim_start_matches('\u{feff}')
            } else {
                name
            };
            Ok(name.trim().to_string())
        })
        .collect()
}

/// For each contract column, its index in the header; extra columns are counted.
fn map_columns(
    header: &[String],
    rows: &mut FileRows,
    path: &str,
) -> Result<Vec<usize>, SourceError> {
    let contract = rows.contract();
    let columns = contract
        .fields
        .iter()
        .map(|f| {
            header
                .iter()
                .position(|h| h == f.name)
                .ok_or_else(|| SourceError::MissingColumn {
                    file: path.to_string(),
                    column: f.name.to_string(),
                })
        })
        .collect::<Result<Vec<_>, _>>()?;
    for name in header {
        if !contract.fields.iter().any(|f| f.name == name) {
            rows.stats.extra_columns.insert(name.clone());
        }
    }
    Ok(columns)
}

#[cfg(test)]
mod tests {
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

    fn fx_rows() -> FileRows {
        let ctx = FileContext {
            extract: "fx_rates".into(),
            file: "reference/fx.csv".into(),
            schema: ContractSchema::FxRates,
            currencies: None,
            batch_rows: 100,
        };
        FileRows::new(ctx).unwrap()
    }

    fn run(bytes: &[u8]) -> Result<(Vec<Output>, FileStats), SourceError> {
        let mut out = Vec::new();
        let stats = read_csv(
            OneByte(bytes),
            fx_rows(),
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

    fn window(text: &[u8], start: u64, line: u64) -> RawWindow {
        RawWindow {
            buf: text.to_vec(),
            start,
            line,
        }
    }

    #[test]
    fn span_skips_leftover_line_break_and_blank_lines() {
        // "\n" left from the previous CRLF, one blank line, then the record.
        let w = window(b"\n\r\na,b\r\nnext", 10, 3);
        let s = w.span(10 + 8);
        assert_eq!(s.line, 5);
        assert_eq!(&w.buf[s.text.clone()], b"a,b");
        assert_eq!(s.consumed, 8);
        assert_eq!(s.next_line, 6);
    }

    #[test]
    fn span_keeps_line_breaks_inside_the_record() {
        let w = window(b"1,\"two\nlines\"\n2,x\n", 0, 2);
        let s = w.span(14);
        assert_eq!(s.line, 2);
        assert_eq!(&w.buf[s.text.clone()], b"1,\"two\nlines\"");
        assert_eq!(s.next_line, 4);
    }
}
