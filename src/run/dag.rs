//! The step stage: every step in dependency order, each computed at most once.
//!
//! ```text
//! for each step:  choose joins ─► register (view / builtin) ─► materialize?
//!                   output step  ─► written sorted as its staged output partition
//!                   table        ─► written to _c360/tmp/<run>/steps/<name>/
//!                   view         ─► planned into its readers
//! then: outputs that are not steps (sources, builtin companions) are staged
//! ```
//! Each materialized result replaces its view, so a reader scans the files
//! instead of planning the chain beneath again; the run record gets one
//! [`StepRecord`] per step (rows, bytes, seconds, pool peak, spills).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use datafusion::prelude::SessionContext;
use object_store::path::Path;

use super::sources::StagedSources;
use super::{Bound, Progress, Run, RunError, record};
use crate::engine::{self, Spills};
use crate::job::{Job, JoinStrategy, Materialize, OutputSpec};
use crate::outputs::{self, StagedOutput};
use crate::runlog::StepRecord;
use crate::steps::carried::{CachedSource, Carried, CarryEnv, Window};
use crate::steps::{PublishedLocations, StepEnv};
use crate::storage::StorageLocation;

/// What the step stage produced.
struct StepsDone {
    /// Every output, staged, in the job's output order.
    pub outputs: Vec<StagedOutput>,
    pub records: Vec<StepRecord>,
}

/// Sizes of what is staged so far, for [`JoinStrategy::Auto`].
pub(super) struct Sizes {
    /// Staged Parquet bytes by table name (sources, their duplicates, tables,
    /// staged outputs).
    pub bytes: BTreeMap<String, u64>,
    /// For each view (`<source>_deduped`, view steps): the staged tables its plan reads.
    pub view_reads: BTreeMap<String, BTreeSet<String>>,
    /// The carried bases of incremental steps and the rows merged into them
    /// ([`Self::hash_joins_fit`]).
    pub carried: BTreeMap<String, Carrying>,
}

/// What a name in [`Sizes::carried`] stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Carrying {
    /// A carried base: the probe side of its merge.
    Base,
    /// The rows merged into a base: its merge's build side (fewer by design).
    Merged,
}

impl Sizes {
    /// The staged tables a plan over `tables` reads (views expanded).
    fn base_tables(&self, tables: &[String]) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        for table in tables {
            match self.view_reads.get(table) {
                Some(reads) => out.extend(reads.iter().cloned()),
                None => {
                    out.insert(table.clone());
                }
            }
        }
        out
    }

    /// What a carried step's view reads: its base and the rows merged into
    /// it, not its sources (whose days are mostly in the base), under names no
    /// table has.
    fn carried_reads(&mut self, step: &str, carried: &Carried) -> BTreeSet<String> {
        let base = format!("{step} (carried base)");
        let merged = format!("{step} (merged into the base)");
        for (name, bytes, role) in [
            (&base, carried.base_bytes, Carrying::Base),
            (&merged, carried.new_bytes, Carrying::Merged),
        ] {
            self.bytes.insert(name.clone(), bytes);
            self.carried.insert(name.clone(), role);
        }
        BTreeSet::from([base, merged])
    }

    /// What a view with `window_days` reads: its sources' last days, under a
    /// name no table has.
    fn window_reads(&mut self, step: &str, window: Window) -> BTreeSet<String> {
        let name = format!("{step} (window)");
        self.bytes.insert(name.clone(), window.bytes);
        BTreeSet::from([name])
    }

    /// Whether a plan over staged `tables` may use hash joins
    /// ([`engine::hash_joins_fit`]). A carried base is left out: it streams
    /// through its merge, whose build side is the rows merged into it (held
    /// whatever the other inputs), and through the key joins above it (a
    /// carried row meets its record's key, the smaller side).
    fn hash_joins_fit(&self, tables: &BTreeSet<String>, pool_bytes: u64) -> bool {
        let (mut inputs, mut built) = (Vec::new(), 0);
        for table in tables {
            let Some(&bytes) = self.bytes.get(table) else {
                continue;
            };
            match self.carried.get(table) {
                None => inputs.push(bytes),
                Some(Carrying::Base) => {}
                Some(Carrying::Merged) => built += bytes,
            }
        }
        engine::hash_joins_fit(&inputs, built, pool_bytes)
    }

    fn bytes_of(&self, tables: &BTreeSet<String>) -> u64 {
        tables.iter().filter_map(|t| self.bytes.get(t)).sum()
    }
}

