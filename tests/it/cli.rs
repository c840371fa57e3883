//! The `c360` binary as a user runs it: documented exit codes (0 success,
//! 1 run failed, 2 invalid job or usage) and what it prints.

use std::path::Path;
use std::process::{Command, Output};

use crate::util::repo_root;

fn c360(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_c360"))
        .args(args)
        .current_dir(repo_root())
        .env("C360_LOG", "warn")
        .output()
        .unwrap()
}

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
