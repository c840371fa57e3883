//! The transactions extract: the purchase days of the behaviour model
//! (`behaviour.rs`) as orders of 1–4 lines in the buyer's currency, with the
//! initial load's history in the first file; guest checkouts (some with an
//! email that is no identifier: unattributed), cancelled orders, late orders
//! landing in a later `dt=`, returns of earlier lines, identical re-sends of
//! earlier lines, and malformed rows.

use std::collections::{BTreeMap, VecDeque};

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::GenerateError;
use super::behaviour::Behaviour;
use super::mess::{RejectInjector, corrupt_transaction};
use super::people::{Country, Person, SYSTEMS};
use super::profiles::messy_email;
use super::rng::{Stream, mix, stream_rng};
use super::stamp::{money, timestamp};
use super::truth::Ledger;
use super::writer::DayFileWriter;
use super::{Day, rate_to_reporting};

/// Extract name.
pub const EXTRACT: &str = "transactions";

/// Contract header.
pub const HEADER: [&str; 15] = [
    "transaction_id",
    "line_no",
    "source_system",
    "source_customer_id",
    "email",
    "order_ts",
    "channel",
    "product_id",
    "category",
    "quantity",
    "unit_price",
    "discount",
    "unit_cost",
    "currency",
    "status",
];

/// Column positions in [`HEADER`].
pub mod col {
    pub const TRANSACTION_ID: usize = 0;
    pub const SOURCE_CUSTOMER_ID: usize = 3;
    pub const EMAIL: usize = 4;
    pub const ORDER_TS: usize = 5;
    pub const CHANNEL: usize = 6;
    pub const QUANTITY: usize = 9;
    pub const UNIT_PRICE: usize = 10;
    pub const DISCOUNT: usize = 11;
    pub const UNIT_COST: usize = 12;
    pub const CURRENCY: usize = 13;
    pub const STATUS: usize = 14;
}

const CATEGORIES: [&str; 8] = [
    "apparel",
    "shoes",
    "beauty",
    "home",
    "electronics",
    "books",
    "toys",
    "garden",
];

/// Recent completed lines that later days return or re-send; bounded.
const RECENT_CAP: usize = 20_000;

/// Recent buyers that the communications extract draws reviews and referrals from.
const BUYERS_CAP: usize = 2_000;

/// History older than this many days is not returned in the extract period.
const RETURN_WINDOW_DAYS: i64 = 30;

/// A purchase day waiting for the extract day it is written on.
#[derive(Debug, Clone, Copy)]
struct Due {
    person: u64,
    /// Day index of the purchase (its `order_ts`).
    day: u32,
    spend: f64,
}

/// State carried from day to day: purchases due on later days, recently sold
/// lines and recent buyers. Bounded by the people alive in the period, not by
/// the rows written.
#[derive(Debug, Default)]
pub struct TransactionState {
    recent: VecDeque<(Country, Vec<String>)>,
    malformed: u64,
    due: BTreeMap<u32, Vec<Due>>,
    buyers: VecDeque<u64>,
}

impl TransactionState {
    /// People who bought lately, oldest first.
    pub fn recent_buyers(&self) -> &VecDeque<u64> {
        &self.buyers
    }

    /// Queues the purchase days of `person` on or after day `from`.
    fn schedule(&mut self, person: u64, behaviour: &Behaviour, from: u32) {
        for p in &behaviour.purchases {
            if let Ok(day) = u32::try_from(p.day)
                && day >= from
            {
                self.due.entry(day).or_default().push(Due {
                    person,
                    day,
                    spend: p.spend,
                });
            }
        }
    }
}

/// Share of purchases whose file lands one or two days late.
const LATE_SHARE: f64 = 0.03;

/// An extract day with a header-only file: the people who join still get their
/// purchases queued, and that day's purchases arrive late, in the next file.
pub fn skip_day(day: &Day<'_>, state: &mut TransactionState) {
    for id in day.joined_before..day.joined_by {
        let person = day.pop.person(id);
        state.schedule(id, &Behaviour::of(day.pop, &person), day.index);
    }
    if let Some(due) = state.due.remove(&day.index) {
        state.due.entry(day.index + 1).or_default().extend(due);
    }
}

