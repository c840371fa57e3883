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

/// How one contract schema's copies collapse: the key a copy competes under and
/// the order in which the winner is the *last* copy (DATA_CONTRACT.md, Duplicates;
/// the same rules as `sql/*_current.sql`, `order_lines.sql` and
/// `communications_clean.sql`).
struct DedupRule {
    /// Columns of the key; empty: every row stands alone (reference tables read
    /// whole, suppressions).
    key: &'static str,
    /// `ORDER BY` of `last_value`: the winner sorts last.
    winner_last: &'static str,
    /// The row's date column (cast to DATE and compared with the logical date);
    /// `None`: the source has no date.
    date: Option<&'static str>,
    /// Late rows are not yet known, so they neither win nor lose: each is its
    /// own group (profiles); otherwise the winner's date decides.
    late_stands_alone: bool,
    /// Winner is filtered as cancelled.
    cancelled: &'static str,
    /// Winner is kept but attributed to no one.
    unattributed: &'static str,
}

fn dedup_rule(schema: ContractSchema) -> DedupRule {
    let alone = |date| DedupRule {
        key: "",
        winner_last: "",
        date,
        late_stands_alone: false,
        cancelled: "FALSE",
        unattributed: "FALSE",
    };
    match schema {
        ContractSchema::Profiles => DedupRule {
            key: "source_system, source_customer_id",
            winner_last: "updated_at, _file, _line",
            late_stands_alone: true,
            ..alone(Some("updated_at"))
        },
        ContractSchema::Transactions => DedupRule {
            key: "transaction_id, line_no, status",
            winner_last: "_file, _line",
            cancelled: "status = 'cancelled'",
            unattributed: "source_customer_id IS NULL AND normalize_email(email) IS NULL",
            ..alone(Some("order_ts"))
        },
        // The first copy wins: the last in reverse order.
        ContractSchema::Communications => DedupRule {
            key: "event_id",
            winner_last: "_file DESC, _line DESC",
            ..alone(Some("event_ts"))
        },
        ContractSchema::FxRates => DedupRule {
            key: "currency",
            winner_last: "_file, _line",
            ..alone(None)
        },
        ContractSchema::Suppressions => alone(Some("requested_at")),
        ContractSchema::RfmSegments => alone(None),
    }
}

/// The classification query of one contract schema over table `t`: columns
/// `total, kept, deduplicated, after_date, cancelled, unattributed`.
///
/// One hash aggregation per key (which spills) rather than a sort and a
/// ROW_NUMBER window over every row: each group yields its copy count and the
/// winner's flags, taken with `last_value(... ORDER BY ...)`.
fn classification(schema: ContractSchema, table: &str, date: NaiveDate) -> String {
    let t = crate::checks::ident(table);
    let rule = dedup_rule(schema);
    let late = match rule.date {
        Some(column) => format!("CAST({column} AS DATE) > DATE '{date}'"),
        None => "FALSE".to_string(),
    };
    // The three facts about a copy in one small integer, so each group keeps
    // one winner value: 4 = dated after the date, 2 = cancelled, 1 = unattributed.
    let flags = format!(
        "CASE WHEN {late} THEN 4 ELSE 0 END \
         + CASE WHEN COALESCE({c}, FALSE) THEN 2 ELSE 0 END \
         + CASE WHEN COALESCE({u}, FALSE) THEN 1 ELSE 0 END",
        c = rule.cancelled,
        u = rule.unattributed
    );
    let groups = if rule.key.is_empty() {
        format!("SELECT 1 AS copies, {flags} AS flags FROM {t}")
    } else {
        let mut key = rule.key.to_string();
        if rule.late_stands_alone {
            key.push_str(&format!(
                ", {late}, CASE WHEN {late} THEN _file END, CASE WHEN {late} THEN _line END"
            ));
        }
        let order = rule.winner_last;
        format!(
            "SELECT COUNT(*) AS copies, last_value({flags} ORDER BY {order}) AS flags \
             FROM {t} GROUP BY {key}"
        )
    };
    format!(
        "SELECT CAST(COALESCE(SUM(copies), 0) AS BIGINT) AS total, \
     COUNT(*) FILTER (WHERE flags & 6 = 0) AS kept, \
     CAST(COALESCE(SUM(copies - 1), 0) AS BIGINT) AS deduplicated, \
     COUNT(*) FILTER (WHERE flags & 4 = 4) AS after_date, \
     COUNT(*) FILTER (WHERE flags & 6 = 2) AS cancelled, \
         COUNT(*) FILTER (WHERE flags & 7 = 1) AS unattributed \
         FROM ({groups}) g"
    )
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