/// The step stage: every step, then the outputs that are not steps, staged;
/// `sizes` holds what the sources staged. Records each step in `p`.
pub(super) async fn stage_steps(
    r: &Run<'_>,
    ctx: &SessionContext,
    p: &mut Progress,
    sizes: Sizes,
    sources: &StagedSources<'_>,
) -> Result<Vec<StagedOutput>, RunError> {
    let t = record::StageStart::now();
    let done = async {
        let on_cluster = r.engine.cluster.is_some();
        let carry = CarryEnv {
            store: r.bound.warehouse.store.clone(),
            store_url: r.bound.warehouse.store_url.as_str().to_string(),
            warehouse: r.bound.warehouse.prefix.clone(),
            local_disk: r.bound.warehouse.is_local_disk(),
            run_id: r.run_id.to_string(),
            full_refresh: r.options.full_refresh,
            on_cluster,
            sources: sources
                .iter()
                .map(|(spec, staged)| {
                    let (days, read_back) = (staged.days.clone(), staged.read_back.clone());
                    let cached = CachedSource::new(days, read_back, spec.schema.dedup_rule());
                    (spec.name.clone(), cached)
                })
                .collect(),
        };
        let env = StepEnv {
            vars: &r.bound.vars,
            date: r.bound.date,
            published: published_locations(&r.bound, &r.job.outputs)?,
            carry: Some(carry),
        };
        let tmp = r.committer.staging_dir(&r.run_id);
        let pool_bytes = r.engine.pool_bytes();
        let shape = Shape {
            pool_bytes,
            on_cluster,
        };
        run_steps(ctx, &r.bound, r.job, &env, sizes, shape, &tmp).await
    }
    .await;
    record::stage(&mut p.record, "steps", t);
    let done = done?;
    p.record.steps = done.records;
    Ok(done.outputs)
}

/// Where and in how much memory the steps run.
#[derive(Debug, Clone, Copy)]
struct Shape {
    /// The pool that bounds hash joins' build sides ([`engine::hash_joins_fit`]).
    pool_bytes: u64,
    /// Queries run on a Ballista cluster (`crate::cluster`).
    on_cluster: bool,
}

