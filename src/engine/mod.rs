//! DataFusion session construction: one place that decides how queries run.
//!
//! Every run (and later every scheduler tick and Ballista executor) gets its
//! `SessionContext` from here, so memory limits, spilling, object stores and our
//! UDFs are set up identically everywhere. A memory pool is always set, so a run
//! is bounded by default; what cannot spill (a hash join's build side) is kept
//! small by choosing the join per step ([`set_hash_joins`]).

mod build_side;
mod row_number;

use std::path::PathBuf;
use std::sync::Arc;

pub use build_side::{BuildSmallerSide, row_bound};
pub use row_number::{RowNumberExec, SortedRowNumber};

use datafusion::datasource::file_format::options::ReadOptions;
use datafusion::datasource::listing::{ListingTable, ListingTableConfig, ListingTableUrl};
use datafusion::error::DataFusionError;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::execution::SessionStateBuilder;
use datafusion::execution::disk_manager::{DiskManagerBuilder, DiskManagerMode};
use datafusion::execution::memory_pool::{
    FairSpillPool, MemoryConsumer, MemoryReservation, PeakRecordingPool, TrackConsumersPool,
};
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_optimizer::optimizer::PhysicalOptimizer;
use datafusion::physical_plan::{ExecutionPlan, execute_stream};
use datafusion::prelude::{DataFrame, ParquetReadOptions, SessionConfig, SessionContext};

/// The default memory pool when neither the job nor the command line sets one:
/// this fraction of physical memory (half: the rest is for what the pool does not
/// see — Parquet encoders, object-store buffers, the builtins' compact tables —
/// and for the OS page cache that the staged Parquet is read through).
pub const DEFAULT_MEMORY_FRACTION: f64 = 0.5;

/// A step's joins run as hash joins (`JoinStrategy::Auto`) when the staged
/// Parquet it reads, all but its largest input, totals at most the pool divided
/// by this ([`hash_joins_fit`]).
pub const HASH_JOIN_INPUT_DIVISOR: u64 = 32;

/// Whether a step reading staged inputs of these sizes (bytes) may use hash
/// joins under a pool of `pool_bytes`. Plans carry file statistics (row counts
/// and sizes), so DataFusion builds each hash table on the smaller side and
/// streams the largest input through; what is held is at most everything else.
/// A hash join's build side cannot spill in DataFusion 55
/// (apache/datafusion#12952), and decoded Arrow is several times its Parquet
/// (5 to 10 times for c360's staged tables), hence the margin of
/// [`HASH_JOIN_INPUT_DIVISOR`]: at 1,000,000 customers, pool / 8 let
/// customer_360's nine per-customer joins hold the 2 GiB pool and its sort failed.
/// `built` is held besides, whatever the sizes: inputs known to be a build side
/// (the rows merged into a carried base, which is what streams through).
pub fn hash_joins_fit(input_bytes: &[u64], built: u64, pool_bytes: u64) -> bool {
    let largest = input_bytes.iter().copied().max().unwrap_or(0);
    let held = input_bytes.iter().sum::<u64>() - largest + built;
    held <= pool_bytes / HASH_JOIN_INPUT_DIVISOR
}

/// How a session is sized.
#[derive(Debug, Clone, Default)]
pub struct EngineOptions {
    /// Cap on DataFusion's memory pool in bytes; sorts, aggregations, sort-merge
    /// joins and repartitions spill beyond it. `None` = [`default_memory_limit`].
    pub memory_limit: Option<u64>,
    /// Folder for spill files; `None` = the OS temp directory.
    pub spill_dir: Option<PathBuf>,
    /// Number of partitions DataFusion plans with; defaults to the core count.
    pub target_partitions: Option<usize>,
    /// The Ballista scheduler queries run on (`ballista://host:port`); `None`:
    /// this process (`crate::cluster`).
    pub cluster: Option<String>,
}

impl EngineOptions {
    /// The pool size this session gets.
    pub fn pool_bytes(&self) -> u64 {
        self.memory_limit.unwrap_or_else(default_memory_limit)
    }
}

/// Errors building a session.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("engine: cannot build the DataFusion runtime: {0}")]
    Runtime(#[from] DataFusionError),
}

