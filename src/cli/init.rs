//! `c360 init DIR`: a starter project that runs at once — the bundled job, its
//! SQL and reference data (compiled into the binary, so they are the files of
//! this repository), and synthetic raw extracts from the generator.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::exit;

/// `(path, contents)` of a repository file, compiled in.
macro_rules! embed {
    ($path:literal) => {
        (
            $path,
            include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/", $path)),
        )
    };
}

/// The project files a starter gets, by path relative to the project folder.
/// A unit test keeps this list equal to the repository's `jobs/`, `sql/` and
/// reference data.
const PROJECT_FILES: &[(&str, &str)] = &[
    embed!("jobs/customer_360.yaml"),
    embed!("sample_data/reference/rfm_segments.csv"),
    embed!("sql/marts/channel_engagement.sql"),
    embed!("sql/marts/customer_360.sql"),
    embed!("sql/marts/identity_map.sql"),
    embed!("sql/marts/identity_merges.sql"),
    embed!("sql/marts/order_lines.sql"),
    embed!("sql/marts/segment_summary.sql"),
    embed!("sql/staging/channel_activity.sql"),
    embed!("sql/staging/channel_activity_rows.sql"),
    embed!("sql/staging/clv_summary.sql"),
    embed!("sql/staging/customer_engagement.sql"),
    embed!("sql/staging/customer_events.sql"),
    embed!("sql/staging/customer_lines.sql"),
    embed!("sql/staging/customer_measures.sql"),
    embed!("sql/staging/customer_value.sql"),
    embed!("sql/staging/erased_customers.sql"),
    embed!("sql/staging/erased_identifiers.sql"),
    embed!("sql/staging/erasure_requests.sql"),
    embed!("sql/staging/fx_rates_current.sql"),
    embed!("sql/staging/golden_profile.sql"),
    embed!("sql/staging/identity_link_rows.sql"),
    embed!("sql/staging/identity_links.sql"),
    embed!("sql/staging/permission.sql"),
    embed!("sql/staging/profiles_current.sql"),
    embed!("sql/staging/recent_contacts.sql"),
    embed!("sql/staging/relationship_stage.sql"),
    embed!("sql/staging/rfm.sql"),
];

/// Writes a starter project into `dir` (created if missing); refuses to
/// overwrite any file that exists.
pub async fn init(dir: PathBuf) -> ExitCode {
    let raw = dir.join("sample_data/raw");
    let existing: Vec<PathBuf> = PROJECT_FILES
        .iter()
        .map(|(path, _)| dir.join(path))
        .chain(std::iter::once(raw.clone()))
        .filter(|p| p.exists())
        .collect();
    if !existing.is_empty() {
        eprintln!(
            "error: {} already exists; c360 init writes a new project and overwrites nothing (pick an empty folder)",
            existing[0].display()
        );
        return ExitCode::from(exit::INVALID);
    }
    if let Err(e) = write_files(&dir) {
        eprintln!(
            "error: writing the starter project into {}: {e}",
            dir.display()
        );
        return ExitCode::from(exit::RUN_FAILED);
    }
    // The bundled sample's generator settings (sample_data/README.md).
    let options = crate::generate::GenerateOptions {
        seed: 7,
        ..Default::default()
    };
    let store: std::sync::Arc<dyn object_store::ObjectStore> =
        match object_store::local::LocalFileSystem::new_with_prefix(&dir) {
            Ok(store) => std::sync::Arc::new(store),
            Err(e) => {
                eprintln!("error: {}: {e}", dir.display());
                return ExitCode::from(exit::RUN_FAILED);
            }
        };
    let prefix = object_store::path::Path::from("sample_data/raw");
    if let Err(e) = crate::generate::generate(&options, store, &prefix).await {
        eprintln!("error: generating sample extracts: {e}");
        return ExitCode::from(exit::RUN_FAILED);
    }
    let last_day = options.start_date + chrono::Days::new(u64::from(options.days) - 1);
    println!(
        "wrote a starter project to {dir}: jobs/customer_360.yaml, sql/, sample_data/ ({customers} synthetic customers, {days} days)\nnext:\n  cd {dir}\n  c360 validate jobs/customer_360.yaml\n  c360 run jobs/customer_360.yaml --date {last_day}\n  c360 query \"SELECT value_segment, COUNT(*) FROM customer_360 GROUP BY 1\"",
        dir = dir.display(),
        customers = options.customers,
        days = options.days,
    );
    ExitCode::from(exit::SUCCESS)
}

fn write_files(dir: &Path) -> std::io::Result<()> {
    for (path, contents) in PROJECT_FILES {
        let target = dir.join(path);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(target, contents)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_starter_holds_every_job_sql_and_reference_file_of_the_repository() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut on_disk = Vec::new();
        let mut walk = vec![root.join("jobs"), root.join("sql")];
        while let Some(dir) = walk.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    walk.push(path);
                } else {
                    on_disk.push(path.strip_prefix(root).unwrap().display().to_string());
                }
            }
        }
        on_disk.push("sample_data/reference/rfm_segments.csv".into());
        on_disk.sort();
        let embedded: Vec<String> = PROJECT_FILES.iter().map(|(p, _)| p.to_string()).collect();
        assert_eq!(embedded, on_disk);
    }
}
