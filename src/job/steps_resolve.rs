//! Steps: read and check each SQL file, infer dependencies, order the DAG.

use super::dag;
use super::interpolate::{byte_offset, interpolate_mapped, line_col};
use super::model::{Incremental, JoinStrategy, Materialize, Merge, StepKind, StepSpec};
use super::node_de::Located;
use super::report::Reporter;
use super::spec::{IncrementalRaw, MaterializeRaw, MergeRaw, StepRaw, WindowDaysRaw};
use super::sql_refs::{parse, table_refs};
use datafusion::sql::sqlparser::ast::Statement;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Names a step may read and placeholder values used to check SQL.
pub(crate) struct Scope<'a> {
    pub base_dir: &'a Path,
    /// Every source and step name.
    pub tables: &'a BTreeSet<String>,
    /// Every output name (a builtin's `previous` must be one).
    pub outputs: &'a BTreeSet<String>,
    /// What an incremental step may read: the sources read through the typed
    /// staging cache (partitioned, not the erasure requests), and the
    /// deduplicated rows (`<source>_deduped`) of those where the first copy wins.
    pub cached_sources: &'a BTreeSet<String>,
    /// Params, `raw`, `warehouse`, and a stand-in `date`.
    pub vars: &'a BTreeMap<String, String>,
    /// Where each param's value is in the job file (line, column).
    pub param_positions: &'a BTreeMap<String, (u32, u32)>,
    /// Names defined twice (already reported): edges to them are left out of the
    /// DAG so a duplicate does not also show up as a made-up cycle.
    pub duplicated: &'a BTreeSet<String>,
}

/// Resolves steps into execution order; every problem goes to `report`.
pub(crate) fn resolve_steps(
    raw: Vec<StepRaw>,
    scope: &Scope,
    report: &mut Reporter,
) -> Vec<StepSpec> {
    let mut steps = Vec::new();
    let mut names = Vec::new();
    let mut explicit = BTreeMap::new();
    for step in raw {
        let name = step.name.clone();
        let chosen = step.materialize.clone();
        if let Some(spec) = resolve_step(step, scope, report) {
            if let Some(chosen) = chosen {
                explicit.insert(name.value.clone(), chosen);
            }
            names.push(name);
            steps.push(spec);
        }
    }
    let mut steps = order_steps(steps, &names, scope.duplicated, report);
    choose_materializations(&mut steps, &explicit, scope.outputs, report);
    steps
}

/// dbt's rule, decided once at load: an output step is a table (its staged files
/// are what the commit publishes), a builtin's result is a table (written out of
/// memory), a step read by two or more steps is a table (computed once), and a
/// step with one reader is a view unless the job says `materialize: table`.
fn choose_materializations(
    steps: &mut [StepSpec],
    explicit: &BTreeMap<String, Located<MaterializeRaw>>,
    outputs: &BTreeSet<String>,
    report: &mut Reporter,
) {
    let mut readers: BTreeMap<&str, usize> = BTreeMap::new();
    for step in steps.iter() {
        let read: BTreeSet<&str> = step.depends_on.iter().map(String::as_str).collect();
        for table in read {
            *readers.entry(table).or_default() += 1;
        }
    }
    let chosen: Vec<Materialize> = steps
        .iter()
        .map(|step| {
            // Why the step must be a table, if it must.
            let required = if outputs.contains(&step.name) {
                Some("an output step; an output is written once and published from those files")
            } else if matches!(step.kind, StepKind::Builtin { .. }) {
                Some("a builtin step; a builtin computes its table once")
            } else {
                None
            };
            let wanted = explicit.get(&step.name);
            match (wanted, required) {
                (Some(raw), Some(why)) if raw.value == MaterializeRaw::View => {
                    let message = format!("step `{}`: `materialize: view` on {why}", step.name);
                    report.at(raw.line, raw.column, message);
                    Materialize::Table
                }
                (Some(raw), None) if raw.value == MaterializeRaw::View => Materialize::View,
                (Some(_), _) | (None, Some(_)) => Materialize::Table,
                (None, None) if readers.get(step.name.as_str()).copied().unwrap_or(0) >= 2 => {
                    Materialize::Table
                }
                (None, None) => Materialize::View,
            }
        })
        .collect();
    for (step, materialize) in steps.iter_mut().zip(chosen) {
        step.materialize = materialize;
    }
}

