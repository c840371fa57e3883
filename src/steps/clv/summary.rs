//! What a run's CLV fit was: fitted parameters, log-likelihoods, sample sizes,
//! iterations and convergence, as a struct and as the one-row `clv_model` table.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, BooleanArray, Float64Array, Int64Array, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::arrow::error::ArrowError;

use super::bgnbd::BgNbdParams;
use super::gamma_gamma::GammaGammaParams;
use super::value::ClvParams;

/// A fitted model and how the fit went.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelFit<P> {
    /// Maximum-likelihood parameters.
    pub params: P,
    /// Log-likelihood at `params` (summed over `customers`).
    pub log_likelihood: f64,
    /// Customers the model was fitted on.
    pub customers: usize,
    /// Optimiser iterations.
    pub iterations: u64,
    /// Whether the optimiser met its tolerance (see `fit.rs`).
    pub converged: bool,
}

/// Both models of one run and the valuation settings they were used with.
#[derive(Debug, Clone, PartialEq)]
pub struct ClvModelSummary {
    /// BG/NBD over every customer.
    pub bgnbd: ModelFit<BgNbdParams>,
    /// Gamma-Gamma over repeat buyers with positive mean spend.
    pub gamma_gamma: ModelFit<GammaGammaParams>,
    /// Customers with at least one repeat purchase.
    pub repeat_buyers: usize,
    /// Horizon, discount rate and month length used for CLV.
    pub params: ClvParams,
}

impl ClvModelSummary {
    /// The summary as a one-row table for the `clv_model` output.
    pub fn to_record_batch(&self) -> Result<RecordBatch, ArrowError> {
        let ModelFit { params: bg, .. } = &self.bgnbd;
        let ModelFit { params: gg, .. } = &self.gamma_gamma;
        let count = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        let iterations = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        let columns: Vec<(&str, ArrayRef)> = vec![
            ("bgnbd_r", float(bg.r)),
            ("bgnbd_alpha", float(bg.alpha)),
            ("bgnbd_a", float(bg.a)),
            ("bgnbd_b", float(bg.b)),
            ("bgnbd_log_likelihood", float(self.bgnbd.log_likelihood)),
            ("bgnbd_customers", int(count(self.bgnbd.customers))),
            ("repeat_buyers", int(count(self.repeat_buyers))),
            ("bgnbd_iterations", int(iterations(self.bgnbd.iterations))),
            ("bgnbd_converged", boolean(self.bgnbd.converged)),
            ("gg_p", float(gg.p)),
            ("gg_q", float(gg.q)),
            ("gg_gamma", float(gg.gamma)),
            ("gg_log_likelihood", float(self.gamma_gamma.log_likelihood)),
            ("gg_customers", int(count(self.gamma_gamma.customers))),
            (
                "gg_iterations",
                int(iterations(self.gamma_gamma.iterations)),
            ),
            ("gg_converged", boolean(self.gamma_gamma.converged)),
            ("horizon_months", int(i64::from(self.params.horizon_months))),
            (
                "annual_discount_rate",
                float(self.params.annual_discount_rate),
            ),
            ("periods_per_month", float(self.params.periods_per_month)),
        ];
        let fields: Vec<Field> = columns
            .iter()
            .map(|(name, array)| Field::new(*name, array.data_type().clone(), false))
            .collect();
        let arrays = columns.into_iter().map(|(_, array)| array).collect();
        RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays)
    }
}

fn float(v: f64) -> ArrayRef {
    Arc::new(Float64Array::from(vec![v]))
}

fn int(v: i64) -> ArrayRef {
    Arc::new(Int64Array::from(vec![v]))
}

fn boolean(v: bool) -> ArrayRef {
    Arc::new(BooleanArray::from(vec![v]))
}

/// The per-customer output columns after `customer_key`.
pub(crate) fn prediction_fields() -> Vec<Field> {
    ["p_alive", "expected_purchases", "expected_margin", "clv"]
        .into_iter()
        .map(|name| Field::new(name, DataType::Float64, false))
        .collect()
}
