//! The checks and outputs of a resolved job: what each output is checked for,
//! where and how it is written, and what it does with personal data.

/// One data check, parsed from the `checks:` block.
#[derive(Debug, Clone, PartialEq)]
pub enum CheckSpec {
    Unique {
        columns: Vec<String>,
        severity: Severity,
    },
    NotNull {
        columns: Vec<String>,
        severity: Severity,
    },
    AcceptedValues {
        column: String,
        values: Vec<String>,
        severity: Severity,
    },
    Relationships {
        column: String,
        to: String,
        field: String,
        severity: Severity,
    },
    RowCount {
        min: Option<u64>,
        max: Option<u64>,
        max_change_pct: Option<f64>,
        severity: Severity,
    },
    Freshness {
        column: String,
        max_age_days: u32,
        severity: Severity,
    },
    Sql {
        name: String,
        sql: String,
        severity: Severity,
    },
}

/// How a failed check affects the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Severity {
    #[default]
    Error,
    Warn,
}

/// What an output does with a column of personal data (`pii:`, docs/rules.md
/// "Personal data in outputs").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PiiPolicy {
    /// Published as computed.
    #[default]
    Keep,
    /// Replaced by `pii_hash(column)`: keyed HMAC-SHA256, hex.
    Hash,
    /// Replaced by `pii_mask(column)`.
    Mask,
    /// Left out of the output.
    Drop,
}

/// Parquet compression codec of an output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Compression {
    #[default]
    Zstd,
    Snappy,
    Uncompressed,
}

/// How Parquet files are sized and indexed (an output's `target_file_size`,
/// `row_group_size` and `bloom_filter`; staged step tables use the defaults).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileLayout {
    /// A file is closed, and the next part started, once it holds this many bytes.
    pub target_file_bytes: u64,
    /// A row group is closed at about this many encoded bytes, or at 1,048,576
    /// rows (the Parquet writer's default), whichever comes first.
    pub row_group_bytes: u64,
    /// Columns that get a bloom filter in every row group, so a point lookup
    /// (`WHERE customer_key = …`) skips the row groups that cannot hold the value.
    pub bloom_filter: Vec<String>,
    /// Column min/max per page and row group (and so a page index). Outputs have
    /// them for readers' pruning; run-private staged tables do not need them.
    pub column_statistics: bool,
}

impl FileLayout {
    /// `target_file_size` when the job sets none.
    pub const DEFAULT_TARGET_FILE_BYTES: u64 = 512 << 20;
    /// `row_group_size` when the job sets none.
    pub const DEFAULT_ROW_GROUP_BYTES: u64 = 128 << 20;

    /// Run-private staged files (typed sources, step tables, rejects before
    /// publishing): default sizes, no column statistics. Every run reads them
    /// whole, so min/max would prune nothing; without them the planner's filter
    /// estimates fall back to defaults (DataFusion 55.2's estimate from min/max
    /// could exceed 1 and fail the query: "Selectivity is out of limit").
    pub fn staging() -> Self {
        Self {
            column_statistics: false,
            ..Self::default()
        }
    }
}

impl Default for FileLayout {
    fn default() -> Self {
        Self {
            target_file_bytes: Self::DEFAULT_TARGET_FILE_BYTES,
            row_group_bytes: Self::DEFAULT_ROW_GROUP_BYTES,
            bloom_filter: Vec::new(),
            column_statistics: true,
        }
    }
}

/// A published output: the step (or source) of the same name, written as Parquet.
#[derive(Debug, Clone)]
pub struct OutputSpec {
    pub name: String,
    /// Path template, e.g. `{warehouse}/customer_360`.
    pub path: String,
    pub partition_by: Vec<String>,
    pub sort_by: Vec<String>,
    pub compression: Compression,
    pub layout: FileLayout,
    /// Column policies for personal data; a column not named is kept.
    pub pii: std::collections::BTreeMap<String, PiiPolicy>,
}
