//! First pass over a job file: split the top-level mapping into sections and decode
//! every entry on its own, so one bad entry does not hide problems in the others.

use super::charts_spec::{ChartDraft, decode_report};
use super::checks_spec::{TableChecks, decode_checks};
use super::model::{EngineChoice, EngineSpec, parse_engine};
use super::node::{Node, NodeValue};
use super::node_de::{Located, decode};
use super::report::Reporter;
use super::spec::{EngineRaw, ErasureRaw, OutputRaw, ScheduleRaw, SourceRaw, StepRaw, StorageRaw};
use super::units::parse_bytes;
use std::collections::BTreeMap;

/// Top-level keys of a job file, in documentation order.
const TOP_LEVEL_KEYS: &[&str] = &[
    "name", "timezone", "schedule", "params", "storage", "engine", "sources", "steps", "erasure",
    "checks", "outputs", "report",
];

/// Everything decoded from a job file, with locations for the cross-checks.
#[derive(Debug, Default)]
pub(crate) struct Draft {
    pub name: Option<Located<String>>,
    pub timezone: Option<Located<String>>,
    pub schedule: Option<ScheduleRaw>,
    pub params: BTreeMap<String, String>,
    /// Where each param's value is (line, column), for errors about its value.
    pub param_positions: BTreeMap<String, (u32, u32)>,
    pub storage: Option<StorageRaw>,
    pub engine: EngineSpec,
    pub sources: Vec<(Located<String>, SourceRaw)>,
    pub steps: Vec<StepRaw>,
    /// `erasure:`, and where the key is (for "required" errors).
    pub erasure: Option<ErasureRaw>,
    pub checks: TableChecks,
    pub outputs: Vec<(Located<String>, OutputRaw)>,
    /// `report.charts`, in file order.
    pub charts: Vec<ChartDraft>,
    /// Source and step names, including entries that failed to decode, so a broken
    /// entry does not also make every reference to it an error.
    pub defined: Vec<Located<String>>,
}

/// Decodes the sections of the top-level mapping; problems go to `report`.
pub(crate) fn decode_sections(root: &Node, report: &mut Reporter) -> Draft {
    let mut draft = Draft::default();
    let NodeValue::Map(entries) = &root.value else {
        report.at(
            root.line.max(1),
            root.column.max(1),
            format!("a job file must be a mapping, found {}", root.kind_name()),
        );
        return draft;
    };
    for (key, value) in entries {
        let key_text = key.as_scalar().unwrap_or_default();
        match key_text {
            "name" => draft.name = decode_or_report(value, "name", report),
            "timezone" => draft.timezone = decode_or_report(value, "timezone", report),
            "schedule" => draft.schedule = decode_or_report(value, "schedule", report),
            "params" => (draft.params, draft.param_positions) = decode_params(value, report),
            "storage" => draft.storage = decode_or_report(value, "storage", report),
            "engine" => draft.engine = decode_engine(value, report),
            "memory_limit" => report.at(
                key.line,
                key.column,
                "`memory_limit` moved into the engine section: `engine: { memory_limit: 2GiB }`"
                    .to_string(),
            ),
            "sources" => decode_sources(value, &mut draft, report),
            "steps" => decode_steps(value, &mut draft, report),
            "erasure" => draft.erasure = decode_or_report(value, "erasure", report),
            "checks" => draft.checks = decode_checks(value, report),
            "outputs" => draft.outputs = decode_named(value, "outputs", report),
            "report" => draft.charts = decode_report(value, report),
            _ => report.at(
                key.line,
                key.column,
                format!(
                    "unknown key `{key_text}`, expected one of {}",
                    TOP_LEVEL_KEYS.join(", ")
                ),
            ),
        }
    }
    for required in ["name", "storage"] {
        if !entries.iter().any(|(k, _)| k.as_scalar() == Some(required)) {
            report.at(root.line, root.column, format!("missing key `{required}`"));
        }
    }
    draft
}

fn decode_or_report<T: serde::de::DeserializeOwned>(
    node: &Node,
    context: &str,
    report: &mut Reporter,
) -> Option<T> {
    decode(node).map_err(|e| report.decode(context, e)).ok()
}

/// The entries of a mapping section, or a report that it is not one.
pub(crate) fn mapping<'a>(
    node: &'a Node,
    context: &str,
    report: &mut Reporter,
) -> &'a [(Node, Node)] {
    match &node.value {
        NodeValue::Map(entries) => entries,
        NodeValue::Null => &[],
        _ => {
            report.at(
                node.line,
                node.column,
                format!("{context}: expected a mapping, found {}", node.kind_name()),
            );
            &[]
        }
    }
}

/// The items of a list section (`steps`, `report.charts`); anything but a list
/// or nothing is reported.
pub(crate) fn list<'a>(node: &'a Node, context: &str, report: &mut Reporter) -> &'a [Node] {
    match &node.value {
        NodeValue::Seq(items) => items.as_slice(),
        NodeValue::Null => &[],
        _ => {
            report.at(
                node.line,
                node.column,
                format!("{context}: expected a list, found {}", node.kind_name()),
            );
            &[]
        }
    }
}

