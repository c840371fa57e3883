//! `c360 status`: recent runs as a table, newest first; a failed or abandoned
//! run gets two more lines with its error and the next step. `erased` is the
//! customers the run's erasure requests removed (docs/rules.md "Erasure"), `-`
//! when the run resolved none.

use std::fmt::Write;

use super::{RunRecord, RunStatus};
use crate::checks::CheckStatus;

/// The status table of `records` (newest first).
pub fn status_table(records: &[RunRecord]) -> String {
    let mut out = String::new();
    if records.is_empty() {
        out.push_str("no runs recorded\n");
        return out;
    }
    let _ = writeln!(
        out,
        "{:<26} {:<16} {:<10} {:<10} {:<19} {:>8} {:>10} {:>7} {:>8} {:>7}",
        "run",
        "job",
        "date",
        "status",
        "started (UTC)",
        "secs",
        "rows out",
        "checks",
        "rejected",
        "erased"
    );
    for r in records {
        let status = match r.status {
            RunStatus::Running => "running",
            RunStatus::Succeeded => "succeeded",
            RunStatus::Failed => "FAILED",
            RunStatus::Abandoned => "abandoned",
        };
        let rows: u64 = r.outputs.iter().map(|o| o.rows).sum();
        let passed = r
            .checks
            .iter()
            .filter(|c| c.status == CheckStatus::Pass)
            .count();
        let rejected: u64 = r.sources.iter().map(|s| s.rows_rejected).sum();
        let secs = match r.ended_at {
            Some(_) => format!("{:.1}", r.elapsed_secs()),
            None => "-".into(),
        };
        let erased = r
            .erasure
            .as_ref()
            .and_then(|e| e.erased_customers)
            .map_or_else(|| "-".to_string(), |n| n.to_string());
        let _ = writeln!(
            out,
            "{:<26} {:<16} {:<10} {:<10} {:<19} {:>8} {:>10} {:>7} {:>8} {:>7}",
            r.run_id,
            r.job,
            r.logical_date.to_string(),
            status,
            r.started_at.format("%Y-%m-%d %H:%M:%S").to_string(),
            secs,
            if r.outputs.is_empty() {
                "-".to_string()
            } else {
                rows.to_string()
            },
            format!("{passed}/{}", r.checks.len()),
            rejected,
            erased
        );
        if let Some(error) = &r.error {
            let _ = writeln!(out, "    error [{}]: {}", error.layer, error.message);
            let _ = writeln!(out, "    next: {}", error.next_step);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runlog::ErrorRecord;
    use chrono::{NaiveDate, TimeZone, Utc};

    fn record(id: &str, status: RunStatus) -> RunRecord {
        RunRecord {
            run_id: id.into(),
            job: "customer_360".into(),
            job_file: "jobs/customer_360.yaml".into(),
            logical_date: NaiveDate::from_ymd_opt(2026, 3, 1).unwrap(),
            params: Default::default(),
            started_at: Utc.with_ymd_and_hms(2026, 3, 2, 2, 30, 0).unwrap(),
            ended_at: Some(Utc.with_ymd_and_hms(2026, 3, 2, 2, 30, 12).unwrap()),
            status,
            stages: vec![],
            steps: vec![],
            sources: vec![],
            accounting: vec![],
            outputs: vec![],
            rejects: vec![],
            checks: vec![],
            recovered_runs: vec![],
            error: None,
            erasure: None,
            engine: None,
        }
    }

    #[test]
    fn failures_show_their_error_and_next_step() {
        let mut failed = record("r2", RunStatus::Failed);
        failed.error = Some(ErrorRecord {
            layer: "check".into(),
            message: "unique(customer_key) on customer_360: 2 duplicated key(s)".into(),
            next_step: "fix the data".into(),
        });
        let table = status_table(&[failed, record("r1", RunStatus::Succeeded)]);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 5, "{table}");
        assert!(
            lines[1].starts_with("r2 ") && lines[1].contains("FAILED"),
            "{table}"
        );
        assert!(lines[1].contains("12.0"), "{table}");
        assert_eq!(
            lines[2],
            "    error [check]: unique(customer_key) on customer_360: 2 duplicated key(s)"
        );
        assert_eq!(lines[3], "    next: fix the data");
        assert!(lines[4].contains("succeeded"), "{table}");
        assert!(lines[4].ends_with(" -"), "no erasure recorded: {table}");
        assert_eq!(status_table(&[]), "no runs recorded\n");
    }

    #[test]
    fn the_customers_a_run_erased_are_shown() {
        let mut run = record("r3", RunStatus::Succeeded);
        run.erasure = Some(crate::erasure::ErasureRecord {
            requested_identifiers: 5,
            erased_customers: Some(4),
            ..Default::default()
        });
        let table = status_table(&[run]);
        let lines: Vec<&str> = table.lines().collect();
        assert!(lines[0].ends_with(" erased"), "{table}");
        assert!(lines[1].ends_with(" 4"), "{table}");
    }
}
