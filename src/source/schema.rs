//! Contract schemas: the columns of each raw extract (DATA_CONTRACT.md), how each
//! is typed, and the Arrow schema of accepted rows.
//!
//! Accepted rows carry the contract columns in contract order, then `_file` (path
//! relative to the raw root) and `_line` (same numbering as rejects), so later SQL
//! can apply "latest file wins" / "first copy wins" by ordering on them.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};

use crate::job::ContractSchema;

/// Name of the column holding the source file of an accepted row.
pub const FILE_COLUMN: &str = "_file";
/// Name of the column holding the line (or Parquet row number) of an accepted row.
pub const LINE_COLUMN: &str = "_line";

/// How a raw text value is checked and typed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldKind {
    /// Trimmed text; empty is NULL.
    Text,
    /// Trimmed, upper-cased currency code; `lookup` checks it against the known set.
    Currency { lookup: bool },
    /// 64-bit integer.
    Int,
    /// Integer that must be > 0 (`negative_quantity`).
    Quantity,
    /// decimal(12,2), any sign.
    Money,
    /// decimal(12,2) that must be >= 0 (`negative_amount`).
    NonNegativeMoney,
    /// decimal(18,8) that must be > 0 (fx rates).
    Rate,
    /// `YYYY-MM-DD`.
    Date,
    /// RFC 3339 with an offset.
    Timestamp,
    /// `true` / `false`.
    Bool,
    /// One of a fixed, case-sensitive list.
    Enum(&'static [&'static str]),
}

impl FieldKind {
    /// Arrow type of the typed column.
    pub fn data_type(self) -> DataType {
        match self {
            FieldKind::Text | FieldKind::Currency { .. } | FieldKind::Enum(_) => DataType::Utf8,
            FieldKind::Int | FieldKind::Quantity => DataType::Int64,
            FieldKind::Money | FieldKind::NonNegativeMoney => DataType::Decimal128(12, 2),
            FieldKind::Rate => DataType::Decimal128(18, 8),
            FieldKind::Date => DataType::Date32,
            FieldKind::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            FieldKind::Bool => DataType::Boolean,
        }
    }
}

/// One contract column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldSpec {
    pub name: &'static str,
    pub kind: FieldKind,
    /// Missing or empty is `missing_required`.
    pub required: bool,
}

/// The columns of one extract plus its row-level rule.
#[derive(Debug, Clone, Copy)]
pub struct ContractFields {
    pub fields: &'static [FieldSpec],
    /// Columns of which at least one must be non-empty (`no_customer_identifier`).
    pub any_identifier: &'static [&'static str],
}

const fn req(name: &'static str, kind: FieldKind) -> FieldSpec {
    FieldSpec {
        name,
        kind,
        required: true,
    }
}

const fn opt(name: &'static str, kind: FieldKind) -> FieldSpec {
    FieldSpec {
        name,
        kind,
        required: false,
    }
}

use FieldKind::*;

const PROFILES: &[FieldSpec] = &[
    req("source_system", Text),
    req("source_customer_id", Text),
    opt("email", Text),
    opt("phone", Text),
    opt("first_name", Text),
    opt("last_name", Text),
    opt("birth_date", Date),
    opt("city", Text),
    opt("postal_code", Text),
    opt("country_code", Text),
    opt("account_type", Enum(&["consumer", "business"])),
    opt("signup_ts", Timestamp),
    opt("email_opt_in", Bool),
    opt("sms_opt_in", Bool),
    req("updated_at", Timestamp),
];

const TRANSACTIONS: &[FieldSpec] = &[
    req("transaction_id", Text),
    req("line_no", Int),
    req("source_system", Text),
    opt("source_customer_id", Text),
    opt("email", Text),
    req("order_ts", Timestamp),
    opt(
        "channel",
        Enum(&["online", "store", "phone", "marketplace"]),
    ),
    opt("product_id", Text),
    opt("category", Text),
    req("quantity", Quantity),
    req("unit_price", NonNegativeMoney),
    opt("discount", NonNegativeMoney),
    opt("unit_cost", Money),
    req("currency", Currency { lookup: true }),
    req("status", Enum(&["completed", "returned", "cancelled"])),
];

