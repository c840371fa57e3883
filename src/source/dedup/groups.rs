//! The group stream of one source: its copies grouped per key by the
//! schema's rule, counted into a [`Tally`], and the duplicated keys written
//! with their winning copy's `_file` and `_line` (see the parent module).

use std::sync::Arc;

use chrono::NaiveDate;
use datafusion::arrow::array::{
    ArrayRef, AsArray, BooleanArray, Int64Array, RecordBatch, StringArray, UInt32Array,
};
use datafusion::arrow::compute::take;
use datafusion::arrow::datatypes::{DataType, Field, Int64Type, Schema, SchemaRef};
use datafusion::catalog::TableProvider;
use datafusion::common::DFSchema;
use datafusion::common::hash_utils::{RandomState, create_hashes};
use datafusion::datasource::ViewTable;
use datafusion::error::DataFusionError;
use datafusion::execution::memory_pool::{MemoryConsumer, MemoryReservation};
use datafusion::logical_expr::{
    ColumnarValue, EmptyRelation, LogicalPlan, LogicalPlanBuilder, ScalarFunctionArgs, ScalarUDF,
    ScalarUDFImpl, Signature, Volatility,
};
use datafusion::prelude::SessionContext;
use datafusion::prelude::{col, lit};
use futures::StreamExt;
use hashbrown::HashSet;

use super::DuplicatesAt;
use crate::engine::sql_ident as ident;
use crate::job::{Compression, DedupRule, FileLayout, Winner};
use crate::outputs::{self, ParquetFileWriter, WrittenFile};
use crate::source::StagingError;
use crate::source::{FILE_COLUMN, LINE_COLUMN};

/// Columns of the file-order table the group query joins.
const FILE_ORD: &str = "_file_ord";
/// Copies of a group, and its winner: `place * 8 + flags` of the winning copy.
const COPIES: &str = "_copies";
const WINNER: &str = "_winner";
/// A copy's flags in the first pass of [`group`].
const FLAGS: &str = "_flags";
/// The UDF of the second pass of [`group`] ([`SharedKey`]).
const SHARED_KEY: &str = "_c360_shared_key";

/// `(_file, _file_ord)`: each file of `files` numbered in `_file` order (byte
/// order, as SQL compares strings), so a copy's place in the extract is one
/// integer, `_file_ord * 2^32 + _line`, instead of a string and a line (exact
/// while files have fewer than 2^32 lines and extracts fewer than 2^28 files, the
/// room `place * 8 + flags` leaves in a BIGINT). Returns the table and the
/// sorted file names. The table is a view over `VALUES`, so the plan that joins
/// it can be sent to a Ballista cluster (an in-memory table cannot).
pub(super) fn file_order(
    files: &[String],
) -> Result<(Arc<dyn TableProvider>, StringArray), DataFusionError> {
    let mut sorted: Vec<&str> = files.iter().map(String::as_str).collect();
    sorted.sort_unstable();
    sorted.dedup();
    let names = StringArray::from(sorted.clone());
    let plan = if sorted.is_empty() {
        let schema = Schema::new(vec![
            Field::new(FILE_COLUMN, DataType::Utf8, false),
            Field::new(FILE_ORD, DataType::Int64, false),
        ]);
        LogicalPlan::EmptyRelation(EmptyRelation {
            produce_one_row: false,
            schema: Arc::new(DFSchema::try_from(schema)?),
        })
    } else {
        let rows = (sorted.iter().enumerate())
            .map(|(ord, file)| vec![lit(*file), lit(ord as i64)])
            .collect();
        LogicalPlanBuilder::values(rows)?
            .project(vec![
                col("column1").alias(FILE_COLUMN),
                col("column2").alias(FILE_ORD),
            ])?
            .build()?
    };
    Ok((Arc::new(ViewTable::new(plan, None)), names))
}

/// `CAST(<qualifier><date column> AS DATE) > date`: the copy is dated after the
/// logical date (`FALSE` for a source without dates).
pub(super) fn late(rule: &DedupRule, qualifier: &str, date: NaiveDate) -> String {
    match rule.date {
        Some(column) => format!("CAST({qualifier}{} AS DATE) > DATE '{date}'", ident(column)),
        None => "FALSE".to_string(),
    }
}

