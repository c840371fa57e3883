//! Cron expressions of job schedules: the usual 5-field form and the 6-field
//! form with seconds (a 7th field, year, is accepted too).
//!
//! tokio-cron-scheduler only takes the form with seconds, so a 5-field expression
//! is normalised by prefixing `0` seconds; the normalised text is what both the
//! planner (`plan`) and tokio-cron-scheduler see, so they agree on every tick.

use croner::Cron;
use croner::parser::{CronParser, Seconds};

/// A parsed cron expression.
#[derive(Debug, Clone)]
pub struct CronSchedule {
    /// The expression with a seconds field, as handed to tokio-cron-scheduler.
    normalized: String,
    cron: Cron,
}

/// Why a cron expression was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CronError {
    #[error(
        "expected 5 fields (minute hour day-of-month month day-of-week) or 6 with seconds first, found {0}"
    )]
    FieldCount(usize),
    #[error("`{expression}`: {reason}")]
    Invalid { expression: String, reason: String },
}

impl CronSchedule {
    /// Parses a 5-, 6- or 7-field expression. Nicknames (`@daily`) are refused:
    /// the field form says exactly when, in the job's zone.
    pub fn parse(text: &str) -> Result<Self, CronError> {
        let fields: Vec<&str> = text.split_whitespace().collect();
        let normalized = match fields.len() {
            5 => format!("0 {}", fields.join(" ")),
            6 | 7 => fields.join(" "),
            n => return Err(CronError::FieldCount(n)),
        };
        // The same parser settings as tokio-cron-scheduler 0.15 (seconds required,
        // day-of-month AND day-of-week), so its ticks and ours are the same instants.
        let cron = CronParser::builder()
            .seconds(Seconds::Required)
            .dom_and_dow(true)
            .build()
            .parse(&normalized)
            .map_err(|e| CronError::Invalid {
                expression: text.trim().to_string(),
                reason: e.to_string(),
            })?;
        Ok(Self { normalized, cron })
    }

    /// The expression with seconds, e.g. `0 30 2 * * *` for `30 2 * * *`.
    pub fn normalized(&self) -> &str {
        &self.normalized
    }

    /// The croner pattern, for the planner.
    pub(crate) fn cron(&self) -> &Cron {
        &self.cron
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_fields_get_zero_seconds() {
        let cron = CronSchedule::parse("30 2 * * *").unwrap();
        assert_eq!(cron.normalized(), "0 30 2 * * *");
        let cron = CronSchedule::parse("  15 30 2 * * 1-5 ").unwrap();
        assert_eq!(cron.normalized(), "15 30 2 * * 1-5");
        assert!(CronSchedule::parse("0 0 3 1 1 * 2030").is_ok());
    }

    #[test]
    fn wrong_field_counts_and_values_are_refused() {
        assert_eq!(
            CronSchedule::parse("2 * * *").unwrap_err(),
            CronError::FieldCount(4)
        );
        assert_eq!(
            CronSchedule::parse("@daily").unwrap_err(),
            CronError::FieldCount(1)
        );
        let err = CronSchedule::parse("0 30 25 * * *").unwrap_err();
        assert!(
            matches!(&err, CronError::Invalid { expression, .. } if expression == "0 30 25 * * *"),
            "{err}"
        );
        assert!(CronSchedule::parse("61 * * * *").is_err());
    }
}
