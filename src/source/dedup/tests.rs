//! Deduplication and accounting worked by hand, each case through both the
//! two-pass grouping of this process and one group query over every copy.

use super::*;
use crate::job::ContractSchema;
use crate::source::LINE_COLUMN;
use datafusion::arrow::array::{
    ArrayRef, AsArray, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Int64Type, Schema, TimeUnit};
use datafusion::catalog::MemTable;

/// The timestamp columns of the dedup rules, typed as sources hold them.
const STAMPS: [&str; 4] = ["updated_at", "order_ts", "event_ts", "requested_at"];

/// Table `name` of text columns, registered on `ctx`; `_line` is a BIGINT and
/// the timestamps (`2026-01-02T00:00:00`, UTC) are microseconds, UTC.
fn register(ctx: &SessionContext, name: &str, columns: &[(&str, Vec<Option<&str>>)]) {
    let utc = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
    let fields: Vec<Field> = columns
        .iter()
        .map(|(c, _)| {
            let ty = match *c {
                LINE_COLUMN => DataType::Int64,
                c if STAMPS.contains(&c) => utc.clone(),
                _ => DataType::Utf8,
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
            } else if STAMPS.contains(c) {
                let micros = values.iter().map(|v| {
                    let stamp =
                        v.map(|t| crate::source::typing::parse_timestamp_micros(&format!("{t}Z")));
                    stamp.map(|m| m.expect("an RFC 3339 timestamp"))
                });
                Arc::new(TimestampMicrosecondArray::from_iter(micros).with_timezone("UTC"))
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

/// What deduplicating table `t` (its files numbered by `files`, logical
/// date 3 Jan) gives: total, kept, deduplicated, after_date, cancelled,
/// unattributed; and the (`_file`, `_line`) of each row of `t_deduped`.
async fn dedup(
    ctx: &SessionContext,
    schema: ContractSchema,
    files: &[&str],
) -> (Vec<u64>, Vec<(String, i64)>) {
    let store: Arc<dyn ObjectStore> = Arc::new(object_store::memory::InMemory::new());
    let url = datafusion::execution::object_store::ObjectStoreUrl::parse("memory://").unwrap();
    ctx.register_object_store(url.as_ref(), store.clone());
    let at = DuplicatesAt {
        store: &store,
        store_url: url.as_str(),
        dir: Path::from("duplicates/t"),
    };
    let files: Vec<String> = files.iter().map(|f| f.to_string()).collect();
    let (order, names) = file_order(&files).unwrap();
    ctx.register_table("f", order).unwrap();
    let date = NaiveDate::from_ymd_opt(2026, 1, 3).unwrap();
    let rule = schema.dedup_rule();
    // The two-pass grouping of this process, checked against one group
    // query over every copy (a cluster's): the same tally and duplicates.
    let one_pass = DuplicatesAt {
        dir: Path::from("duplicates/one_pass"),
        ..at
    };
    let (expected, expected_written) = group(ctx, &rule, "t", ("f", &names), date, &one_pass, None)
        .await
        .unwrap();
    let (tally, written) = group(ctx, &rule, "t", ("f", &names), date, &at, Some(1))
        .await
        .unwrap();
    assert_eq!(tally, expected);
    let mut copies = Vec::new();
    for file in [&expected_written, &written] {
        copies.push(match file {
            None => Vec::new(),
            Some(file) => {
                let name = "written";
                let path = std::slice::from_ref(&file.path);
                crate::engine::register_staged_files(ctx, name, at.store_url, path)
                    .await
                    .unwrap();
                let sql = "SELECT _file, _line FROM written ORDER BY _file, _line";
                let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
                ctx.deregister_table(name).unwrap();
                batches
            }
        });
    }
    assert_eq!(copies[0], copies[1]);
    let duplicates = written.map(|file| file.path);
    if let Some(path) = &duplicates {
        crate::engine::register_staged_files(ctx, "d", at.store_url, std::slice::from_ref(path))
            .await
            .unwrap();
    }
    let mut rows = Vec::new();
    if !rule.key.is_empty() {
        let d = duplicates.as_ref().map(|_| "d");
        register_deduped(ctx, &rule, "t", d, date).await.unwrap();
        let sql = "SELECT _file, _line FROM t_deduped ORDER BY _file, _line";
        for batch in ctx.sql(sql).await.unwrap().collect().await.unwrap() {
            let file = batch.column(0).as_string::<i32>();
            let line = batch.column(1).as_primitive::<Int64Type>();
            for i in 0..batch.num_rows() {
                rows.push((file.value(i).to_string(), line.value(i)));
            }
        }
    }
    for table in ["f", "t", "d", "t_deduped"] {
        ctx.deregister_table(table).unwrap();
    }
    let t = tally;
    let counts = vec![
        t.total,
        t.kept,
        t.total - t.groups,
        t.after_date,
        t.cancelled,
        t.unattributed,
    ];
    (counts, rows)
}

/// Table `t` of five profile versions: crm C1 three times, then C2 twice.
fn register_profiles(
    ctx: &SessionContext,
    updated_at: [&str; 5],
    files: [&str; 5],
    lines: [&str; 5],
) {
    let ids = ["C1", "C1", "C1", "C2", "C2"];
    fn some(values: [&str; 5]) -> Vec<Option<&str>> {
        values.map(Some).to_vec()
    }
    register(
        ctx,
        "t",
        &[
            ("source_system", vec![Some("crm"); 5]),
            ("source_customer_id", some(ids)),
            ("updated_at", some(updated_at)),
            ("_file", some(files)),
            ("_line", some(lines)),
        ],
    );
}

fn at(file: &str, line: i64) -> (String, i64) {
    (file.to_string(), line)
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
    let (counts, rows) = dedup(&ctx, ContractSchema::Transactions, &[DAY2B, DAY1, DAY2]).await;
    // kept: T2 and T4 (unattributed, still kept); deduplicated: T1 once, T2 twice.
    assert_eq!(counts, vec![7, 2, 3, 1, 1, 1]);
    // The winners, whatever their dates or status: T3 (day 1 line 5), T1
    // (day 2 line 3), T4 (day 2 line 6), T2 (b.csv line 10).
    let winners = vec![at(DAY1, 5), at(DAY2, 3), at(DAY2, 6), at(DAY2B, 10)];
    assert_eq!(rows, winners);
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
    let (counts, rows) = dedup(&ctx, ContractSchema::Communications, &[DAY1, DAY2]).await;
    assert_eq!(counts, vec![3, 2, 1, 0, 0, 0]);
    assert_eq!(rows, vec![at(DAY1, 1), at(DAY2, 2)]);

    // C1: versions of 1 and 2 Jan (the 2 Jan one wins, the other is deduplicated)
    // and one of 6 Jan, not known yet: filtered on its own, not a duplicate.
    // C2: two versions of the same instant: the later file wins the tie.
    let updated_at = [
        "2026-01-02T00:00:00",
        "2026-01-01T00:00:00",
        "2026-01-06T00:00:00",
        "2026-01-02T00:00:00",
        "2026-01-02T00:00:00",
    ];
    let files = [DAY1, DAY2, DAY2, DAY2, DAY1];
    register_profiles(&ctx, updated_at, files, ["1", "1", "2", "3", "9"]);
    let (counts, rows) = dedup(&ctx, ContractSchema::Profiles, &[DAY1, DAY2]).await;
    assert_eq!(counts, vec![5, 2, 2, 1, 0, 0]);
    // C1's 2 Jan version, its 6 Jan one standing alone, C2's day-2 copy.
    assert_eq!(rows, vec![at(DAY1, 1), at(DAY2, 2), at(DAY2, 3)]);
}

#[tokio::test]
async fn every_suppression_counts_on_its_own() {
    let ctx = SessionContext::new();
    register(
        &ctx,
        "t",
        &[
            ("email", vec![Some("a@example.com"), Some("a@example.com")]),
            (
                "requested_at",
                vec![Some("2026-01-01T00:00:00"), Some("2026-01-04T00:00:00")],
            ),
            ("_file", vec![Some(DAY1), Some(DAY1)]),
            ("_line", vec![Some("1"), Some("2")]),
        ],
    );
    let (counts, rows) = dedup(&ctx, ContractSchema::Suppressions, &[DAY1]).await;
    assert_eq!(counts, vec![2, 1, 0, 1, 0, 0]);
    assert!(rows.is_empty());
}

#[tokio::test]
async fn a_copy_is_dated_after_the_date_from_the_next_midnight_utc() {
    let ctx = SessionContext::new();
    // The last microsecond of 3 Jan (the date), and midnight starting 4 Jan.
    register(
        &ctx,
        "t",
        &[
            ("email", vec![Some("a@example.com"); 2]),
            (
                "requested_at",
                vec![
                    Some("2026-01-03T23:59:59.999999"),
                    Some("2026-01-04T00:00:00"),
                ],
            ),
            ("_file", vec![Some(DAY1); 2]),
            ("_line", vec![Some("1"), Some("2")]),
        ],
    );
    let (counts, _) = dedup(&ctx, ContractSchema::Suppressions, &[DAY1]).await;
    // total, kept, deduplicated, after_date, cancelled, unattributed
    assert_eq!(counts, vec![2, 1, 0, 1, 0, 0]);
}

#[tokio::test]
async fn the_newest_profile_wins_across_the_epoch_and_the_first_year() {
    let ctx = SessionContext::new();
    // C1: the newest version (1 Jan 1970) is in the earliest file, before one
    // of the last microsecond of 1969 and one of year 1. C2: year 1 against
    // nothing newer, in the later file.
    let updated_at = [
        "1970-01-01T00:00:00",
        "1969-12-31T23:59:59.999999",
        "0001-01-01T00:00:00",
        "0001-01-01T00:00:00",
        "0001-01-01T00:00:00",
    ];
    let files = [DAY1, DAY2, DAY2B, DAY1, DAY2];
    register_profiles(&ctx, updated_at, files, ["1", "1", "1", "2", "2"]);
    let (counts, rows) = dedup(&ctx, ContractSchema::Profiles, &[DAY1, DAY2, DAY2B]).await;
    assert_eq!(counts, vec![5, 2, 3, 0, 0, 0]);
    assert_eq!(rows, vec![at(DAY1, 1), at(DAY2, 2)]);
}
