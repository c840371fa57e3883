//! Second pass: cross-check the decoded sections and build the resolved `Job`.
//!
//! Names are checked (form, duplicates, references), placeholders are checked
//! against params and the built-in variables, steps are resolved and ordered.

use super::charts_spec::ChartDraft;
use super::checks_spec::TableChecks;
use super::dedup::{Winner, deduped_table};
use super::interpolate::interpolate_mapped;
use super::model::{
    CheckSpec, FileLayout, Job, OutputSpec, Places, ScheduleSpec, SourceSpec, StorageSpec,
};
use super::model::{ContractSchema, ErasureSpec, ReportSpec, RetryPolicy, StepSpec};
use super::node_de::Located;
use super::report::Reporter;
use super::sections::Draft;
use super::sources_resolve::resolve_source;
use super::spec::{ErasureRaw, ScheduleRaw, SourceRaw};
use super::sql_refs::{parse, table_refs};
use super::steps_resolve::{Scope, resolve_steps};
use super::storage_retry::resolve_storage_retry;
use super::units::{parse_bytes, parse_duration};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

/// Stand-in logical date used to check SQL before a run date is known.
const PLACEHOLDER_DATE: &str = "2000-01-01";

/// Builds the `Job`; returns `None` only when a problem was reported.
pub(crate) fn resolve(
    draft: Draft,
    file: &Path,
    base_dir: &Path,
    report: &mut Reporter,
) -> Option<Job> {
    let (tables, duplicated) = check_names(&draft.defined, report);
    let timezone = resolve_timezone(draft.timezone.as_ref(), draft.schedule.as_ref(), report);
    let schedule = draft.schedule.map(|s| resolve_schedule(s, report));

    let mut path_vars = draft.params.clone();
    path_vars.insert("date".into(), PLACEHOLDER_DATE.into());
    let storage = draft.storage.map(|s| {
        check_placeholders(&s.raw, "storage.raw", &path_vars, report);
        check_placeholders(&s.warehouse, "storage.warehouse", &path_vars, report);
        StorageSpec {
            raw: s.raw.value,
            warehouse: s.warehouse.value,
            options: s.options,
            retry: resolve_storage_retry(s.retry, report),
        }
    });
    if let Some(storage) = &storage {
        path_vars.insert("raw".into(), storage.raw.clone());
        path_vars.insert("warehouse".into(), storage.warehouse.clone());
    } else {
        // Missing storage is reported already; don't also flag every `{raw}`.
        path_vars.insert("raw".into(), "raw".into());
        path_vars.insert("warehouse".into(), "warehouse".into());
    }

    let schemas: BTreeMap<&str, ContractSchema> = draft
        .sources
        .iter()
        .map(|(name, s)| (name.value.as_str(), s.schema.into()))
        .collect();
    let sources: Vec<SourceSpec> = draft
        .sources
        .iter()
        .map(|(name, raw)| resolve_source(name, raw, &schemas, &path_vars, report))
        .collect();

    let output_names: BTreeSet<String> =
        draft.outputs.iter().map(|(n, _)| n.value.clone()).collect();
    let cached_sources: BTreeSet<String> = sources
        .iter()
        .filter(|s| !s.partitions.is_empty() && s.schema != ContractSchema::Suppressions)
        .flat_map(|s| {
            // A later copy never displaces a carried winner only where the first wins.
            let rule = s.schema.dedup_rule();
            let first_wins = !rule.key.is_empty() && rule.winner == Winner::First;
            std::iter::once(s.name.clone()).chain(first_wins.then(|| deduped_table(&s.name)))
        })
        .collect();
    let scope = Scope {
        base_dir,
        tables: &tables,
        outputs: &output_names,
        cached_sources: &cached_sources,
        vars: &path_vars,
        param_positions: &draft.param_positions,
        duplicated: &duplicated,
    };
    let at = |l: &Located<String>| (l.value.clone(), (l.line, l.column));
    let places = Places {
        params: draft.param_positions.clone(),
        steps: draft.steps.iter().map(|s| at(&s.name)).collect(),
        outputs: draft.outputs.iter().map(|(n, _)| at(n)).collect(),
        checks: draft.checks.iter().map(|(t, _)| at(t)).collect(),
        charts: draft
            .charts
            .iter()
            .map(|c| (c.sql.line, c.sql.column))
            .collect(),
    };
    let steps = resolve_steps(draft.steps, &scope, report);
    let erasure = resolve_erasure(draft.erasure, &draft.sources, &steps, report);
    let checks = resolve_checks(draft.checks, &scope, report);
    let report_spec = resolve_report(draft.charts, &scope, report);

    let mut outputs = Vec::new();
    for (name, raw) in draft.outputs {
        undefined_check(&name, "outputs", &tables, report);
        if let Some(problem) = super::confine::output_path_problem(&raw.path.value) {
            let message = format!("outputs.{}.path: {problem}", name.value);
            report.at(raw.path.line, raw.path.column, message);
        }
        check_placeholders(
            &raw.path,
            &format!("outputs.{}.path", name.value),
            &path_vars,
            report,
        );
        let mut size = |loc: Option<Located<String>>, key: &str, default: u64| match loc {
            None => default,
            Some(loc) => match parse_bytes(&loc.value) {
                Ok(0) => {
                    let message = format!("outputs.{}.{key}: must be more than 0", name.value);
                    report.at(loc.line, loc.column, message);
                    default
                }
                Ok(bytes) => bytes,
                Err(m) => {
                    report.at(
                        loc.line,
                        loc.column,
                        format!("outputs.{}.{key}: {m}", name.value),
                    );
                    default
                }
            },
        };
        let layout = FileLayout {
            target_file_bytes: size(
                raw.target_file_size,
                "target_file_size",
                FileLayout::DEFAULT_TARGET_FILE_BYTES,
            ),
            row_group_bytes: size(
                raw.row_group_size,
                "row_group_size",
                FileLayout::DEFAULT_ROW_GROUP_BYTES,
            ),
            bloom_filter: raw.bloom_filter,
            column_statistics: true,
        };
        outputs.push(OutputSpec {
            name: name.value,
            path: raw.path.value,
            partition_by: raw.partition_by,
            sort_by: raw.sort_by,
            compression: raw.compression.into(),
            layout,
            pii: raw
                .pii
                .into_iter()
                .map(|(column, policy)| (column, policy.into()))
                .collect(),
        });
    }

    if !report.is_clean() {
        return None;
    }
    Some(Job {
        file: file.to_path_buf(),
        base_dir: base_dir.to_path_buf(),
        name: draft.name?.value,
        timezone,
        params: draft.params,
        storage: storage?,
        sources,
        steps,
        checks,
        outputs,
        engine: draft.engine,
        schedule,
        erasure,
        report: report_spec,
        places,
    })
}

