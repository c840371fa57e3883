//! The ground truth: what a correct loader must find in the generated extracts.
//! `rejects.csv` lists every malformed row (extract, file, line, reason);
//! `identities.csv` every valid identifier of every person; `behaviour.csv`
//! each person's purchase rate, dropout probability and mean spend (the truth a
//! CLV fit estimates); `suppressions.csv`
//! who asked to be erased and when; `summary.json` the counts. Everything is
//! written in a fixed order, so the same options give the same bytes.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::NaiveDate;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, WriteMultipart};
use serde::Serialize;

use super::GenerateError;
use super::behaviour::{Behaviour, BehaviourModel, MODEL, Purchase};
use super::people::{Person, Population};
use super::writer::{GeneratedFile, join, put, render_csv};

/// Folder of the ground truth under the raw root.
pub const TRUTH_DIR: &str = "_ground_truth";

/// One expected reject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpectedReject {
    pub extract: &'static str,
    pub file: String,
    pub line: u64,
    pub reason: &'static str,
}

/// Everything recorded while generating.
#[derive(Debug, Default)]
pub struct Ledger {
    pub rejects: Vec<ExpectedReject>,
    /// Data records per extract, rejected ones included.
    pub rows: BTreeMap<&'static str, u64>,
    pub reject_counts: BTreeMap<&'static str, BTreeMap<&'static str, u64>>,
    /// Named counts (`transactions.duplicate_rows`, `transactions.unattributed_guest_orders`, …).
    pub counters: BTreeMap<String, u64>,
    pub files: Vec<GeneratedFile>,
    /// `(person_id, requested_at)` of every suppression row.
    pub suppressions: Vec<(u64, String)>,
}

impl Ledger {
    /// Counts one data record of `extract`.
    pub fn row(&mut self, extract: &'static str) {
        *self.rows.entry(extract).or_default() += 1;
    }

    /// Records a malformed record (also counted as a row).
    pub fn reject(&mut self, extract: &'static str, file: String, line: u64, reason: &'static str) {
        self.row(extract);
        *self
            .reject_counts
            .entry(extract)
            .or_default()
            .entry(reason)
            .or_default() += 1;
        self.rejects.push(ExpectedReject {
            extract,
            file,
            line,
            reason,
        });
    }

    /// Adds `n` to the counter `key`.
    pub fn count(&mut self, key: &str, n: u64) {
        *self.counters.entry(key.to_string()).or_default() += n;
    }
}

/// `summary.json`: no timings in it, so it is reproducible.
#[derive(Debug, Serialize)]
struct Summary<'a> {
    customers: u64,
    days: u32,
    seed: u64,
    start_date: String,
    rows: &'a BTreeMap<&'static str, u64>,
    rejects: &'a BTreeMap<&'static str, BTreeMap<&'static str, u64>>,
    counts: &'a BTreeMap<String, u64>,
    /// Parameters of the behaviour model (time in weeks, money in EUR).
    behaviour_model: BehaviourModel,
    placeholder_email: &'static str,
    placeholder_records: u64,
    identities: u64,
    suppressed_persons: usize,
    files: usize,
}

/// Options echoed into the summary.
pub struct SummaryHeader {
    pub customers: u64,
    pub days: u32,
    pub seed: u64,
    pub start_date: NaiveDate,
}

