//! The profiles extract: each person's record in each of their systems on the
//! day they join, partial updates on later days (only the changed fields and a
//! newer `updated_at`), identical re-sends of earlier rows, and malformed rows.

use rand::Rng;

use super::Day;
use super::GenerateError;
use super::mess::{RejectInjector, corrupt_profile};
use super::people::{PLACEHOLDER_EMAIL, Person, PosEmail, SYSTEMS};
use super::rng::{Stream, mix, stream_rng};
use super::stamp::timestamp;
use super::truth::Ledger;
use super::writer::DayFileWriter;

/// Extract name.
pub const EXTRACT: &str = "profiles";

/// Contract header.
pub const HEADER: [&str; 15] = [
    "source_system",
    "source_customer_id",
    "email",
    "phone",
    "first_name",
    "last_name",
    "birth_date",
    "city",
    "postal_code",
    "country_code",
    "account_type",
    "signup_ts",
    "email_opt_in",
    "sms_opt_in",
    "updated_at",
];

/// The unexpected extra column some file carries.
pub const EXTRA_COLUMN: &str = "loyalty_tier";

/// Column positions in [`HEADER`].
pub mod col {
    pub const SOURCE_CUSTOMER_ID: usize = 1;
    pub const BIRTH_DATE: usize = 6;
    pub const CITY: usize = 7;
    pub const ACCOUNT_TYPE: usize = 10;
    pub const SIGNUP_TS: usize = 11;
    pub const EMAIL_OPT_IN: usize = 12;
    pub const SMS_OPT_IN: usize = 13;
    pub const UPDATED_AT: usize = 14;
}

/// Writes the profiles rows of one day.
pub async fn write_day(
    day: &Day<'_>,
    w: &mut DayFileWriter,
    ledger: &mut Ledger,
    inj: &mut RejectInjector,
    extra_column: bool,
) -> Result<(), GenerateError> {
    let pop = day.pop;
    let mut rng = stream_rng(pop.seed, Stream::Profiles, u64::from(day.index));
    let new_people = day.joined_before..day.joined_by;
    let mut out = RowSink {
        day,
        w,
        ledger,
        inj,
        extra_column,
    };
    for id in new_people {
        let person = pop.person(id);
        for sys in person.system_indices() {
            let row = full_row(day, &person, sys, initial_secs(pop.seed, id, sys));
            out.valid(row, &person, sys).await?;
        }
    }
    if day.joined_before == 0 {
        return Ok(());
    }
    let updates = (day.joined_before / 150).max(1);
    for _ in 0..updates {
        let person = pop.person(rng.random_range(0..day.joined_before));
        let sys = pick_system(&person, &mut rng);
        let row = partial_update(day, &person, sys, &mut rng);
        out.valid(row, &person, sys).await?;
    }
    let resends = (day.joined_before / 400).max(1);
    for _ in 0..resends {
        let id = rng.random_range(0..day.joined_before);
        let person = pop.person(id);
        let sys = pick_system(&person, &mut rng);
        // The identical row sent on the join day: it collapses into that one.
        let joined = Day {
            index: pop.join_day(id),
            ..*day
        };
        let row = full_row(&joined, &person, sys, initial_secs(pop.seed, id, sys));
        out.ledger.count("profiles.duplicate_rows", 1);
        out.valid(row, &person, sys).await?;
    }
    Ok(())
}

/// Pushes rows, injecting a malformed copy when one is due.
struct RowSink<'a, 'b> {
    day: &'a Day<'b>,
    w: &'a mut DayFileWriter,
    ledger: &'a mut Ledger,
    inj: &'a mut RejectInjector,
    extra_column: bool,
}

impl RowSink<'_, '_> {
    async fn valid(
        &mut self,
        mut row: Vec<String>,
        person: &Person,
        sys: usize,
    ) -> Result<(), GenerateError> {
        if self.extra_column {
            row.push(if person.id.is_multiple_of(3) {
                "gold".into()
            } else {
                String::new()
            });
        }
        self.w.push_csv(&row).await?;
        self.ledger.row(EXTRACT);
        if let Some(c) = self.inj.after_valid_row() {
            // A fresh full row for the same record, so every field the
            // corruption does not touch is present and valid.
            let secs = (mix(self.day.pop.seed, person.id) % 86_400) as i64;
            let mut bad = full_row(self.day, person, sys, secs);
            if self.extra_column {
                bad.push(String::new());
            }
            corrupt_profile(&mut bad, c);
            let line = self.w.push_csv(&bad).await?;
            self.ledger
                .reject(EXTRACT, self.w.current_file(), line, c.reason.as_str());
        }
        Ok(())
    }
}

