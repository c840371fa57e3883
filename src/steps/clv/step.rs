//! The `fit_clv` builtin step: reads the one-row-per-customer summary table,
//! fits both models, values every customer, and returns the per-customer table
//! plus the model summary.
//!
//! Input columns (any numeric types; extra columns are ignored):
//! `customer_key` (any type, passed through), `frequency` (repeat purchase
//! days), `recency`, `t` (age), in the job's time unit, and `monetary_value`
//! (mean spend per repeat purchase day; may be NULL when frequency is 0).

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, Float64Array, RecordBatch};
use datafusion::arrow::compute::{cast, concat_batches};
use datafusion::arrow::datatypes::{DataType, Schema};
use datafusion::arrow::util::display::array_value_to_string;
use datafusion::datasource::MemTable;
use datafusion::error::DataFusionError;
use datafusion::prelude::SessionContext;

use super::bgnbd::BgNbdData;
use super::gamma_gamma::GammaGammaData;
use super::summary::prediction_fields;
use super::value::{Valuation, value_customer};
use super::{ClvError, ClvModelSummary, ClvParams, Customer};

/// Above this many customers valuation runs on several threads.
const PARALLEL_CUSTOMERS: usize = 20_000;

/// Fits BG/NBD and Gamma-Gamma on table `input` and values each customer.
///
/// Returns a table with `customer_key`, `p_alive`, `expected_purchases`
/// (over the horizon), `expected_margin` and `clv`, in input order, and the
/// summary for the `clv_model` output. Degenerate data (no customers, no
/// repeat buyers, everyone of age 0, too few spenders) is a
/// [`ClvError::NotIdentified`], never NaN in the output.
pub async fn fit_clv(
    ctx: &SessionContext,
    input: &str,
    params: &ClvParams,
) -> Result<(MemTable, ClvModelSummary), ClvError> {
    let started = std::time::Instant::now();
    let query = |source: DataFusionError| ClvError::Query {
        table: input.to_string(),
        source,
    };
    // A fixed row order makes the likelihood sums, and so the fitted parameters,
    // bit-identical from run to run (the plan's output order is not).
    let frame = ctx
        .table(input)
        .await
        .map_err(query)?
        .sort(vec![
            datafusion::prelude::ident("customer_key").sort(true, true),
        ])
        .map_err(query)?;
    let schema = Arc::clone(frame.schema().inner());
    // The summary is one compact row per customer, held whole (twice while it is
    // concatenated) and counted against the run's memory pool.
    let memory = crate::engine::reserve(ctx, &format!("fit_clv({input})"));
    let batches = frame.collect().await.map_err(query)?;
    let held: usize = batches.iter().map(RecordBatch::get_array_memory_size).sum();
    memory.try_grow(2 * held).map_err(ClvError::Memory)?;
    let batch = concat_batches(&schema, &batches).map_err(|e| query(e.into()))?;
    drop(batches);
    let (keys, customers) = read_customers(input, &batch)?;
    let per_customer = std::mem::size_of::<Customer>() + std::mem::size_of::<Valuation>();
    memory
        .try_resize(batch.get_array_memory_size() + customers.len() * per_customer)
        .map_err(ClvError::Memory)?;
    let read_secs = started.elapsed().as_secs_f64();
    let summary = fit_models(&customers, params)?;
    let fit_secs = started.elapsed().as_secs_f64() - read_secs;
    let valuations =
        value_all(&summary, &customers, params).map_err(|(row, message)| ClvError::Numerical {
            customer: key_text(&keys, row),
            message,
        })?;

    tracing::info!(
        read_secs,
        fit_secs,
        value_secs = started.elapsed().as_secs_f64() - read_secs - fit_secs,
        "clv phases"
    );
    let key_field = schema
        .field_with_name("customer_key")
        .map_err(|e| query(e.into()))?
        .clone();
    let mut fields = vec![key_field];
    fields.extend(prediction_fields());
    let out_schema = Arc::new(Schema::new(fields));
    let column = |f: fn(&Valuation) -> f64| -> ArrayRef {
        Arc::new(Float64Array::from_iter_values(valuations.iter().map(f)))
    };
    let out = RecordBatch::try_new(
        Arc::clone(&out_schema),
        vec![
            keys,
            column(|v| v.p_alive),
            column(|v| v.expected_purchases),
            column(|v| v.expected_margin),
            column(|v| v.clv),
        ],
    )
    .map_err(|e| query(e.into()))?;
    let table = MemTable::try_new(out_schema, vec![vec![out]]).map_err(query)?;
    Ok((table, summary))
}

