//! `ROW_NUMBER() OVER (PARTITION BY … ORDER BY …)` over input already sorted for
//! it, numbered by comparing key columns instead of by DataFusion's general
//! window operator.
//!
//! The step SQL dedupes every raw extract with this window (DATA_CONTRACT.md,
//! "Duplicates": `ROW_NUMBER() … = 1` per key, latest file and line first), and
//! its keys are nearly unique: almost every row is a partition of its own. In
//! DataFusion 55 `BoundedWindowAggExec` keeps a state per partition, keyed by
//! the partition's key as a `Vec<ScalarValue>` in a hash map, and slices the
//! batch per partition; on a 100,000-customer load that per-row bookkeeping
//! (`ScalarValue` building, hashing and dropping, `slice`) was about 5% of all
//! CPU (BENCHMARKS.md). With the input sorted on the partition keys (the
//! window's `Sorted` mode, which the planner arranges with a sort), a row number
//! is a counter that restarts where the key changes: Arrow's columnar
//! [`partition`] finds those points per batch, and one comparison per batch
//! carries a key that runs on into the next batch.
//!
//! [`SortedRowNumber`], the optimizer rule, runs after all of DataFusion's and
//! replaces a window exec holding exactly one `row_number` in `Sorted` mode by
//! [`RowNumberExec`], which outputs the same rows, in the same order, with the
//! same schema and plan properties. Any other window is left alone.

use std::fmt;
use std::sync::Arc;

use datafusion::arrow::array::make_comparator;
use datafusion::arrow::array::{ArrayRef, RecordBatch, UInt64Array};
use datafusion::arrow::compute::{SortOptions, partition};
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::arrow::error::ArrowError;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::error::Result;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::OrderingRequirements;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::window::StandardWindowExpr;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::execution_plan::ChildrenPropertiesMode;
use datafusion::physical_plan::metrics::{BaselineMetrics, ExecutionPlanMetricsSet, MetricsSet};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::windows::{BoundedWindowAggExec, WindowUDFExpr};
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, InputDistributionRequirements, InputOrderMode,
    PlanProperties, ReplaceChildrenOptions,
};
use futures::StreamExt;

/// Replaces each sorted single-`row_number` window by a [`RowNumberExec`].
#[derive(Debug, Default)]
pub struct SortedRowNumber;

impl PhysicalOptimizerRule for SortedRowNumber {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        plan.transform_up(|node| match RowNumberExec::replacing(&node) {
            Some(exec) => Ok(Transformed::yes(Arc::new(exec) as Arc<dyn ExecutionPlan>)),
            None => Ok(Transformed::no(node)),
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "c360_sorted_row_number"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// `row_number()` over input sorted on its partition keys (then its order keys):
/// the window exec it replaces, computed by key comparison.
#[derive(Debug)]
pub struct RowNumberExec {
    /// The replaced window exec: its input, schema, properties and requirements.
    window: Arc<BoundedWindowAggExec>,
    partition_by: Vec<Arc<dyn PhysicalExpr>>,
    metrics: ExecutionPlanMetricsSet,
}

impl RowNumberExec {
    /// The replacement for `plan` when it is a `BoundedWindowAggExec` in `Sorted`
    /// mode computing only `row_number()` with a `PARTITION BY` into a UInt64.
    fn replacing(plan: &Arc<dyn ExecutionPlan>) -> Option<Self> {
        let window = plan.downcast_ref::<BoundedWindowAggExec>()?;
        let [expr] = window.window_expr() else {
            return None;
        };
        let standard = expr.as_any().downcast_ref::<StandardWindowExpr>()?;
        let udf = standard
            .get_standard_func_expr()
            .as_any()
            .downcast_ref::<WindowUDFExpr>()?;
        let numbers_u64 = window.schema().fields().last()?.data_type() == &DataType::UInt64;
        let applies = udf.fun().name() == "row_number"
            && window.input_order_mode == InputOrderMode::Sorted
            && !expr.partition_by().is_empty()
            && numbers_u64;
        applies.then(|| Self {
            window: Arc::new(window.clone()),
            partition_by: expr.partition_by().to_vec(),
            metrics: ExecutionPlanMetricsSet::new(),
        })
    }
}

impl DisplayAs for RowNumberExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        let keys: Vec<String> = self.partition_by.iter().map(|e| e.to_string()).collect();
        write!(f, "RowNumberExec: partition_by=[{}]", keys.join(", "))
    }
}

impl ExecutionPlan for RowNumberExec {
    fn name(&self) -> &str {
        "RowNumberExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        self.window.properties()
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![self.window.input()]
    }

