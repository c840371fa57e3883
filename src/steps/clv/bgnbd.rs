//! BG/NBD (Fader, Hardie & Lee 2005, "Counting your customers the easy way"):
//! while alive a customer buys at a Poisson rate λ ~ Gamma(r, α); after each
//! purchase they drop out with probability p ~ Beta(a, b). From (x repeat
//! purchases, recency t_x, age T) this gives the likelihood (their eq. 6),
//! P(alive) (their eq. 11) and the expected purchases in the next t (eq. 10).

use std::collections::HashMap;

use statrs::function::beta::ln_beta;
use statrs::function::gamma::ln_gamma;

use super::fit::{MleOutcome, maximize, sum_in_parallel};
use super::hyp2f1::{Hyp2f1Error, hyp2f1_with_complement};
use super::{ClvError, Customer};

/// The four BG/NBD parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BgNbdParams {
    /// Shape of the Gamma distribution of purchase rates.
    pub r: f64,
    /// Scale (in the time unit) of the Gamma distribution of purchase rates.
    pub alpha: f64,
    /// First shape of the Beta distribution of drop-out probabilities.
    pub a: f64,
    /// Second shape of the Beta distribution of drop-out probabilities.
    pub b: f64,
}

/// Within this of a = 1 the expectation's factor 1/(a-1) is a 0/0 limit; it
/// is interpolated from a = 1 ± A_NEAR_ONE instead.
const A_NEAR_ONE: f64 = 1e-6;

impl BgNbdParams {
    /// Probability that the customer has not dropped out by the end of observation.
    pub fn p_alive(&self, c: &Customer) -> f64 {
        let x = c.frequency;
        if x == 0.0 {
            // A customer who never came back cannot have dropped out yet:
            // drop-out happens only right after a purchase.
            return 1.0;
        }
        let Self { r, alpha, a, b } = *self;
        // Odds of death, in logs: large frequencies would overflow a power.
        let ln_odds =
            a.ln() - (b + x - 1.0).ln() + (r + x) * ((alpha + c.t) / (alpha + c.recency)).ln();
        1.0 / (1.0 + ln_odds.exp())
    }

    /// Expected number of repeat purchases in the next `t` (time unit), given
    /// the customer's history.
    pub fn expected_purchases(&self, c: &Customer, t: f64) -> Result<f64, Hyp2f1Error> {
        if t <= 0.0 {
            return Ok(0.0);
        }
        if (self.a - 1.0).abs() < A_NEAR_ONE {
            let below = Self {
                a: 1.0 - A_NEAR_ONE,
                ..*self
            }
            .expectation(c, t)?;
            let above = Self {
                a: 1.0 + A_NEAR_ONE,
                ..*self
            }
            .expectation(c, t)?;
            let share = (self.a - (1.0 - A_NEAR_ONE)) / (2.0 * A_NEAR_ONE);
            return Ok(below + share * (above - below));
        }
        self.expectation(c, t)
    }

    /// The paper's eq. 10 as written (a must not be 1).
    fn expectation(&self, c: &Customer, t: f64) -> Result<f64, Hyp2f1Error> {
        let Self { alpha, a, b, .. } = *self;
        let x = c.frequency;
        let total = alpha + c.t + t;
        let tail = self.tail(x, t / total, (alpha + c.t) / total)?;
        Ok((a + b + x - 1.0) / (a - 1.0) * (1.0 - tail) * self.p_alive(c))
    }

    /// ((α+T)/(α+T+t))^(r+x) 2F1(r+x, b+x; a+b+x-1; z) with z = t/(α+T+t).
    ///
    /// Evaluated through Euler's transformation as (1-z)^(a-1) 2F1(a+b-1-r,
    /// a-1; a+b+x-1; z) when both upper parameters are >= -1: its value stays
    /// near 1 for any x (the direct form grows like (1-z)^-(r+x) and overflows
    /// for large x). When r > a+b the transformed series alternates and
    /// cancels, so the direct form (all terms positive) is used.
    fn tail(&self, x: f64, z: f64, one_minus_z: f64) -> Result<f64, Hyp2f1Error> {
        let Self { r, a, b, .. } = *self;
        let c = a + b + x - 1.0;
        if a + b - 1.0 - r >= -1.0 {
            let f = hyp2f1_with_complement(a + b - 1.0 - r, a - 1.0, c, z, one_minus_z)?;
            Ok(one_minus_z.powf(a - 1.0) * f)
        } else {
            let f = hyp2f1_with_complement(r + x, b + x, c, z, one_minus_z)?;
            Ok(one_minus_z.powf(r + x) * f)
        }
    }
}

/// The fitted model: parameters plus how the fit went.
pub type BgNbdModel = super::ModelFit<BgNbdParams>;

/// Customers grouped for the likelihood: identical (x, t_x, T) rows share one
/// evaluation, terms that depend only on x are computed once per distinct x,
/// and ln(α + d) once per distinct duration d (t_x or T: whole days or weeks,
/// so a few hundred values), leaving one `exp` and one `ln_1p` per row.
pub(crate) struct BgNbdData {
    frequencies: Vec<f64>,
    /// Distinct values of t_x and T.
    durations: Vec<f64>,
    rows: Vec<Row>,
    customers: usize,
}

