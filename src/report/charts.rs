//! The data of the report's charts: each chart of the job's `report:` section
//! is a SQL query run over the committed outputs.
//!
//! Two sessions are opened. In the first, each output of the job is a table of
//! its snapshot on or before the run's date (the one the report shows: the run's
//! own when it succeeded), and `previous.<output>` the committed snapshot before
//! that. In the second, each output is that previous snapshot: a bar chart with
//! `compare: previous` runs its query there too. Only `_SUCCESS`-listed files are
//! read (`crate::outputs::register_committed`, as `c360 query` does).
//!
//! Columns are taken by position and their names title the axes: bar `(label,
//! value)`, heatmap `(x, y, value)`, histogram `(value)`. A chart whose query
//! fails is shown with its error; the other charts are still drawn.

use std::sync::Arc;

use chrono::NaiveDate;
use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Float64Type, Schema};
use datafusion::catalog::MemorySchemaProvider;
use datafusion::prelude::SessionContext;

use super::{ReportError, ReportInput};
use crate::engine::{self, EngineOptions};
use crate::job::{ChartKind, ChartSpec};

/// The schema holding the previous snapshots in the report's session.
pub const PREVIOUS: &str = "previous";
/// Bars drawn at most; a query returning more shows its first ones.
pub(super) const MAX_BARS: usize = 40;
/// Heatmap cells drawn at most.
const MAX_CELLS: usize = 900;

/// The snapshots the charts read, per output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ShownSnapshot {
    pub output: String,
    /// The snapshot's date (`None` also for an unpartitioned output).
    pub current: Option<NaiveDate>,
    /// Its rows; `None` when nothing of the output is committed.
    pub rows: Option<u64>,
    pub previous: Option<NaiveDate>,
}

/// What a chart draws.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum ChartData {
    Bars {
        /// The title of the value axis (the value column's name).
        axis: String,
        rows: Vec<(String, f64)>,
        /// The same query over the previous snapshot (`compare: previous`).
        previous: Option<Vec<(String, f64)>>,
        /// Rows the query returned beyond [`MAX_BARS`].
        left_out: usize,
    },
    Heatmap {
        axes: (String, String, String),
        cells: Vec<(String, String, f64)>,
    },
    Histogram {
        axis: String,
        values: Vec<f64>,
        bins: usize,
        upper_quantile: Option<f64>,
    },
}

/// A chart as the page shows it: its data, or why there is none.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Chart {
    pub spec: ChartSpec,
    pub data: Result<ChartData, String>,
    /// A note under the chart (no previous snapshot to compare with, rows left out).
    pub note: Option<String>,
}

/// The charts' data and the snapshots they read.
pub(super) struct Charts {
    pub charts: Vec<Chart>,
    pub snapshots: Vec<ShownSnapshot>,
}

/// Runs every chart query of the job over the committed outputs.
pub(super) async fn chart_data(input: &ReportInput<'_>) -> Result<Charts, ReportError> {
    let specs = &input.job.report.charts;
    if specs.is_empty() {
        return Ok(Charts {
            charts: Vec::new(),
            snapshots: Vec::new(),
        });
    }
    let current = session()?;
    let previous = session()?;
    current
        .catalog(&default_catalog(&current))
        .ok_or_else(|| no_catalog(&current))?
        .register_schema(PREVIOUS, Arc::new(MemorySchemaProvider::new()))?;
    let on_or_before = input
        .record
        .logical_date
        .succ_opt()
        .unwrap_or(NaiveDate::MAX);
    let wh = input.warehouse;
    let mut snapshots = Vec::new();
    for (name, dir) in &input.outputs {
        let shown =
            crate::outputs::register_committed(&current, name, wh, dir, on_or_before).await?;
        let mut before_date = None;
        if let Some(date) = shown.as_ref().and_then(|s| s.date) {
            let qualified = format!("{PREVIOUS}.{name}");
            if let Some(p) =
                crate::outputs::register_committed(&current, &qualified, wh, dir, date).await?
            {
                crate::outputs::register_committed(&previous, name, wh, dir, date).await?;
                before_date = p.date;
            }
        }
        snapshots.push(ShownSnapshot {
            output: name.clone(),
            current: shown.as_ref().and_then(|s| s.date),
            rows: shown.map(|s| s.rows),
            previous: before_date,
        });
    }
    let has_previous = snapshots.iter().any(|s| s.previous.is_some());
    let nothing = snapshots.iter().all(|s| s.rows.is_none());
    let mut charts = Vec::new();
    for spec in specs {
        let chart = match crate::job::interpolate(&spec.sql, &input.record.params) {
            _ if nothing => Chart {
                spec: spec.clone(),
                data: Err("No snapshot of the job's outputs is committed yet.".into()),
                note: None,
            },
            Err(e) => Chart {
                spec: spec.clone(),
                data: Err(e.to_string()),
                note: None,
            },
            Ok(sql) => draw_one(spec, &sql, &current, &previous, has_previous).await,
        };
        charts.push(chart);
    }
    Ok(Charts { charts, snapshots })
}

