//! `builtin: stitch_identities`: connected components of the identity graph, with
//! stable customer keys (DESIGN.md: "Rust where SQL is not clear").
//!
//! ```text
//! input table (record_type, record_id, id_type, id_value, seen_on)   ← sql/staging/identity_links.sql
//!   ─► graph: intern, dedupe links, cap, union-find      (graph.rs, intern.rs, union_find.rs)
//!   ─► previous committed map (the step's `previous:` output) (previous.rs)
//!   ─► stable keys, merges                               (keys.rs)
//!   ─► tables `<step>` (id_type, id_value, customer_key, first_seen)
//!             `<step>_merges` (merged_key, surviving_key, merged_on)
//! ```
//! The map is one row per identifier, so it is compact by construction and is
//! held as an in-memory table; the input is streamed batch by batch. The graph's
//! heap is reserved in the run's memory pool as it grows, so it counts against
//! `engine.memory_limit` like DataFusion's own operators. Settings (job
//! `params:`, decoded and checked at load: `job::StitchSettings`): `max_records_per_identifier` (default 50: source records, guest
//! orders and events never count), `link_by_phone` (default true),
//! `exclude_identifiers` (a regular expression; normalised emails and phones it
//! matches link nothing; default none).

pub mod graph;
pub mod intern;
pub mod keys;
pub mod placeholder;
pub mod previous;
pub mod union_find;

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, Date32Builder, RecordBatch, StringBuilder,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Date32Type, Field, Schema, SchemaRef};
use datafusion::catalog::MemTable;
use datafusion::error::DataFusionError;
use datafusion::prelude::SessionContext;
use futures::TryStreamExt;

use self::graph::{Components, GraphBuilder, NONE};
use self::intern::{Tag, TooManyNodes};
use self::keys::{Assignment, KeyCollision, Previous};
use super::StepEnv;
use crate::job::StitchSettings;

/// Rows per batch of the result tables.
const BATCH_ROWS: usize = 64 * 1024;

