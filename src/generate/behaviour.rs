//! How the synthetic people buy, as a pure function of (seed, person id), so
//! the CLV step has a known truth to recover. The story is the one the fitted
//! models tell:
//!
//! - **BG/NBD** (Fader, Hardie & Lee 2005): while alive, a person buys at rate
//!   λ per week, λ ~ Gamma(r, α) across people; after each repeat purchase day
//!   they drop out for good with probability p, p ~ Beta(a, b) across people
//!   (the first purchase starts the clock and is not followed by a dropout, as
//!   in the paper's likelihood).
//! - **Gamma-Gamma** (Fader, Hardie & Lee 2005, "RFM and CLV"): the spend of a
//!   purchase day is Gamma(p, ν) with the person's ν ~ Gamma(q, γ), so the
//!   person's mean spend is p / ν.
//!
//! Buying starts on the person's signup day (years back for the initial load,
//! whose earlier purchases go into the first transactions file as history) or
//! join day, with the first purchase on that day. Some people never buy
//! (prospects); a few have a dead mailbox (every email to them bounces).
//! People who dropped out still get marketing but react to it less.

use rand::Rng;

use super::draw::{beta, exponential, gamma};
use super::people::{Person, Population};
use super::rng::{Stream, stream_rng};

/// The behaviour model's parameters (time in weeks, money in the reporting currency).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct BehaviourModel {
    /// Share of people who ever buy; till-only people always do (a till record
    /// exists because of a sale).
    pub buyer_share: f64,
    /// BG/NBD purchase rate per week: Gamma shape `r`, rate `alpha`.
    pub r: f64,
    pub alpha: f64,
    /// BG/NBD dropout probability after a purchase day: Beta(`a`, `b`).
    pub a: f64,
    pub b: f64,
    /// Gamma-Gamma: spend of a purchase day Gamma(`p`, ν), ν ~ Gamma(`q`, rate `gamma`).
    pub p: f64,
    pub q: f64,
    pub gamma: f64,
    /// Share of people whose email bounces every time.
    pub dead_mailbox_share: f64,
}

/// The parameters every generation uses (mean rate r/α = 0.107 a week, about
/// 5.6 purchase days a year while alive; mean dropout a/(a+b) = 0.24; mean
/// spend per purchase day pγ/(q−1) = 80.00 EUR).
pub const MODEL: BehaviourModel = BehaviourModel {
    buyer_share: 0.8,
    r: 0.75,
    alpha: 7.0,
    a: 0.8,
    b: 2.5,
    p: 6.0,
    q: 4.0,
    gamma: 40.0,
    dead_mailbox_share: 0.03,
};

/// Purchase days per week of a heavy guest shopper ([`Person::heavy_guest`]): over
/// 50 orders within months, outside the model's Gamma draws on purpose.
pub const HEAVY_GUEST_RATE_PER_WEEK: f64 = 3.0;

/// One purchase day.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Purchase {
    /// Day index relative to the first extract day (negative: before it).
    pub day: i64,
    /// What the person spends that day, in the reporting currency (completed orders).
    pub spend: f64,
}

/// A person's behaviour over the generated period.
#[derive(Debug, Clone, PartialEq)]
pub struct Behaviour {
    pub buyer: bool,
    /// λ, purchase days per week while alive.
    pub rate_per_week: f64,
    /// p, the chance of dropping out after each purchase day.
    pub dropout: f64,
    /// ν of Gamma-Gamma; the mean spend per purchase day is `MODEL.p / spend_rate`.
    pub spend_rate: f64,
    pub dead_mailbox: bool,
    /// Purchase days before the last extract day ends, in order.
    pub purchases: Vec<Purchase>,
    /// Whether the person dropped out after their last purchase day.
    pub dropped_out: bool,
}

impl Behaviour {
    /// The behaviour of `person` (re-derivable any time: nothing is stored).
    pub fn of(pop: &Population, person: &Person) -> Self {
        let m = MODEL;
        let mut rng = stream_rng(pop.seed, Stream::Behaviour, person.id);
        let till_only = person.systems == [false, false, true];
        let buyer = rng.random::<f64>() < m.buyer_share || till_only;
        let rate_per_week = gamma(&mut rng, m.r, 1.0 / m.alpha);
        let dropout = beta(&mut rng, m.a, m.b);
        // Beta of two underflowing gammas is 0/0; treat that as "never drops out".
        let dropout = if dropout.is_finite() {
            dropout.clamp(0.0, 1.0)
        } else {
            0.0
        };
        let spend_rate = gamma(&mut rng, m.q, 1.0 / m.gamma);
        let dead_mailbox = rng.random::<f64>() < m.dead_mailbox_share;
        // A heavy guest shopper buys about three days a week and stays (the draws
        // above are still made, so nobody else's behaviour changes).
        let (buyer, rate_per_week, dropout) = if person.heavy_guest {
            (true, HEAVY_GUEST_RATE_PER_WEEK, 0.0)
        } else {
            (buyer, rate_per_week, dropout)
        };
        let mut out = Self {
            buyer,
            rate_per_week,
            dropout,
            spend_rate,
            dead_mailbox,
            purchases: Vec::new(),
            dropped_out: false,
        };
        if buyer {
            out.simulate(&mut rng, start_day(pop, person), i64::from(pop.days));
        }
        out
    }