fn resolve_step(step: StepRaw, scope: &Scope, report: &mut Reporter) -> Option<StepSpec> {
    let name = step.name;
    let context = format!("step `{}`", name.value);
    let mut also_defines = Vec::new();
    let previous = step.previous.map(|p| {
        if step.builtin.is_none() {
            let message = format!("{context}: `previous` only applies to builtin steps");
            report.at(p.line, p.column, message);
        } else if !scope.outputs.contains(&p.value) {
            let message = format!(
                "{context}: `previous: {}` is not an output of this job",
                p.value
            );
            report.at(p.line, p.column, message);
        }
        p.value
    });
    let (kind, depends_on) = match (step.sql, step.builtin) {
        (Some(sql), None) => {
            if let Some(input) = &step.input {
                let message = format!(
                    "{context}: `input` only applies to builtin steps; a SQL step reads the tables its SQL names"
                );
                report.at(input.line, input.column, message);
            }
            let (file, sql, reads) = read_sql_step(&sql, scope, report)?;
            (StepKind::Sql { file, sql }, reads)
        }
        (None, Some(builtin)) => {
            let Some(input) = step.input else {
                let message = format!(
                    "{context}: builtin `{}` needs `input`",
                    builtin.value.name()
                );
                report.at(builtin.line, builtin.column, message);
                return None;
            };
            let inputs = input.value.into_vec();
            for table in inputs.iter().filter(|t| !scope.tables.contains(*t)) {
                let message = format!(
                    "{context}: undefined input `{table}` (not a source or step of this job)"
                );
                report.at(input.line, input.column, message);
            }
            also_defines = builtin.value.companion_tables(&name.value);
            if let Err(e) = builtin.value.settings(scope.vars) {
                let (line, column) = scope
                    .param_positions
                    .get(e.param)
                    .copied()
                    .unwrap_or((builtin.line, builtin.column));
                let message = format!(
                    "params.{}: {} (a setting of builtin `{}`, step `{}`)",
                    e.param,
                    e.message,
                    builtin.value.name(),
                    name.value
                );
                report.at(line, column, message);
            }
            let kind = StepKind::Builtin {
                builtin: builtin.value,
                inputs: inputs.clone(),
            };
            (kind, inputs)
        }
        (None, None) => {
            report.at(
                name.line,
                name.column,
                format!("{context}: needs `sql` or `builtin`"),
            );
            return None;
        }
        (Some(_), Some(builtin)) => {
            let message =
                format!("{context}: has both `sql` and `builtin`; a step is one or the other");
            report.at(builtin.line, builtin.column, message);
            return None;
        }
    };
    let incremental = step
        .incremental
        .map(|raw| resolve_incremental(raw, &context, &kind, &depends_on, scope, report));
    let window_days = step.window_days.map(|raw| {
        let both = incremental.is_some();
        resolve_window(raw, &context, (&kind, both), &depends_on, scope, report)
    });
    Some(StepSpec {
        name: name.value,
        kind,
        depends_on,
        also_defines,
        previous,
        // Decided for all steps together, once the readers are known.
        materialize: Materialize::View,
        join: step.join.map(JoinStrategy::from).unwrap_or_default(),
        incremental,
        window_days,
    })
}

/// Checks `incremental:` of a step: a SQL step that reads only cached sources
/// (their days are what it folds in, run after run), merging at least one column.
fn resolve_incremental(
    raw: Located<IncrementalRaw>,
    context: &str,
    kind: &StepKind,
    reads: &[String],
    scope: &Scope,
    report: &mut Reporter,
) -> Incremental {
    let (line, column) = (raw.line, raw.column);
    if !matches!(kind, StepKind::Sql { .. }) {
        report.at(
            line,
            column,
            format!("{context}: `incremental` only applies to SQL steps"),
        );
    }
    reads_cached_only(
        "an incremental step",
        context,
        reads,
        scope,
        (line, column),
        report,
    );
    if raw.value.merge.is_empty() {
        let message = format!("{context}: `incremental.merge` names no column");
        report.at(line, column, message);
    }
    let merge = raw
        .value
        .merge
        .into_iter()
        .map(|(column, how)| {
            let how = match how {
                MergeRaw::Min => Merge::Min,
                MergeRaw::Max => Merge::Max,
                MergeRaw::Sum => Merge::Sum,
            };
            (column, how)
        })
        .collect();
    Incremental { merge }
}

/// Checks that a step (`what`, for the message) reads only what the typed
/// staging cache holds by day: its days are what the step binds.
fn reads_cached_only(
    what: &str,
    context: &str,
    reads: &[String],
    scope: &Scope,
    (line, column): (u32, u32),
    report: &mut Reporter,
) {
    for table in reads.iter().filter(|t| !scope.cached_sources.contains(*t)) {
        let message = format!(
            "{context}: {what} reads only partitioned sources (not the erasure requests) and the `_deduped` rows of those where the first copy wins; `{table}` is neither"
        );
        report.at(line, column, message);
    }
}

