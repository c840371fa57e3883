//! DataFusion scalar UDFs shared by every SQL file of a job (DESIGN.md: "small
//! helpers are DataFusion UDFs usable from any SQL file").
//!
//! - `normalize_email(text) -> text`: the contract's email identifier, or NULL.
//! - `normalize_phone(text, country_code) -> text`: the E.164 phone identifier, or NULL.
//! - `pii_hash(text) -> text`, `pii_mask(text) -> text`: personal data hashed
//!   (keyed HMAC-SHA256) or masked, as output column policies apply them (`pii`).
//! - `utc_date(timestamp) -> date`: `CAST(.. AS DATE)` by division for a UTC
//!   timestamp; every such cast in a job's SQL is planned as it ([`CastToUtcDate`]).
//!
//! `engine` calls [`register_all`] on every `SessionContext` it builds (and a
//! Ballista executor registers [`all`] in its function registry), so the same
//! names resolve wherever a plan runs. The plain Rust functions behind them
//! ([`email::normalize_email`], [`phone::normalize_phone`]) are public too, so
//! Rust steps (identity stitching) apply exactly the same rules.

pub mod email;
pub mod phone;
pub mod pii;
pub mod utc_date;

use datafusion::arrow::array::{Array, ArrayRef, LargeStringArray, StringArray, StringViewArray};
use datafusion::common::{DataFusionError, Result, ScalarValue};
use datafusion::logical_expr::{ColumnarValue, ScalarUDF};
use datafusion::prelude::SessionContext;

pub use email::NormalizeEmail;
pub use phone::NormalizePhone;
pub use utc_date::{CastToUtcDate, UtcDate};

/// Every c360 UDF, for registries other than a `SessionContext` (e.g. Ballista's).
/// `pii_hash` is keyed from the environment ([`pii::PiiKey::from_env`]); without
/// a usable key its calls fail and say how to set one.
pub fn all() -> Vec<ScalarUDF> {
    let key = pii::PiiKey::from_env().ok().flatten();
    vec![
        ScalarUDF::new_from_impl(NormalizeEmail::new()),
        ScalarUDF::new_from_impl(NormalizePhone::new()),
        ScalarUDF::new_from_impl(pii::PiiHash::new(key)),
        ScalarUDF::new_from_impl(pii::PiiMask::new()),
        ScalarUDF::new_from_impl(UtcDate::new()),
    ]
}

/// Registers every c360 UDF on `ctx`, replacing any function of the same name.
pub fn register_all(ctx: &SessionContext) {
    for udf in all() {
        ctx.register_udf(udf);
    }
}

/// One string argument of a UDF call, borrowed without copying: a scalar applies
/// to every row, an array is read row by row. Covers the three Arrow string types.
pub(crate) enum StrArg<'a> {
    Scalar(Option<&'a str>),
    Utf8(&'a StringArray),
    LargeUtf8(&'a LargeStringArray),
    Utf8View(&'a StringViewArray),
}

impl<'a> StrArg<'a> {
    /// Borrows `value`; anything but a string (or NULL) is an internal error,
    /// since the `Signature::string` of our UDFs coerces arguments first.
    pub(crate) fn new(value: &'a ColumnarValue, function: &str) -> Result<Self> {
        let wrong = |found: String| {
            DataFusionError::Internal(format!(
                "{function}: expected a string argument, got {found}"
            ))
        };
        match value {
            ColumnarValue::Scalar(scalar) => match scalar {
                ScalarValue::Utf8(v) | ScalarValue::LargeUtf8(v) | ScalarValue::Utf8View(v) => {
                    Ok(Self::Scalar(v.as_deref()))
                }
                ScalarValue::Null => Ok(Self::Scalar(None)),
                other => Err(wrong(other.data_type().to_string())),
            },
            ColumnarValue::Array(array) => {
                let any = array.as_any();
                if let Some(a) = any.downcast_ref::<StringArray>() {
                    Ok(Self::Utf8(a))
                } else if let Some(a) = any.downcast_ref::<LargeStringArray>() {
                    Ok(Self::LargeUtf8(a))
                } else if let Some(a) = any.downcast_ref::<StringViewArray>() {
                    Ok(Self::Utf8View(a))
                } else {
                    Err(wrong(array.data_type().to_string()))
                }
            }
        }
    }

    /// The value at `row`, `None` for NULL.
    #[inline]
    pub(crate) fn get(&self, row: usize) -> Option<&'a str> {
        match self {
            Self::Scalar(v) => *v,
            Self::Utf8(a) => a.is_valid(row).then(|| a.value(row)),
            Self::LargeUtf8(a) => a.is_valid(row).then(|| a.value(row)),
            Self::Utf8View(a) => a.is_valid(row).then(|| a.value(row)),
        }
    }

    fn is_scalar(&self) -> bool {
        matches!(self, Self::Scalar(_))
    }
}

/// How many rows to compute: one when every argument is a scalar (the result is
/// then returned as a scalar), else the batch size.
pub(crate) fn rows_to_compute(args: &[StrArg<'_>], number_rows: usize) -> usize {
    if args.iter().all(StrArg::is_scalar) {
        1
    } else {
        number_rows
    }
}

/// Wraps a computed column as DataFusion expects: scalar in, scalar out.
pub(crate) fn into_columnar(args: &[StrArg<'_>], result: ArrayRef) -> Result<ColumnarValue> {
    if args.iter().all(StrArg::is_scalar) {
        Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(
            &result, 0,
        )?))
    } else {
        Ok(ColumnarValue::Array(result))
    }
}
