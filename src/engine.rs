//! DataFusion session construction: one place that decides how queries run.
//!
//! Every run (and later every scheduler tick and Ballista executor) gets its
//! `SessionContext` from here, so memory limits, spilling, object stores and our
//! UDFs are set up identically everywhere. A memory pool is always set, so a run
//! is bounded by default; what cannot spill (a hash join's build side) is kept
//! small by choosing the join per step ([`set_hash_joins`]).

use std::path::PathBuf;
use std::sync::Arc;

use datafusion::error::DataFusionError;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::execution::disk_manager::{DiskManagerBuilder, DiskManagerMode};
use datafusion::execution::memory_pool::{FairSpillPool, PeakRecordingPool};
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use datafusion::physical_plan::{ExecutionPlan, execute_stream};
use datafusion::prelude::{DataFrame, ParquetReadOptions, SessionConfig, SessionContext};

/// The default memory pool when neither the job nor the command line sets one:
/// this fraction of physical memory (half: the rest is for what the pool does not
/// see — Parquet encoders, object-store buffers, the builtins' compact tables —
/// and for the OS page cache that the staged Parquet is read through).
pub const DEFAULT_MEMORY_FRACTION: f64 = 0.5;

/// A step's joins run as hash joins (`JoinStrategy::Auto`) when the staged
/// Parquet it reads totals at most the pool divided by this: decoded Arrow is
/// several times its zstd Parquet, and a hash join holds its build side, which
/// cannot spill in DataFusion 55 (apache/datafusion#12952), whole in memory.
pub const HASH_JOIN_INPUT_DIVISOR: u64 = 8;

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

/// Builds the runtime environment: a fair spill pool (wrapped to record its peak)
/// and a disk manager for compressed spill files.
pub fn runtime(options: &EngineOptions) -> Result<Arc<RuntimeEnv>, EngineError> {
    let mode = match &options.spill_dir {
        Some(dir) => DiskManagerMode::Directories(vec![dir.clone()]),
        None => DiskManagerMode::OsTmpDirectory,
    };
    let limit = usize::try_from(options.pool_bytes()).unwrap_or(usize::MAX);
    let pool = PeakRecordingPool::new(Arc::new(FairSpillPool::new(limit)));
    Ok(RuntimeEnvBuilder::new()
        .with_disk_manager_builder(DiskManagerBuilder::default().with_mode(mode))
        .with_memory_pool(Arc::new(pool))
        .build_arc()?)
}

/// Builds a session on `runtime` with c360's UDFs registered.
pub fn session(options: &EngineOptions, runtime: Arc<RuntimeEnv>) -> SessionContext {
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
    // No file statistics in plans: DataFusion 55.2's filter selectivity estimate
    // from Parquet min/max can come out above 1 and fail the query with an
    // internal error ("Selectivity is out of limit"), seen on generated data with
    // years of order history. Plans do not need the estimates: every run reads
    // all of its staged files anyway.
    config.options_mut().execution.collect_statistics = false;
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
    let ctx = SessionContext::new_with_config_rt(config, runtime);
    crate::udf::register_all(&ctx);
    ctx
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
}
