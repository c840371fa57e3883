//! Customer lifetime value: the BG/NBD purchase model and the Gamma-Gamma spend
//! model, fitted by maximum likelihood on every run, and the discounted CLV they
//! give (DOMAIN.md, "Value: customer lifetime value").
//!
//! Flow: `step::fit_clv` reads the one-row-per-customer summary table (purchase
//! days, recency, age, mean spend per repeat purchase day), `fit` maximises the
//! likelihoods of `bgnbd` and `gamma_gamma` (which use `hyp2f1` and statrs'
//! ln-gamma), and `value` turns the fitted models into P(alive), expected
//! purchases, expected margin and CLV per customer, plus a model summary.

pub mod bgnbd;
mod fit;
pub mod gamma_gamma;
pub mod hyp2f1;
mod register;
mod step;
mod summary;
pub mod value;

pub use bgnbd::{BgNbdModel, BgNbdParams};
pub use gamma_gamma::{GammaGammaModel, GammaGammaParams};
pub use register::{FITTED, NOT_IDENTIFIED, model_row, register_fit_clv};
pub use step::{fit_clv, fit_models};
pub use summary::{ClvModelSummary, ModelFit};
pub use value::{ClvParams, Valuation};

use datafusion::error::DataFusionError;

/// One customer as the models see it; times are in the job's time unit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Customer {
    /// Repeat purchase days (purchase days - 1).
    pub frequency: f64,
    /// Time from the first to the last purchase day.
    pub recency: f64,
    /// Age: time from the first purchase day to the end of observation.
    pub t: f64,
    /// Mean spend per repeat purchase day (ignored when `frequency` is 0).
    pub monetary_value: f64,
}

impl Customer {
    /// Checks the row against the models' assumptions; the message names the
    /// broken rule.
    pub fn validate(&self) -> Result<(), String> {
        let Customer {
            frequency,
            recency,
            t,
            monetary_value,
        } = *self;
        if !(frequency.is_finite() && recency.is_finite() && t.is_finite()) {
            return Err("frequency, recency and t must be finite numbers".into());
        }
        if frequency < 0.0 || frequency.fract() != 0.0 {
            return Err(format!(
                "frequency {frequency} must be a whole number >= 0 (purchase days - 1)"
            ));
        }
        if recency < 0.0 || t < recency {
            return Err(format!(
                "need 0 <= recency <= t, got recency {recency}, t {t}"
            ));
        }
        if frequency > 0.0 && !monetary_value.is_finite() {
            return Err("monetary_value must be a finite number for a repeat buyer".into());
        }
        Ok(())
    }
}

/// Errors of the CLV step; each says what was wrong with the data or the fit.
#[derive(Debug, thiserror::Error)]
pub enum ClvError {
    /// Reading the input table or building the output failed.
    #[error("clv: reading `{table}`: {source}")]
    Query {
        table: String,
        source: DataFusionError,
    },
    /// The input table lacks a column or has one of the wrong type.
    #[error("clv: input `{table}`: {message}")]
    Schema { table: String, message: String },
    /// A customer row breaks the models' assumptions.
    #[error("clv: input `{table}`, customer {customer}: {message}")]
    InvalidCustomer {
        table: String,
        customer: String,
        message: String,
    },
    /// Invalid step parameters (horizon, discount rate, time unit).
    #[error("clv: {0}")]
    Params(String),
    /// The customers would pass the memory pool's limit (they are counted against it).
    #[error("clv: the customers do not fit in the memory pool (raise engine.memory_limit): {0}")]
    Memory(DataFusionError),
    /// The data cannot identify the model (no customers, no repeat buyers,
    /// everyone observed for zero time, or a likelihood maximised at the edge
    /// of the parameter space).
    #[error("clv: {model} cannot be fitted: {reason}")]
    NotIdentified { model: &'static str, reason: String },
    /// The optimiser itself failed.
    #[error("clv: {model} fit failed: {message}")]
    Optimizer {
        model: &'static str,
        message: String,
    },
    /// A prediction could not be computed as a finite number.
    #[error("clv: prediction for customer {customer}: {message}")]
    Numerical { customer: String, message: String },
}
