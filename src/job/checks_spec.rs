//! The `checks:` block: data tests per table.
//!
//! Each table maps to one mapping of check kinds, or to a list of such mappings when
//! a kind is needed twice (two `accepted_values` on different columns):
//!
//! ```yaml
//! checks:
//!   customer_360:
//!     unique: [customer_key]
//!     not_null: { columns: [segment], severity: warn }
//!   orders:
//!     - accepted_values: { column: status, values: [completed, returned] }
//!     - accepted_values: { column: channel, values: [online, store] }
//! ```

use super::model::{CheckSpec, Severity};
use super::node::{Node, NodeValue};
use super::node_de::{DecodeError, Located, decode};
use super::report::Reporter;
use super::sections::{key_name, mapping};
use super::spec::{
    AcceptedValuesRaw, ColumnsCheckRaw, FreshnessRaw, RelationshipsRaw, RowCountRaw, SqlCheckRaw,
};

/// Check kinds, in documentation order.
const CHECK_KINDS: &[&str] = &[
    "unique",
    "not_null",
    "accepted_values",
    "relationships",
    "row_count",
    "freshness",
    "sql",
];

/// Checks per table, in file order.
pub(crate) type TableChecks = Vec<(Located<String>, Vec<CheckDraft>)>;

/// A decoded check and the references validation still has to resolve.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct CheckDraft {
    pub spec: CheckSpec,
    /// `relationships.to`: must name a source or step.
    pub to: Option<Located<String>>,
    /// `sql.sql`: inline SQL to parse and resolve.
    pub sql: Option<Located<String>>,
}

/// Decodes `checks:` into (table, checks) in file order.
pub(crate) fn decode_checks(node: &Node, report: &mut Reporter) -> TableChecks {
    let mut out = Vec::new();
    for (key, value) in mapping(node, "checks", report) {
        let Some(table) = key_name(key, "checks", report) else {
            continue;
        };
        let context = format!("checks.{}", table.value);
        let groups: Vec<&Node> = match &value.value {
            NodeValue::Seq(items) => items.iter().collect(),
            _ => vec![value],
        };
        let mut checks = Vec::new();
        for group in groups {
            for (kind, args) in mapping(group, &context, report) {
                let kind_text = kind.as_scalar().unwrap_or_default();
                match decode_check(kind_text, args) {
                    Some(Ok(check)) => checks.push(check),
                    Some(Err(e)) => report.decode(&format!("{context}.{kind_text}"), e),
                    None => report.at(
                        kind.line,
                        kind.column,
                        format!(
                            "{context}: unknown check `{kind_text}`, expected one of {}",
                            CHECK_KINDS.join(", ")
                        ),
                    ),
                }
            }
        }
        out.push((table, checks));
    }
    out
}

/// `None` for an unknown kind.
fn decode_check(kind: &str, args: &Node) -> Option<Result<CheckDraft, DecodeError>> {
    let plain = |spec| CheckDraft {
        spec,
        to: None,
        sql: None,
    };
    let result =
        match kind {
            "unique" => columns(args)
                .map(|(columns, severity)| plain(CheckSpec::Unique { columns, severity })),
            "not_null" => columns(args)
                .map(|(columns, severity)| plain(CheckSpec::NotNull { columns, severity })),
            "accepted_values" => decode::<AcceptedValuesRaw>(args).map(|r| {
                plain(CheckSpec::AcceptedValues {
                    column: r.column,
                    values: r.values,
                    severity: r.severity.into(),
                })
            }),
            "relationships" => decode::<RelationshipsRaw>(args).map(|r| CheckDraft {
                spec: CheckSpec::Relationships {
                    column: r.column,
                    to: r.to.value.clone(),
                    field: r.field,
                    severity: r.severity.into(),
                },
                to: Some(r.to),
                sql: None,
            }),
            "row_count" => decode::<RowCountRaw>(args).map(|r| {
                plain(CheckSpec::RowCount {
                    min: r.min,
                    max: r.max,
                    max_change_pct: r.max_change_pct,
                    severity: r.severity.into(),
                })
            }),
            "freshness" => decode::<FreshnessRaw>(args).map(|r| {
                plain(CheckSpec::Freshness {
                    column: r.column,
                    max_age_days: r.max_age_days,
                    severity: r.severity.into(),
                })
            }),
            "sql" => decode::<SqlCheckRaw>(args).map(|r| CheckDraft {
                spec: CheckSpec::Sql {
                    name: r.name,
                    sql: r.sql.value.clone(),
                    severity: r.severity.into(),
                },
                to: None,
                sql: Some(r.sql),
            }),
            _ => return None,
        };
    Some(result)
}

/// `[a, b]` (severity error) or `{ columns: [a, b], severity: warn }`.
fn columns(args: &Node) -> Result<(Vec<String>, Severity), DecodeError> {
    match &args.value {
        NodeValue::Map(_) => {
            let raw: ColumnsCheckRaw = decode(args)?;
            Ok((raw.columns, raw.severity.into()))
        }
        _ => Ok((decode(args)?, Severity::Error)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn checks(yaml: &str) -> (TableChecks, Vec<String>) {
        let node = Node::parse(yaml).unwrap();
        let mut report = Reporter::new(Path::new("j.yaml"));
        let out = decode_checks(&node, &mut report);
        let messages = report.diagnostics.iter().map(|d| d.to_string()).collect();
        (out, messages)
    }

    #[test]
    fn short_and_long_forms() {
        let (out, messages) = checks(
            "t:\n  unique: [a, b]\n  not_null: { columns: [c], severity: warn }\n  row_count: { min: 1 }\n",
        );
        assert!(messages.is_empty(), "{messages:?}");
        let specs: Vec<_> = out[0].1.iter().map(|c| c.spec.clone()).collect();
        assert_eq!(
            specs,
            vec![
                CheckSpec::Unique {
                    columns: vec!["a".into(), "b".into()],
                    severity: Severity::Error
                },
                CheckSpec::NotNull {
                    columns: vec!["c".into()],
                    severity: Severity::Warn
                },
                CheckSpec::RowCount {
                    min: Some(1),
                    max: None,
                    max_change_pct: None,
                    severity: Severity::Error
                },
            ]
        );
    }

    #[test]
    fn list_form_allows_a_kind_twice() {
        let (out, messages) = checks(
            "t:\n  - accepted_values: { column: a, values: [x] }\n  - accepted_values: { column: b, values: [y, z], severity: warn }\n",
        );
        assert!(messages.is_empty(), "{messages:?}");
        assert_eq!(out[0].1.len(), 2);
        assert_eq!(
            out[0].1[1].spec,
            CheckSpec::AcceptedValues {
                column: "b".into(),
                values: vec!["y".into(), "z".into()],
                severity: Severity::Warn
            }
        );
    }

    #[test]
    fn every_bad_check_is_reported() {
        let (_, messages) = checks(
            "t:\n  uniq: [a]\n  freshness: { column: d }\n  not_null: { columns: [a], severity: fatal }\n",
        );
        assert_eq!(
            messages,
            vec![
                "j.yaml:2:3: checks.t: unknown check `uniq`, expected one of unique, not_null, accepted_values, relationships, row_count, freshness, sql",
                "j.yaml:3:14: checks.t.freshness: missing field `max_age_days`",
                "j.yaml:4:39: checks.t.not_null: unknown variant `fatal`, expected `error` or `warn`",
            ]
        );
    }
}
