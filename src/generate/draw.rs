//! Draws from the continuous distributions the behaviour model needs (gamma,
//! beta, exponential) on the generator's own seeded streams.
//!
//! Written here rather than taken from `rand_distr`: three short textbook
//! algorithms, and the committed sample must not change when a dependency
//! changes its sampling algorithm.

use rand::Rng;

/// A uniform draw in the open interval (0, 1), safe to take the logarithm of.
fn open_unit(rng: &mut impl Rng) -> f64 {
    loop {
        let u: f64 = rng.random();
        if u > 0.0 {
            return u;
        }
    }
}

/// A standard normal draw (Box–Muller; the second value is dropped so every
/// call consumes the same number of uniforms whatever came before).
fn standard_normal(rng: &mut impl Rng) -> f64 {
    let (u1, u2) = (open_unit(rng), open_unit(rng));
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// Gamma(`shape`, `scale`): mean `shape * scale`. Marsaglia & Tsang (2000), with
/// the `U^(1/shape)` boost for `shape < 1`. Both arguments must be positive.
pub fn gamma(rng: &mut impl Rng, shape: f64, scale: f64) -> f64 {
    if shape < 1.0 {
        let boost = open_unit(rng).powf(1.0 / shape);
        return gamma(rng, shape + 1.0, scale) * boost;
    }
    let d = shape - 1.0 / 3.0;
    let c = 1.0 / (9.0 * d).sqrt();
    loop {
        let x = standard_normal(rng);
        let v = (1.0 + c * x).powi(3);
        if v <= 0.0 {
            continue;
        }
        let u = open_unit(rng);
        if u.ln() < 0.5 * x * x + d - d * v + d * v.ln() {
            return d * v * scale;
        }
    }
}

/// Beta(`a`, `b`), as `X / (X + Y)` with `X ~ Gamma(a)`, `Y ~ Gamma(b)`.
pub fn beta(rng: &mut impl Rng, a: f64, b: f64) -> f64 {
    let x = gamma(rng, a, 1.0);
    let y = gamma(rng, b, 1.0);
    x / (x + y)
}

/// Exponential with `rate` (mean `1 / rate`).
pub fn exponential(rng: &mut impl Rng, rate: f64) -> f64 {
    -open_unit(rng).ln() / rate
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generate::rng::{Stream, stream_rng};

    fn moments(mut draw: impl FnMut() -> f64) -> (f64, f64) {
        let n = 200_000;
        let xs: Vec<f64> = (0..n).map(|_| draw()).collect();
        let mean = xs.iter().sum::<f64>() / n as f64;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
        (mean, var)
    }

    #[test]
    fn gamma_has_the_textbook_mean_and_variance_on_both_branches() {
        let mut rng = stream_rng(1, Stream::Behaviour, 0);
        // shape 3, scale 1.5: mean 3 * 1.5 = 4.5, variance 3 * 1.5^2 = 6.75.
        let (m, v) = moments(|| gamma(&mut rng, 3.0, 1.5));
        assert!((m - 4.5).abs() < 0.03, "mean {m}");
        assert!((v - 6.75).abs() < 0.15, "variance {v}");
        // shape 0.75 (the boosted branch), scale 2: mean 1.5, variance 0.75 * 4 = 3.
        let (m, v) = moments(|| gamma(&mut rng, 0.75, 2.0));
        assert!((m - 1.5).abs() < 0.02, "mean {m}");
        assert!((v - 3.0).abs() < 0.1, "variance {v}");
    }

    #[test]
    fn beta_has_the_textbook_mean_and_variance() {
        let mut rng = stream_rng(2, Stream::Behaviour, 0);
        // Beta(0.8, 2.5): mean 0.8 / 3.3 = 0.24242, variance
        // 0.8 * 2.5 / (3.3^2 * 4.3) = 2 / 46.827 = 0.042710.
        let (m, v) = moments(|| beta(&mut rng, 0.8, 2.5));
        assert!((m - 0.24242).abs() < 0.002, "mean {m}");
        assert!((v - 0.042710).abs() < 0.001, "variance {v}");
        assert!((0..1_000).all(|_| (0.0..=1.0).contains(&beta(&mut rng, 0.8, 2.5))));
    }

    #[test]
    fn exponential_has_mean_one_over_rate() {
        let mut rng = stream_rng(3, Stream::Behaviour, 0);
        // rate 0.25: mean 4, variance 16.
        let (m, v) = moments(|| exponential(&mut rng, 0.25));
        assert!((m - 4.0).abs() < 0.04, "mean {m}");
        assert!((v - 16.0).abs() < 0.4, "variance {v}");
    }
}
