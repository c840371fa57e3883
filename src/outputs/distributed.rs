//! Writing a query's result to staging, where it is computed: by this process,
//! or, on a Ballista cluster, by the executor that finishes the query, straight
//! to the warehouse, instead of streaming every row back for the client to write
//! ([`super::write_stream`]).

use std::sync::Arc;

use datafusion::arrow::array::{Array, UInt64Array};
use datafusion::common::config::{ParquetColumnOptions, TableParquetOptions};
use datafusion::dataframe::DataFrameWriteOptions;
use datafusion::physical_plan::EmptyRecordBatchStream;
use datafusion::prelude::DataFrame;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};

use super::{SinkError, StagedPartition, WrittenFile, part_name};
use crate::engine::{self, Spills};
use crate::job::{Compression, FileLayout};

/// The Parquet settings of [`super::writer_properties`] in DataFusion's option
/// form, which travels with the plan to the executor that writes.
fn table_options(compression: Compression, layout: &FileLayout) -> TableParquetOptions {
    let mut options = TableParquetOptions::default();
    let global = &mut options.global;
    global.compression = Some(
        match compression {
            Compression::Zstd => "zstd(3)",
            Compression::Snappy => "snappy",
            Compression::Uncompressed => "uncompressed",
        }
        .to_string(),
    );
    global.statistics_enabled = Some(
        if layout.column_statistics {
            "page"
        } else {
            "none"
        }
        .into(),
    );
    // The row group limit in bytes holds only for the serial writer.
    global.allow_single_file_parallelism = false;
    global.max_row_group_bytes = usize::try_from(layout.row_group_bytes.max(1))
        .ok()
        .and_then(|b| datafusion::common::config::MaxRowGroupBytes::try_new(b).ok());
    global.created_by = format!("c360 {}", env!("CARGO_PKG_VERSION"));
    for column in &layout.bloom_filter {
        let column_options = ParquetColumnOptions {
            bloom_filter_enabled: Some(true),
            bloom_filter_ndv: Some(super::BLOOM_FILTER_MAX_NDV),
            ..ParquetColumnOptions::default()
        };
        options
            .column_specific_options
            .insert(column.clone(), column_options);
    }
    options
}

/// Where a staged result goes: folder `dir` of `store`, whose URL is
/// `store_url` (as executors also see it).
pub struct StagingDir<'a> {
    pub store: Arc<dyn ObjectStore>,
    pub store_url: &'a str,
    pub dir: &'a Path,
}

/// Writes `frame`'s result to `to`: streamed into this process's writer
/// ([`super::write_stream`]), or, `on_cluster`, by the executor that computes it
/// ([`write_on_cluster`]). Returns the staged partition and what the query
/// spilled (on a cluster, the executors keep their spill metrics).
pub async fn write_frame(
    name: &str,
    frame: DataFrame,
    to: StagingDir<'_>,
    compression: Compression,
    layout: &FileLayout,
    on_cluster: bool,
) -> Result<(StagedPartition, Spills), SinkError> {
    if on_cluster {
        let staged = write_on_cluster(name, frame, to, compression, layout).await?;
        return Ok((staged, Spills::default()));
    }
    let (plan, stream) = engine::execute(frame)
        .await
        .map_err(|source| SinkError::Query {
            output: name.to_string(),
            source,
        })?;
    let staged = super::write_stream(name, stream, to.store, to.dir, compression, layout).await?;
    // `-v`: the plan as EXPLAIN ANALYZE shows it, where a step's time went.
    tracing::debug!(
        output = name,
        plan = %datafusion::physical_plan::display::DisplayableExecutionPlan::with_metrics(
            plan.as_ref()
        )
        .indent(true),
        "executed plan"
    );
    Ok((staged, engine::spills(&plan)))
}

/// Has the cluster write `frame`'s result as the one file `dir/part-00000.parquet`
/// of `to`, with the settings every c360 file has. A sorted result stays sorted:
/// the cluster merges it into one stream before the write. An empty result
/// still gets its (typed, empty) file, written here.
async fn write_on_cluster(
    output: &str,
    frame: DataFrame,
    to: StagingDir<'_>,
    compression: Compression,
    layout: &FileLayout,
) -> Result<StagedPartition, SinkError> {
    let StagingDir {
        store,
        store_url,
        dir,
    } = to;
    let query_err = |source| SinkError::Query {
        output: output.to_string(),
        source,
    };
    let path = dir.clone().join(part_name(0));
    let schema = Arc::new(frame.schema().as_arrow().clone());
    let written = frame
        .write_parquet(
            &format!("{store_url}{path}"),
            DataFrameWriteOptions::new().with_single_file_output(true),
            Some(table_options(compression, layout)),
        )
        .await
        .map_err(query_err)?;
    let rows: u64 = written
        .iter()
        .filter_map(|b| b.column(0).as_any().downcast_ref::<UInt64Array>())
        .flat_map(|counts| counts.iter().flatten())
        .sum();
    let bytes = match store.head(&path).await {
        Ok(meta) => meta.size,
        Err(object_store::Error::NotFound { .. }) if rows == 0 => {
            let empty = Box::pin(EmptyRecordBatchStream::new(schema));
            return super::write_stream(output, empty, store, dir, compression, layout).await;
        }
        Err(source) => {
            return Err(SinkError::Store {
                path: path.to_string(),
                source,
            });
        }
    };
    Ok(StagedPartition {
        dir: dir.clone(),
        files: vec![WrittenFile { path, rows, bytes }],
    })
}