    /// Purchase days from `start` (the first purchase) until `end` (exclusive)
    /// or the dropout. Time runs continuously; events on the same day make one
    /// purchase day, as the models count purchase days.
    fn simulate(&mut self, rng: &mut impl Rng, start: i64, end: i64) {
        let rate_per_day = self.rate_per_week / 7.0;
        let mut t = start as f64 + rng.random::<f64>();
        loop {
            let day = t.floor();
            if !day.is_finite() || day >= end as f64 {
                return;
            }
            let day = day as i64;
            if self.purchases.last().is_none_or(|p| p.day != day) {
                let spend = gamma(rng, MODEL.p, 1.0 / self.spend_rate);
                self.purchases.push(Purchase { day, spend });
                // BG/NBD's dropout follows repeat purchases only: a one-time
                // buyer is alive in the model (P(alive | x = 0) = 1).
                if self.purchases.len() > 1 && rng.random_bool(self.dropout) {
                    self.dropped_out = true;
                    return;
                }
            }
            t += exponential(rng, rate_per_day);
        }
    }

    /// Whether the person still buys on `day`: prospects and people before
    /// their dropout do; people who dropped out before `day` do not.
    pub fn alive_on(&self, day: i64) -> bool {
        !(self.dropped_out && self.purchases.last().is_some_and(|p| p.day < day))
    }

    /// The person's mean spend per purchase day (p / ν).
    pub fn mean_spend(&self) -> f64 {
        MODEL.p / self.spend_rate
    }
}

/// The day buying starts: the signup day of the initial load (days before the
/// first extract day), the join day for everyone else.
fn start_day(pop: &Population, person: &Person) -> i64 {
    if person.id < pop.initial {
        -person.signup_days_before
    } else {
        i64::from(pop.join_day(person.id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn population() -> Population {
        Population::new(11, 20_000, 60)
    }

    #[test]
    fn purchases_are_ordered_distinct_days_inside_the_period() {
        let pop = population();
        for id in 0..2_000 {
            let person = pop.person(id);
            let b = Behaviour::of(&pop, &person);
            assert_eq!(
                b,
                Behaviour::of(&pop, &person),
                "pure function of (seed, id)"
            );
            if !b.buyer {
                assert!(b.purchases.is_empty() && !b.dropped_out);
                continue;
            }
            let first = b.purchases.first().map(|p| p.day);
            assert_eq!(
                first,
                Some(start_day(&pop, &person)),
                "first purchase at start"
            );
            assert!(b.purchases.windows(2).all(|w| w[0].day < w[1].day));
            assert!(b.purchases.iter().all(|p| p.day < 60 && p.spend > 0.0));
        }
    }

    #[test]
    fn population_shares_follow_the_model() {
        let pop = population();
        let people: Vec<Behaviour> = (0..pop.customers)
            .map(|id| Behaviour::of(&pop, &pop.person(id)))
            .collect();
        let n = people.len() as f64;
        let share =
            |f: &dyn Fn(&Behaviour) -> bool| people.iter().filter(|b| f(b)).count() as f64 / n;
        // 80% buyers plus till-only people (10% of people, of whom 20% are not
        // already buyers): about 0.8 + 0.1 * 0.2 = 0.82.
        let buyers = share(&|b| b.buyer);
        assert!((buyers - 0.82).abs() < 0.02, "buyers {buyers}");
        let dead = share(&|b| b.dead_mailbox);
        assert!((dead - 0.03).abs() < 0.006, "dead mailboxes {dead}");
        // Mean λ = r / α = 0.75 / 7 = 0.1071; mean p = 0.8 / 3.3 = 0.2424;
        // mean spend per day over people = E[p/ν] = p γ / (q − 1) = 6 * 40 / 3 = 80.
        let mean = |f: &dyn Fn(&Behaviour) -> f64| people.iter().map(f).sum::<f64>() / n;
        let rate = mean(&|b| b.rate_per_week);
        assert!((rate - 0.1071).abs() < 0.004, "rate {rate}");
        let dropout = mean(&|b| b.dropout);
        assert!((dropout - 0.2424).abs() < 0.005, "dropout {dropout}");
        let spend = mean(&|b| b.mean_spend());
        assert!((spend - 80.0).abs() < 2.0, "mean spend {spend}");
        // Some buyers drop out and some keep buying: the process is not degenerate.
        let dropped = share(&|b| b.dropped_out);
        let repeat = share(&|b| b.purchases.len() > 1);
        assert!(
            dropped > 0.2 && repeat > 0.2,
            "dropped {dropped}, repeat {repeat}"
        );
    }

    #[test]
    fn a_person_who_dropped_out_is_alive_until_the_last_purchase_only() {
        let b = Behaviour {
            buyer: true,
            rate_per_week: 1.0,
            dropout: 0.5,
            spend_rate: 0.1,
            dead_mailbox: false,
            purchases: vec![
                Purchase {
                    day: -3,
                    spend: 10.0,
                },
                Purchase {
                    day: 4,
                    spend: 20.0,
                },
            ],
            dropped_out: true,
        };
        assert!(b.alive_on(4));
        assert!(!b.alive_on(5));
        let still = Behaviour {
            dropped_out: false,
            ..b.clone()
        };
        assert!(still.alive_on(50));
        // Mean spend p / ν = 6 / 0.1 = 60.
        assert!((b.mean_spend() - 60.0).abs() < 1e-9);
    }
}