const COMMUNICATIONS: &[FieldSpec] = &[
    req("event_id", Text),
    opt("source_system", Text),
    opt("source_customer_id", Text),
    opt("email", Text),
    req(
        "channel",
        Enum(&[
            "email",
            "sms",
            "push",
            "phone",
            "chat",
            "social",
            "direct_mail",
        ]),
    ),
    req("direction", Enum(&["outbound", "inbound"])),
    opt("campaign_id", Text),
    req(
        "event_type",
        Enum(&[
            "sent",
            "delivered",
            "opened",
            "clicked",
            "bounced",
            "unsubscribed",
            "complained",
            "replied",
            "service_contact",
            "review",
            "referral",
        ]),
    ),
    req("event_ts", Timestamp),
    opt("cost", Money),
];

const SUPPRESSIONS: &[FieldSpec] = &[
    opt("email", Text),
    opt("source_system", Text),
    opt("source_customer_id", Text),
    req("requested_at", Timestamp),
];

const FX_RATES: &[FieldSpec] = &[
    req("currency", Currency { lookup: false }),
    req("rate_to_reporting", Rate),
];

/// Reference data (not a raw extract): RFM score cell -> segment name.
const RFM_SEGMENTS: &[FieldSpec] = &[
    req("r", Int),
    req("f", Int),
    req("m", Int),
    req("segment", Text),
];

/// The contract columns and rules of `schema`.
pub fn contract_fields(schema: ContractSchema) -> ContractFields {
    let (fields, any_identifier): (&'static [FieldSpec], &'static [&'static str]) = match schema {
        ContractSchema::Profiles => (PROFILES, &[]),
        ContractSchema::Transactions => (TRANSACTIONS, &["source_customer_id", "email"]),
        ContractSchema::Communications => (COMMUNICATIONS, &[]),
        ContractSchema::Suppressions => (SUPPRESSIONS, &[]),
        ContractSchema::FxRates => (FX_RATES, &[]),
        ContractSchema::RfmSegments => (RFM_SEGMENTS, &[]),
    };
    ContractFields {
        fields,
        any_identifier,
    }
}

/// Arrow schema of accepted rows of `schema`: typed contract columns, `_file`, `_line`.
///
/// Every contract column is nullable, required ones included: rows with a missing
/// required value never get here, but declaring them non-null would make this
/// schema differ from what DataFusion infers when the staged Parquet is read back.
pub fn typed_schema(schema: ContractSchema) -> SchemaRef {
    let mut fields: Vec<Field> = contract_fields(schema)
        .fields
        .iter()
        .map(|f| Field::new(f.name, f.kind.data_type(), true))
        .collect();
    fields.push(Field::new(FILE_COLUMN, DataType::Utf8, false));
    fields.push(Field::new(LINE_COLUMN, DataType::Int64, false));
    Arc::new(Schema::new(fields))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transactions_schema_types_match_the_contract() {
        let schema = typed_schema(ContractSchema::Transactions);
        let ty = |name: &str| {
            schema
                .field_with_name(name)
                .map(|f| f.data_type().clone())
                .ok()
        };
        assert_eq!(ty("line_no"), Some(DataType::Int64));
        assert_eq!(ty("unit_price"), Some(DataType::Decimal128(12, 2)));
        assert_eq!(
            ty("order_ts"),
            Some(DataType::Timestamp(
                TimeUnit::Microsecond,
                Some("UTC".into())
            ))
        );
        assert_eq!(ty("_file"), Some(DataType::Utf8));
        assert_eq!(ty("_line"), Some(DataType::Int64));
        // 15 contract columns + _file + _line
        assert_eq!(schema.fields().len(), 17);
    }

    #[test]
    fn fx_rates_rate_is_decimal_18_8() {
        let schema = typed_schema(ContractSchema::FxRates);
        assert_eq!(schema.field(1).data_type(), &DataType::Decimal128(18, 8));
        assert_eq!(schema.fields().len(), 4);
    }

    #[test]
    fn profiles_has_fifteen_contract_columns() {
        assert_eq!(contract_fields(ContractSchema::Profiles).fields.len(), 15);
        assert_eq!(
            contract_fields(ContractSchema::Communications).fields.len(),
            10
        );
        assert_eq!(
            contract_fields(ContractSchema::Suppressions).fields.len(),
            4
        );
    }
}
