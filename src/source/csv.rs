//! CSV files: header mapping, record parsing and each record's raw text and line.
//!
//! `csv_core` (the state machine under the `csv` crate) parses: quotes, doubled
//! quotes, line breaks in fields, CRLF, blank lines, a byte-order mark. It writes
//! into buffers this reader owns ([`RecordReader`]), so their size is ours to
//! bound: the consumed bytes of the current record are kept as its raw text (a
//! reject carries the record's exact original text and the physical line it
//! starts on; a quoted line break makes physical lines and record numbers
//! differ), and a record or field over the source's `limits` stops being kept
//! and is read past to its end: a 1 GB line costs a few MiB, not 1 GB. Such a
//! row is rejected `record_too_large` / `field_too_large` with a prefix of its
//! text; a header over a limit (or wider than `max_columns`) is a file error.

use std::io::{self, Read};

use super::decode::read_error;
use super::error::{SourceError, human_bytes};
use super::reject::{RAW_PREFIX_BYTES, Reason};
use super::rows::{FileRows, FileStats, Output};
use crate::job::SourceLimits;

/// Why a record stopped being kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Overflow {
    /// More bytes than `max_record_bytes`.
    Record,
    /// A field longer than `max_field_bytes` (after unquoting).
    Field,
    /// More fields than `max_columns`.
    Columns,
}

impl Overflow {
    /// The one that names a record passing several limits: the size limits
    /// first, as rows over them are not parsed further.
    fn first(field: bool, record: bool, columns: bool) -> Option<Self> {
        [
            (field, Self::Field),
            (record, Self::Record),
            (columns, Self::Columns),
        ]
        .into_iter()
        .find_map(|(over, which)| over.then_some(which))
    }
}

/// One record read: where it starts and whether it was kept whole.
#[derive(Debug, Clone, Copy)]
struct RecordInfo {
    /// Physical line (1-based) the record starts on.
    line: u64,
    overflow: Option<Overflow>,
}

/// Reads records with bounded buffers: at most `max_record_bytes` of field
/// bytes and of raw text, and `max_columns + 1` field ends.
struct RecordReader<R> {
    inner: R,
    core: csv_core::Reader,
    input: Box<[u8]>,
    pos: usize,
    len: usize,
    eof: bool,
    /// The current record's fields, unquoted, back to back; `ends[i]` ends field i.
    out: Vec<u8>,
    ends: Vec<usize>,
    nout: usize,
    nend: usize,
    /// The current record's raw text (from its first byte), or a prefix of it.
    raw: Vec<u8>,
    /// Physical line at the input position.
    line: u64,
    max_record: usize,
    max_field: usize,
    max_columns: usize,
}

impl<R: Read> RecordReader<R> {
    fn new(inner: R, limits: SourceLimits) -> Self {
        let size = |n: u64| usize::try_from(n).unwrap_or(usize::MAX);
        Self {
            inner,
            core: csv_core::Reader::new(),
            input: vec![0; 64 * 1024].into_boxed_slice(),
            pos: 0,
            len: 0,
            eof: false,
            out: vec![0; 4096],
            ends: vec![0; 32.min(size(limits.max_columns).saturating_add(1))],
            nout: 0,
            nend: 0,
            raw: Vec::new(),
            line: 1,
            max_record: size(limits.max_record_bytes),
            max_field: size(limits.max_field_bytes),
            max_columns: size(limits.max_columns),
        }
    }