/// Writes the ground truth; returns the number of identity rows.
pub async fn write_truth(
    store: &Arc<dyn ObjectStore>,
    root: &Path,
    pop: &Population,
    ledger: &Ledger,
    header: SummaryHeader,
) -> Result<u64, GenerateError> {
    let identities = write_identities(store, root, pop).await?;
    write_behaviour(store, root, pop, header.start_date).await?;

    let mut rejects = render_csv(&strings(&["extract", "file", "line", "reason"]), false);
    for r in &ledger.rejects {
        let fields = [
            r.extract.to_string(),
            r.file.clone(),
            r.line.to_string(),
            r.reason.to_string(),
        ];
        rejects.push_str(&render_csv(&fields, false));
    }
    put(
        store,
        root,
        &format!("{TRUTH_DIR}/rejects.csv"),
        rejects.into_bytes(),
    )
    .await?;

    let mut supp = render_csv(&strings(&["person_id", "requested_at"]), false);
    for (p, at) in &ledger.suppressions {
        supp.push_str(&render_csv(&[p.to_string(), at.clone()], false));
    }
    put(
        store,
        root,
        &format!("{TRUTH_DIR}/suppressions.csv"),
        supp.into_bytes(),
    )
    .await?;

    let summary = Summary {
        customers: header.customers,
        days: header.days,
        seed: header.seed,
        start_date: header.start_date.to_string(),
        rows: &ledger.rows,
        rejects: &ledger.reject_counts,
        counts: &ledger.counters,
        behaviour_model: MODEL,
        placeholder_email: super::people::PLACEHOLDER_EMAIL,
        placeholder_records: pop.placeholder_records(),
        identities,
        suppressed_persons: ledger.suppressions.len(),
        files: ledger.files.len(),
    };
    let mut json = serde_json::to_vec_pretty(&summary)?;
    json.push(b'\n');
    put(store, root, &format!("{TRUTH_DIR}/summary.json"), json).await?;
    Ok(identities)
}

/// Streams `identities.csv` in person order.
async fn write_identities(
    store: &Arc<dyn ObjectStore>,
    root: &Path,
    pop: &Population,
) -> Result<u64, GenerateError> {
    stream_per_person(
        store,
        root,
        "identities.csv",
        &["person_id", "id_type", "id_value"],
        pop,
        |id, person| {
            person
                .identities()
                .into_iter()
                .map(|(kind, value)| vec![id.to_string(), kind.to_string(), value])
                .collect()
        },
    )
    .await
}

/// Streams `behaviour.csv`: each person's draws of the behaviour model and
/// the purchase days they led to (before guest orders lose some of them to
/// unattributable emails and erasures remove people), so a CLV fit can be
/// compared with the truth it estimates.
async fn write_behaviour(
    store: &Arc<dyn ObjectStore>,
    root: &Path,
    pop: &Population,
    start: NaiveDate,
) -> Result<u64, GenerateError> {
    let header = [
        "person_id",
        "buyer",
        "rate_per_week",
        "dropout_p",
        "mean_spend",
        "purchase_days",
        "first_purchase",
        "last_purchase",
        "alive_at_end",
    ];
    stream_per_person(store, root, "behaviour.csv", &header, pop, |id, person| {
        let b = Behaviour::of(pop, person);
        let date = |p: Option<&Purchase>| {
            p.map(|p| (start + chrono::Duration::days(p.day)).to_string())
                .unwrap_or_default()
        };
        vec![vec![
            id.to_string(),
            b.buyer.to_string(),
            format!("{:.6}", b.rate_per_week),
            format!("{:.6}", b.dropout),
            format!("{:.2}", b.mean_spend()),
            b.purchases.len().to_string(),
            date(b.purchases.first()),
            date(b.purchases.last()),
            (b.buyer && !b.dropped_out).to_string(),
        ]]
    })
    .await
}

/// Streams `{TRUTH_DIR}/{name}` with the rows `rows_of` gives each person, in
/// person order; memory stays one chunk. Returns the number of data rows.
async fn stream_per_person(
    store: &Arc<dyn ObjectStore>,
    root: &Path,
    name: &str,
    header: &[&str],
    pop: &Population,
    rows_of: impl Fn(u64, &Person) -> Vec<Vec<String>>,
) -> Result<u64, GenerateError> {
    let rel = format!("{TRUTH_DIR}/{name}");
    let store_err = |source| GenerateError::Store {
        path: rel.clone(),
        source,
    };
    let upload = store
        .put_multipart(&join(root, &rel))
        .await
        .map_err(store_err)?;
    let mut out = WriteMultipart::new(upload);
    let mut chunk = render_csv(&strings(header), false);
    let mut rows = 0u64;
    for id in 0..pop.customers {
        for row in rows_of(id, &pop.person(id)) {
            chunk.push_str(&render_csv(&row, false));
            rows += 1;
        }
        if chunk.len() >= 4 << 20 {
            out.wait_for_capacity(4).await.map_err(store_err)?;
            out.write(chunk.as_bytes());
            chunk.clear();
        }
    }
    out.write(chunk.as_bytes());
    out.finish().await.map_err(store_err)?;
    Ok(rows)
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_string()).collect()
}
