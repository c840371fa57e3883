//! `normalize_phone(text, country_code) -> text`: the contract's phone identifier
//! (DATA_CONTRACT.md, "Identifiers"): the E.164 form (`+442079460958`) of a number
//! that libphonenumber (the `phonenumber` crate and its bundled metadata) parses
//! and deems *valid*, else NULL.
//!
//! `country_code` (ISO 3166-1 alpha-2, any case, surrounding spaces ignored) is the
//! default region for national numbers such as `020 7946 0958`. A NULL, empty or
//! unknown region leaves only international numbers (`+44 20 7946 0958`,
//! `tel:+44-20-7946-0958`) valid; an international number is read by its own
//! country code whatever the default region says. Extensions are dropped, as
//! E.164 has none. NULL phone gives NULL.
//!
//! Speed: the metadata database is a process-wide lazy static of the crate, built
//! once. phonenumber itself manages ~46k rows/s on one core (release, GB/US mix),
//! and about 40% of that time is its regex cache hashing whole metadata patterns
//! behind one global mutex, so extra partitions barely help. A phone number
//! recurs on every version of a profile and every step that reads it, so each
//! worker thread memoises the result per distinct (region, phone) text
//! (`PhoneMemo`, at most [`MEMO_ENTRIES`] entries, about 80 bytes each: about
//! 40 MiB per thread at most, cleared when full), so the golden record finds the
//! numbers identity stitching already normalised; a region column is parsed once
//! per distinct consecutive value.

use std::cell::RefCell;
use std::str::FromStr;
use std::sync::Arc;

use datafusion::arrow::array::StringBuilder;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::Result;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};
use phonenumber::country;
use phonenumber::{Mode, PhoneNumber};

use super::{StrArg, into_columnar, rows_to_compute};

/// The E.164 form of `raw` when it is a valid number, `region` being the default
/// region for national numbers; else `None`.
pub fn normalize_phone(raw: &str, region: Option<&str>) -> Option<String> {
    let number = parse_valid(raw, region.and_then(parse_region))?;
    Some(number.format().mode(Mode::E164).to_string())
}

/// Builds libphonenumber's metadata database (a lazy static of the crate, about
/// 0.2 s of one core) on a background thread, so that the first step to
/// normalise a phone does not wait for it: a run calls this before reading its
/// sources, which take longer than that. Later calls do nothing.
pub fn warm_up() {
    static STARTED: std::sync::Once = std::sync::Once::new();
    STARTED.call_once(|| {
        let spawned = std::thread::Builder::new()
            .name("c360-phone-init".into())
            .spawn(|| {
                normalize_phone("+44 20 7946 0958", Some("GB"));
                normalize_phone("+1 415-555-0134", Some("US"));
            });
        if let Err(e) = spawned {
            tracing::debug!(error = %e, "phone metadata warm-up not started");
        }
    });
}

/// An ISO alpha-2 code known to libphonenumber, in any case, trimmed; else `None`.
pub fn parse_region(text: &str) -> Option<country::Id> {
    let code = text.trim();
    if code.len() != 2 || !code.bytes().all(|b| b.is_ascii_alphabetic()) {
        return None;
    }
    country::Id::from_str(&code.to_ascii_uppercase()).ok()
}

fn parse_valid(raw: &str, region: Option<country::Id>) -> Option<PhoneNumber> {
    let text = raw.trim();
    if text.is_empty() {
        return None;
    }
    let number = phonenumber::parse(region, text).ok()?;
    phonenumber::is_valid(&number).then_some(number)
}

/// Remembers the last region text seen and its parse, since a region column is
/// mostly long runs of the same code.
#[derive(Default)]
struct RegionCache {
    text: String,
    id: Option<country::Id>,
}

impl RegionCache {
    fn get(&mut self, text: Option<&str>) -> Option<country::Id> {
        let text = text?;
        if text != self.text {
            self.text.clear();
            self.text.push_str(text);
            self.id = parse_region(text);
        }
        self.id
    }
}

/// Most distinct phone texts one worker thread remembers before it starts over.
pub const MEMO_ENTRIES: usize = 1 << 19;

/// Raw phone text -> its E.164 form, or `None` when it is not a valid number
/// (hashbrown's foldhash: std's SipHash was visible in the profile).
type E164ByText = hashbrown::HashMap<Box<str>, Option<Box<str>>>;

/// Per-thread results of [`normalize_phone`] by default region, then raw text.
#[derive(Default)]
struct PhoneMemo {
    by_region: hashbrown::HashMap<Option<country::Id>, E164ByText>,
    entries: usize,
}

impl PhoneMemo {
    /// The E.164 form of `raw` under `region`, computed once per distinct value.
    fn get(&mut self, raw: &str, region: Option<country::Id>) -> Option<&str> {
        if self.entries >= MEMO_ENTRIES {
            self.by_region.clear();
            self.entries = 0;
        }
        let known = self.by_region.entry(region).or_default();
        if !known.contains_key(raw) {
            let e164 = parse_valid(raw, region)
                .map(|n| n.format().mode(Mode::E164).to_string().into_boxed_str());
            known.insert(raw.into(), e164);
            self.entries += 1;
        }
        known.get(raw).and_then(|v| v.as_deref())
    }
}

thread_local! {
    static MEMO: RefCell<PhoneMemo> = RefCell::new(PhoneMemo::default());
}

/// The `normalize_phone` SQL function; see the module docs for the rule.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct NormalizePhone {
    signature: Signature,
}

impl NormalizePhone {
    /// The UDF implementation (two string arguments: phone, default region).
    pub fn new() -> Self {
        Self {
            signature: Signature::string(2, Volatility::Immutable),
        }
    }
}

impl Default for NormalizePhone {
    fn default() -> Self {
        Self::new()
    }
}

impl ScalarUDFImpl for NormalizePhone {
    fn name(&self) -> &str {
        "normalize_phone"
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
        let [phone, region] = inputs.as_slice() else {
            return datafusion::common::exec_err!(
                "normalize_phone takes two arguments: phone, country_code"
            );
        };
        let rows = rows_to_compute(&inputs, args.number_rows);
        // E.164 is at most 16 bytes (`+` and 15 digits).
        let mut builder = StringBuilder::with_capacity(rows, rows * 16);
        let mut regions = RegionCache::default();
        MEMO.with_borrow_mut(|memo| {
            for row in 0..rows {
                let e164 = phone
                    .get(row)
                    .and_then(|raw| memo.get(raw, regions.get(region.get(row))));
                builder.append_option(e164);
            }
        });
        into_columnar(&inputs, Arc::new(builder.finish()))
    }
}
