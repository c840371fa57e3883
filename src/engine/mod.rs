//! DataFusion session construction: one place that decides how queries run.
//!
//! Every run (and later every scheduler tick and Ballista executor) gets its
//! `SessionContext` from here, so memory limits, spilling, object stores and our
//! UDFs are set up identically everywhere. A memory pool is always set, so a run
//! is bounded by default; what cannot spill (a hash join's build side) is kept
//! small by choosing the join per step ([`set_hash_joins`]).
//!
//! `session` builds sessions (pool, settings, optimizer rules); this module
//! registers staged Parquet, runs plans and reads what they spilled and held.

mod build_side;
mod row_number;
mod session;

use std::sync::Arc;

pub use build_side::{BuildSmallerSide, row_bound};
pub use row_number::{RowNumberExec, SortedRowNumber};
pub use session::{
    DEFAULT_MEMORY_FRACTION, EngineError, EngineOptions, FULL_BATCH_POOL, HASH_JOIN_INPUT_DIVISOR,
    batch_size, default_memory_limit, hash_joins_fit, physical_optimizer_rules, runtime, session,
    session_config, session_state, set_hash_joins,
};

use datafusion::datasource::file_format::options::ReadOptions;
use datafusion::datasource::listing::{ListingTable, ListingTableConfig, ListingTableUrl};
use datafusion::error::DataFusionError;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::execution::memory_pool::{MemoryConsumer, MemoryReservation, PeakRecordingPool};
use datafusion::physical_plan::{ExecutionPlan, execute_stream};
use datafusion::prelude::{DataFrame, ParquetReadOptions, SessionContext};

/// `"name"` with embedded quotes doubled, so any table or column name is safe in SQL.
pub fn sql_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A reservation in `ctx`'s pool for what a Rust step holds outside DataFusion's
/// operators (the identity graph, the CLV fit's customers), so the pool's limit
/// covers it too: grow it as the structure grows; a step that would pass the limit
/// fails with "Resources exhausted" naming `consumer`, instead of the process
/// outgrowing its memory. It cannot spill, and is released when dropped.
pub fn reserve(ctx: &SessionContext, consumer: &str) -> MemoryReservation {
    MemoryConsumer::new(consumer).register(&ctx.runtime_env().memory_pool)
}

/// Registers table `name` over the Parquet files of staged folder `dir` of the
/// store at `store_url`, replacing whatever `name` was (a view, an in-memory table).
pub async fn register_staged_dir(
    ctx: &SessionContext,
    name: &str,
    store_url: &str,
    dir: &object_store::path::Path,
) -> Result<(), DataFusionError> {
    ctx.deregister_table(name)?;
    let url = format!("{store_url}{dir}/");
    ctx.register_parquet(name, &url, ParquetReadOptions::default())
        .await
}

/// Registers table `name` over the staged Parquet `files` (at least one) of the
/// store at `store_url`, with the schema of the first, replacing whatever `name` was.
pub async fn register_staged_files(
    ctx: &SessionContext,
    name: &str,
    store_url: &str,
    files: &[object_store::path::Path],
) -> Result<(), DataFusionError> {
    let urls = files
        .iter()
        .map(|f| ListingTableUrl::parse(format!("{store_url}{f}")))
        .collect::<Result<Vec<_>, _>>()?;
    let Some(first) = urls.first() else {
        return Err(DataFusionError::Plan(format!(
            "table {name}: no staged files"
        )));
    };
    let state = ctx.state();
    let options = ParquetReadOptions::default()
        .to_listing_options(&ctx.copied_config(), ctx.copied_table_options());
    let schema = options.infer_schema(&state, first).await?;
    let config = ListingTableConfig::new_with_multi_paths(urls)
        .with_listing_options(options)
        .with_schema(schema);
    ctx.deregister_table(name)?;
    ctx.register_table(name, Arc::new(ListingTable::try_new(config)?))?;
    Ok(())
}

/// Plans and starts `frame`, keeping the physical plan so its metrics (spills)
/// can be read once the stream is drained.
pub async fn execute(
    frame: DataFrame,
) -> Result<(Arc<dyn ExecutionPlan>, SendableRecordBatchStream), DataFusionError> {
    let task = Arc::new(frame.task_ctx());
    let plan = frame.create_physical_plan().await?;
    tracing::debug!(
        plan = %datafusion::physical_plan::displayable(plan.as_ref())
            .set_show_statistics(true)
            .indent(true),
        "physical plan"
    );
    let stream = execute_stream(plan.clone(), task)?;
    Ok((plan, stream))
}

/// Spill totals of an executed plan, summed over every operator.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Spills {
    pub bytes: u64,
    pub files: u64,
}

