//! Gamma-Gamma spend model (Fader, Hardie & Lee 2005, "RFM and CLV: using
//! iso-value curves for customer base analysis"; Fader & Hardie's note "The
//! Gamma-Gamma model of monetary value"): each purchase's value is
//! Gamma(p, ν) with ν ~ Gamma(q, γ) across customers. Fitted on repeat buyers'
//! mean spend per repeat purchase day; gives the expected spend per purchase.

use std::collections::HashMap;

use statrs::function::gamma::ln_gamma;

use super::fit::{MleOutcome, maximize};
use super::{ClvError, Customer};

/// The three Gamma-Gamma parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GammaGammaParams {
    /// Shape of each purchase's value.
    pub p: f64,
    /// Shape of the Gamma distribution of the customers' rate ν.
    pub q: f64,
    /// Scale of the Gamma distribution of the customers' rate ν.
    pub gamma: f64,
}

impl GammaGammaParams {
    /// Expected value of one future purchase, given `frequency` repeat purchases
    /// with mean `monetary_value` (the note's eq. 5). Customers without repeat
    /// purchases get the population mean p γ / (q - 1); `fit` guarantees q > 1.
    /// A repeat buyer whose purchases lost money on average (a non-positive mean
    /// margin, left out of the fit, where the model is undefined) keeps the same
    /// weighting of the population and their own mean, so a loss-maker's expected
    /// margin stays low or negative instead of jumping to the population mean.
    pub fn expected_average_value(&self, frequency: f64, monetary_value: f64) -> f64 {
        let Self { p, q, gamma } = *self;
        if frequency > 0.0 {
            p * (gamma + frequency * monetary_value) / (p * frequency + q - 1.0)
        } else {
            p * gamma / (q - 1.0)
        }
    }
}

/// The fitted model: parameters plus how the fit went.
pub type GammaGammaModel = super::ModelFit<GammaGammaParams>;

/// The repeat buyers with a positive mean spend, with x-only terms shared.
pub(crate) struct GammaGammaData {
    frequencies: Vec<f64>,
    /// (index into `frequencies`, mean spend, its logarithm)
    rows: Vec<(usize, f64, f64)>,
}

impl GammaGammaData {
    /// Keeps the customers the model is defined for: frequency > 0 and mean
    /// spend > 0 (a mean <= 0, possible after returns, has zero density).
    pub(crate) fn new(customers: &[Customer]) -> Self {
        let mut index: HashMap<u64, usize> = HashMap::new();
        let mut frequencies = Vec::new();
        let mut rows = Vec::new();
        for c in customers {
            if c.frequency > 0.0 && c.monetary_value > 0.0 {
                let x_index = *index.entry(c.frequency.to_bits()).or_insert_with(|| {
                    frequencies.push(c.frequency);
                    frequencies.len() - 1
                });
                rows.push((x_index, c.monetary_value, c.monetary_value.ln()));
            }
        }
        Self { frequencies, rows }
    }

    /// Number of customers the model is fitted on.
    pub(crate) fn customers(&self) -> usize {
        self.rows.len()
    }

    /// Total log-likelihood: ln Γ(px+q) - ln Γ(px) - ln Γ(q) + q ln γ
    /// + (px-1) ln m + px ln x - (px+q) ln(γ + x m) per customer.
    pub(crate) fn log_likelihood(&self, params: &GammaGammaParams) -> f64 {
        let GammaGammaParams { p, q, gamma } = *params;
        let shared = q * gamma.ln() - ln_gamma(q);
        let per_x: Vec<f64> = self
            .frequencies
            .iter()
            .map(|&x| ln_gamma(p * x + q) - ln_gamma(p * x) + p * x * x.ln() + shared)
            .collect();
        let sum_rows = |rows: &[(usize, f64, f64)]| -> f64 {
            rows.iter()
                .map(|&(i, m, ln_m)| {
                    let px = p * self.frequencies[i];
                    per_x[i] + (px - 1.0) * ln_m - (px + q) * (gamma + self.frequencies[i] * m).ln()
                })
                .sum()
        };
        super::fit::sum_in_parallel(&self.rows, sum_rows)
    }

    /// Fits the model by maximum likelihood.
    pub(crate) fn fit(&self) -> Result<GammaGammaModel, ClvError> {
        const MODEL: &str = "Gamma-Gamma";
        if self.rows.len() < 2 {
            return Err(ClvError::NotIdentified {
                model: MODEL,
                reason: format!(
                    "{} repeat buyer(s) with a positive mean spend; the spread of spend \
                     across customers needs at least 2",
                    self.rows.len()
                ),
            });
        }
        // Start with γ at the mean spend: p γ / (q - 1) is then of the data's scale.
        let mean = self.rows.iter().map(|r| r.1).sum::<f64>() / self.rows.len() as f64;
        let start = [1.0, 2.0, mean];
        let ll = |v: &[f64]| {
            self.log_likelihood(&GammaGammaParams {
                p: v[0],
                q: v[1],
                gamma: v[2],
            })
        };
        let MleOutcome {
            params,
            log_likelihood,
            iterations,
            converged,
        } = maximize(MODEL, self.rows.len(), &start, &ll)?;
        let fitted = GammaGammaParams {
            p: params[0],
            q: params[1],
            gamma: params[2],
        };
        if fitted.q <= 1.0 {
            return Err(ClvError::NotIdentified {
                model: MODEL,
                reason: format!(
                    "fitted q = {:.4} <= 1: spend is so heavy-tailed that its mean is infinite",
                    fitted.q
                ),
            });
        }
        Ok(super::ModelFit {
            params: fitted,
            log_likelihood,
            customers: self.customers(),
            iterations,
            converged,
        })
    }
}

#[cfg(test)]
#[path = "gamma_gamma_tests.rs"]
mod tests;
