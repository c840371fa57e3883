//! The source layer against hand-made raw extracts in `tests/fixtures/raw/`
//! (plain text of the compressed ones in `tests/fixtures/make_raw.py`). Every
//! expected file, line and reason below was worked out by reading the fixtures.
//! `csv`: CSV extracts (plain, gzip, zstd, CRLF + BOM); `other`: NDJSON, Parquet,
//! optional sources and sink errors; `hostile`: hostile input at the parser level.

mod csv;
mod hostile;
mod other;

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use c360::job::{ContractSchema, Format, RejectBudget, SourceLimits, SourceSpec};
use c360::source::{
    BatchSink, CollectSink, SourceError, SourceInput, SourceReport, read_source, rejects_schema,
    typed_schema,
};
use chrono::NaiveDate;
use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::compute::{
    SortColumn, concat_batches, lexsort_to_indices, take_record_batch,
};
use datafusion::arrow::datatypes::{
    Date32Type, Decimal128Type, Int64Type, SchemaRef, TimestampMicrosecondType,
};
use futures::future::BoxFuture;
use object_store::ObjectStore;
use object_store::local::LocalFileSystem;
use object_store::path::Path;

use crate::util::repo_root;

pub fn spec(name: &str, format: Format, schema: ContractSchema, partitioned: bool) -> SourceSpec {
    SourceSpec {
        name: name.to_string(),
        path: format!("{{raw}}/{name}"),
        format,
        schema,
        partitions: if partitioned {
            vec!["dt".to_string()]
        } else {
            Vec::new()
        },
        rejects: RejectBudget::default(),
        limits: SourceLimits::default(),
        currencies: None,
        optional: false,
    }
}

pub fn fixtures() -> Arc<dyn ObjectStore> {
    let dir = repo_root().join("tests/fixtures");
    Arc::new(LocalFileSystem::new_with_prefix(dir).expect("fixtures folder exists"))
}

pub fn day(d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 1, d).expect("valid date")
}

pub struct Read {
    pub result: Result<SourceReport, SourceError>,
    pub accepted: RecordBatch,
    pub rejects: RecordBatch,
    pub accepted_batches: usize,
}

pub async fn read_with(
    store: Arc<dyn ObjectStore>,
    spec: &SourceSpec,
    location: &str,
    date: NaiveDate,
    currencies: Option<&[&str]>,
    batch_rows: usize,
) -> Read {
    let input = SourceInput {
        spec: Arc::new(spec.clone()),
        store,
        root: Path::from("raw"),
        location: Path::from(location),
        url: format!("memory:///{location}"),
        date,
        currencies: currencies.map(|c| c.iter().map(|s| s.to_string()).collect::<HashSet<_>>()),
        batch_rows,
    };
    let mut accepted = CollectSink::default();
    let mut rejects = CollectSink::default();
    let result = read_source(input, &mut accepted, &mut rejects).await;
    let merge = |schema: SchemaRef, batches: &[RecordBatch]| {
        concat_batches(&schema, batches).expect("batches share the schema")
    };
    Read {
        result,
        accepted: in_file_order(merge(typed_schema(spec.schema), &accepted.batches)),
        rejects: merge(rejects_schema(), &rejects.batches),
        accepted_batches: accepted.batches.len(),
    }
}

/// The accepted rows in (file, line) order: files are parsed two at a time, so
/// the batches of neighbouring files may interleave.
fn in_file_order(batch: RecordBatch) -> RecordBatch {
    let key = |name: &str| SortColumn {
        values: Arc::clone(batch.column_by_name(name).expect("lineage column")),
        options: None,
    };
    let order = lexsort_to_indices(&[key("_file"), key("_line")], None).expect("sortable lineage");
    take_record_batch(&batch, &order).expect("indices in range")
}

pub async fn read(
    spec: &SourceSpec,
    location: &str,
    date: NaiveDate,
    currencies: Option<&[&str]>,
) -> Read {
    read_with(fixtures(), spec, location, date, currencies, 8192).await
}

pub fn text(batch: &RecordBatch, column: &str) -> Vec<Option<String>> {
    let col = batch.column_by_name(column).expect("column exists");
    let col = col.as_string::<i32>();
    (0..col.len())
        .map(|i| col.is_valid(i).then(|| col.value(i).to_string()))
        .collect()
}

pub fn ints(batch: &RecordBatch, column: &str) -> Vec<i64> {
    let col = batch.column_by_name(column).expect("column exists");
    col.as_primitive::<Int64Type>().values().to_vec()
}

/// (file, line, reason) of every reject, in (file, line) order: files are parsed
/// two at a time, so the batches of neighbouring files may interleave.
pub fn rejects(r: &Read) -> Vec<(String, i64, String)> {
    let files = text(&r.rejects, "file");
    let lines = ints(&r.rejects, "line");
    let reasons = text(&r.rejects, "reason");
    let mut all: Vec<_> = files
        .into_iter()
        .zip(lines)
        .zip(reasons)
        .map(|((f, l), reason)| (f.unwrap_or_default(), l, reason.unwrap_or_default()))
        .collect();
    all.sort();
    all
}

pub fn raw_at(r: &Read, line: i64) -> Option<String> {
    let lines = ints(&r.rejects, "line");
    let i = lines.iter().position(|l| *l == line)?;
    text(&r.rejects, "raw")[i].clone()
}

pub fn owned(rows: &[(&str, i64, &str)]) -> Vec<(String, i64, String)> {
    rows.iter()
        .map(|(f, l, r)| (f.to_string(), *l, r.to_string()))
        .collect()
}

pub fn counts(pairs: &[(&str, u64)]) -> BTreeMap<String, u64> {
    pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}