/// What every operator of `plan` spilled.
pub fn spills(plan: &Arc<dyn ExecutionPlan>) -> Spills {
    let mut total = Spills::default();
    let mut stack = vec![plan.clone()];
    while let Some(node) = stack.pop() {
        if let Some(metrics) = node.metrics() {
            total.bytes += metrics.spilled_bytes().unwrap_or(0) as u64;
            total.files += metrics.spill_count().unwrap_or(0) as u64;
        }
        stack.extend(node.children().into_iter().cloned());
    }
    total
}

/// The pool's peak reservation since the last call, then starts a new reading.
pub fn take_peak_memory(ctx: &SessionContext) -> u64 {
    let pool = ctx.runtime_env().memory_pool.clone();
    match PeakRecordingPool::from_pool(pool.as_ref()) {
        Some(recorder) => {
            let peak = recorder.peak_reserved() as u64;
            recorder.reset_peak();
            peak
        }
        None => 0,
    }
}

/// How often the [`RssPeak`] sampler reads the resident set size.
const RSS_SAMPLE_EVERY: std::time::Duration = std::time::Duration::from_millis(20);

/// The process's peak resident set size over a span of work (a stage, a step):
/// from [`RssPeak::start`] to [`RssPeak::finish`], sampled every
/// [`RSS_SAMPLE_EVERY`] by one thread started with the first span. Spans may nest
/// or overlap; each keeps its own maximum. Beside the pool's peak it shows what
/// DataFusion's pool does not account for (Parquet encoders, the allocator's
/// retained pages, object-store buffers). The kernel's own mark (`VmHWM`) is
/// left alone: resetting it would hide the true peak from `getrusage`, which
/// `/usr/bin/time` and the benchmarks read.
pub struct RssPeak(Option<Arc<std::sync::atomic::AtomicU64>>);

/// The open spans the sampler raises.
static RSS_SPANS: std::sync::Mutex<Vec<std::sync::Weak<std::sync::atomic::AtomicU64>>> =
    std::sync::Mutex::new(Vec::new());

impl RssPeak {
    /// Starts a span at the resident set size now; a span without readings
    /// where `/proc/self/status` cannot be read.
    pub fn start() -> Self {
        static SAMPLER: std::sync::OnceLock<()> = std::sync::OnceLock::new();
        let Some(now) = current_rss() else {
            return Self(None);
        };
        let peak = Arc::new(std::sync::atomic::AtomicU64::new(now));
        if let Ok(mut spans) = RSS_SPANS.lock() {
            spans.push(Arc::downgrade(&peak));
        }
        SAMPLER.get_or_init(|| {
            let spawned = std::thread::Builder::new()
                .name("c360-rss".into())
                .spawn(|| {
                    while let Some(rss) = current_rss() {
                        if let Ok(mut spans) = RSS_SPANS.lock() {
                            spans.retain(|span| match span.upgrade() {
                                Some(peak) => {
                                    peak.fetch_max(rss, std::sync::atomic::Ordering::Relaxed);
                                    true
                                }
                                None => false,
                            });
                        }
                        std::thread::sleep(RSS_SAMPLE_EVERY);
                    }
                });
            if let Err(e) = spawned {
                tracing::debug!(error = %e, "no RSS sampler thread: span peaks are end readings");
            }
        });
        Self(Some(peak))
    }

    /// The span's peak, its end included (bytes).
    pub fn finish(self) -> Option<u64> {
        let peak = self.0?.load(std::sync::atomic::Ordering::Relaxed);
        Some(current_rss().map_or(peak, |now| peak.max(now)))
    }
}