    fn apply_expressions(
        &self,
        f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        self.window.apply_expressions(f)
    }

    fn input_distribution_requirements(&self) -> InputDistributionRequirements {
        self.window.input_distribution_requirements()
    }

    fn required_input_ordering(&self) -> Vec<Option<OrderingRequirements>> {
        self.window.required_input_ordering()
    }

    fn maintains_input_order(&self) -> Vec<bool> {
        vec![true]
    }

    fn replace_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
        options: ReplaceChildrenOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let window = Arc::clone(&self.window).replace_children(children, options)?;
        let exec = Self::replacing(&window);
        Ok(exec.map_or(window, |e| Arc::new(e) as Arc<dyn ExecutionPlan>))
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        self.replace_children(
            children,
            ReplaceChildrenOptions::new(ChildrenPropertiesMode::Recompute),
        )
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let input = self.window.input().execute(partition, context)?;
        let schema = self.schema();
        let mut counter = Counter {
            schema: Arc::clone(&schema),
            partition_by: self.partition_by.clone(),
            last_key: None,
            last_number: 0,
        };
        let baseline = BaselineMetrics::new(&self.metrics, partition);
        let numbered = input.map(move |batch| {
            let _timer = baseline.elapsed_compute().timer();
            let out = counter.number(batch?)?;
            baseline.record_output(out.num_rows());
            Ok(out)
        });
        Ok(Box::pin(RecordBatchStreamAdapter::new(schema, numbered)))
    }

    fn metrics(&self) -> Option<MetricsSet> {
        Some(self.metrics.clone_inner())
    }
}

/// Numbering state of one stream: the key and number of the last row seen.
struct Counter {
    schema: SchemaRef,
    partition_by: Vec<Arc<dyn PhysicalExpr>>,
    /// The partition key columns of the last row, as one-row arrays.
    last_key: Option<Vec<ArrayRef>>,
    last_number: u64,
}

impl Counter {
    /// `batch` with its row numbers appended.
    fn number(&mut self, batch: RecordBatch) -> Result<RecordBatch> {
        let rows = batch.num_rows();
        let keys = self
            .partition_by
            .iter()
            .map(|e| e.evaluate(&batch)?.into_array(rows))
            .collect::<Result<Vec<_>>>()?;
        let mut numbers = Vec::with_capacity(rows);
        if rows > 0 {
            let continues = match &self.last_key {
                Some(last) => same_key(last, &keys)?,
                None => false,
            };
            for (i, range) in partition(&keys)?.ranges().into_iter().enumerate() {
                let base = if i == 0 && continues {
                    self.last_number
                } else {
                    0
                };
                numbers.extend((1..=range.len() as u64).map(|n| base + n));
            }
            self.last_number = numbers.last().copied().unwrap_or(0);
            self.last_key = Some(keys.iter().map(|k| k.slice(rows - 1, 1)).collect());
        }
        let mut columns = batch.columns().to_vec();
        columns.push(Arc::new(UInt64Array::from(numbers)));
        Ok(RecordBatch::try_new(Arc::clone(&self.schema), columns)?)
    }
}

