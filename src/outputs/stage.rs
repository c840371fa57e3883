//! Output staging: an output's step result written, sorted by its keys, to the
//! run's staging folder; the run publishes every output only when all are
//! written and checked (`crate::commit`).

use chrono::NaiveDate;
use datafusion::arrow::datatypes::{DataType, FieldRef};
use datafusion::execution::FunctionRegistry;
use datafusion::prelude::{DataFrame, SessionContext, cast, ident};
use object_store::path::Path;

use super::{SinkError, StagedPartition};
use crate::job::{OutputSpec, PiiPolicy};
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
    /// The columns its rows are sorted by, in its files' order (`sort_by`).
    pub sort_by: Vec<String>,
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
    if let Some(missing) = output.pii.keys().find(|c| !columns.contains(c)) {
        return Some(format!(
            "pii column `{missing}` is not a column of the step"
        ));
    }
    [
        ("sort_by", &output.sort_by),
        ("bloom_filter", &output.layout.bloom_filter),
    ]
    .into_iter()
    .find_map(|(key, keys)| {
        if let Some(dropped) = keys
            .iter()
            .find(|c| output.pii.get(*c) == Some(&PiiPolicy::Drop))
        {
            return Some(format!(
                "{key} column `{dropped}` is dropped by its pii policy"
            ));
        }
        let missing = keys.iter().find(|c| !columns.contains(c))?;
        Some(format!(
            "{key} column `{missing}` is not a column of the step"
        ))
    })
}

/// Text columns of `fields` that look like contact details (a name holding
/// `email` or `phone`) and that `output` publishes without a `pii` policy:
/// `c360 validate` warns about each. Counts and flags (`email_sent`,
/// `email_opt_in`) are not text and are not named.
pub fn unprotected_pii(output: &OutputSpec, fields: &[FieldRef]) -> Vec<String> {
    fields
        .iter()
        .filter(|f| {
            let lower = f.name().to_lowercase();
            matches!(
                f.data_type(),
                DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
            ) && (lower.contains("email") || lower.contains("phone"))
                && !output.pii.contains_key(f.name())
        })
        .map(|f| f.name().clone())
        .collect()
}

/// Whether any output hashes a column (and so needs the `pii_hash` key).
pub fn hashes_pii(outputs: &[OutputSpec]) -> bool {
    outputs
        .iter()
        .any(|o| o.pii.values().any(|p| *p == PiiPolicy::Hash))
}

fn column_names(frame: &DataFrame) -> Vec<String> {
    frame
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect()
}

/// `frame` with `output`'s pii policies applied: hashed and masked columns
/// replaced (as text) under their own names, dropped ones left out.
fn apply_pii(
    ctx: &SessionContext,
    output: &OutputSpec,
    frame: DataFrame,
) -> datafusion::common::Result<DataFrame> {
    if output.pii.values().all(|p| *p == PiiPolicy::Keep) {
        return Ok(frame);
    }
    let mut exprs = Vec::new();
    for field in frame.schema().fields() {
        let name = field.name().as_str();
        let column = ident(name);
        let udf = match output.pii.get(name).copied().unwrap_or_default() {
            PiiPolicy::Keep => {
                exprs.push(column);
                continue;
            }
            PiiPolicy::Drop => continue,
            PiiPolicy::Hash => ctx.udf("pii_hash")?,
            PiiPolicy::Mask => ctx.udf("pii_mask")?,
        };
        exprs.push(udf.call(vec![cast(column, DataType::Utf8)]).alias(name));
    }
    frame.select(exprs)
}

/// Writes `output`'s partition of `date` to staging under `tmp` (in the
/// warehouse's store), sorted by its keys; `location` is the output's folder,
/// which must be in the same store. `on_cluster`: the query runs on a Ballista
/// cluster, whose executor writes the file ([`super::write_frame`]).
pub async fn stage_output(
    ctx: &SessionContext,
    output: &OutputSpec,
    location: &StorageLocation,
    warehouse: &StorageLocation,
    date: NaiveDate,
    tmp: &Path,
    on_cluster: bool,
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
    if let Some(message) = key_problem(output, &column_names(&frame)) {
        return Err(spec_err(message));
    }
    let partition: Vec<String> = output
        .partition_by
        .iter()
        .map(|_| super::snapshot_partition(date))
        .collect();
    frame = apply_pii(ctx, output, frame).map_err(query_err)?;
    let columns = column_names(&frame);
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
    let to = super::StagingDir {
        store: warehouse.store.clone(),
        store_url: warehouse.store_url.as_str(),
        dir: &staging_dir,
    };
    let (compression, layout) = (output.compression, &output.layout);
    let write = super::write_frame(&output.name, frame, to, compression, layout, on_cluster);
    let (staged, spills) = write.await?;
    Ok(StagedOutput {
        name: output.name.clone(),
        root: location.prefix.clone(),
        partitioned: !partition.is_empty(),
        target,
        staged,
        sort_by: output.sort_by.clone(),
        spills,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::{Compression, FileLayout};
    use datafusion::arrow::datatypes::Field;
    use std::sync::Arc;

    fn output(pii: &[(&str, PiiPolicy)]) -> OutputSpec {
        OutputSpec {
            name: "customers".into(),
            path: "{warehouse}/customers".into(),
            partition_by: vec![],
            sort_by: vec!["customer_key".into()],
            compression: Compression::Zstd,
            layout: FileLayout::default(),
            pii: pii.iter().map(|(c, p)| (c.to_string(), *p)).collect(),
        }
    }

    #[test]
    fn pii_policies_must_name_columns_and_keep_the_sort_keys() {
        let columns = vec!["customer_key".to_string(), "email".to_string()];
        assert_eq!(
            key_problem(&output(&[("mail", PiiPolicy::Hash)]), &columns).as_deref(),
            Some("pii column `mail` is not a column of the step")
        );
        assert_eq!(
            key_problem(&output(&[("customer_key", PiiPolicy::Drop)]), &columns).as_deref(),
            Some("sort_by column `customer_key` is dropped by its pii policy")
        );
        // A hashed key still sorts and joins.
        assert_eq!(
            key_problem(&output(&[("customer_key", PiiPolicy::Hash)]), &columns),
            None
        );
    }

    #[test]
    fn only_text_contact_columns_without_a_policy_are_flagged() {
        let fields: Vec<FieldRef> = vec![
            Arc::new(Field::new("email", DataType::Utf8, true)),
            Arc::new(Field::new("work_phone", DataType::Utf8View, true)),
            Arc::new(Field::new("email_sent", DataType::Int64, false)),
            Arc::new(Field::new("city", DataType::Utf8, true)),
        ];
        assert_eq!(
            unprotected_pii(&output(&[]), &fields),
            vec!["email".to_string(), "work_phone".to_string()]
        );
        assert_eq!(
            unprotected_pii(&output(&[("email", PiiPolicy::Keep)]), &fields),
            vec!["work_phone".to_string()]
        );
    }
}
