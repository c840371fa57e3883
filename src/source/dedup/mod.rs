//! Deduplication and row accounting per extract (DATA_CONTRACT.md, Duplicates;
//! "as of the logical date" in the README), by each schema's rule
//! ([`crate::job::DedupRule`]).
//!
//! One hash aggregation per source groups the copies of each key (it spills; a
//! sort and a ROW_NUMBER window over every row, what the step SQL did before,
//! sorted tens of millions of wide rows to drop a few thousand copies). In this
//! process a first pass hashes every key and leaves to the aggregation only the
//! rows whose key hash another row shares (`shared`; the aggregation is in
//! `groups`): the rest are groups of one.
//! Each group yields its copy count and its winner, and the stream of groups gives:
//!
//! * the **row accounting**: every row read is accepted or rejected, and every
//!   accepted row is kept, deduplicated or filtered;
//! * the **duplicates**: each key with more than one copy and its winning copy's
//!   `_file` and `_line`, staged as `_c360_<source>_duplicates`, from which
//!   `<source>_deduped` is registered: the source's rows minus the losing
//!   copies, found by a join whose build side is the (small) duplicates.
//!
//! ```text
//! read     = accepted + rejected                 (reader counters)
//! accepted = rows in the typed staging footer    (what the writer stored)
//! rejected = rows in the rejects footer
//! accepted = kept + deduplicated + filtered      (the groups, counted here)
//! ```
//! The counts come from different places (the reader, the Parquet footers, the
//! groups), so a lost batch, a double write or a row no bucket claims (a NULL
//! date) shows up as a mismatch, which fails the run.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::NaiveDate;
use datafusion::error::DataFusionError;
use datafusion::prelude::SessionContext;
use object_store::ObjectStore;
use object_store::path::Path;

mod groups;
mod shared;

use crate::engine::sql_ident as ident;
use crate::job::{DedupRule, SourceSpec, deduped_table};
use crate::outputs::WrittenFile;
use crate::source::SourceReport;
use crate::source::StagingError;
use crate::source::{FILE_COLUMN, LINE_COLUMN};
use groups::{file_order, group, late};

/// The accounting of one extract (module docs), as the run log records it.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RowAccounting {
    pub extract: String,
    pub read: u64,
    pub accepted: u64,
    pub rejected: u64,
    /// Accepted rows that survive deduplication and the filters.
    pub kept: u64,
    /// Older or repeated copies that lost to another copy of the same key.
    pub deduplicated: u64,
    /// Reason -> rows: `after_date` (dated after the logical date), `cancelled`.
    pub filtered: BTreeMap<String, u64>,
    /// Kept guest order lines whose email is no identifier (in no customer's figures).
    pub unattributed: u64,
}

/// The error of a deduplication query over `table`.
fn query_error(table: &str) -> impl Fn(DataFusionError) -> StagingError + Copy + '_ {
    move |source| StagingError::Query {
        what: format!("deduplication of {table}"),
        source,
    }
}

/// The staged duplicates of source `source` (internal: not a name a job can define).
pub(crate) fn duplicates_table(source: &str) -> String {
    format!("_c360_{source}_duplicates")
}

/// A source deduplicated and accounted for.
pub(crate) struct Deduped {
    pub accounting: RowAccounting,
    /// The staged duplicates, when the source has a key and some key has copies.
    pub duplicates: Option<WrittenFile>,
}

/// Where a source's duplicates are written and read from.
pub(crate) struct DuplicatesAt<'a> {
    pub store: &'a Arc<dyn ObjectStore>,
    /// The store's URL (to register the written file).
    pub store_url: &'a str,
    /// The folder of the file.
    pub dir: Path,
}

/// Registers `<table>_deduped`: the rows of `table` minus the losing copies of
/// the keys in `duplicates` (a registered table; `None`: no key has copies).
pub(crate) async fn register_deduped(
    ctx: &SessionContext,
    rule: &DedupRule,
    table: &str,
    duplicates: Option<&str>,
    date: NaiveDate,
) -> Result<(), DataFusionError> {
    let t = ident(table);
    let sql = match duplicates {
        None => format!("SELECT * FROM {t}"),
        Some(d) => {
            let on: Vec<String> = rule
                .key
                .iter()
                .map(|c| format!("t.{c} = d.{c}", c = ident(c)))
                .collect();
            // A copy dated after the date stands alone where the rule says so.
            let alone = if rule.late_stands_alone {
                format!(" OR {}", late(rule, "t.", date))
            } else {
                String::new()
            };
            format!(
                "SELECT t.* FROM {t} t LEFT JOIN {d} d ON {on} \
                 WHERE d.{LINE_COLUMN} IS NULL \
                 OR (t.{FILE_COLUMN} = d.{FILE_COLUMN} AND t.{LINE_COLUMN} = d.{LINE_COLUMN}){alone}",
                d = ident(d),
                on = on.join(" AND "),
            )
        }
    };
    let view = ctx.sql(&sql).await?.into_view();
    let name = deduped_table(table);
    ctx.deregister_table(name.as_str())?;
    ctx.register_table(name.as_str(), view)?;
    Ok(())
}

