//! The run report (`{warehouse}/_c360/reports/<job>/<date>.html`): written by
//! every run, found by `c360 report`, its numbers the ones the committed Parquet
//! holds (counted here with the parquet crate, not with c360), hostile reject
//! text escaped, a failed run's error shown, no secret in it.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use datafusion::arrow::array::{Array, AsArray};

use crate::util::{files_under, read_partition, repo_root};

fn c360(args: &[&str], envs: &[(&str, &str)]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_c360"))
        .args(args)
        .current_dir(repo_root())
        .env("C360_LOG", "warn")
        .envs(envs.iter().copied())
        .output()
        .unwrap()
}

fn load(raw: &Path, wh: &Path, date: &str, envs: &[(&str, &str)], extra: &[&str]) -> bool {
    let raw = format!("--set=raw={}", raw.display());
    let wh = format!("--set=warehouse={}", wh.display());
    let mut args = vec!["run", "jobs/customer_360.yaml", "--date", date, &raw, &wh];
    args.extend_from_slice(extra);
    c360(&args, envs).status.success()
}

fn report_text(wh: &Path, date: &str) -> String {
    let path = wh.join(format!("_c360/reports/customer_360/{date}.html"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The part of the page inside `<figure … id="{id}" …>`.
fn figure<'a>(html: &'a str, id: &str) -> &'a str {
    let start = html
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no figure {id}"));
    let end = html[start..].find("</figure>").unwrap() + start;
    &html[start..end]
}

/// The texts drawn in an SVG (`<text …>TEXT</text>`), in order.
fn svg_texts(svg: &str) -> Vec<String> {
    svg.split("<text")
        .skip(1)
        .filter_map(|t| {
            let body = &t[t.find('>')? + 1..];
            Some(body[..body.find("</text>")?].trim().to_string())
        })
        .collect()
}

/// Customers per value segment of a committed customer_360 partition, counted
/// from the Parquet file by hand (NULL: customers without a purchase).
fn value_segments(wh: &Path, date: &str) -> BTreeMap<String, u64> {
    let dir = wh.join(format!("customer_360/snapshot_date={date}"));
    let mut out = BTreeMap::new();
    for batch in read_partition(&dir) {
        let column = batch.column_by_name("value_segment").unwrap();
        let segments = column.as_string::<i32>();
        for i in 0..segments.len() {
            let name = if segments.is_null(i) {
                "(no purchase)".to_string()
            } else {
                segments.value(i).to_string()
            };
            *out.entry(name).or_insert(0) += 1;
        }
    }
    out
}

/// `1234` as the report writes it: `1,234`.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[test]
fn each_run_writes_a_report_that_c360_report_finds_and_its_charts_count_the_outputs() {
    let wh = tempfile::tempdir().unwrap();
    let raw = repo_root().join("sample_data/raw");
    assert!(load(&raw, wh.path(), "2026-02-01", &[], &[]));
    assert!(load(&raw, wh.path(), "2026-03-01", &[], &[]));

    // One file per job and date, and `c360 report` finds the latest or a date.
    let reports: Vec<String> = files_under(&wh.path().join("_c360/reports"))
        .iter()
        .map(|f| f.strip_prefix(wh.path()).unwrap().display().to_string())
        .collect();
    assert_eq!(
        reports,
        [
            "_c360/reports/customer_360/2026-02-01.html",
            "_c360/reports/customer_360/2026-03-01.html"
        ]
    );
    let wh_arg = wh.path().display().to_string();
    let latest = c360(&["report", "--warehouse", &wh_arg], &[]);
    assert!(latest.status.success());
    let want = wh.path().join("_c360/reports/customer_360/2026-03-01.html");
    assert_eq!(
        String::from_utf8_lossy(&latest.stdout).trim(),
        want.display().to_string()
    );
    let dated = c360(
        &[
            "report",
            "jobs/customer_360.yaml",
            "--warehouse",
            &wh_arg,
            "--date",
            "2026-02-01",
        ],
        &[],
    );
    assert!(
        String::from_utf8_lossy(&dated.stdout)
            .trim()
            .ends_with("2026-02-01.html")
    );
    let missing = c360(
        &["report", "--warehouse", &wh_arg, "--date", "2026-02-02"],
        &[],
    );
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no run report for 2026-02-02"));

    // `--open` hands the file to the system's opener (a stand-in on PATH here).
    let bin = tempfile::tempdir().unwrap();
    let opened = bin.path().join("opened");
    let opener = bin.path().join("xdg-open");
    std::fs::write(
        &opener,
        format!("#!/bin/sh\necho \"$1\" > {}\n", opened.display()),
    )
    .unwrap();
    std::fs::set_permissions(&opener, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}",
        bin.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let open = c360(
        &["report", "--warehouse", &wh_arg, "--open"],
        &[("PATH", &path)],
    );
    assert!(
        open.status.success(),
        "{}",
        String::from_utf8_lossy(&open.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(&opened).unwrap().trim(),
        want.display().to_string()
    );

    let html = report_text(wh.path(), "2026-03-01");
    // Self-contained: no script, nothing loaded from anywhere.
    assert!(html.contains("default-src 'none'"));
    assert!(!html.contains("<script"));
    assert!(!html.contains("src=") && !html.contains("href=\"http"));
    assert!(html.contains("id=\"status\">succeeded<"));

    // The value-segment chart draws every segment's customers of this snapshot
    // and of the one before, as counted from the committed Parquet.
    let chart = figure(&html, "chart-1");
    let texts = svg_texts(chart);
    for date in ["2026-03-01", "2026-02-01"] {
        let counted = value_segments(wh.path(), date);
        assert!(counted.len() >= 4, "{counted:?}");
        for (segment, customers) in &counted {
            let at = texts.iter().position(|t| t == segment);
            assert!(at.is_some(), "{segment} not drawn: {texts:?}");
            assert!(
                texts.contains(&thousands(*customers)),
                "{date} {segment}: {customers} not drawn: {texts:?}"
            );
        }
    }
    // Sample order lines: 17117 (tests/independent_order_lines.py recomputes it
    // from the raw files in Python).
    assert!(html.contains("<td>order_lines</td><td class=\"n\">17,117</td>"));
    // Every chart of the bundled job is drawn, and the stage timings.
    for id in [
        "chart-1",
        "chart-2",
        "chart-3",
        "chart-4",
        "chart-5",
        "chart-6",
        "chart-stages",
    ] {
        let part = figure(&html, id);
        assert!(
            part.contains("<svg") && !part.contains("chart-error"),
            "{id}: {part}"
        );
    }
    // The change chart: all customers grew from the February to the March snapshot.
    let before: u64 = value_segments(wh.path(), "2026-02-01").values().sum();
    let after: u64 = value_segments(wh.path(), "2026-03-01").values().sum();
    let change = svg_texts(figure(&html, "chart-6"));
    let all = change.iter().position(|t| t == "all: all").unwrap();
    assert!(
        change.contains(&thousands(after - before)),
        "{} in {change:?} ({all})",
        after - before
    );

    // The record holds what the report cost.
    let runs = files_under(&wh.path().join("_c360/runs"));
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(runs.last().unwrap()).unwrap()).unwrap();
    let stages: Vec<&str> = record["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["stage"].as_str().unwrap())
        .collect();
    assert_eq!(stages.last(), Some(&"report"));

    // The first date had nothing before it to compare with, and says so.
    let first = report_text(wh.path(), "2026-02-01");
    assert!(figure(&first, "chart-6").contains("No earlier snapshot is committed"));
}

#[test]
fn a_failed_run_reports_its_error_with_hostile_reject_text_escaped_and_no_secret() {
    let raw = tempfile::tempdir().unwrap();
    let wh = tempfile::tempdir().unwrap();
    for file in files_under(&repo_root().join("tests/fixtures/tiny_raw")) {
        let rel = file
            .strip_prefix(repo_root().join("tests/fixtures/tiny_raw"))
            .unwrap();
        let target = raw.path().join(rel);
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::copy(&file, &target).unwrap();
    }
    // Two rejected rows (a script in a timestamp, a formula as the id) put the
    // transactions far over their 1% budget: the run fails after publishing rejects.
    std::fs::write(
        raw.path().join("transactions/dt=2026-02-01/late.csv"),
        "transaction_id,line_no,source_system,source_customer_id,email,order_ts,channel,product_id,category,quantity,unit_price,discount,unit_cost,currency,status\n\
         T10,1,crm,C1,,<script>alert(1)</script>,online,P1,shoes,1,10.00,,,EUR,completed\n\
         =HYPERLINK(A1),1,crm,C1,,2026-01-31T10:00:00Z,online,P1,shoes,-1,10.00,,,EUR,completed\n",
    )
    .unwrap();
    let secret = "hunter2-not-for-reports";
    let envs = [("AWS_SECRET_ACCESS_KEY", secret)];
    let set = format!("--set=source_priority={secret}");
    assert!(!load(raw.path(), wh.path(), "2026-02-01", &envs, &[&set]));

    let html = report_text(wh.path(), "2026-02-01");
    assert!(html.contains("id=\"status\">failed<"));
    assert!(html.contains("<section id=\"error\">"));
    assert!(
        html.contains("source transactions"),
        "the error names the source"
    );
    // The hostile rows are shown, harmless.
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(!html.contains("<script"));
    let formulas = html.matches("=HYPERLINK(").count();
    assert_eq!(formulas, html.matches("&#39;=HYPERLINK(A1)").count());
    assert!(formulas >= 1);
    assert!(html.contains("bad_timestamp") && html.contains("negative_quantity"));
    // No secret: the param carrying it is masked.
    assert!(!html.contains(secret));
    assert!(html.contains("<th>source_priority</th><td><code>***</code>"));
    // Nothing was published, so the charts say what there is: nothing yet.
    assert!(html.contains("This run published no output."));
    assert!(figure(&html, "chart-1").contains("chart-error"));
}

/// The bundled job with its `report:` section replaced by `charts` (YAML lines).
fn job_with_charts(dir: &Path, charts: &str) -> std::path::PathBuf {
    let text = std::fs::read_to_string(repo_root().join("jobs/customer_360.yaml")).unwrap();
    let head = &text[..text.find("\nreport:").unwrap()];
    let path = dir.join("job.yaml");
    std::fs::write(&path, format!("{head}\nreport:\n  charts:\n{charts}")).unwrap();
    path
}

#[tokio::test]
async fn validate_plans_every_chart_where_the_job_file_declares_it() {
    let dir = tempfile::tempdir().unwrap();
    let base = job_with_charts(dir.path(), "");
    let line = std::fs::read_to_string(&base).unwrap().lines().count() + 1;
    let path = job_with_charts(
        dir.path(),
        "    - { title: A, kind: bar, sql: \"SELECT segment, customers FROM segment_summary\" }\n\
         \x20   - { title: B, kind: bar, sql: \"SELECT customers, segment FROM segment_summary\" }\n\
         \x20   - { title: C, kind: heatmap, sql: \"SELECT r_score, f_scor, 1 FROM customer_360\" }\n\
         \x20   - { title: D, kind: histogram, sql: \"SELECT clv FROM previous.customer_360\" }\n",
    );
    let job = c360::job::load_with_base(&path, &repo_root()).unwrap_or_else(|e| panic!("{e}"));
    let findings = c360::run::plan_job(&job).await;
    let errors: Vec<String> = findings.errors.iter().map(|d| d.to_string()).collect();
    let file = path.display();
    assert_eq!(errors.len(), 2, "{errors:#?}");
    assert_eq!(
        errors[0],
        format!(
            "{file}:{}:35: report.charts[1] (B): column 2 (`segment`) is the value and must be a number; it is Utf8",
            line + 1
        )
    );
    assert!(
        errors[1].starts_with(&format!("{file}:{}:39: report.charts[2] (C): ", line + 2)),
        "{}",
        errors[1]
    );
    assert!(errors[1].contains("f_scor"), "{}", errors[1]);

    // A chart reads outputs only: a step that is not published is refused at load.
    let path = job_with_charts(
        dir.path(),
        "    - { title: E, kind: bar, sql: \"SELECT 1, 2 FROM rfm JOIN previous.order_lines ON true\" }\n",
    );
    let err = c360::job::load_with_base(&path, &repo_root())
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        format!(
            "{}:{line}:35: report.charts[0].sql: `rfm` is not an output of this job (charts read outputs, or previous.<output>)",
            path.display()
        )
    );
}