/// Whether the one-row key `last` equals the first row of `keys` (nulls equal
/// nulls, as PARTITION BY groups them).
fn same_key(last: &[ArrayRef], keys: &[ArrayRef]) -> Result<bool, ArrowError> {
    for (l, k) in last.iter().zip(keys) {
        let cmp = make_comparator(l.as_ref(), k.as_ref(), SortOptions::default())?;
        if cmp(0, 0).is_ne() {
            return Ok(false);
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{EngineOptions, runtime, session};
    use datafusion::arrow::array::{Array, Int64Array, StringArray};
    use datafusion::arrow::datatypes::{Field, Schema};
    use datafusion::arrow::util::pretty::pretty_format_batches;
    use datafusion::datasource::MemTable;
    use datafusion::physical_expr::expressions::Column;
    use datafusion::physical_plan::displayable;

    fn numbers(batch: &RecordBatch) -> Vec<u64> {
        let column = batch.columns().last().unwrap();
        let array = column.as_any().downcast_ref::<UInt64Array>().unwrap();
        array.values().to_vec()
    }

    // A key that runs on across batch ends keeps counting; nulls are one key.
    #[test]
    fn numbers_restart_where_the_key_changes_across_batches() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("k", DataType::Utf8, true),
            Field::new("rn", DataType::UInt64, false),
        ]));
        let input = Arc::new(Schema::new(vec![Field::new("k", DataType::Utf8, true)]));
        let mut counter = Counter {
            schema,
            partition_by: vec![Arc::new(Column::new("k", 0))],
            last_key: None,
            last_number: 0,
        };
        let batches: [&[Option<&str>]; 5] = [
            &[Some("a"), Some("a"), Some("b")],
            &[Some("b"), Some("b"), Some("c")],
            &[],
            &[Some("c"), None],
            &[None, Some("d")],
        ];
        let got: Vec<Vec<u64>> = batches
            .iter()
            .map(|keys| {
                let column = Arc::new(StringArray::from(keys.to_vec()));
                let batch = RecordBatch::try_new(Arc::clone(&input), vec![column]).unwrap();
                numbers(&counter.number(batch).unwrap())
            })
            .collect();
        assert_eq!(
            got,
            vec![vec![1, 2, 1], vec![2, 3, 1], vec![], vec![2, 1], vec![2, 1]]
        );
    }

    // The dedupe shape of sql/: the latest copy per two-column key gets 1.
    #[tokio::test]
    async fn the_sql_dedupe_runs_on_the_row_number_exec() {
        let options = EngineOptions::default();
        let ctx = session(&options, runtime(&options).unwrap());
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Utf8, false),
            Field::new("line", DataType::Int64, false),
            Field::new("file", DataType::Utf8, false),
        ]));
        let batch = |ids: Vec<&str>, lines: Vec<i64>, files: Vec<&str>| {
            let columns: Vec<ArrayRef> = vec![
                Arc::new(StringArray::from(ids)),
                Arc::new(Int64Array::from(lines)),
                Arc::new(StringArray::from(files)),
            ];
            RecordBatch::try_new(Arc::clone(&schema), columns).unwrap()
        };
        let table = MemTable::try_new(
            Arc::clone(&schema),
            vec![
                vec![batch(
                    vec!["t1", "t2", "t1"],
                    vec![1, 1, 1],
                    vec!["f1", "f1", "f2"],
                )],
                vec![batch(
                    vec!["t1", "t1", "t2"],
                    vec![2, 1, 2],
                    vec!["f1", "f3", "f2"],
                )],
            ],
        )
        .unwrap();
        ctx.register_table("t", Arc::new(table)).unwrap();
        let sql = "SELECT id, line, file, ROW_NUMBER() OVER (
                       PARTITION BY id, line ORDER BY file DESC) AS copy_rank
                   FROM t ORDER BY id, line, file";
        let frame = ctx.sql(sql).await.unwrap();
        let plan = frame.clone().create_physical_plan().await.unwrap();
        let shown = displayable(plan.as_ref()).indent(false).to_string();
        assert!(shown.contains("RowNumberExec"), "{shown}");
        assert!(!shown.contains("BoundedWindowAggExec"), "{shown}");
        let got = pretty_format_batches(&frame.collect().await.unwrap())
            .unwrap()
            .to_string();
        let want = "\
+----+------+------+-----------+
| id | line | file | copy_rank |
+----+------+------+-----------+
| t1 | 1    | f1   | 3         |
| t1 | 1    | f2   | 2         |
| t1 | 1    | f3   | 1         |
| t1 | 2    | f1   | 1         |
| t2 | 1    | f1   | 1         |
| t2 | 2    | f2   | 1         |
+----+------+------+-----------+";
        assert_eq!(got, want);
    }

    // Other windows keep DataFusion's operator.
    #[tokio::test]
    async fn other_windows_are_left_alone() {
        let options = EngineOptions::default();
        let ctx = session(&options, runtime(&options).unwrap());
        for sql in [
            "SELECT RANK() OVER (PARTITION BY a ORDER BY b) FROM (VALUES (1, 2)) v(a, b)",
            "SELECT ROW_NUMBER() OVER (ORDER BY b) FROM (VALUES (1, 2)) v(a, b)",
        ] {
            let plan = ctx
                .sql(sql)
                .await
                .unwrap()
                .create_physical_plan()
                .await
                .unwrap();
            let shown = displayable(plan.as_ref()).indent(false).to_string();
            assert!(!shown.contains("RowNumberExec"), "{sql}: {shown}");
        }
    }
}
