//! Field validation: one raw text value -> a typed value or the reject reason it
//! earns, per the contract's "Rules that settle the edge cases".
//!
//! Every value is trimmed first; an empty value is NULL (or `missing_required`).
//! The parsers are deliberately strict and hand-written so that what is accepted
//! is exactly what the contract states, not whatever a general parser tolerates.

use std::borrow::Cow;
use std::collections::HashSet;

use chrono::{DateTime, NaiveDate};

use super::reject::Reason;
use super::schema::{FieldKind, FieldSpec};

/// A typed field value, ready for the column builder of its kind.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value<'a> {
    Null,
    Text(Cow<'a, str>),
    Int(i64),
    /// Unscaled decimal at the scale of the field's kind.
    Decimal(i128),
    /// Days since 1970-01-01.
    Date(i32),
    /// Microseconds since the epoch, UTC.
    Timestamp(i64),
    Bool(bool),
}

/// Types one raw value of `field`; `currencies` is the known set for lookups.
pub(crate) fn type_value<'a>(
    field: &FieldSpec,
    raw: Option<&'a str>,
    currencies: Option<&HashSet<String>>,
) -> Result<Value<'a>, Reason> {
    let text = raw.map(str::trim).unwrap_or("");
    if text.is_empty() {
        return if field.required {
            Err(Reason::MissingRequired)
        } else {
            Ok(Value::Null)
        };
    }
    match field.kind {
        FieldKind::Text => Ok(Value::Text(Cow::Borrowed(text))),
        FieldKind::Currency { lookup } => {
            let code = text.to_uppercase();
            match currencies {
                Some(known) if lookup && !known.contains(&code) => Err(Reason::UnknownCurrency),
                _ => Ok(Value::Text(Cow::Owned(code))),
            }
        }
        FieldKind::Int => parse_int(text).map(Value::Int).ok_or(Reason::BadNumber),
        FieldKind::Quantity => match parse_int(text) {
            None => Err(Reason::BadNumber),
            Some(q) if q <= 0 => Err(Reason::NegativeQuantity),
            Some(q) => Ok(Value::Int(q)),
        },
        FieldKind::Money => parse_decimal(text, 12, 2)
            .map(Value::Decimal)
            .ok_or(Reason::BadNumber),
        FieldKind::NonNegativeMoney => match parse_decimal(text, 12, 2) {
            None => Err(Reason::BadNumber),
            Some(v) if v < 0 => Err(Reason::NegativeAmount),
            Some(v) => Ok(Value::Decimal(v)),
        },
        // The contract has no reason for a non-positive rate; it is not a usable
        // number, so it is `bad_number`.
        FieldKind::Rate => match parse_decimal(text, 18, 8) {
            Some(v) if v > 0 => Ok(Value::Decimal(v)),
            _ => Err(Reason::BadNumber),
        },
        FieldKind::Date => parse_date(text).map(Value::Date).ok_or(Reason::BadDate),
        FieldKind::Timestamp => parse_timestamp_micros(text)
            .map(Value::Timestamp)
            .ok_or(Reason::BadTimestamp),
        FieldKind::Bool => parse_bool(text).map(Value::Bool).ok_or(Reason::BadBool),
        FieldKind::Enum(allowed) => {
            if allowed.contains(&text) {
                Ok(Value::Text(Cow::Borrowed(text)))
            } else {
                Err(Reason::BadEnum)
            }
        }
    }
}

