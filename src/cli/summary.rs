//! What `c360 run` prints when a run succeeds: rows read per source, rows and
//! files per output and rejects table, what erasure left out, each check.

use crate::run::RunSummary;

/// Prints the summary of a successful run to stdout.
pub(super) fn print_summary(summary: &RunSummary) {
    let on = summary
        .engine
        .as_deref()
        .map(|url| format!(" on {url}"))
        .unwrap_or_default();
    println!(
        "run {} of {} for {} succeeded in {:.1}s{on}",
        summary.run_id, summary.job, summary.date, summary.elapsed_secs
    );
    println!(
        "{:<16} {:>10} {:>10} {:>10}",
        "source", "read", "accepted", "rejected"
    );
    for source in &summary.sources {
        let r = &source.report;
        println!(
            "{:<16} {:>10} {:>10} {:>10}",
            source.name, r.rows_read, r.rows_accepted, r.rows_rejected
        );
    }
    println!("{:<24} {:>10} {:>6}  location", "output", "rows", "files");
    let rejects = summary
        .rejects
        .iter()
        .map(|r| (format!("rejects/{}", r.name), r));
    let outputs = summary.outputs.iter().map(|o| (o.name.clone(), o));
    for (name, output) in outputs.chain(rejects) {
        println!(
            "{:<24} {:>10} {:>6}  {}",
            name, output.rows, output.files, output.location
        );
    }
    let erasure = &summary.erasure;
    let removed: u64 = erasure.reject_rows_removed.values().sum();
    println!(
        "erasure: {} requested identifiers, {} customers erased, {removed} reject rows left out",
        erasure.requested_identifiers,
        erasure.erased_customers.unwrap_or(0)
    );
    if erasure.history_partitions_rewritten > 0 {
        let rows: u64 = erasure.history_rows_removed.values().sum();
        println!(
            "erasure history: {} earlier partitions rewritten, {rows} rows left out",
            erasure.history_partitions_rewritten
        );
    }
    for check in &summary.checks {
        let status = match check.status {
            crate::checks::CheckStatus::Pass => "pass",
            crate::checks::CheckStatus::Warn => "WARN",
            crate::checks::CheckStatus::Fail => "FAIL",
        };
        println!("check {status:<4} {}", check.summary());
    }
}
