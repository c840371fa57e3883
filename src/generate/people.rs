//! The synthetic population: every person is a pure function of (seed, person id),
//! so nothing per person is kept in memory and any extract can re-derive the
//! person it mentions. Identifiers are unique by construction (the person id is
//! encoded in every email, phone and source id), so two people never share one
//! by accident and the ground-truth identity groups are exact.

use chrono::{Duration, NaiveDate};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::rng::person_rng;

/// The e-mail a store's till puts in when the customer gives none.
pub const PLACEHOLDER_EMAIL: &str = "noemail@store.com";

/// Source systems a person can appear in, in the contract's priority order.
pub const SYSTEMS: [&str; 3] = ["crm", "web", "pos"];

/// Country of a person: default phone region, currency and timestamp offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Country {
    Gb,
    Us,
    Se,
    De,
}

impl Country {
    /// ISO 3166-1 alpha-2 code as written in `country_code`.
    pub fn code(self) -> &'static str {
        match self {
            Country::Gb => "GB",
            Country::Us => "US",
            Country::Se => "SE",
            Country::De => "DE",
        }
    }

    /// ISO 4217 currency the person pays in.
    pub fn currency(self) -> &'static str {
        match self {
            Country::Gb => "GBP",
            Country::Us => "USD",
            Country::Se => "SEK",
            Country::De => "EUR",
        }
    }

    /// UTC offset (minutes) used when rendering this person's timestamps.
    pub fn offset_minutes(self) -> i32 {
        match self {
            Country::Gb => 0,
            Country::Us => -300,
            Country::Se | Country::De => 60,
        }
    }
}

/// A phone number valid for its country, in the formats different systems type it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Phone {
    /// E.164, as the loader must normalise every format below to.
    pub e164: String,
    /// International format with spaces (`+44 20 7946 0958`, `+1 415-555-0100`).
    pub international: String,
    /// National format for the country (`020 7946 0958`, `(415) 555-0100`).
    pub national: String,
}

/// How a person's pos record fills the email column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PosEmail {
    Empty,
    Real,
    Placeholder,
}

/// Population-wide constants derived from the options.
#[derive(Debug, Clone, Copy)]
pub struct Population {
    pub seed: u64,
    pub customers: u64,
    pub days: u32,
    /// People already known on day 0 (the initial load); the rest join evenly later.
    pub initial: u64,
    /// Every `placeholder_stride`-th person is a pos customer with the placeholder email.
    pub placeholder_stride: u64,
    /// Whether enough pos records carry the placeholder for it to exceed the default
    /// `max_records_per_identifier` (50); below that it would link people, so it is not used.
    pub placeholder_enabled: bool,
}

/// Every `HEAVY_GUEST_STRIDE`-th person (who has an email) is a heavy guest shopper.
const HEAVY_GUEST_STRIDE: u64 = 997;

/// Default `max_records_per_identifier` of the contract.
const MAX_RECORDS_PER_IDENTIFIER: u64 = 50;

impl Population {
    /// Constants for `customers` people.
    pub fn new(seed: u64, customers: u64, days: u32) -> Self {
        let placeholder_stride = (customers / 80).clamp(1, 16);
        // Most people are already known on day 0; the rest (new customers,
        // a fifth) join during the period.
        let initial = if days <= 1 {
            customers
        } else {
            (customers * 4).div_ceil(5)
        };
        Self {
            seed,
            customers,
            days,
            initial,
            placeholder_stride,
            placeholder_enabled: Self::count_placeholder(customers, placeholder_stride)
                > MAX_RECORDS_PER_IDENTIFIER,
        }
    }

    /// People who have joined by the end of day `day` (0-based).
    pub fn joined_by(&self, day: u32) -> u64 {
        if self.days <= 1 || day + 1 >= self.days {
            return self.customers;
        }
        let later = self.customers - self.initial;
        self.initial + later * u64::from(day) / u64::from(self.days - 1)
    }

    /// The day person `id` first appears in the profiles extract.
    pub fn join_day(&self, id: u64) -> u32 {
        if id < self.initial {
            return 0;
        }
        let later = (self.customers - self.initial).max(1);
        let day = ((id - self.initial + 1) * u64::from(self.days - 1)).div_ceil(later);
        u32::try_from(day).unwrap_or(u32::MAX)
    }

    fn count_placeholder(customers: u64, stride: u64) -> u64 {
        customers / stride
    }

    /// Number of pos records that carry [`PLACEHOLDER_EMAIL`].
    pub fn placeholder_records(&self) -> u64 {
        if self.placeholder_enabled {
            Self::count_placeholder(self.customers, self.placeholder_stride)
        } else {
            0
        }
    }