/// Fits both models on validated customers.
pub fn fit_models(customers: &[Customer], params: &ClvParams) -> Result<ClvModelSummary, ClvError> {
    let started = std::time::Instant::now();
    let bgnbd = BgNbdData::new(customers).fit()?;
    let bgnbd_secs = started.elapsed().as_secs_f64();
    let gamma_gamma = GammaGammaData::new(customers).fit()?;
    tracing::info!(
        bgnbd_secs,
        gg_secs = started.elapsed().as_secs_f64() - bgnbd_secs,
        customers = bgnbd.customers,
        bgnbd_log_likelihood = bgnbd.log_likelihood,
        bgnbd_converged = bgnbd.converged,
        gg_customers = gamma_gamma.customers,
        gg_converged = gamma_gamma.converged,
        "clv models fitted"
    );
    Ok(ClvModelSummary {
        bgnbd,
        gamma_gamma,
        repeat_buyers: customers.iter().filter(|c| c.frequency > 0.0).count(),
        params: *params,
    })
}

/// Values every customer; on failure, the row and the reason.
fn value_all(
    summary: &ClvModelSummary,
    customers: &[Customer],
    params: &ClvParams,
) -> Result<Vec<Valuation>, (usize, String)> {
    let (bg, gg) = (&summary.bgnbd.params, &summary.gamma_gamma.params);
    let value_chunk =
        |offset: usize, chunk: &[Customer]| -> Result<Vec<Valuation>, (usize, String)> {
            chunk
                .iter()
                .enumerate()
                .map(|(i, c)| value_customer(bg, gg, c, params).map_err(|e| (offset + i, e)))
                .collect()
        };
    if customers.len() < PARALLEL_CUSTOMERS {
        return value_chunk(0, customers);
    }
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let size = customers.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let handles: Vec<_> = customers
            .chunks(size)
            .enumerate()
            .map(|(i, chunk)| scope.spawn(move || value_chunk(i * size, chunk)))
            .collect();
        let mut all = Vec::with_capacity(customers.len());
        for handle in handles {
            let part = handle
                .join()
                .map_err(|_| (0, "a valuation thread panicked".to_string()))??;
            all.extend(part);
        }
        Ok(all)
    })
}

/// The key column and the validated customers of `batch`.
fn read_customers(table: &str, batch: &RecordBatch) -> Result<(ArrayRef, Vec<Customer>), ClvError> {
    let schema_error = |message: String| ClvError::Schema {
        table: table.to_string(),
        message,
    };
    let keys = Arc::clone(
        batch
            .column_by_name("customer_key")
            .ok_or_else(|| schema_error("missing column `customer_key`".into()))?,
    );
    let numbers = |name: &str| -> Result<Float64Array, ClvError> {
        let column = batch
            .column_by_name(name)
            .ok_or_else(|| schema_error(format!("missing column `{name}`")))?;
        if !column.data_type().is_numeric() {
            return Err(schema_error(format!(
                "column `{name}` is {}, expected a number",
                column.data_type()
            )));
        }
        let cast = cast(column, &DataType::Float64)
            .map_err(|e| schema_error(format!("column `{name}`: {e}")))?;
        cast.as_any()
            .downcast_ref::<Float64Array>()
            .cloned()
            .ok_or_else(|| schema_error(format!("column `{name}` did not cast to Float64")))
    };
    let (frequency, recency, t, monetary) = (
        numbers("frequency")?,
        numbers("recency")?,
        numbers("t")?,
        numbers("monetary_value")?,
    );
    let mut customers = Vec::with_capacity(batch.num_rows());
    for row in 0..batch.num_rows() {
        let invalid = |message: String| ClvError::InvalidCustomer {
            table: table.to_string(),
            customer: key_text(&keys, row),
            message,
        };
        if frequency.is_null(row) || recency.is_null(row) || t.is_null(row) {
            return Err(invalid("frequency, recency and t must not be NULL".into()));
        }
        let frequency = frequency.value(row);
        // A one-time buyer has no repeat spend to average: NULL means none.
        let monetary_value = if monetary.is_null(row) {
            0.0
        } else {
            monetary.value(row)
        };
        if frequency > 0.0 && monetary.is_null(row) {
            return Err(invalid("monetary_value is NULL for a repeat buyer".into()));
        }
        let customer = Customer {
            frequency,
            recency: recency.value(row),
            t: t.value(row),
            monetary_value,
        };
        customer.validate().map_err(invalid)?;
        customers.push(customer);
    }
    Ok((keys, customers))
}

/// The customer key of `row` as text, for messages.
fn key_text(keys: &ArrayRef, row: usize) -> String {
    array_value_to_string(keys.as_ref(), row).unwrap_or_else(|_| format!("at row {row}"))
}
