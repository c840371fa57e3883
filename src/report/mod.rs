//! The run report: one self-contained HTML page per job and logical date,
//! `{warehouse}/_c360/reports/<job>/<date>.html`, written by every run after its
//! run record is finished (succeeded or failed). A rerun of the date replaces it.
//!
//! ```text
//! run record (crate::runlog) ─► row accounting, rejects by reason, checks,
//!                               stage and step timings, outputs, error, params
//! published rejects          ─► examples per reason (rejects.rs): only the rows
//!                               the run published, i.e. after the erasure filter
//! committed outputs          ─► the job's `report.charts`, each a SQL query over
//!                               the snapshot of the date and the one before it
//!                               (charts.rs), drawn as SVG by plotters (draw.rs)
//!                                                 │
//!                                                 ▼
//!                               page.rs: HTML, inline CSS and SVG, no script,
//!                               no URL; every text escaped
//! ```
//! The page loads nothing (a `Content-Security-Policy` of `default-src 'none'`
//! says so to the browser). Reject text is hostile input: it is HTML-escaped, and
//! text a spreadsheet would run as a formula (`=HYPERLINK(…)`) starts with `'`.
//! Params are shown with storage secrets masked (`crate::storage::redact_secrets`).
//! `c360 report` finds a report again ([`find_report`]).

mod charts;
mod draw;

pub use charts::{PREVIOUS, columns_problem};
mod page;
mod rejects;

use chrono::NaiveDate;
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use std::sync::Arc;

use crate::erasure::ErasedIdentifiers;
use crate::job::Job;
use crate::runlog::RunRecord;
use crate::storage::StorageLocation;

/// Errors of the report layer.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error(
        "report: storage error on {path}: {}",
        crate::storage::describe(source)
    )]
    Store {
        path: String,
        source: object_store::Error,
    },
    #[error("report: {0}")]
    Outputs(#[from] crate::outputs::SinkError),
    #[error("report: cannot read rejects {path}: {message}")]
    Rejects { path: String, message: String },
    #[error("report: {0}")]
    Engine(#[from] crate::engine::EngineError),
    #[error("report: {0}")]
    Query(#[from] datafusion::error::DataFusionError),
    #[error("report: drawing chart {chart}: {message}")]
    Draw { chart: String, message: String },
}

/// What a report is written from.
pub struct ReportInput<'a> {
    pub job: &'a Job,
    /// The run's finished record.
    pub record: &'a RunRecord,
    pub warehouse: &'a StorageLocation,
    /// Each output of the job and its folder in the warehouse's store.
    pub outputs: Vec<(String, Path)>,
}

/// The folder of c360's reports under the warehouse `prefix`.
fn reports_dir(prefix: &Path) -> Path {
    prefix.clone().join("_c360").join("reports")
}

/// Where the report of `job` for `date` is: `_c360/reports/<job>/<date>.html`.
pub fn report_path(prefix: &Path, job: &str, date: NaiveDate) -> Path {
    reports_dir(prefix).join(job).join(format!("{date}.html"))
}

/// Writes the report of a finished run and returns where it is.
pub async fn write_report(input: &ReportInput<'_>) -> Result<Path, ReportError> {
    let record = input.record;
    let examples = rejects::examples(input.warehouse, record).await?;
    let charts = charts::chart_data(input).await?;
    let html = page::render(input, &examples, &charts)?;
    let path = report_path(&input.warehouse.prefix, &record.job, record.logical_date);
    input
        .warehouse
        .store
        .put(&path, PutPayload::from(html.into_bytes()))
        .await
        .map_err(|source| ReportError::Store {
            path: path.to_string(),
            source,
        })?;
    Ok(path)
}

/// Deletes the reports of `job` for dates other than `date` whose text carries
/// an erased identifier (`erasure.rewrite_history`: an earlier report shows
/// reject examples as they were published then). Returns their dates.
pub async fn forget_erased(
    store: &Arc<dyn ObjectStore>,
    prefix: &Path,
    job: &str,
    date: NaiveDate,
    identifiers: &ErasedIdentifiers,
) -> Result<Vec<NaiveDate>, ReportError> {
    let store_err = |path: &Path| {
        let path = path.to_string();
        move |source| ReportError::Store { path, source }
    };
    let dir = reports_dir(prefix).join(job);
    let found: Vec<object_store::ObjectMeta> = store
        .list(Some(&dir))
        .try_collect()
        .await
        .map_err(store_err(&dir))?;
    let mut deleted = Vec::new();
    for meta in found {
        let Some(day) = meta
            .location
            .filename()
            .and_then(|name| name.strip_suffix(".html"))
            .and_then(|day| NaiveDate::parse_from_str(day, "%Y-%m-%d").ok())
        else {
            continue;
        };
        if day == date || identifiers.is_empty() {
            continue;
        }
        let bytes = store
            .get(&meta.location)
            .await
            .map_err(store_err(&meta.location))?
            .bytes()
            .await
            .map_err(store_err(&meta.location))?;
        if identifiers.carried_by(&page::visible_text(&String::from_utf8_lossy(&bytes))) {
            store
                .delete(&meta.location)
                .await
                .map_err(store_err(&meta.location))?;
            deleted.push(day);
        }
    }
    Ok(deleted)
}

/// The report of `job` (any job when `None`) for `date`, or the one of the latest
/// logical date; `None` when there is none.
pub async fn find_report(
    warehouse: &StorageLocation,
    job: Option<&str>,
    date: Option<NaiveDate>,
) -> Result<Option<Path>, ReportError> {
    let mut dir = reports_dir(&warehouse.prefix);
    if let Some(job) = job {
        dir = dir.join(job);
    }
    let found: Vec<object_store::ObjectMeta> = warehouse
        .store
        .list(Some(&dir))
        .try_collect()
        .await
        .map_err(|source| ReportError::Store {
            path: dir.to_string(),
            source,
        })?;
    let dated = found.into_iter().filter_map(|meta| {
        let day = meta.location.filename()?.strip_suffix(".html")?;
        let day = NaiveDate::parse_from_str(day, "%Y-%m-%d").ok()?;
        date.is_none_or(|d| d == day)
            .then_some(((day, meta.last_modified), meta.location))
    });
    // The latest date; between jobs with the same date, the one written last.
    Ok(dated.max_by_key(|(key, _)| *key).map(|(_, path)| path))
}