/// Deduplicates and accounts for one staged source (table `spec.name`);
/// `typed_rows` and `rejected_rows` are the footer counts of its staged files.
/// A keyed source gets `<name>_deduped` (and its duplicates, staged at `at`).
/// `local`: the queries run in this process, not on a cluster.
pub(crate) async fn dedup_source(
    ctx: &SessionContext,
    spec: &SourceSpec,
    report: &SourceReport,
    (typed_rows, rejected_rows): (u64, u64),
    date: NaiveDate,
    at: &DuplicatesAt<'_>,
    local: bool,
) -> Result<Deduped, StagingError> {
    let mismatch = |detail: String| StagingError::Accounting {
        name: spec.name.clone(),
        detail,
    };
    let query_err = query_error(&spec.name);
    let rule = spec.schema.dedup_rule();
    let files = format!("_c360_file_order_{}", spec.name);
    let (order, names) = file_order(&report.read_files).map_err(query_err)?;
    ctx.register_table(files.as_str(), order)
        .map_err(query_err)?;
    let local = local.then_some(typed_rows);
    let grouped = group(ctx, &rule, &spec.name, (&files, &names), date, at, local).await;
    ctx.deregister_table(files.as_str()).map_err(query_err)?;
    let (tally, duplicates) = grouped?;
    if !rule.key.is_empty() {
        let table = duplicates_table(&spec.name);
        if let Some(file) = &duplicates {
            crate::engine::register_staged_files(
                ctx,
                &table,
                at.store_url,
                std::slice::from_ref(&file.path),
            )
            .await
            .map_err(query_err)?;
        }
        let registered = duplicates.as_ref().map(|_| table.as_str());
        register_deduped(ctx, &rule, &spec.name, registered, date)
            .await
            .map_err(query_err)?;
    }
    let mut filtered = BTreeMap::new();
    for (reason, n) in [
        ("after_date", tally.after_date),
        ("cancelled", tally.cancelled),
    ] {
        if n > 0 {
            filtered.insert(reason.to_string(), n);
        }
    }
    let accounting = RowAccounting {
        extract: spec.name.clone(),
        read: report.rows_read,
        accepted: report.rows_accepted,
        rejected: report.rows_rejected,
        kept: tally.kept,
        deduplicated: tally.total - tally.groups,
        filtered,
        unattributed: tally.unattributed,
    };
    let a = &accounting;
    if a.read != a.accepted + a.rejected {
        return Err(mismatch(format!(
            "{} read != {} accepted + {} rejected",
            a.read, a.accepted, a.rejected
        )));
    }
    if typed_rows != a.accepted || rejected_rows != a.rejected {
        return Err(mismatch(format!(
            "the staged files hold {typed_rows} accepted and {rejected_rows} rejected rows, the reader counted {} and {}",
            a.accepted, a.rejected
        )));
    }
    let classified = a.kept + a.deduplicated + a.filtered.values().sum::<u64>();
    if tally.total != a.accepted || classified != tally.total {
        return Err(mismatch(format!(
            "{} accepted, {} in the staged table, {classified} classified ({} kept + {} deduplicated + {:?} filtered)",
            a.accepted, tally.total, a.kept, a.deduplicated, a.filtered
        )));
    }
    Ok(Deduped {
        accounting,
        duplicates,
    })
}

/// The staged tables `<source>_deduped` reads, for each keyed source: the
/// source and its duplicates.
pub(crate) fn deduped_reads(
    spec: &SourceSpec,
    deduped: &Deduped,
) -> Option<(String, BTreeSet<String>)> {
    if spec.schema.dedup_rule().key.is_empty() {
        return None;
    }
    let mut reads = BTreeSet::from([spec.name.clone()]);
    if deduped.duplicates.is_some() {
        reads.insert(duplicates_table(&spec.name));
    }
    Some((deduped_table(&spec.name), reads))
}

#[cfg(test)]
mod tests;
