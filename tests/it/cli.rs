//! The `c360` binary as a user runs it: documented exit codes (0 success,
//! 1 run failed, 2 invalid job or usage) and what it prints.

use std::path::Path;

use crate::util::{c360, c360_in, read_partition, repo_root};

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn validate_accepts_the_shipped_job() {
    let out = c360(&["validate", "jobs/customer_360.yaml"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("1 job file(s) valid"));
}

#[test]
fn validate_reports_every_problem_with_its_place_and_exits_2() {
    let out = c360(&["validate", "tests/fixtures/jobs/many_mistakes.yaml"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(
            "tests/fixtures/jobs/many_mistakes.yaml:9:47: sources.profiles: unknown variant `xlsx`"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains("tests/fixtures/sql/broken.sql:5:7: SQL does not parse"),
        "{stderr}"
    );
    assert!(stderr.contains("17 problem(s) found"), "{stderr}");
}

#[test]
fn a_missing_job_file_or_a_bad_option_is_a_usage_error() {
    assert_eq!(c360(&["run", "jobs/nope.yaml"]).status.code(), Some(2));
    assert_eq!(
        c360(&["run", "jobs/customer_360.yaml", "--date", "2026-02-30"])
            .status
            .code(),
        Some(2)
    );
    let out = c360(&[
        "run",
        "jobs/customer_360.yaml",
        "--set",
        "reporting_curency=USD",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("`reporting_curency` is neither a storage root"),
        "{}",
        text(&out.stderr)
    );
}

/// A bad builtin setting given with `--set` fails before any source is read: the
/// raw root does not even exist.
#[test]
fn a_bad_builtin_setting_on_the_command_line_is_a_usage_error_before_reading() {
    let wh = tempfile::tempdir().unwrap();
    let out = c360(&[
        "run",
        "jobs/customer_360.yaml",
        "--set",
        "clv_time_unit=fortnights",
        "--set",
        "raw=/nonexistent/raw",
        "--set",
        &format!("warehouse={}", wh.path().display()),
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr)
            .contains("step clv: param clv_time_unit: `fortnights`: expected `days` or `weeks`"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn a_run_that_cannot_read_its_sources_exits_1_and_names_the_source() {
    let raw = tempfile::tempdir().unwrap();
    let wh = tempfile::tempdir().unwrap();
    let out = c360(&[
        "run",
        "jobs/customer_360.yaml",
        "--date",
        "2026-02-02",
        "--set",
        &format!("raw={}", raw.path().display()),
        "--set",
        &format!("warehouse={}", wh.path().display()),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("error: run of customer_360 failed: source"),
        "{stderr}"
    );
    // Nothing was published.
    assert!(!wh.path().join("customer_360").exists());
}

#[test]
fn a_successful_run_exits_0_and_prints_what_it_wrote() {
    let wh = tempfile::tempdir().unwrap();
    let out = c360(&[
        "run",
        "jobs/customer_360.yaml",
        "--date",
        "2026-02-02",
        "--set",
        "raw=tests/fixtures/tiny_raw",
        "--set",
        &format!("warehouse={}", wh.path().display()),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("customer_360 for 2026-02-02 succeeded"),
        "{stdout}"
    );
    assert!(
        Path::new(
            &wh.path()
                .join("customer_360/snapshot_date=2026-02-02/part-00000.parquet")
        )
        .exists()
    );
}

#[test]
fn a_date_before_the_first_raw_day_names_the_partitions_and_the_date_to_run() {
    let wh = tempfile::tempdir().unwrap();
    let out = c360(&[
        "run",
        "jobs/customer_360.yaml",
        "--date",
        "2025-12-01",
        "--set",
        &format!("warehouse={}", wh.path().display()),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    // The sample's profiles run dt=2026-01-01 … dt=2026-03-01 (sample_data/README.md).
    let at = format!(
        "no data files at file://{}/sample_data/raw/profiles for 2025-12-01: a run reads partitions dt <= 2025-12-01, and the extract starts later: dt=2026-01-01 … dt=2026-03-01 (60 partitions)",
        repo_root().display()
    );
    assert!(stderr.contains(&at), "{stderr}");
    assert!(
        stderr.contains(
            "next: run a date on or after 2026-01-01 (`--date 2026-03-01` reads every partition there is)"
        ),
        "{stderr}"
    );
}

#[test]
fn a_raw_root_that_does_not_exist_is_a_usage_error_naming_it() {
    let wh = tempfile::tempdir().unwrap();
    let missing = wh.path().join("no-such-raw");
    let out = c360(&[
        "run",
        "jobs/customer_360.yaml",
        "--date",
        "2026-03-01",
        "--set",
        &format!("raw={}", missing.display()),
        "--set",
        &format!("warehouse={}", wh.path().display()),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "the raw root {} does not exist",
            missing.display()
        )),
        "{stderr}"
    );
}

#[test]
fn init_writes_a_project_that_runs_at_once_and_overwrites_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join("starter");
    let out = c360(&["init", &project.display().to_string()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    // The bundled sample: 2,000 people, 4 erased by the sample's requests
    // (docs/rules.md "Erasure"), so 1,996 customers.
    let run = c360_in(
        &project,
        &["run", "jobs/customer_360.yaml", "--date", "2026-03-01"],
    );
    assert_eq!(run.status.code(), Some(0), "{}", text(&run.stderr));
    let rows: usize =
        read_partition(&project.join("warehouse/customer_360/snapshot_date=2026-03-01"))
            .iter()
            .map(|b| b.num_rows())
            .sum();
    assert_eq!(rows, 1996);
    let again = c360(&["init", &project.display().to_string()]);
    assert_eq!(again.status.code(), Some(2));
    assert!(text(&again.stderr).contains("already exists"));
}

#[test]
fn completions_cover_every_command() {
    let out = c360(&["completions", "bash"]);
    assert_eq!(out.status.code(), Some(0));
    let script = text(&out.stdout);
    for command in [
        "run",
        "backfill",
        "scheduler",
        "query",
        "explain",
        "init",
        "--memory-limit",
    ] {
        assert!(script.contains(command), "{command} missing");
    }
}

#[test]
fn backfill_takes_set_and_reads_its_history_from_the_overridden_warehouse() {
    let wh = tempfile::tempdir().unwrap();
    let args = |from: &str| {
        vec![
            "backfill".to_string(),
            "jobs/customer_360.yaml".into(),
            "--from".into(),
            from.into(),
            "--to".into(),
            "2026-02-02".into(),
            "--set".into(),
            "raw=tests/fixtures/tiny_raw".into(),
            "--set".into(),
            format!("warehouse={}", wh.path().display()),
            "--memory-limit".into(),
            "256MiB".into(),
        ]
    };
    let run = |args: Vec<String>| c360(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let out = run(args("2026-02-01"));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        wh.path()
            .join("customer_360/snapshot_date=2026-02-01")
            .exists()
    );
    assert!(
        wh.path()
            .join("customer_360/snapshot_date=2026-02-02")
            .exists()
    );
    // The second backfill finds both dates in that warehouse's run log.
    let again = run(args("2026-02-01"));
    assert_eq!(again.status.code(), Some(0), "{}", text(&again.stderr));
    assert!(
        text(&again.stdout).contains("skipped, already succeeded (2)"),
        "{}",
        text(&again.stdout)
    );
    let mut bad = args("2026-02-01");
    bad.push("--set".into());
    bad.push("no_such_param=1".into());
    let out = run(bad);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("`no_such_param` is neither"));
}