    /// The next record, or `None` at the end of the file. With `fail_fast`, a
    /// record returns as soon as it passes a limit (its rest unread): for the
    /// header, whose overflow ends the file anyway.
    ///
    /// Which limits a record passes does not depend on how the input arrives in
    /// chunks: every field length and the record length are checked, also
    /// while the record's bytes are being read past.
    fn next(&mut self, fail_fast: bool) -> io::Result<Option<RecordInfo>> {
        use csv_core::ReadRecordResult as R;
        self.raw.clear();
        (self.nout, self.nend) = (0, 0);
        let mut started = false;
        let mut start_line = self.line;
        // Record totals: input bytes (after blank lines), output bytes, fields;
        // the end of the last finished field in output bytes (csv_core's `ends`
        // count from the record's start, across calls).
        let (mut record_bytes, mut total_out, mut fields, mut last_end) = (0, 0, 0, 0);
        let (mut field_over, mut record_over, mut columns_over) = (false, false, false);
        loop {
            if self.pos == self.len && !self.eof {
                self.len = loop {
                    match self.inner.read(&mut self.input) {
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        other => break other?,
                    }
                };
                self.pos = 0;
                self.eof = self.len == 0;
            }
            let input = &self.input[self.pos..self.len];
            let (result, nin, nout, nend) = self.core.read_record(
                input,
                &mut self.out[self.nout..],
                &mut self.ends[self.nend..],
            );
            let mut consumed = &input[..nin];
            self.pos += nin;
            self.line += consumed.iter().filter(|b| **b == b'\n').count() as u64;
            if !started {
                // Line breaks before a record are blank lines (or the `\n` of the
                // previous record's CRLF) that the parser skips.
                let lead = consumed
                    .iter()
                    .take_while(|b| matches!(b, b'\r' | b'\n'))
                    .count();
                start_line += consumed[..lead].iter().filter(|b| **b == b'\n').count() as u64;
                consumed = &consumed[lead..];
                started = !consumed.is_empty();
            }
            // A record over a limit keeps the first bytes of its text only, the
            // same however the input is chunked.
            let over = field_over || record_over || columns_over;
            let keep = if over {
                RAW_PREFIX_BYTES
            } else {
                self.max_record
            };
            if self.raw.len() < keep {
                let room = keep - self.raw.len();
                self.raw
                    .extend_from_slice(&consumed[..consumed.len().min(room)]);
            }
            record_bytes += consumed.len();
            // The record's line break comes with its last call and is not text.
            let ends_line = result == R::Record && matches!(consumed.last(), Some(b'\r' | b'\n'));
            let text_bytes = record_bytes - usize::from(ends_line);
            for &end in &self.ends[self.nend..self.nend + nend] {
                field_over |= end.saturating_sub(last_end) > self.max_field;
                last_end = end;
            }
            total_out += nout;
            fields += nend;
            field_over |= total_out.saturating_sub(last_end) > self.max_field;
            record_over |= text_bytes > self.max_record;
            columns_over |= fields > self.max_columns;
            (self.nout, self.nend) = (self.nout + nout, self.nend + nend);
            let over = field_over || record_over || columns_over;
            match result {
                R::InputEmpty => {}
                R::OutputFull if !over && self.out.len() < self.max_record => {
                    let grown = self.out.len().saturating_mul(2).min(self.max_record);
                    self.out.resize(grown, 0);
                }
                // One more output byte than `max_record_bytes`: more text too.
                R::OutputFull if !over => record_over = true,
                R::OutputEndsFull if !over && self.ends.len() <= self.max_columns => {
                    let grown = self.ends.len().saturating_mul(2);
                    self.ends
                        .resize(grown.min(self.max_columns.saturating_add(1)), 0);
                }
                R::OutputEndsFull if !over => columns_over = true,
                R::OutputFull | R::OutputEndsFull => {}
                R::Record => {
                    // Without its line break (`\r` or `\n`; the `\n` of a CRLF
                    // is the next record's lead), when the text is all there.
                    if self.raw.len() == record_bytes && ends_line {
                        self.raw.pop();
                    }
                    return Ok(Some(RecordInfo {
                        line: start_line,
                        overflow: Overflow::first(field_over, record_over, columns_over),
                    }));
                }
                R::End => return Ok(None),
            }
            if field_over || record_over || columns_over {
                if fail_fast {
                    return Ok(Some(RecordInfo {
                        line: start_line,
                        overflow: Overflow::first(field_over, record_over, columns_over),
                    }));
                }
                // Over a limit: only the raw prefix is kept; the rest of the record
                // is parsed into the start of the same buffers, again and again.
                self.raw.truncate(RAW_PREFIX_BYTES);
                (self.nout, self.nend) = (0, 0);
            }
        }
    }

    /// Passes over the records ahead whose line `wants` rejects, without parsing
    /// them, as far as they are plain: one line each, no quote and no lone
    /// `\r` (which could join or split lines into records). Stops before the
    /// first wanted or not plain record, and at the end of the buffered input,
    /// leaving it to [`Self::next`]; blank lines are passed over as `next` does.
    /// Only at a record boundary (before the first `next` after the header, or
    /// between two of them), where the parser holds no state.
    fn skip_plain(&mut self, wants: impl Fn(i64) -> bool) {
        loop {
            let rest = &self.input[self.pos..self.len];
            let Some(end) = memchr::memchr(b'\n', rest) else {
                return;
            };
            let text = &rest[..end];
            let text = text.strip_suffix(b"\r").unwrap_or(text);
            if memchr::memchr2(b'"', b'\r', text).is_some() {
                return;
            }
            if !text.is_empty() && wants(i64::try_from(self.line).unwrap_or(i64::MAX)) {
                return;
            }
            self.pos += end + 1;
            self.line += 1;
        }
    }

