//! Deterministic synthetic extracts in the DATA_CONTRACT.md layout, with the
//! mess real extracts have and a `_ground_truth/` folder saying what a correct
//! loader must make of them (`c360 generate`).
//!
//! Generation runs day by day: each day's files are written before the next day
//! starts, people and their behaviour (`behaviour.rs`: BG/NBD purchase days,
//! Gamma-Gamma spend) are re-derived from (seed, id) whenever a row mentions
//! them, and only bounded state crosses days: purchase days queued for later
//! files (at most one pending per alive buyer and day), recent order lines,
//! events and buyers (for returns, re-sends and reviews). Same options and seed
//! give byte-identical output.
//!
//! Fixed days carry the file-level mess (needs `days >= 9` to have all of it):
//! profiles day 1 CRLF, day 3 an extra column, day 5 a byte-order mark;
//! transactions day 2 a byte-order mark, day 5 header only, day 6 CRLF;
//! communications day 4 missing. gzip and zstd alternate by day.

pub mod behaviour;
mod communications;
mod draw;
pub mod mess;
pub mod people;
mod profiles;
mod rng;
mod stamp;
mod suppressions;
mod transactions;
pub mod truth;
pub mod writer;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use object_store::ObjectStore;
use object_store::path::Path;

use mess::{DEFAULT_INTERVAL, EVENT_REASONS, PROFILE_REASONS, RejectInjector, TRANSACTION_REASONS};
use people::Population;
use truth::{Ledger, SummaryHeader};
use writer::{DayFileWriter, Encoding, FileStyle, GeneratedFile};

/// Options of `c360 generate`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenerateOptions {
    /// Number of people (1 ..= 10,000,000: identifiers encode the person id).
    pub customers: u64,
    /// Number of extract days (`dt=` partitions), from `start_date`.
    pub days: u32,
    pub seed: u64,
    /// First extract day; default 2026-01-01.
    pub start_date: NaiveDate,
}

impl Default for GenerateOptions {
    fn default() -> Self {
        Self {
            customers: 2_000,
            days: 60,
            seed: 42,
            start_date: NaiveDate::from_ymd_opt(2026, 1, 1).unwrap_or_default(),
        }
    }
}

/// What a generation wrote.
#[derive(Debug, Clone)]
pub struct GenerateReport {
    /// Raw files written, relative to the root, in write order (ground truth excluded).
    pub files: Vec<GeneratedFile>,
    /// Data records per extract, malformed ones included.
    pub rows: BTreeMap<String, u64>,
    /// Malformed records per extract and reason, as listed in `_ground_truth/rejects.csv`.
    pub rejects: BTreeMap<String, BTreeMap<String, u64>>,
    /// Named counts: duplicates, returns, guest and unattributed guest orders, late rows, …
    pub counts: BTreeMap<String, u64>,
    /// Rows of `_ground_truth/identities.csv`.
    pub identities: u64,
    pub elapsed: Duration,
}

/// Errors of the generator.
#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    #[error("generate: invalid options: {0}")]
    InvalidOptions(String),
    #[error("generate: writing {path}: {source}")]
    Store {
        path: String,
        #[source]
        source: object_store::Error,
    },
    #[error("generate: compressing {path}: {source}")]
    Encode {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("generate: encoding summary: {0}")]
    Summary(#[from] serde_json::Error),
}

/// One extract day as the extract writers see it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Day<'a> {
    pub pop: &'a Population,
    pub index: u32,
    pub start: NaiveDate,
    /// People joined before this day (ids `0..joined_before`).
    pub joined_before: u64,
    /// People joined by the end of this day.
    pub joined_by: u64,
}

impl Day<'_> {
    /// Calendar date of day `index`.
    pub fn date_of(&self, index: u32) -> NaiveDate {
        self.start + chrono::Days::new(u64::from(index))
    }

    /// Calendar date of day `index` relative to the first day (negative: before it).
    pub fn date_at(&self, index: i64) -> NaiveDate {
        self.start + chrono::Duration::days(index)
    }

    /// Calendar date of this day.
    pub fn date(&self) -> NaiveDate {
        self.date_of(self.index)
    }
}

/// Most records per file part; bounds what is buffered at once.
const MAX_ROWS_PER_PART: u64 = 100_000;

/// Currencies and their rate to the reporting currency (EUR).
const FX_RATES: &str =
    "currency,rate_to_reporting\nEUR,1\nGBP,1.172300\nUSD,0.921500\nSEK,0.087125\n";

/// The rate of `currency` in [`FX_RATES`] (1 for a currency not listed).
pub(crate) fn rate_to_reporting(currency: &str) -> f64 {
    FX_RATES
        .lines()
        .skip(1)
        .filter_map(|l| l.split_once(','))
        .find(|(c, _)| *c == currency)
        .and_then(|(_, r)| r.parse().ok())
        .unwrap_or(1.0)
}

/// Generates the extracts and ground truth under `root`.
pub async fn generate(
    opts: &GenerateOptions,
    store: Arc<dyn ObjectStore>,
    root: &Path,
) -> Result<GenerateReport, GenerateError> {
    generate_in_parts(opts, store, root, MAX_ROWS_PER_PART).await
}

