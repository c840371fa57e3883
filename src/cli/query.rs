//! `c360 query`: SQL over a warehouse's committed outputs, without another tool.
//!
//! Each output folder of the warehouse is registered as a table of its latest
//! committed snapshot (or the latest on or before `--date`), reading only the
//! files its `_SUCCESS` lists: a run in flight or one that crashed is never
//! seen. DataFusion runs the SQL; rows stream to stdout as CSV, JSON lines or
//! Parquet, or print as a table. Without SQL, an interactive prompt (rustyline)
//! reads statements ended by `;`.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use chrono::NaiveDate;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::arrow::util::pretty::pretty_format_batches;
use datafusion::error::DataFusionError;
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::prelude::SessionContext;
use futures::StreamExt;

use super::{exit, warehouse_of};
use crate::engine::{self, EngineOptions};
use crate::outputs::{self, SinkError};
use crate::storage::StorageLocation;

/// Rows the table format prints; the other formats stream every row.
pub const TABLE_ROWS: usize = 1000;

/// How result rows are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum QueryFormat {
    /// A text table of the first rows.
    Table,
    /// CSV with a header row.
    Csv,
    /// One JSON object per line.
    Json,
    /// A Parquet file on stdout (redirect it).
    Parquet,
}

/// Errors of `c360 query`.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error("query: {0}")]
    Sql(#[from] DataFusionError),
    #[error("query: {0}")]
    Outputs(#[from] SinkError),
    #[error("query: cannot list {path}: {}", crate::storage::describe(source))]
    List {
        path: String,
        source: object_store::Error,
    },
    #[error("query: writing the result: {0}")]
    Write(String),
}

/// An output registered as a table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryTable {
    pub name: String,
    /// The snapshot read; `None` for an output without `snapshot_date=` partitions.
    pub snapshot: Option<NaiveDate>,
    pub rows: u64,
}

/// A session over the committed outputs of `warehouse` (latest snapshot, or the
/// latest on or before `date`), and the tables registered, by name.
pub async fn session(
    warehouse: &StorageLocation,
    date: Option<NaiveDate>,
) -> Result<(SessionContext, Vec<QueryTable>), QueryError> {
    let options = EngineOptions::default();
    let runtime = engine::runtime(&options).map_err(|e| QueryError::Write(e.to_string()))?;
    let ctx = engine::session(&options, runtime);
    ctx.runtime_env()
        .register_object_store(warehouse.store_url.as_ref(), warehouse.store.clone());
    let store = &warehouse.store;
    let listing = store
        .list_with_delimiter(Some(&warehouse.prefix))
        .await
        .map_err(|source| QueryError::List {
            path: warehouse.url.to_string(),
            source,
        })?;
    // Strictly before the day after `date`: on or before it.
    let before = date.and_then(|d| d.succ_opt()).unwrap_or(NaiveDate::MAX);
    let mut tables = Vec::new();
    let mut folders = listing.common_prefixes;
    folders.sort();
    for dir in folders {
        let Some(name) = dir.filename().map(String::from) else {
            continue;
        };
        // c360's own folders (`_c360`) and the rejects, partitioned otherwise.
        if name.starts_with('_') || name == "rejects" {
            continue;
        }
        if let Some(snapshot) =
            outputs::register_committed(&ctx, &name, warehouse, &dir, before).await?
        {
            tables.push(QueryTable {
                name,
                snapshot: snapshot.date,
                rows: snapshot.rows,
            });
        }
    }
    Ok((ctx, tables))
}

/// Runs `sql` and writes its rows to `out` in `format`.
pub async fn run_sql(
    ctx: &SessionContext,
    sql: &str,
    format: QueryFormat,
    out: &mut (dyn Write + Send),
) -> Result<(), QueryError> {
    let frame = ctx.sql(sql).await?;
    let write_err = |e: &dyn std::fmt::Display| QueryError::Write(e.to_string());
    if format == QueryFormat::Table {
        let batches = frame.limit(0, Some(TABLE_ROWS + 1))?.collect().await?;
        let total: usize = batches.iter().map(RecordBatch::num_rows).sum();
        let shown: Vec<RecordBatch> = keep_rows(batches, TABLE_ROWS);
        let text = pretty_format_batches(&shown).map_err(|e| write_err(&e))?;
        writeln!(out, "{text}").map_err(|e| write_err(&e))?;
        if total > TABLE_ROWS {
            writeln!(
                out,
                "(first {TABLE_ROWS} rows; --format csv, json or parquet writes them all)"
            )
            .map_err(|e| write_err(&e))?;
        }
        return Ok(());
    }
    let schema = Arc::clone(frame.schema().inner());
    let mut stream = frame.execute_stream().await?;
    match format {
        QueryFormat::Csv => {
            let mut writer = datafusion::arrow::csv::Writer::new(out);
            while let Some(batch) = stream.next().await {
                writer.write(&batch?).map_err(|e| write_err(&e))?;
            }
        }
        QueryFormat::Json => {
            let mut writer = datafusion::arrow::json::LineDelimitedWriter::new(out);
            while let Some(batch) = stream.next().await {
                writer.write(&batch?).map_err(|e| write_err(&e))?;
            }
            writer.finish().map_err(|e| write_err(&e))?;
        }
        QueryFormat::Parquet => {
            let mut writer = ArrowWriter::try_new(out, schema, None).map_err(|e| write_err(&e))?;
            while let Some(batch) = stream.next().await {
                writer.write(&batch?).map_err(|e| write_err(&e))?;
            }
            writer.close().map_err(|e| write_err(&e))?;
        }
        QueryFormat::Table => {}
    }
    Ok(())
}

