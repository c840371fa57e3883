//! The checks evaluated in Rust rather than SQL: `row_count` (bounds and the
//! change against the previous snapshot) and `freshness`.

use chrono::NaiveDate;

use super::PreviousSnapshot;
use crate::job::CheckSpec;

/// (violations, message, sample) of a `row_count` check; each violated bound counts once.
pub(super) fn row_count(
    spec: &CheckSpec,
    rows: u64,
    previous: Option<&PreviousSnapshot>,
) -> (u64, String, Vec<String>) {
    let CheckSpec::RowCount {
        min,
        max,
        max_change_pct,
        ..
    } = spec
    else {
        return (0, String::new(), Vec::new());
    };
    let mut problems = Vec::new();
    if let Some(min) = min.filter(|&m| rows < m) {
        problems.push(format!("{rows} rows, below the minimum {min}"));
    }
    if let Some(max) = max.filter(|&m| rows > m) {
        problems.push(format!("{rows} rows, above the maximum {max}"));
    }
    let mut notes = Vec::new();
    match (max_change_pct, previous) {
        (Some(limit), Some(prev)) => {
            let change = change_pct(prev.rows, rows);
            if change > *limit {
                problems.push(format!(
                    "{rows} rows vs {} in {}: a {change:.1}% change, above {limit}%",
                    prev.rows, prev.partition
                ));
            } else {
                notes.push(format!("{change:.1}% vs {}", prev.partition));
            }
        }
        (Some(_), None) => notes.push("no previous snapshot to compare with".into()),
        _ => {}
    }
    if problems.is_empty() {
        let notes = if notes.is_empty() {
            String::new()
        } else {
            format!(" ({})", notes.join(", "))
        };
        (0, format!("{rows} rows{notes}"), Vec::new())
    } else {
        (problems.len() as u64, problems.join("; "), Vec::new())
    }
}

/// Relative change in percent; from zero rows any growth is infinite.
fn change_pct(previous: u64, current: u64) -> f64 {
    if previous == 0 {
        return if current == 0 { 0.0 } else { f64::INFINITY };
    }
    (current as f64 - previous as f64).abs() / previous as f64 * 100.0
}

pub(super) fn freshness(
    spec: &CheckSpec,
    date: NaiveDate,
    newest: Option<&str>,
) -> (u64, String, Vec<String>) {
    let CheckSpec::Freshness { max_age_days, .. } = spec else {
        return (0, String::new(), Vec::new());
    };
    let Some(newest) = newest.and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok()) else {
        return (
            1,
            "no rows with a value: nothing is fresh".into(),
            Vec::new(),
        );
    };
    let age = (date - newest).num_days();
    if age > i64::from(*max_age_days) {
        (
            1,
            format!("newest {newest} is {age} days before {date}, more than {max_age_days}"),
            Vec::new(),
        )
    } else {
        (0, format!("newest {newest}, {age} day(s) old"), Vec::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::Severity;

    fn rc(min: Option<u64>, max: Option<u64>, pct: Option<f64>) -> CheckSpec {
        CheckSpec::RowCount {
            min,
            max,
            max_change_pct: pct,
            severity: Severity::Error,
        }
    }

    #[test]
    fn row_count_bounds_and_change() {
        let prev = PreviousSnapshot {
            partition: "snapshot_date=2026-02-28".into(),
            rows: 200,
        };
        // 230 vs 200 is +15%: within 20, over 10.
        assert_eq!(
            row_count(&rc(None, None, Some(20.0)), 230, Some(&prev)).0,
            0
        );
        let (n, message, _) = row_count(&rc(None, None, Some(10.0)), 230, Some(&prev));
        assert_eq!(n, 1);
        assert!(message.contains("15.0% change"), "{message}");
        assert_eq!(row_count(&rc(Some(1), Some(5), None), 0, None).0, 1);
        assert_eq!(row_count(&rc(Some(1), Some(5), None), 6, None).0, 1);
        assert_eq!(row_count(&rc(Some(1), Some(5), None), 5, None).0, 0);
        // No previous snapshot: nothing to compare, the check passes.
        assert_eq!(row_count(&rc(None, None, Some(1.0)), 9, None).0, 0);
        assert_eq!(change_pct(0, 0), 0.0);
        assert!(change_pct(0, 1).is_infinite());
    }

    #[test]
    fn freshness_counts_days_back_from_the_logical_date() {
        let spec = CheckSpec::Freshness {
            column: "ts".into(),
            max_age_days: 2,
            severity: Severity::Error,
        };
        let d = NaiveDate::from_ymd_opt(2026, 3, 1).unwrap();
        assert_eq!(freshness(&spec, d, Some("2026-02-27")).0, 0);
        assert_eq!(freshness(&spec, d, Some("2026-02-26")).0, 1);
        assert_eq!(freshness(&spec, d, None).0, 1);
    }
}