/// One chart's query (and for `compare: previous` its query over the previous
/// snapshot); a failure is the chart's, not the report's.
async fn draw_one(
    spec: &ChartSpec,
    sql: &str,
    current: &SessionContext,
    previous: &SessionContext,
    has_previous: bool,
) -> Chart {
    let chart = |data, note| Chart {
        spec: spec.clone(),
        data,
        note,
    };
    let reads_previous = crate::job::referenced_tables(sql)
        .is_ok_and(|tables| tables.iter().any(|t| t.starts_with("previous.")));
    if reads_previous && !has_previous {
        let note = "No earlier snapshot is committed: nothing to compare with yet.";
        return chart(Err(note.to_string()), None);
    }
    let batches = match run(current, sql, spec.kind).await {
        Ok(batches) => batches,
        Err(e) => return chart(Err(e), None),
    };
    let data = match spec.kind {
        ChartKind::Bar => bars(&batches),
        ChartKind::Heatmap => heatmap(&batches),
        ChartKind::Histogram => histogram(&batches, spec.bins, spec.upper_quantile),
    };
    let mut data = match data {
        Ok(data) => data,
        Err(e) => return chart(Err(e), None),
    };
    let mut note = None;
    if let ChartData::Bars {
        previous: before,
        left_out,
        ..
    } = &mut data
    {
        if spec.compare_previous && has_previous {
            match run(previous, sql, spec.kind).await.and_then(|b| bars(&b)) {
                Ok(ChartData::Bars { rows, .. }) => *before = Some(rows),
                Ok(_) => {}
                Err(e) => note = Some(format!("The previous snapshot could not be charted: {e}")),
            }
        } else if spec.compare_previous {
            note = Some("No earlier snapshot is committed: nothing to compare with yet.".into());
        }
        if *left_out > 0 {
            note = Some(format!(
                "The first {MAX_BARS} rows are drawn; {left_out} more are left out."
            ));
        }
    }
    chart(Ok(data), note)
}

/// A small session for the report's queries.
fn session() -> Result<SessionContext, ReportError> {
    let options = EngineOptions::default();
    Ok(engine::session(&options, engine::runtime(&options)?))
}

fn default_catalog(ctx: &SessionContext) -> String {
    ctx.state()
        .config()
        .options()
        .catalog
        .default_catalog
        .clone()
}

fn no_catalog(ctx: &SessionContext) -> ReportError {
    ReportError::Query(datafusion::error::DataFusionError::Plan(format!(
        "no catalog {}",
        default_catalog(ctx)
    )))
}

/// The rows of a chart's query, once its columns fit the chart ([`columns_problem`]).
async fn run(ctx: &SessionContext, sql: &str, kind: ChartKind) -> Result<Vec<RecordBatch>, String> {
    let frame = ctx.sql(sql).await.map_err(|e| e.strip_backtrace())?;
    if let Some(problem) = columns_problem(kind, frame.schema().as_arrow()) {
        return Err(problem);
    }
    frame.collect().await.map_err(|e| e.strip_backtrace())
}