/// The first `limit` rows of `batches`.
fn keep_rows(batches: Vec<RecordBatch>, limit: usize) -> Vec<RecordBatch> {
    let mut left = limit;
    let mut out = Vec::new();
    for batch in batches {
        if left == 0 {
            break;
        }
        let take = batch.num_rows().min(left);
        left -= take;
        out.push(batch.slice(0, take));
    }
    out
}

/// The tables, one line each, for the prompt's greeting and `.tables`.
pub fn describe(tables: &[QueryTable]) -> String {
    let mut text = String::new();
    for t in tables {
        let snapshot = t.snapshot.map_or_else(
            || "unpartitioned".to_string(),
            |d| format!("snapshot_date={d}"),
        );
        text.push_str(&format!(
            "  {:<24} {:>12} rows  {snapshot}\n",
            t.name, t.rows
        ));
    }
    text
}

/// The interactive prompt: statements end with `;`; `.tables` lists the
/// tables, `.quit` or Ctrl-D leaves. An error is printed and the prompt goes on.
pub async fn prompt(ctx: &SessionContext, tables: &[QueryTable]) -> Result<(), QueryError> {
    let mut editor =
        rustyline::DefaultEditor::new().map_err(|e| QueryError::Write(e.to_string()))?;
    eprintln!(
        "c360 query: {} table(s); end a statement with `;`, `.tables` lists them, `.quit` leaves.\n{}",
        tables.len(),
        describe(tables)
    );
    let mut statement = String::new();
    loop {
        let prompt = if statement.is_empty() {
            "c360> "
        } else {
            "   -> "
        };
        let line = match editor.readline(prompt) {
            Ok(line) => line,
            Err(rustyline::error::ReadlineError::Interrupted) => {
                statement.clear();
                continue;
            }
            Err(rustyline::error::ReadlineError::Eof) => return Ok(()),
            Err(e) => return Err(QueryError::Write(e.to_string())),
        };
        let trimmed = line.trim();
        if statement.is_empty() {
            match trimmed {
                "" => continue,
                ".quit" | ".exit" => return Ok(()),
                ".tables" => {
                    eprint!("{}", describe(tables));
                    continue;
                }
                _ => {}
            }
        }
        statement.push_str(&line);
        statement.push('\n');
        if trimmed.ends_with(';') {
            let _ = editor.add_history_entry(statement.trim());
            let sql = std::mem::take(&mut statement);
            let mut stdout = std::io::stdout();
            if let Err(e) = run_sql(ctx, &sql, QueryFormat::Table, &mut stdout).await {
                eprintln!("{e}");
            }
        }
    }
}

/// `c360 query`: opens the warehouse of `job` (or `warehouse`), then runs `sql`,
/// the prompt, or the SQL on stdin.
pub(super) async fn command(
    sql: Option<String>,
    job: Option<PathBuf>,
    warehouse: Option<String>,
    date: Option<NaiveDate>,
    format: QueryFormat,
) -> ExitCode {
    use std::io::{IsTerminal, Read};
    let (_, location) = match warehouse_of(job, warehouse) {
        Ok(found) => found,
        Err(code) => return code,
    };
    let (ctx, tables) = match session(&location, date).await {
        Ok(session) => session,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(exit::RUN_FAILED);
        }
    };
    let sql = match sql {
        Some(sql) => sql,
        None if std::io::stdin().is_terminal() => {
            return match prompt(&ctx, &tables).await {
                Ok(()) => ExitCode::from(exit::SUCCESS),
                Err(e) => {
                    eprintln!("{e}");
                    ExitCode::from(exit::RUN_FAILED)
                }
            };
        }
        None => {
            let mut text = String::new();
            if let Err(e) = std::io::stdin().read_to_string(&mut text) {
                eprintln!("error: reading SQL from stdin: {e}");
                return ExitCode::from(exit::INVALID);
            }
            text
        }
    };
    let mut stdout = std::io::BufWriter::new(std::io::stdout());
    let result = run_sql(&ctx, &sql, format, &mut stdout).await;
    let flushed = std::io::Write::flush(&mut stdout);
    match (result, flushed) {
        (Ok(()), Ok(())) => ExitCode::from(exit::SUCCESS),
        (Err(e), _) => {
            eprintln!("{e}");
            if tables.is_empty() {
                eprintln!("(no committed output under {})", location.url);
            }
            ExitCode::from(exit::RUN_FAILED)
        }
        (_, Err(e)) => {
            eprintln!("error: writing the result: {e}");
            ExitCode::from(exit::RUN_FAILED)
        }
    }
}