/// [`generate`] with at most `max_rows` records per file part.
async fn generate_in_parts(
    opts: &GenerateOptions,
    store: Arc<dyn ObjectStore>,
    root: &Path,
    max_rows: u64,
) -> Result<GenerateReport, GenerateError> {
    let started = Instant::now();
    validate(opts)?;
    let pop = Population::new(opts.seed, opts.customers, opts.days);
    let mut ledger = Ledger::default();
    let mut inj_profiles = RejectInjector::new(PROFILE_REASONS, DEFAULT_INTERVAL);
    let mut inj_tx = RejectInjector::new(TRANSACTION_REASONS, DEFAULT_INTERVAL);
    let mut inj_ev = RejectInjector::new(EVENT_REASONS, DEFAULT_INTERVAL);
    let mut tx_state = transactions::TransactionState::default();
    let mut ev_state = communications::CommunicationState::default();

    writer::put(
        &store,
        root,
        "reference/fx_rates.csv",
        FX_RATES.as_bytes().to_vec(),
    )
    .await?;
    for index in 0..opts.days {
        let day = Day {
            pop: &pop,
            index,
            start: opts.start_date,
            joined_before: if index == 0 {
                0
            } else {
                pop.joined_by(index - 1)
            },
            joined_by: pop.joined_by(index),
        };
        let date = day.date();

        let extra = index == 3;
        let mut header: Vec<&str> = profiles::HEADER.to_vec();
        if extra {
            header.push(profiles::EXTRA_COLUMN);
        }
        let style = file_style(index % 4, index == 1, index == 5);
        let dir = format!("{}/dt={date}", profiles::EXTRACT);
        let mut w = DayFileWriter::csv(store.clone(), root, dir, &header, style, max_rows);
        profiles::write_day(&day, &mut w, &mut ledger, &mut inj_profiles, extra).await?;
        ledger.files.extend(w.finish().await?);

        let style = style_tx(index);
        let dir = format!("{}/dt={date}", transactions::EXTRACT);
        let mut w = DayFileWriter::csv(
            store.clone(),
            root,
            dir,
            &transactions::HEADER,
            style,
            max_rows,
        );
        if index == 5 {
            ledger.count("transactions.empty_days", 1);
            transactions::skip_day(&day, &mut tx_state);
        } else {
            transactions::write_day(&day, &mut w, &mut ledger, &mut inj_tx, &mut tx_state).await?;
        }
        ledger.files.extend(w.finish().await?);

        if index == 4 {
            ledger.count("communications.missing_days", 1);
        } else {
            let style = file_style((index + 1) % 3 + 1, false, false);
            let dir = format!("{}/dt={date}", communications::EXTRACT);
            let mut w = DayFileWriter::ndjson(store.clone(), root, dir, style, max_rows);
            let buyers = tx_state.recent_buyers();
            communications::write_day(
                &day,
                &mut w,
                &mut ledger,
                &mut inj_ev,
                &mut ev_state,
                buyers,
            )
            .await?;
            ledger.files.extend(w.finish().await?);
        }

        if suppressions::has_requests(index, opts.days) {
            suppressions::write_day(&day, store.clone(), root, &mut ledger).await?;
        }
        tracing::debug!(day = %date, files = ledger.files.len(), "generated day");
    }

    let header = SummaryHeader {
        customers: opts.customers,
        days: opts.days,
        seed: opts.seed,
        start_date: opts.start_date,
    };
    let identities = truth::write_truth(&store, root, &pop, &ledger, header).await?;
    let owned =
        |m: &BTreeMap<&'static str, u64>| m.iter().map(|(k, v)| ((*k).to_string(), *v)).collect();
    Ok(GenerateReport {
        rows: owned(&ledger.rows),
        rejects: ledger
            .reject_counts
            .iter()
            .map(|(k, v)| ((*k).to_string(), owned(v)))
            .collect(),
        counts: ledger.counters,
        files: ledger.files,
        identities,
        elapsed: started.elapsed(),
    })
}

fn validate(opts: &GenerateOptions) -> Result<(), GenerateError> {
    if opts.customers == 0 || opts.customers > 10_000_000 {
        return Err(GenerateError::InvalidOptions(format!(
            "--customers must be between 1 and 10000000, got {}",
            opts.customers
        )));
    }
    if opts.days == 0 || opts.days > 3_660 {
        return Err(GenerateError::InvalidOptions(format!(
            "--days must be between 1 and 3660, got {}",
            opts.days
        )));
    }
    Ok(())
}

/// Style of a day file: `codec` 2 = gzip, 3 = zstd, else plain.
fn file_style(codec: u32, crlf: bool, bom: bool) -> FileStyle {
    let encoding = match codec {
        2 => Encoding::Gzip,
        3 => Encoding::Zstd,
        _ => Encoding::Plain,
    };
    FileStyle {
        encoding,
        crlf,
        bom,
    }
}

fn style_tx(index: u32) -> FileStyle {
    file_style(index % 3 + 1, index == 6, index == 2)
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::memory::InMemory;

    #[tokio::test]
    async fn a_run_is_split_into_bounded_parts_and_reports_its_time() {
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let opts = GenerateOptions {
            customers: 3_000,
            days: 3,
            ..GenerateOptions::default()
        };
        let report = generate_in_parts(&opts, store, &Path::from("raw"), 400).await;
        let report = match report {
            Ok(r) => r,
            Err(e) => panic!("{e}"),
        };
        assert!(report.files.iter().all(|f| f.rows <= 400));
        // Day 0 has 2,400 people (four fifths) in 1-3 systems: more than four parts of 400.
        let day0 = report
            .files
            .iter()
            .filter(|f| f.path.starts_with("profiles/dt=2026-01-01/"))
            .count();
        assert!(day0 >= 4, "{day0} parts");
        let rows: u64 = report.files.iter().map(|f| f.rows).sum();
        assert_eq!(rows, report.rows.values().sum::<u64>());
        assert!(report.elapsed > Duration::ZERO);
    }

    #[test]
    fn fx_rates_are_read_from_the_reference_file_text() {
        assert_eq!(rate_to_reporting("GBP"), 1.1723);
        assert_eq!(rate_to_reporting("EUR"), 1.0);
        assert_eq!(rate_to_reporting("XYZ"), 1.0);
    }
}
