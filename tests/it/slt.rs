//! SQL tested as SQL: each `tests/slt/<step>.slt` file (sqllogictest format:
//! small input tables, the step's query, the expected rows worked out by hand)
//! runs on the session c360 runs its steps on, so the UDFs are there.
//!
//! In a statement, a line `@sql/<file>.sql` stands for that step file as a run
//! reads it: interpolated with the shipped job's params (jobs/customer_360.yaml)
//! and the logical date of the .slt file's `# date: YYYY-MM-DD` line
//! (2026-03-01 without one). So `CREATE VIEW rfm AS` followed by
//! `@sql/staging/rfm.sql` defines the step over the tables the file created before it.
//! Values print as Arrow displays them, NULL as `NULL`, an empty string as
//! `(empty)`. `SLT=name cargo test --test it slt` runs the files whose name
//! contains `name`.

use std::collections::BTreeMap;
use std::path::Path;

use async_trait::async_trait;
use c360::engine::{EngineOptions, runtime, session};
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::error::DataFusionError;
use datafusion::prelude::SessionContext;
use sqllogictest::{AsyncDB, DBOutput, DefaultColumnType};

use crate::util::repo_root;

/// Logical date of an .slt file without a `# date:` line.
const DEFAULT_DATE: &str = "2026-03-01";

/// Step files that have no .slt yet; the list only shrinks.
const NOT_YET_TESTED: &[&str] = &[];

/// A session of the shape runs use.
struct Session(SessionContext);

#[async_trait]
impl AsyncDB for Session {
    type Error = DataFusionError;
    type ColumnType = DefaultColumnType;

    async fn run(&mut self, sql: &str) -> Result<DBOutput<DefaultColumnType>, DataFusionError> {
        let frame = self.0.sql(sql).await?;
        let columns = frame.schema().fields().len();
        let batches = frame.collect().await?;
        if columns == 0 {
            return Ok(DBOutput::StatementComplete(0));
        }
        let options = FormatOptions::default().with_null("NULL");
        let mut rows = Vec::new();
        for batch in &batches {
            let formatters = batch
                .columns()
                .iter()
                .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
                .collect::<Result<Vec<_>, _>>()?;
            for row in 0..batch.num_rows() {
                rows.push(
                    formatters
                        .iter()
                        .map(|f| match f.value(row).to_string() {
                            s if s.is_empty() => "(empty)".to_string(),
                            s => s,
                        })
                        .collect(),
                );
            }
        }
        Ok(DBOutput::Rows {
            types: vec![DefaultColumnType::Any; columns],
            rows,
        })
    }

    async fn shutdown(&mut self) {}
}

/// The .slt text with each `@sql/<file>.sql` line replaced by the step file,
/// interpolated (blank lines dropped: a blank line ends an .slt record).
fn expand(script: &str, params: &BTreeMap<String, String>) -> String {
    let date = script
        .lines()
        .find_map(|l| l.strip_prefix("# date:"))
        .map_or(DEFAULT_DATE, str::trim);
    let mut vars = params.clone();
    vars.insert("date".into(), date.to_string());
    let mut out = String::new();
    for line in script.lines() {
        match line.strip_prefix('@') {
            Some(file) => {
                let template = std::fs::read_to_string(repo_root().join(file.trim()))
                    .unwrap_or_else(|e| panic!("{file}: {e}"));
                let sql = c360::job::interpolate(&template, &vars)
                    .unwrap_or_else(|e| panic!("{file}: {e}"));
                for sql_line in sql.lines().filter(|l| !l.trim().is_empty()) {
                    out.push_str(sql_line);
                    out.push('\n');
                }
            }
            None => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    out
}

fn stems(dir: &Path, extension: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| {
            let path = e.unwrap().path();
            (path.extension()? == extension)
                .then(|| path.file_stem()?.to_str().map(String::from))?
        })
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn every_slt_file_passes() {
    let job = c360::job::load(&repo_root().join("jobs/customer_360.yaml")).unwrap();
    let dir = repo_root().join("tests/slt");
    let mut failures = Vec::new();
    let only = std::env::var("SLT").unwrap_or_default();
    for name in stems(&dir, "slt").into_iter().filter(|n| n.contains(&only)) {
        let script = std::fs::read_to_string(dir.join(format!("{name}.slt"))).unwrap();
        let script = expand(&script, &job.params);
        let mut runner = sqllogictest::Runner::new(|| async {
            let options = EngineOptions::default();
            Ok(Session(session(&options, runtime(&options).unwrap())))
        });
        if let Err(e) = runner.run_script_async(&script).await {
            failures.push(format!("tests/slt/{name}.slt: {e}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn every_step_file_has_an_slt_file() {
    let root = repo_root();
    let tested = stems(&root.join("tests/slt"), "slt");
    let mut files = stems(&root.join("sql/staging"), "sql");
    files.extend(stems(&root.join("sql/marts"), "sql"));
    let untested: Vec<String> = files.into_iter().filter(|s| !tested.contains(s)).collect();
    assert_eq!(
        untested, NOT_YET_TESTED,
        "sql/ files without tests/slt/<name>.slt (a new step file needs one; a new .slt leaves NOT_YET_TESTED)"
    );
}

/// `sql/marts/` holds the SQL files of the steps the bundled job publishes,
/// `sql/staging/` every other step file: a reader sees which is which.
#[test]
fn marts_are_exactly_the_published_steps() {
    let job = c360::job::load(&repo_root().join("jobs/customer_360.yaml")).unwrap();
    let outputs: Vec<&str> = job.outputs.iter().map(|o| o.name.as_str()).collect();
    for step in &job.steps {
        let c360::job::StepKind::Sql { file, .. } = &step.kind else {
            continue;
        };
        let folder = if outputs.contains(&step.name.as_str()) {
            "marts"
        } else {
            "staging"
        };
        let expected = format!("sql/{folder}/{}.sql", step.name);
        assert!(file.ends_with(&expected), "step {}: {file:?}", step.name);
    }
}
