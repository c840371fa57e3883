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

use std::sync::Arc;

use chrono::NaiveDate;
use datafusion::arrow::array::{AsArray, Int64Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Int64Type, Schema};
use datafusion::catalog::MemTable;
use datafusion::error::DataFusionError;
use datafusion::prelude::SessionContext;

use super::RunError;
use crate::job::{ContractSchema, SourceSpec};
use crate::runlog::RowAccounting;
use crate::source::SourceReport;
use crate::source::{FILE_COLUMN, LINE_COLUMN};

/// Which copy of a key wins (DATA_CONTRACT.md, Duplicates).
#[derive(Clone, Copy)]
enum Winner {
    /// The copy in the latest file, and within it the later line.
    Last,
    /// The copy in the earliest file, and within it the earlier line.
    First,
    /// The copy with the newest value of this column, then the last copy.
    NewestThenLast(&'static str),
}

/// How one contract schema's copies collapse: the key a copy competes under and
/// which copy wins (the same rules as `sql/*_current.sql`, `order_lines.sql` and
/// `communications_clean.sql`).
struct DedupRule {
    /// Columns of the key; empty: every row stands alone (reference tables read
    /// whole, suppressions).
    key: &'static str,
    winner: Winner,
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
        winner: Winner::Last,
        date,
        late_stands_alone: false,
        cancelled: "FALSE",
        unattributed: "FALSE",
    };
    match schema {
        ContractSchema::Profiles => DedupRule {
            key: "source_system, source_customer_id",
            winner: Winner::NewestThenLast("updated_at"),
            late_stands_alone: true,
            ..alone(Some("updated_at"))
        },
        ContractSchema::Transactions => DedupRule {
            key: "transaction_id, line_no, status",
            cancelled: "status = 'cancelled'",
            unattributed: "source_customer_id IS NULL AND normalize_email(email) IS NULL",
            ..alone(Some("order_ts"))
        },
        ContractSchema::Communications => DedupRule {
            key: "event_id",
            winner: Winner::First,
            ..alone(Some("event_ts"))
        },
        ContractSchema::FxRates => DedupRule {
            key: "currency",
            ..alone(None)
        },
        ContractSchema::Suppressions => alone(Some("requested_at")),
        ContractSchema::RfmSegments => alone(None),
    }
}

/// Columns of the file-order table a classification query joins.
const FILE_ORD: &str = "_file_ord";

/// `(_file, _file_ord)`: each file of `files` numbered in `_file` order (byte
/// order, as SQL compares strings), so a copy's place in the extract is one
/// integer, `_file_ord * 2^32 + _line`, instead of a string and a line (exact
/// while files have fewer than 2^32 lines and extracts fewer than 2^28 files, the
/// room `place * 8 + flags` leaves in a BIGINT).
fn file_order(files: &[String]) -> Result<MemTable, DataFusionError> {
    let mut sorted: Vec<&str> = files.iter().map(String::as_str).collect();
    sorted.sort_unstable();
    sorted.dedup();
    let schema = Arc::new(Schema::new(vec![
        Field::new(FILE_COLUMN, DataType::Utf8, false),
        Field::new(FILE_ORD, DataType::Int64, false),
    ]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(StringArray::from(sorted.clone())),
            Arc::new(Int64Array::from_iter_values(0..sorted.len() as i64)),
        ],
    )?;
    MemTable::try_new(schema, vec![vec![batch]])
}