struct Row {
    x_index: usize,
    /// Indexes into `durations`.
    recency_index: usize,
    t_index: usize,
    t: f64,
    weight: f64,
}

impl BgNbdData {
    /// Groups `customers` (already validated).
    pub(crate) fn new(customers: &[Customer]) -> Self {
        let mut frequency_index: HashMap<u64, usize> = HashMap::new();
        let mut frequencies = Vec::new();
        let mut row_index: HashMap<(u64, u64, u64), usize> = HashMap::new();
        let mut rows: Vec<Row> = Vec::new();
        let mut duration_index: HashMap<u64, usize> = HashMap::new();
        let mut durations = Vec::new();
        let mut duration = |d: f64| {
            *duration_index.entry(d.to_bits()).or_insert_with(|| {
                durations.push(d);
                durations.len() - 1
            })
        };
        for c in customers {
            let x_index = *frequency_index
                .entry(c.frequency.to_bits())
                .or_insert_with(|| {
                    frequencies.push(c.frequency);
                    frequencies.len() - 1
                });
            // t_x does not enter the likelihood of a customer with x = 0.
            let recency = if c.frequency == 0.0 { 0.0 } else { c.recency };
            let key = (c.frequency.to_bits(), recency.to_bits(), c.t.to_bits());
            let next = rows.len();
            let index = *row_index.entry(key).or_insert(next);
            if index == next {
                rows.push(Row {
                    x_index,
                    recency_index: duration(recency),
                    t_index: duration(c.t),
                    t: c.t,
                    weight: 0.0,
                });
            }
            rows[index].weight += 1.0;
        }
        Self {
            frequencies,
            durations,
            rows,
            customers: customers.len(),
        }
    }

    /// Total log-likelihood of the data under `p` (the paper's eq. 6, in logs).
    pub(crate) fn log_likelihood(&self, p: &BgNbdParams) -> f64 {
        let BgNbdParams { r, alpha, a, b } = *p;
        let shared = r * alpha.ln() - ln_gamma(r) - ln_beta(a, b);
        // Per distinct x: the terms that do not depend on t_x or T.
        let per_x: Vec<(f64, f64)> = self
            .frequencies
            .iter()
            .map(|&x| {
                let common = ln_gamma(r + x) + ln_beta(a, b + x) + shared;
                let death = if x > 0.0 {
                    a.ln() - (b + x - 1.0).ln()
                } else {
                    f64::NEG_INFINITY
                };
                (common, death)
            })
            .collect();
        let ln_alpha_plus: Vec<f64> = self.durations.iter().map(|d| (alpha + d).ln()).collect();
        let sum_rows = |rows: &[Row]| -> f64 {
            rows.iter()
                .map(|row| {
                    let x = self.frequencies[row.x_index];
                    let (common, death) = per_x[row.x_index];
                    let alive = -(r + x) * ln_alpha_plus[row.t_index];
                    let ll = if x > 0.0 {
                        let dead = death - (r + x) * ln_alpha_plus[row.recency_index];
                        log_add_exp(alive, dead)
                    } else {
                        alive
                    };
                    row.weight * (common + ll)
                })
                .sum()
        };
        sum_in_parallel(&self.rows, sum_rows)
    }

    /// Fits the model by maximum likelihood.
    pub(crate) fn fit(&self) -> Result<BgNbdModel, ClvError> {
        const MODEL: &str = "BG/NBD";
        if self.customers == 0 {
            return Err(ClvError::NotIdentified {
                model: MODEL,
                reason: "no customers".into(),
            });
        }
        if self.frequencies.iter().all(|&x| x == 0.0) {
            return Err(ClvError::NotIdentified {
                model: MODEL,
                reason: "no customer has a repeat purchase, so nothing tells how often customers buy or drop out".into(),
            });
        }
        if self.rows.iter().all(|row| row.t == 0.0) {
            return Err(ClvError::NotIdentified {
                model: MODEL,
                reason: "every customer was first seen at the end of observation (age 0)".into(),
            });
        }
        // Start at unit shapes with α at the mean age: a purchase rate of
        // about one per mean age, whatever the time unit.
        let mean_t = self.rows.iter().map(|r| r.t * r.weight).sum::<f64>() / self.customers as f64;
        let start = [1.0, mean_t.max(1e-3), 1.0, 1.0];
        let ll = |p: &[f64]| {
            self.log_likelihood(&BgNbdParams {
                r: p[0],
                alpha: p[1],
                a: p[2],
                b: p[3],
            })
        };
        let MleOutcome {
            params,
            log_likelihood,
            iterations,
            converged,
        } = maximize(MODEL, self.customers, &start, &ll)?;
        Ok(super::ModelFit {
            params: BgNbdParams {
                r: params[0],
                alpha: params[1],
                a: params[2],
                b: params[3],
            },
            log_likelihood,
            customers: self.customers,
            iterations,
            converged,
        })
    }
}

/// ln(e^u + e^v) without overflow.
fn log_add_exp(u: f64, v: f64) -> f64 {
    let (hi, lo) = if u >= v { (u, v) } else { (v, u) };
    if lo == f64::NEG_INFINITY {
        return hi;
    }
    hi + (lo - hi).exp().ln_1p()
}

#[cfg(test)]
#[path = "bgnbd_tests.rs"]
mod tests;
