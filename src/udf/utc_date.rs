//! `utc_date(timestamp) -> date`: the UTC date of a UTC timestamp, by integer
//! division; and [`CastToUtcDate`], which plans every `CAST(<UTC timestamp> AS
//! DATE)` of a job's SQL as that call.
//!
//! The contract's dates are UTC dates ("order dates are UTC dates"), so the SQL
//! says `CAST(order_ts AS DATE)` of timestamps typed `Timestamp(µs, "UTC")`.
//! Arrow's cast converts each value through its time zone (chrono-tz, about
//! 100 ns a row): at 1,000,000 customers the date cut of `order_lines` alone
//! spent 1.3 s of CPU on it over 11.7M lines, every night. The division gives
//! the same date (the floor of the timestamp over the day's length, as the
//! UTC date of any instant is) in about a nanosecond.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, PrimitiveArray};
use datafusion::arrow::compute::{CastOptions, cast_with_options};
use datafusion::arrow::datatypes::{
    ArrowTimestampType, DataType, Date32Type, TimeUnit, TimestampMicrosecondType,
    TimestampMillisecondType, TimestampNanosecondType, TimestampSecondType,
};
use datafusion::arrow::error::ArrowError;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::Transformed;
use datafusion::common::{DFSchema, Result, ScalarValue};
use datafusion::logical_expr::expr::{Cast, ScalarFunction};
use datafusion::logical_expr::expr_rewriter::FunctionRewrite;
use datafusion::logical_expr::{
    ColumnarValue, Expr, ExprSchemable, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
    Volatility,
};

/// The UDF's name in SQL.
pub const UTC_DATE: &str = "utc_date";

/// `utc_date(t)`: `CAST(t AS DATE)`, computed by division where `t` is a UTC
/// timestamp; any other argument is cast as `CAST` would (an error, not NULL,
/// for a value that has no date).
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct UtcDate {
    signature: Signature,
}

impl UtcDate {
    /// The UDF implementation (one argument of any type `CAST` takes to DATE).
    pub fn new() -> Self {
        Self {
            signature: Signature::any(1, Volatility::Immutable),
        }
    }
}

impl Default for UtcDate {
    fn default() -> Self {
        Self::new()
    }
}

impl ScalarUDFImpl for UtcDate {
    fn name(&self) -> &str {
        UTC_DATE
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Date32)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let [arg] = args.args.as_slice() else {
            return datafusion::common::exec_err!("{UTC_DATE} takes one argument");
        };
        match arg {
            ColumnarValue::Array(array) => Ok(ColumnarValue::Array(utc_date(array)?)),
            ColumnarValue::Scalar(scalar) => {
                let date = utc_date(&scalar.to_array()?)?;
                Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(
                    &date, 0,
                )?))
            }
        }
    }
}

/// Whether `tz` is UTC, as Arrow spells it.
fn is_utc(tz: &str) -> bool {
    matches!(tz, "UTC" | "+00:00")
}

/// The dates of `array`: by division for a UTC timestamp, else Arrow's cast
/// with `CAST`'s options.
fn utc_date(array: &ArrayRef) -> Result<ArrayRef, ArrowError> {
    match array.data_type() {
        DataType::Timestamp(unit, Some(tz)) if is_utc(tz) => match unit {
            TimeUnit::Second => days::<TimestampSecondType>(array, 86_400),
            TimeUnit::Millisecond => days::<TimestampMillisecondType>(array, 86_400_000),
            TimeUnit::Microsecond => days::<TimestampMicrosecondType>(array, 86_400_000_000),
            TimeUnit::Nanosecond => days::<TimestampNanosecondType>(array, 86_400_000_000_000),
        },
        _ => {
            let options = CastOptions {
                safe: false,
                ..CastOptions::default()
            };
            cast_with_options(array, &DataType::Date32, &options)
        }
    }
}

/// Days since 1970-01-01 of timestamps counted in `per_day` units a day.
fn days<T: ArrowTimestampType>(array: &ArrayRef, per_day: i64) -> Result<ArrayRef, ArrowError> {
    let stamps = array.as_primitive::<T>();
    let dates: PrimitiveArray<Date32Type> = stamps.try_unary(|t| {
        i32::try_from(t.div_euclid(per_day))
            .map_err(|_| ArrowError::CastError(format!("timestamp {t} has no date")))
    })?;
    Ok(Arc::new(dates))
}

/// Plans `CAST(x AS DATE)` of a UTC timestamp `x` as `utc_date(x)` (the
/// column keeps its name). `engine` registers it on every session, so SQL
/// files keep the standard cast.
#[derive(Debug, Default)]
pub struct CastToUtcDate;

impl FunctionRewrite for CastToUtcDate {
    fn name(&self) -> &str {
        "cast_to_utc_date"
    }

    fn rewrite(
        &self,
        expr: Expr,
        schema: &DFSchema,
        _config: &ConfigOptions,
    ) -> Result<Transformed<Expr>> {
        let Expr::Cast(Cast { expr: inner, field }) = &expr else {
            return Ok(Transformed::no(expr));
        };
        if field.data_type() != &DataType::Date32 || !field.metadata().is_empty() {
            return Ok(Transformed::no(expr));
        }
        match inner.get_type(schema) {
            Ok(DataType::Timestamp(_, Some(tz))) if is_utc(&tz) => {
                let udf = Arc::new(ScalarUDF::new_from_impl(UtcDate::new()));
                let call = ScalarFunction::new_udf(udf, vec![inner.as_ref().clone()]);
                Ok(Transformed::yes(Expr::ScalarFunction(call)))
            }
            _ => Ok(Transformed::no(expr)),
        }
    }
}

/// Microseconds of instants around midnights, the epoch and years 1 and 9999,
/// and a NULL: the cases the tests here and in `engine` check.
#[cfg(test)]
pub(crate) fn test_stamps() -> Vec<Option<i64>> {
    let micros = |text: &str| {
        let stamp = chrono::DateTime::parse_from_rfc3339(text);
        Some(stamp.expect("an RFC 3339 timestamp").timestamp_micros())
    };
    vec![
        micros("2026-01-03T23:59:59.999999Z"),
        micros("2026-01-04T00:00:00Z"),
        micros("2026-01-04T00:00:00.000001Z"),
        micros("1969-12-31T23:59:59.999999Z"),
        micros("1970-01-01T00:00:00Z"),
        micros("0001-01-01T00:00:00Z"),
        micros("9999-12-31T23:59:59.999999Z"),
        None,
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::TimestampMicrosecondArray;
    use datafusion::arrow::compute::cast;

    #[test]
    fn the_utc_date_is_the_date_arrows_cast_gives() {
        for tz in ["UTC", "+00:00"] {
            let array: ArrayRef =
                Arc::new(TimestampMicrosecondArray::from(test_stamps()).with_timezone(tz));
            let ours = utc_date(&array).unwrap();
            assert_eq!(&ours, &cast(&array, &DataType::Date32).unwrap());
            let days = ours.as_primitive::<Date32Type>();
            // 3 Jan 2026 is day 20,456; the last microsecond of 1969 is day -1.
            assert_eq!(days.value(0), 20_456);
            assert_eq!(days.value(1), 20_457);
            assert_eq!(days.value(3), -1);
            assert_eq!(days.value(4), 0);
            assert!(days.is_null(7));
        }
    }
}