/// [`DEFAULT_MEMORY_FRACTION`] of physical memory (`MemTotal` of
/// `/proc/meminfo`; taken as 8 GiB where that cannot be read).
pub fn default_memory_limit() -> u64 {
    let total = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| {
            let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
            let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
            Some(kib * 1024)
        })
        .unwrap_or(8 << 30);
    (total as f64 * DEFAULT_MEMORY_FRACTION) as u64
}

/// How many of the largest memory consumers an out-of-memory error names.
const TOP_CONSUMERS: std::num::NonZeroUsize = std::num::NonZeroUsize::new(5).unwrap();

/// `"name"` with embedded quotes doubled, so any table or column name is safe in SQL.
pub fn sql_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Builds the runtime environment: a fair spill pool (wrapped to record its peak)
/// and a disk manager for compressed spill files.
pub fn runtime(options: &EngineOptions) -> Result<Arc<RuntimeEnv>, EngineError> {
    let mode = match &options.spill_dir {
        Some(dir) => DiskManagerMode::Directories(vec![dir.clone()]),
        None => DiskManagerMode::OsTmpDirectory,
    };
    let limit = usize::try_from(options.pool_bytes()).unwrap_or(usize::MAX);
    // TrackConsumersPool names the largest consumers in a "Resources exhausted"
    // error, so a user sees which operator held the memory.
    let tracked = TrackConsumersPool::new(FairSpillPool::new(limit), TOP_CONSUMERS);
    let pool = PeakRecordingPool::new(Arc::new(tracked));
    Ok(RuntimeEnvBuilder::new()
        .with_disk_manager_builder(DiskManagerBuilder::default().with_mode(mode))
        .with_memory_pool(Arc::new(pool))
        .build_arc()?)
}

/// Builds a session on `runtime` with c360's UDFs registered.
pub fn session(options: &EngineOptions, runtime: Arc<RuntimeEnv>) -> SessionContext {
    let ctx = SessionContext::new_with_state(session_state(
        session_config(options),
        runtime,
        physical_optimizer_rules(true),
    ));
    crate::udf::register_all(&ctx);
    ctx
}

/// The session settings every c360 session plans with, on this process or on a
/// Ballista cluster (which receives them with each query).
pub fn session_config(options: &EngineOptions) -> SessionConfig {
    let mut config = SessionConfig::new()
        .with_information_schema(true)
        // Outputs are written sorted; keep the plan from re-partitioning sorted data needlessly.
        .with_repartition_sorts(true);
    // Plain Utf8 rather than Utf8View when reading staged Parquet: outputs then carry
    // the string type every Parquet reader (older pyarrow, Power BI) understands.
    config
        .options_mut()
        .execution
        .parquet
        .schema_force_view_types = false;
    // And `CAST(x AS VARCHAR)` in a step's SQL gives Utf8 too (DataFusion 55 maps SQL
    // string types to Utf8View by default): `customer_360.rfm_cell` was the one
    // Utf8View column of the outputs.
    config.options_mut().sql_parser.map_string_types_to_utf8view = false;
    // File statistics (row counts, sizes) let the planner build each hash join on
    // its smaller side. Staged tables are written without column min/max (see
    // `outputs::FileLayout`), which DataFusion 55.2's filter selectivity estimate
    // could push above 1 and fail a query with ("Selectivity is out of limit").
    config.options_mut().execution.collect_statistics = true;
    // Spill files are Arrow IPC; lz4 makes them several times smaller for little CPU.
    config.options_mut().execution.spill_compression =
        datafusion::common::config::SpillCompression::Lz4Frame;
    if let Some(n) = options.target_partitions {
        config = config.with_target_partitions(n.max(1));
    }
    // Each sort keeps this much back to merge its spill files; DataFusion's 10 MiB
    // default cannot be had from a small pool, so it is sized to the pool's shares.
    let partitions = config.target_partitions().max(1) as u64;
    let reservation = (options.pool_bytes() / (8 * partitions)).min(10 << 20);
    config.options_mut().execution.sort_spill_reservation_bytes = reservation as usize;
    // A hash join whose build side is estimated below these is built once for
    // every partition (`CollectLeft`) instead of both sides being shuffled by
    // key: at 1,000,000 customers a lookup in the identity map (1.6M rows)
    // shuffled 11M order lines and spilled the shuffle. DataFusion's defaults
    // (1 MiB, 128K rows) suit a cluster, which sends a collected side to every
    // task, and keep them there. What a step may hold in hash tables at all is
    // bounded by its join choice ([`hash_joins_fit`]), whichever the mode.
    if options.cluster.is_none() {
        let optimizer = &mut config.options_mut().optimizer;
        optimizer.hash_join_single_partition_threshold =
            (options.pool_bytes() / COLLECT_BUILD_SIDE_DIVISOR) as usize;
        optimizer.hash_join_single_partition_threshold_rows =
            (options.pool_bytes() / COLLECT_BUILD_SIDE_ROW_BYTES) as usize;
    }
    config.with_batch_size(batch_size(options.pool_bytes()))
}

