//! Whether a reject row's raw text (or a typed row's identifiers, joined as
//! text: `cache`) carries an erased identifier. The erasure steps say who is
//! erased (`crate::erasure`); this layer owns the matcher it needs.
//!
//! Reject rows are text that failed to parse, so the match is on text, not on
//! columns, and errs towards removing a row (docs/rules.md "Erasure"):
//! - **email**: every `local@domain` run of email characters around an `@`,
//!   lower-cased, equal to an erased email (so case and stray spaces do not
//!   matter, and `xann@x.com` does not match `ann@x.com`);
//! - **source id**: a field equal to the erased id *and* a field equal to its
//!   system (`crm,C000123,…` or `"source_system":"crm",…"source_customer_id":"C000123"`);
//! - **phone**: a field made only of phone characters (digits, space, `+-().`)
//!   whose digits, leading zeros stripped, are at least 7 long and a suffix of
//!   an erased E.164 number: `020 7946 0958`, `+44 20 7946 0958` and
//!   `(415) 555-0100` match whatever the row's country, which a broken row may lack.
//!
//! Fields are the text between `,` `"` `{` `}` `[` `]` tabs and line breaks,
//! trimmed of spaces and `:` (so CSV lines and broken JSON lines both split).

use std::collections::{HashMap, HashSet};

/// Shortest phone digit string (after leading zeros) that counts as a match: a
/// national subscriber number is at least 7 digits in the numbering plans we see.
const MIN_PHONE_DIGITS: usize = 7;

/// The identifiers to keep out of published rejects.
#[derive(Debug, Clone, Default)]
pub struct ErasedIdentifiers {
    emails: HashSet<String>,
    /// source_customer_id -> its systems.
    sources: HashMap<String, Vec<String>>,
    /// Every suffix of at least [`MIN_PHONE_DIGITS`] of each erased phone's digits.
    phone_suffixes: HashSet<String>,
    /// Every identifier as added (`email` lower-cased), for exact lookups.
    pairs: HashSet<(String, String)>,
    count: usize,
}

impl ErasedIdentifiers {
    /// Adds one identifier in the identity map's form: `source` + `crm:C000123`,
    /// `email` + a normalised email, `phone` + an E.164 number.
    pub fn add(&mut self, id_type: &str, id_value: &str) -> Result<(), String> {
        match id_type {
            "email" => {
                self.emails.insert(id_value.to_lowercase());
            }
            "source" => {
                let (system, id) = id_value
                    .split_once(':')
                    .ok_or_else(|| format!("source id `{id_value}` is not `system:id`"))?;
                self.sources
                    .entry(id.to_string())
                    .or_default()
                    .push(system.to_string());
            }
            "phone" => {
                let digits: String = id_value.chars().filter(char::is_ascii_digit).collect();
                for start in 0..digits.len() {
                    let suffix = digits[start..].trim_start_matches('0');
                    if suffix.len() >= MIN_PHONE_DIGITS {
                        self.phone_suffixes.insert(suffix.to_string());
                    }
                }
            }
            other => return Err(format!("unknown id_type `{other}`")),
        }
        let value = match id_type {
            "email" => id_value.to_lowercase(),
            _ => id_value.to_string(),
        };
        self.pairs.insert((id_type.to_string(), value));
        self.count += 1;
        Ok(())
    }

    /// Identifiers added.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether there is nothing to match.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// A digest of the identifiers, equal for equal sets: the typed staging
    /// cache records the set an entry was found clean against.
    pub fn fingerprint(&self) -> u64 {
        use std::hash::{DefaultHasher, Hash, Hasher};
        let mut emails: Vec<&String> = self.emails.iter().collect();
        emails.sort();
        let mut sources: Vec<(&String, Vec<&String>)> = self
            .sources
            .iter()
            .map(|(id, systems)| {
                let mut systems: Vec<&String> = systems.iter().collect();
                systems.sort();
                (id, systems)
            })
            .collect();
        sources.sort();
        let mut phones: Vec<&String> = self.phone_suffixes.iter().collect();
        phones.sort();
        let mut hasher = DefaultHasher::new();
        (emails, sources, phones).hash(&mut hasher);
        hasher.finish()
    }

    /// Whether `id_type`, `id_value` (the identity map's form, e.g. `source` +
    /// `crm:C000123`) is one of the identifiers exactly (an email in any case).
    pub fn names(&self, id_type: &str, id_value: &str) -> bool {
        let value = if id_type == "email" {
            id_value.to_lowercase()
        } else {
            id_value.to_string()
        };
        self.pairs.contains(&(id_type.to_string(), value))
    }

    /// Whether `raw` carries one of the identifiers (module docs).
    pub fn carried_by(&self, raw: &str) -> bool {
        if self.is_empty() {
            return false;
        }
        if !self.emails.is_empty() && emails_in(raw).any(|e| self.emails.contains(e.as_ref())) {
            return true;
        }
        let source = !self.sources.is_empty()
            && fields(raw).any(|f| {
                self.sources
                    .get(f)
                    .is_some_and(|systems| fields(raw).any(|g| systems.iter().any(|s| s == g)))
            });
        source || (!self.phone_suffixes.is_empty() && fields(raw).any(|f| self.phone_matches(f)))
    }