/// The resident set size now (`VmRSS`), in bytes.
fn current_rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::util::display::array_value_to_string;

    async fn one_row(ctx: &SessionContext, sql: &str) -> Vec<String> {
        let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
        let batch = &batches[0];
        (0..batch.num_columns())
            .map(|c| array_value_to_string(batch.column(c), 0).unwrap())
            .collect()
    }

    fn test_session() -> SessionContext {
        let options = EngineOptions::default();
        session(&options, runtime(&options).unwrap())
    }

    // The contract rounds money to cents half away from zero, once, at the end;
    // sql/ relies on CAST(... AS DECIMAL(18,2)) doing exactly that.
    #[tokio::test]
    async fn casting_to_cents_rounds_half_away_from_zero() {
        let ctx = test_session();
        let got = one_row(
            &ctx,
            "SELECT CAST(CAST(0.125 AS DECIMAL(38,10)) AS DECIMAL(18,2)),
                    CAST(CAST(-0.125 AS DECIMAL(38,10)) AS DECIMAL(18,2)),
                    CAST(CAST(0.1249999999 AS DECIMAL(38,10)) AS DECIMAL(18,2))",
        )
        .await;
        assert_eq!(got, vec!["0.13", "-0.13", "0.12"]);
    }

    // A line amount (quantity x price - discount) x rate keeps every digit.
    #[tokio::test]
    async fn line_amounts_keep_full_precision() {
        let ctx = test_session();
        let got = one_row(
            &ctx,
            "SELECT (CAST(3 AS DECIMAL(20,0)) * CAST(3.33 AS DECIMAL(12,2)) - CAST(0.01 AS DECIMAL(12,2)))
                    * CAST(1.15 AS DECIMAL(18,8))",
        )
        .await;
        assert_eq!(got, vec!["11.4770000000"]);
    }

    // Order dates are UTC dates of the offset timestamps.
    #[tokio::test]
    async fn dates_of_offset_timestamps_are_utc_dates() {
        let ctx = test_session();
        let got = one_row(
            &ctx,
            "SELECT CAST(CAST('2026-01-20T23:30:00-02:00' AS TIMESTAMP) AS DATE),
                    DATE '2026-02-02' - DATE '2026-01-21'",
        )
        .await;
        assert_eq!(got, vec!["2026-01-21", "12"]);
    }

    /// A cast of a UTC timestamp to DATE is planned as `utc_date` (module
    /// `udf::utc_date`) and gives what DataFusion's own cast gives.
    #[tokio::test]
    async fn a_cast_of_a_utc_timestamp_to_date_is_planned_as_utc_date() {
        use datafusion::arrow::array::{ArrayRef, AsArray, RecordBatch, TimestampMicrosecondArray};
        use datafusion::arrow::datatypes::Date32Type;
        let utc = TimestampMicrosecondArray::from(crate::udf::utc_date::test_stamps())
            .with_timezone("UTC");
        let london = TimestampMicrosecondArray::from(crate::udf::utc_date::test_stamps())
            .with_timezone("Europe/London");
        let batch = RecordBatch::try_from_iter([
            ("utc", Arc::new(utc) as ArrayRef),
            ("london", Arc::new(london) as ArrayRef),
        ])
        .unwrap();
        let sql = "SELECT CAST(utc AS DATE), CAST(london AS DATE) AS local FROM t \
                   WHERE CAST(utc AS DATE) <= DATE '2026-01-04'";
        let ctx = test_session();
        ctx.register_batch("t", batch.clone()).unwrap();
        let plan = ctx.sql(sql).await.unwrap().into_optimized_plan().unwrap();
        let shown = plan.display_indent().to_string();
        assert!(shown.contains("utc_date(t.utc)"), "{shown}");
        assert!(!shown.contains("utc_date(t.london)"), "{shown}");
        // The same rows, names and types as DataFusion's own cast.
        let ours = ctx.sql(sql).await.unwrap().collect().await.unwrap();
        let plain = SessionContext::new();
        plain.register_batch("t", batch).unwrap();
        let theirs = plain.sql(sql).await.unwrap().collect().await.unwrap();
        assert_eq!(ours, theirs);
        let dates: Vec<_> = (ours.iter())
            .flat_map(|b| b.column(0).as_primitive::<Date32Type>().iter())
            .collect();
        // 3 and 4 Jan 2026 are days 20,456 and 20,457; year 1 starts on day -719,162.
        assert_eq!(dates, [20_456, 20_457, 20_457, -1, 0, -719_162].map(Some));
    }

    // The largest input streams through; everything else may be a build side.
    #[test]
    fn hash_joins_fit_when_all_but_the_largest_input_is_small() {
        let pool = 2048 << 20; // 2 GiB: build sides may hold 64 MiB of Parquet.
        assert!(hash_joins_fit(&[], 0, pool));
        assert!(
            hash_joins_fit(&[5 << 30], 0, pool),
            "one huge input, nothing built"
        );
        assert!(hash_joins_fit(&[5 << 30, 50 << 20, 14 << 20], 0, pool));
        assert!(!hash_joins_fit(&[5 << 30, 50 << 20, 15 << 20], 0, pool));
        assert!(!hash_joins_fit(&[100 << 20, 100 << 20], 0, pool));
        // What is built anyway counts even when it would be the largest.
        assert!(hash_joins_fit(&[], 64 << 20, pool));
        assert!(!hash_joins_fit(&[5 << 30], 65 << 20, pool));
    }

    #[test]
    fn batches_shrink_with_small_pools() {
        assert_eq!(batch_size(24 << 30), 8192);
        assert_eq!(batch_size(512 << 20), 8192);
        assert_eq!(batch_size(256 << 20), 4096);
        assert_eq!(batch_size(16 << 20), 1024);
    }

    // A Rust step's reservation counts against the same pool as DataFusion's
    // operators and fails, naming the step, when it would pass the limit.
    #[test]
    fn a_reservation_is_bounded_by_the_pool() {
        let options = EngineOptions {
            memory_limit: Some(1 << 20),
            ..EngineOptions::default()
        };
        let ctx = session(&options, runtime(&options).unwrap());
        let memory = reserve(&ctx, "stitch_identities(test)");
        memory.try_grow(512 << 10).unwrap();
        let err = memory.try_grow(1 << 20).unwrap_err().to_string();
        assert!(err.contains("stitch_identities(test)"), "{err}");
        drop(memory);
        reserve(&ctx, "again").try_grow(1 << 20).unwrap();
    }
}
