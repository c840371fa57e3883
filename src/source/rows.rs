//! Per-file row classification: each raw row (its contract values in contract
//! order) becomes either a typed accepted row or a reject, and both sides are cut
//! into batches of `batch_rows`.
//!
//! The format readers (CSV, NDJSON, Parquet) only extract values, line numbers
//! and raw text; every contract rule lives here and in `typing`, so all formats
//! classify identically.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, BooleanBuilder, Date32Builder, Decimal128Builder, Int64Builder, StringBuilder,
    TimestampMicrosecondBuilder,
};
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::record_batch::RecordBatch;

use super::reject::{Reason, RejectRows};
use super::schema::{ContractFields, contract_fields, typed_schema};
use super::typing::{Value, type_value};
use crate::job::{ContractSchema, SourceLimits};

/// What one file contributed, merged into the `SourceReport`.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct FileStats {
    pub rows_read: u64,
    pub rows_accepted: u64,
    pub rows_rejected: u64,
    pub rejects_by_reason: BTreeMap<&'static str, u64>,
    /// Extra CSV columns / unknown JSON field names seen in this file.
    pub extra_columns: BTreeSet<String>,
    /// Unknown JSON fields: one per (row, unknown field) occurrence.
    pub unknown_fields: u64,
}

/// A full batch ready for one of the two sinks.
#[derive(Debug)]
pub(crate) enum Output {
    Accepted(RecordBatch),
    Rejected(RecordBatch),
}

/// Everything needed to classify the rows of one file.
#[derive(Debug, Clone)]
pub(crate) struct FileContext {
    pub extract: Arc<str>,
    /// Path relative to the raw root: the `file` of rejects and `_file` of rows.
    pub file: Arc<str>,
    pub schema: ContractSchema,
    pub currencies: Option<Arc<HashSet<String>>>,
    pub batch_rows: usize,
    /// The source's size limits; `push` applies `max_field_bytes`.
    pub limits: SourceLimits,
    /// Read only the records starting on these lines (the typed staging cache
    /// reading back the rows it holds out, `cache/erased.rs`); `None`: every record.
    pub only_lines: Option<Arc<hashbrown::HashSet<i64>>>,
}

enum ColumnBuilder {
    Text(StringBuilder),
    Int(Int64Builder),
    Decimal(Decimal128Builder),
    Date(Date32Builder),
    Timestamp(TimestampMicrosecondBuilder),
    Bool(BooleanBuilder),
}

impl ColumnBuilder {
    fn new(data_type: &DataType) -> Result<Self, ArrowError> {
        Ok(match data_type {
            DataType::Int64 => Self::Int(Int64Builder::new()),
            DataType::Decimal128(p, s) => {
                Self::Decimal(Decimal128Builder::new().with_precision_and_scale(*p, *s)?)
            }
            DataType::Date32 => Self::Date(Date32Builder::new()),
            DataType::Timestamp(_, tz) => {
                Self::Timestamp(TimestampMicrosecondBuilder::new().with_timezone_opt(tz.clone()))
            }
            DataType::Boolean => Self::Bool(BooleanBuilder::new()),
            _ => Self::Text(StringBuilder::new()),
        })
    }

    /// Appends a value; `Value`s come from `type_value` for this column's kind, so
    /// a mismatch cannot happen and is stored as NULL rather than panicking.
    fn append(&mut self, value: &Value<'_>) {
        match (self, value) {
            (Self::Text(b), Value::Text(s)) => b.append_value(s),
            (Self::Int(b), Value::Int(v)) => b.append_value(*v),
            (Self::Decimal(b), Value::Decimal(v)) => b.append_value(*v),
            (Self::Date(b), Value::Date(v)) => b.append_value(*v),
            (Self::Timestamp(b), Value::Timestamp(v)) => b.append_value(*v),
            (Self::Bool(b), Value::Bool(v)) => b.append_value(*v),
            (b, _) => b.append_null(),
        }
    }