/// A chart reads the committed outputs only: `<output>` (the snapshot the report
/// shows) and `previous.<output>` (the one before it).
fn resolve_report(charts: Vec<ChartDraft>, scope: &Scope, report: &mut Reporter) -> ReportSpec {
    for (i, chart) in charts.iter().enumerate() {
        let context = format!("report.charts[{i}].sql");
        let at = (chart.sql.line, chart.sql.column);
        let mapped = interpolate_mapped(&chart.sql.value, scope.vars);
        for err in &mapped.errors {
            report.at(at.0, at.1, format!("{context}: {err}"));
        }
        match parse(&mapped.text) {
            Err(e) => report.at(
                at.0,
                at.1,
                format!(
                    "{context}: SQL does not parse at line {}, column {} of the query: {}",
                    e.line, e.column, e.message
                ),
            ),
            Ok(statements) => {
                for table in table_refs(&statements) {
                    let output = table.name.strip_prefix("previous.").unwrap_or(&table.name);
                    if !scope.outputs.contains(output) {
                        let message = format!(
                            "{context}: `{}` is not an output of this job (charts read outputs, or previous.<output>)",
                            table.name
                        );
                        report.at(at.0, at.1, message);
                    }
                }
            }
        }
    }
    ReportSpec {
        charts: charts.into_iter().map(|c| c.spec).collect(),
    }
}

