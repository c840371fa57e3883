//! From fitted models to money: CLV = expected purchases × expected margin,
//! month by month over the horizon, each month discounted (DOMAIN.md), the
//! same construction as the `lifetimes` package's `customer_lifetime_value`.

use super::Customer;
use super::bgnbd::BgNbdParams;
use super::gamma_gamma::GammaGammaParams;
use crate::job::{ClvSettings, ClvTimeUnit};

/// Length of a mean calendar month (365.25 / 12 days) in `unit`.
fn per_month(unit: ClvTimeUnit) -> f64 {
    let days = 365.25 / 12.0;
    match unit {
        ClvTimeUnit::Days => days,
        ClvTimeUnit::Weeks => days / 7.0,
    }
}

/// What the CLV step needs besides the data.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClvParams {
    /// One month in the summary's time unit.
    pub periods_per_month: f64,
    /// Months of future purchases counted.
    pub horizon_months: u32,
    /// Yearly discount rate (0.10 = 10 %); months are discounted at the
    /// equivalent monthly rate (1 + rate)^(1/12) - 1.
    pub annual_discount_rate: f64,
}

impl ClvParams {
    /// The parameters of the job's (checked) settings.
    pub fn new(settings: &ClvSettings) -> Self {
        Self {
            periods_per_month: per_month(settings.time_unit),
            horizon_months: settings.horizon_months,
            annual_discount_rate: settings.annual_discount_rate,
        }
    }

    /// The monthly rate equivalent to the annual one.
    pub fn monthly_discount_rate(&self) -> f64 {
        (1.0 + self.annual_discount_rate).powf(1.0 / 12.0) - 1.0
    }
}

impl Default for ClvParams {
    /// Days, 12 months, 10 % a year (DOMAIN.md's defaults).
    fn default() -> Self {
        Self {
            periods_per_month: per_month(ClvTimeUnit::Days),
            horizon_months: 12,
            annual_discount_rate: 0.10,
        }
    }
}

/// The per-customer outputs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Valuation {
    /// Probability the customer is still active.
    pub p_alive: f64,
    /// Expected repeat purchases over the horizon.
    pub expected_purchases: f64,
    /// Expected value of one purchase (Gamma-Gamma).
    pub expected_margin: f64,
    /// Discounted value of the horizon's expected purchases.
    pub clv: f64,
}

/// Values one customer; the error names the customer only through the caller.
pub fn value_customer(
    bgnbd: &BgNbdParams,
    gamma_gamma: &GammaGammaParams,
    customer: &Customer,
    params: &ClvParams,
) -> Result<Valuation, String> {
    let margin = gamma_gamma.expected_average_value(customer.frequency, customer.monetary_value);
    let monthly = 1.0 + params.monthly_discount_rate();
    let mut clv = 0.0;
    let mut purchases_so_far = 0.0;
    let mut discount = 1.0;
    for month in 1..=params.horizon_months {
        let cumulative = bgnbd
            .expected_purchases(customer, f64::from(month) * params.periods_per_month)
            .map_err(|e| e.to_string())?;
        discount /= monthly;
        clv += margin * (cumulative - purchases_so_far) * discount;
        purchases_so_far = cumulative;
    }
    let valuation = Valuation {
        p_alive: bgnbd.p_alive(customer),
        expected_purchases: purchases_so_far,
        expected_margin: margin,
        clv,
    };
    let all_finite = [
        valuation.p_alive,
        valuation.expected_purchases,
        valuation.expected_margin,
        valuation.clv,
    ]
    .iter()
    .all(|v| v.is_finite());
    if all_finite {
        Ok(valuation)
    } else {
        Err(format!(
            "a prediction is not a finite number: {valuation:?}"
        ))
    }
}
