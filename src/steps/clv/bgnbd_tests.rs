//! BG/NBD formulas against independent values: the model written out in mpmath
//! at 40 digits, cross-checked with the `lifetimes` package
//! (`tests/fixtures/clv/model_reference.py` prints them).

// Reference values are kept exactly as the reference tool printed them.
#![allow(clippy::excessive_precision)]

use super::*;

const CDNOW: BgNbdParams = BgNbdParams {
    r: 0.2426,
    alpha: 4.4136,
    a: 0.7929,
    b: 2.4259,
};

fn customer(frequency: f64, recency: f64, t: f64) -> Customer {
    Customer {
        frequency,
        recency,
        t,
        monetary_value: 0.0,
    }
}

fn assert_rel(got: f64, want: f64, rel: f64, what: &str) {
    assert!(
        ((got - want) / want).abs() <= rel,
        "{what}: got {got}, want {want}"
    );
}

/// (x, t_x, T, ln L, P(alive), E[Y(39)], E[Y(52)]) at the published CDNOW parameters.
const AT_CDNOW: [(f64, f64, f64, f64, f64, f64, f64); 6] = [
    (
        2.0,
        30.43,
        38.86,
        -9.459673450115992,
        0.72661404485424712,
        1.225922657987033,
        1.5585997117548817,
    ),
    (
        0.0,
        0.0,
        38.86,
        -0.55381991128943088,
        1.0,
        0.19478676916062003,
        0.25167351515983224,
    ),
    (
        7.0,
        29.43,
        38.86,
        -21.864791884327213,
        0.64180092465815062,
        3.3372365755725261,
        4.1991179404634279,
    ),
    (
        1.0,
        1.71,
        38.86,
        -4.4704453758993016,
        0.21223426371008022,
        0.20325852552605368,
        0.25991730117954943,
    ),
    (
        40.0,
        70.0,
        75.0,
        -71.549867272551496,
        0.79231742391329475,
        13.367144110012355,
        17.063273365046741,
    ),
    (
        150.0,
        300.0,
        320.0,
        -267.43413182233409,
        0.01328069900361541,
        0.22932667354028757,
        0.30147731881869727,
    ),
];

#[test]
fn likelihood_p_alive_and_expectation_match_independent_values() {
    for (x, tx, t, ll, p_alive, e39, e52) in AT_CDNOW {
        let c = customer(x, tx, t);
        let data = BgNbdData::new(&[c]);
        assert_rel(data.log_likelihood(&CDNOW), ll, 1e-12, "ln L");
        assert_rel(CDNOW.p_alive(&c), p_alive, 1e-12, "P(alive)");
        assert_rel(
            CDNOW.expected_purchases(&c, 39.0).unwrap(),
            e39,
            1e-11,
            "E[Y(39)]",
        );
        assert_rel(
            CDNOW.expected_purchases(&c, 52.0).unwrap(),
            e52,
            1e-11,
            "E[Y(52)]",
        );
    }
}

#[test]
fn grouped_likelihood_is_the_sum_over_customers() {
    let customers: Vec<Customer> = AT_CDNOW
        .iter()
        .chain(AT_CDNOW.iter())
        .map(|&(x, tx, t, ..)| customer(x, tx, t))
        .collect();
    let want: f64 = 2.0 * AT_CDNOW.iter().map(|row| row.3).sum::<f64>();
    assert_rel(
        BgNbdData::new(&customers).log_likelihood(&CDNOW),
        want,
        1e-12,
        "sum",
    );
}