/// A key as a located name; a non-scalar key is reported.
pub(crate) fn key_name(
    key: &Node,
    context: &str,
    report: &mut Reporter,
) -> Option<Located<String>> {
    match key.as_scalar() {
        Some(text) => Some(Located {
            line: key.line,
            column: key.column,
            value: text.to_string(),
        }),
        None => {
            report.at(
                key.line,
                key.column,
                format!("{context}: a key must be a name"),
            );
            None
        }
    }
}

type Params = (BTreeMap<String, String>, BTreeMap<String, (u32, u32)>);

fn decode_params(node: &Node, report: &mut Reporter) -> Params {
    let mut params = BTreeMap::new();
    let mut positions = BTreeMap::new();
    for (key, value) in mapping(node, "params", report) {
        let Some(name) = key_name(key, "params", report) else {
            continue;
        };
        match value.as_scalar() {
            Some(text) => {
                positions.insert(name.value.clone(), (value.line, value.column));
                params.insert(name.value, text.to_string());
            }
            None => report.at(
                value.line,
                value.column,
                format!(
                    "params.{}: expected a scalar, found {}",
                    name.value,
                    value.kind_name()
                ),
            ),
        }
    }
    (params, positions)
}

fn decode_engine(node: &Node, report: &mut Reporter) -> EngineSpec {
    let Some(raw) = decode_or_report::<EngineRaw>(node, "engine", report) else {
        return EngineSpec::default();
    };
    let memory_limit = raw.memory_limit.and_then(|limit| {
        parse_bytes(&limit.value)
            .map_err(|m| {
                let message = format!("engine.memory_limit: {m}");
                report.at(limit.line, limit.column, message)
            })
            .ok()
    });
    let target_partitions = raw.target_partitions.and_then(|n| {
        if n.value == 0 {
            let message = "engine.target_partitions: must be at least 1".to_string();
            report.at(n.line, n.column, message);
            None
        } else {
            Some(n.value)
        }
    });
    let cluster = raw.cluster.and_then(|url| match parse_engine(&url.value) {
        Ok(EngineChoice::Ballista(url)) => Some(url),
        Ok(EngineChoice::Local) => None,
        Err(m) => {
            report.at(url.line, url.column, format!("engine.cluster: {m}"));
            None
        }
    });
    EngineSpec {
        memory_limit,
        spill_dir: raw.spill_dir.map(std::path::PathBuf::from),
        target_partitions,
        cluster,
    }
}

fn decode_sources(node: &Node, draft: &mut Draft, report: &mut Reporter) {
    for (key, value) in mapping(node, "sources", report) {
        let Some(name) = key_name(key, "sources", report) else {
            continue;
        };
        draft.defined.push(name.clone());
        let context = format!("sources.{}", name.value);
        if let Some(source) = decode_or_report::<SourceRaw>(value, &context, report) {
            // A keyed source also defines its deduplicated rows (`job::dedup`).
            let schema: super::ContractSchema = source.schema.into();
            if !schema.dedup_rule().key.is_empty() {
                draft.defined.push(Located {
                    value: super::deduped_table(&name.value),
                    ..name.clone()
                });
            }
            draft.sources.push((name, source));
        }
    }
}

/// Entries of a `name: {…}` section (outputs).
fn decode_named<T: serde::de::DeserializeOwned>(
    node: &Node,
    section: &str,
    report: &mut Reporter,
) -> Vec<(Located<String>, T)> {
    let mut out = Vec::new();
    for (key, value) in mapping(node, section, report) {
        let Some(name) = key_name(key, section, report) else {
            continue;
        };
        let context = format!("{section}.{}", name.value);
        if let Some(item) = decode_or_report(value, &context, report) {
            out.push((name, item));
        }
    }
    out
}

fn decode_steps(node: &Node, draft: &mut Draft, report: &mut Reporter) {
    let items = list(node, "steps", report);
    for (i, item) in items.iter().enumerate() {
        if let Some(name) = step_name(item) {
            draft.defined.push(name);
        }
        let context = format!("steps[{i}]");
        if let Some(step) = decode_or_report::<StepRaw>(item, &context, report) {
            if let Some(builtin) = &step.builtin {
                for table in builtin.value.companion_tables(&step.name.value) {
                    draft.defined.push(Located {
                        line: step.name.line,
                        column: step.name.column,
                        value: table,
                    });
                }
            }
            draft.steps.push(step);
        }
    }
}

/// The `name:` of a step entry even when the rest of it does not decode.
fn step_name(item: &Node) -> Option<Located<String>> {
    let NodeValue::Map(entries) = &item.value else {
        return None;
    };
    entries
        .iter()
        .find(|(k, _)| k.as_scalar() == Some("name"))
        .and_then(|(_, v)| {
            v.as_scalar().map(|text| Located {
                line: v.line,
                column: v.column,
                value: text.to_string(),
            })
        })
}
