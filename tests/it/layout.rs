//! Output files sized for BI (issue 12, "Outputs sized for BI"): row groups close
//! at `row_group_size`, files roll at `target_file_size`, a `bloom_filter` column
//! carries a filter in every row group, and a point lookup on the sort key reads
//! one row group of many — the row groups its statistics cannot rule out, minus
//! those its bloom filter rules out.

use std::sync::Arc;

use c360::job::{Compression, FileLayout};
use c360::outputs::write_stream;
use datafusion::arrow::array::{Int64Array, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::parquet::file::reader::{FileReader, SerializedFileReader};
use datafusion::physical_plan::metrics::MetricValue;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{ExecutionPlan, collect};
use datafusion::prelude::{ParquetReadOptions, SessionContext};
use object_store::ObjectStore;
use object_store::local::LocalFileSystem;
use object_store::path::Path;

/// 40 batches of 250 sorted even keys (0, 2, …, 19998), as a sorted output is.
fn even_keys() -> Vec<RecordBatch> {
    let schema = Arc::new(Schema::new(vec![Field::new(
        "customer_key",
        DataType::Int64,
        false,
    )]));
    (0..40)
        .map(|b| {
            let keys: Vec<i64> = (0..250).map(|i| 2 * (b * 250 + i)).collect();
            RecordBatch::try_new(schema.clone(), vec![Arc::new(Int64Array::from(keys))]).unwrap()
        })
        .collect()
}

async fn write(dir: &std::path::Path, layout: &FileLayout) -> c360::outputs::StagedPartition {
    let store: Arc<dyn ObjectStore> = Arc::new(LocalFileSystem::new_with_prefix(dir).unwrap());
    let batches = even_keys();
    let stream = Box::pin(RecordBatchStreamAdapter::new(
        batches[0].schema(),
        futures::stream::iter(batches.into_iter().map(Ok)),
    ));
    write_stream(
        "customer_360",
        stream,
        store,
        &Path::from("out"),
        Compression::Zstd,
        layout,
    )
    .await
    .unwrap()
}

/// (pruned, matched) of the scan's pruning metric `name`, summed over partitions.
fn pruning(plan: &Arc<dyn ExecutionPlan>, name: &str) -> (usize, usize) {
    let mut total = (0, 0);
    if let Some(metrics) = plan.metrics() {
        for metric in metrics.iter() {
            if let MetricValue::PruningMetrics {
                name: n,
                pruning_metrics,
            } = metric.value()
                && n.as_ref() == name
            {
                total.0 += pruning_metrics.pruned();
                total.1 += pruning_metrics.matched();
            }
        }
    }
    for child in plan.children() {
        let (p, m) = pruning(child, name);
        total = (total.0 + p, total.1 + m);
    }
    total
}

/// Runs `sql` on the files in `dir`; returns the rows and the scan's row-group
/// pruning by statistics and by bloom filter.
async fn lookup(dir: &std::path::Path, sql: &str) -> (usize, (usize, usize), (usize, usize)) {
    let ctx = SessionContext::new();
    let url = format!("{}/out/", dir.display());
    ctx.register_parquet("customer_360", &url, ParquetReadOptions::default())
        .await
        .unwrap();
    let plan = ctx
        .sql(sql)
        .await
        .unwrap()
        .create_physical_plan()
        .await
        .unwrap();
    let rows: usize = collect(plan.clone(), ctx.task_ctx())
        .await
        .unwrap()
        .iter()
        .map(RecordBatch::num_rows)
        .sum();
    let stats = pruning(&plan, "row_groups_pruned_statistics");
    let bloom = pruning(&plan, "row_groups_pruned_bloom_filter");
    (rows, stats, bloom)
}

#[tokio::test]
async fn a_key_lookup_reads_one_row_group_and_the_bloom_filter_skips_absent_keys() {
    let dir = tempfile::tempdir().unwrap();
    let layout = FileLayout {
        row_group_bytes: 1024,
        bloom_filter: vec!["customer_key".into()],
        ..FileLayout::default()
    };
    let staged = write(dir.path(), &layout).await;
    assert_eq!(staged.files.len(), 1, "the default target keeps one file");
    assert_eq!(staged.rows(), 10_000);

    let file = std::fs::File::open(dir.path().join("out/part-00000.parquet")).unwrap();
    let meta = SerializedFileReader::new(file).unwrap().metadata().clone();
    let groups = meta.num_row_groups();
    assert!(
        groups >= 10,
        "1 KiB row groups of 10,000 keys: got {groups}"
    );
    for group in meta.row_groups() {
        assert!(
            group.column(0).bloom_filter_offset().is_some(),
            "every row group carries a bloom filter on customer_key"
        );
    }

    // A key that exists: the sorted statistics leave exactly one row group.
    let (rows, (pruned, matched), _) = lookup(
        dir.path(),
        "SELECT * FROM customer_360 WHERE customer_key = 5000",
    )
    .await;
    assert_eq!(rows, 1);
    assert_eq!((pruned, matched), (groups - 1, 1));

    // An odd key lies inside one row group's min/max but is in no file: the
    // bloom filter rules that last row group out too.
    let (rows, (_, matched), (bloom_pruned, _)) = lookup(
        dir.path(),
        "SELECT * FROM customer_360 WHERE customer_key = 5001",
    )
    .await;
    assert_eq!(rows, 0);
    assert_eq!(matched, 1);
    assert_eq!(bloom_pruned, 1);
}

#[tokio::test]
async fn without_a_bloom_filter_column_no_filter_is_written_and_files_roll_at_the_target() {
    let dir = tempfile::tempdir().unwrap();
    let layout = FileLayout {
        target_file_bytes: 2048,
        row_group_bytes: 1024,
        ..FileLayout::default()
    };
    let staged = write(dir.path(), &layout).await;
    assert!(
        staged.files.len() > 1,
        "a 2 KiB target rolls the 10,000 keys over"
    );
    assert_eq!(staged.rows(), 10_000);
    let file = std::fs::File::open(dir.path().join("out/part-00000.parquet")).unwrap();
    let meta = SerializedFileReader::new(file).unwrap().metadata().clone();
    assert!(
        meta.row_groups()
            .iter()
            .all(|g| g.column(0).bloom_filter_offset().is_none())
    );
}