/// `-?[0-9]+` fitting an i64 (`+1`, `1.0`, `1e3` are not integers here).
pub(crate) fn parse_int(s: &str) -> Option<i64> {
    let digits = s.strip_prefix('-').unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// `-?[0-9]+(\.[0-9]{1,scale})?` as an unscaled integer at `scale`, with at most
/// `precision - scale` integer digits (leading zeros do not count).
pub(crate) fn parse_decimal(s: &str, precision: u32, scale: u32) -> Option<i128> {
    let (negative, unsigned) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let (int_part, frac_part) = match unsigned.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (unsigned, None),
    };
    let all_digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
    if !all_digits(int_part) {
        return None;
    }
    let frac = match frac_part {
        Some(f) if !all_digits(f) || f.len() > scale as usize => return None,
        Some(f) => f,
        None => "",
    };
    let significant = int_part.trim_start_matches('0');
    if significant.len() > (precision - scale) as usize {
        return None;
    }
    let mut value: i128 = 0;
    for b in significant.bytes().chain(frac.bytes()) {
        value = value * 10 + i128::from(b - b'0');
    }
    value *= 10_i128.pow(scale - frac.len() as u32);
    Some(if negative { -value } else { value })
}

/// RFC 3339 with an explicit offset (`Z` allowed) -> microseconds since the epoch.
pub(crate) fn parse_timestamp_micros(s: &str) -> Option<i64> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.timestamp_micros())
}

/// Strict `YYYY-MM-DD` -> days since 1970-01-01.
pub(crate) fn parse_date(s: &str) -> Option<i32> {
    let b = s.as_bytes();
    let shape_ok = b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
    if !shape_ok {
        return None;
    }
    let date = NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()?;
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1)?;
    i32::try_from((date - epoch).num_days()).ok()
}