/// Writes the transactions rows of one day: the day's purchases (on day 0 also
/// the history of the initial load) plus returns and re-sends of earlier lines.
pub async fn write_day(
    day: &Day<'_>,
    w: &mut DayFileWriter,
    ledger: &mut Ledger,
    inj: &mut RejectInjector,
    state: &mut TransactionState,
) -> Result<(), GenerateError> {
    let pop = day.pop;
    let mut rng = stream_rng(pop.seed, Stream::Transactions, u64::from(day.index));
    let mut sink = Sink {
        w,
        ledger,
        inj,
        state,
        orders: 0,
    };
    for id in day.joined_before..day.joined_by {
        let person = pop.person(id);
        let behaviour = Behaviour::of(pop, &person);
        // The initial load's earlier purchases: one history file, person by person.
        for p in behaviour.purchases.iter().filter(|p| p.day < 0) {
            sink.purchase(day, &person, p.day, p.spend, &mut rng)
                .await?;
        }
        sink.state.schedule(id, &behaviour, day.index);
    }
    let today = sink.state.due.remove(&day.index).unwrap_or_default();
    // Returns and re-sends first: the recent lines are then all from earlier days.
    // About one purchase in twenty brings an earlier line back.
    let returns = (0..today.len()).filter(|_| rng.random_bool(0.05)).count();
    for _ in 0..returns {
        if let Some((country, mut line)) = sink.take_earlier(&mut rng, true) {
            line[col::ORDER_TS] =
                timestamp(day.date(), rng.random_range(0..86_400), country, false);
            line[col::STATUS] = "returned".into();
            sink.ledger.count("transactions.returned_rows", 1);
            sink.valid(line).await?;
        }
    }
    let resends = (today.len() * 2 / 100).max(1);
    for _ in 0..resends {
        if let Some((_, line)) = sink.take_earlier(&mut rng, false) {
            sink.ledger.count("transactions.duplicate_rows", 1);
            sink.valid(line).await?;
        }
    }
    for due in today {
        let late_by = rng.random_range(1..=2);
        if due.day == day.index && day.index + late_by < pop.days && rng.random_bool(LATE_SHARE) {
            sink.state
                .due
                .entry(day.index + late_by)
                .or_default()
                .push(due);
            continue;
        }
        let person = pop.person(due.person);
        sink.purchase(day, &person, i64::from(due.day), due.spend, &mut rng)
            .await?;
        if sink.state.buyers.len() >= BUYERS_CAP {
            sink.state.buyers.pop_front();
        }
        sink.state.buyers.push_back(due.person);
    }
    Ok(())
}

struct Sink<'a> {
    w: &'a mut DayFileWriter,
    ledger: &'a mut Ledger,
    inj: &'a mut RejectInjector,
    state: &'a mut TransactionState,
    /// Orders written in this day's file, for their ids.
    orders: u64,
}

/// Share of purchase days with two completed orders (the spend split between them).
const SECOND_ORDER_SHARE: f64 = 0.05;

/// Share of purchase days that also have a cancelled order.
const CANCELLED_SHARE: f64 = 0.04;