/// A hash join's build side is collected once (not shuffled) when estimated at
/// most the pool divided by this (128 MiB of a 2 GiB pool)...
const COLLECT_BUILD_SIDE_DIVISOR: u64 = 16;
/// ...or, without a byte estimate, at most the pool divided by this many rows
/// (8M rows of a 2 GiB pool).
const COLLECT_BUILD_SIDE_ROW_BYTES: u64 = 256;

/// A session state of `config` on `runtime` with DataFusion's defaults and the
/// physical optimizer `rules` ([`physical_optimizer_rules`]).
pub fn session_state(
    config: SessionConfig,
    runtime: Arc<RuntimeEnv>,
    rules: Vec<Arc<dyn PhysicalOptimizerRule + Send + Sync>>,
) -> datafusion::execution::SessionState {
    SessionStateBuilder::new()
        .with_config(config)
        .with_runtime_env(runtime)
        .with_default_features()
        .with_physical_optimizer_rules(rules)
        .build()
}

/// DataFusion's physical optimizer rules with [`BuildSmallerSide`] right after
/// `join_selection` (before any rule adds repartitions a swap would break), and,
/// with `row_number`, [`SortedRowNumber`] last (once the sorts its windows need
/// are in place). A Ballista scheduler plans without it: its [`RowNumberExec`]
/// has no wire form, and DataFusion's own window operator gives the same rows.
pub fn physical_optimizer_rules(
    row_number: bool,
) -> Vec<Arc<dyn PhysicalOptimizerRule + Send + Sync>> {
    let mut rules = PhysicalOptimizer::new().rules;
    let at = rules
        .iter()
        .position(|r| r.name() == "join_selection")
        .map_or(0, |i| i + 1);
    rules.insert(at, Arc::new(BuildSmallerSide));
    if row_number {
        rules.push(Arc::new(SortedRowNumber));
    }
    rules
}

/// A reservation in `ctx`'s pool for what a Rust step holds outside DataFusion's
/// operators (the identity graph, the CLV fit's customers), so the pool's limit
/// covers it too: grow it as the structure grows; a step that would pass the limit
/// fails with "Resources exhausted" naming `consumer`, instead of the process
/// outgrowing its memory. It cannot spill, and is released when dropped.
pub fn reserve(ctx: &SessionContext, consumer: &str) -> MemoryReservation {
    MemoryConsumer::new(consumer).register(&ctx.runtime_env().memory_pool)
}

/// Rows per Arrow batch for a pool of `pool_bytes`: DataFusion's 8192 from
/// [`FULL_BATCH_POOL`] up, proportionally fewer below (never under 1024). Every
/// sort, aggregation and join holds at least a batch or two per partition, and
/// a wide order line batch of 8192 rows is about 3.5 MB, more than a fair share
/// of a pool of a few dozen MiB split among many spilling operators.
pub fn batch_size(pool_bytes: u64) -> usize {
    let scaled = 8192 * pool_bytes / FULL_BATCH_POOL;
    scaled.clamp(1024, 8192) as usize
}

/// The smallest pool that gets full 8192-row batches.
pub const FULL_BATCH_POOL: u64 = 512 << 20;

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

/// Whether what `ctx` plans from now on uses hash joins (`false`: sort-merge
/// joins, which spill). Set per step by the run, before the step is planned.
pub fn set_hash_joins(ctx: &SessionContext, hash: bool) {
    let state = ctx.state_ref();
    let mut state = state.write();
    state.config_mut().options_mut().optimizer.prefer_hash_join = hash;
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
