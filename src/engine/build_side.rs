//! A physical optimizer rule that puts the smaller input on a hash join's build
//! side, judged by how many rows each side can carry at most times its row width.
//!
//! DataFusion's `JoinSelection` orients hash joins by estimated statistics, and
//! in DataFusion 55 those collapse on the plans c360 runs: a key join of order
//! lines with a 4-row currency table is estimated at 4 rows (the Cartesian
//! product over the larger side's row count, taken as its distinct count), so
//! the next join builds its hash table on millions of order lines — which cannot
//! spill (apache/datafusion#12952) and exhausted a 2 GiB pool at 1,000,000
//! customers. This rule runs right after `JoinSelection` and swaps a join whose
//! build side can carry more bytes (rows times row width) than its probe side.
//!
//! A side's bound comes from exact counts: a scan's row count (staged Parquet
//! footers, in-memory tables), carried up through filters, projections, sorts,
//! windows and aggregations (which never add rows), summed over unions; a key
//! join carries the larger of its inputs (each row of the larger side meets at
//! most one row of the other in c360's SQL, which joins on keys), a semi or anti
//! join its preserved side. Where a count is unknown the rule leaves the join as
//! it is.

use std::sync::Arc;

use datafusion::common::JoinType;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::error::Result;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::joins::{HashJoinExec, SortMergeJoinExec};
use datafusion::physical_plan::statistics::{StatisticsArgs, StatisticsContext};
use datafusion::physical_plan::union::UnionExec;

/// Swaps hash joins whose build (left) side can carry more bytes than the probe side.
#[derive(Debug, Default)]
pub struct BuildSmallerSide;

impl PhysicalOptimizerRule for BuildSmallerSide {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        plan.transform_up(|node| {
            let Some(join) = node.downcast_ref::<HashJoinExec>() else {
                return Ok(Transformed::no(node));
            };
            let swap = join.join_type().supports_swap()
                && !join.null_aware
                && matches!(
                    (byte_bound(join.left()), byte_bound(join.right())),
                    (Some(build), Some(probe)) if build > probe
                );
            if swap {
                Ok(Transformed::yes(join.swap_inputs(*join.partition_mode())?))
            } else {
                Ok(Transformed::no(node))
            }
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "c360_build_smaller_side"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// [`row_bound`] times the width of a row of `plan`'s output: a hash table holds
/// every column of its side, so of two sides with as many rows the narrower one
/// is built.
pub fn byte_bound(plan: &Arc<dyn ExecutionPlan>) -> Option<u64> {
    let width: u64 = plan
        .schema()
        .fields()
        .iter()
        .map(|f| f.data_type().primitive_width().unwrap_or(VARIABLE_WIDTH) as u64)
        .sum();
    Some(row_bound(plan)? * width.max(1))
}

/// Bytes taken for a value of a variable-width type (text, lists): an offset or
/// view plus a short string.
const VARIABLE_WIDTH: usize = 24;

/// The most rows `plan` can produce, from exact counts below it; see the module docs.
pub fn row_bound(plan: &Arc<dyn ExecutionPlan>) -> Option<u64> {
    let children = plan.children();
    if children.is_empty() {
        let stats = StatisticsContext::new()
            .compute(plan.as_ref(), &StatisticsArgs::new())
            .ok()?;
        return stats.num_rows.get_value().map(|&n| n as u64);
    }
    let join = if let Some(j) = plan.downcast_ref::<HashJoinExec>() {
        Some(*j.join_type())
    } else {
        plan.downcast_ref::<SortMergeJoinExec>()
            .map(|j| j.join_type())
    };
    if let Some(join_type) = join {
        let (left, right) = (row_bound(children[0]), row_bound(children[1]));
        return match join_type {
            JoinType::LeftSemi | JoinType::LeftAnti | JoinType::LeftMark => left,
            JoinType::RightSemi | JoinType::RightAnti | JoinType::RightMark => right,
            JoinType::Inner | JoinType::Left | JoinType::Right | JoinType::Full => {
                Some(left?.max(right?))
            }
        };
    }
    let mut bounds = children.iter().map(|c| row_bound(c));
    if plan.is::<UnionExec>() {
        bounds.sum()
    } else if children.len() == 1 {
        bounds.next().flatten()
    } else {
        // Any other operator with several inputs (a cross join): unknown.
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{EngineOptions, runtime, session};
    use datafusion::arrow::array::{Int64Array, RecordBatch};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use datafusion::datasource::MemTable;

    fn table(rows: i64) -> Arc<MemTable> {
        let schema = Arc::new(Schema::new(vec![Field::new("k", DataType::Int64, false)]));
        let keys = Int64Array::from((0..rows).collect::<Vec<_>>());
        let batch = RecordBatch::try_new(schema.clone(), vec![Arc::new(keys)]).unwrap();
        Arc::new(MemTable::try_new(schema, vec![vec![batch]]).unwrap())
    }

    /// (build bound, probe bound) in rows of every hash join in `plan`.
    fn hash_joins(plan: &Arc<dyn ExecutionPlan>, out: &mut Vec<(u64, u64)>) {
        if let Some(join) = plan.downcast_ref::<HashJoinExec>() {
            out.push((
                row_bound(join.left()).unwrap(),
                row_bound(join.right()).unwrap(),
            ));
        }
        for child in plan.children() {
            hash_joins(child, out);
        }
    }

    // The shape of sql/marts/order_lines.sql: lines joined to a tiny rate table, then
    // anti-joined with a small erasure list. DataFusion estimates the first join
    // at 4 rows and would build the second on all lines.
    #[tokio::test]
    async fn every_hash_join_builds_its_smaller_side() {
        let options = EngineOptions::default();
        let ctx = session(&options, runtime(&options).unwrap());
        ctx.register_table("lines", table(200_000)).unwrap();
        ctx.register_table("rates", table(4)).unwrap();
        ctx.register_table("erased", table(30)).unwrap();
        let frame = ctx
            .sql(
                "SELECT l.k FROM lines l JOIN rates r ON r.k = l.k % 4 \
                 WHERE NOT EXISTS (SELECT 1 FROM erased x WHERE x.k = l.k)",
            )
            .await
            .unwrap();
        let plan = frame.clone().create_physical_plan().await.unwrap();
        let mut joins = Vec::new();
        hash_joins(&plan, &mut joins);
        assert_eq!(joins.len(), 2, "{joins:?}");
        assert!(
            joins.iter().all(|(build, probe)| build <= probe),
            "a hash join builds its larger side: {joins:?}"
        );
        let rows: usize = frame
            .collect()
            .await
            .unwrap()
            .iter()
            .map(RecordBatch::num_rows)
            .sum();
        assert_eq!(rows, 200_000 - 30);
    }
}