impl Sink<'_> {
    /// Writes the orders of one purchase day of `person` (day index `order_day`,
    /// `spend` in the reporting currency) into this day's file.
    async fn purchase(
        &mut self,
        day: &Day<'_>,
        person: &Person,
        order_day: i64,
        spend: f64,
        rng: &mut ChaCha8Rng,
    ) -> Result<(), GenerateError> {
        let mut orders = vec![("completed", spend)];
        if rng.random_bool(SECOND_ORDER_SHARE) {
            let share = rng.random_range(0.2..0.8);
            orders = vec![
                ("completed", spend * share),
                ("completed", spend * (1.0 - share)),
            ];
        }
        // A cancelled order comes on top: it is no purchase, so it is outside the model.
        if rng.random_bool(CANCELLED_SHARE) {
            orders.push(("cancelled", spend * rng.random_range(0.5..1.5)));
            self.ledger.count("transactions.cancelled_orders", 1);
        }
        for (status, amount) in orders {
            if order_day < 0 {
                self.ledger.count("transactions.history_orders", 1);
            } else if order_day < i64::from(day.index) {
                self.ledger.count("transactions.late_orders", 1);
            }
            let tx_id = format!("T-{}-{:06}", day.date().format("%Y%m%d"), self.orders);
            self.orders += 1;
            let order = Order {
                tx_id: &tx_id,
                day: order_day,
                status,
                amount,
            };
            for line in order_lines(day, person, &order, rng, self.ledger) {
                let completed = line[col::STATUS] == "completed";
                self.valid(line.clone()).await?;
                if completed && order_day >= i64::from(day.index) - RETURN_WINDOW_DAYS {
                    self.remember(person.country, line);
                }
            }
        }
        Ok(())
    }

    async fn valid(&mut self, line: Vec<String>) -> Result<(), GenerateError> {
        self.w.push_csv(&line).await?;
        self.ledger.row(EXTRACT);
        if let Some(c) = self.inj.after_valid_row() {
            let mut bad = line;
            self.state.malformed += 1;
            // Its own order id, so it never shares a dedupe key with a valid line.
            bad[col::TRANSACTION_ID] =
                format!("{}-X{}", bad[col::TRANSACTION_ID], self.state.malformed);
            bad[col::STATUS] = "completed".into();
            corrupt_transaction(&mut bad, c);
            let line_no = self.w.push_csv(&bad).await?;
            self.ledger
                .reject(EXTRACT, self.w.current_file(), line_no, c.reason.as_str());
        }
        Ok(())
    }

    fn remember(&mut self, country: Country, line: Vec<String>) {
        if self.state.recent.len() >= RECENT_CAP {
            self.state.recent.pop_front();
        }
        self.state.recent.push_back((country, line));
    }

    /// A completed line sold on an earlier day; `remove` takes it out, so a line
    /// is returned at most once.
    fn take_earlier(
        &mut self,
        rng: &mut ChaCha8Rng,
        remove: bool,
    ) -> Option<(Country, Vec<String>)> {
        if self.state.recent.is_empty() {
            return None;
        }
        let i = rng.random_range(0..self.state.recent.len());
        if remove {
            self.state.recent.swap_remove_back(i)
        } else {
            self.state.recent.get(i).cloned()
        }
    }
}

/// One order to render as lines.
struct Order<'a> {
    tx_id: &'a str,
    /// Day index of `order_ts`.
    day: i64,
    status: &'static str,
    /// Net amount of the order in the reporting currency.
    amount: f64,
}

/// The lines of one order by `person` (a guest checkout in 5% of orders, in every
/// order of a heavy guest shopper): 1–4 lines sharing the order's amount, in the
/// person's currency.
fn order_lines(
    day: &Day<'_>,
    p: &Person,
    order: &Order<'_>,
    rng: &mut ChaCha8Rng,
    ledger: &mut Ledger,
) -> Vec<Vec<String>> {
    let guest = p.email.is_some() && (rng.random_bool(0.05) || p.heavy_guest);
    let (system, customer_id, email, channel) = if guest {
        ledger.count("transactions.guest_orders", 1);
        let email = match &p.email {
            Some(e) if rng.random_bool(0.85) => messy_email(e, rng.random_range(0..4)),
            _ => {
                ledger.count("transactions.unattributed_guest_orders", 1);
                ["guest@checkout", "none", "n/a", "guest at example.com"][rng.random_range(0..4)]
                    .to_string()
            }
        };
        ("web", String::new(), email, "online")
    } else {
        let systems: Vec<usize> = p.system_indices().collect();
        let sys = systems[rng.random_range(0..systems.len())];
        let channel = match sys {
            0 => ["phone", "marketplace"][rng.random_range(0..2)],
            1 => "online",
            _ => "store",
        };
        (SYSTEMS[sys], p.source_id(sys), String::new(), channel)
    };
    let order_ts = timestamp(
        day.date_at(order.day),
        rng.random_range(0..86_400),
        p.country,
        p.id % 5 == 2,
    );
    let currency = p.country.currency();
    let local_per_reporting = 1.0 / rate_to_reporting(currency);
    let currency = match rng.random_range(0..40) {
        0 => currency.to_ascii_lowercase(),
        1 => format!(" {currency} "),
        _ => currency.to_string(),
    };
    let n_lines = rng.random_range(1..=4);
    let weights: Vec<f64> = (0..n_lines).map(|_| rng.random_range(0.5..1.5)).collect();
    let total: f64 = weights.iter().sum();
    weights
        .iter()
        .enumerate()
        .map(|(i, weight)| {
            let net = order.amount * weight / total * local_per_reporting * 100.0;
            let line = price_line(net, rng);
            let price_reporting = line.unit_price as f64 / local_per_reporting / 100.0;
            // Products are price bands within a category: a SKU has one cost ratio.
            let band = (price_reporting.max(1.0).ln() * 8.0).round() as u64;
            let k = band * 8 + rng.random_range(0..8);
            vec![
                order.tx_id.to_string(),
                (i + 1).to_string(),
                system.to_string(),
                customer_id.clone(),
                email.clone(),
                order_ts.clone(),
                channel.to_string(),
                format!("SKU-{k:04}"),
                CATEGORIES[(k % 8) as usize].to_string(),
                line.quantity.to_string(),
                money(line.unit_price),
                money(line.discount),
                money((line.unit_price as f64 * cost_ratio(k)).round() as i64),
                currency.clone(),
                order.status.to_string(),
            ]
        })
        .collect()
}