/// The classification query of one contract schema over table `t`, whose files
/// are numbered by table `files` ([`file_order`]): columns `total, kept,
/// deduplicated, after_date, cancelled, unattributed`.
///
/// One hash aggregation per key (which spills) rather than a sort and a
/// ROW_NUMBER window over every row: each group yields its copy count and the
/// winner's flags. Where the winner is the last (or first) copy, the flags ride
/// in the low bits of the copy's place, `MAX(place * 8 + flags)`, a plain
/// integer aggregate; profiles, whose winner is the newest `updated_at` first,
/// take `last_value(flags ORDER BY updated_at, place)`.
fn classification(schema: ContractSchema, table: &str, files: &str, date: NaiveDate) -> String {
    let t = crate::checks::ident(table);
    let f = crate::checks::ident(files);
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
        let place = format!("{f}.{FILE_ORD} * 4294967296 + {t}.{LINE_COLUMN}");
        let mut key = rule.key.to_string();
        if rule.late_stands_alone {
            key.push_str(&format!(", {late}, CASE WHEN {late} THEN {place} END"));
        }
        let winner = match rule.winner {
            Winner::Last => format!("MAX(({place}) * 8 + {flags}) & 7"),
            Winner::First => format!("MIN(({place}) * 8 + {flags}) & 7"),
            Winner::NewestThenLast(column) => {
                format!("last_value({flags} ORDER BY {column}, {place})")
            }
        };
        format!(
            "SELECT COUNT(*) AS copies, {winner} AS flags \
             FROM {t} JOIN {f} ON {f}.{FILE_COLUMN} = {t}.{FILE_COLUMN} GROUP BY {key}"
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
    let query_err = |source| RunError::Query {
        what: format!("row accounting of {}", spec.name),
        source,
    };
    let files = format!("_c360_file_order_{}", spec.name);
    ctx.register_table(
        files.as_str(),
        Arc::new(file_order(&report.read_files).map_err(query_err)?),
    )
    .map_err(query_err)?;
    let sql = classification(spec.schema, &spec.name, &files, date);
    let counted = async { ctx.sql(&sql).await?.collect().await }.await;
    ctx.deregister_table(files.as_str()).map_err(query_err)?;
    let batches = counted.map_err(query_err)?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::ArrayRef;

    /// Table `name` of text columns (`_line` is a BIGINT), registered on `ctx`.
    fn register(ctx: &SessionContext, name: &str, columns: &[(&str, Vec<Option<&str>>)]) {
        let fields: Vec<Field> = columns
            .iter()
            .map(|(c, _)| {
                let ty = if *c == LINE_COLUMN {
                    DataType::Int64
                } else {
                    DataType::Utf8
                };
                Field::new(*c, ty, true)
            })
            .collect();
        let arrays: Vec<ArrayRef> = columns
            .iter()
            .map(|(c, values)| -> ArrayRef {
                if *c == LINE_COLUMN {
                    Arc::new(Int64Array::from_iter(
                        values.iter().map(|v| v.map(|t| t.parse::<i64>().unwrap())),
                    ))
                } else {
                    Arc::new(StringArray::from(values.clone()))
                }
            })
            .collect();
        let schema = Arc::new(Schema::new(fields));
        let batch = RecordBatch::try_new(schema.clone(), arrays).unwrap();
        let table = MemTable::try_new(schema, vec![vec![batch]]).unwrap();
        ctx.register_table(name, Arc::new(table)).unwrap();
    }

    async fn classify(ctx: &SessionContext, schema: ContractSchema, files: &[&str]) -> Vec<i64> {
        let files: Vec<String> = files.iter().map(|f| f.to_string()).collect();
        ctx.register_table("f", Arc::new(file_order(&files).unwrap()))
            .unwrap();
        let date = NaiveDate::from_ymd_opt(2026, 1, 3).unwrap();
        let batches = ctx
            .sql(&classification(schema, "t", "f", date))
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        ctx.deregister_table("f").unwrap();
        ctx.deregister_table("t").unwrap();
        (0..6)
            .map(|i| batches[0].column(i).as_primitive::<Int64Type>().value(0))
            .collect()
    }

    const DAY1: &str = "transactions/dt=2026-01-01/a.csv";
    const DAY2: &str = "transactions/dt=2026-01-02/a.csv";
    const DAY2B: &str = "transactions/dt=2026-01-02/b.csv";

    /// Worked by hand: total, kept, deduplicated, after_date, cancelled, unattributed.
    #[tokio::test]
    async fn the_winning_copy_decides_how_a_transaction_line_counts() {
        let ctx = SessionContext::new();
        crate::udf::register_all(&ctx);
        // T1/1: day 1 dated in time, re-sent on day 2 dated 5 Jan: the day-2 copy
        // wins, so the line is late. T2/1: twice in day 2's b.csv, line 10 (in
        // time) beats line 9 (late); a.csv's copy sorts before b.csv. T3/1 is
        // cancelled; T4/1 a guest line whose email is no identifier.
        register(
            &ctx,
            "t",
            &[
                (
                    "transaction_id",
                    vec![
                        Some("T1"),
                        Some("T1"),
                        Some("T2"),
                        Some("T2"),
                        Some("T2"),
                        Some("T3"),
                        Some("T4"),
                    ],
                ),
                ("line_no", vec![Some("1"); 7]),
                (
                    "status",
                    vec![
                        Some("completed"),
                        Some("completed"),
                        Some("completed"),
                        Some("completed"),
                        Some("completed"),
                        Some("cancelled"),
                        Some("completed"),
                    ],
                ),
                (
                    "order_ts",
                    vec![
                        Some("2026-01-01T10:00:00"),
                        Some("2026-01-05T10:00:00"),
                        Some("2026-01-05T10:00:00"),
                        Some("2026-01-04T10:00:00"),
                        Some("2026-01-02T10:00:00"),
                        Some("2026-01-02T10:00:00"),
                        Some("2026-01-02T10:00:00"),
                    ],
                ),
                (
                    "source_customer_id",
                    vec![
                        Some("C1"),
                        Some("C1"),
                        Some("C2"),
                        Some("C2"),
                        Some("C2"),
                        Some("C3"),
                        None,
                    ],
                ),
                (
                    "email",
                    vec![None, None, None, None, None, None, Some("not an email")],
                ),
                (
                    "_file",
                    vec![
                        Some(DAY1),
                        Some(DAY2),
                        Some(DAY2),
                        Some(DAY2B),
                        Some(DAY2B),
                        Some(DAY1),
                        Some(DAY2),
                    ],
                ),
                (
                    "_line",
                    vec![
                        Some("2"),
                        Some("3"),
                        Some("4"),
                        Some("9"),
                        Some("10"),
                        Some("5"),
                        Some("6"),
                    ],
                ),
            ],
        );
        let counts = classify(&ctx, ContractSchema::Transactions, &[DAY2B, DAY1, DAY2]).await;
        // kept: T2 and T4 (unattributed, still kept); deduplicated: T1 once, T2 twice.
        assert_eq!(counts, vec![7, 2, 3, 1, 1, 1]);
    }

    #[tokio::test]
    async fn the_first_copy_of_an_event_wins_and_a_late_profile_stands_alone() {
        let ctx = SessionContext::new();
        // E1: a copy in day 2's file dated 5 Jan (late), one in day 1's dated 1 Jan.
        register(
            &ctx,
            "t",
            &[
                ("event_id", vec![Some("E1"), Some("E1"), Some("E2")]),
                (
                    "event_ts",
                    vec![
                        Some("2026-01-05T00:00:00"),
                        Some("2026-01-01T00:00:00"),
                        Some("2026-01-02T00:00:00"),
                    ],
                ),
                ("_file", vec![Some(DAY2), Some(DAY1), Some(DAY2)]),
                ("_line", vec![Some("1"), Some("1"), Some("2")]),
            ],
        );
        // The day-1 copy is first in file order: E1 is kept, its day-2 copy deduplicated.
        let counts = classify(&ctx, ContractSchema::Communications, &[DAY1, DAY2]).await;
        assert_eq!(counts, vec![3, 2, 1, 0, 0, 0]);

        // C1: versions of 1 and 2 Jan (the 2 Jan one wins, the other is deduplicated)
        // and one of 6 Jan, not known yet: filtered on its own, not a duplicate.
        register(
            &ctx,
            "t",
            &[
                ("source_system", vec![Some("crm"); 3]),
                ("source_customer_id", vec![Some("C1"); 3]),
                (
                    "updated_at",
                    vec![
                        Some("2026-01-02T00:00:00"),
                        Some("2026-01-01T00:00:00"),
                        Some("2026-01-06T00:00:00"),
                    ],
                ),
                ("_file", vec![Some(DAY1), Some(DAY2), Some(DAY2)]),
                ("_line", vec![Some("1"), Some("1"), Some("2")]),
            ],
        );
        let counts = classify(&ctx, ContractSchema::Profiles, &[DAY1, DAY2]).await;
        assert_eq!(counts, vec![3, 1, 1, 1, 0, 0]);
    }
}