    fn is_placeholder_person(&self, id: u64) -> bool {
        self.placeholder_enabled && id % self.placeholder_stride == self.placeholder_stride - 1
    }

    /// Derives person `id` (0-based, `< customers`).
    pub fn person(&self, id: u64) -> Person {
        let mut rng = person_rng(self.seed, id);
        Person::derive(id, &mut rng, self.is_placeholder_person(id))
    }
}

/// One synthetic person: everything the extracts say about them.
#[derive(Debug, Clone)]
pub struct Person {
    pub id: u64,
    pub first_name: String,
    pub last_name: String,
    pub country: Country,
    /// Membership in [`SYSTEMS`] (crm, web, pos).
    pub systems: [bool; 3],
    /// Normalised, valid email (`None`: no usable email).
    pub email: Option<String>,
    /// A malformed email the person typed instead (never an identifier).
    pub junk_email: Option<String>,
    pub phone: Option<Phone>,
    /// A phone value that is not a valid number (kept as attribute, links nothing).
    pub junk_phone: Option<&'static str>,
    pub pos_email: PosEmail,
    /// A loyal guest shopper: every order a guest checkout under the person's email,
    /// often enough to pass `max_records_per_identifier` (guest orders never count
    /// towards it: DATA_CONTRACT.md, "Identifiers"). About one person in a thousand.
    pub heavy_guest: bool,
    pub birth_date: Option<NaiveDate>,
    pub city: &'static str,
    pub postal_code: String,
    pub business: bool,
    /// Days before the start date the person signed up (initial load only).
    pub signup_days_before: i64,
    pub email_opt_in: &'static str,
    pub sms_opt_in: &'static str,
}

const FIRST: [&str; 16] = [
    "James", "Mary", "Robert", "Linda", "Oliver", "Amelia", "Erik", "Astrid", "Lukas", "Hannah",
    "Noah", "Emma", "Liam", "Sofia", "Aoife", "Zoë",
];
const LAST: [&str; 16] = [
    "Smith",
    "Jones",
    "Taylor",
    "Brown",
    "Williams",
    "Johansson",
    "Andersson",
    "Müller",
    "Schmidt",
    "Garcia",
    "Miller",
    "Davis",
    "O'Brien",
    "Nilsson",
    "Wilson",
    "Evans",
];
const CITIES: [[&str; 3]; 4] = [
    ["London", "Manchester", "Flat 2\nLondon"],
    ["San Francisco", "New York", "Apt 4B\nNew York"],
    ["Stockholm", "Göteborg", "Malmö"],
    ["Berlin", "München", "Hamburg"],
];
const DOMAINS: [&str; 5] = [
    "example.com",
    "mail.test",
    "example.co.uk",
    "post.example.se",
    "web.example.de",
];
const US_AREAS: [u64; 5] = [415, 212, 312, 617, 206];

