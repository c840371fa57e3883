//! Planning an incremental step over some of its sources' days, and merging
//! its rows into the carried base.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::NaiveDate;
use datafusion::catalog::{MemTable, MemoryCatalogProviderList};
use datafusion::common::Column;
use datafusion::execution::SessionStateBuilder;
use datafusion::functions_aggregate::expr_fn::{max, min, sum};
use datafusion::logical_expr::{LogicalPlanBuilder, cast};
use datafusion::prelude::{DataFrame, Expr, SessionContext, col};
use object_store::path::Path;

use crate::engine;
use crate::job::{DedupRule, Incremental, Merge};
use crate::source::dedup::{duplicates_table, register_deduped};

/// What a step is planned over: some files of each source it reads.
pub(super) struct Inputs<'a> {
    /// Source -> the files bound to it.
    pub(super) files: BTreeMap<&'a str, Vec<Path>>,
    /// Sources read deduplicated (`<source>_deduped`), with their rule.
    pub(super) deduped: &'a BTreeMap<&'a str, DedupRule>,
    pub(super) date: NaiveDate,
    pub(super) store_url: &'a str,
}

impl Inputs<'_> {
    /// The step's SQL `text` planned on `sub` with each source bound to its
    /// files, and its deduplicated rows to those files' winners among the
    /// run's duplicates (registered on `ctx`): every copy of a key is in some
    /// day, so a day's winners are found from the run's duplicates alone.
    pub(super) async fn step(
        &self,
        ctx: &SessionContext,
        sub: &SessionContext,
        text: &str,
    ) -> Result<DataFrame, datafusion::error::DataFusionError> {
        for (source, files) in &self.files {
            register_files(ctx, sub, source, self.store_url, files).await?;
            if let Some(rule) = self.deduped.get(source) {
                let duplicates = duplicates_table(source);
                let found = ctx.table_exist(duplicates.as_str())?;
                if found {
                    let provider = ctx.table_provider(duplicates.as_str()).await?;
                    sub.register_table(duplicates.as_str(), provider)?;
                }
                let registered = found.then_some(duplicates.as_str());
                register_deduped(sub, rule, source, registered, self.date).await?;
            }
        }
        sub.sql(text).await
    }
}

/// A session with `ctx`'s settings, functions and runtime but its own (empty)
/// catalog, where a step's sources can be bound to some of their days.
pub(super) fn sub_context(ctx: &SessionContext) -> SessionContext {
    let state = ctx.state();
    let config = state
        .config()
        .clone()
        .with_create_default_catalog_and_schema(true);
    let state = SessionStateBuilder::new_from_existing(state)
        .with_config(config)
        .with_catalog_list(Arc::new(MemoryCatalogProviderList::new()))
        .build();
    SessionContext::new_with_state(state)
}

/// Registers `source` on `sub` over `files`, or empty with the schema it has on `ctx`.
async fn register_files(
    ctx: &SessionContext,
    sub: &SessionContext,
    source: &str,
    store_url: &str,
    files: &[Path],
) -> Result<(), datafusion::error::DataFusionError> {
    if files.is_empty() {
        let schema = ctx.table_provider(source).await?.schema();
        sub.register_table(source, Arc::new(MemTable::try_new(schema, vec![vec![]])?))?;
        return Ok(());
    }
    engine::register_staged_files(sub, source, store_url, files).await
}

/// The rows of Parquet files `deltas` (the step's rows); `None` when there are none.
pub(super) async fn delta_rows(
    sub: &SessionContext,
    store_url: &str,
    deltas: &[Path],
) -> Result<Option<DataFrame>, datafusion::error::DataFusionError> {
    if deltas.is_empty() {
        return Ok(None);
    }
    engine::register_staged_files(sub, "_c360_deltas", store_url, deltas).await?;
    Ok(Some(sub.table("_c360_deltas").await?))
}

