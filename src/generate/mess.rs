//! Malformed-row injection. Every `interval` valid rows, an extract gets one
//! malformed row whose reason cycles through the reasons that extract can
//! produce, so each reason appears early and the reject fraction of any prefix
//! of the data stays at most `1 / interval` (well under the 1% default budget).
//!
//! A corruption touches exactly one thing and starts from a valid row, so the
//! recorded reason is the first one in the contract order the row triggers.

/// Reject reasons, in the contract's first-match order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Mess {
    WrongColumnCount,
    BrokenJson,
    MissingRequired,
    BadTimestamp,
    BadDate,
    BadNumber,
    NegativeQuantity,
    NegativeAmount,
    UnknownCurrency,
    BadBool,
    BadEnum,
    NoCustomerIdentifier,
}

impl Mess {
    /// The reason as written in rejects.
    pub fn as_str(self) -> &'static str {
        match self {
            Mess::WrongColumnCount => "wrong_column_count",
            Mess::BrokenJson => "broken_json",
            Mess::MissingRequired => "missing_required",
            Mess::BadTimestamp => "bad_timestamp",
            Mess::BadDate => "bad_date",
            Mess::BadNumber => "bad_number",
            Mess::NegativeQuantity => "negative_quantity",
            Mess::NegativeAmount => "negative_amount",
            Mess::UnknownCurrency => "unknown_currency",
            Mess::BadBool => "bad_bool",
            Mess::BadEnum => "bad_enum",
            Mess::NoCustomerIdentifier => "no_customer_identifier",
        }
    }
}

/// Reasons a profiles row can be rejected for.
pub const PROFILE_REASONS: &[Mess] = &[
    Mess::WrongColumnCount,
    Mess::MissingRequired,
    Mess::BadTimestamp,
    Mess::BadDate,
    Mess::BadBool,
    Mess::BadEnum,
];

/// Reasons a transactions row can be rejected for.
pub const TRANSACTION_REASONS: &[Mess] = &[
    Mess::WrongColumnCount,
    Mess::MissingRequired,
    Mess::BadTimestamp,
    Mess::BadNumber,
    Mess::NegativeQuantity,
    Mess::NegativeAmount,
    Mess::UnknownCurrency,
    Mess::BadEnum,
    Mess::NoCustomerIdentifier,
];

/// Reasons a communications line can be rejected for.
pub const EVENT_REASONS: &[Mess] = &[
    Mess::BrokenJson,
    Mess::MissingRequired,
    Mess::BadTimestamp,
    Mess::BadNumber,
    Mess::BadEnum,
];

/// Valid rows between two malformed ones (0.4% malformed).
pub const DEFAULT_INTERVAL: u64 = 250;

/// Decides when the next malformed row is due and with which reason.
#[derive(Debug, Clone)]
pub struct RejectInjector {
    reasons: &'static [Mess],
    interval: u64,
    since_last: u64,
    injected: u64,
}

/// A due corruption: the reason and which of its variants to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Corruption {
    pub reason: Mess,
    pub variant: u8,
}

impl RejectInjector {
    /// An injector cycling through `reasons`.
    pub fn new(reasons: &'static [Mess], interval: u64) -> Self {
        Self {
            reasons,
            interval: interval.max(1),
            since_last: 0,
            injected: 0,
        }
    }

    /// Counts one valid row; returns the corruption to inject after it, if due.
    pub fn after_valid_row(&mut self) -> Option<Corruption> {
        self.since_last += 1;
        if self.since_last < self.interval || self.reasons.is_empty() {
            return None;
        }
        self.since_last = 0;
        let n = self.reasons.len() as u64;
        let c = Corruption {
            reason: self.reasons[(self.injected % n) as usize],
            variant: ((self.injected / n) % 2) as u8,
        };
        self.injected += 1;
        Some(c)
    }
}

/// Corrupts a full, valid profiles row (contract columns, plus any extras after them).
pub fn corrupt_profile(fields: &mut Vec<String>, c: Corruption) {
    use super::profiles::col;
    let v = c.variant == 0;
    match c.reason {
        // An unquoted comma in the city splits it: one field too many.
        Mess::WrongColumnCount if v => fields.insert(col::CITY + 1, "UK".into()),
        Mess::WrongColumnCount => {
            fields.pop();
        }
        Mess::MissingRequired if v => fields[col::UPDATED_AT] = String::new(),
        Mess::MissingRequired => fields[col::SOURCE_CUSTOMER_ID] = String::new(),
        Mess::BadTimestamp if v => {
            fields[col::UPDATED_AT] = strip_offset(&fields[col::UPDATED_AT]);
        }
        Mess::BadTimestamp => fields[col::SIGNUP_TS] = "2025-13-40T25:61:00Z".into(),
        Mess::BadDate if v => fields[col::BIRTH_DATE] = "1985-02-30".into(),
        Mess::BadDate => fields[col::BIRTH_DATE] = "12/03/1985".into(),
        Mess::BadBool if v => fields[col::EMAIL_OPT_IN] = "yes".into(),
        Mess::BadBool => fields[col::SMS_OPT_IN] = "Y".into(),
        Mess::BadEnum if v => fields[col::ACCOUNT_TYPE] = "vip".into(),
        Mess::BadEnum => fields[col::ACCOUNT_TYPE] = "reseller".into(),
        _ => {}
    }
}

