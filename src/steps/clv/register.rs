//! `builtin: fit_clv` inside a job: reads the step's params, fits, and registers
//! `<step>` (customer_key, p_alive, expected_purchases, expected_margin, clv) and
//! `<step>_model` (one row: `status`, `reason`, then the fit summary's columns).
//!
//! Settings (job `params:`, decoded and checked at load: `job::ClvSettings`):
//! `clv_time_unit` (`days` | `weeks`, default `weeks`, the unit of the input's
//! recency and t), `clv_horizon_months` (default 12), `annual_discount_rate`
//! (default 0.10).
//!
//! Degenerate data (`ClvError::NotIdentified`: no repeat buyers, one customer,
//! everyone bought on one day, ...) does not fail the nightly load: the run goes
//! on with NULL predictions for every customer and `status = 'not_identified'`
//! plus the reason in the model row, and a warning in the log. A fit that goes
//! wrong (optimiser failure, a non-finite prediction) does the same with
//! `status = 'failed'`: a statistical model that did not converge one night must
//! not hold back the rest of the warehouse. Bad input rows, a wrong input schema
//! are the job's mistakes and fail the step.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, RecordBatch, StringArray, new_null_array};
use datafusion::arrow::compute::concat_batches;
use datafusion::arrow::datatypes::{Field, Schema, SchemaRef};
use datafusion::datasource::MemTable;
use datafusion::error::DataFusionError;
use datafusion::prelude::SessionContext;

use super::summary::prediction_fields;
use super::{
    BgNbdParams, ClvError, ClvModelSummary, ClvParams, GammaGammaParams, ModelFit, fit_clv,
};
use crate::job::ClvSettings;

/// `status` of a model row whose fit succeeded.
pub const FITTED: &str = "fitted";
/// `status` of a model row when the data could not identify the models.
pub const NOT_IDENTIFIED: &str = "not_identified";
/// `status` of a model row when the fit or a prediction failed numerically.
pub const FAILED: &str = "failed";

/// Runs the step over `input` and registers `name` and `name_model` on `ctx`.
pub async fn register_fit_clv(
    ctx: &SessionContext,
    name: &str,
    inputs: &[String],
    settings: &ClvSettings,
) -> Result<(), ClvError> {
    let [input] = inputs else {
        return Err(ClvError::Params(format!(
            "fit_clv reads exactly one summary table, got {}",
            inputs.len()
        )));
    };
    let params = ClvParams::new(settings);
    let query = |source: DataFusionError| ClvError::Query {
        table: input.clone(),
        source,
    };
    let (customers, model) = match fit_clv(ctx, input, &params).await {
        Ok((table, summary)) => {
            let model = model_row(FITTED, None, Some(&summary)).map_err(|e| query(e.into()))?;
            (Arc::new(table), model)
        }
        Err(
            e @ (ClvError::NotIdentified { .. }
            | ClvError::Optimizer { .. }
            | ClvError::Numerical { .. }),
        ) => {
            let status = match e {
                ClvError::NotIdentified { .. } => NOT_IDENTIFIED,
                _ => FAILED,
            };
            let reason = e.to_string();
            tracing::warn!(step = name, status, %reason, "clv predictions are NULL");
            let table = null_predictions(ctx, input).await?;
            let model = model_row(status, Some(&reason), None).map_err(|e| query(e.into()))?;
            (Arc::new(table), model)
        }
        Err(other) => return Err(other),
    };
    let model_table = MemTable::try_new(model.schema(), vec![vec![model]]).map_err(query)?;
    ctx.register_table(name, customers).map_err(query)?;
    ctx.register_table(format!("{name}_model"), Arc::new(model_table))
        .map_err(query)?;
    Ok(())
}

/// The input's customer keys with NULL in every prediction column.
async fn null_predictions(ctx: &SessionContext, input: &str) -> Result<MemTable, ClvError> {
    let query = |source: DataFusionError| ClvError::Query {
        table: input.to_string(),
        source,
    };
    let frame = ctx
        .table(input)
        .await
        .map_err(query)?
        .select_columns(&["customer_key"])
        .map_err(query)?;
    let key_schema = Arc::clone(frame.schema().inner());
    let batches = frame.collect().await.map_err(query)?;
    let keys = concat_batches(&key_schema, &batches).map_err(|e| query(e.into()))?;
    let mut fields = vec![key_schema.field(0).clone()];
    fields.extend(
        prediction_fields()
            .into_iter()
            .map(|f| f.with_nullable(true)),
    );
    let schema: SchemaRef = Arc::new(Schema::new(fields));
    let mut columns: Vec<ArrayRef> = vec![Arc::clone(keys.column(0))];
    for field in schema.fields().iter().skip(1) {
        columns.push(new_null_array(field.data_type(), keys.num_rows()));
    }
    let batch = RecordBatch::try_new(Arc::clone(&schema), columns).map_err(|e| query(e.into()))?;
    MemTable::try_new(schema, vec![vec![batch]]).map_err(query)
}

/// The one-row model table: `status`, `reason`, then the summary's columns
/// (all NULL when there is no summary). The schema is the same either way, so
/// the `clv_model` output keeps one schema across runs.
pub fn model_row(
    status: &str,
    reason: Option<&str>,
    summary: Option<&ClvModelSummary>,
) -> Result<RecordBatch, datafusion::arrow::error::ArrowError> {
    let fitted = match summary {
        Some(summary) => summary.to_record_batch()?,
        // Only the column names and types matter here.
        None => placeholder_summary().to_record_batch()?,
    };
    let mut fields = vec![
        Field::new(
            "status",
            datafusion::arrow::datatypes::DataType::Utf8,
            false,
        ),
        Field::new("reason", datafusion::arrow::datatypes::DataType::Utf8, true),
    ];
    fields.extend(
        fitted
            .schema()
            .fields()
            .iter()
            .map(|f| f.as_ref().clone().with_nullable(true)),
    );
    let mut columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from(vec![status])),
        Arc::new(StringArray::from(vec![reason])),
    ];
    for column in fitted.columns() {
        columns.push(match summary {
            Some(_) => Arc::clone(column),
            None => new_null_array(column.data_type(), 1),
        });
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)
}

/// A summary whose values are never published (see `model_row`).
fn placeholder_summary() -> ClvModelSummary {
    let fit = |params| ModelFit {
        params,
        log_likelihood: 0.0,
        customers: 0,
        iterations: 0,
        converged: false,
    };
    ClvModelSummary {
        bgnbd: fit(BgNbdParams {
            r: 0.0,
            alpha: 0.0,
            a: 0.0,
            b: 0.0,
        }),
        gamma_gamma: ModelFit {
            params: GammaGammaParams {
                p: 0.0,
                q: 0.0,
                gamma: 0.0,
            },
            log_likelihood: 0.0,
            customers: 0,
            iterations: 0,
            converged: false,
        },
        repeat_buyers: 0,
        params: ClvParams::default(),
    }
}