#[test]
fn expectation_in_the_harder_parameter_regions() {
    // (params, [(x, t_x, T, E[Y(365.25)])]) from model_reference.py.
    let cases = [
        // r > a + b: Euler's form would cancel, the direct form is used.
        (
            BgNbdParams {
                r: 5.0,
                alpha: 2.0,
                a: 0.5,
                b: 0.8,
            },
            [
                (3.0, 10.0, 40.0, 0.0062258934258364642),
                (0.0, 0.0, 5.0, 23.678279335844014),
                (12.0, 200.0, 210.0, 18.877703815860953),
            ],
        ),
        // a next to 1, where the expectation is a 0/0 limit.
        (
            BgNbdParams {
                r: 0.5,
                alpha: 3.0,
                a: 1.0 + 1e-7,
                b: 2.0,
            },
            [
                (3.0, 10.0, 40.0, 0.54614867138680061),
                (0.0, 0.0, 5.0, 3.9703563387329714),
                (12.0, 200.0, 210.0, 11.382280689290769),
            ],
        ),
        (
            BgNbdParams {
                r: 1.3,
                alpha: 20.0,
                a: 0.2,
                b: 80.0,
            },
            [
                (3.0, 10.0, 40.0, 24.146824565574344),
                (0.0, 0.0, 5.0, 18.334601608257968),
                (12.0, 200.0, 210.0, 20.566427123898422),
            ],
        ),
    ];
    for (params, rows) in cases {
        for (x, tx, t, want) in rows {
            let got = params
                .expected_purchases(&customer(x, tx, t), 365.25)
                .unwrap();
            assert_rel(got, want, 1e-8, &format!("{params:?} x={x}"));
        }
    }
}

#[test]
fn no_repeat_buyers_is_not_identified() {
    let data = BgNbdData::new(&[customer(0.0, 0.0, 10.0), customer(0.0, 0.0, 3.0)]);
    let err = data.fit().unwrap_err();
    assert!(
        err.to_string()
            .contains("no customer has a repeat purchase"),
        "{err}"
    );
}

#[test]
fn everyone_of_age_zero_is_not_identified() {
    // All bought on one day, the last day of observation.
    let data = BgNbdData::new(&[customer(0.0, 0.0, 0.0), customer(1.0, 0.0, 0.0)]);
    let err = data.fit().unwrap_err();
    assert!(err.to_string().contains("age 0"), "{err}");
}

#[test]
fn no_customers_is_not_identified() {
    assert!(matches!(
        BgNbdData::new(&[]).fit(),
        Err(ClvError::NotIdentified { .. })
    ));
}

#[test]
fn a_single_customer_gives_an_error_not_nan() {
    // One repeat buyer cannot pin down four parameters: the likelihood rises
    // towards the edge of the parameter space.
    match BgNbdData::new(&[customer(3.0, 20.0, 30.0)]).fit() {
        Err(ClvError::NotIdentified { .. }) => {}
        Ok(fit) => {
            let p = fit.params;
            assert!(
                [p.r, p.alpha, p.a, p.b].iter().all(|v| v.is_finite()),
                "{fit:?}"
            );
        }
        Err(other) => panic!("unexpected error {other}"),
    }
}

#[test]
fn the_likelihood_is_the_same_summed_on_one_thread_or_several() {
    // More distinct rows than PARALLEL_ROWS, so the sum is split across threads;
    // the hand-written per-customer formula (the paper's eq. 6) summed serially
    // must agree. Durations repeat (whole days), so the ln(α + d) table is used.
    let customers: Vec<Customer> = (0..120_000u32)
        .map(|i| {
            let x = f64::from(i % 7);
            let t = f64::from(30 + i % 331);
            let recency = if x == 0.0 {
                0.0
            } else {
                f64::from(i % 29).min(t)
            };
            customer(x, recency, t)
        })
        .collect();
    let params = BgNbdParams {
        r: 0.8,
        alpha: 6.5,
        a: 0.7,
        b: 2.4,
    };
    let BgNbdParams { r, alpha, a, b } = params;
    let by_hand: f64 = customers
        .iter()
        .map(|c| {
            let x = c.frequency;
            let a1 = ln_gamma(r + x) - ln_gamma(r) + r * alpha.ln();
            let a2 = ln_beta(a, b + x) - ln_beta(a, b);
            let a3 = -(r + x) * (alpha + c.t).ln();
            let a4 = if x > 0.0 {
                a.ln() - (b + x - 1.0).ln() - (r + x) * (alpha + c.recency).ln()
            } else {
                f64::NEG_INFINITY
            };
            a1 + a2 + a3.max(a4) + (a3.min(a4) - a3.max(a4)).exp().ln_1p()
        })
        .sum();
    let data = BgNbdData::new(&customers);
    assert!(
        data.rows.len() > super::super::fit::PARALLEL_ROWS,
        "{}",
        data.rows.len()
    );
    let summed = data.log_likelihood(&params);
    assert!(
        ((summed - by_hand) / by_hand).abs() < 1e-10,
        "{summed} vs {by_hand}"
    );
}
