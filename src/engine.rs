//! DataFusion session construction: one place that decides how queries run.
//!
//! Every run (and later every scheduler tick and Ballista executor) gets its
//! `SessionContext` from here, so memory limits, spilling, object stores and our
//! UDFs are set up identically everywhere.

use std::sync::Arc;

use datafusion::error::DataFusionError;
use datafusion::execution::disk_manager::{DiskManagerBuilder, DiskManagerMode};
use datafusion::execution::memory_pool::FairSpillPool;
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use datafusion::prelude::{SessionConfig, SessionContext};

/// How a session is sized.
#[derive(Debug, Clone, Default)]
pub struct EngineOptions {
    /// Cap on DataFusion's memory pool in bytes; sorts and aggregations spill to
    /// the OS temp directory beyond it. `None` means no cap.
    pub memory_limit: Option<u64>,
    /// Number of partitions DataFusion plans with; defaults to the core count.
    pub target_partitions: Option<usize>,
}

/// Errors building a session.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("engine: cannot build the DataFusion runtime: {0}")]
    Runtime(#[from] DataFusionError),
}

/// Builds the runtime environment: memory pool with spilling, temp-file disk manager.
pub fn runtime(options: &EngineOptions) -> Result<Arc<RuntimeEnv>, EngineError> {
    let mut builder = RuntimeEnvBuilder::new().with_disk_manager_builder(
        DiskManagerBuilder::default().with_mode(DiskManagerMode::OsTmpDirectory),
    );
    if let Some(limit) = options.memory_limit {
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        builder = builder.with_memory_pool(Arc::new(FairSpillPool::new(limit)));
    }
    Ok(builder.build_arc()?)
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
    if let Some(n) = options.target_partitions {
        config = config.with_target_partitions(n.max(1));
    }
    let ctx = SessionContext::new_with_config_rt(config, runtime);
    crate::udf::register_all(&ctx);
    ctx
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