    fn phone_matches(&self, field: &str) -> bool {
        let phone_chars = |c: char| c.is_ascii_digit() || " +-().".contains(c);
        if self.phone_suffixes.is_empty() || !field.chars().all(phone_chars) {
            return false;
        }
        let digits: String = field.chars().filter(char::is_ascii_digit).collect();
        let digits = digits.trim_start_matches('0');
        digits.len() >= MIN_PHONE_DIGITS && self.phone_suffixes.contains(digits)
    }
}

/// Fields of a raw line (module docs).
fn fields(raw: &str) -> impl Iterator<Item = &str> {
    raw.split([',', '"', '{', '}', '[', ']', '\t', '\r', '\n'])
        .map(|f| f.trim_matches(|c: char| c == ' ' || c == ':'))
        .filter(|f| !f.is_empty())
}

/// Every maximal run of email characters around an `@`, lower-cased, trailing
/// dots dropped (`mail ann@x.com.` names `ann@x.com`); borrowed when already
/// lower-case (most are: this runs over every cached row).
fn emails_in(raw: &str) -> impl Iterator<Item = std::borrow::Cow<'_, str>> + '_ {
    let local = |c: u8| c.is_ascii_alphanumeric() || b"._%+-".contains(&c);
    let domain = |c: u8| c.is_ascii_alphanumeric() || b".-".contains(&c);
    let bytes = raw.as_bytes();
    bytes
        .iter()
        .enumerate()
        .filter(|(_, b)| **b == b'@')
        .map(move |(at, _)| {
            let start = bytes[..at]
                .iter()
                .rposition(|&c| !local(c))
                .map_or(0, |i| i + 1);
            let end = bytes[at + 1..]
                .iter()
                .position(|&c| !domain(c))
                .map_or(bytes.len(), |i| at + 1 + i);
            // Both ends sit next to ASCII bytes (or the text's ends), so they are
            // char boundaries.
            let email = raw[start..end].trim_end_matches('.');
            if email.bytes().any(|b| b.is_ascii_uppercase()) {
                std::borrow::Cow::Owned(email.to_ascii_lowercase())
            } else {
                std::borrow::Cow::Borrowed(email)
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn erased() -> ErasedIdentifiers {
        let mut ids = ErasedIdentifiers::default();
        ids.add("email", "ann.lee@example.com").unwrap();
        ids.add("source", "crm:C1").unwrap();
        ids.add("phone", "+442079460958").unwrap();
        ids
    }

    #[test]
    fn email_matches_whatever_the_case_and_spaces_but_not_a_longer_address() {
        let ids = erased();
        assert!(ids.carried_by("web,W9,  ANN.Lee@Example.COM ,x"));
        assert!(ids.carried_by(r#"{"email":"ann.lee@example.com","#));
        assert!(ids.carried_by("wrote to ann.lee@example.com."));
        assert!(!ids.carried_by("web,W9,joann.lee@example.com,x"));
        assert!(!ids.carried_by("web,W9,ann.lee@example.com.au,x"));
        assert!(!ids.carried_by("@,@@,ann.lee@,@example.com"));
    }

    #[test]
    fn source_id_needs_its_system_as_another_field() {
        let ids = erased();
        assert!(ids.carried_by("crm,C1,ann@x.com,2026-01-0"));
        assert!(ids.carried_by(r#"{"source_system": "crm", "source_customer_id": "C1", "#));
        assert!(!ids.carried_by("web,C1,x"), "same id in another system");
        assert!(!ids.carried_by("crm,C12,x"), "a longer id");
        assert!(!ids.carried_by("crm,xC1,x"));
    }

    #[test]
    fn phone_matches_in_any_format_with_seven_digits_or_more() {
        let ids = erased();
        assert!(ids.carried_by("pos,P1,,+44 20 7946 0958,GB"));
        assert!(ids.carried_by("pos,P1,,020 7946 0958,GB"));
        assert!(ids.carried_by("pos,P1,,(020) 7946-0958,GB"));
        assert!(
            ids.carried_by("pos,P1,,7946 0958,GB"),
            "8 digits: a local number"
        );
        // 6 digits, a field with letters, another number.
        assert!(!ids.carried_by("pos,P1,,460958,GB"));
        assert!(!ids.carried_by("pos,P1,,tel 020 7946 0958,GB"));
        assert!(!ids.carried_by("pos,P1,,020 7946 0959,GB"));
    }

    #[test]
    fn names_is_an_exact_lookup_in_the_identity_maps_form() {
        let ids = erased();
        assert!(ids.names("email", "Ann.Lee@example.com"));
        assert!(ids.names("source", "crm:C1"));
        assert!(ids.names("phone", "+442079460958"));
        assert!(!ids.names("source", "web:C1"), "another system");
        assert!(!ids.names("phone", "02079460958"), "not the map's form");
        assert!(!ids.names("email", "lee@example.com"));
    }

    #[test]
    fn nothing_erased_matches_nothing_and_bad_identifiers_are_refused() {
        let ids = ErasedIdentifiers::default();
        assert!(ids.is_empty());
        assert!(!ids.carried_by("crm,C1,ann.lee@example.com"));
        let mut ids = ErasedIdentifiers::default();
        assert!(ids.add("source", "C1").is_err());
        assert!(ids.add("fax", "1").is_err());
        assert_eq!(ids.len(), 0);
    }

    #[test]
    fn non_ascii_text_around_an_address_is_safe() {
        let ids = erased();
        assert!(ids.carried_by("é, ANN.lee@example.com,ü"));
        assert!(
            !ids.carried_by("é,ÀNN.lee@example.com,ü"),
            "À is no email character"
        );
        assert!(!ids.carried_by("ééé@ü"));
    }
}
