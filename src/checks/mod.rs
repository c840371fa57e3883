//! Data checks (`checks:` in the job), run after every output is staged and
//! before anything is committed. An output's checks read its staged Parquet
//! (the run registers it under the output's name), so they test exactly the
//! rows that would be published; other tables are checked as their steps.
//!
//! A failing `error` check stops the run before the commit: nothing is
//! published and the previous snapshot stays. A failing `warn` check is logged
//! and recorded in the run log. Every outcome names the check, the table and,
//! when it fails, a sample of offending rows.

mod queries;
mod rules;
mod sorted;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use chrono::NaiveDate;
use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::datatypes::Int64Type;
use datafusion::arrow::util::display::array_value_to_string;
use datafusion::error::DataFusionError;
use datafusion::prelude::SessionContext;
use object_store::ObjectStore;
use object_store::path::Path;

use crate::job::{CheckSpec, Severity};
use crate::outputs::{self, SinkError};
use queries::{Plan, plan};
pub use queries::{SAMPLE_ROWS, ident, name as check_name};
use rules::{freshness, row_count};
use sorted::Duplicates;
pub use sorted::SortedFiles;

/// Errors of the check layer.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error("check {check} on {table} could not run: {source}")]
    Query {
        table: String,
        check: String,
        source: DataFusionError,
    },
    #[error("check {check} on {table}: {message}")]
    Invalid {
        table: String,
        check: String,
        message: String,
    },
    #[error("check: reading the previous snapshot of {output}: {source}")]
    Previous { output: String, source: SinkError },
    #[error("check: {} error-level check(s) failed, nothing was published: {}", .0.len(), describe(.0))]
    Failed(Vec<CheckOutcome>),
}

fn describe(failed: &[CheckOutcome]) -> String {
    failed
        .iter()
        .map(|o| o.summary())
        .collect::<Vec<_>>()
        .join("; ")
}

/// Pass, or a failure that fails the run (`fail`) or does not (`warn`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckStatus {
    Pass,
    Warn,
    Fail,
}

/// The result of one check, as recorded in the run log.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CheckOutcome {
    pub table: String,
    pub check: String,
    pub severity: String,
    pub status: CheckStatus,
    /// Offending rows (or keys, for `unique`); 0 when passing.
    pub failures: u64,
    pub message: String,
    /// Up to [`SAMPLE_ROWS`] offending rows as `column=value, …`.
    pub sample: Vec<String>,
    pub elapsed_ms: u64,
}

impl CheckOutcome {
    /// `unique(customer_key) on customer_360: 2 duplicated key(s) [customer_key=…]`.
    pub fn summary(&self) -> String {
        let sample = if self.sample.is_empty() {
            String::new()
        } else {
            format!(", e.g. [{}]", self.sample.join("] ["))
        };
        format!("{} on {}: {}{sample}", self.check, self.table, self.message)
    }
}

/// The previous committed snapshot of an output, for `row_count.max_change_pct`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreviousSnapshot {
    /// Partition folder name (`snapshot_date=2026-02-28`) or the output folder.
    pub partition: String,
    pub rows: u64,
}

/// What the run knows about each staged output.
#[derive(Debug, Clone)]
pub struct OutputFacts {
    /// Rows staged by this run.
    pub rows: u64,
    pub previous: Option<PreviousSnapshot>,
    /// Its staged files: a `unique` check on a prefix of their sort order
    /// counts adjacent copies instead of grouping every key.
    pub files: SortedFiles,
}

/// Everything checks need from the run.
pub struct CheckContext<'a> {
    pub ctx: &'a SessionContext,
    pub date: NaiveDate,
    pub vars: &'a BTreeMap<String, String>,
    /// Staged outputs by name.
    pub outputs: &'a BTreeMap<String, OutputFacts>,
}

/// Runs every check of every table, in table then file order.
pub async fn run_checks(
    checks: &BTreeMap<String, Vec<CheckSpec>>,
    cx: &CheckContext<'_>,
) -> Result<Vec<CheckOutcome>, CheckError> {
    let mut outcomes = Vec::new();
    for (table, specs) in checks {
        for spec in specs {
            let outcome = run_one(table, spec, cx).await?;
            match outcome.status {
                CheckStatus::Pass => {
                    tracing::info!(table = %table, check = %outcome.check, "check passed")
                }
                _ => {
                    tracing::warn!(table = %table, check = %outcome.check, failures = outcome.failures, message = %outcome.message, "check failed")
                }
            }
            outcomes.push(outcome);
        }
    }
    Ok(outcomes)
}

