//! Gamma-Gamma formulas against independent values (mpmath, see
//! `tests/fixtures/clv/model_reference.py`) and worked by hand.

// Reference values are kept exactly as the reference tool printed them.
#![allow(clippy::excessive_precision)]

use super::*;

const CDNOW: GammaGammaParams = GammaGammaParams {
    p: 6.2496,
    q: 3.7442,
    gamma: 15.4435,
};

fn repeat_buyer(frequency: f64, monetary_value: f64) -> Customer {
    Customer {
        frequency,
        recency: 1.0,
        t: 2.0,
        monetary_value,
    }
}

#[test]
fn log_likelihood_matches_mpmath() {
    let rows = [
        (2.0, 22.345, -3.5503550047026575),
        (1.0, 11.77, -3.7358939654148815),
        (7.0, 73.741429, -6.0581966552736842),
        (25.0, 3.5, -16.284843813539813),
    ];
    for (x, m, want) in rows {
        let got = GammaGammaData::new(&[repeat_buyer(x, m)]).log_likelihood(&CDNOW);
        assert!(
            ((got - want) / want).abs() < 1e-12,
            "x={x} m={m}: {got} vs {want}"
        );
    }
}

#[test]
fn expected_average_value_by_hand() {
    // p (γ + x m) / (p x + q - 1) = 6.2496 (15.4435 + 44.69) / (12.4992 + 2.7442) = 24.6540
    let got = CDNOW.expected_average_value(2.0, 22.345);
    let want = 6.2496 * (15.4435 + 2.0 * 22.345) / (6.2496 * 2.0 + 3.7442 - 1.0);
    assert!(
        (got - want).abs() < 1e-12 && (got - 24.6540).abs() < 1e-4,
        "{got}"
    );
    // No repeat purchase: the population mean p γ / (q - 1) = 35.1773...
    let mean = CDNOW.expected_average_value(0.0, 0.0);
    assert!((mean - 6.2496 * 15.4435 / 2.7442).abs() < 1e-12, "{mean}");
    // A loss-making repeat buyer keeps the same weighting of population and own mean:
    // 6.2496 (15.4435 + 3 * -5) / (6.2496 * 3 + 2.7442) = 2.77170 / 21.4930 = 0.128958,
    // far below the population mean, not replaced by it.
    let loss = CDNOW.expected_average_value(3.0, -5.0);
    assert!((loss - 0.128_958).abs() < 1e-5, "{loss}");
}

#[test]
fn only_repeat_buyers_with_positive_spend_are_fitted() {
    let data = GammaGammaData::new(&[
        repeat_buyer(0.0, 0.0),
        repeat_buyer(2.0, 10.0),
        repeat_buyer(1.0, -3.0),
        repeat_buyer(4.0, 7.5),
    ]);
    assert_eq!(data.customers(), 2);
}

#[test]
fn fewer_than_two_spenders_is_not_identified() {
    let err = GammaGammaData::new(&[repeat_buyer(2.0, 10.0), repeat_buyer(0.0, 0.0)])
        .fit()
        .unwrap_err();
    assert!(matches!(err, ClvError::NotIdentified { .. }), "{err}");
}