/// Source and step names must be SQL-friendly (DataFusion lower-cases unquoted
/// names) and unique across both sections. Returns the defined and the duplicated names.
fn check_names(
    defined: &[Located<String>],
    report: &mut Reporter,
) -> (BTreeSet<String>, BTreeSet<String>) {
    let mut first: BTreeMap<&str, &Located<String>> = BTreeMap::new();
    let mut duplicated = BTreeSet::new();
    // A builtin's companion tables (`<step>_merges`) sit at their step's location:
    // one duplicate step is one problem, not one per table it defines.
    let mut reported_at = BTreeSet::new();
    for name in defined {
        let n = name.value.as_str();
        let valid = n.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
            && n.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !valid {
            let message = format!(
                "invalid name `{n}`: use lower-case letters, digits and `_`, not starting with a digit"
            );
            report.at(name.line, name.column, message);
        }
        match first.get(n) {
            Some(earlier) => {
                let message = format!(
                    "duplicate name `{n}` (first defined at line {}, column {})",
                    earlier.line, earlier.column
                );
                if reported_at.insert((name.line, name.column)) {
                    report.at(name.line, name.column, message);
                }
                duplicated.insert(n.to_string());
            }
            None => {
                first.insert(n, name);
            }
        }
    }
    (first.keys().map(|k| k.to_string()).collect(), duplicated)
}

/// `timezone:` and `schedule.timezone:` may both be given but must agree; default UTC.
fn resolve_timezone(
    top: Option<&Located<String>>,
    schedule: Option<&ScheduleRaw>,
    report: &mut Reporter,
) -> chrono_tz::Tz {
    let mut parse = |loc: &Located<String>, key: &str| match loc.value.parse::<chrono_tz::Tz>() {
        Ok(tz) => Some(tz),
        Err(_) => {
            let message = format!(
                "{key}: unknown time zone `{}` (use an IANA name like `Europe/London`)",
                loc.value
            );
            report.at(loc.line, loc.column, message);
            None
        }
    };
    let top_tz = top.and_then(|t| parse(t, "timezone"));
    let schedule_loc = schedule.and_then(|s| s.timezone.as_ref());
    let schedule_tz = schedule_loc.and_then(|t| parse(t, "schedule.timezone"));
    if let (Some(a), Some(b), Some(loc)) = (top_tz, schedule_tz, top)
        && a != b
    {
        let message = format!("timezone `{a}` disagrees with schedule.timezone `{b}`");
        report.at(loc.line, loc.column, message);
    }
    top_tz.or(schedule_tz).unwrap_or(chrono_tz::UTC)
}

fn resolve_schedule(raw: ScheduleRaw, report: &mut Reporter) -> ScheduleSpec {
    if let Err(e) = super::cron::CronSchedule::parse(&raw.cron.value) {
        report.at(
            raw.cron.line,
            raw.cron.column,
            format!("schedule.cron: {e}"),
        );
    }
    let mut duration = |loc: Option<Located<String>>, key: &str, default: Duration| match loc {
        None => default,
        Some(loc) => parse_duration(&loc.value).unwrap_or_else(|m| {
            report.at(loc.line, loc.column, format!("schedule.{key}: {m}"));
            default
        }),
    };
    let catchup = duration(raw.catchup, "catchup", Duration::ZERO);
    let max_runtime = raw
        .max_runtime
        .map(|loc| duration(Some(loc), "max_runtime", Duration::ZERO))
        .filter(|d| !d.is_zero());
    let retries = match raw.retries {
        None => RetryPolicy::default(),
        Some(r) => RetryPolicy {
            attempts: r.attempts,
            backoff: duration(r.backoff, "retries.backoff", RetryPolicy::default().backoff),
        },
    };
    ScheduleSpec {
        cron: raw.cron.value,
        catchup,
        overlap: raw.overlap.into(),
        retries,
        max_runtime,
    }
}

