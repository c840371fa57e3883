//! 2F1 against closed forms and against mpmath at 50 digits, including the
//! region near z = 1 where the plain series converges slowly.

// Reference values are kept exactly as the reference tool printed them.
#![allow(clippy::excessive_precision)]

use super::{Hyp2f1Error, hyp2f1};

fn assert_close(got: f64, want: f64, rel: f64, what: &str) {
    let err = ((got - want) / want).abs();
    assert!(
        err <= rel,
        "{what}: got {got:e}, want {want:e}, relative error {err:e}"
    );
}

#[test]
fn log_closed_form_over_the_whole_axis() {
    // 2F1(1, 1; 2; z) = -ln(1 - z) / z (Abramowitz & Stegun 15.1.3); c - a - b = 0,
    // the logarithmic case of the z -> 1 - z connection formula.
    for z in [
        1e-8_f64,
        0.1,
        0.3,
        0.5,
        0.51,
        0.75,
        0.9,
        0.99,
        0.9999,
        0.999999,
        1.0 - 1e-10,
        -1e-3,
        -0.5,
        -0.99,
        -1.0,
        -3.0,
        -50.0,
        -1e6,
    ] {
        let want = -(-z).ln_1p() / z;
        let got = hyp2f1(1.0, 1.0, 2.0, z).unwrap();
        assert_close(got, want, 1e-13, &format!("2F1(1,1;2;{z})"));
    }
}

#[test]
fn power_closed_form_when_b_equals_c() {
    // 2F1(a, b; b; z) = (1 - z)^-a. With a < 0 this is the solution that
    // vanishes at z = 1 (recessive), the hardest case for continuation: 1e-11.
    for (a, b) in [(0.5, 1.5), (2.7, 0.3), (-1.5, 4.0), (7.0, 2.0)] {
        for z in [0.2_f64, 0.5, 0.8, 0.97, 0.9999, -0.4, -8.0] {
            let want = (1.0 - z).powf(-a);
            let got = hyp2f1(a, b, b, z).unwrap();
            assert_close(got, want, 5e-11, &format!("2F1({a},{b};{b};{z})"));
        }
    }
}

#[test]
fn arcsin_closed_form() {
    // 2F1(1/2, 1/2; 3/2; x^2) = arcsin(x) / x (A&S 15.1.6).
    for x in [0.1_f64, 0.6, 0.9, 0.99, 0.99999] {
        let want = x.asin() / x;
        let got = hyp2f1(0.5, 0.5, 1.5, x * x).unwrap();
        assert_close(got, want, 1e-12, &format!("arcsin at {x}"));
    }
}

#[test]
fn polynomial_when_a_is_a_negative_integer() {
    // 2F1(-2, b; c; z) = 1 - 2bz/c + b(b+1)z^2/(c(c+1)), worked by hand.
    let (b, c, z) = (3.0, 4.5, 0.8);
    let want = 1.0 - 2.0 * b * z / c + b * (b + 1.0) * z * z / (c * (c + 1.0));
    assert_close(hyp2f1(-2.0, b, c, z).unwrap(), want, 1e-14, "polynomial");
}