/// Errors of identity stitching.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("input: {0}")]
    Input(String),
    #[error("input: {0}")]
    Query(#[from] DataFusionError),
    #[error("input: {0}")]
    Arrow(#[from] datafusion::arrow::error::ArrowError),
    #[error(transparent)]
    TooManyNodes(#[from] TooManyNodes),
    #[error("previous identity map {path}: {message}")]
    Previous { path: String, message: String },
    #[error(transparent)]
    KeyCollision(#[from] KeyCollision),
    /// The graph would pass the memory pool's limit (it is counted against it).
    #[error("the identity graph does not fit in the memory pool (raise engine.memory_limit): {0}")]
    Memory(DataFusionError),
}

/// Runs the step and registers `name` and `name_merges` on `ctx`. Earlier keys come
/// from the latest committed snapshot of output `previous` before the run's date.
pub async fn register_stitch_identities(
    ctx: &SessionContext,
    name: &str,
    inputs: &[String],
    previous: &str,
    rules: &StitchSettings,
    env: &StepEnv<'_>,
) -> Result<(), IdentityError> {
    let [input] = inputs else {
        return Err(IdentityError::Input(format!(
            "stitch_identities reads exactly one table of links, got {}",
            inputs.len()
        )));
    };
    let started = std::time::Instant::now();
    let mut builder = GraphBuilder::default();
    let memory = crate::engine::reserve(ctx, &format!("stitch_identities({name})"));
    let mut stream = ctx.table(input.as_str()).await?.execute_stream().await?;
    while let Some(batch) = stream.try_next().await? {
        add_links(&mut builder, &batch)?;
        memory
            .try_resize(builder.heap_bytes())
            .map_err(IdentityError::Memory)?;
    }
    // The links plan's buffers go now, not when the step returns.
    drop(stream);
    let heap_bytes = builder.heap_bytes();
    let read = started.elapsed();
    let graph = builder.finish(rules);
    let stitched = started.elapsed();

    let previous = match env.published.get(previous) {
        Some((store, dir)) => match previous::latest_before(store, dir, env.date).await? {
            Some(snapshot) => {
                let prev = previous::read(store, &snapshot, &graph.interner).await?;
                tracing::info!(step = name, snapshot_date = %snapshot.date, rows = prev.rows, absent = prev.absent, "previous identity map read");
                Some(prev)
            }
            None => None,
        },
        None => None,
    };
    let assignment = keys::assign(&graph, previous.as_ref())?;
    let phases = Phases {
        read_secs: read.as_secs_f64(),
        components_secs: (stitched - read).as_secs_f64(),
        keys_secs: (started.elapsed() - stitched).as_secs_f64(),
        heap_bytes,
    };
    log_report(name, &graph, &assignment, &phases);

    let map = map_table(&graph, &assignment, previous.as_ref())?;
    ctx.register_table(name, Arc::new(map))?;
    let merges = merges_table(&assignment, env.date)?;
    ctx.register_table(format!("{name}_merges").as_str(), Arc::new(merges))?;
    Ok(())
}

/// Feeds one batch of the links table to the graph.
pub fn add_links(builder: &mut GraphBuilder, batch: &RecordBatch) -> Result<(), IdentityError> {
    let column = |name: &str, to: &DataType| -> Result<ArrayRef, IdentityError> {
        let found = batch.column_by_name(name).ok_or_else(|| {
            IdentityError::Input(format!("the links table has no column `{name}`"))
        })?;
        Ok(cast(found, to)?)
    };
    let (record_type, record_id) = (
        column("record_type", &DataType::Utf8)?,
        column("record_id", &DataType::Utf8)?,
    );
    let (id_type, id_value) = (
        column("id_type", &DataType::Utf8)?,
        column("id_value", &DataType::Utf8)?,
    );
    let seen_on = column("seen_on", &DataType::Date32)?;
    let (record_type, record_id) = (record_type.as_string::<i32>(), record_id.as_string::<i32>());
    let (id_type, id_value) = (id_type.as_string::<i32>(), id_value.as_string::<i32>());
    let seen_on = seen_on.as_primitive::<Date32Type>();
    let tag = |text: &str, what: &str| {
        Tag::parse(text).ok_or_else(|| IdentityError::Input(format!("unknown {what} `{text}`")))
    };
    for row in 0..batch.num_rows() {
        if record_type.is_null(row) || record_id.is_null(row) {
            continue;
        }
        let record = (
            tag(record_type.value(row), "record_type")?,
            record_id.value(row),
        );
        let identifier = if id_type.is_valid(row) && id_value.is_valid(row) {
            let t = tag(id_type.value(row), "id_type")?;
            if !t.is_identifier() {
                return Err(IdentityError::Input(format!(
                    "id_type `{}` is not an identifier kind",
                    t.name()
                )));
            }
            Some((t, id_value.value(row)))
        } else {
            None
        };
        let seen = seen_on.is_valid(row).then(|| seen_on.value(row));
        builder.add(record, identifier, seen)?;
    }
    Ok(())
}

/// Where the step's time went: reading and interning the links (the links query
/// runs inside this), the components, the previous map and keys.
struct Phases {
    read_secs: f64,
    components_secs: f64,
    keys_secs: f64,
    heap_bytes: usize,
}

fn log_report(name: &str, graph: &Components, assignment: &Assignment, phases: &Phases) {
    let r = &graph.report;
    let k = &assignment.report;
    tracing::info!(
        step = name,
        nodes = r.nodes,
        identifiers = r.identifiers,
        links = r.links,
        customers = r.components,
        capped_identifiers = r.capped_count,
        excluded_identifiers = r.excluded_count,
        placeholder_warnings = graph.suspects.len(),
        ambiguous_phones = r.ambiguous_phones,
        unattributed_guest_orders = r.unattributed_orders,
        unattributed_events = r.unattributed_events,
        keys_kept = k.kept,
        keys_new = k.new,
        keys_merged = k.merged,
        keys_split = k.split,
        keys_dropped = k.dropped,
        graph_heap_mib = phases.heap_bytes / (1 << 20),
        read_secs = phases.read_secs,
        components_secs = phases.components_secs,
        keys_secs = phases.keys_secs,
        "identities stitched"
    );
    // The worst offenders by name; the counts above cover the rest.
    for capped in graph.capped.iter().take(20) {
        tracing::warn!(
            step = name,
            id_type = capped.id_type.name(),
            id_value = %capped.id_value,
            source_records = capped.records,
            guest_records = capped.guest_records,
            "identifier over max_records_per_identifier links nothing"
        );
    }
    for excluded in graph.excluded.iter().take(20) {
        tracing::info!(
            step = name,
            id_type = excluded.id_type.name(),
            id_value = %excluded.id_value,
            source_records = excluded.records,
            guest_records = excluded.guest_records,
            "identifier matches exclude_identifiers: links nothing"
        );
    }
    for suspect in graph.suspects.iter().take(20) {
        tracing::warn!(
            step = name,
            id_value = %suspect.id_value,
            source_records = suspect.records,
            guest_records = suspect.guest_records,
            "email looks like a shared placeholder but is under max_records_per_identifier: \
             it links; add it to the exclude_identifiers param if it names no one person"
        );
    }
}

/// Schema of the identity map table.
pub fn map_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("id_type", DataType::Utf8, false),
        Field::new("id_value", DataType::Utf8, false),
        Field::new("customer_key", DataType::Utf8, false),
        Field::new("first_seen", DataType::Date32, true),
    ]))
}

