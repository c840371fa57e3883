//! The resolved job: what `job::load` returns once a YAML file has passed
//! validation. Everything downstream (run, scheduler, explain) works from these
//! plain types; the serde types with source locations stay inside `job`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

mod output;
mod step;

pub use output::*;
pub use step::*;

/// A validated job file.
#[derive(Debug, Clone)]
pub struct Job {
    /// Path of the YAML file it was loaded from.
    pub file: PathBuf,
    /// Directory that relative paths in the job (SQL files, `file://` roots) resolve against:
    /// the current directory at load time, so `c360 run jobs/x.yaml` from the repo root
    /// finds `sql/…` and `sample_data/…`.
    pub base_dir: PathBuf,
    pub name: String,
    /// IANA time zone of the job; the default logical date is "today" there.
    pub timezone: chrono_tz::Tz,
    /// Job parameters (`params:`), scalars kept as their YAML text.
    pub params: BTreeMap<String, String>,
    /// Storage roots before `--set` overrides: `raw`, `warehouse` (URL or path templates).
    pub storage: StorageSpec,
    /// Sources in file order.
    pub sources: Vec<SourceSpec>,
    /// Steps in a valid execution order (dependencies first).
    pub steps: Vec<StepSpec>,
    /// Data checks per output/step name; parsed now, executed by a later stage.
    pub checks: BTreeMap<String, Vec<CheckSpec>>,
    /// Outputs in file order.
    pub outputs: Vec<OutputSpec>,
    /// How the engine is sized (`engine:`).
    pub engine: EngineSpec,
    /// When the scheduler runs the job (`schedule:`); `None` = only on demand.
    pub schedule: Option<ScheduleSpec>,
    /// Which steps resolve erasure requests (`erasure:`); required with a
    /// `suppressions` source.
    pub erasure: Option<ErasureSpec>,
    /// The charts of the run report (`report:`); none when the section is absent.
    pub report: ReportSpec,
    /// Where the job file declares what later validation may point at.
    pub places: Places,
}

/// `report:`: what the run report charts, each chart a SQL query over the
/// committed outputs (`crate::report`, docs/job-file.md "Run report").
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReportSpec {
    pub charts: Vec<ChartSpec>,
}

/// One chart of the run report.
#[derive(Debug, Clone, PartialEq)]
pub struct ChartSpec {
    pub title: String,
    pub kind: ChartKind,
    /// A query over the outputs of the job (the snapshot the report shows), and
    /// `previous.<output>` (the committed snapshot before it).
    pub sql: String,
    /// `bar` only: the same query over the previous snapshot, drawn beside.
    pub compare_previous: bool,
    /// `histogram` only: how many equal-width bins (docs/rules.md "Run report").
    pub bins: usize,
    /// `histogram` only: the bins end at this quantile of the values, and the
    /// last bin also counts the values above it (a long tail would otherwise
    /// squeeze every other value into the first bin).
    pub upper_quantile: Option<f64>,
}

/// How a chart draws its query's rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChartKind {
    /// Columns `label`, `value`: one horizontal bar per row, in row order.
    Bar,
    /// Columns `x`, `y`, `value`: a grid of cells shaded by value.
    Heatmap,
    /// Column `value`: the values counted into equal-width bins.
    Histogram,
}

impl ChartKind {
    /// The name written in job files.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Bar => "bar",
            Self::Heatmap => "heatmap",
            Self::Histogram => "histogram",
        }
    }
}

/// Where the job file declares each param, step, output and table's checks
/// (1-based line and column), for problems found after loading: `c360 validate`
/// planning the SQL over the declared schemas.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Places {
    pub params: BTreeMap<String, (u32, u32)>,
    pub steps: BTreeMap<String, (u32, u32)>,
    pub outputs: BTreeMap<String, (u32, u32)>,
    /// The table key under `checks:`.
    pub checks: BTreeMap<String, (u32, u32)>,
    /// The `sql:` of each chart under `report.charts`, in order.
    pub charts: Vec<(u32, u32)>,
}

