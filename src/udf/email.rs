//! `normalize_email(text) -> text`: the contract's email identifier rule
//! (DATA_CONTRACT.md, "Identifiers"), as a SQL function and a Rust function.
//!
//! An email is an identifier when `lower(trim(email))` matches `local@domain.tld`:
//! local part `[a-z0-9._%+-]+`, then `@`, then one or more domain labels
//! `[a-z0-9-]+` each followed by `.`, then a tld of two or more letters `[a-z]{2,}`.
//! As a regular expression: `^[a-z0-9._%+-]+@([a-z0-9-]+\.)+[a-z]{2,}$`.
//!
//! Edge cases, decided by reading the rule literally (no RFC 5321 extras):
//! - a label must be non-empty, so `a@.example.com`, `a@example..com` and a
//!   trailing dot `a@example.com.` are not identifiers;
//! - the character classes are all there is: dots anywhere in the local part
//!   (`.a..b.@x.com`) and hyphens at either end of a label (`a@-x-.com`) are allowed;
//! - a bare domain without a tld (`a@localhost`) and digits in the tld (`a@x.c0m`)
//!   are not identifiers; neither is anything with a second `@`, a space or
//!   quotes inside, or non-ASCII letters (`é`);
//! - `trim` removes Unicode white space (spaces, tabs, line breaks, no-break
//!   spaces) at both ends, as every text field is trimmed when read; `lower` is
//!   Unicode lowercasing, as SQL `lower` (so the Kelvin sign `K` becomes `k`).
//!
//! NULL in gives NULL out; so does a value that is not an identifier.

use std::sync::Arc;

use datafusion::arrow::array::StringBuilder;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::Result;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};

use super::{StrArg, into_columnar, rows_to_compute};

/// The normalised email (`lower(trim(raw))`) when it is an identifier, else `None`.
pub fn normalize_email(raw: &str) -> Option<String> {
    let mut out = String::new();
    normalize_email_into(raw, &mut out).then_some(out)
}

/// Writes `lower(trim(raw))` into `out` (cleared first) and says whether it is an
/// identifier; reusing `out` avoids one allocation per row.
pub fn normalize_email_into(raw: &str, out: &mut String) -> bool {
    out.clear();
    let trimmed = raw.trim();
    if trimmed.is_ascii() {
        out.extend(trimmed.bytes().map(|b| char::from(b.to_ascii_lowercase())));
    } else {
        out.push_str(&trimmed.to_lowercase());
    }
    is_identifier(out)
}

/// Whether an already lowercased, trimmed email matches the contract's pattern.
fn is_identifier(email: &str) -> bool {
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    if local.is_empty() || !local.bytes().all(is_local_byte) {
        return false;
    }
    let Some((labels, tld)) = domain.rsplit_once('.') else {
        return false;
    };
    let tld_ok = tld.len() >= 2 && tld.bytes().all(|b| b.is_ascii_lowercase());
    // A second `@` lands in `domain` and fails the label class.
    tld_ok
        && labels
            .split('.')
            .all(|label| !label.is_empty() && label.bytes().all(is_label_byte))
}

fn is_local_byte(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'%' | b'+' | b'-')
}

fn is_label_byte(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'
}

/// The `normalize_email` SQL function; see the module docs for the rule.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct NormalizeEmail {
    signature: Signature,
}

impl NormalizeEmail {
    /// The UDF implementation (one string argument of any Arrow string type).
    pub fn new() -> Self {
        Self {
            signature: Signature::string(1, Volatility::Immutable),
        }
    }
}

impl Default for NormalizeEmail {
    fn default() -> Self {
        Self::new()
    }
}

impl ScalarUDFImpl for NormalizeEmail {
    fn name(&self) -> &str {
        "normalize_email"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let inputs = args
            .args
            .iter()
            .map(|a| StrArg::new(a, self.name()))
            .collect::<Result<Vec<_>>>()?;
        let [email] = inputs.as_slice() else {
            return datafusion::common::exec_err!("normalize_email takes one argument");
        };
        let rows = rows_to_compute(&inputs, args.number_rows);
        // Normalised emails are never longer than the input, so ~24 bytes/row is a fair start.
        let mut builder = StringBuilder::with_capacity(rows, rows * 24);
        let mut buffer = String::new();
        for row in 0..rows {
            match email.get(row) {
                Some(raw) if normalize_email_into(raw, &mut buffer) => {
                    builder.append_value(&buffer)
                }
                _ => builder.append_null(),
            }
        }
        into_columnar(&inputs, Arc::new(builder.finish()))
    }
}
