//! The serde shape of each job-file entry (strict: unknown keys are errors).
//!
//! These types mirror the YAML one entry at a time; `sections` decodes them from
//! the located tree and turns them into the `model` types once they make sense.

use super::model::{
    ChartKind, Compression, ContractSchema, Format, JoinStrategy, Overlap, PiiPolicy, Severity,
};
use super::node_de::Located;
use serde::Deserialize;
use std::collections::BTreeMap;

/// `schedule:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ScheduleRaw {
    pub cron: Located<String>,
    #[serde(default)]
    pub timezone: Option<Located<String>>,
    #[serde(default)]
    pub catchup: Option<Located<String>>,
    #[serde(default)]
    pub overlap: OverlapRaw,
    #[serde(default)]
    pub retries: Option<RetriesRaw>,
    #[serde(default)]
    pub max_runtime: Option<Located<String>>,
}

/// `schedule.retries:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RetriesRaw {
    pub attempts: u32,
    #[serde(default)]
    pub backoff: Option<Located<String>>,
}

/// `storage:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct StorageRaw {
    pub raw: Located<String>,
    pub warehouse: Located<String>,
    #[serde(default)]
    pub options: BTreeMap<String, String>,
    #[serde(default)]
    pub retry: Option<StorageRetryRaw>,
}

/// `storage.retry:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct StorageRetryRaw {
    #[serde(default)]
    pub max_retries: Option<Located<u64>>,
    #[serde(default)]
    pub timeout: Option<Located<String>>,
}

/// `erasure:`: the steps that resolve erasure requests (docs/rules.md "Erasure").
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ErasureRaw {
    pub requests: Located<String>,
    pub customers: Located<String>,
    pub identifiers: Located<String>,
    /// Also remove the erased people from earlier snapshots and rejects.
    #[serde(default)]
    pub rewrite_history: Option<Located<bool>>,
}

/// One entry of `report.charts:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ChartRaw {
    pub title: Located<String>,
    pub kind: Located<ChartKindRaw>,
    pub sql: Located<String>,
    /// `previous`: a bar chart also draws its query over the previous snapshot.
    #[serde(default)]
    pub compare: Option<Located<CompareRaw>>,
    /// Histograms: how many bins.
    #[serde(default)]
    pub bins: Option<Located<usize>>,
    /// Histograms: the quantile the bins end at.
    #[serde(default)]
    pub upper_quantile: Option<Located<f64>>,
}

/// `report.charts[].compare:`.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub(crate) enum CompareRaw {
    Previous,
}

/// One entry of `sources:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SourceRaw {
    pub path: Located<String>,
    pub format: FormatRaw,
    pub schema: SchemaRaw,
    #[serde(default)]
    pub partitions: Vec<String>,
    #[serde(default)]
    pub rejects: Option<RejectsRaw>,
    #[serde(default)]
    pub limits: Option<LimitsRaw>,
    #[serde(default)]
    pub currencies: Option<Located<String>>,
    #[serde(default)]
    pub optional: bool,
}

/// `sources.<name>.rejects:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RejectsRaw {
    #[serde(default)]
    pub max_fraction: Option<Located<f64>>,
    #[serde(default)]
    pub max_rows: Option<u64>,
}

/// `sources.<name>.limits:`: sizes as `parse_bytes` reads them, a column count.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct LimitsRaw {
    #[serde(default)]
    pub max_field_bytes: Option<Located<String>>,
    #[serde(default)]
    pub max_record_bytes: Option<Located<String>>,
    #[serde(default)]
    pub max_decompressed_bytes: Option<Located<String>>,
    #[serde(default)]
    pub max_columns: Option<Located<u64>>,
}

/// One entry of `steps:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct StepRaw {
    pub name: Located<String>,
    #[serde(default)]
    pub sql: Option<Located<String>>,
    #[serde(default)]
    pub builtin: Option<Located<super::Builtin>>,
    #[serde(default)]
    pub input: Option<Located<OneOrMany>>,
    /// Builtin steps: the output whose earlier snapshots the step reads back
    /// (default: the output named like the step).
    #[serde(default)]
    pub previous: Option<Located<String>>,
    /// `table` or `view`; default: table when read more than once or published.
    #[serde(default)]
    pub materialize: Option<Located<MaterializeRaw>>,
    /// `auto`, `hash` or `sort_merge`.
    #[serde(default)]
    pub join: Option<JoinRaw>,
    /// `{ merge: { column: min | max | sum, … } }`: the result is carried from run to
    /// run and updated with the new days' rows (`crate::steps::carried`).
    #[serde(default)]
    pub incremental: Option<Located<IncrementalRaw>>,
    /// A number of days, or a `{param}` that gives one: the step reads only its
    /// sources' days within that many days of the date (`crate::steps::carried`).
    #[serde(default)]
    pub window_days: Option<Located<WindowDaysRaw>>,
}

/// `steps[].window_days:`: a number, or text with `{param}` placeholders that
/// interpolates to one (so `--set` moves it with the param the SQL uses).
#[derive(Debug, Clone, Deserialize)]
#[serde(
    untagged,
    expecting = "a number of days or a \"{param}\" that gives one"
)]
pub(crate) enum WindowDaysRaw {
    Days(u64),
    Text(String),
}

/// `steps[].incremental:`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct IncrementalRaw {
    pub merge: BTreeMap<String, MergeRaw>,
}