/// A copy's flags: 4 = dated after the date, 2 = cancelled, 1 = unattributed.
fn flags(rule: &DedupRule, date: NaiveDate) -> String {
    format!(
        "CASE WHEN {late} THEN 4 ELSE 0 END \
         + CASE WHEN COALESCE({c}, FALSE) THEN 2 ELSE 0 END \
         + CASE WHEN COALESCE({u}, FALSE) THEN 1 ELSE 0 END",
        late = late(rule, "", date),
        c = rule.cancelled,
        u = rule.unattributed
    )
}

/// The group query of `rule` over table `t`, whose files are numbered by table
/// `files` ([`file_order`]): one row per key with its key columns, `_copies` and
/// `_winner` (the winning copy's `place * 8 + flags`, where the flags are 4 =
/// dated after the date, 2 = cancelled, 1 = unattributed). A source without a
/// key yields one row per row.
///
/// Where the winner is the last (or first) copy, the flags ride in the low bits
/// of the copy's place, `MAX(place * 8 + flags)`, a plain integer aggregate;
/// profiles, whose winner is the newest `updated_at` first, take
/// `last_value(place * 8 + flags ORDER BY updated_at, place)`.
fn group_query(
    rule: &DedupRule,
    table: &str,
    files: &str,
    date: NaiveDate,
    filter: Option<&str>,
) -> String {
    let (t, f) = (ident(table), ident(files));
    let late = late(rule, "", date);
    let flags = flags(rule, date);
    if rule.key.is_empty() {
        return format!("SELECT CAST(1 AS BIGINT) AS {COPIES}, {flags} AS {WINNER} FROM {t}");
    }
    let place = format!("{f}.{FILE_ORD} * 4294967296 + {t}.{LINE_COLUMN}");
    let key: Vec<String> = rule
        .key
        .iter()
        .map(|c| format!("{t}.{}", ident(c)))
        .collect();
    let mut group_by = key.clone();
    if rule.late_stands_alone {
        group_by.push(late.clone());
        group_by.push(format!("CASE WHEN {late} THEN {place} END"));
    }
    let winner = match rule.winner {
        Winner::Last => format!("MAX(({place}) * 8 + {flags})"),
        Winner::First => format!("MIN(({place}) * 8 + {flags})"),
        Winner::NewestThenLast(column) => {
            format!(
                "last_value(({place}) * 8 + {flags} ORDER BY {}, {place})",
                ident(column)
            )
        }
    };
    let filter = filter.map(|f| format!(" WHERE {f}")).unwrap_or_default();
    format!(
        "SELECT {key}, COUNT(*) AS {COPIES}, {winner} AS {WINNER} \
         FROM {t} JOIN {f} ON {f}.{FILE_COLUMN} = {t}.{FILE_COLUMN}{filter} GROUP BY {group_by}",
        key = key.join(", "),
        group_by = group_by.join(", "),
    )
}

/// The counts of the groups.
#[derive(Debug, Default, PartialEq)]
pub(super) struct Tally {
    /// Rows over all groups.
    pub total: u64,
    pub groups: u64,
    pub kept: u64,
    pub after_date: u64,
    pub cancelled: u64,
    pub unattributed: u64,
}

impl Tally {
    /// Counts one group of `copies` whose winner has `flags` (its low 3 bits).
    fn count(&mut self, copies: i64, flags: i64) {
        self.total += copies as u64;
        self.groups += 1;
        match flags & 7 {
            f if f & 4 == 4 => self.after_date += 1,
            f if f & 2 == 2 => self.cancelled += 1,
            f => {
                self.kept += 1;
                self.unattributed += u64::from(f == 1);
            }
        }
    }

    /// Counts one batch of groups; returns the rows of keys with copies.
    fn add(&mut self, copies: &Int64Array, winners: &Int64Array) -> Vec<u32> {
        let mut duplicated = Vec::new();
        for (row, (copies, winner)) in copies.values().iter().zip(winners.values()).enumerate() {
            self.count(*copies, *winner);
            if *copies > 1 {
                duplicated.push(row as u32);
            }
        }
        duplicated
    }
}