/// Runs every step of the job, then stages the outputs that are not steps.
async fn run_steps(
    ctx: &SessionContext,
    bound: &Bound,
    job: &Job,
    env: &StepEnv<'_>,
    mut sizes: Sizes,
    shape: Shape,
    tmp: &Path,
) -> Result<StepsDone, RunError> {
    let Shape {
        pool_bytes,
        on_cluster,
    } = shape;
    let (steps, output_specs) = (&job.steps, &job.outputs);
    let by_name: BTreeMap<&str, &OutputSpec> =
        output_specs.iter().map(|o| (o.name.as_str(), o)).collect();
    let mut staged: BTreeMap<String, StagedOutput> = BTreeMap::new();
    let mut records = Vec::new();
    let progress = crate::progress::Progress::start("steps", steps.len() as u64);
    for step in steps.iter() {
        progress.working_on(&step.name);
        let started = Instant::now();
        engine::take_peak_memory(ctx);
        let rss = engine::RssPeak::start();
        let reads = sizes.base_tables(&step.depends_on);
        let input_bytes = sizes.bytes_of(&reads);
        let hash = match step.join {
            JoinStrategy::Hash => true,
            JoinStrategy::SortMerge => false,
            JoinStrategy::Auto => sizes.hash_joins_fit(&reads, pool_bytes),
        };
        engine::set_hash_joins(ctx, hash);
        let registered = crate::steps::register_step(ctx, step, env).await?;
        let carried = registered.carried;
        // A builtin's companions (identity_graph_merges, clv_model) are computed
        // with it; they are written out with it too.
        let tables = std::iter::once(&step.name).chain(&step.also_defines);
        let mut done = Done::default();
        for table in tables {
            let step_dir = tmp.clone().join("steps").join(table.as_str());
            let write_table = || {
                let (store, url) = (
                    bound.warehouse.store.clone(),
                    bound.warehouse.store_url.as_str(),
                );
                crate::steps::materialize(ctx, table, store, url, &step_dir, on_cluster)
            };
            // Executors read files, not this process's memory: on a cluster a
            // builtin's tables are written here first (then staged on the cluster
            // when they are outputs).
            let in_files = if on_cluster && step.is_builtin() {
                Some(write_table().await?)
            } else {
                None
            };
            let result = if let Some(output) = by_name.get(table.as_str()) {
                let out = stage_output(ctx, bound, output, tmp, on_cluster).await?;
                register_staged(ctx, bound, &out).await?;
                let result = (out.staged.clone(), out.spills, "output");
                staged.insert(table.clone(), out);
                result
            } else if let Some(m) = in_files {
                (m.staged, m.spills, "table")
            } else if materialized(job, step, table) == Materialized::Table {
                let m = write_table().await?;
                (m.staged, m.spills, "table")
            } else {
                let reads = match (&carried, registered.window) {
                    (Some(c), _) => sizes.carried_reads(table, c),
                    (None, Some(w)) => sizes.window_reads(table, w),
                    (None, None) => reads.clone(),
                };
                sizes.view_reads.insert(table.clone(), reads);
                continue;
            };
            let (partition, spills, kind) = result;
            sizes.bytes.insert(table.clone(), partition.bytes());
            done.add(
                table == &step.name,
                kind,
                partition.rows(),
                partition.bytes(),
                spills,
            );
        }
        let record = StepRecord {
            name: step.name.clone(),
            materialize: done.kind.unwrap_or(Materialize::View.as_str()).to_string(),
            join: if hash { "hash" } else { "sort_merge" }.to_string(),
            input_bytes,
            rows: done.rows,
            bytes: done.bytes,
            secs: started.elapsed().as_secs_f64(),
            peak_memory_bytes: engine::take_peak_memory(ctx),
            peak_rss_bytes: rss.finish(),
            spilled_bytes: done.spills.bytes,
            spill_files: done.spills.files,
            incremental: carried,
            window_days_read: registered.window.map(|w| w.days),
        };
        tracing::info!(
            step = %record.name,
            materialize = %record.materialize,
            join = %record.join,
            rows = record.rows,
            secs = record.secs,
            peak_memory_bytes = record.peak_memory_bytes,
            spilled_bytes = record.spilled_bytes,
            "step done"
        );
        progress.done_one(&step.name);
        records.push(record);
    }
    engine::set_hash_joins(ctx, true);
    // Outputs of sources (and of anything else that is not a step).
    let mut outputs = Vec::new();
    for output in output_specs.iter() {
        let out = match staged.remove(&output.name) {
            Some(out) => out,
            None => {
                let out = stage_output(ctx, bound, output, tmp, on_cluster).await?;
                register_staged(ctx, bound, &out).await?;
                out
            }
        };
        outputs.push(out);
    }
    Ok(StepsDone { outputs, records })
}

/// Where `output` is published, its path bound to the run, refused when it is
/// not under the warehouse (SECURITY.md). Creates no folder.
pub(super) fn confined_location(
    bound: &Bound,
    output: &OutputSpec,
) -> Result<(String, StorageLocation), RunError> {
    let path = crate::job::interpolate(&output.path, &bound.vars)
        .map_err(|e| RunError::Bind(format!("output {}: {e}", output.name)))?;
    let location = bound.registry.resolve(&path)?;
    if !bound.warehouse.contains(&location) {
        return Err(RunError::Bind(format!(
            "output {}: {} is not under the warehouse {} (outputs are written only there)",
            output.name, location.url, bound.warehouse.url
        )));
    }
    Ok((path, location))
}

/// Where `output` is published, ready for writing (a local folder is created).
fn output_location(bound: &Bound, output: &OutputSpec) -> Result<StorageLocation, RunError> {
    let (path, _) = confined_location(bound, output)?;
    Ok(bound.registry.resolve_for_write(&path)?)
}

/// Where each output is published (store and folder), by output name; builtin
/// steps read their own previous snapshots there.
fn published_locations(
    bound: &Bound,
    outputs: &[OutputSpec],
) -> Result<PublishedLocations, RunError> {
    let mut locations = PublishedLocations::new();
    for output in outputs {
        let location = output_location(bound, output)?;
        locations.insert(output.name.clone(), (location.store, location.prefix));
    }
    Ok(locations)
}

/// Writes one output's partition of the run to staging (`crate::outputs`).
async fn stage_output(
    ctx: &SessionContext,
    bound: &Bound,
    output: &OutputSpec,
    tmp: &Path,
    on_cluster: bool,
) -> Result<StagedOutput, RunError> {
    let location = output_location(bound, output)?;
    let (warehouse, date) = (&bound.warehouse, bound.date);
    let stage = outputs::stage_output(ctx, output, &location, warehouse, date, tmp, on_cluster);
    Ok(stage.await?)
}

