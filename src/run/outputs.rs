//! Output staging: each output's step result is written, sorted by its keys, to
//! the run's staging folder; `run` publishes them only when all are written.

use datafusion::prelude::{SessionContext, ident};
use object_store::path::Path;

use super::{Bound, RunError};
use crate::job::OutputSpec;
use crate::sink::{self, StagedPartition};
use crate::steps::PublishedLocations;

/// Where each output is published (store and folder), by output name; builtin
/// steps read their own previous snapshots there.
pub(super) fn published_locations(
    bound: &Bound,
    outputs: &[OutputSpec],
) -> Result<PublishedLocations, RunError> {
    let mut locations = PublishedLocations::new();
    for output in outputs {
        let path = crate::job::interpolate(&output.path, &bound.vars)
            .map_err(|e| RunError::Bind(format!("output {}: {e}", output.name)))?;
        let location = bound.registry.resolve_for_write(&path)?;
        locations.insert(output.name.clone(), (location.store, location.prefix));
    }
    Ok(locations)
}

/// One output written to staging.
pub(super) struct StagedOutput {
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
pub(super) fn key_problem(output: &OutputSpec, columns: &[String]) -> Option<String> {
    if let Some(other) = output
        .partition_by
        .iter()
        .find(|k| k.as_str() != sink::SNAPSHOT_COLUMN)
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

/// Writes one output's partition for this run to staging, sorted by its keys.
pub(super) async fn stage_output(
    ctx: &SessionContext,
    bound: &Bound,
    output: &OutputSpec,
    tmp: &Path,
) -> Result<StagedOutput, RunError> {
    let query_err = |source| RunError::Query {
        what: format!("output {}", output.name),
        source,
    };
    let path = crate::job::interpolate(&output.path, &bound.vars)
        .map_err(|e| RunError::Bind(format!("output {}: {e}", output.name)))?;
    let location = bound.registry.resolve_for_write(&path)?;
    if location.store_url != bound.warehouse.store_url {
        return Err(RunError::OutputSpec {
            output: output.name.clone(),
            message: format!(
                "path {} must be in the warehouse's store ({})",
                location.url, bound.warehouse.url
            ),
        });
    }
    let mut frame = ctx.table(output.name.as_str()).await.map_err(query_err)?;
    let columns: Vec<String> = frame
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    if let Some(message) = key_problem(output, &columns) {
        return Err(RunError::OutputSpec {
            output: output.name.clone(),
            message,
        });
    }
    let partition: Vec<String> = output
        .partition_by
        .iter()
        .map(|_| sink::snapshot_partition(bound.date))
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
    let staged = sink::write_stream(
        &output.name,
        stream,
        bound.warehouse.store.clone(),
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
