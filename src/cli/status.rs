//! `c360 status`: the scheduler daemon's health file first (when there is
//! one), then the recent runs of a warehouse's run log.

use std::path::PathBuf;
use std::process::ExitCode;

use super::{exit, warehouse_of};

/// The health file at `status_file` summarised, then the `limit` newest runs
/// of the warehouse (of `job`, or `warehouse`).
pub(super) async fn status(
    job: Option<PathBuf>,
    warehouse: Option<String>,
    limit: usize,
    status_file: &std::path::Path,
) -> ExitCode {
    if let Some(text) = scheduler_summary(status_file, chrono::Utc::now()) {
        print!("{text}");
    }
    runs(job, warehouse, limit).await
}

/// The scheduler daemon's health file (`c360 scheduler --status-file`) in a few
/// lines: its state, heartbeat age, and per job the next run and the last
/// outcome. `None` when there is no such file; a file that cannot be read says so.
pub fn scheduler_summary(
    path: &std::path::Path,
    now: chrono::DateTime<chrono::Utc>,
) -> Option<String> {
    let bytes = std::fs::read(path).ok()?;
    let Ok(status) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
        return Some(format!(
            "scheduler: {} is not a status file\n",
            path.display()
        ));
    };
    let text = |v: &serde_json::Value| v.as_str().unwrap_or("-").to_string();
    let age = status["heartbeat"]
        .as_str()
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .map_or_else(
            || "unknown".to_string(),
            |t| {
                format!(
                    "{} s ago",
                    (now - t.with_timezone(&chrono::Utc)).num_seconds()
                )
            },
        );
    let mut out = format!(
        "scheduler: {} (pid {}), heartbeat {} ({age}), jobs from {}\n",
        text(&status["state"]),
        status["pid"],
        text(&status["heartbeat"]),
        text(&status["jobs_dir"]),
    );
    for job in status["jobs"].as_array().into_iter().flatten() {
        let next = match job["next_run_at"].as_str() {
            Some(at) => format!("next {at} for {}", text(&job["next_run_date"])),
            None => "no next run".to_string(),
        };
        let now_running = match job["running"].as_object() {
            Some(r) => format!(", running {}", r.get("date").map_or("-".into(), text)),
            None => String::new(),
        };
        let last = match job["last"].as_object() {
            Some(l) => format!(
                ", last {} {}",
                l.get("outcome").map_or("-".into(), text),
                l.get("date").map_or("-".into(), text)
            ),
            None => String::new(),
        };
        out.push_str(&format!(
            "  {:<24} {next}{now_running}{last}\n",
            text(&job["job"])
        ));
    }
    out.push('\n');
    Some(out)
}

async fn runs(job: Option<PathBuf>, warehouse: Option<String>, limit: usize) -> ExitCode {
    let (job, location) = match warehouse_of(job, warehouse) {
        Ok(found) => found,
        Err(code) => return code,
    };
    let log = crate::runlog::RunLog::new(location.store.clone(), &location.prefix);
    match log.recent(job.as_deref(), limit).await {
        Ok(records) => {
            print!("{}", crate::runlog::status_table(&records));
            ExitCode::from(exit::SUCCESS)
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(exit::RUN_FAILED)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    // What the daemon writes (`schedule::status`) reads back as its summary.
    #[test]
    fn status_summarises_the_scheduler_health_file() {
        use crate::schedule::runner::RunOutcome;
        use crate::schedule::status::{DaemonStatus, JobStatus, LastRun, write_status};
        let at = |t: &str| chrono::DateTime::parse_from_rfc3339(t).unwrap().to_utc();
        let day = |d: &str| NaiveDate::parse_from_str(d, "%Y-%m-%d").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("scheduler.json");
        assert_eq!(scheduler_summary(&path, at("2026-12-06T10:00:00Z")), None);
        let job = JobStatus {
            job: "customer_360".into(),
            file: "jobs/customer_360.yaml".into(),
            cron: "0 30 2 * * *".into(),
            timezone: "Europe/London".into(),
            next_run_at: Some(at("2026-12-07T02:30:00Z")),
            next_run_date: Some(day("2026-12-07")),
            running: None,
            queued: Vec::new(),
            last: Some(LastRun::new(
                day("2026-12-06"),
                &RunOutcome::Succeeded {
                    run_id: "r1".into(),
                },
                1,
                at("2026-12-06T02:34:00Z"),
            )),
            skipped_ticks: 0,
        };
        let status = DaemonStatus {
            pid: 42,
            started_at: at("2026-12-01T00:00:00Z"),
            heartbeat: at("2026-12-06T09:59:45Z"),
            state: "running",
            jobs_dir: "jobs".into(),
            jobs: vec![job],
        };
        write_status(&path, &status).unwrap();
        let text = scheduler_summary(&path, at("2026-12-06T10:00:00Z")).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "scheduler: running (pid 42), heartbeat 2026-12-06T09:59:45Z (15 s ago), jobs from jobs"
        );
        assert_eq!(
            lines[1],
            "  customer_360             next 2026-12-07T02:30:00Z for 2026-12-07, last succeeded 2026-12-06"
        );
        std::fs::write(&path, "not json").unwrap();
        let text = scheduler_summary(&path, at("2026-12-06T10:00:00Z")).unwrap();
        assert!(text.contains("is not a status file"), "{text}");
    }
}