    fn append_null(&mut self) {
        match self {
            Self::Text(b) => b.append_null(),
            Self::Int(b) => b.append_null(),
            Self::Decimal(b) => b.append_null(),
            Self::Date(b) => b.append_null(),
            Self::Timestamp(b) => b.append_null(),
            Self::Bool(b) => b.append_null(),
        }
    }

    fn finish(&mut self) -> ArrayRef {
        match self {
            Self::Text(b) => Arc::new(b.finish()),
            Self::Int(b) => Arc::new(b.finish()),
            Self::Decimal(b) => Arc::new(b.finish()),
            Self::Date(b) => Arc::new(b.finish()),
            Self::Timestamp(b) => Arc::new(b.finish()),
            Self::Bool(b) => Arc::new(b.finish()),
        }
    }
}

/// Classifies the rows of one file and accumulates both kinds of batches.
pub(crate) struct FileRows {
    ctx: FileContext,
    contract: ContractFields,
    /// Indexes (into the contract fields) of the `any_identifier` columns.
    identifier_idx: Vec<usize>,
    schema: SchemaRef,
    columns: Vec<ColumnBuilder>,
    file_col: StringBuilder,
    line_col: Int64Builder,
    accepted_len: usize,
    rejects: RejectRows,
    pub(crate) stats: FileStats,
}

impl FileRows {
    pub(crate) fn new(ctx: FileContext) -> Result<Self, ArrowError> {
        let contract = contract_fields(ctx.schema);
        let schema = typed_schema(ctx.schema);
        let columns = contract
            .fields
            .iter()
            .map(|f| ColumnBuilder::new(&f.kind.data_type()))
            .collect::<Result<Vec<_>, _>>()?;
        let identifier_idx = contract
            .any_identifier
            .iter()
            .filter_map(|name| contract.fields.iter().position(|f| f.name == *name))
            .collect();
        let rejects = RejectRows::new(ctx.extract.clone(), ctx.file.clone());
        Ok(Self {
            ctx,
            contract,
            identifier_idx,
            schema,
            columns,
            file_col: StringBuilder::new(),
            line_col: Int64Builder::new(),
            accepted_len: 0,
            rejects,
            stats: FileStats::default(),
        })
    }

    /// Whether only some lines are to be read ([`FileContext::only_lines`]).
    pub(crate) fn reads_some_lines(&self) -> bool {
        self.ctx.only_lines.is_some()
    }

    /// Whether the record starting on `line` is to be read at all
    /// ([`FileContext::only_lines`]); the readers skip the others unparsed.
    pub(crate) fn wants(&self, line: i64) -> bool {
        self.ctx
            .only_lines
            .as_ref()
            .is_none_or(|lines| lines.contains(&line))
    }

    /// The source's size limits, for the format readers.
    pub(crate) fn limits(&self) -> SourceLimits {
        self.ctx.limits
    }

    /// The contract columns, in the order `push` expects values.
    pub(crate) fn contract(&self) -> ContractFields {
        self.contract
    }

    /// Classifies one row. `values` holds the raw value of each contract column in
    /// contract order (None = absent); `raw` renders the row's raw text, only
    /// called when the row is rejected.
    pub(crate) fn push(
        &mut self,
        values: &[Option<&str>],
        line: i64,
        raw: impl FnOnce() -> Option<String>,
    ) {
        match self.classify(values) {
            Ok(typed) => {
                for (builder, value) in self.columns.iter_mut().zip(&typed) {
                    builder.append(value);
                }
                self.file_col.append_value(&self.ctx.file);
                self.line_col.append_value(line);
                self.accepted_len += 1;
                self.stats.rows_read += 1;
                self.stats.rows_accepted += 1;
            }
            Err(reason) => self.reject(line, reason, raw().as_deref()),
        }
    }

