//! `c360 explain` on the bundled job: the raw days each source reads (counted
//! here from the sample folders), how many the typed staging cache holds before
//! and after a run, the steps in the job's order with their materialization,
//! the checks and outputs, and the plans with `--verbose`. Nothing is written.

use std::path::Path;
use std::process::Command;

use crate::util::repo_root;

fn explain(wh: &Path, extra: &[&str]) -> String {
    let set = format!("--set=warehouse={}", wh.display());
    let out = Command::new(env!("CARGO_BIN_EXE_c360"))
        .args([
            "explain",
            "jobs/customer_360.yaml",
            "--date",
            "2026-03-01",
            &set,
        ])
        .args(extra)
        .current_dir(repo_root())
        .env("C360_LOG", "warn")
        .env("AWS_SECRET_ACCESS_KEY", "canary-secret-0123456789")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!stdout.contains("canary-secret"));
    stdout
}

/// Days of `source` in the sample with a data file, up to the run date.
fn sample_days(source: &str) -> usize {
    let dir = repo_root().join("sample_data/raw").join(source);
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().as_ref() <= "dt=2026-03-01")
        .filter(|p| std::fs::read_dir(p).unwrap().count() > 0)
        .count()
}

fn line<'a>(text: &'a str, starts: &str) -> &'a str {
    text.lines()
        .find(|l| l.trim_start().starts_with(starts))
        .unwrap_or_else(|| panic!("no line `{starts}` in\n{text}"))
}

#[test]
fn explain_shows_sources_steps_checks_and_outputs_without_running() {
    let wh = tempfile::tempdir().unwrap();
    let text = explain(wh.path(), &[]);
    let days = sample_days("transactions");
    let transactions = line(&text, "transactions ");
    assert!(
        transactions.contains(&format!("{days} day(s) 2026-01-01 .. 2026-03-01, 0 cached")),
        "{transactions}"
    );
    assert!(
        std::fs::read_dir(wh.path()).unwrap().next().is_none(),
        "nothing written"
    );

    // Steps in the job's order with their materialization.
    let job = c360::job::load(&repo_root().join("jobs/customer_360.yaml")).unwrap();
    let mut at = 0;
    for step in &job.steps {
        let found = text[at..]
            .find(&format!("\n  {} ", step.name))
            .unwrap_or_else(|| panic!("{} out of order in\n{text}", step.name));
        at += found + 1;
    }
    assert!(line(&text, "rfm ").contains(" table "), "{text}");
    assert!(line(&text, "customer_events ").contains(" view "), "{text}");
    let graph = line(&text, "identity_graph ");
    assert!(graph.contains("builtin stitch_identities") && graph.contains("<- identity_links"));
    assert!(line(&text, "identity_graph_merges ").contains("<- identity_graph"));
    assert!(
        text.contains("incremental: carried in _c360/state/identity_link_rows/, new days merged into seen_on (min)"),
        "{text}"
    );
    let c360 = line(&text, "customer_360 ");
    assert!(
        c360.contains(" output ") && c360.contains("sql/marts/customer_360.sql"),
        "{c360}"
    );
    assert!(
        text.contains("unique(transaction_id, line_no, status)"),
        "{text}"
    );
    let published = text.split("\noutputs\n").nth(1).unwrap();
    assert!(
        line(published, "customer_360 ")
            .ends_with("/customer_360/snapshot_date=2026-03-01  sorted by customer_key"),
        "{published}"
    );

    // After a run the days whose entry survived (entries holding an erased
    // person's rows are deleted at the end of each run) are cached; --verbose
    // prints the plans.
    let set = format!("--set=warehouse={}", wh.path().display());
    let run = Command::new(env!("CARGO_BIN_EXE_c360"))
        .args([
            "run",
            "jobs/customer_360.yaml",
            "--date",
            "2026-03-01",
            &set,
        ])
        .current_dir(repo_root())
        .env("C360_LOG", "warn")
        .output()
        .unwrap();
    assert!(run.status.success());
    let text = explain(wh.path(), &["--verbose"]);
    let entries = crate::util::files_under(&wh.path().join("_c360/staging/transactions"))
        .iter()
        .filter(|f| f.ends_with("manifest.json"))
        .count();
    assert!(entries > days / 2, "{entries}");
    assert!(
        line(&text, "transactions ")
            .ends_with(&format!(", {entries} cached for the same raw files")),
        "{text}"
    );
    assert!(text.contains("step customer_360: logical plan"), "{text}");
    assert!(text.contains("step rfm: physical plan"), "{text}");
}