/// Exactly `true` or `false` (lower case).
pub(crate) fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(kind: FieldKind, required: bool) -> FieldSpec {
        FieldSpec {
            name: "f",
            kind,
            required,
        }
    }

    #[test]
    fn int_accepts_only_plain_digits() {
        assert_eq!(parse_int("42"), Some(42));
        assert_eq!(parse_int("-7"), Some(-7));
        assert_eq!(parse_int("007"), Some(7));
        for bad in ["1.0", "+1", "1e3", "", "-", "12a", "99999999999999999999"] {
            assert_eq!(parse_int(bad), None, "{bad}");
        }
    }

    #[test]
    fn money_has_at_most_two_places_and_ten_integer_digits() {
        assert_eq!(parse_decimal("12.5", 12, 2), Some(1250));
        assert_eq!(parse_decimal("12.50", 12, 2), Some(1250));
        assert_eq!(parse_decimal("-0.01", 12, 2), Some(-1));
        assert_eq!(parse_decimal("3", 12, 2), Some(300));
        assert_eq!(
            parse_decimal("0009999999999.99", 12, 2),
            Some(999_999_999_999)
        );
        for bad in [
            "1.234",
            "1.",
            ".5",
            "+1",
            "1,5",
            "1e2",
            "abc",
            "--1",
            "10000000000",
        ] {
            assert_eq!(parse_decimal(bad, 12, 2), None, "{bad}");
        }
    }

    #[test]
    fn rate_has_up_to_eight_places() {
        assert_eq!(parse_decimal("1.08125", 18, 8), Some(108_125_000));
        assert_eq!(parse_decimal("0.00000001", 18, 8), Some(1));
        assert_eq!(parse_decimal("0.000000001", 18, 8), None);
    }

    #[test]
    fn timestamps_need_an_offset() {
        // 2026-11-21T17:04:05Z = 1_795_280_645 s since the epoch (worked out with `date -d`).
        assert_eq!(
            parse_timestamp_micros("2026-11-21T18:04:05+01:00"),
            Some(1_795_280_645_000_000)
        );
        assert_eq!(
            parse_timestamp_micros("2026-11-21T17:04:05Z"),
            Some(1_795_280_645_000_000)
        );
        assert_eq!(
            parse_timestamp_micros("2026-11-21T17:04:05.5Z"),
            Some(1_795_280_645_500_000)
        );
        assert_eq!(parse_timestamp_micros("2026-11-21T17:04:05"), None);
        assert_eq!(parse_timestamp_micros("2026-11-21"), None);
        assert_eq!(parse_timestamp_micros("yesterday"), None);
    }

    #[test]
    fn dates_are_strict_iso() {
        // 2026-01-02 is 56 years (14 leap days 1972..=2024) after 1970-01-01: 56*365+14+1.
        assert_eq!(parse_date("2026-01-02"), Some(56 * 365 + 14 + 1));
        assert_eq!(parse_date("1970-01-01"), Some(0));
        for bad in [
            "2026-1-2",
            "2026/01/02",
            "02-01-2026",
            "2026-02-30",
            "2026-01-02T00:00",
        ] {
            assert_eq!(parse_date(bad), None, "{bad}");
        }
    }

    #[test]
    fn booleans_are_lower_case_words() {
        assert_eq!(parse_bool("true"), Some(true));
        assert_eq!(parse_bool("false"), Some(false));
        for bad in ["TRUE", "True", "1", "yes", "f"] {
            assert_eq!(parse_bool(bad), None, "{bad}");
        }
    }

    #[test]
    fn empty_values_are_null_or_missing_required() {
        let f = field(FieldKind::Bool, false);
        assert_eq!(type_value(&f, Some("   "), None), Ok(Value::Null));
        assert_eq!(type_value(&f, None, None), Ok(Value::Null));
        let r = field(FieldKind::Text, true);
        assert_eq!(
            type_value(&r, Some(" "), None),
            Err(Reason::MissingRequired)
        );
        assert_eq!(type_value(&r, None, None), Err(Reason::MissingRequired));
    }

    #[test]
    fn text_is_trimmed() {
        let f = field(FieldKind::Text, false);
        assert_eq!(
            type_value(&f, Some("  Ann@X.com "), None),
            Ok(Value::Text(Cow::Borrowed("Ann@X.com")))
        );
    }

    #[test]
    fn quantity_and_amount_signs() {
        let q = field(FieldKind::Quantity, true);
        assert_eq!(
            type_value(&q, Some("0"), None),
            Err(Reason::NegativeQuantity)
        );
        assert_eq!(
            type_value(&q, Some("-2"), None),
            Err(Reason::NegativeQuantity)
        );
        assert_eq!(type_value(&q, Some("1.0"), None), Err(Reason::BadNumber));
        assert_eq!(type_value(&q, Some("3"), None), Ok(Value::Int(3)));
        let m = field(FieldKind::NonNegativeMoney, false);
        assert_eq!(
            type_value(&m, Some("-0.01"), None),
            Err(Reason::NegativeAmount)
        );
        assert_eq!(type_value(&m, Some("0"), None), Ok(Value::Decimal(0)));
        let r = field(FieldKind::Rate, true);
        assert_eq!(type_value(&r, Some("0"), None), Err(Reason::BadNumber));
    }

    #[test]
    fn currency_is_upper_cased_before_lookup() {
        let known: HashSet<String> = ["EUR".to_string(), "GBP".to_string()].into();
        let c = field(FieldKind::Currency { lookup: true }, true);
        assert_eq!(
            type_value(&c, Some(" eur "), Some(&known)),
            Ok(Value::Text(Cow::Owned("EUR".into())))
        );
        assert_eq!(
            type_value(&c, Some("USD"), Some(&known)),
            Err(Reason::UnknownCurrency)
        );
        // Without a known set there is nothing to look up against.
        assert_eq!(
            type_value(&c, Some("usd"), None),
            Ok(Value::Text(Cow::Owned("USD".into())))
        );
    }

    #[test]
    fn enums_are_case_sensitive() {
        let e = field(FieldKind::Enum(&["completed", "returned"]), true);
        assert_eq!(
            type_value(&e, Some(" completed "), None),
            Ok(Value::Text(Cow::Borrowed("completed")))
        );
        assert_eq!(
            type_value(&e, Some("Completed"), None),
            Err(Reason::BadEnum)
        );
    }
}