    /// Records a row rejected before typing (wrong column count, broken JSON).
    pub(crate) fn reject(&mut self, line: i64, reason: Reason, raw: Option<&str>) {
        self.rejects.push(line, reason, raw);
        self.stats.rows_read += 1;
        self.stats.rows_rejected += 1;
        *self
            .stats
            .rejects_by_reason
            .entry(reason.as_str())
            .or_default() += 1;
    }

    fn classify<'v>(&self, values: &[Option<&'v str>]) -> Result<Vec<Value<'v>>, Reason> {
        let currencies = self.ctx.currencies.as_deref();
        // A value over the field limit is not typed at all (the CSV reader stops
        // collecting such a field; NDJSON and Parquet values are checked here).
        let max_field = usize::try_from(self.ctx.limits.max_field_bytes).unwrap_or(usize::MAX);
        if values.iter().flatten().any(|v| v.len() > max_field) {
            return Err(Reason::FieldTooLarge);
        }
        let mut typed = Vec::with_capacity(self.contract.fields.len());
        let mut worst: Option<Reason> = None;
        for (i, field) in self.contract.fields.iter().enumerate() {
            let raw = values.get(i).copied().flatten();
            match type_value(field, raw, currencies) {
                Ok(v) => typed.push(v),
                // The reason that wins is the earliest in the contract's list, whatever
                // column it comes from.
                Err(r) => worst = Some(worst.map_or(r, |w| w.min(r))),
            }
        }
        if let Some(reason) = worst {
            return Err(reason);
        }
        if !self.identifier_idx.is_empty()
            && self
                .identifier_idx
                .iter()
                .all(|&i| matches!(typed.get(i), Some(Value::Null) | None))
        {
            return Err(Reason::NoCustomerIdentifier);
        }
        Ok(typed)
    }

    /// A batch if one side has reached `batch_rows`.
    pub(crate) fn take_ready(&mut self) -> Option<Output> {
        let limit = self.ctx.batch_rows.max(1);
        if self.accepted_len >= limit {
            return Some(Output::Accepted(self.finish_accepted()));
        }
        if self.rejects.len() >= limit {
            return Some(Output::Rejected(self.rejects.finish()));
        }
        None
    }

    /// Whatever is left, at the end of the file.
    pub(crate) fn finish(mut self) -> (Vec<Output>, FileStats) {
        let mut out = Vec::new();
        if self.accepted_len > 0 {
            out.push(Output::Accepted(self.finish_accepted()));
        }
        if self.rejects.len() > 0 {
            out.push(Output::Rejected(self.rejects.finish()));
        }
        (out, self.stats)
    }

    fn finish_accepted(&mut self) -> RecordBatch {
        let mut arrays: Vec<ArrayRef> =
            self.columns.iter_mut().map(ColumnBuilder::finish).collect();
        arrays.push(Arc::new(self.file_col.finish()));
        arrays.push(Arc::new(self.line_col.finish()));
        self.accepted_len = 0;
        // Builders are created from the same schema and appended in lock-step, so
        // the batch always matches it.
        RecordBatch::try_new(self.schema.clone(), arrays)
            .unwrap_or_else(|_| RecordBatch::new_empty(self.schema.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Array, AsArray};
    use datafusion::arrow::datatypes::{Decimal128Type, Int64Type};

    fn rows(schema: ContractSchema, currencies: Option<&[&str]>) -> FileRows {
        let ctx = FileContext {
            extract: "x".into(),
            file: "x/f.csv".into(),
            schema,
            currencies: currencies.map(|c| Arc::new(c.iter().map(|s| s.to_string()).collect())),
            batch_rows: 2,
            limits: SourceLimits::default(),
            only_lines: None,
        };
        FileRows::new(ctx).unwrap()
    }

    const GOOD_TX: [&str; 15] = [
        "T1",
        "1",
        "crm",
        "C1",
        "",
        "2026-01-02T10:00:00Z",
        "online",
        "P1",
        "toys",
        "2",
        "9.99",
        "",
        "4.00",
        "eur",
        "completed",
    ];

    fn with(base: &[&'static str], edits: &[(usize, &'static str)]) -> Vec<Option<&'static str>> {
        let mut v: Vec<Option<&str>> = base.iter().map(|s| Some(*s)).collect();
        for &(i, s) in edits {
            v[i] = Some(s);
        }
        v
    }

    fn reasons(r: &FileRows) -> Vec<(&'static str, u64)> {
        r.stats
            .rejects_by_reason
            .iter()
            .map(|(k, v)| (*k, *v))
            .collect()
    }

    #[test]
    fn first_reason_in_contract_order_wins_across_columns() {
        let mut r = rows(ContractSchema::Transactions, Some(&["EUR"]));
        // bad enum on channel (column 6) and bad timestamp on order_ts (column 5) and
        // negative quantity (column 9): bad_timestamp comes first in the list.
        r.push(
            &with(&GOOD_TX, &[(6, "web"), (5, "2026-01-02 10:00"), (9, "-1")]),
            2,
            || None,
        );
        // unknown currency beats bad_enum on status, although status is later.
        r.push(&with(&GOOD_TX, &[(14, "done"), (13, "usd")]), 3, || None);
        // negative_amount (discount) beats unknown_currency.
        r.push(&with(&GOOD_TX, &[(11, "-1.00"), (13, "usd")]), 4, || None);
        // no identifier at all comes last: bad_bool-free row with bad enum wins.
        r.push(&with(&GOOD_TX, &[(3, ""), (4, " "), (6, "web")]), 5, || {
            None
        });
        r.push(&with(&GOOD_TX, &[(3, ""), (4, " ")]), 6, || {
            Some("raw".into())
        });
        assert_eq!(
            reasons(&r),
            vec![
                ("bad_enum", 1),
                ("bad_timestamp", 1),
                ("negative_amount", 1),
                ("no_customer_identifier", 1),
                ("unknown_currency", 1),
            ]
        );
        assert_eq!(r.stats.rows_accepted, 0);
    }

    #[test]
    fn accepted_rows_are_typed_and_batched() {
        let mut r = rows(ContractSchema::Transactions, Some(&["EUR"]));
        r.push(&with(&GOOD_TX, &[]), 2, || None);
        assert!(r.take_ready().is_none());
        r.push(&with(&GOOD_TX, &[(1, "2"), (10, "10")]), 7, || None);
        let Some(Output::Accepted(batch)) = r.take_ready() else {
            panic!("expected a full accepted batch");
        };
        assert_eq!(batch.num_rows(), 2);
        let price = batch.column(10).as_primitive::<Decimal128Type>();
        assert_eq!(price.value(0), 999);
        assert_eq!(price.value(1), 1000);
        assert!(batch.column(11).is_null(0));
        assert_eq!(batch.column(13).as_string::<i32>().value(0), "EUR");
        let line = batch.column(16).as_primitive::<Int64Type>();
        assert_eq!((line.value(0), line.value(1)), (2, 7));
        assert_eq!(batch.column(15).as_string::<i32>().value(1), "x/f.csv");
        let (rest, stats) = r.finish();
        assert!(rest.is_empty());
        assert_eq!(stats.rows_accepted, 2);
    }

    #[test]
    fn a_value_over_the_field_limit_is_field_too_large_before_any_other_reason() {
        let mut r = rows(ContractSchema::FxRates, None);
        r.ctx.limits.max_field_bytes = 3;
        r.push(&[Some("EUR"), Some("1")], 2, || None);
        // Also a bad number: the size reason wins, it is checked first.
        r.push(&[Some("EURO"), Some("x")], 3, || None);
        assert_eq!(reasons(&r), vec![("field_too_large", 1)]);
        assert_eq!(r.stats.rows_accepted, 1);
    }

    #[test]
    fn missing_values_count_as_absent() {
        let mut r = rows(ContractSchema::FxRates, None);
        r.push(&[Some("gbp")], 2, || None);
        assert_eq!(reasons(&r), vec![("missing_required", 1)]);
    }
}
