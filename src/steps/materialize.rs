//! `materialize: table`: a step's result computed once into run-private staging
//! Parquet, then registered over those files in place of its view or in-memory
//! table, so later steps and outputs read it instead of recomputing it.

use std::sync::Arc;

use datafusion::catalog::{MemTable, TableProvider};
use datafusion::physical_plan::execute_stream;
use datafusion::prelude::SessionContext;
use object_store::ObjectStore;
use object_store::path::Path;

use super::StepError;
use crate::engine::{self, Spills};
use crate::job::{Compression, FileLayout};
use crate::outputs::{self, StagedPartition};

/// A step written to staging.
#[derive(Debug, Clone)]
pub struct Materialized {
    pub staged: StagedPartition,
    pub spills: Spills,
}

/// Runs table `name` once, writes it to `dir` in `store` (whose URL is
/// `store_url`), and re-registers `name` over the written files. On a cluster
/// (`on_cluster`) an executor writes the file; a builtin's in-memory result is
/// written from this process either way, where it already is.
///
/// Intermediate tables are read back within the run and then deleted, so they
/// use Snappy: cheaper to write than zstd, and the files stay private.
pub async fn materialize(
    ctx: &SessionContext,
    name: &str,
    store: Arc<dyn ObjectStore>,
    store_url: &str,
    dir: &Path,
    on_cluster: bool,
) -> Result<Materialized, StepError> {
    let sql_err = |source| StepError::Sql {
        step: name.to_string(),
        file: format!("(table {name})"),
        source,
    };
    let write_err = |source| StepError::Write {
        step: name.to_string(),
        source,
    };
    let (compression, layout) = (Compression::Snappy, FileLayout::staging());
    let provider = ctx.table_provider(name).await.map_err(sql_err)?;
    let (staged, spills) = if let Some(memory) = provider.downcast_ref::<MemTable>() {
        let plan = memory
            .scan(&ctx.state(), None, &[], None)
            .await
            .map_err(sql_err)?;
        let stream = execute_stream(plan, ctx.task_ctx()).map_err(sql_err)?;
        let staged = outputs::write_stream(name, stream, store, dir, compression, &layout)
            .await
            .map_err(write_err)?;
        (staged, Spills::default())
    } else {
        let frame = ctx.table(name).await.map_err(sql_err)?;
        let to = outputs::StagingDir {
            store,
            store_url,
            dir,
        };
        outputs::write_frame(name, frame, to, compression, &layout, on_cluster)
            .await
            .map_err(write_err)?
    };
    engine::register_staged_dir(ctx, name, store_url, dir)
        .await
        .map_err(sql_err)?;
    Ok(Materialized { staged, spills })
}