/// Why a query's columns do not fit a chart of `kind`: too few of them, or a
/// value column that is not a number. Columns are taken by position: bar
/// `(label, value)`, heatmap `(x, y, value)`, histogram `(value)`.
pub fn columns_problem(kind: ChartKind, schema: &Schema) -> Option<String> {
    let (needed, shape) = match kind {
        ChartKind::Bar => (2, "(label, value)"),
        ChartKind::Heatmap => (3, "(x, y, value)"),
        ChartKind::Histogram => (1, "(value)"),
    };
    let found = schema.fields().len();
    if found < needed {
        return Some(format!(
            "the query returns {found} column(s); a {} chart reads {needed}: {shape}",
            kind.as_str()
        ));
    }
    let value = schema.field(needed - 1);
    let numeric = value.data_type().is_numeric() || value.data_type() == &DataType::Null;
    (!numeric).then(|| {
        format!(
            "column {needed} (`{}`) is the value and must be a number; it is {}",
            value.name(),
            value.data_type()
        )
    })
}

/// Column `i` of every batch as text (NULL: `(none)`), and its name.
fn texts(batches: &[RecordBatch], i: usize) -> Result<(String, Vec<String>), String> {
    let mut name = None;
    let mut out = Vec::new();
    for batch in batches {
        let column = column(batch, i)?;
        name.get_or_insert_with(|| batch.schema().field(i).name().clone());
        let text = cast(column, &DataType::Utf8).map_err(|e| e.to_string())?;
        let text = text.as_string::<i32>();
        out.extend((0..text.len()).map(|r| {
            if text.is_null(r) {
                "(none)".to_string()
            } else {
                text.value(r).to_string()
            }
        }));
    }
    Ok((name.unwrap_or_default(), out))
}

/// Column `i` of every batch as numbers (NULL: `None`), and its name.
fn numbers(batches: &[RecordBatch], i: usize) -> Result<(String, Vec<Option<f64>>), String> {
    let mut name = None;
    let mut out = Vec::new();
    for batch in batches {
        let column = column(batch, i)?;
        name.get_or_insert_with(|| batch.schema().field(i).name().clone());
        let values = cast(column, &DataType::Float64).map_err(|e| e.to_string())?;
        let values = values.as_primitive::<Float64Type>();
        out.extend(values.iter());
    }
    Ok((name.unwrap_or_default(), out))
}

fn column(batch: &RecordBatch, i: usize) -> Result<&Arc<dyn Array>, String> {
    let wanted = i + 1;
    let found = batch.num_columns();
    (i < found)
        .then(|| batch.column(i))
        .ok_or_else(|| format!("the query returns {found} column(s), this chart needs {wanted}"))
}

fn bars(batches: &[RecordBatch]) -> Result<ChartData, String> {
    let (_, labels) = texts(batches, 0)?;
    let (axis, values) = numbers(batches, 1)?;
    let mut rows: Vec<(String, f64)> = labels
        .into_iter()
        .zip(values)
        .map(|(label, value)| (label, value.unwrap_or(0.0)))
        .collect();
    let left_out = rows.len().saturating_sub(MAX_BARS);
    rows.truncate(MAX_BARS);
    Ok(ChartData::Bars {
        axis,
        rows,
        previous: None,
        left_out,
    })
}

fn heatmap(batches: &[RecordBatch]) -> Result<ChartData, String> {
    let (x_axis, xs) = texts(batches, 0)?;
    let (y_axis, ys) = texts(batches, 1)?;
    let (axis, values) = numbers(batches, 2)?;
    if xs.len() > MAX_CELLS {
        return Err(format!(
            "the query returns {} cells; a heatmap draws at most {MAX_CELLS}",
            xs.len()
        ));
    }
    let cells = xs
        .into_iter()
        .zip(ys)
        .zip(values)
        .map(|((x, y), v)| (x, y, v.unwrap_or(0.0)))
        .collect();
    Ok(ChartData::Heatmap {
        axes: (x_axis, y_axis, axis),
        cells,
    })
}

fn histogram(
    batches: &[RecordBatch],
    bins: usize,
    upper_quantile: Option<f64>,
) -> Result<ChartData, String> {
    let (axis, values) = numbers(batches, 0)?;
    Ok(ChartData::Histogram {
        axis,
        values: values
            .into_iter()
            .flatten()
            .filter(|v| v.is_finite())
            .collect(),
        bins,
        upper_quantile,
    })
}