/// Checks `window_days:` of a step: a SQL step, not incremental, that reads
/// only cached sources, with a number of days (or text that interpolates to
/// one). Returns the text the run interpolates with its own params.
fn resolve_window(
    raw: Located<WindowDaysRaw>,
    context: &str,
    (kind, incremental): (&StepKind, bool),
    reads: &[String],
    scope: &Scope,
    report: &mut Reporter,
) -> String {
    let at = (raw.line, raw.column);
    if !matches!(kind, StepKind::Sql { .. }) {
        let message = format!("{context}: `window_days` only applies to SQL steps");
        report.at(at.0, at.1, message);
    } else if incremental {
        let message = format!(
            "{context}: `window_days` and `incremental` do not go together; a carried step reads every day once"
        );
        report.at(at.0, at.1, message);
    }
    reads_cached_only(
        "a step with `window_days`",
        context,
        reads,
        scope,
        at,
        report,
    );
    let text = match raw.value {
        WindowDaysRaw::Days(n) => n.to_string(),
        WindowDaysRaw::Text(text) => text,
    };
    if let Err(message) = window_days(&text, scope.vars) {
        report.at(at.0, at.1, format!("{context}: `window_days`: {message}"));
    }
    text
}

/// The number of days `text` (a step's `window_days`) gives under `vars`.
pub(crate) fn window_days(text: &str, vars: &BTreeMap<String, String>) -> Result<u32, String> {
    let value = super::interpolate(text, vars).map_err(|e| e.to_string())?;
    value
        .trim()
        .parse()
        .map_err(|_| format!("`{value}` is not a whole number of days"))
}

/// Reads a step's SQL file and checks it: placeholders, syntax, one query, and that
/// every table it reads exists. Positions are reported in the SQL file as written,
/// before interpolation.
fn read_sql_step(
    sql_path: &Located<String>,
    scope: &Scope,
    report: &mut Reporter,
) -> Option<(PathBuf, String, Vec<String>)> {
    let file = PathBuf::from(&sql_path.value);
    let full = scope.base_dir.join(&file);
    if !super::confine::within(scope.base_dir, &full) {
        let message = format!(
            "SQL file `{}` is outside the job's project folder `{}` (SQL files are read only from there)",
            sql_path.value,
            scope.base_dir.display()
        );
        report.at(sql_path.line, sql_path.column, message);
        return None;
    }
    let template = match std::fs::read_to_string(&full) {
        Ok(text) => text,
        Err(e) => {
            let message = format!("cannot read SQL file `{}`: {e}", sql_path.value);
            report.at(sql_path.line, sql_path.column, message);
            return None;
        }
    };
    let mapped = interpolate_mapped(&template, scope.vars);
    for err in &mapped.errors {
        let (line, column) = line_col(&template, err.offset());
        report.in_file(&file, line, column, err.to_string());
    }
    // Maps a position of the interpolated SQL back to the file.
    let to_file = |line: u32, column: u32| {
        let offset = mapped.template_offset(byte_offset(&mapped.text, line, column));
        line_col(&template, offset)
    };
    let statements = match parse(&mapped.text) {
        Ok(statements) => statements,
        Err(e) => {
            let (line, column) = to_file(e.line.max(1), e.column.max(1));
            report.in_file(
                &file,
                line,
                column,
                format!("SQL does not parse: {}", e.message),
            );
            return None;
        }
    };
    if !matches!(statements.as_slice(), [Statement::Query(_)]) {
        let message = format!(
            "a SQL step must be exactly one query (SELECT or WITH …), found {} statement(s)",
            statements.len()
        );
        report.in_file(&file, 1, 1, message);
    }
    let mut reads = Vec::new();
    for table in table_refs(&statements) {
        if !scope.tables.contains(&table.name) {
            let (line, column) = to_file(table.line, table.column);
            let message = format!(
                "undefined table `{}` (not a source or step of this job)",
                table.name
            );
            report.in_file(&file, line, column, message);
        }
        reads.push(table.name);
    }
    Some((file, template, reads))
}

/// Puts steps in dependency order and reports each cycle at its first step.
fn order_steps(
    steps: Vec<StepSpec>,
    names: &[Located<String>],
    duplicated: &BTreeSet<String>,
    report: &mut Reporter,
) -> Vec<StepSpec> {
    // A companion table (a builtin's extra result) is reached through its step.
    let index: BTreeMap<&str, usize> = steps
        .iter()
        .enumerate()
        .flat_map(|(i, s)| {
            std::iter::once(s.name.as_str())
                .chain(s.also_defines.iter().map(String::as_str))
                .map(move |name| (name, i))
        })
        .filter(|(name, _)| !duplicated.contains(*name))
        .collect();
    let deps: Vec<Vec<usize>> = steps
        .iter()
        .map(|s| {
            s.depends_on
                .iter()
                .filter_map(|d| index.get(d.as_str()).copied())
                .collect()
        })
        .collect();
    let (order, cycles) = dag::order(&deps);
    for cycle in cycles {
        let mut path: Vec<&str> = cycle.iter().map(|&i| steps[i].name.as_str()).collect();
        let (Some(&head), Some(first)) = (path.first(), cycle.first().map(|&i| &names[i])) else {
            continue;
        };
        path.push(head);
        let message = format!("dependency cycle: {}", path.join(" -> "));
        report.at(first.line, first.column, message);
    }
    let mut slots: Vec<Option<StepSpec>> = steps.into_iter().map(Some).collect();
    order.into_iter().filter_map(|i| slots[i].take()).collect()
}
