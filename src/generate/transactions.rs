//! The transactions extract: orders of 1–4 lines in the buyer's currency, guest
//! checkouts (some with an email that is no identifier: unattributed), cancelled
//! orders, late orders landing in a later `dt=`, returns of earlier lines,
//! identical re-sends of earlier lines, and malformed rows.

use std::collections::VecDeque;

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::Day;
use super::GenerateError;
use super::mess::{RejectInjector, corrupt_transaction};
use super::people::{Country, Person, SYSTEMS};
use super::profiles::messy_email;
use super::rng::{Stream, stream_rng};
use super::stamp::{money, timestamp};
use super::truth::Ledger;
use super::writer::DayFileWriter;

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

/// State carried from day to day: recently sold lines.
#[derive(Debug, Default)]
pub struct TransactionState {
    recent: VecDeque<(Country, Vec<String>)>,
    malformed: u64,
}

/// Orders per joined person per day (about seven a year).
const ORDER_RATE: f64 = 0.02;

/// Writes the transactions rows of one day.
pub async fn write_day(
    day: &Day<'_>,
    w: &mut DayFileWriter,
    ledger: &mut Ledger,
    inj: &mut RejectInjector,
    state: &mut TransactionState,
) -> Result<(), GenerateError> {
    let pop = day.pop;
    let mut rng = stream_rng(pop.seed, Stream::Transactions, u64::from(day.index));
    let orders = ((day.joined_by as f64 * ORDER_RATE) as u64).max(1);
    let mut sink = Sink {
        w,
        ledger,
        inj,
        state,
    };
    // Returns and re-sends first: the recent lines are then all from earlier days.
    let returns = orders * 5 / 100;
    for _ in 0..returns {
        if let Some((country, mut line)) = sink.take_earlier(&mut rng, true) {
            line[col::ORDER_TS] =
                timestamp(day.date(), rng.random_range(0..86_400), country, false);
            line[col::STATUS] = "returned".into();
            sink.ledger.count("transactions.returned_rows", 1);
            sink.valid(line).await?;
        }
    }
    let resends = (orders * 2 / 100).max(1);
    for _ in 0..resends {
        if let Some((_, line)) = sink.take_earlier(&mut rng, false) {
            sink.ledger.count("transactions.duplicate_rows", 1);
            sink.valid(line).await?;
        }
    }
    for n in 0..orders {
        let person = pop.person(rng.random_range(0..day.joined_by));
        let tx_id = format!("T-{}-{n:06}", day.date().format("%Y%m%d"));
        let lines = order_lines(day, &person, &tx_id, &mut rng, sink.ledger);
        for line in lines {
            let completed = line[col::STATUS] == "completed";
            sink.valid(line.clone()).await?;
            if completed {
                sink.remember(person.country, line);
            }
        }
    }
    Ok(())
}

struct Sink<'a> {
    w: &'a mut DayFileWriter,
    ledger: &'a mut Ledger,
    inj: &'a mut RejectInjector,
    state: &'a mut TransactionState,
}

impl Sink<'_> {
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

/// The lines of one order by `person` (a guest checkout in 5% of orders).
fn order_lines(
    day: &Day<'_>,
    p: &Person,
    tx_id: &str,
    rng: &mut ChaCha8Rng,
    ledger: &mut Ledger,
) -> Vec<Vec<String>> {
    let guest = p.email.is_some() && rng.random_bool(0.05);
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
    let late = day.index >= 2 && rng.random_bool(0.03);
    let order_day = if late {
        day.index - rng.random_range(1..=2)
    } else {
        day.index
    };
    if late {
        ledger.count("transactions.late_orders", 1);
    }
    let order_ts = timestamp(
        day.date_of(order_day),
        rng.random_range(0..86_400),
        p.country,
        p.id % 5 == 2,
    );
    let status = if rng.random_bool(0.04) {
        ledger.count("transactions.cancelled_orders", 1);
        "cancelled"
    } else {
        "completed"
    };
    let currency = p.country.currency();
    let currency = match rng.random_range(0..40) {
        0 => currency.to_ascii_lowercase(),
        1 => format!(" {currency} "),
        _ => currency.to_string(),
    };
    let rate = match p.country.currency() {
        "GBP" => 0.85,
        "USD" => 1.10,
        "SEK" => 11.0,
        _ => 1.0,
    };
    let n_lines = rng.random_range(1..=4);
    (1..=n_lines)
        .map(|line_no| {
            let k: u64 = rng.random_range(0..200);
            let price = ((500 + (k * 7_919) % 20_000) as f64 * rate).round() as i64;
            let qty: i64 = rng.random_range(1..=3);
            let discount = if rng.random_bool(0.2) {
                rng.random_range(1..=(qty * price / 5).max(1))
            } else {
                0
            };
            vec![
                tx_id.to_string(),
                line_no.to_string(),
                system.to_string(),
                customer_id.clone(),
                email.clone(),
                order_ts.clone(),
                channel.to_string(),
                format!("SKU-{k:04}"),
                CATEGORIES[(k % 8) as usize].to_string(),
                qty.to_string(),
                money(price),
                money(discount),
                money(price * 6 / 10),
                currency.clone(),
                status.to_string(),
            ]
        })
        .collect()
}
