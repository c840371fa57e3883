//! Reject reasons and the builder of reject batches.
//!
//! A raw row that breaks the contract becomes one reject row: `extract`, `file`
//! (relative to the raw root), `line`, `reason`, `raw`. `Reason` is declared in the
//! contract's precedence order, so the derived `Ord` picks the reason that wins
//! when a row breaks several rules. The two size reasons come first: a row over
//! a source's `limits` is not parsed further, so no other rule can be checked
//! (docs/rules.md, "Hostile input"); its `raw` keeps only a prefix.

use std::sync::{Arc, LazyLock};

use datafusion::arrow::array::{ArrayRef, Int64Builder, StringBuilder};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;

/// Why a raw row was rejected, in the contract's order: the smallest applicable wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Reason {
    /// A CSV record or NDJSON line over `limits.max_record_bytes`, or an NDJSON
    /// object with more than `limits.max_columns` fields.
    RecordTooLarge,
    /// A field over `limits.max_field_bytes`.
    FieldTooLarge,
    /// A CSV row with more or fewer fields than its header.
    WrongColumnCount,
    /// An NDJSON line that is not a JSON object.
    BrokenJson,
    /// A required field is missing or empty.
    MissingRequired,
    /// A timestamp that is not RFC 3339 with an offset.
    BadTimestamp,
    /// A date that is not `YYYY-MM-DD`.
    BadDate,
    /// An integer or decimal that does not parse (or has too many places).
    BadNumber,
    /// `quantity <= 0`.
    NegativeQuantity,
    /// `unit_price` or `discount` below zero.
    NegativeAmount,
    /// A currency missing from the fx rates.
    UnknownCurrency,
    /// A boolean other than `true`/`false`/empty.
    BadBool,
    /// An enumerated value outside its list.
    BadEnum,
    /// A transaction with neither `source_customer_id` nor `email`.
    NoCustomerIdentifier,
}

impl Reason {
    /// Every reason, in precedence order.
    pub const ALL: [Reason; 14] = [
        Reason::RecordTooLarge,
        Reason::FieldTooLarge,
        Reason::WrongColumnCount,
        Reason::BrokenJson,
        Reason::MissingRequired,
        Reason::BadTimestamp,
        Reason::BadDate,
        Reason::BadNumber,
        Reason::NegativeQuantity,
        Reason::NegativeAmount,
        Reason::UnknownCurrency,
        Reason::BadBool,
        Reason::BadEnum,
        Reason::NoCustomerIdentifier,
    ];

    /// Whether the row was cut short for its size: its `raw` is a prefix.
    pub fn is_size(self) -> bool {
        matches!(self, Reason::RecordTooLarge | Reason::FieldTooLarge)
    }

    /// The name written to the `reason` column.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::RecordTooLarge => "record_too_large",
            Reason::FieldTooLarge => "field_too_large",
            Reason::WrongColumnCount => "wrong_column_count",
            Reason::BrokenJson => "broken_json",
            Reason::MissingRequired => "missing_required",
            Reason::BadTimestamp => "bad_timestamp",
            Reason::BadDate => "bad_date",
            Reason::BadNumber => "bad_number",
            Reason::NegativeQuantity => "negative_quantity",
            Reason::NegativeAmount => "negative_amount",
            Reason::UnknownCurrency => "unknown_currency",
            Reason::BadBool => "bad_bool",
            Reason::BadEnum => "bad_enum",
            Reason::NoCustomerIdentifier => "no_customer_identifier",
        }
    }
}

/// The most bytes of `raw` kept for a row rejected for its size: enough to find
/// the row upstream, never the megabytes that made it too large.
pub const RAW_PREFIX_BYTES: usize = 4096;

/// `text` cut to at most [`RAW_PREFIX_BYTES`], on a character boundary.
pub(crate) fn raw_prefix(text: &str) -> &str {
    if text.len() <= RAW_PREFIX_BYTES {
        return text;
    }
    let mut end = RAW_PREFIX_BYTES;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

static REJECTS_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        Field::new("extract", DataType::Utf8, false),
        Field::new("file", DataType::Utf8, false),
        Field::new("line", DataType::Int64, false),
        Field::new("reason", DataType::Utf8, false),
        Field::new("raw", DataType::Utf8, true),
    ]))
});

