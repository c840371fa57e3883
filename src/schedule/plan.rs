//! When a job is due: the ticks of its cron in its IANA time zone, their logical
//! dates, and the catch-up window.
//!
//! The cron is evaluated on the *wall clock* of the job's zone (naive local
//! time), and each wall-clock occurrence becomes exactly one instant:
//!
//! - a time that happens twice (the fall-back hour) runs once, at its first occurrence;
//! - a time that does not exist (the spring-forward gap) runs once, when the gap ends
//!   (02:30 on the New York spring-forward night runs at 03:00 EDT).
//!
//! So a nightly run is neither skipped nor doubled on DST nights, and its logical
//! date is the wall-clock date it was scheduled for.

use chrono::{DateTime, Duration, LocalResult, NaiveDate, NaiveDateTime, TimeZone, Timelike, Utc};
use chrono_tz::Tz;

use crate::job::cron::CronSchedule;

/// One scheduled run: when it fires and the logical date it loads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Tick {
    /// The instant the run is due.
    pub at: DateTime<Utc>,
    /// The scheduled date in the job's zone: the run's logical date.
    pub date: NaiveDate,
}

/// Wall-clock occurrences are searched from this far before `after`, because a
/// DST shift can map a wall-clock time that reads earlier to a later instant.
const DST_MARGIN_HOURS: i64 = 3;

/// The ticks of `cron` in `tz` strictly after `after`, in order.
pub fn ticks_after(
    cron: &CronSchedule,
    tz: Tz,
    after: DateTime<Utc>,
) -> impl Iterator<Item = Tick> + '_ {
    let start = after.with_timezone(&tz).naive_local() - Duration::hours(DST_MARGIN_HOURS);
    // croner keeps the start's fraction of a second in every tick; cron ticks are whole seconds.
    let start = start.with_nanosecond(0).unwrap_or(start);
    let mut previous: Option<DateTime<Utc>> = None;
    // Labelling local wall-clock time as UTC lets croner walk it without any DST logic.
    cron.cron()
        .iter_after(Utc.from_utc_datetime(&start))
        .filter_map(move |wall| {
            let wall = wall.naive_utc();
            let at = instant_of(tz, wall)?;
            // Two gap times snap to the same instant: one run, not two.
            if previous == Some(at) {
                return None;
            }
            previous = Some(at);
            Some(Tick {
                at,
                date: wall.date(),
            })
        })
        .skip_while(move |tick| tick.at <= after)
}

/// The ticks in `(after, until]`, oldest first.
pub fn ticks_between(
    cron: &CronSchedule,
    tz: Tz,
    after: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Vec<Tick> {
    ticks_after(cron, tz, after)
        .take_while(|tick| tick.at <= until)
        .collect()
}

/// The next tick strictly after `after`.
pub fn next_tick(cron: &CronSchedule, tz: Tz, after: DateTime<Utc>) -> Option<Tick> {
    ticks_after(cron, tz, after).next()
}

/// One tick per logical date (the latest of that date), oldest date first: several
/// ticks of one date load the same snapshot, so catching up runs the date once.
pub fn one_per_date(ticks: Vec<Tick>) -> Vec<Tick> {
    let mut out: Vec<Tick> = Vec::new();
    for tick in ticks {
        match out.last_mut() {
            Some(last) if last.date == tick.date => *last = tick,
            _ => out.push(tick),
        }
    }
    out
}

/// The instant a wall-clock time in `tz` stands for (see the module docs).
fn instant_of(tz: Tz, wall: NaiveDateTime) -> Option<DateTime<Utc>> {
    match tz.from_local_datetime(&wall) {
        LocalResult::Single(t) => Some(t.with_timezone(&Utc)),
        LocalResult::Ambiguous(first, _) => Some(first.with_timezone(&Utc)),
        LocalResult::None => {
            // In a gap: the first whole minute after it that exists is where the gap ends.
            let mut probe = wall.with_second(0)?.with_nanosecond(0)?;
            for _ in 0..(48 * 60) {
                probe += Duration::minutes(1);
                if let Some(t) = tz.from_local_datetime(&probe).earliest() {
                    return Some(t.with_timezone(&Utc));
                }
            }
            None
        }
    }
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
