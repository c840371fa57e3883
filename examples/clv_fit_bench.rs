//! Times the CLV step on N synthetic customers drawn from the BG/NBD and
//! Gamma-Gamma processes with known parameters, and prints the fitted ones
//! next to the true ones.
//!
//! Run (optimised; see docs/rules.md "CLV models" for the numbers):
//! `cargo run --release --example clv_fit_bench -- 1000000 3`
//! (customers, repetitions; prints each timing and the median).

use std::sync::Arc;
use std::time::Instant;

use c360::steps::clv::{ClvParams, Customer, fit_clv, fit_models};
use datafusion::arrow::array::{Float64Array, Int64Array, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::datasource::MemTable;
use datafusion::prelude::SessionContext;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// True parameters, time in days: one purchase per 120 days on average.
const R: f64 = 0.25;
const ALPHA: f64 = 30.0;
const A: f64 = 0.8;
const B: f64 = 2.5;
const P: f64 = 6.0;
const Q: f64 = 3.7;
const GAMMA: f64 = 15.0;

/// Gamma(shape, scale 1) by Marsaglia & Tsang (2000), boosted for shape < 1.
fn gamma(rng: &mut ChaCha8Rng, shape: f64) -> f64 {
    if shape < 1.0 {
        let u: f64 = rng.random();
        return gamma(rng, shape + 1.0) * u.powf(1.0 / shape);
    }
    let d = shape - 1.0 / 3.0;
    let c = 1.0 / (9.0 * d).sqrt();
    loop {
        // Standard normal by Box-Muller.
        let (u1, u2): (f64, f64) = (rng.random(), rng.random());
        let x = (-2.0 * (1.0 - u1).ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
        let v = (1.0 + c * x).powi(3);
        if v <= 0.0 {
            continue;
        }
        let u: f64 = rng.random();
        if u.ln() < 0.5 * x * x + d - d * v + d * v.ln() {
            return d * v;
        }
    }
}

/// One customer observed for a whole number of days (1..=730) since the first
/// purchase; purchases land on whole days, so same-day purchases merge into
/// one purchase day as in the contract.
fn customer(rng: &mut ChaCha8Rng) -> Customer {
    let rate = gamma(rng, R) / ALPHA;
    let g1 = gamma(rng, A);
    let dropout = g1 / (g1 + gamma(rng, B));
    let age = f64::from(rng.random_range(1..=730_u32));
    let (mut now, mut days, mut last_day) = (0.0_f64, 0.0, 0.0);
    loop {
        let u: f64 = rng.random();
        now += -(1.0 - u).ln() / rate;
        if now > age {
            break;
        }
        if now.floor() > last_day {
            days += 1.0;
            last_day = now.floor();
        }
        if rng.random::<f64>() < dropout {
            break;
        }
    }
    // Mean of `days` purchase values, each Gamma(p, nu), nu ~ Gamma(q, gamma).
    let nu = gamma(rng, Q) / GAMMA;
    let monetary_value = if days > 0.0 {
        gamma(rng, P * days) / (nu * days)
    } else {
        0.0
    };
    Customer {
        frequency: days,
        recency: last_day,
        t: age,
        monetary_value,
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let n: usize = args.get(1).map_or(Ok(1_000_000), |s| s.parse())?;
    let reps: usize = args.get(2).map_or(Ok(3), |s| s.parse())?;
    let mut rng = ChaCha8Rng::seed_from_u64(42);
    let customers: Vec<Customer> = (0..n).map(|_| customer(&mut rng)).collect();
    let repeaters = customers.iter().filter(|c| c.frequency > 0.0).count();
    println!("customers {n}, repeat buyers {repeaters}");
    println!(
        "true   BG/NBD r {R} alpha {ALPHA} a {A} b {B}; Gamma-Gamma p {P} q {Q} gamma {GAMMA}"
    );

    let params = ClvParams::default();
    let (mut fit_times, mut step_times) = (Vec::new(), Vec::new());
    for _ in 0..reps {
        let start = Instant::now();
        let summary = fit_models(&customers, &params)?;
        fit_times.push(start.elapsed().as_secs_f64());
        let (bg, gg) = (summary.bgnbd.params, summary.gamma_gamma.params);
        println!(
            "fitted BG/NBD r {:.4} alpha {:.4} a {:.4} b {:.4} (ll {:.2}, {} iterations, converged {}); \
             Gamma-Gamma p {:.4} q {:.4} gamma {:.4} ({} iterations, converged {})",
            bg.r,
            bg.alpha,
            bg.a,
            bg.b,
            summary.bgnbd.log_likelihood,
            summary.bgnbd.iterations,
            summary.bgnbd.converged,
            gg.p,
            gg.q,
            gg.gamma,
            summary.gamma_gamma.iterations,
            summary.gamma_gamma.converged
        );
    }

    // The whole step: table in, fit, 12 monthly valuations per customer, table out.
    let schema = Arc::new(Schema::new(vec![
        Field::new("customer_key", DataType::Int64, false),
        Field::new("frequency", DataType::Float64, false),
        Field::new("recency", DataType::Float64, false),
        Field::new("t", DataType::Float64, false),
        Field::new("monetary_value", DataType::Float64, false),
    ]));
    let column =
        |f: fn(&Customer) -> f64| Arc::new(Float64Array::from_iter_values(customers.iter().map(f)));
    let batch = RecordBatch::try_new(
        Arc::clone(&schema),
        vec![
            Arc::new(Int64Array::from_iter_values(0..n as i64)),
            column(|c| c.frequency),
            column(|c| c.recency),
            column(|c| c.t),
            column(|c| c.monetary_value),
        ],
    )?;
    let ctx = SessionContext::new();
    ctx.register_table(
        "summary",
        Arc::new(MemTable::try_new(schema, vec![vec![batch]])?),
    )?;
    for _ in 0..reps {
        let start = Instant::now();
        let (_table, _summary) = fit_clv(&ctx, "summary", &params).await?;
        step_times.push(start.elapsed().as_secs_f64());
    }
    println!(
        "fit both models: {fit_times:.2?} s, median {:.2} s",
        median(fit_times.clone())
    );
    println!(
        "whole fit_clv step: {step_times:.2?} s, median {:.2} s",
        median(step_times.clone())
    );
    Ok(())
}
