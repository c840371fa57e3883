//! An independent reading of the generated extracts, written from
//! DATA_CONTRACT.md alone: parse every record, give it the first reject reason
//! that applies, and collect the identifiers of the valid profile rows.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::LazyLock;

use chrono::{DateTime, NaiveDate};
use regex::Regex;

/// `(extract, file, line, reason)`.
pub type Reject = (String, String, u64, String);

/// What the independent reading found.
#[derive(Default)]
pub struct Reading {
    pub rejects: BTreeSet<Reject>,
    pub rows: BTreeMap<String, u64>,
    /// `(country_code, phone)` of valid profile rows with a phone.
    pub phones: Vec<(String, String)>,
    /// Trimmed emails of valid profile rows, with how many rows carry each.
    pub emails: BTreeMap<String, u64>,
    /// `system:id` of valid profile rows.
    pub sources: BTreeSet<String>,
    /// Per valid profile row: `(system:id, lower(trim(email)), country_code, phone)`.
    pub profile_rows: Vec<[String; 4]>,
    /// Per valid transaction or event: `(system:id or "", lower(trim(email)))`.
    pub activity: Vec<(String, String)>,
}

const PROFILE_HEADER: usize = 15;
const TX_HEADER: usize = 15;

fn is_ts(s: &str) -> bool {
    DateTime::parse_from_rfc3339(s).is_ok()
}

impl Reading {
    /// Reads one decompressed file `name` (relative to the raw root).
    pub fn read(&mut self, name: &str, text: &str, currencies: &BTreeSet<String>) {
        let extract = name.split('/').next().unwrap_or_default().to_string();
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        if extract == "communications" {
            for (i, line) in text.split('\n').enumerate() {
                let line = line.strip_suffix('\r').unwrap_or(line);
                if line.is_empty() {
                    continue;
                }
                let reason = event_reason(line);
                if reason.is_none() {
                    self.activity.push(event_ids(line));
                }
                self.record(&extract, name, i as u64 + 1, reason);
            }
            return;
        }
        let mut rdr = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(text.as_bytes());
        let mut header_len = 0;
        for (i, rec) in rdr.records().enumerate() {
            let rec = rec.expect("csv record");
            let mut byte = rec.position().expect("position").byte() as usize;
            // After a CRLF line end the csv reader leaves the `\n` to the next
            // record's start: it belongs to the line before.
            if text.as_bytes().get(byte) == Some(&b'\n') {
                byte += 1;
            }
            let line = text.as_bytes()[..byte]
                .iter()
                .filter(|b| **b == b'\n')
                .count() as u64
                + 1;
            let f: Vec<&str> = rec.iter().map(str::trim).collect();
            if i == 0 {
                header_len = f.len();
                continue;
            }
            let reason = if f.len() != header_len {
                Some("wrong_column_count")
            } else {
                match extract.as_str() {
                    "profiles" => profile_reason(&f),
                    "transactions" => transaction_reason(&f, currencies),
                    _ => None,
                }
            };
            if extract == "profiles" && reason.is_none() {
                self.sources.insert(format!("{}:{}", f[0], f[1]));
                if !f[2].is_empty() {
                    *self.emails.entry(f[2].to_lowercase()).or_default() += 1;
                }
                if !f[3].is_empty() {
                    self.phones.push((f[9].to_string(), f[3].to_string()));
                }
                let source = format!("{}:{}", f[0], f[1]);
                self.profile_rows.push([
                    source,
                    f[2].to_lowercase(),
                    f[9].to_string(),
                    f[3].to_string(),
                ]);
            }
            if extract == "transactions" && reason.is_none() {
                let source = if f[3].is_empty() {
                    String::new()
                } else {
                    format!("{}:{}", f[2], f[3])
                };
                self.activity.push((source, f[4].to_lowercase()));
            }
            self.record(&extract, name, line, reason);
        }
        assert!(
            header_len == PROFILE_HEADER
                || header_len == PROFILE_HEADER + 1
                || header_len == TX_HEADER
                || header_len == 4
        );
    }

    fn record(&mut self, extract: &str, name: &str, line: u64, reason: Option<&str>) {
        *self.rows.entry(extract.to_string()).or_default() += 1;
        if let Some(r) = reason {
            self.rejects
                .insert((extract.to_string(), name.to_string(), line, r.to_string()));
        }
    }
}

