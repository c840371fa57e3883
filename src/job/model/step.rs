//! The steps of a resolved job: what each runs, how its result is kept within
//! a run and from run to run, and how its joins run.

use std::path::PathBuf;

/// What a step runs.
#[derive(Debug, Clone)]
pub enum StepKind {
    /// A SQL file; `sql` is its text as read at load time (before interpolation).
    Sql { file: PathBuf, sql: String },
    /// A builtin Rust step (`builtin: stitch_identities`), with its input table
    /// names. Its settings come from the params ([`crate::job::Builtin::settings`]).
    Builtin {
        builtin: crate::job::Builtin,
        inputs: Vec<String>,
    },
}

/// One named step; its result is registered under `name`.
#[derive(Debug, Clone)]
pub struct StepSpec {
    pub name: String,
    pub kind: StepKind,
    /// Source and step names this step reads (inferred from the SQL for SQL steps).
    pub depends_on: Vec<String>,
    /// Tables a builtin registers besides `name` (e.g. `identity_map_merges`).
    pub also_defines: Vec<String>,
    /// Builtin steps: the output whose committed snapshots hold the step's earlier
    /// results (stable keys); `None` = the output named like the step.
    pub previous: Option<String>,
    /// Whether the result is written once to run-private Parquet (resolved at load).
    pub materialize: Materialize,
    /// How the step's joins run.
    pub join: JoinStrategy,
    /// A SQL step whose result is carried from run to run (`incremental:`).
    pub incremental: Option<Incremental>,
    /// `window_days:` of a SQL step, before interpolation: the step reads only
    /// the days of its (partitioned) sources with `date − dt ≤ N`, plus the
    /// rows held out for erasure (`crate::steps::carried::register_windowed`).
    /// A promise of the SQL: its filters leave out every row of an older day,
    /// so the window changes how much is read, never the result (a cluster, or
    /// a plan without a warehouse, reads every day).
    pub window_days: Option<String>,
}

/// `incremental:` of a SQL step: its result is kept in the warehouse and each run
/// folds only the new days of its (partitioned) sources into it
/// (`crate::steps::carried`). The step must be a distributive reduction: its
/// result over rows A ∪ B equals its results over A and over B merged on every
/// column not in `merge`, each `merge` column by its function. Min and max are
/// idempotent, so a row counted twice changes nothing; a sum counts each row
/// once, so it needs rows that are read once (a source's deduplicated rows
/// where the first copy wins, whose winners a later day never displaces).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incremental {
    /// Column -> how it merges; rows merge on every other column.
    pub merge: Vec<(String, Merge)>,
}

impl Incremental {
    /// How `column` merges; `None`: rows merge on it.
    pub fn merge_of(&self, column: &str) -> Option<Merge> {
        self.merge
            .iter()
            .find(|(c, _)| c == column)
            .map(|(_, m)| *m)
    }
}

/// How a column of an incremental step merges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Merge {
    Min,
    Max,
    /// The sum (NULL only when both sides are NULL, as SQL's `SUM`).
    Sum,
}

impl Merge {
    /// The job-file spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Min => "min",
            Self::Max => "max",
            Self::Sum => "sum",
        }
    }
}

impl StepSpec {
    /// A Rust step (`builtin:`), whose tables are computed in this process.
    pub fn is_builtin(&self) -> bool {
        matches!(self.kind, StepKind::Builtin { .. })
    }
}

/// dbt's materializations, for a step's result within one run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Materialize {
    /// Computed once into run-private staging Parquet; readers scan the files.
    /// The default for steps read by more than one step or output, and for
    /// output steps (whose staged files are what the commit publishes).
    Table,
    /// Planned into each reader (cheap steps with one reader).
    View,
}

impl Materialize {
    /// The job-file spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Table => "table",
            Self::View => "view",
        }
    }
}

/// `join:` of a step: which physical join DataFusion uses for its equi-joins.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum JoinStrategy {
    /// Hash joins when the staged inputs the step reads are small next to the
    /// memory pool, sort-merge joins (which spill) otherwise (`crate::engine`).
    #[default]
    Auto,
    /// Hash joins: fastest, but a build side cannot spill in DataFusion 55.
    Hash,
    /// Sort-merge joins: slower, bounded by the pool (sorts spill).
    SortMerge,
}

impl JoinStrategy {
    /// The job-file spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::Hash => "hash",
            Self::SortMerge => "sort_merge",
        }
    }
}