/// `erasure:`: the steps whose results say who a run erases (docs/rules.md "Erasure").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErasureSpec {
    /// `id_type`, `id_value` of the requests that apply to the run (reads sources
    /// only, so a run that fails later can still keep those out of its rejects).
    pub requests: String,
    /// `customer_key` of every customer the run erases.
    pub customers: String,
    /// `id_type`, `id_value` of every identifier of an erased person.
    pub identifiers: String,
    /// `rewrite_history: true`: a run also removes the erased people from the
    /// earlier snapshots of every output and from earlier published rejects
    /// (`crate::erasure::history`); default false.
    pub rewrite_history: bool,
}

impl ErasureSpec {
    /// The three steps, held as tables (a few rows per erased person, joined by
    /// nearly every later step).
    pub fn steps(&self) -> [&str; 3] {
        [&self.requests, &self.customers, &self.identifiers]
    }
}

/// `engine:`: the memory budget and where spills go.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EngineSpec {
    /// Cap on DataFusion's memory pool in bytes (`memory_limit: 2GiB`); `None` =
    /// the default fraction of physical memory (`crate::engine`).
    pub memory_limit: Option<u64>,
    /// Folder for spill files; `None` = the OS temp directory.
    pub spill_dir: Option<std::path::PathBuf>,
    /// Partitions DataFusion plans with; `None` = the core count.
    pub target_partitions: Option<usize>,
    /// `cluster: ballista://host:port`: the Ballista scheduler the job's queries
    /// run on; `None` = this process. `--engine` overrides it.
    pub cluster: Option<String>,
}

/// Where a run's queries execute (`--engine`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EngineChoice {
    /// This process.
    Local,
    /// The Ballista scheduler at this `ballista://host:port`.
    Ballista(String),
}

/// The scheduler port of a `ballista://host` without one (Ballista's default).
pub const DEFAULT_SCHEDULER_PORT: u16 = 50050;

/// `local`, or `ballista://host[:port]` (port [`DEFAULT_SCHEDULER_PORT`] when left out).
pub fn parse_engine(text: &str) -> Result<EngineChoice, String> {
    let text = text.trim();
    if text == "local" {
        return Ok(EngineChoice::Local);
    }
    let bad = || format!("expected `local` or `ballista://HOST:PORT`, got `{text}`");
    let url = url::Url::parse(text).map_err(|_| bad())?;
    let host = url.host_str().filter(|h| !h.is_empty()).ok_or_else(bad)?;
    if url.scheme() != "ballista" || !matches!(url.path(), "" | "/") {
        return Err(bad());
    }
    let port = url.port().unwrap_or(DEFAULT_SCHEDULER_PORT);
    Ok(EngineChoice::Ballista(format!("ballista://{host}:{port}")))
}

/// When and how the scheduler runs a job; times are in the job's `timezone`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleSpec {
    /// Cron expression as written: five fields (minute hour day-of-month month
    /// day-of-week) or six with seconds first; `job::cron::CronSchedule` parses it.
    pub cron: String,
    /// How far back missed runs are caught up after downtime (zero: none).
    pub catchup: Duration,
    pub overlap: Overlap,
    pub retries: RetryPolicy,
    /// Each attempt of a scheduled run is cancelled after this long (`None`: no limit).
    pub max_runtime: Option<Duration>,
}

/// What happens when a run is due while the previous one is still going.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Overlap {
    /// Skip the due run (it is caught up later if within `catchup`).
    #[default]
    Skip,
    /// Start the due run as soon as the current one ends.
    Queue,
    /// Cancel the current run (cleanly: nothing half-published) and start the due one.
    Replace,
}

/// Retries of a failed scheduled run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Extra attempts after the first failure (0: no retry).
    pub attempts: u32,
    /// Wait before each retry.
    pub backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: 0,
            backoff: Duration::from_secs(60),
        }
    }
}

/// Storage roots (templates; may be relative paths, `file://`, `s3://`, `gs://`, `az://`).
#[derive(Debug, Clone)]
pub struct StorageSpec {
    pub raw: String,
    pub warehouse: String,
    /// Extra object_store options (endpoint, region, …) passed to the builders.
    pub options: BTreeMap<String, String>,
    /// Retries of transient cloud storage errors (`storage.retry`).
    pub retry: StorageRetry,
}