/// How an incremental step's column merges across days.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub(crate) enum MergeRaw {
    Min,
    Max,
    Sum,
}

/// `steps[].materialize:`.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub(crate) enum MaterializeRaw {
    Table,
    View,
}

/// `steps[].join:`.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub(crate) enum JoinRaw {
    Auto,
    Hash,
    SortMerge,
}

impl From<JoinRaw> for JoinStrategy {
    fn from(raw: JoinRaw) -> Self {
        match raw {
            JoinRaw::Auto => Self::Auto,
            JoinRaw::Hash => Self::Hash,
            JoinRaw::SortMerge => Self::SortMerge,
        }
    }
}

/// `engine:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct EngineRaw {
    #[serde(default)]
    pub memory_limit: Option<Located<String>>,
    #[serde(default)]
    pub spill_dir: Option<String>,
    #[serde(default)]
    pub target_partitions: Option<Located<usize>>,
    #[serde(default)]
    pub cluster: Option<Located<String>>,
}

/// `input: a` or `input: [a, b]`.
#[derive(Debug, Deserialize)]
#[serde(untagged, expecting = "a table name or a list of table names")]
pub(crate) enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    pub fn into_vec(self) -> Vec<String> {
        match self {
            Self::One(name) => vec![name],
            Self::Many(names) => names,
        }
    }
}

/// One entry of `outputs:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct OutputRaw {
    pub path: Located<String>,
    #[serde(default)]
    pub partition_by: Vec<String>,
    #[serde(default)]
    pub sort_by: Vec<String>,
    #[serde(default)]
    pub compression: CompressionRaw,
    /// Bytes per file, e.g. `512MiB`.
    #[serde(default)]
    pub target_file_size: Option<Located<String>>,
    /// Bytes per row group, e.g. `128MiB`.
    #[serde(default)]
    pub row_group_size: Option<Located<String>>,
    #[serde(default)]
    pub bloom_filter: Vec<String>,
    /// Column → `keep | hash | mask | drop`.
    #[serde(default)]
    pub pii: std::collections::BTreeMap<String, PiiPolicyRaw>,
}

/// `unique: {columns: [...], severity: warn}` (the short form is a plain list).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ColumnsCheckRaw {
    pub columns: Vec<String>,
    #[serde(default)]
    pub severity: SeverityRaw,
}

/// `accepted_values:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AcceptedValuesRaw {
    pub column: String,
    pub values: Vec<String>,
    #[serde(default)]
    pub severity: SeverityRaw,
}

/// `relationships:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RelationshipsRaw {
    pub column: String,
    pub to: Located<String>,
    pub field: String,
    #[serde(default)]
    pub severity: SeverityRaw,
}

/// `row_count:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RowCountRaw {
    #[serde(default)]
    pub min: Option<u64>,
    #[serde(default)]
    pub max: Option<u64>,
    #[serde(default)]
    pub max_change_pct: Option<f64>,
    #[serde(default)]
    pub severity: SeverityRaw,
}

/// `freshness:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FreshnessRaw {
    pub column: String,
    pub max_age_days: u32,
    #[serde(default)]
    pub severity: SeverityRaw,
}

/// `sql:` check: a query returning the offending rows (none = pass).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SqlCheckRaw {
    pub name: String,
    pub sql: Located<String>,
    #[serde(default)]
    pub severity: SeverityRaw,
}

/// Generates a lower-case YAML enum and its conversion into the model enum.
macro_rules! yaml_enum {
    ($raw:ident => $model:ident { $($variant:ident = $name:literal => $target:ident),+ $(,)? }) => {
        #[doc = concat!("YAML spelling of [`", stringify!($model), "`].")]
        #[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
        pub(crate) enum $raw {
            #[default]
            $(#[serde(rename = $name)] $variant),+
        }

        impl From<$raw> for $model {
            fn from(raw: $raw) -> Self {
                match raw {
                    $($raw::$variant => $model::$target),+
                }
            }
        }
    };
}

yaml_enum!(FormatRaw => Format { Csv = "csv" => Csv, Ndjson = "ndjson" => Ndjson, Parquet = "parquet" => Parquet });
yaml_enum!(SchemaRaw => ContractSchema {
    Profiles = "profiles" => Profiles,
    Transactions = "transactions" => Transactions,
    Communications = "communications" => Communications,
    Suppressions = "suppressions" => Suppressions,
    FxRates = "fx_rates" => FxRates,
    RfmSegments = "rfm_segments" => RfmSegments,
});
yaml_enum!(CompressionRaw => Compression { Zstd = "zstd" => Zstd, Snappy = "snappy" => Snappy, None = "none" => Uncompressed });
yaml_enum!(PiiPolicyRaw => PiiPolicy { Keep = "keep" => Keep, Hash = "hash" => Hash, Mask = "mask" => Mask, Drop = "drop" => Drop });
yaml_enum!(SeverityRaw => Severity { Error = "error" => Error, Warn = "warn" => Warn });
yaml_enum!(ChartKindRaw => ChartKind { Bar = "bar" => Bar, Heatmap = "heatmap" => Heatmap, Histogram = "histogram" => Histogram });
yaml_enum!(OverlapRaw => Overlap { Skip = "skip" => Skip, Queue = "queue" => Queue, Replace = "replace" => Replace });