fn profile_reason(f: &[&str]) -> Option<&'static str> {
    if f[0].is_empty() || f[1].is_empty() || f[14].is_empty() {
        return Some("missing_required");
    }
    if !is_ts(f[14]) || (!f[11].is_empty() && !is_ts(f[11])) {
        return Some("bad_timestamp");
    }
    if !f[6].is_empty() && NaiveDate::parse_from_str(f[6], "%Y-%m-%d").is_err() {
        return Some("bad_date");
    }
    if ![f[12], f[13]]
        .iter()
        .all(|b| ["true", "false", ""].contains(b))
    {
        return Some("bad_bool");
    }
    if !["consumer", "business", ""].contains(&f[10]) {
        return Some("bad_enum");
    }
    None
}

fn decimal_ok(s: &str) -> bool {
    static DECIMAL: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"^-?[0-9]+(\.[0-9]{1,2})?$").expect("regex"));
    DECIMAL.is_match(s)
}

fn transaction_reason(f: &[&str], currencies: &BTreeSet<String>) -> Option<&'static str> {
    if [0, 1, 2, 5, 9, 10, 13, 14].iter().any(|i| f[*i].is_empty()) {
        return Some("missing_required");
    }
    if !is_ts(f[5]) {
        return Some("bad_timestamp");
    }
    let ints_ok = f[1].parse::<i64>().is_ok() && f[9].parse::<i64>().is_ok();
    if !ints_ok
        || [10, 11, 12]
            .iter()
            .any(|i| !f[*i].is_empty() && !decimal_ok(f[*i]))
    {
        return Some("bad_number");
    }
    if f[9].parse::<i64>().unwrap_or(0) <= 0 {
        return Some("negative_quantity");
    }
    if f[10].starts_with('-') || f[11].starts_with('-') {
        return Some("negative_amount");
    }
    if !currencies.contains(&f[13].to_uppercase()) {
        return Some("unknown_currency");
    }
    let channel_ok = ["online", "store", "phone", "marketplace", ""].contains(&f[6]);
    if !["completed", "returned", "cancelled"].contains(&f[14]) || !channel_ok {
        return Some("bad_enum");
    }
    if f[3].is_empty() && f[4].is_empty() {
        return Some("no_customer_identifier");
    }
    None
}

fn event_reason(line: &str) -> Option<&'static str> {
    let Ok(serde_json::Value::Object(m)) = serde_json::from_str::<serde_json::Value>(line) else {
        return Some("broken_json");
    };
    let text = |k: &str| match m.get(k) {
        Some(serde_json::Value::String(s)) => Some(s.trim().to_string()),
        Some(serde_json::Value::Number(n)) => Some(n.to_string()),
        _ => None,
    };
    let required = ["event_id", "channel", "direction", "event_type", "event_ts"];
    if required
        .iter()
        .any(|k| text(k).is_none_or(|v| v.is_empty()))
    {
        return Some("missing_required");
    }
    if !is_ts(&text("event_ts").unwrap_or_default()) {
        return Some("bad_timestamp");
    }
    if text("cost").is_some_and(|c| !decimal_ok(&c)) {
        return Some("bad_number");
    }
    let channels = [
        "email",
        "sms",
        "push",
        "phone",
        "chat",
        "social",
        "direct_mail",
    ];
    let types = [
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
    ];
    let ok = channels.contains(&text("channel").unwrap_or_default().as_str())
        && ["outbound", "inbound"].contains(&text("direction").unwrap_or_default().as_str())
        && types.contains(&text("event_type").unwrap_or_default().as_str());
    (!ok).then_some("bad_enum")
}

/// `(system:id or "", lower(trim(email)))` of a valid event line.
fn event_ids(line: &str) -> (String, String) {
    let v: serde_json::Value = serde_json::from_str(line).unwrap_or_default();
    let s = |k: &str| v[k].as_str().unwrap_or_default().trim().to_lowercase();
    let source = if s("source_customer_id").is_empty() {
        String::new()
    } else {
        format!(
            "{}:{}",
            s("source_system"),
            v["source_customer_id"].as_str().unwrap_or_default().trim()
        )
    };
    (source, s("email"))
}
