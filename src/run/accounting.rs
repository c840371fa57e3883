//! Row accounting per extract: every row read is accepted or rejected, and
//! every accepted row is kept, deduplicated or filtered, by the contract's rules
//! (DATA_CONTRACT.md, Duplicates; "as of the logical date" in the README).
//!
//! ```text
//! read     = accepted + rejected                 (reader counters)
//! accepted = rows in the typed staging footer    (what the writer stored)
//! rejected = rows in the rejects footer
//! accepted = kept + deduplicated + filtered      (one classification query)
//! ```
//! The counts come from different places (the reader, the Parquet footers, a
//! query with one FILTER per bucket), so a lost batch, a double write or a row
//! no bucket claims (a NULL date) shows up as a mismatch, which fails the run.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use datafusion::arrow::array::AsArray;
use datafusion::arrow::datatypes::Int64Type;
use datafusion::prelude::SessionContext;

use super::RunError;
use crate::job::{ContractSchema, SourceSpec};
use crate::source::SourceReport;

/// The accounting of one extract, as recorded in the run log.
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

/// The classification query of one contract schema over table `t`: columns
/// `total, kept, deduplicated, after_date, cancelled, unattributed`.
fn classification(schema: ContractSchema, table: &str, date: NaiveDate) -> String {
    let t = crate::checks::ident(table);
    let d = format!("DATE '{date}'");
    let buckets = |ranked: String, kept: &str, late: &str, cancelled: &str, unattributed: &str| {
        format!(
            "SELECT COUNT(*) AS total, \
             COUNT(*) FILTER (WHERE copy_rank = 1 AND {kept}) AS kept, \
             COUNT(*) FILTER (WHERE copy_rank > 1) AS deduplicated, \
             COUNT(*) FILTER (WHERE copy_rank = 1 AND {late}) AS after_date, \
             COUNT(*) FILTER (WHERE copy_rank = 1 AND {cancelled}) AS cancelled, \
             COUNT(*) FILTER (WHERE copy_rank = 1 AND {kept} AND {unattributed}) AS unattributed \
             FROM ({ranked}) ranked"
        )
    };
    match schema {
        // Rows updated after the date are not yet known, so they neither win nor lose.
        ContractSchema::Profiles => buckets(
            format!(
                "SELECT CAST(updated_at AS DATE) > {d} AS late, CASE WHEN CAST(updated_at AS DATE) > {d} THEN 1 ELSE ROW_NUMBER() OVER (PARTITION BY source_system, source_customer_id, CAST(updated_at AS DATE) > {d} ORDER BY updated_at DESC, _file DESC, _line DESC) END AS copy_rank FROM {t}"
            ),
            "NOT late",
            "late",
            "FALSE",
            "FALSE",
        ),
        ContractSchema::Transactions => buckets(
            format!(
                "SELECT CAST(order_ts AS DATE) > {d} AS late, status, source_customer_id, email, ROW_NUMBER() OVER (PARTITION BY transaction_id, line_no, status ORDER BY _file DESC, _line DESC) AS copy_rank FROM {t}"
            ),
            "NOT late AND status <> 'cancelled'",
            "late",
            "NOT late AND status = 'cancelled'",
            "source_customer_id IS NULL AND normalize_email(email) IS NULL",
        ),
        ContractSchema::Communications => buckets(
            format!(
                "SELECT CAST(event_ts AS DATE) > {d} AS late, ROW_NUMBER() OVER (PARTITION BY event_id ORDER BY _file, _line) AS copy_rank FROM {t}"
            ),
            "NOT late",
            "late",
            "FALSE",
            "FALSE",
        ),
        ContractSchema::Suppressions => buckets(
            format!("SELECT CAST(requested_at AS DATE) > {d} AS late, 1 AS copy_rank FROM {t}"),
            "NOT late",
            "late",
            "FALSE",
            "FALSE",
        ),
        // Reference tables are read whole; a repeated key is deduplicated in SQL.
        ContractSchema::RfmSegments => buckets(
            format!("SELECT FALSE AS late, 1 AS copy_rank FROM {t}"),
            "NOT late",
            "late",
            "FALSE",
            "FALSE",
        ),
        ContractSchema::FxRates => buckets(
            format!(
                "SELECT FALSE AS late, ROW_NUMBER() OVER (PARTITION BY currency ORDER BY _file DESC, _line DESC) AS copy_rank FROM {t}"
            ),
            "NOT late",
            "late",
            "FALSE",
            "FALSE",
        ),
    }
}

/// Accounts for one staged source; `typed_rows` and `rejected_rows` are the
/// footer counts of its staged files.
pub(super) async fn account(
    ctx: &SessionContext,
    spec: &SourceSpec,
    report: &SourceReport,
    typed_rows: u64,
    rejected_rows: u64,
    date: NaiveDate,
) -> Result<RowAccounting, RunError> {
    let mismatch = |detail: String| RunError::Accounting {
        name: spec.name.clone(),
        detail,
    };
    let sql = classification(spec.schema, &spec.name, date);
    let batches = ctx
        .sql(&sql)
        .await
        .map_err(|source| RunError::Query {
            what: format!("row accounting of {}", spec.name),
            source,
        })?
        .collect()
        .await
        .map_err(|source| RunError::Query {
            what: format!("row accounting of {}", spec.name),
            source,
        })?;
    let value = |column: &str| -> u64 {
        batches
            .first()
            .and_then(|b| b.column_by_name(column))
            .and_then(|c| c.as_primitive_opt::<Int64Type>().map(|a| a.value(0)))
            .and_then(|v| u64::try_from(v).ok())
            .unwrap_or(0)
    };
    let mut filtered = BTreeMap::new();
    for reason in ["after_date", "cancelled"] {
        let n = value(reason);
        if n > 0 {
            filtered.insert(reason.to_string(), n);
        }
    }
    let accounting = RowAccounting {
        extract: spec.name.clone(),
        read: report.rows_read,
        accepted: report.rows_accepted,
        rejected: report.rows_rejected,
        kept: value("kept"),
        deduplicated: value("deduplicated"),
        filtered,
        unattributed: value("unattributed"),
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
    let total = value("total");
    let classified = a.kept + a.deduplicated + a.filtered.values().sum::<u64>();
    if total != a.accepted || classified != total {
        return Err(mismatch(format!(
            "{} accepted, {total} in the staged table, {classified} classified ({} kept + {} deduplicated + {:?} filtered)",
            a.accepted, a.kept, a.deduplicated, a.filtered
        )));
    }
    Ok(accounting)
}