fn pick_system(person: &Person, rng: &mut impl Rng) -> usize {
    let systems: Vec<usize> = person.system_indices().collect();
    systems[rng.random_range(0..systems.len())]
}

/// Seconds into the join day of the first row of (person, system).
fn initial_secs(seed: u64, id: u64, sys: usize) -> i64 {
    (mix(seed ^ 0x5157, id * 3 + sys as u64) % 86_400) as i64
}

/// Every column filled as system `sys` has it; `updated_at` is `secs` into `day`.
fn full_row(day: &Day<'_>, p: &Person, sys: usize, secs: i64) -> Vec<String> {
    let country = p.country;
    let zulu = p.id % 4 == 1;
    let updated_at = timestamp(day.date_of(day.index), secs, country, zulu);
    let signup_ts = if p.id < day.pop.initial {
        timestamp(
            day.date_of(0),
            secs - p.signup_days_before * 86_400,
            country,
            zulu,
        )
    } else {
        let join = day.pop.join_day(p.id);
        timestamp(
            day.date_of(join),
            initial_secs(day.pop.seed, p.id, 0),
            country,
            zulu,
        )
    };
    let email = match sys {
        0 => p
            .email
            .as_deref()
            .map(|e| messy_email(e, p.id))
            .or_else(|| p.junk_email.clone()),
        1 => p.email.clone().or_else(|| p.junk_email.clone()),
        _ => match p.pos_email {
            PosEmail::Real => p.email.clone(),
            PosEmail::Placeholder => Some(PLACEHOLDER_EMAIL.to_string()),
            PosEmail::Empty => None,
        },
    };
    let phone = match (&p.phone, sys) {
        (Some(ph), 0) => ph.international.clone(),
        (Some(ph), 1) => ph.e164.clone(),
        (Some(ph), _) => ph.national.clone(),
        (None, _) => p.junk_phone.unwrap_or("").to_string(),
    };
    vec![
        SYSTEMS[sys].to_string(),
        p.source_id(sys),
        email.unwrap_or_default(),
        phone,
        p.first_name.clone(),
        p.last_name.clone(),
        p.birth_date.map(|d| d.to_string()).unwrap_or_default(),
        p.city.to_string(),
        p.postal_code.clone(),
        country.code().to_string(),
        if p.business { "business" } else { "consumer" }.to_string(),
        signup_ts,
        p.email_opt_in.to_string(),
        p.sms_opt_in.to_string(),
        updated_at,
    ]
}

/// Only the keys, `updated_at` and one changed attribute; empty means "unchanged".
fn partial_update(day: &Day<'_>, p: &Person, sys: usize, rng: &mut impl Rng) -> Vec<String> {
    let mut row = vec![String::new(); HEADER.len()];
    row[0] = SYSTEMS[sys].to_string();
    row[col::SOURCE_CUSTOMER_ID] = p.source_id(sys);
    row[col::UPDATED_AT] = timestamp(
        day.date_of(day.index),
        rng.random_range(0..86_400),
        p.country,
        false,
    );
    match rng.random_range(0..4) {
        0 => {
            row[col::CITY] = format!("{} ", p.city.lines().last().unwrap_or(p.city));
            row[col::CITY + 1] = p.postal_code.clone();
        }
        1 => row[col::EMAIL_OPT_IN] = ["true", "false"][rng.random_range(0..2)].to_string(),
        2 => row[col::SMS_OPT_IN] = ["true", "false"][rng.random_range(0..2)].to_string(),
        _ => row[col::ACCOUNT_TYPE] = ["consumer", "business"][rng.random_range(0..2)].to_string(),
    }
    row
}

/// The email as a person types it at a desk: stray spaces, random capitals.
pub fn messy_email(email: &str, salt: u64) -> String {
    match salt % 4 {
        0 => format!("  {} ", email.to_uppercase()),
        1 => {
            let mut chars: Vec<char> = email.chars().collect();
            if let Some(c) = chars.first_mut() {
                *c = c.to_ascii_uppercase();
            }
            format!("{} ", chars.into_iter().collect::<String>())
        }
        _ => email.to_string(),
    }
}
