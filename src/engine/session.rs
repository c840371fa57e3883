//! The session every query runs in: its memory pool, spill folder, batch size,
//! join settings and physical optimizer rules, the same on this process and on
//! a Ballista cluster (which receives the settings with each query).

use std::path::PathBuf;
use std::sync::Arc;

use datafusion::error::DataFusionError;
use datafusion::execution::SessionStateBuilder;
use datafusion::execution::disk_manager::{DiskManagerBuilder, DiskManagerMode};
use datafusion::execution::memory_pool::{FairSpillPool, PeakRecordingPool, TrackConsumersPool};
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_optimizer::optimizer::PhysicalOptimizer;
use datafusion::prelude::{SessionConfig, SessionContext};

use super::{BuildSmallerSide, SortedRowNumber};

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

/// A session state of `config` on `runtime` with DataFusion's defaults, the
/// physical optimizer `rules` ([`physical_optimizer_rules`]) and
/// [`crate::udf::CastToUtcDate`] (a UTC timestamp's date by division).
pub fn session_state(
    config: SessionConfig,
    runtime: Arc<RuntimeEnv>,
    rules: Vec<Arc<dyn PhysicalOptimizerRule + Send + Sync>>,
) -> datafusion::execution::SessionState {
    use datafusion::execution::FunctionRegistry;
    let mut state = SessionStateBuilder::new()
        .with_config(config)
        .with_runtime_env(runtime)
        .with_default_features()
        .with_physical_optimizer_rules(rules)
        .build();
    // Infallible: the registry only appends the rewrite to its analyzer.
    let _ = state.register_function_rewrite(Arc::new(crate::udf::CastToUtcDate));
    state
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

/// Whether what `ctx` plans from now on uses hash joins (`false`: sort-merge
/// joins, which spill). Set per step by the run, before the step is planned.
pub fn set_hash_joins(ctx: &SessionContext, hash: bool) {
    let state = ctx.state_ref();
    let mut state = state.write();
    state.config_mut().options_mut().optimizer.prefer_hash_join = hash;
}
