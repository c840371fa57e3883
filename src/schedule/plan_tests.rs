//! DST nights of 2026, worked out from the zone rules by hand:
//! Europe/London springs forward on 29 March at 01:00 UTC (01:00 GMT -> 02:00 BST)
//! and falls back on 25 October at 01:00 UTC (02:00 BST -> 01:00 GMT);
//! America/New_York springs forward on 8 March at 07:00 UTC (02:00 EST -> 03:00 EDT)
//! and falls back on 1 November at 06:00 UTC (02:00 EDT -> 01:00 EST).

use super::*;
use chrono_tz::America::New_York;
use chrono_tz::Europe::London;

fn utc(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap()
        .with_timezone(&Utc)
}

fn day(text: &str) -> NaiveDate {
    text.parse().unwrap()
}

fn nightly(cron: &str, tz: Tz, from: &str, to: &str) -> Vec<(String, NaiveDate)> {
    let cron = CronSchedule::parse(cron).unwrap();
    ticks_between(&cron, tz, utc(from), utc(to))
        .into_iter()
        .map(|t| (t.at.to_rfc3339(), t.date))
        .collect()
}

/// The same window walked in one-minute steps, as the daemon's wakes do.
fn nightly_stepwise(cron: &str, tz: Tz, from: &str, to: &str) -> Vec<(String, NaiveDate)> {
    let cron = CronSchedule::parse(cron).unwrap();
    let (mut at, end) = (utc(from), utc(to));
    let mut out = Vec::new();
    while at < end {
        let next = at + Duration::minutes(1);
        for t in ticks_between(&cron, tz, at, next) {
            out.push((t.at.to_rfc3339(), t.date));
        }
        at = next;
    }
    out
}

fn expect(rows: &[(&str, &str)]) -> Vec<(String, NaiveDate)> {
    rows.iter()
        .map(|(at, d)| (utc(at).to_rfc3339(), day(d)))
        .collect()
}

#[test]
fn london_0230_runs_once_a_night_across_spring_forward() {
    let want = expect(&[
        ("2026-03-28T02:30:00Z", "2026-03-28"), // GMT
        ("2026-03-29T01:30:00Z", "2026-03-29"), // 02:30 BST exists: the gap is 01:00-02:00
        ("2026-03-30T01:30:00Z", "2026-03-30"),
    ]);
    let (from, to) = ("2026-03-27T12:00:00Z", "2026-03-30T12:00:00Z");
    assert_eq!(nightly("30 2 * * *", London, from, to), want);
    assert_eq!(nightly_stepwise("30 2 * * *", London, from, to), want);
}

#[test]
fn london_0230_runs_once_a_night_across_fall_back() {
    let want = expect(&[
        ("2026-10-24T01:30:00Z", "2026-10-24"), // BST
        ("2026-10-25T02:30:00Z", "2026-10-25"), // GMT again; 02:30 happens once
        ("2026-10-26T02:30:00Z", "2026-10-26"),
    ]);
    let (from, to) = ("2026-10-23T12:00:00Z", "2026-10-26T12:00:00Z");
    assert_eq!(nightly("0 30 2 * * *", London, from, to), want);
    assert_eq!(nightly_stepwise("0 30 2 * * *", London, from, to), want);
}

#[test]
fn new_york_0230_in_the_spring_gap_runs_when_the_gap_ends() {
    let want = expect(&[
        ("2026-03-07T07:30:00Z", "2026-03-07"), // 02:30 EST
        ("2026-03-08T07:00:00Z", "2026-03-08"), // 02:30 does not exist: 03:00 EDT
        ("2026-03-09T06:30:00Z", "2026-03-09"), // 02:30 EDT
    ]);
    let (from, to) = ("2026-03-06T12:00:00Z", "2026-03-09T12:00:00Z");
    assert_eq!(nightly("30 2 * * *", New_York, from, to), want);
    assert_eq!(nightly_stepwise("30 2 * * *", New_York, from, to), want);
}