fn map_table(
    graph: &Components,
    assignment: &Assignment,
    previous: Option<&Previous>,
) -> Result<MemTable, DataFusionError> {
    let schema = map_schema();
    let mut batches = Vec::new();
    let mut columns = MapColumns::default();
    for node in 0..graph.interner.len() as u32 {
        let comp = graph.component[node as usize];
        if comp == NONE {
            continue;
        }
        let today = graph.first_seen[node as usize];
        let before = previous
            .and_then(|p| p.first_seen(node))
            .unwrap_or(i32::MAX);
        let first = today.min(before);
        columns
            .id_type
            .append_value(graph.interner.tag(node).name());
        columns.id_value.append_value(graph.interner.value(node));
        columns
            .customer_key
            .append_value(&assignment.keys[comp as usize]);
        columns
            .first_seen
            .append_option((first != i32::MAX).then_some(first));
        columns.rows += 1;
        if columns.rows == BATCH_ROWS {
            batches.push(columns.finish(&schema)?);
        }
    }
    batches.push(columns.finish(&schema)?);
    MemTable::try_new(schema, vec![batches])
}

#[derive(Default)]
struct MapColumns {
    id_type: StringBuilder,
    id_value: StringBuilder,
    customer_key: StringBuilder,
    first_seen: Date32Builder,
    rows: usize,
}

impl MapColumns {
    fn finish(&mut self, schema: &SchemaRef) -> Result<RecordBatch, DataFusionError> {
        self.rows = 0;
        Ok(RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(self.id_type.finish()),
                Arc::new(self.id_value.finish()),
                Arc::new(self.customer_key.finish()),
                Arc::new(self.first_seen.finish()),
            ],
        )?)
    }
}

fn merges_table(
    assignment: &Assignment,
    date: chrono::NaiveDate,
) -> Result<MemTable, DataFusionError> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("merged_key", DataType::Utf8, false),
        Field::new("surviving_key", DataType::Utf8, false),
        Field::new("merged_on", DataType::Date32, false),
    ]));
    let day = (date - chrono::DateTime::UNIX_EPOCH.date_naive()).num_days() as i32;
    let mut merged = StringBuilder::new();
    let mut surviving = StringBuilder::new();
    let mut on = Date32Builder::new();
    for m in &assignment.merges {
        merged.append_value(&m.merged_key);
        surviving.append_value(&m.surviving_key);
        on.append_value(day);
    }
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(merged.finish()),
            Arc::new(surviving.finish()),
            Arc::new(on.finish()),
        ],
    )?;
    MemTable::try_new(schema, vec![vec![batch]])
}

#[cfg(test)]
mod tests;
