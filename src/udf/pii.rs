//! Personal data in outputs: `pii_hash(text) -> text` and `pii_mask(text) ->
//! text`, the SQL functions behind an output's column policies (`pii:` in the
//! job file, docs/rules.md "Personal data in outputs").
//!
//! - `pii_hash`: lowercase hex of HMAC-SHA256 over the value's UTF-8 bytes, keyed
//!   with the secret in `C360_PII_KEY` (or the file named by `C360_PII_KEY_FILE`,
//!   its content without a trailing line break). Never from the job file. The same
//!   key gives the same hash in every output and run, so hashed columns still join;
//!   a new key gives new hashes (SECURITY.md, rotating the key).
//! - `pii_mask`: an email keeps the first character of its local part and its
//!   domain (`j***@example.com`); a phone-like value (digits, spaces and `+-().`
//!   only, at least 4 digits) keeps its last 4 digits and every separator
//!   (`+** ** **** 0958`); anything else keeps its first character (`S***`).
//!
//! NULL in gives NULL out.

use std::sync::Arc;

use datafusion::arrow::array::StringBuilder;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{Result, exec_err};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::{StrArg, into_columnar, rows_to_compute};

/// The environment variable holding the hash key.
pub const KEY_ENV: &str = "C360_PII_KEY";
/// The environment variable naming a file that holds the hash key.
pub const KEY_FILE_ENV: &str = "C360_PII_KEY_FILE";
/// The shortest key accepted, in bytes.
pub const MIN_KEY_BYTES: usize = 16;

/// The secret `pii_hash` is keyed with. Its `Debug` never shows it.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct PiiKey(Arc<[u8]>);

impl std::fmt::Debug for PiiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PiiKey(<{} bytes, redacted>)", self.0.len())
    }
}

impl PiiKey {
    /// A key from its bytes; shorter than [`MIN_KEY_BYTES`] is refused.
    pub fn new(bytes: &[u8]) -> Result<Self, String> {
        if bytes.len() < MIN_KEY_BYTES {
            return Err(format!(
                "the PII hash key has {} bytes; use a random secret of at least {MIN_KEY_BYTES}",
                bytes.len()
            ));
        }
        Ok(Self(bytes.into()))
    }

    /// The key from `C360_PII_KEY`, else from the file `C360_PII_KEY_FILE`
    /// names; `Ok(None)` when neither is set.
    pub fn from_env() -> Result<Option<Self>, String> {
        if let Some(value) = std::env::var_os(KEY_ENV) {
            return Self::new(value.as_encoded_bytes())
                .map(Some)
                .map_err(|e| format!("{KEY_ENV}: {e}"));
        }
        let Some(path) = std::env::var_os(KEY_FILE_ENV) else {
            return Ok(None);
        };
        let bytes = std::fs::read(&path).map_err(|e| {
            format!(
                "{KEY_FILE_ENV}: cannot read {}: {e}",
                std::path::Path::new(&path).display()
            )
        })?;
        let trimmed = bytes
            .strip_suffix(b"\n")
            .map_or(&bytes[..], |b| b.strip_suffix(b"\r").unwrap_or(b));
        Self::new(trimmed)
            .map(Some)
            .map_err(|e| format!("{KEY_FILE_ENV}: {e}"))
    }