/// Corrupts a valid, completed transactions line that has a `source_customer_id`.
pub fn corrupt_transaction(fields: &mut Vec<String>, c: Corruption) {
    use super::transactions::col;
    let v = c.variant == 0;
    match c.reason {
        Mess::WrongColumnCount if v => {
            fields.remove(col::UNIT_COST);
        }
        Mess::WrongColumnCount => fields.push(String::new()),
        Mess::MissingRequired if v => fields[col::CURRENCY] = String::new(),
        Mess::MissingRequired => fields[col::ORDER_TS] = String::new(),
        Mess::BadTimestamp if v => fields[col::ORDER_TS] = strip_offset(&fields[col::ORDER_TS]),
        Mess::BadTimestamp => fields[col::ORDER_TS] = "03/01/2026 10:15".into(),
        Mess::BadNumber if v => fields[col::UNIT_PRICE] = "12.345".into(),
        Mess::BadNumber => fields[col::QUANTITY] = "two".into(),
        Mess::NegativeQuantity if v => fields[col::QUANTITY] = "0".into(),
        Mess::NegativeQuantity => fields[col::QUANTITY] = "-1".into(),
        Mess::NegativeAmount if v => fields[col::UNIT_PRICE] = "-9.99".into(),
        Mess::NegativeAmount => fields[col::DISCOUNT] = "-1.00".into(),
        Mess::UnknownCurrency if v => fields[col::CURRENCY] = "XYZ".into(),
        Mess::UnknownCurrency => fields[col::CURRENCY] = "BTC".into(),
        Mess::BadEnum if v => fields[col::STATUS] = "shipped".into(),
        Mess::BadEnum => fields[col::CHANNEL] = "fax".into(),
        Mess::NoCustomerIdentifier => {
            fields[col::SOURCE_CUSTOMER_ID] = String::new();
            fields[col::EMAIL] = String::new();
        }
        _ => {}
    }
}

/// Corrupts a valid event (ordered `(field, JSON value)` pairs) and renders the line.
pub fn corrupt_event(mut pairs: Vec<(&'static str, String)>, c: Corruption) -> String {
    let v = c.variant == 0;
    let set =
        |pairs: &mut Vec<(&'static str, String)>, key: &'static str, value: String| match pairs
            .iter_mut()
            .find(|(k, _)| *k == key)
        {
            Some(slot) => slot.1 = value,
            None => pairs.push((key, value)),
        };
    match c.reason {
        Mess::BrokenJson => {
            let line = super::communications::render_event(&pairs);
            // Cut before the closing brace: never valid JSON.
            let cut = line.len() / 2;
            let cut = (0..=cut)
                .rev()
                .find(|i| line.is_char_boundary(*i))
                .unwrap_or(0);
            return line[..cut].to_string();
        }
        Mess::MissingRequired => {
            let key = if v { "event_type" } else { "event_ts" };
            pairs.retain(|(k, _)| *k != key);
        }
        Mess::BadTimestamp => {
            let ts = pairs
                .iter()
                .find(|(k, _)| *k == "event_ts")
                .map(|(_, val)| val.trim_matches('"').to_string())
                .unwrap_or_default();
            let bad = if v {
                strip_offset(&ts)
            } else {
                "05/01/2026 10:00".into()
            };
            set(&mut pairs, "event_ts", json_str(&bad));
        }
        Mess::BadNumber if v => set(&mut pairs, "cost", "0.125".into()),
        Mess::BadNumber => set(&mut pairs, "cost", json_str("1.2.3")),
        Mess::BadEnum if v => set(&mut pairs, "channel", json_str("fax")),
        Mess::BadEnum => set(&mut pairs, "event_type", json_str("liked")),
        _ => {}
    }
    super::communications::render_event(&pairs)
}

/// `2026-01-03T10:00:00+01:00` -> `2026-01-03T10:00:00`: a timestamp without offset.
fn strip_offset(ts: &str) -> String {
    ts.get(..19).unwrap_or(ts).to_string()
}

/// A JSON string literal.
pub fn json_str(s: &str) -> String {
    serde_json::Value::String(s.to_string()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn injector_cycles_reasons_at_the_interval() {
        let mut inj = RejectInjector::new(&[Mess::BadDate, Mess::BadBool], 3);
        let got: Vec<Option<Corruption>> = (0..9).map(|_| inj.after_valid_row()).collect();
        let due: Vec<(usize, Mess, u8)> = got
            .iter()
            .enumerate()
            .filter_map(|(i, c)| c.map(|c| (i, c.reason, c.variant)))
            .collect();
        assert_eq!(
            due,
            vec![
                (2, Mess::BadDate, 0),
                (5, Mess::BadBool, 0),
                (8, Mess::BadDate, 1)
            ]
        );
    }

    #[test]
    fn reasons_sort_in_contract_order() {
        let mut all = TRANSACTION_REASONS.to_vec();
        all.extend_from_slice(EVENT_REASONS);
        all.sort();
        assert_eq!(all.first().map(|r| r.as_str()), Some("wrong_column_count"));
        assert_eq!(
            all.last().map(|r| r.as_str()),
            Some("no_customer_identifier")
        );
    }

    #[test]
    fn strip_offset_leaves_a_timestamp_without_zone() {
        assert_eq!(
            strip_offset("2026-01-03T10:00:00+01:00"),
            "2026-01-03T10:00:00"
        );
        assert_eq!(strip_offset("2026-01-03T10:00:00Z"), "2026-01-03T10:00:00");
    }
}