/// The duplicated keys of one batch of groups, with their winner's file and line.
fn duplicates_batch(
    groups: &RecordBatch,
    rows: &[u32],
    key: &[&str],
    files: &StringArray,
    schema: &SchemaRef,
) -> Result<RecordBatch, DataFusionError> {
    let indices = UInt32Array::from(rows.to_vec());
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(key.len() + 2);
    for column in key {
        let values = groups
            .column_by_name(column)
            .ok_or_else(|| DataFusionError::Internal(format!("group query lost `{column}`")))?;
        columns.push(take(values, &indices, None)?);
    }
    let winners = column_i64(groups, WINNER)?;
    let places = rows.iter().map(|&r| winners.value(r as usize) >> 3);
    let file_of = |place: i64| u32::try_from(place >> 32).unwrap_or(u32::MAX);
    let file_rows = UInt32Array::from_iter_values(places.clone().map(file_of));
    columns.push(take(files, &file_rows, None)?);
    columns.push(Arc::new(Int64Array::from_iter_values(
        places.map(|p| p & 0xFFFF_FFFF),
    )));
    Ok(RecordBatch::try_new(schema.clone(), columns)?)
}

fn column_i64<'a>(batch: &'a RecordBatch, name: &str) -> Result<&'a Int64Array, DataFusionError> {
    batch
        .column_by_name(name)
        .and_then(|c| c.as_primitive_opt::<Int64Type>())
        .ok_or_else(|| DataFusionError::Internal(format!("group query lost `{name}`")))
}

/// Runs the group query of `rule` over `table` (files numbered by `files`,
/// registered): the tally, and the duplicates written to `at`.
///
/// Nearly every key has one copy, so in this process (`local`: the number of
/// rows in `table`, `None` on a cluster) a keyed source is grouped in two passes ([`hash_pass`]): the first hashes every copy's key
/// and tallies each copy whose key hash no other copy shares (a group of its
/// own, won by itself); the second runs the group query over the copies whose
/// hash is shared (the duplicates, and any copies whose keys merely collide),
/// which [`SharedKey`] picks out by the same hash. Where the pool has no room
/// for the hashes, and on a cluster (whose executors cannot see them), the
/// group query runs over every copy.
pub(super) async fn group(
    ctx: &SessionContext,
    rule: &DedupRule,
    table: &str,
    files: (&str, &StringArray),
    date: NaiveDate,
    at: &DuplicatesAt<'_>,
    local: Option<u64>,
) -> Result<(Tally, Option<WrittenFile>), StagingError> {
    let query_err = |source| StagingError::Query {
        what: format!("deduplication of {table}"),
        source,
    };
    let mut tally = Tally::default();
    let shared = match local {
        Some(rows) if !rule.key.is_empty() => hash_pass(ctx, rule, (table, rows), date, &mut tally)
            .await
            .map_err(query_err)?,
        _ => None,
    };
    let filter = match shared {
        Some((shared, _)) if shared.is_empty() => return Ok((tally, None)),
        Some((shared, reservation)) => {
            let udf = SharedKey::new(shared, reservation);
            ctx.register_udf(ScalarUDF::new_from_impl(udf));
            let key: Vec<String> = (rule.key.iter())
                .map(|c| format!("{}.{}", ident(table), ident(c)))
                .collect();
            let mut filter = format!("{SHARED_KEY}({})", key.join(", "));
            if rule.late_stands_alone {
                // Tallied by the first pass, each on its own.
                filter.push_str(&format!(
                    " AND NOT COALESCE({}, FALSE)",
                    late(rule, "", date)
                ));
            }
            Some(filter)
        }
        None => {
            tally = Tally::default();
            None
        }
    };
    let sql = group_query(rule, table, files.0, date, filter.as_deref());
    let written = group_stream(ctx, rule, (table, &sql), files.1, at, &mut tally).await;
    if filter.is_some() {
        ctx.deregister_udf(SHARED_KEY);
    }
    Ok((tally, written?))
}

/// The hash of each row's key in `key` (the same in both passes of [`group`]),
/// its low 3 bits cleared to carry the copy's flags.
fn key_hashes(key: &[ArrayRef], rows: usize, out: &mut Vec<u64>) -> Result<(), DataFusionError> {
    out.clear();
    out.resize(rows, 0);
    create_hashes(key, &RandomState::with_seed(0), out)?;
    out.iter_mut().for_each(|h| *h &= !7);
    Ok(())
}

