//! `c360 generate`: synthetic extracts in the contract layout, and a summary
//! of what was written.

use std::path::PathBuf;
use std::process::ExitCode;

use chrono::NaiveDate;

use super::exit;

pub(super) async fn generate(
    customers: u64,
    days: u32,
    seed: u64,
    start_date: NaiveDate,
    out: &str,
) -> ExitCode {
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    let registry = crate::storage::StorageRegistry::new(cwd, Default::default());
    let location = match registry.resolve_for_write(out) {
        Ok(location) => location,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(exit::INVALID);
        }
    };
    let options = crate::generate::GenerateOptions {
        customers,
        days,
        seed,
        start_date,
    };
    match crate::generate::generate(&options, location.store.clone(), &location.prefix).await {
        Ok(report) => {
            print_generate_report(&report, out);
            ExitCode::from(exit::SUCCESS)
        }
        Err(e) => {
            eprintln!("error: generate failed: {e}");
            ExitCode::from(exit::RUN_FAILED)
        }
    }
}

fn print_generate_report(report: &crate::generate::GenerateReport, out: &str) {
    println!(
        "generated {} files under {out} in {:.1}s; ground truth in {out}/_ground_truth/",
        report.files.len(),
        report.elapsed.as_secs_f64()
    );
    println!("{:<16} {:>10} {:>10}", "extract", "rows", "malformed");
    for (extract, rows) in &report.rows {
        let malformed: u64 = report.rejects.get(extract).map_or(0, |r| r.values().sum());
        println!("{extract:<16} {rows:>10} {malformed:>10}");
    }
    println!("identities: {}", report.identities);
    for (name, count) in &report.counts {
        println!("{name}: {count}");
    }
}
