//! Rendering of timestamps and money the way upstream systems write them.

use chrono::{Duration, FixedOffset, NaiveDate, Offset, TimeZone, Utc};

use super::people::Country;

/// RFC 3339 text of `secs` seconds after midnight UTC of `date` (may be negative
/// or past a day), in the person's local offset; `zulu` writes UTC as `Z`.
pub fn timestamp(date: NaiveDate, secs: i64, country: Country, zulu: bool) -> String {
    let utc = date.and_time(chrono::NaiveTime::MIN) + Duration::seconds(secs);
    if zulu {
        return utc.format("%Y-%m-%dT%H:%M:%SZ").to_string();
    }
    let offset = FixedOffset::east_opt(country.offset_minutes() * 60).unwrap_or_else(|| Utc.fix());
    offset
        .from_utc_datetime(&utc)
        .format("%Y-%m-%dT%H:%M:%S%:z")
        .to_string()
}

/// `cents` as a decimal with two places (`1234` -> `12.34`).
pub fn money(cents: i64) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    let c = cents.unsigned_abs();
    format!("{sign}{}.{:02}", c / 100, c % 100)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_keep_the_utc_instant_in_local_offset() {
        let d = NaiveDate::from_ymd_opt(2026, 1, 3).unwrap_or_default();
        assert_eq!(
            timestamp(d, 3600, Country::Us, false),
            "2026-01-02T20:00:00-05:00"
        );
        assert_eq!(
            timestamp(d, 3600, Country::Se, false),
            "2026-01-03T02:00:00+01:00"
        );
        assert_eq!(
            timestamp(d, 3600, Country::Gb, false),
            "2026-01-03T01:00:00+00:00"
        );
        assert_eq!(
            timestamp(d, 3600, Country::Gb, true),
            "2026-01-03T01:00:00Z"
        );
    }

    #[test]
    fn money_has_two_places() {
        assert_eq!(money(1234), "12.34");
        assert_eq!(money(5), "0.05");
        assert_eq!(money(-100), "-1.00");
    }
}
