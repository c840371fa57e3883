//! `job::load` on fixture jobs: every mistake reported at once, and a valid job
//! resolved to the expected steps and order. Locations below were counted by hand
//! in the fixture files.

use c360::job::{
    self, CheckSpec, Compression, ContractSchema, Format, Overlap, RejectBudget, RetryPolicy,
    ScheduleSpec, Severity, StepKind,
};
use std::path::Path;
use std::time::Duration;

const MANY_MISTAKES: &str = "\
tests/fixtures/jobs/many_mistakes.yaml:2:11: timezone `Europe/Paris` disagrees with schedule.timezone `Europe/London`
tests/fixtures/jobs/many_mistakes.yaml:3:19: schedule.cron: `0 30 25 * * *`: Component error: Number out of bounds.
tests/fixtures/jobs/many_mistakes.yaml:4:51: params.clv_time_unit: `fortnights`: expected `days` or `weeks` (a setting of builtin `fit_clv`, step `orders_clean`)
tests/fixtures/jobs/many_mistakes.yaml:4:78: params.link_by_phone: `maybe` is not true or false (a setting of builtin `stitch_identities`, step `stitched`)
tests/fixtures/jobs/many_mistakes.yaml:6:25: engine.memory_limit: invalid size `4 gigs`: expected e.g. `512MiB`, `4GiB`, `2GB`
tests/fixtures/jobs/many_mistakes.yaml:9:47: sources.profiles: unknown variant `xlsx`, expected one of `csv`, `ndjson`, `parquet`
tests/fixtures/jobs/many_mistakes.yaml:10:47: sources.transactions: unknown field `fromat`, expected one of `path`, `format`, `schema`, `partitions`, `rejects`, `limits`, `currencies`, `optional`
tests/fixtures/jobs/many_mistakes.yaml:14:13: dependency cycle: customer_totals -> ranked -> customer_totals
tests/fixtures/jobs/many_mistakes.yaml:17:27: cannot read SQL file `tests/fixtures/sql/does_not_exist.sql`: No such file or directory (os error 2)
tests/fixtures/jobs/many_mistakes.yaml:18:13: duplicate name `orders_clean` (first defined at line 13, column 13)
tests/fixtures/jobs/many_mistakes.yaml:19:58: step `stitched`: undefined input `identity_edges` (not a source or step of this job)
tests/fixtures/jobs/many_mistakes.yaml:23:42: checks.customer_totals.row_count: invalid type: string \"lots\", expected f64
tests/fixtures/jobs/many_mistakes.yaml:25:28: outputs.customer_totals.path: unknown placeholder `{snapshot}`
tests/fixtures/jobs/many_mistakes.yaml:26:3: outputs: undefined table `summary` (not a source or step of this job)
tests/fixtures/sql/broken.sql:5:7: SQL does not parse: Expected: end of statement, found: BY
tests/fixtures/sql/orders_clean.sql:4:6: undefined table `customers` (not a source or step of this job)
tests/fixtures/sql/orders_clean.sql:5:21: unknown placeholder `{reportng_currency}`";

#[test]
fn many_mistakes_are_all_reported_with_locations() {
    let err = job::load(Path::new("tests/fixtures/jobs/many_mistakes.yaml")).unwrap_err();
    assert_eq!(err.to_string(), MANY_MISTAKES);
}

