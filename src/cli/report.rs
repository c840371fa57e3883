//! `c360 report`: where the run report of a job is (`crate::report`), the one
//! of the latest logical date or of `--date`, and `--open` to open it with the
//! system's opener (`xdg-open`, `open` on macOS) when the warehouse is on local disk.

use std::path::PathBuf;
use std::process::ExitCode;

use chrono::NaiveDate;

use super::{exit, warehouse_of};

/// Prints the report's path (a URL for an object store) and opens it if asked.
pub async fn report(
    job: Option<PathBuf>,
    warehouse: Option<String>,
    date: Option<NaiveDate>,
    open: bool,
) -> ExitCode {
    let (job, location) = match warehouse_of(job, warehouse) {
        Ok(found) => found,
        Err(code) => return code,
    };
    let found = match crate::report::find_report(&location, job.as_deref(), date).await {
        Ok(found) => found,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(exit::RUN_FAILED);
        }
    };
    let Some(path) = found else {
        let which = date.map_or_else(String::new, |d| format!(" for {d}"));
        eprintln!("error: no run report{which} under {}", location.url);
        return ExitCode::from(exit::RUN_FAILED);
    };
    let url = format!("{}{path}", location.store_url.as_str());
    if !location.is_local_disk() {
        println!("{url}");
        if open {
            eprintln!("error: --open opens reports on local disk only; download {url} first");
            return ExitCode::from(exit::INVALID);
        }
        return ExitCode::from(exit::SUCCESS);
    }
    let Some(file) = url::Url::parse(&url)
        .ok()
        .and_then(|u| u.to_file_path().ok())
    else {
        eprintln!("error: {url} is not a local file path");
        return ExitCode::from(exit::RUN_FAILED);
    };
    println!("{}", file.display());
    if open {
        let opener = if cfg!(target_os = "macos") {
            "open"
        } else {
            "xdg-open"
        };
        match std::process::Command::new(opener).arg(&file).status() {
            Ok(status) if status.success() => {}
            Ok(status) => {
                eprintln!("error: {opener} {} exited with {status}", file.display());
                return ExitCode::from(exit::RUN_FAILED);
            }
            Err(e) => {
                eprintln!("error: cannot start {opener}: {e}");
                return ExitCode::from(exit::RUN_FAILED);
            }
        }
    }
    ExitCode::from(exit::SUCCESS)
}
