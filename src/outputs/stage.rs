//! Output staging: an output's step result written, sorted by its keys, to the
//! run's staging folder; the run publishes every output only when all are
//! written and checked (`crate::commit`).

use chrono::NaiveDate;
use datafusion::prelude::{SessionContext, ident};
use object_store::path::Path;

use super::{SinkError, StagedPartition};
use crate::job::OutputSpec;
use crate::storage::StorageLocation;

/// One output written to staging.
pub struct StagedOutput {
    pub name: String,
    /// The output's folder (`{warehouse}/customer_360`).
    pub root: Path,
    /// Whether it has `snapshot_date=` partitions under `root`.
    pub partitioned: bool,
    /// The partition this run replaces (`root` itself when unpartitioned).
    pub target: Path,
    pub staged: StagedPartition,
    /// What the output's plan spilled while it was written.
    pub spills: crate::engine::Spills,
}

/// The first problem of `output`'s keys against `columns`, those of the table
/// it publishes: a partition other than the logical date, a sort or bloom filter
/// key that is not a column.
pub fn key_problem(output: &OutputSpec, columns: &[String]) -> Option<String> {
    if let Some(other) = output
        .partition_by
        .iter()
        .find(|k| k.as_str() != super::SNAPSHOT_COLUMN)
    {
        return Some(format!(
            "partition_by `{other}`: only snapshot_date (the logical date) is supported"
        ));
    }
    [
        ("sort_by", &output.sort_by),
        ("bloom_filter", &output.layout.bloom_filter),
    ]
    .into_iter()
    .find_map(|(key, keys)| {
        let missing = keys.iter().find(|c| !columns.contains(c))?;
        Some(format!(
            "{key} column `{missing}` is not a column of the step"
        ))
    })
}

/// Writes `output`'s partition of `date` to staging under `tmp` (in the
/// warehouse's store), sorted by its keys; `location` is the output's folder,
/// which must be in the same store.
pub async fn stage_output(
    ctx: &SessionContext,
    output: &OutputSpec,
    location: &StorageLocation,
    warehouse: &StorageLocation,
    date: NaiveDate,
    tmp: &Path,
) -> Result<StagedOutput, SinkError> {
    let query_err = |source| SinkError::Query {
        output: output.name.clone(),
        source,
    };
    let spec_err = |message| SinkError::Spec {
        output: output.name.clone(),
        message,
    };
    if location.store_url != warehouse.store_url {
        return Err(spec_err(format!(
            "path {} must be in the warehouse's store ({})",
            location.url, warehouse.url
        )));
    }
    let mut frame = ctx.table(output.name.as_str()).await.map_err(query_err)?;
    let columns: Vec<String> = frame
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    if let Some(message) = key_problem(output, &columns) {
        return Err(spec_err(message));
    }
    let partition: Vec<String> = output
        .partition_by
        .iter()
        .map(|_| super::snapshot_partition(date))
        .collect();
    if columns.iter().any(|c| output.partition_by.contains(c)) {
        // Hive layout: partition values live in the path, not in the files.
        let keep = columns
            .iter()
            .filter(|c| !output.partition_by.contains(c))
            .map(|c| ident(c.as_str()))
            .collect::<Vec<_>>();
        frame = frame.select(keep).map_err(query_err)?;
    }
    if !output.sort_by.is_empty() {
        // Ascending with NULLs last, SQL's own `ORDER BY` default: a step whose
        // query already sorts on these keys (order_lines' dedupe window) then
        // satisfies the ordering, and DataFusion merges instead of sorting again.
        let keys = output
            .sort_by
            .iter()
            .map(|c| ident(c.as_str()).sort(true, false))
            .collect();
        frame = frame.sort(keys).map_err(query_err)?;
    }
    let staging_dir = partition.iter().fold(
        tmp.clone().join("outputs").join(output.name.as_str()),
        |dir, part| dir.join(part.as_str()),
    );
    let target = partition
        .iter()
        .fold(location.prefix.clone(), |dir, part| dir.join(part.as_str()));
    let (plan, stream) = crate::engine::execute(frame).await.map_err(query_err)?;
    let staged = super::write_stream(
        &output.name,
        stream,
        warehouse.store.clone(),
        &staging_dir,
        output.compression,
        &output.layout,
    )
    .await?;
    let spills = crate::engine::spills(&plan);
    Ok(StagedOutput {
        name: output.name.clone(),
        root: location.prefix.clone(),
        partitioned: !partition.is_empty(),
        target,
        staged,
        spills,
    })
}