fn resolve_checks(
    drafts: TableChecks,
    scope: &Scope,
    report: &mut Reporter,
) -> BTreeMap<String, Vec<CheckSpec>> {
    let mut checks: BTreeMap<String, Vec<CheckSpec>> = BTreeMap::new();
    for (table, drafts) in drafts {
        undefined_check(&table, "checks", scope.tables, report);
        for draft in drafts {
            if let Some(to) = &draft.to {
                undefined_check(
                    to,
                    &format!("checks.{}.relationships.to", table.value),
                    scope.tables,
                    report,
                );
            }
            if let Some(sql) = &draft.sql {
                check_inline_sql(sql, &format!("checks.{}.sql", table.value), scope, report);
            }
            checks
                .entry(table.value.clone())
                .or_default()
                .push(draft.spec);
        }
    }
    checks
}

/// Inline SQL sits inside a YAML string, so problems point at that string and give
/// the position within the SQL in the message.
fn check_inline_sql(sql: &Located<String>, context: &str, scope: &Scope, report: &mut Reporter) {
    let mapped = interpolate_mapped(&sql.value, scope.vars);
    for err in &mapped.errors {
        report.at(sql.line, sql.column, format!("{context}: {err}"));
    }
    match parse(&mapped.text) {
        Err(e) => {
            let message = format!(
                "{context}: SQL does not parse at line {}, column {} of the query: {}",
                e.line, e.column, e.message
            );
            report.at(sql.line, sql.column, message);
        }
        Ok(statements) => {
            for table in table_refs(&statements) {
                if !scope.tables.contains(&table.name) {
                    let message = format!(
                        "{context}: undefined table `{}` (not a source or step of this job)",
                        table.name
                    );
                    report.at(sql.line, sql.column, message);
                }
            }
        }
    }
}

fn undefined_check(
    name: &Located<String>,
    context: &str,
    tables: &BTreeSet<String>,
    report: &mut Reporter,
) {
    if !tables.contains(&name.value) {
        let message = format!(
            "{context}: undefined table `{}` (not a source or step of this job)",
            name.value
        );
        report.at(name.line, name.column, message);
    }
}

pub(super) fn check_placeholders(
    template: &Located<String>,
    context: &str,
    vars: &BTreeMap<String, String>,
    report: &mut Reporter,
) {
    for err in interpolate_mapped(&template.value, vars).errors {
        report.at(template.line, template.column, format!("{context}: {err}"));
    }
}

/// `erasure:` names three steps of the job; a job with a `suppressions` source must
/// declare it, or the erased people's identifiers would stay in its rejects.
fn resolve_erasure(
    raw: Option<ErasureRaw>,
    sources: &[(Located<String>, SourceRaw)],
    steps: &[StepSpec],
    report: &mut Reporter,
) -> Option<ErasureSpec> {
    let Some(raw) = raw else {
        for (name, source) in sources {
            if ContractSchema::from(source.schema) == ContractSchema::Suppressions {
                let message = format!(
                    "source `{}` holds erasure requests (schema: suppressions), so the job needs an \
                     `erasure:` section naming the steps that resolve them: \
                     `erasure: {{ requests: …, customers: …, identifiers: … }}` (docs/rules.md \"Erasure\")",
                    name.value
                );
                report.at(name.line, name.column, message);
            }
        }
        return None;
    };
    for (key, step) in [
        ("requests", &raw.requests),
        ("customers", &raw.customers),
        ("identifiers", &raw.identifiers),
    ] {
        if !steps.iter().any(|s| s.name == step.value) {
            let message = format!("erasure.{key}: `{}` is not a step of this job", step.value);
            report.at(step.line, step.column, message);
        }
    }
    Some(ErasureSpec {
        requests: raw.requests.value,
        customers: raw.customers.value,
        identifiers: raw.identifiers.value,
        rewrite_history: raw.rewrite_history.is_some_and(|r| r.value),
    })
}