/// How cloud store requests retry transient errors (throttling, 5xx, dropped
/// connections); object_store backs off exponentially between attempts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StorageRetry {
    /// Retries after the first attempt of one request (0: fail on the first error).
    pub max_retries: usize,
    /// Give up retrying a request once this long has passed since its first attempt.
    pub timeout: Duration,
}

impl Default for StorageRetry {
    /// Fewer and shorter than object_store's own (10 retries, 3 minutes), so a dead
    /// endpoint fails a nightly run within about a minute while throttling recovers.
    fn default() -> Self {
        Self {
            max_retries: 5,
            timeout: Duration::from_secs(60),
        }
    }
}

/// File format of a source, declared in the job, never guessed from content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    Ndjson,
    Parquet,
}

/// The contract schema a source is validated against (DATA_CONTRACT.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContractSchema {
    Profiles,
    Transactions,
    Communications,
    Suppressions,
    FxRates,
    /// Reference data: the named RFM segment of each (r, f, m) score cell.
    RfmSegments,
}

/// Reject budget of a source: over it the run fails and publishes nothing.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RejectBudget {
    /// Largest allowed fraction of rejected rows (default 0.01).
    pub max_fraction: f64,
    /// Optional absolute cap on rejected rows.
    pub max_rows: Option<u64>,
}

impl Default for RejectBudget {
    fn default() -> Self {
        Self {
            max_fraction: 0.01,
            max_rows: None,
        }
    }
}

/// Size limits of a source's raw files (docs/rules.md, "Hostile input"): what a
/// file may hold before c360 stops reading it (a file error) or rejects a row.
/// The defaults are far above any real extract and bound memory and time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SourceLimits {
    /// Largest field (CSV field after unquoting, NDJSON or Parquet value text):
    /// a row with a larger one is rejected `field_too_large`.
    pub max_field_bytes: u64,
    /// Largest record (CSV record or NDJSON line as written, without its line
    /// break): a larger one is rejected `record_too_large`; a larger CSV header
    /// is a file error.
    pub max_record_bytes: u64,
    /// Most bytes a CSV or NDJSON file may hold once decompressed (its size when
    /// not compressed); past it the read stops with a file error.
    pub max_decompressed_bytes: u64,
    /// Most columns of a CSV header (more: a file error) and fields of an NDJSON
    /// object (more: `record_too_large`).
    pub max_columns: u64,
}

impl SourceLimits {
    /// 1 MiB: the contract's longest values are addresses and names.
    pub const DEFAULT_MAX_FIELD_BYTES: u64 = 1 << 20;
    /// 8 MiB: a record of many large fields, and still little memory per parser.
    pub const DEFAULT_MAX_RECORD_BYTES: u64 = 8 << 20;
    /// 16 GiB: a whole history in one file passes, a compression bomb stops.
    pub const DEFAULT_MAX_DECOMPRESSED_BYTES: u64 = 16 << 30;
    /// 1,000: the widest contract has 17 columns; extra columns are allowed.
    pub const DEFAULT_MAX_COLUMNS: u64 = 1_000;
}

impl Default for SourceLimits {
    fn default() -> Self {
        Self {
            max_field_bytes: Self::DEFAULT_MAX_FIELD_BYTES,
            max_record_bytes: Self::DEFAULT_MAX_RECORD_BYTES,
            max_decompressed_bytes: Self::DEFAULT_MAX_DECOMPRESSED_BYTES,
            max_columns: Self::DEFAULT_MAX_COLUMNS,
        }
    }
}

/// One raw extract.
#[derive(Debug, Clone)]
pub struct SourceSpec {
    pub name: String,
    /// Path template, e.g. `{raw}/transactions` (a folder of `dt=` partitions or one file).
    pub path: String,
    pub format: Format,
    pub schema: ContractSchema,
    /// Hive partition columns of the raw layout; `[dt]` for daily extracts, empty for reference files.
    pub partitions: Vec<String>,
    pub rejects: RejectBudget,
    /// Size limits of its raw files.
    pub limits: SourceLimits,
    /// Name of the source holding fx rates (for `unknown_currency`), transactions only.
    pub currencies: Option<String>,
    /// A missing folder is an empty source instead of an error (e.g. suppressions).
    pub optional: bool,
}