    /// Lowercase hex of HMAC-SHA256(key, value).
    pub fn hash(&self, value: &str) -> String {
        // HMAC takes a key of any length; `new_from_slice` cannot fail for it.
        let mut mac = match Hmac::<Sha256>::new_from_slice(&self.0) {
            Ok(mac) => mac,
            Err(_) => unreachable!("HMAC accepts keys of any length"),
        };
        mac.update(value.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }
}

/// The masked form of `value` (module docs).
pub fn mask(value: &str) -> String {
    if let Some((local, domain)) = value.rsplit_once('@') {
        let first: String = local.chars().take(1).collect();
        return format!("{first}***@{domain}");
    }
    let phone_like = value
        .chars()
        .all(|c| c.is_ascii_digit() || " +-().".contains(c));
    let digits = value.chars().filter(char::is_ascii_digit).count();
    if phone_like && digits >= 4 {
        let mut seen = 0;
        return value
            .chars()
            .map(|c| {
                if c.is_ascii_digit() {
                    seen += 1;
                    if seen <= digits - 4 { '*' } else { c }
                } else {
                    c
                }
            })
            .collect();
    }
    let first: String = value.chars().take(1).collect();
    format!("{first}***")
}

/// The `pii_hash` SQL function; errors when called without a key.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct PiiHash {
    signature: Signature,
    key: Option<PiiKey>,
}

impl PiiHash {
    /// `pii_hash` keyed with `key` (`None`: every call fails, saying how to set one).
    pub fn new(key: Option<PiiKey>) -> Self {
        Self {
            signature: Signature::string(1, Volatility::Immutable),
            key,
        }
    }
}

impl ScalarUDFImpl for PiiHash {
    fn name(&self) -> &str {
        "pii_hash"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let Some(key) = &self.key else {
            return exec_err!(
                "pii_hash: no key; set {KEY_ENV} (or {KEY_FILE_ENV}) to a secret of at least {MIN_KEY_BYTES} bytes"
            );
        };
        map_strings(&args, self.name(), 64, |v| key.hash(v))
    }
}

/// The `pii_mask` SQL function.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct PiiMask {
    signature: Signature,
}

impl PiiMask {
    /// The UDF implementation (one string argument of any Arrow string type).
    pub fn new() -> Self {
        Self {
            signature: Signature::string(1, Volatility::Immutable),
        }
    }
}

impl Default for PiiMask {
    fn default() -> Self {
        Self::new()
    }
}

impl ScalarUDFImpl for PiiMask {
    fn name(&self) -> &str {
        "pii_mask"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        map_strings(&args, self.name(), 24, mask)
    }
}

/// Applies `f` to each non-NULL value of the one string argument.
fn map_strings(
    args: &ScalarFunctionArgs,
    name: &str,
    bytes_per_row: usize,
    f: impl Fn(&str) -> String,
) -> Result<ColumnarValue> {
    let inputs = args
        .args
        .iter()
        .map(|a| StrArg::new(a, name))
        .collect::<Result<Vec<_>>>()?;
    let [value] = inputs.as_slice() else {
        return exec_err!("{name} takes one argument");
    };
    let rows = rows_to_compute(&inputs, args.number_rows);
    let mut builder = StringBuilder::with_capacity(rows, rows * bytes_per_row);
    for row in 0..rows {
        match value.get(row) {
            Some(v) => builder.append_value(f(v)),
            None => builder.append_null(),
        }
    }
    into_columnar(&inputs, Arc::new(builder.finish()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_is_hmac_sha256_hex() {
        // RFC 4231, test case 2 (key "Jefe" is short, so build the key directly).
        let key = PiiKey(Arc::from(&b"Jefe"[..]));
        assert_eq!(
            key.hash("what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn short_keys_are_refused_and_debug_hides_the_key() {
        assert!(PiiKey::new(b"short").is_err());
        let key = PiiKey::new(b"0123456789abcdef-secret").unwrap();
        let shown = format!("{key:?}");
        assert!(!shown.contains("secret"), "{shown}");
    }

    #[test]
    fn masks_keep_only_a_hint() {
        assert_eq!(mask("joann.smith@example.com"), "j***@example.com");
        assert_eq!(mask("+44 20 7946 0958"), "+** ** **** 0958");
        assert_eq!(mask("+442079460958"), "+********0958");
        assert_eq!(mask("Sofia"), "S***");
        assert_eq!(mask("123"), "1***");
        assert_eq!(mask(""), "***");
    }
}