/// The error-level failures among `outcomes`, as the error that stops the run.
pub fn failures(outcomes: &[CheckOutcome]) -> Option<CheckError> {
    let failed: Vec<_> = outcomes
        .iter()
        .filter(|o| o.status == CheckStatus::Fail)
        .cloned()
        .collect();
    (!failed.is_empty()).then_some(CheckError::Failed(failed))
}

/// A custom check's SQL with the job's variables substituted; `None` for the
/// other kinds.
fn custom_sql(
    table: &str,
    spec: &CheckSpec,
    vars: &BTreeMap<String, String>,
) -> Result<Option<String>, CheckError> {
    let CheckSpec::Sql { sql, .. } = spec else {
        return Ok(None);
    };
    crate::job::interpolate(sql, vars)
        .map(Some)
        .map_err(|e| CheckError::Invalid {
            table: table.to_string(),
            check: check_name(spec),
            message: e.to_string(),
        })
}

/// Plans every query of check `spec` over `table` without running one, so an
/// unknown column or table is found before any data is read (`c360 validate`).
pub async fn plan_check(
    ctx: &SessionContext,
    table: &str,
    spec: &CheckSpec,
    vars: &BTreeMap<String, String>,
) -> Result<(), CheckError> {
    let custom_sql = custom_sql(table, spec, vars)?;
    let queries = match plan(spec, table, custom_sql.as_deref()) {
        Plan::Offending { count, sample, .. } => vec![count, sample],
        Plan::RowCount => vec![format!("SELECT COUNT(*) FROM {}", ident(table))],
        Plan::Freshness { newest } => vec![newest],
    };
    for query in queries {
        ctx.sql(&query).await.map_err(|source| CheckError::Query {
            table: table.to_string(),
            check: check_name(spec),
            source,
        })?;
    }
    Ok(())
}

async fn run_one(
    table: &str,
    spec: &CheckSpec,
    cx: &CheckContext<'_>,
) -> Result<CheckOutcome, CheckError> {
    let started = Instant::now();
    let check = check_name(spec);
    let query_err = |source| CheckError::Query {
        table: table.to_string(),
        check: check.clone(),
        source,
    };
    let custom_sql = custom_sql(table, spec, cx.vars)?;
    let (failures, message, sample) = match plan(spec, table, custom_sql.as_deref()) {
        Plan::Offending {
            count,
            sample,
            unit,
        } => {
            let found = match in_sort_order(table, spec, cx).await? {
                Some(found) => found,
                None => {
                    let keys = count_of(cx.ctx, &count).await.map_err(query_err)?;
                    let sample = if keys > 0 {
                        sample_of(cx.ctx, &sample).await.map_err(query_err)?
                    } else {
                        Vec::new()
                    };
                    Duplicates { keys, sample }
                }
            };
            (found.keys, format!("{} {unit}", found.keys), found.sample)
        }
        Plan::RowCount => {
            let rows = match cx.outputs.get(table) {
                Some(facts) => facts.rows,
                None => {
                    let sql = format!("SELECT COUNT(*) FROM {}", queries::ident(table));
                    count_of(cx.ctx, &sql).await.map_err(query_err)?
                }
            };
            let previous = cx.outputs.get(table).and_then(|f| f.previous.as_ref());
            row_count(spec, rows, previous)
        }
        Plan::Freshness { newest } => {
            let newest = first_text(cx.ctx, &newest).await.map_err(query_err)?;
            freshness(spec, cx.date, newest.as_deref())
        }
    };
    let severity = spec_severity(spec);
    let status = match (failures, severity) {
        (0, _) => CheckStatus::Pass,
        (_, Severity::Warn) => CheckStatus::Warn,
        (_, Severity::Error) => CheckStatus::Fail,
    };
    Ok(CheckOutcome {
        table: table.to_string(),
        check,
        severity: match severity {
            Severity::Error => "error".into(),
            Severity::Warn => "warn".into(),
        },
        status,
        failures,
        message,
        sample,
        elapsed_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
    })
}