/// The first pass of [`group`]: hashes every copy's key into a vector (8
/// bytes a copy, `rows` of them, reserved in the memory pool), sorts it,
/// tallies the copies whose hash is theirs alone and returns the hashes more
/// than one copy shares, with their reservation; `None` when the pool has no
/// room. A copy dated after the date that stands alone (`late_stands_alone`)
/// is tallied on its own, unhashed.
async fn hash_pass(
    ctx: &SessionContext,
    rule: &DedupRule,
    (table, rows): (&str, u64),
    date: NaiveDate,
    tally: &mut Tally,
) -> Result<Option<(HashSet<u64>, MemoryReservation)>, DataFusionError> {
    let t = ident(table);
    let key: Vec<String> = (rule.key.iter())
        .map(|c| format!("{t}.{}", ident(c)))
        .collect();
    let sql = format!(
        "SELECT {}, CAST({} AS BIGINT) AS {FLAGS} FROM {t}",
        key.join(", "),
        flags(rule, date)
    );
    let (_, mut stream) = crate::engine::execute(ctx.sql(&sql).await?).await?;
    let pool = &ctx.runtime_env().memory_pool;
    let reservation = MemoryConsumer::new("deduplication key hashes").register(pool);
    let mut hashes: Vec<u64> = Vec::new();
    let mut batch_hashes = Vec::new();
    while let Some(batch) = stream.next().await {
        let batch = batch?;
        let needed = hashes.len() + batch.num_rows();
        if needed > hashes.capacity() {
            // The table's rows at first; more (a count that was off) doubles.
            let rows = usize::try_from(rows).unwrap_or(usize::MAX);
            let grown = needed.max(hashes.capacity() * 2).max(rows);
            let bytes = (grown - hashes.capacity()) * std::mem::size_of::<u64>();
            if reservation.try_grow(bytes).is_err() {
                tracing::info!(
                    table,
                    copies = needed,
                    "no room for the key hashes: one group pass"
                );
                return Ok(None);
            }
            hashes.reserve_exact(grown - hashes.len());
        }
        key_hashes(
            &batch.columns()[..key.len()],
            batch.num_rows(),
            &mut batch_hashes,
        )?;
        let flags = column_i64(&batch, FLAGS)?;
        for (hash, flags) in batch_hashes.iter().zip(flags.values()) {
            if rule.late_stands_alone && flags & 4 == 4 {
                tally.count(1, *flags);
            } else {
                hashes.push(hash | (flags & 7) as u64);
            }
        }
    }
    hashes.sort_unstable();
    let mut shared = HashSet::new();
    for run in hashes.chunk_by(|a, b| a & !7 == b & !7) {
        match run {
            [one] => tally.count(1, (one & 7) as i64),
            _ => {
                shared.insert(run[0] & !7);
            }
        }
    }
    let hashed = hashes.len();
    drop(hashes);
    // The set lives as long as the second pass: a word and a control byte a slot.
    let set_bytes = shared.capacity() * (std::mem::size_of::<u64>() + 1);
    if reservation.try_resize(set_bytes).is_err() {
        tracing::info!(table, "no room for the shared key hashes: one group pass");
        return Ok(None);
    }
    tracing::info!(
        table,
        hashed,
        shared_keys = shared.len(),
        "deduplication: copies whose key no other copy shares tallied"
    );
    Ok(Some((shared, reservation)))
}

/// `_c360_shared_key(key columns...)`: whether a row's key hash is one the
/// first pass of [`group`] found shared by more than one copy.
#[derive(Debug)]
struct SharedKey {
    hashes: Arc<HashSet<u64>>,
    signature: Signature,
    /// The set's memory in the pool, released with the UDF.
    _reservation: MemoryReservation,
}

impl SharedKey {
    fn new(hashes: HashSet<u64>, reservation: MemoryReservation) -> Self {
        Self {
            hashes: Arc::new(hashes),
            signature: Signature::variadic_any(Volatility::Immutable),
            _reservation: reservation,
        }
    }
}

impl PartialEq for SharedKey {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.hashes, &other.hashes)
    }
}

impl Eq for SharedKey {}

impl std::hash::Hash for SharedKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        Arc::as_ptr(&self.hashes).hash(state);
    }
}