/// How a run computes table `table` of `step` (the step itself or a builtin's
/// companion).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Materialized {
    /// Written sorted as an output's staged partition, which readers scan.
    Output,
    /// Written once to run-private Parquet, which readers scan.
    Table,
    /// Planned into each reader.
    View,
}

/// How a run computes `table` of `step`: an output is staged, a `table` step
/// and the erasure steps are written once (the erasure steps are read by nearly
/// every later step), anything else is a view.
pub(super) fn materialized(job: &Job, step: &crate::job::StepSpec, table: &str) -> Materialized {
    if job.outputs.iter().any(|o| o.name == table) {
        Materialized::Output
    } else if step.materialize == Materialize::Table
        || (job.erasure.as_ref()).is_some_and(|e| e.steps().contains(&table))
    {
        Materialized::Table
    } else {
        Materialized::View
    }
}

/// Figures of one step, summed over its tables (a builtin's companions too).
#[derive(Default)]
struct Done {
    kind: Option<&'static str>,
    rows: Option<u64>,
    bytes: Option<u64>,
    spills: Spills,
}

impl Done {
    fn add(&mut self, main: bool, kind: &'static str, rows: u64, bytes: u64, spills: Spills) {
        if main {
            self.kind = Some(kind);
            self.rows = Some(rows);
        }
        self.kind.get_or_insert(kind);
        *self.bytes.get_or_insert(0) += bytes;
        self.spills.bytes += spills.bytes;
        self.spills.files += spills.files;
    }
}

/// Replaces an output's view with its staged Parquet.
async fn register_staged(
    ctx: &SessionContext,
    bound: &Bound,
    staged: &StagedOutput,
) -> Result<(), RunError> {
    let store_url = bound.warehouse.store_url.as_str();
    engine::register_staged_dir(ctx, &staged.name, store_url, &staged.staged.dir)
        .await
        .map_err(|source| RunError::Query {
            what: format!("staged output {}", staged.name),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    /// A step over an incremental step's view is sized by the rows merged
    /// into its base, not by the sources beneath it nor the base: at
    /// 1,000,000 customers the sources hold 1 GB of Parquet, and sort-merge
    /// joins sorted the whole carried base to merge a day into it.
    #[test]
    fn a_carried_view_is_sized_by_the_rows_merged_into_its_base() {
        let mut sizes = Sizes {
            bytes: BTreeMap::from([
                ("profiles".to_string(), 190 * MIB),
                ("transactions".to_string(), 270 * MIB),
                ("identity_map".to_string(), 90 * MIB),
            ]),
            view_reads: BTreeMap::new(),
            carried: BTreeMap::new(),
        };
        let pool = 2048 * MIB;
        let tables = |names: &[&str]| names.iter().map(|n| n.to_string()).collect();
        assert!(!sizes.hash_joins_fit(&tables(&["profiles", "transactions"]), pool));
        let carried = Carried {
            base_bytes: 235 * MIB,
            new_bytes: 3 * MIB,
            ..Carried::default()
        };
        let reads = sizes.carried_reads("link_rows", &carried);
        sizes.view_reads.insert("link_rows".to_string(), reads);
        let reads = sizes.base_tables(&["link_rows".to_string()]);
        // The step's input is both; a hash table holds the new rows.
        assert_eq!(sizes.bytes_of(&reads), 238 * MIB);
        assert!(sizes.hash_joins_fit(&reads, pool));
        // Beside other inputs: the new rows, and all of them but the largest.
        let mut beside = reads.clone();
        beside.insert("transactions".to_string());
        assert!(sizes.hash_joins_fit(&beside, pool));
        beside.insert("profiles".to_string());
        assert!(!sizes.hash_joins_fit(&beside, pool));
        // 61 MiB merged into the base, beside transactions and the 3 MiB
        // merged into another base: 64 MiB held, the most a 2 GiB pool takes.
        let other = Carried {
            new_bytes: 61 * MIB,
            ..carried.clone()
        };
        let mut two = sizes.carried_reads("event_rows", &other);
        two.extend(reads.clone());
        two.insert("transactions".to_string());
        assert!(sizes.hash_joins_fit(&two, pool));
        // Too many rows merged in for the pool: sort-merge, though the new
        // rows are the largest input left.
        let big = Carried {
            new_bytes: 65 * MIB,
            ..carried
        };
        let reads = sizes.carried_reads("link_rows", &big);
        assert!(!sizes.hash_joins_fit(&reads, pool));
    }
}