/// A `unique` check of a staged output whose files are sorted by its columns,
/// read in that order ([`SortedFiles::duplicates`]); `None` for any other check.
async fn in_sort_order(
    table: &str,
    spec: &CheckSpec,
    cx: &CheckContext<'_>,
) -> Result<Option<Duplicates>, CheckError> {
    let (CheckSpec::Unique { columns, .. }, Some(facts)) = (spec, cx.outputs.get(table)) else {
        return Ok(None);
    };
    facts
        .files
        .duplicates(columns)
        .await
        .map_err(|message| CheckError::Invalid {
            table: table.to_string(),
            check: check_name(spec),
            message,
        })
}

fn spec_severity(spec: &CheckSpec) -> Severity {
    match spec {
        CheckSpec::Unique { severity, .. }
        | CheckSpec::NotNull { severity, .. }
        | CheckSpec::AcceptedValues { severity, .. }
        | CheckSpec::Relationships { severity, .. }
        | CheckSpec::RowCount { severity, .. }
        | CheckSpec::Freshness { severity, .. }
        | CheckSpec::Sql { severity, .. } => *severity,
    }
}

/// The newest committed snapshot of an output before `date`: the latest
/// `snapshot_date=` partition with a `_SUCCESS`, or (unpartitioned outputs) the
/// committed content of the output folder itself.
pub async fn previous_snapshot(
    store: &Arc<dyn ObjectStore>,
    output: &str,
    root: &Path,
    partitioned: bool,
    date: NaiveDate,
) -> Result<Option<PreviousSnapshot>, CheckError> {
    let previous_err = |source| CheckError::Previous {
        output: output.to_string(),
        source,
    };
    if !partitioned {
        let marker = outputs::read_marker(store, root)
            .await
            .map_err(previous_err)?;
        return Ok(marker.map(|m| PreviousSnapshot {
            partition: root.to_string(),
            rows: m.rows,
        }));
    }
    let latest = outputs::latest_committed_before(store, root, date)
        .await
        .map_err(previous_err)?;
    Ok(latest.map(|snapshot| PreviousSnapshot {
        partition: outputs::snapshot_partition(snapshot.date),
        rows: snapshot.marker.rows,
    }))
}

async fn collect(ctx: &SessionContext, sql: &str) -> Result<Vec<RecordBatch>, DataFusionError> {
    ctx.sql(sql).await?.collect().await
}

async fn count_of(ctx: &SessionContext, sql: &str) -> Result<u64, DataFusionError> {
    let batches = collect(ctx, sql).await?;
    let count = batches
        .iter()
        .find(|b| b.num_rows() > 0)
        .and_then(|b| {
            b.column(0)
                .as_primitive_opt::<Int64Type>()
                .map(|a| a.value(0))
        })
        .unwrap_or(0);
    Ok(u64::try_from(count).unwrap_or(0))
}

async fn first_text(ctx: &SessionContext, sql: &str) -> Result<Option<String>, DataFusionError> {
    let batches = collect(ctx, sql).await?;
    // Any string type (DataFusion may answer Utf8View): format the value instead.
    Ok(batches.iter().find(|b| b.num_rows() > 0).and_then(|b| {
        let column = b.column(0);
        column
            .is_valid(0)
            .then(|| array_value_to_string(column, 0).ok())
            .flatten()
    }))
}

/// Rows as `column=value, …` lines.
async fn sample_of(ctx: &SessionContext, sql: &str) -> Result<Vec<String>, DataFusionError> {
    let batches = collect(ctx, sql).await?;
    let mut lines = Vec::new();
    for batch in &batches {
        let schema = batch.schema();
        for row in 0..batch.num_rows() {
            let cells = schema
                .fields()
                .iter()
                .zip(batch.columns())
                .map(|(field, column)| {
                    let value = if column.is_null(row) {
                        "NULL".to_string()
                    } else {
                        array_value_to_string(column, row).unwrap_or_else(|e| format!("<{e}>"))
                    };
                    format!("{}={value}", field.name())
                })
                .collect::<Vec<_>>();
            lines.push(cells.join(", "));
        }
    }
    Ok(lines)
}