/// The carried rows of the Parquet `base` files (unique on every column but
/// the merged ones) with the step's rows `new` merged in: `new` is merged on
/// its own (it is small: a few days), then joined to the base on every other
/// column (NULL matching NULL), each merged column taking the smaller or larger
/// value or the sum. One pass over the base, and no hash table of all its rows: the join
/// is built on the new rows. No base: `new` merged.
pub(super) async fn merge_into(
    sub: &SessionContext,
    store_url: &str,
    base: &[Path],
    new: DataFrame,
    incremental: &Incremental,
) -> Result<DataFrame, datafusion::error::DataFusionError> {
    let names = columns_of(&new, incremental)?;
    let schema = new.schema().as_arrow().clone();
    let new = merge(new, &names, incremental)?;
    if base.is_empty() {
        return Ok(new);
    }
    sub.register_table("_c360_new", new.into_view())?;
    engine::register_staged_files(sub, "_c360_base", store_url, base).await?;
    let mut select = Vec::new();
    let mut on = Vec::new();
    for name in &names {
        let c = engine::sql_ident(name);
        let (b, n) = (format!("b.{c}"), format!("n.{c}"));
        select.push(match incremental.merge_of(name) {
            None => {
                on.push(format!("({b} IS NOT DISTINCT FROM {n})"));
                format!("COALESCE({b}, {n}) AS {c}")
            }
            // NULLs merge as MIN, MAX and SUM treat them: the other value wins.
            Some(m) => {
                let both = match m {
                    Merge::Min => format!("CASE WHEN {n} < {b} THEN {n} ELSE {b} END"),
                    Merge::Max => format!("CASE WHEN {n} > {b} THEN {n} ELSE {b} END"),
                    // Cast back: a sum's type is the column's, not a widened one.
                    Merge::Sum => {
                        let t = schema.field_with_name(name)?.data_type();
                        format!("arrow_cast({b} + {n}, '{t}')")
                    }
                };
                format!(
                    "CASE WHEN {b} IS NULL THEN {n} WHEN {n} IS NULL THEN {b} \
                     ELSE {both} END AS {c}"
                )
            }
        });
    }
    let on = if on.is_empty() {
        "TRUE".to_string()
    } else {
        on.join(" AND ")
    };
    let sql = format!(
        "SELECT {} FROM _c360_base b FULL JOIN _c360_new n ON {on}",
        select.join(", ")
    );
    sub.sql(&sql).await
}

/// The columns of `frame`, in order; an error when a merged column is not one.
fn columns_of(
    frame: &DataFrame,
    incremental: &Incremental,
) -> Result<Vec<String>, datafusion::error::DataFusionError> {
    let names: Vec<String> = (frame.schema().fields().iter())
        .map(|f| f.name().clone())
        .collect();
    let merged = incremental.merge.iter().map(|(c, _)| c);
    if let Some(missing) = merged.clone().find(|c| !names.contains(c)) {
        return Err(datafusion::error::DataFusionError::Plan(format!(
            "incremental.merge names `{missing}`, which the step's result does not have"
        )));
    }
    Ok(names)
}

/// `frame` (of columns `names`) grouped on every column but the merged ones,
/// each merged by its function; columns in their order.
fn merge(
    frame: DataFrame,
    names: &[String],
    incremental: &Incremental,
) -> Result<DataFrame, datafusion::error::DataFusionError> {
    let column = |n: &str| col(Column::from_name(n));
    let keys: Vec<Expr> = (names.iter())
        .filter(|n| incremental.merge_of(n).is_none())
        .map(|n| column(n))
        .collect();
    let merged: Vec<Expr> = (incremental.merge.iter())
        .map(|(n, m)| match m {
            Merge::Min => min(column(n)).alias(n),
            Merge::Max => max(column(n)).alias(n),
            Merge::Sum => sum(column(n)).alias(n),
        })
        .collect();
    // A sum's type is the column's, not SUM's widened one.
    let schema = frame.schema().clone();
    let select = (names.iter())
        .map(|n| match incremental.merge_of(n) {
            Some(Merge::Sum) => {
                let t = schema.field_with_unqualified_name(n)?.data_type().clone();
                Ok(cast(column(n), t).alias(n))
            }
            _ => Ok(column(n)),
        })
        .collect::<Result<Vec<_>, datafusion::error::DataFusionError>>()?;
    // Not `DataFrame::aggregate`: it groups on the columns the keys determine
    // too (a `GROUP BY` step's output declares them), the merged ones among them.
    let (state, plan) = frame.into_parts();
    let plan = LogicalPlanBuilder::from(plan)
        .aggregate(keys, merged)?
        .project(select)?
        .build()?;
    Ok(DataFrame::new(state, plan))
}