/// Schema of reject batches: `extract`, `file`, `line`, `reason`, `raw` (nullable).
pub fn rejects_schema() -> SchemaRef {
    REJECTS_SCHEMA.clone()
}

/// Accumulates reject rows of one file and turns them into batches.
pub(crate) struct RejectRows {
    extract: Arc<str>,
    file: Arc<str>,
    extract_col: StringBuilder,
    file_col: StringBuilder,
    line: Int64Builder,
    reason: StringBuilder,
    raw: StringBuilder,
    len: usize,
}

impl RejectRows {
    pub(crate) fn new(extract: Arc<str>, file: Arc<str>) -> Self {
        Self {
            extract,
            file,
            extract_col: StringBuilder::new(),
            file_col: StringBuilder::new(),
            line: Int64Builder::new(),
            reason: StringBuilder::new(),
            raw: StringBuilder::new(),
            len: 0,
        }
    }

    /// One reject row; the raw text of a size reject is cut to its prefix.
    pub(crate) fn push(&mut self, line: i64, reason: Reason, raw: Option<&str>) {
        let raw = if reason.is_size() {
            raw.map(raw_prefix)
        } else {
            raw
        };
        self.extract_col.append_value(&self.extract);
        self.file_col.append_value(&self.file);
        self.line.append_value(line);
        self.reason.append_value(reason.as_str());
        self.raw.append_option(raw);
        self.len += 1;
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The rows pushed so far as one batch; the builder starts empty again.
    pub(crate) fn finish(&mut self) -> RecordBatch {
        let columns: Vec<ArrayRef> = vec![
            Arc::new(self.extract_col.finish()),
            Arc::new(self.file_col.finish()),
            Arc::new(self.line.finish()),
            Arc::new(self.reason.finish()),
            Arc::new(self.raw.finish()),
        ];
        self.len = 0;
        // The columns are built to match REJECTS_SCHEMA exactly, same count, types and
        // lengths, so construction cannot fail; fall back to an empty batch regardless.
        RecordBatch::try_new(rejects_schema(), columns)
            .unwrap_or_else(|_| RecordBatch::new_empty(rejects_schema()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Array, AsArray};

    #[test]
    fn reasons_sort_in_contract_order() {
        let mut shuffled = vec![
            Reason::NoCustomerIdentifier,
            Reason::BadBool,
            Reason::WrongColumnCount,
            Reason::NegativeAmount,
            Reason::MissingRequired,
        ];
        shuffled.sort();
        assert_eq!(
            shuffled,
            vec![
                Reason::WrongColumnCount,
                Reason::MissingRequired,
                Reason::NegativeAmount,
                Reason::BadBool,
                Reason::NoCustomerIdentifier,
            ]
        );
        let mut all = Reason::ALL;
        all.sort();
        assert_eq!(all, Reason::ALL);
    }

    #[test]
    fn size_rejects_keep_a_prefix_cut_on_a_character_boundary() {
        // 4095 ASCII bytes then a 2-byte character: byte 4096 is inside it.
        let text = format!("{}é and more", "a".repeat(RAW_PREFIX_BYTES - 1));
        assert_eq!(raw_prefix(&text).len(), RAW_PREFIX_BYTES - 1);
        assert_eq!(raw_prefix("short"), "short");
        let mut rows = RejectRows::new("x".into(), "f".into());
        rows.push(2, Reason::FieldTooLarge, Some(&text));
        rows.push(3, Reason::WrongColumnCount, Some(&text));
        let batch = rows.finish();
        let raw = batch.column(4).as_string::<i32>();
        assert_eq!(raw.value(0).len(), RAW_PREFIX_BYTES - 1);
        assert_eq!(raw.value(1), text);
    }

    #[test]
    fn reject_batch_has_one_row_per_push() {
        let mut rows = RejectRows::new("transactions".into(), "t/dt=2026-01-01/a.csv".into());
        rows.push(3, Reason::BadNumber, Some("x,y"));
        rows.push(5, Reason::BrokenJson, None);
        let batch = rows.finish();
        assert_eq!(batch.num_rows(), 2);
        assert_eq!(rows.len(), 0);
        assert_eq!(batch.column(4).null_count(), 1);
    }
}