    /// The fields of the record just read (meaningless after an overflow).
    fn fields(&self) -> impl ExactSizeIterator<Item = &[u8]> {
        (0..self.nend).map(|i| {
            let start = if i == 0 { 0 } else { self.ends[i - 1] };
            &self.out[start..self.ends[i]]
        })
    }

    fn field(&self, i: usize) -> Option<&[u8]> {
        let end = *self.ends[..self.nend].get(i)?;
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        self.out.get(start..end)
    }

    fn raw_text(&self) -> String {
        String::from_utf8_lossy(&self.raw).into_owned()
    }
}

/// The file error of a header over a limit.
fn header_over_limit(
    path: &str,
    line: u64,
    overflow: Overflow,
    limits: SourceLimits,
) -> SourceError {
    let (what, limit) = match overflow {
        Overflow::Columns => (
            format!("header has more than {} columns", limits.max_columns),
            "max_columns",
        ),
        Overflow::Field => (
            format!(
                "header has a name longer than {}",
                human_bytes(limits.max_field_bytes)
            ),
            "max_field_bytes",
        ),
        Overflow::Record => (
            format!(
                "header is longer than {}",
                human_bytes(limits.max_record_bytes)
            ),
            "max_record_bytes",
        ),
    };
    SourceError::OverLimit {
        at: format!("{path}:{line}"),
        what,
        limit,
    }
}

/// Reads one decompressed CSV file through `rows`, handing full batches to `emit`.
pub(crate) fn read_csv(
    reader: impl Read,
    mut rows: FileRows,
    path: &str,
    emit: &mut dyn FnMut(Output) -> Result<(), SourceError>,
) -> Result<FileStats, SourceError> {
    let limits = rows.limits();
    let mut records = RecordReader::new(reader, limits);
    let Some(head) = records.next(true).map_err(|e| read_error(path, e))? else {
        // A zero-byte file has no header to check and no rows.
        tracing::warn!(file = path, "empty CSV file");
        return finish(rows, emit);
    };
    if let Some(overflow) = head.overflow {
        return Err(header_over_limit(path, head.line, overflow, limits));
    }
    let header = header_names(records.fields(), path, head.line)?;
    let columns = map_columns(&header, &mut rows, path)?;

    loop {
        if rows.reads_some_lines() {
            records.skip_plain(|line| rows.wants(line));
        }
        let Some(record) = records.next(false).map_err(|e| read_error(path, e))? else {
            break;
        };
        let line = i64::try_from(record.line).unwrap_or(i64::MAX);
        if !rows.wants(line) {
            continue;
        }
        let raw = || Some(records.raw_text());
        match record.overflow {
            Some(Overflow::Record) => rows.reject(line, Reason::RecordTooLarge, raw().as_deref()),
            Some(Overflow::Field) => rows.reject(line, Reason::FieldTooLarge, raw().as_deref()),
            // The header has at most `max_columns` columns, so this row has more.
            Some(Overflow::Columns) => {
                rows.reject(line, Reason::WrongColumnCount, raw().as_deref())
            }
            None if records.nend != header.len() => {
                rows.reject(line, Reason::WrongColumnCount, raw().as_deref())
            }
            None => {
                let values = columns
                    .iter()
                    .map(|&i| records.field(i).map(std::str::from_utf8).transpose())
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|_| SourceError::Malformed {
                        file: path.to_string(),
                        line: record.line,
                        message: "field is not valid UTF-8".into(),
                    })?;
                rows.push(&values, line, raw);
            }
        }
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
fn header_names<'a>(
    fields: impl Iterator<Item = &'a [u8]>,
    path: &str,
    line: u64,
) -> Result<Vec<String>, SourceError> {
    fields
        .enumerate()
        .map(|(i, field)| {
            let name = std::str::from_utf8(field).map_err(|_| SourceError::Malformed {
                file: path.to_string(),
                line,
                message: "header is not valid UTF-8".into(),
            })?;
            // csv_core strips a BOM only when its first buffer holds all three bytes.
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
#[path = "csv_tests.rs"]
mod tests;