#[test]
fn new_york_0230_runs_once_across_fall_back() {
    let want = expect(&[
        ("2026-10-31T06:30:00Z", "2026-10-31"), // 02:30 EDT
        ("2026-11-01T07:30:00Z", "2026-11-01"), // 02:30 EST (the repeated hour is 01:00-02:00)
        ("2026-11-02T07:30:00Z", "2026-11-02"),
    ]);
    let (from, to) = ("2026-10-30T12:00:00Z", "2026-11-02T12:00:00Z");
    assert_eq!(nightly("30 2 * * *", New_York, from, to), want);
    assert_eq!(nightly_stepwise("30 2 * * *", New_York, from, to), want);
}

#[test]
fn a_time_in_the_repeated_hour_runs_at_its_first_occurrence_only() {
    // 01:30 happens at 00:30Z (BST) and 01:30Z (GMT) in London on 25 October.
    let (from, to) = ("2026-10-24T12:00:00Z", "2026-10-25T12:00:00Z");
    let want = expect(&[("2026-10-25T00:30:00Z", "2026-10-25")]);
    assert_eq!(nightly("30 1 * * *", London, from, to), want);
    assert_eq!(nightly_stepwise("30 1 * * *", London, from, to), want);
    // 01:30 happens at 05:30Z (EDT) and 06:30Z (EST) in New York on 1 November.
    let (from, to) = ("2026-10-31T12:00:00Z", "2026-11-01T12:00:00Z");
    let want = expect(&[("2026-11-01T05:30:00Z", "2026-11-01")]);
    assert_eq!(nightly("30 1 * * *", New_York, from, to), want);
    assert_eq!(nightly_stepwise("30 1 * * *", New_York, from, to), want);
}

#[test]
fn a_time_in_the_london_spring_gap_runs_at_0200_bst() {
    let (from, to) = ("2026-03-28T12:00:00Z", "2026-03-29T12:00:00Z");
    let want = expect(&[("2026-03-29T01:00:00Z", "2026-03-29")]);
    assert_eq!(nightly("30 1 * * *", London, from, to), want);
    assert_eq!(nightly_stepwise("30 1 * * *", London, from, to), want);
}

#[test]
fn gap_times_snapping_to_one_instant_run_once() {
    // Every 15 minutes: 02:00, 02:15, 02:30, 02:45 New York local do not exist on
    // 8 March and all mean 03:00 EDT (07:00Z); 03:00 itself is the same instant.
    let got = nightly(
        "*/15 * * * *",
        New_York,
        "2026-03-08T06:40:00Z",
        "2026-03-08T07:20:00Z",
    );
    let want = expect(&[
        ("2026-03-08T06:45:00Z", "2026-03-08"), // 01:45 EST
        ("2026-03-08T07:00:00Z", "2026-03-08"), // 02:00-03:00 local, once
        ("2026-03-08T07:15:00Z", "2026-03-08"), // 03:15 EDT
    ]);
    assert_eq!(got, want);
}

#[test]
fn logical_date_is_the_date_in_the_job_zone() {
    // 23:30 in New York on 1 March is already 2 March in UTC.
    let got = nightly(
        "30 23 * * *",
        New_York,
        "2026-03-01T12:00:00Z",
        "2026-03-02T12:00:00Z",
    );
    assert_eq!(got, expect(&[("2026-03-02T04:30:00Z", "2026-03-01")]));
}

#[test]
fn next_tick_and_one_per_date() {
    let cron = CronSchedule::parse("0 * * * *").unwrap();
    let next = next_tick(&cron, London, utc("2026-03-01T10:59:59.670Z")).unwrap();
    assert_eq!(next.at, utc("2026-03-01T11:00:00Z"));
    // Hourly ticks over two days collapse to the last tick of each date.
    let ticks = ticks_between(
        &cron,
        London,
        utc("2026-03-01T20:30:00Z"),
        utc("2026-03-02T01:30:00Z"),
    );
    assert_eq!(ticks.len(), 5); // 21, 22, 23, 00, 01
    let collapsed: Vec<_> = one_per_date(ticks)
        .into_iter()
        .map(|t| (t.at, t.date))
        .collect();
    assert_eq!(
        collapsed,
        vec![
            (utc("2026-03-01T23:00:00Z"), day("2026-03-01")),
            (utc("2026-03-02T01:00:00Z"), day("2026-03-02")),
        ]
    );
}