impl Person {
    fn derive(id: u64, rng: &mut ChaCha8Rng, placeholder: bool) -> Self {
        let country = match rng.random_range(0..10) {
            0..=3 => Country::Gb,
            4..=6 => Country::Us,
            // Placeholder people are till customers: they need a phone to link.
            _ if placeholder => Country::Gb,
            7..=8 => Country::Se,
            _ => Country::De,
        };
        // Quoting mess: a few people carry names that need CSV quotes.
        let first_name = if id % 53 == 7 {
            "Robert \"Bob\"".to_string()
        } else {
            FIRST[rng.random_range(0..FIRST.len())].to_string()
        };
        let last_name = if id % 47 == 5 {
            "Smith, Jr.".to_string()
        } else {
            LAST[rng.random_range(0..LAST.len())].to_string()
        };
        let has_phone_country = matches!(country, Country::Gb | Country::Us);
        let mut systems = match rng.random_range(0..100) {
            0..=19 => [true, false, false],
            20..=34 => [false, true, false],
            35..=44 => [false, false, true],
            45..=69 => [true, true, false],
            70..=79 => [true, false, true],
            80..=84 => [false, true, true],
            _ => [true, true, true],
        };
        if placeholder {
            systems[2] = true;
        }
        // Pos records link to the others only through the phone.
        let multi = systems.iter().filter(|s| **s).count() > 1;
        if systems[2] && multi && !has_phone_country {
            systems[2] = false;
        }
        if systems[2] && !systems[0] && !systems[1] && !has_phone_country && !placeholder {
            systems = [true, false, false];
        }
        let multi = systems.iter().filter(|s| **s).count() > 1;
        let phone = if has_phone_country && (systems[2] || rng.random_bool(0.7)) {
            Some(phone_for(id, country))
        } else {
            None
        };
        let junk_phone = (phone.is_none() && rng.random_bool(0.2))
            .then(|| ["12345", "n/a", "000"][(id % 3) as usize]);
        let local = format!(
            "{}.{}{}",
            ascii_lower(&first_name),
            ascii_lower(&last_name),
            id
        );
        let domain = DOMAINS[rng.random_range(0..DOMAINS.len())];
        let wants_email = systems[0] || systems[1];
        let junk = wants_email && !multi && rng.random_bool(0.03);
        let (email, junk_email) = if !wants_email {
            (None, None)
        } else if junk {
            (None, Some(format!("{local}(at){domain}")))
        } else {
            (Some(format!("{local}@{domain}")), None)
        };
        let pos_email = if placeholder {
            PosEmail::Placeholder
        } else if email.is_some() && rng.random_bool(0.3) {
            PosEmail::Real
        } else {
            PosEmail::Empty
        };
        let birth_date = rng.random_bool(0.85).then(|| {
            NaiveDate::from_ymd_opt(1940, 1, 1).unwrap_or_default()
                + Duration::days(rng.random_range(0..24_000))
        });
        let cities = CITIES[country as usize];
        let city = if id % 89 == 11 {
            cities[2]
        } else {
            cities[rng.random_range(0..2)]
        };
        let postal_code = match country {
            Country::Gb => format!("SW{} {}AB", rng.random_range(1..20), rng.random_range(1..9)),
            Country::Us => format!("{:05}", rng.random_range(10_000..99_999)),
            Country::Se => format!(
                "{} {:02}",
                rng.random_range(100..999),
                rng.random_range(0..99)
            ),
            Country::De => format!("{:05}", rng.random_range(10_000..99_999)),
        };
        let heavy_guest = id % HEAVY_GUEST_STRIDE == HEAVY_GUEST_STRIDE / 10 && email.is_some();
        let bool_text = |rng: &mut ChaCha8Rng| ["true", "false", ""][rng.random_range(0..3)];
        Self {
            id,
            first_name,
            last_name,
            country,
            systems,
            email,
            junk_email,
            phone,
            junk_phone,
            pos_email,
            heavy_guest,
            birth_date,
            city,
            postal_code,
            business: rng.random_bool(0.1),
            signup_days_before: rng.random_range(1..1_000),
            email_opt_in: bool_text(rng),
            sms_opt_in: bool_text(rng),
        }
    }

    /// `source_customer_id` of this person in system `sys` (index into [`SYSTEMS`]).
    pub fn source_id(&self, sys: usize) -> String {
        let prefix = ["C", "W", "P"][sys];
        format!("{prefix}{:06}", self.id + 1)
    }

    /// Indices of the systems the person is in.
    pub fn system_indices(&self) -> impl Iterator<Item = usize> + '_ {
        (0..3).filter(|s| self.systems[*s])
    }

    /// Ground-truth identifiers `(id_type, id_value)`: every valid identifier the
    /// person's profile rows carry.
    pub fn identities(&self) -> Vec<(&'static str, String)> {
        let mut out: Vec<(&'static str, String)> = self
            .system_indices()
            .map(|s| ("source", format!("{}:{}", SYSTEMS[s], self.source_id(s))))
            .collect();
        if let Some(email) = &self.email {
            out.push(("email", email.clone()));
        }
        if let Some(phone) = &self.phone {
            out.push(("phone", phone.e164.clone()));
        }
        out
    }
}

/// Letters of `s`, lower-cased ASCII, so the email local part is always valid.
fn ascii_lower(s: &str) -> String {
    let first_word = s.split([' ', ',']).next().unwrap_or(s);
    first_word
        .chars()
        .filter(char::is_ascii_alphabetic)
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// A number the person id encodes, inside ranges libphonenumber accepts as valid:
/// London `20 7xxx xxxx` (GB fixed line `20[013478]\d{7}`) and US NANP
/// `NPA [2-9]xx xxxx` with real area codes.
fn phone_for(id: u64, country: Country) -> Phone {
    match country {
        Country::Gb => {
            let rest = id % 10_000_000;
            let (a, b) = (rest / 10_000, rest % 10_000);
            Phone {
                e164: format!("+44207{a:03}{b:04}"),
                international: format!("+44 20 7{a:03} {b:04}"),
                national: format!("020 7{a:03} {b:04}"),
            }
        }
        _ => {
            let line = id % 10_000;
            let exchange = 200 + (id / 10_000) % 800;
            let area = US_AREAS[((id / 8_000_000) % US_AREAS.len() as u64) as usize];
            Phone {
                e164: format!("+1{area}{exchange}{line:04}"),
                international: format!("+1 {area}-{exchange}-{line:04}"),
                national: format!("({area}) {exchange}-{line:04}"),
            }
        }
    }
}