#[test]
fn validate_reports_every_file_in_one_pass() {
    let out = crate::util::c360(&[
        "validate",
        "tests/fixtures/jobs/customer_360.yaml",
        "tests/fixtures/jobs/many_mistakes.yaml",
        "tests/fixtures/jobs/absent.yaml",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    // Every mistake of many_mistakes.yaml (the test above lists them), then the
    // missing file: nothing stops at the first bad file.
    for line in MANY_MISTAKES.lines() {
        assert!(stderr.contains(line), "{line} missing in\n{stderr}");
    }
    let last = stderr.lines().rev().nth(1).unwrap_or_default();
    assert!(
        last.starts_with("tests/fixtures/jobs/absent.yaml:1:1: cannot read job file:"),
        "{stderr}"
    );
}

#[test]
fn valid_job_loads_with_steps_in_dependency_order() {
    let job = job::load(Path::new("tests/fixtures/jobs/customer_360.yaml"))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(job.name, "customer_360");
    assert_eq!(job.timezone, chrono_tz::Europe::London);
    assert_eq!(job.params["annual_discount_rate"], "0.10");
    assert_eq!(job.params["clv_horizon_months"], "12");
    assert_eq!(job.storage.raw, "sample_data/raw");
    assert_eq!(job.storage.options["aws_region"], "eu-west-1");
    assert_eq!(job.engine.memory_limit, Some(4 * 1024 * 1024 * 1024));
    assert_eq!(
        job.schedule,
        Some(ScheduleSpec {
            cron: "0 30 2 * * *".into(),
            catchup: Duration::from_secs(3 * 24 * 3600),
            overlap: Overlap::Skip,
            retries: RetryPolicy {
                attempts: 3,
                backoff: Duration::from_secs(60)
            },
            max_runtime: None,
        })
    );

    let sources: Vec<_> = job.sources.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        sources,
        [
            "fx_rates",
            "profiles",
            "transactions",
            "communications",
            "suppressions"
        ]
    );
    let profiles = &job.sources[1];
    assert_eq!(profiles.path, "{raw}/profiles");
    assert_eq!(
        (profiles.format, profiles.schema),
        (Format::Csv, ContractSchema::Profiles)
    );
    assert_eq!(profiles.partitions, ["dt"]);
    assert_eq!(
        profiles.rejects,
        RejectBudget {
            max_fraction: 0.02,
            max_rows: Some(1000)
        }
    );
    assert_eq!(job.sources[2].currencies.as_deref(), Some("fx_rates"));
    assert_eq!(job.sources[3].format, Format::Ndjson);
    assert!(job.sources[4].optional && !job.sources[0].optional);

    // orders and identity_edges only read sources; the builtins follow their inputs;
    // customer_360 reads three steps and comes last although it is listed first.
    let steps: Vec<(&str, Vec<&str>)> = job
        .steps
        .iter()
        .map(|s| {
            (
                s.name.as_str(),
                s.depends_on.iter().map(String::as_str).collect(),
            )
        })
        .collect();
    assert_eq!(
        steps,
        [
            ("orders", vec!["transactions", "fx_rates"]),
            ("identity_edges", vec!["profiles", "transactions"]),
            ("customers_stitched", vec!["identity_edges"]),
            ("clv", vec!["orders", "customers_stitched"]),
            ("customer_360", vec!["customers_stitched", "orders", "clv"]),
            ("erasure_requests", vec!["suppressions"]),
            (
                "erased_customers",
                vec!["customers_stitched", "erasure_requests"]
            ),
            (
                "erased_identifiers",
                vec!["customers_stitched", "erased_customers"]
            ),
        ]
    );
    let erasure = job.erasure.as_ref().expect("the erasure section");
    assert_eq!(
        erasure.steps(),
        ["erasure_requests", "erased_customers", "erased_identifiers"]
    );
    match &job.steps[4].kind {
        StepKind::Sql { file, sql } => {
            assert_eq!(file, Path::new("tests/fixtures/sql/valid_customer_360.sql"));
            assert!(
                sql.contains("c.clv_{clv_horizon_months}m"),
                "kept uninterpolated"
            );
        }
        other => panic!("expected a SQL step, got {other:?}"),
    }
    match &job.steps[3].kind {
        StepKind::Builtin { builtin, inputs } => {
            assert_eq!(*builtin, c360::job::Builtin::FitClv);
            assert_eq!(inputs, &["orders", "customers_stitched"]);
        }
        other => panic!("expected a builtin step, got {other:?}"),
    }

    assert_eq!(job.checks["customer_360"].len(), 6);
    assert_eq!(
        job.checks["customer_360"][1],
        CheckSpec::NotNull {
            columns: vec!["customer_key".into(), "value_segment".into()],
            severity: Severity::Warn
        }
    );
    assert_eq!(
        job.checks["orders"][1],
        CheckSpec::AcceptedValues {
            column: "channel".into(),
            values: vec![
                "online".into(),
                "store".into(),
                "phone".into(),
                "marketplace".into()
            ],
            severity: Severity::Warn
        }
    );

    let outputs: Vec<_> = job
        .outputs
        .iter()
        .map(|o| (o.name.as_str(), o.path.as_str(), o.compression))
        .collect();
    assert_eq!(
        outputs,
        [
            (
                "customer_360",
                "{warehouse}/customer_360",
                Compression::Zstd
            ),
            (
                "customers_stitched",
                "{warehouse}/identity_map",
                Compression::Snappy
            ),
        ]
    );
    assert_eq!(job.outputs[0].partition_by, ["snapshot_date"]);
    assert_eq!(job.outputs[0].sort_by, ["customer_key"]);
}

/// Erasure is declared: a job with a `suppressions` source must say which steps
/// resolve it, and each name must be a step (locations counted by hand).
#[test]
fn erasure_must_be_declared_with_a_suppressions_source_and_name_steps() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    let sources = "\
name: erasure_job
storage: { raw: raw, warehouse: wh }
sources:
  suppressions: { path: \"{raw}/suppressions\", format: csv, schema: suppressions }
";
    let undeclared = write("undeclared.yaml", sources);
    let err = job::load(&undeclared).unwrap_err().to_string();
    assert_eq!(
        err,
        format!(
            "{}:4:3: source `suppressions` holds erasure requests (schema: suppressions), so the \
             job needs an `erasure:` section naming the steps that resolve them: `erasure: {{ \
             requests: …, customers: …, identifiers: … }}` (docs/rules.md \"Erasure\")",
            undeclared.display()
        )
    );

    let misnamed = write(
        "misnamed.yaml",
        &format!(
            "{sources}erasure: {{ requests: suppressions, customers: gone, identifiers: also_gone }}\n"
        ),
    );
    let err = job::load(&misnamed).unwrap_err().to_string();
    let path = misnamed.display();
    assert_eq!(
        err,
        format!(
            "{path}:5:22: erasure.requests: `suppressions` is not a step of this job\n\
             {path}:5:47: erasure.customers: `gone` is not a step of this job\n\
             {path}:5:66: erasure.identifiers: `also_gone` is not a step of this job"
        )
    );
}

/// Writes `files` (path, text) under a fresh folder and returns it.
fn project(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (path, text) in files {
        let path = dir.path().join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    dir
}

/// `c360 validate jobs/small.yaml` in `dir`: exit code and stderr.
fn validate_in(dir: &Path) -> (i32, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_c360"))
        .args(["validate", "jobs/small.yaml"])
        .current_dir(dir)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const SMALL_JOB: &str = "\
name: small
params: { reporting_currency: EUR, unused_knob: 3 }
storage: { raw: raw, warehouse: wh }
sources:
  transactions: { path: \"{raw}/transactions\", format: csv, schema: transactions, partitions: [dt] }
steps:
  - { name: orders, sql: sql/orders.sql }
  - { name: leftover, sql: sql/leftover.sql }
checks:
  orders:
    unique: [transaction_id]
    not_null: [ordre_ts]
outputs:
  orders: { path: \"{warehouse}/orders\", partition_by: [snapshot_date], sort_by: [transaction_id, line_no] }
";

// The job's SQL is planned over the contract's typed schemas: a misspelt column
// is reported in the SQL file at the template's own line and column (the
// placeholder before it is 20 characters in the file, 3 once interpolated), a
// check or an output key that names no column at its job-file entry, and every
// problem at once, with exit 2.
#[test]
fn validate_plans_the_sql_and_points_at_the_file_line_and_column() {
    let orders = "\
-- Orders in the reporting currency.
SELECT transaction_id, order_ts, line_no
FROM transactions_deduped
WHERE currency = '{reporting_currency}' AND amount_typo > 0
";
    let dir = project(&[
        ("jobs/small.yaml", SMALL_JOB),
        ("sql/orders.sql", orders),
        (
            "sql/leftover.sql",
            "SELECT COUNT(*) AS n FROM transactions\n",
        ),
    ]);
    let (code, stderr) = validate_in(dir.path());
    assert_eq!(code, 2, "{stderr}");
    // 'WHERE currency = \'' is 18 characters, the placeholder 20, "' AND " 6.
    assert!(
        stderr.contains("sql/orders.sql:4:45: step orders: ") && stderr.contains("amount_typo"),
        "{stderr}"
    );
    // Steps reading a broken step are not reported again (the check and output
    // on `orders` neither).
    assert_eq!(stderr.matches("orders").count(), 2, "{stderr}");
    assert!(stderr.ends_with("1 problem(s) found\n"), "{stderr}");

    // Fixed SQL: now the check and the output key are found, in the job file.
    let fixed = orders.replace("amount_typo", "quantity");
    std::fs::write(dir.path().join("sql/orders.sql"), fixed).unwrap();
    let (code, stderr) = validate_in(dir.path());
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("jobs/small.yaml:10:3: checks.orders: ") && stderr.contains("ordre_ts"),
        "{stderr}"
    );
    assert!(stderr.ends_with("1 problem(s) found\n"), "{stderr}");
    // Warnings do not fail a run: the unused param and the step nothing reads.
    assert!(
        stderr.contains("jobs/small.yaml:2:49: warning: params.unused_knob: no SQL file, path or builtin step uses it"),
        "{stderr}"
    );
    assert!(
        stderr.contains("jobs/small.yaml:8:13: warning: step leftover: nothing reads it"),
        "{stderr}"
    );

    // A sort key that is not a column, and a clean check: one error.
    let job = SMALL_JOB
        .replace("not_null: [ordre_ts]", "not_null: [order_ts]")
        .replace(
            "sort_by: [transaction_id, line_no]",
            "sort_by: [transaction_id, line]",
        );
    std::fs::write(dir.path().join("jobs/small.yaml"), job).unwrap();
    let (code, stderr) = validate_in(dir.path());
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains(
            "jobs/small.yaml:14:3: outputs.orders: sort_by column `line` is not a column of the step"
        ),
        "{stderr}"
    );
    assert!(stderr.ends_with("1 problem(s) found\n"), "{stderr}");
}

// The bundled job plans clean: no error and no warning.
#[tokio::test]
async fn the_bundled_job_plans_without_errors_or_warnings() {
    let job = job::load(&crate::util::repo_root().join("jobs/customer_360.yaml"))
        .unwrap_or_else(|e| panic!("{e}"));
    let findings = c360::run::plan_job(&job).await;
    let all: Vec<String> = findings
        .errors
        .iter()
        .chain(&findings.warnings)
        .map(|d| d.to_string())
        .collect();
    assert!(all.is_empty(), "{all:#?}");
}

// Outputs are written only under the warehouse and SQL is read only from the
// project folder: `..` and other roots are refused when the job is loaded, a
// symlink out of the warehouse when it is planned (and again when it runs).
#[test]
fn paths_out_of_the_warehouse_or_the_project_are_refused() {
    let orders = "SELECT transaction_id, line_no FROM transactions_deduped\n";
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("evil.sql"), orders).unwrap();
    let escaping = SMALL_JOB
        .replace("{warehouse}/orders", "{warehouse}/../../escaped")
        .replace(
            "sql: sql/leftover.sql",
            &format!("sql: {}", outside.path().join("evil.sql").display()),
        );
    let dir = project(&[
        ("jobs/small.yaml", &escaping),
        ("sql/orders.sql", orders),
        ("sql/leftover.sql", orders),
    ]);
    let (code, stderr) = validate_in(dir.path());
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("jobs/small.yaml:14:19: outputs.orders.path: must not contain `..`"),
        "{stderr}"
    );
    assert!(
        stderr.contains("jobs/small.yaml:8:28: SQL file `")
            && stderr.contains("is outside the job's project folder"),
        "{stderr}"
    );

    // A symlink inside the warehouse that leads out of it.
    let job = SMALL_JOB.replace("not_null: [ordre_ts]", "not_null: [order_ts]");
    std::fs::write(dir.path().join("jobs/small.yaml"), job).unwrap();
    std::fs::remove_file(dir.path().join("sql/leftover.sql")).unwrap();
    std::fs::write(
        dir.path().join("sql/leftover.sql"),
        "SELECT COUNT(*) AS n FROM transactions\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("sql/orders.sql"),
        "SELECT transaction_id, order_ts, line_no FROM transactions_deduped\n",
    )
    .unwrap();
    let (code, stderr) = validate_in(dir.path());
    assert_eq!(code, 0, "{stderr}");
    std::fs::create_dir_all(dir.path().join("wh")).unwrap();
    std::os::unix::fs::symlink(outside.path(), dir.path().join("wh/orders")).unwrap();
    let (code, stderr) = validate_in(dir.path());
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("jobs/small.yaml:14:3: outputs.orders.path: ")
            && stderr.contains("is not under the warehouse"),
        "{stderr}"
    );
    // A run refuses it before reading anything, and writes nothing out there.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_c360"))
        .args(["run", "jobs/small.yaml", "--date", "2026-01-02"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("is not under the warehouse"), "{stderr}");
    assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 1);
}