/// (a, b, c, z, 2F1) from `tests/fixtures/clv/hyp2f1_reference.py` (mpmath 1.4.1,
/// 50 significant digits, printed to 17).
const MPMATH: [(f64, f64, f64, f64, f64); 20] = [
    (0.5, 1.5, 2.5, 0.3, 1.108062551056932),
    (2.0, 3.0, 4.0, 0.45, 2.387088614669211),
    (0.25, 0.5, 1.75, 0.95, 1.1213783538703202),
    (1.5, 2.5, 4.0, 0.99, 14.520358060671332),
    (1.5, 2.5, 5.0, 0.9999, 5.4177127799535068),
    (1.0, 2.0, 3.0, 0.999999, 25.631074377994163),
    (3.2, 4.7, 2.1, 0.97, 1600493078.5960369),
    (0.7, 1.3, 2.0, 0.999999999, 17.990257041595163),
    (
        2.2426,
        4.4259,
        4.2188,
        0.545796527054714,
        6.4882817285843442,
    ),
    (
        0.2426,
        2.4259,
        2.2188,
        0.9906392213880533,
        4.4780637876716643,
    ),
    (30.2426, 32.4259, 32.2188, 0.9, 2.7831374847742383e+30),
    (
        1.9762,
        -0.20709999999999995,
        7.2188,
        0.98,
        0.93348131138405035,
    ),
    (50.0, 60.0, 70.0, 0.8, 1.4673280697916743e+29),
    (120.0, 0.5, 200.0, 0.995, 1.579593749788463),
    (0.5, 1.5, 2.5, -0.7, 0.84476588186882531),
    (1.25, 2.5, 3.5, -5.0, 0.16729944905185879),
    (0.3, 0.8, 1.9, -1000.0, 0.20160699101368508),
    (0.5, 0.25, -2.5, 0.6, -0.19254449392019912),
    (-3.0, 2.0, 5.0, 0.9, 0.32268571428571428),
    (-2.5, 1.5, 3.0, 0.97, 0.26866818596911186),
];

#[test]
fn matches_mpmath_including_slow_convergence_regions() {
    for (a, b, c, z, want) in MPMATH {
        let got = hyp2f1(a, b, c, z).unwrap();
        assert_close(got, want, 1e-12, &format!("2F1({a},{b};{c};{z})"));
    }
}

#[test]
fn rejects_poles_domain_and_non_finite_arguments() {
    assert!(matches!(
        hyp2f1(1.0, 1.0, -2.0, 0.3),
        Err(Hyp2f1Error::PoleInC { .. })
    ));
    assert!(matches!(
        hyp2f1(1.0, 1.0, 0.0, 0.3),
        Err(Hyp2f1Error::PoleInC { .. })
    ));
    assert!(matches!(
        hyp2f1(1.0, 1.0, 2.0, 1.0),
        Err(Hyp2f1Error::OutsideDomain { .. })
    ));
    assert!(matches!(
        hyp2f1(f64::NAN, 1.0, 2.0, 0.5),
        Err(Hyp2f1Error::NotFinite { .. })
    ));
    assert_eq!(hyp2f1(3.0, 4.0, 5.0, 0.0), Ok(1.0));
}

#[test]
fn matches_a_random_mpmath_sweep_of_the_bgnbd_region() {
    // 400 seeded random points (see the end of hyp2f1_reference.py).
    let text = include_str!("../../../tests/fixtures/clv/hyp2f1_sweep.csv");
    // Worst relative error for z >= 0 (what BG/NBD uses) and for z < 0, where
    // values down to 1e-50 come out of cancelling terms.
    let mut worst = [(0.0, String::new()), (0.0, String::new())];
    for line in text.lines() {
        let v: Vec<f64> = line.split(',').map(|x| x.parse().unwrap()).collect();
        let got = hyp2f1(v[0], v[1], v[2], v[3]).unwrap();
        let err = ((got - v[4]) / v[4]).abs();
        let side = usize::from(v[3] < 0.0);
        if err > worst[side].0 {
            worst[side] = (err, line.to_string());
        }
    }
    let [positive, negative] = worst;
    assert!(
        positive.0 < 1e-11,
        "z >= 0: worst {:e} at {}",
        positive.0,
        positive.1
    );
    assert!(
        negative.0 < 1e-8,
        "z < 0: worst {:e} at {}",
        negative.0,
        negative.1
    );
}

#[test]
fn parameters_above_the_fixed_term_budget_converge() {
    // A BG/NBD fit near the Poisson limit (r, alpha ~ 3e4) on a 300-customer
    // sample asked for this. Reference: the series summed in 50-digit decimal
    // arithmetic (Python `decimal`, 106 terms); close to the terminating
    // 2F1(a, -1; c; z) = 1 - a z / c = 0.488807144 since b is near -1.
    let got = hyp2f1(
        29522.83120288826,
        -0.9999933369065275,
        29523.91928112368,
        0.5112116959744948,
    )
    .unwrap();
    assert_close(
        got,
        0.488_809_475_587_183_4,
        1e-12,
        "2F1 near the Poisson limit",
    );
}
