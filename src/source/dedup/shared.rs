//! The first pass of deduplication in this process (see [`super::groups::group`]):
//! every copy's key hashed, the copies whose hash no other copy shares counted
//! as groups of their own, and the UDF by which the second pass, the group
//! query, picks out the copies whose hash is shared. A collision only sends
//! more copies to the exact second pass.

use std::sync::Arc;

use chrono::NaiveDate;
use datafusion::arrow::array::{ArrayRef, BooleanArray};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::hash_utils::{RandomState, create_hashes};
use datafusion::error::DataFusionError;
use datafusion::execution::memory_pool::{MemoryConsumer, MemoryReservation};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};
use datafusion::prelude::SessionContext;
use futures::StreamExt;
use hashbrown::HashSet;

use super::groups::{Tally, column_i64, flags, late};
use crate::engine::sql_ident as ident;
use crate::job::DedupRule;

/// A copy's flags in the first pass.
const FLAGS: &str = "_flags";
/// The UDF of the second pass ([`SharedKey`]).
pub(super) const SHARED_KEY: &str = "_c360_shared_key";

/// The hash of each row's key in `key` (the same in both passes),
/// its low 3 bits cleared to carry the copy's flags.
fn key_hashes(key: &[ArrayRef], rows: usize, out: &mut Vec<u64>) -> Result<(), DataFusionError> {
    out.clear();
    out.resize(rows, 0);
    create_hashes(key, &RandomState::with_seed(0), out)?;
    out.iter_mut().for_each(|h| *h &= !7);
    Ok(())
}

/// What the first pass found: the tally of the copies whose key hash is theirs
/// alone, and the hashes more than one copy shares, reserved in the pool.
pub(super) struct FirstPass {
    pub tally: Tally,
    pub shared: HashSet<u64>,
    reservation: MemoryReservation,
}

impl FirstPass {
    /// The tally, and the second pass's UDF holding the shared hashes and
    /// their reservation.
    pub fn into_udf(self) -> (Tally, SharedKey) {
        let udf = SharedKey {
            hashes: Arc::new(self.shared),
            signature: Signature::variadic_any(Volatility::Immutable),
            _reservation: self.reservation,
        };
        (self.tally, udf)
    }
}

/// The second pass's filter over `table`: the copies whose key hash is shared,
/// less those the first pass tallied on their own (dated after the date,
/// where `late_stands_alone`).
pub(super) fn filter(rule: &DedupRule, table: &str, date: NaiveDate) -> String {
    let key: Vec<String> = (rule.key.iter())
        .map(|c| format!("{}.{}", ident(table), ident(c)))
        .collect();
    let mut filter = format!("{SHARED_KEY}({})", key.join(", "));
    if rule.late_stands_alone {
        filter.push_str(&format!(
            " AND NOT COALESCE({}, FALSE)",
            late(rule, "", date)
        ));
    }
    filter
}

/// The first pass: hashes every copy's key into a vector (8 bytes a copy,
/// `rows` of them, reserved in the memory pool), sorts it, tallies the copies
/// whose hash is theirs alone and keeps the hashes more than one copy shares
/// (the reservation shrinks to their set); `None` when the pool has no room.
/// A copy dated after the date that stands alone (`late_stands_alone`) is
/// tallied on its own, unhashed.
pub(super) async fn first_pass(
    ctx: &SessionContext,
    rule: &DedupRule,
    (table, rows): (&str, u64),
    date: NaiveDate,
) -> Result<Option<FirstPass>, DataFusionError> {
    let mut tally = Tally::default();
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
    Ok(Some(FirstPass {
        tally,
        shared,
        reservation,
    }))
}

/// `_c360_shared_key(key columns...)`: whether a row's key hash is one the
/// first pass found shared by more than one copy.
#[derive(Debug)]
pub(super) struct SharedKey {
    hashes: Arc<HashSet<u64>>,
    signature: Signature,
    /// The set's memory in the pool, released with the UDF.
    _reservation: MemoryReservation,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::ContractSchema;
    use datafusion::arrow::array::{RecordBatch, StringArray};
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
        let first = first_pass(&ctx, &rule, ("t", 4), date).await.unwrap();
        let first = first.expect("room for 4 hashes");
        assert_eq!(first.shared.len(), 1);
        // What stays reserved is the set's, not the hashes'.
        assert_eq!(first.reservation.size(), first.shared.capacity() * 9);
        // E2 and E3: one copy each, kept.
        let alone = Tally {
            total: 2,
            groups: 2,
            kept: 2,
            ..Tally::default()
        };
        assert_eq!(first.tally, alone);

        // 16 bytes hold two hashes, not four: the caller groups in one pass.
        let ctx = events(16);
        let first = first_pass(&ctx, &rule, ("t", 4), date).await.unwrap();
        assert!(first.is_none());
    }
}
