//! Erasure (DATA_CONTRACT.md, "Erasure"): who is erased by a run, and the one
//! filter that keeps their identifiers out of the published rejects.
//!
//! The job's SQL does the resolving (docs/rules.md "Erasure"), in the three steps its
//! `erasure:` section names (`job::ErasureSpec`): `requests` holds the
//! identifiers of the requests that apply to the run, `customers` the customer
//! keys they resolve to, `identifiers` every identifier of those customers plus
//! the requests' own. `identity_map` and everything joined to
//! it leave the erased customers out by construction; rejects are raw text, so the
//! run filters them here:
//!
//! ```text
//! steps succeeded ─► collect(identifiers step) ─┐
//! run failed      ─► requested(requests step)  ─┴► filter_staged(rejects) ─► commit
//! ```

pub mod history;
mod rejects;

use std::collections::BTreeMap;

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::error::DataFusionError;
use datafusion::prelude::SessionContext;

use crate::job::{ErasureSpec, StepKind, StepSpec};

pub use crate::source::ErasedIdentifiers;
pub use rejects::{FilteredRejects, filter_staged};

/// What erasure did in one run, for the run log and the summary.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ErasureRecord {
    /// Identifiers named by the requests that apply to the run.
    pub requested_identifiers: u64,
    /// Customers erased (left out of every output); `None` when the run failed
    /// before resolving them.
    pub erased_customers: Option<u64>,
    /// Extract -> reject rows left out of its published rejects.
    pub reject_rows_removed: BTreeMap<String, u64>,
    /// Earlier partitions rewritten without the erased people
    /// (`erasure.rewrite_history`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub history_partitions_rewritten: u64,
    /// Output (or `rejects/<extract>`) -> rows left out of its earlier partitions.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub history_rows_removed: BTreeMap<String, u64>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Errors of the erasure layer.
#[derive(Debug, thiserror::Error)]
pub enum ErasureError {
    #[error("erasure: table {table}: {source}")]
    Query {
        table: String,
        source: DataFusionError,
    },
    #[error("erasure: table {table}: {message}")]
    Shape { table: String, message: String },
    #[error("erasure: {0}")]
    Step(#[from] crate::steps::StepError),
    #[error(transparent)]
    Sink(#[from] crate::outputs::SinkError),
    #[error("erasure: cannot read staged rejects {path}: {message}")]
    Read { path: String, message: String },
}

/// Every erased identifier, from the `identifiers` step of a run whose steps are
/// registered.
pub async fn collect(
    ctx: &SessionContext,
    spec: &ErasureSpec,
) -> Result<ErasedIdentifiers, ErasureError> {
    read_identifiers(ctx, &spec.identifiers).await
}

/// The requests' own identifiers only, for a run that failed before its steps
/// finished: registers the `requests` step first when it is not yet registered
/// (it reads sources only, which are registered by then).
pub async fn requested(
    ctx: &SessionContext,
    spec: &ErasureSpec,
    steps: &[StepSpec],
    vars: &BTreeMap<String, String>,
) -> Result<ErasedIdentifiers, ErasureError> {
    let Some(step) = steps.iter().find(|s| s.name == spec.requests) else {
        return Ok(ErasedIdentifiers::default());
    };
    let registered =
        ctx.table_exist(spec.requests.as_str())
            .map_err(|source| ErasureError::Query {
                table: spec.requests.clone(),
                source,
            })?;
    if !registered && let StepKind::Sql { file, sql } = &step.kind {
        crate::steps::register_sql_step(ctx, &step.name, file, sql, vars).await?;
    }
    read_identifiers(ctx, &spec.requests).await
}

/// Rows of `table`, which the run has registered (0 when it has not).
pub async fn count(ctx: &SessionContext, table: &str) -> Result<Option<u64>, ErasureError> {
    let query_err = |source| ErasureError::Query {
        table: table.into(),
        source,
    };
    if !ctx.table_exist(table).map_err(query_err)? {
        return Ok(None);
    }
    let rows = ctx
        .table(table)
        .await
        .map_err(query_err)?
        .count()
        .await
        .map_err(query_err)?;
    Ok(Some(rows as u64))
}

async fn read_identifiers(
    ctx: &SessionContext,
    table: &str,
) -> Result<ErasedIdentifiers, ErasureError> {
    let query_err = |source| ErasureError::Query {
        table: table.into(),
        source,
    };
    let shape = |message: String| ErasureError::Shape {
        table: table.into(),
        message,
    };
    // Small by construction: a few identifiers per erased person.
    let batches = ctx
        .table(table)
        .await
        .map_err(query_err)?
        .collect()
        .await
        .map_err(query_err)?;
    let mut identifiers = ErasedIdentifiers::default();
    for batch in &batches {
        let text = |name: &str| {
            let column = batch
                .column_by_name(name)
                .ok_or_else(|| shape(format!("no column `{name}`")))?;
            cast(column, &DataType::Utf8).map_err(|e| shape(format!("column `{name}`: {e}")))
        };
        let (id_type, id_value) = (text("id_type")?, text("id_value")?);
        let (id_type, id_value) = (id_type.as_string::<i32>(), id_value.as_string::<i32>());
        for row in 0..batch.num_rows() {
            if id_type.is_valid(row) && id_value.is_valid(row) {
                identifiers
                    .add(id_type.value(row), id_value.value(row))
                    .map_err(shape)?;
            }
        }
    }
    Ok(identifiers)
}
