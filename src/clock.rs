//! The clock seam: everything that asks "what time is it" asks a [`Clock`], so
//! runs, the scheduler and the commit protocol can be tested with fixed time.

use chrono::{DateTime, NaiveDate, Utc};

/// A source of the current time.
pub trait Clock: Send + Sync {
    /// The current instant.
    fn now(&self) -> DateTime<Utc>;

    /// Today's date in `tz`: the default logical date of a run.
    fn today_in(&self, tz: chrono_tz::Tz) -> NaiveDate {
        self.now().with_timezone(&tz).date_naive()
    }
}

/// The real wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock stuck at one instant, for tests.
#[derive(Debug, Clone, Copy)]
pub struct FixedClock(pub DateTime<Utc>);

impl Clock for FixedClock {
    fn now(&self) -> DateTime<Utc> {
        self.0
    }
}

/// A clock that moves only when told to, for scheduler tests: set it to the
/// instant a scenario needs instead of sleeping until then.
#[derive(Debug)]
pub struct ManualClock(std::sync::Mutex<DateTime<Utc>>);

impl ManualClock {
    pub fn new(now: DateTime<Utc>) -> Self {
        Self(std::sync::Mutex::new(now))
    }

    /// Moves the clock to `now`.
    pub fn set(&self, now: DateTime<Utc>) {
        if let Ok(mut t) = self.0.lock() {
            *t = now;
        }
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: chrono::Duration) {
        if let Ok(mut t) = self.0.lock() {
            *t += by;
        }
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        match self.0.lock() {
            Ok(t) => *t,
            Err(poisoned) => *poisoned.into_inner(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn today_follows_the_time_zone_not_utc() {
        // 23:30 UTC on 1 March is already 2 March in Tokyo and still 1 March in New York.
        let clock = FixedClock(Utc.with_ymd_and_hms(2026, 3, 1, 23, 30, 0).unwrap());
        assert_eq!(
            clock.today_in(chrono_tz::Asia::Tokyo),
            NaiveDate::from_ymd_opt(2026, 3, 2).unwrap()
        );
        assert_eq!(
            clock.today_in(chrono_tz::America::New_York),
            NaiveDate::from_ymd_opt(2026, 3, 1).unwrap()
        );
    }
}