/// Quantity, unit price and discount (cents) of a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct PricedLine {
    quantity: i64,
    unit_price: i64,
    discount: i64,
}

/// A line whose net amount `quantity * unit_price - discount` is `net_cents`
/// rounded to the cent (at least one cent): 20% of lines carry a 5–20% discount.
fn price_line(net_cents: f64, rng: &mut ChaCha8Rng) -> PricedLine {
    let net = (net_cents.round() as i64).max(1);
    let quantity = if net < 300 {
        1
    } else {
        rng.random_range(1..=3)
    };
    let discounted = rng.random_bool(0.2);
    let off = if discounted {
        rng.random_range(0.05..0.20)
    } else {
        0.0
    };
    let gross = net as f64 / (1.0 - off);
    let unit_price = ((gross / quantity as f64).round() as i64).max(1);
    let discount = if discounted {
        (quantity * unit_price - net).max(0)
    } else {
        0
    };
    PricedLine {
        quantity,
        unit_price,
        discount,
    }
}

/// Cost of goods as a share of the unit price of SKU `k`: 0.40 to 0.75, so the
/// margin is positive even after the largest discount (20%).
fn cost_ratio(k: u64) -> f64 {
    0.40 + 0.35 * (mix(0xC057, k) % 1_000) as f64 / 1_000.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generate::rng::{Stream, stream_rng};

    #[test]
    fn a_priced_line_nets_to_the_cent_and_discounts_stay_within_bounds() {
        let mut rng = stream_rng(5, Stream::Transactions, 0);
        let mut discounted = 0;
        for i in 0..5_000 {
            let target = 50.0 + f64::from(i) * 7.3;
            let l = price_line(target, &mut rng);
            assert!(l.quantity >= 1 && l.unit_price >= 1 && l.discount >= 0);
            let net = l.quantity * l.unit_price - l.discount;
            if l.discount > 0 {
                discounted += 1;
                // Exact when discounted: the discount absorbs the rounding.
                assert_eq!(net, target.round() as i64);
                assert!(
                    l.discount * 5 <= l.quantity * l.unit_price,
                    "at most 20% off"
                );
            } else {
                // Without a discount only the unit price rounds: off by < qty/2 cents.
                assert!((net - target.round() as i64).abs() <= l.quantity);
            }
        }
        // 20% of 5,000 = 1,000 discounted lines, give or take.
        assert!((850..1_150).contains(&discounted), "{discounted}");
        // A tiny amount still makes a valid one-cent line.
        let l = price_line(0.2, &mut rng);
        assert_eq!((l.quantity, l.unit_price), (1, 1));
    }

    #[test]
    fn cost_is_forty_to_seventy_five_percent_of_the_price() {
        let ratios: Vec<f64> = (0..2_000).map(cost_ratio).collect();
        assert!(ratios.iter().all(|r| (0.40..0.75).contains(r)));
        let mean = ratios.iter().sum::<f64>() / ratios.len() as f64;
        // Uniform over [0.40, 0.75): mean 0.575.
        assert!((mean - 0.575).abs() < 0.01, "{mean}");
    }
}
