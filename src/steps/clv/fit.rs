//! Maximum likelihood with argmin: Nelder-Mead on the logarithms of the
//! parameters (all BG/NBD and Gamma-Gamma parameters are positive, and on the
//! log scale one step size suits parameters of any magnitude), restarted from
//! the best point until a restart no longer improves the likelihood.
//!
//! Why restarts: a Nelder-Mead simplex can collapse before it reaches the
//! optimum on the long, curved ridges these likelihoods have (r and alpha move
//! together); a fresh simplex at the best point is the standard remedy and
//! makes the "converged" flag mean something.
//!
//! [`sum_in_parallel`] evaluates a likelihood (a sum of independent per-row terms)
//! on the machine's threads.

use argmin::core::{CostFunction, Error as ArgminError, Executor, State, TerminationReason};
use argmin::solver::neldermead::NelderMead;

use super::ClvError;

/// Iteration cap of one Nelder-Mead run.
const MAX_ITERS_PER_ROUND: u64 = 3_000;
/// At most this many restarts.
const MAX_ROUNDS: usize = 8;
/// Spread of the mean negative log-likelihood over the simplex at which a run stops.
const SD_TOLERANCE: f64 = 1e-12;
/// A restart improving the mean log-likelihood by less than this ends the fit.
const IMPROVEMENT_TOLERANCE: f64 = 1e-11;
/// A parameter beyond e^±LOG_LIMIT means the likelihood rises towards the
/// edge of the parameter space: the data do not identify the model.
const LOG_LIMIT: f64 = 23.0;
/// Above this many rows a likelihood is summed on several threads.
pub(crate) const PARALLEL_ROWS: usize = 50_000;

/// Where the maximisation ended.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct MleOutcome {
    /// The maximising parameters (natural scale).
    pub params: Vec<f64>,
    /// Total log-likelihood at `params`.
    pub log_likelihood: f64,
    /// Nelder-Mead iterations over all rounds.
    pub iterations: u64,
    /// The last round stopped on its tolerance and improved on nothing.
    pub converged: bool,
}

/// The function argmin minimises: mean negative log-likelihood over log-parameters.
struct MeanNegLogLik<'a> {
    log_likelihood: &'a (dyn Fn(&[f64]) -> f64 + Sync),
    weight: f64,
}

impl CostFunction for MeanNegLogLik<'_> {
    type Param = Vec<f64>;
    type Output = f64;

    fn cost(&self, theta: &Self::Param) -> Result<f64, ArgminError> {
        let params: Vec<f64> = theta.iter().map(|t| t.exp()).collect();
        let value = -(self.log_likelihood)(&params) / self.weight;
        // Nelder-Mead only compares costs; an invalid point is simply worst.
        Ok(if value.is_nan() { f64::INFINITY } else { value })
    }
}

/// Maximises `log_likelihood` (total over `customers`) from `start` (natural
/// scale, all positive).
pub(crate) fn maximize(
    model: &'static str,
    customers: usize,
    start: &[f64],
    log_likelihood: &(dyn Fn(&[f64]) -> f64 + Sync),
) -> Result<MleOutcome, ClvError> {
    let optimizer_error = |e: ArgminError| ClvError::Optimizer {
        model,
        message: e.to_string(),
    };
    let weight = customers.max(1) as f64;
    let cost = MeanNegLogLik {
        log_likelihood,
        weight,
    };
    let mut best: Vec<f64> = start.iter().map(|p| p.ln()).collect();
    let mut best_cost = cost.cost(&best).map_err(optimizer_error)?;
    let mut iterations = 0;
    let mut converged = false;
    for round in 0..MAX_ROUNDS {
        let step = if round == 0 { 0.5 } else { 0.05 };
        let simplex = simplex_around(&best, step);
        let solver = NelderMead::new(simplex)
            .with_sd_tolerance(SD_TOLERANCE)
            .map_err(optimizer_error)?;
        let problem = MeanNegLogLik {
            log_likelihood,
            weight,
        };
        let result = Executor::new(problem, solver)
            .configure(|state| state.max_iters(MAX_ITERS_PER_ROUND))
            .run()
            .map_err(optimizer_error)?;
        let state = result.state();
        iterations += state.get_iter();
        let stopped_on_tolerance = matches!(
            state.get_termination_reason(),
            Some(TerminationReason::SolverConverged)
        );
        let round_cost = state.get_best_cost();
        let improvement = best_cost - round_cost;
        if round_cost < best_cost
            && let Some(param) = state.get_best_param()
        {
            best = param.clone();
            best_cost = round_cost;
        }
        if round > 0 && stopped_on_tolerance && improvement < IMPROVEMENT_TOLERANCE {
            converged = true;
            break;
        }
    }
    if !best_cost.is_finite() {
        return Err(ClvError::NotIdentified {
            model,
            reason: "the log-likelihood is not finite anywhere the optimiser looked".into(),
        });
    }
    if best.iter().any(|t| t.abs() > LOG_LIMIT) {
        let shown: Vec<String> = best.iter().map(|t| format!("{:.3e}", t.exp())).collect();
        return Err(ClvError::NotIdentified {
            model,
            reason: format!(
                "the likelihood keeps rising towards a parameter of 0 or infinity ({}); \
                 the data carry too little information (too few customers or repeat purchases)",
                shown.join(", ")
            ),
        });
    }
    Ok(MleOutcome {
        params: best.iter().map(|t| t.exp()).collect(),
        log_likelihood: -best_cost * weight,
        iterations,
        converged,
    })
}

/// `sum` over `rows`, split across the machine's threads when there are more
/// than [`PARALLEL_ROWS`]: the likelihoods are sums of independent per-row terms.
/// Chunks are fixed by the thread count, so the total is the same from run to
/// run on one machine.
pub(crate) fn sum_in_parallel<T: Sync>(rows: &[T], sum: impl Fn(&[T]) -> f64 + Sync) -> f64 {
    if rows.len() < PARALLEL_ROWS {
        return sum(rows);
    }
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = rows.len().div_ceil(threads);
    let sum = &sum;
    std::thread::scope(|scope| {
        let handles: Vec<_> = rows
            .chunks(chunk)
            .map(|part| scope.spawn(move || sum(part)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or(f64::NAN))
            .sum()
    })
}

/// The start vertex plus one vertex per coordinate moved by `step`.
fn simplex_around(center: &[f64], step: f64) -> Vec<Vec<f64>> {
    let mut vertices = vec![center.to_vec()];
    for i in 0..center.len() {
        let mut vertex = center.to_vec();
        vertex[i] += step;
        vertices.push(vertex);
    }
    vertices
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_maximum_of_a_known_function() {
        // A concave function whose maximum (2, 5) is known by construction.
        let ll = |p: &[f64]| -((p[0] - 2.0).powi(2) + (p[1] / 5.0 - 1.0).powi(2));
        let out = maximize("test", 1, &[1.0, 1.0], &ll).unwrap();
        assert!((out.params[0] - 2.0).abs() < 1e-4, "{:?}", out.params);
        assert!((out.params[1] - 5.0).abs() < 1e-3, "{:?}", out.params);
        assert!(out.converged);
    }

    #[test]
    fn a_maximum_at_the_boundary_is_not_identified() {
        // Increases without bound as p -> 0.
        let ll = |p: &[f64]| -p[0];
        let err = maximize("test", 1, &[1.0], &ll).unwrap_err();
        assert!(matches!(err, ClvError::NotIdentified { .. }), "{err}");
    }
}