impl ScalarUDFImpl for SharedKey {
    fn name(&self) -> &str {
        SHARED_KEY
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType, DataFusionError> {
        Ok(DataType::Boolean)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue, DataFusionError> {
        let rows = args.number_rows;
        let key = (args.args.iter())
            .map(|a| a.to_array(rows))
            .collect::<Result<Vec<_>, _>>()?;
        let mut hashes = Vec::new();
        key_hashes(&key, rows, &mut hashes)?;
        let shared: BooleanArray = hashes
            .iter()
            .map(|h| Some(self.hashes.contains(h)))
            .collect();
        Ok(ColumnarValue::Array(Arc::new(shared)))
    }
}

/// Streams the groups of `sql` (a [`group_query`] over `table`) into `tally`,
/// and writes the duplicated keys with their winner's file and line to `at`.
async fn group_stream(
    ctx: &SessionContext,
    rule: &DedupRule,
    (table, sql): (&str, &str),
    files: &StringArray,
    at: &DuplicatesAt<'_>,
    tally: &mut Tally,
) -> Result<Option<WrittenFile>, StagingError> {
    let query_err = |source| StagingError::Query {
        what: format!("deduplication of {table}"),
        source,
    };
    let frame = ctx.sql(sql).await.map_err(query_err)?;
    let (_, mut stream) = crate::engine::execute(frame).await.map_err(query_err)?;
    let groups_schema = stream.schema();
    let mut fields: Vec<Field> = Vec::new();
    for column in rule.key {
        let field = groups_schema
            .field_with_name(column)
            .map_err(|e| query_err(e.into()))?;
        fields.push(field.clone());
    }
    fields.push(Field::new(FILE_COLUMN, DataType::Utf8, false));
    fields.push(Field::new(LINE_COLUMN, DataType::Int64, false));
    let schema: SchemaRef = Arc::new(Schema::new(fields));
    let mut writer: Option<ParquetFileWriter> = None;
    while let Some(batch) = stream.next().await {
        let batch = batch.map_err(query_err)?;
        let copies = column_i64(&batch, COPIES).map_err(query_err)?;
        let winners = column_i64(&batch, WINNER).map_err(query_err)?;
        let duplicated = tally.add(copies, winners);
        if duplicated.is_empty() {
            continue;
        }
        let dups =
            duplicates_batch(&batch, &duplicated, rule.key, files, &schema).map_err(query_err)?;
        let writer = match &mut writer {
            Some(w) => w,
            None => writer.insert(ParquetFileWriter::create(
                at.store.clone(),
                at.dir.clone().join(outputs::part_name(0)),
                schema.clone(),
                Compression::Snappy,
                &FileLayout::staging(),
            )?),
        };
        writer.write(&dups).await?;
    }
    Ok(match writer {
        Some(w) => Some(w.finish().await?),
        None => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::ContractSchema;
    use datafusion::execution::memory_pool::GreedyMemoryPool;
    use datafusion::execution::runtime_env::RuntimeEnvBuilder;
    use datafusion::prelude::SessionConfig;

    /// Events E1, E2, E1, E3: E1's hash is shared, E2's and E3's are not.
    fn events(pool_bytes: usize) -> SessionContext {
        let runtime = RuntimeEnvBuilder::new()
            .with_memory_pool(Arc::new(GreedyMemoryPool::new(pool_bytes)))
            .build_arc()
            .unwrap();
        let ctx = SessionContext::new_with_config_rt(SessionConfig::new(), runtime);
        let ids = StringArray::from(vec!["E1", "E2", "E1", "E3"]);
        let ts = StringArray::from(vec!["2026-01-01T00:00:00"; 4]);
        let batch = RecordBatch::try_from_iter([
            ("event_id", Arc::new(ids) as ArrayRef),
            ("event_ts", Arc::new(ts) as ArrayRef),
        ])
        .unwrap();
        ctx.register_batch("t", batch).unwrap();
        ctx
    }

    #[tokio::test]
    async fn the_first_pass_tallies_unshared_keys_and_needs_room_for_the_hashes() {
        let rule = ContractSchema::Communications.dedup_rule();
        let date = NaiveDate::from_ymd_opt(2026, 1, 3).unwrap();
        let ctx = events(1 << 20);
        let mut tally = Tally::default();
        let shared = hash_pass(&ctx, &rule, ("t", 4), date, &mut tally)
            .await
            .unwrap();
        let (shared, reservation) = shared.expect("room for 4 hashes");
        assert_eq!(shared.len(), 1);
        // What stays reserved is the set's, not the hashes'.
        assert_eq!(reservation.size(), shared.capacity() * 9);
        // E2 and E3: one copy each, kept.
        let alone = Tally {
            total: 2,
            groups: 2,
            kept: 2,
            ..Tally::default()
        };
        assert_eq!(tally, alone);

        // 16 bytes hold two hashes, not four: the caller groups in one pass.
        let ctx = events(16);
        let mut tally = Tally::default();
        let shared = hash_pass(&ctx, &rule, ("t", 4), date, &mut tally)
            .await
            .unwrap();
        assert!(shared.is_none());
    }
}
