//! The SQL of each check kind: a query counting offending rows (or keys) and a
//! query returning a few of them, both over the checked table's registered name.

use crate::job::CheckSpec;

/// Most offending rows quoted in a failure message.
pub const SAMPLE_ROWS: usize = 5;

/// How a check is evaluated.
pub enum Plan {
    /// Offending rows must be zero: `count` returns one integer, `sample` a few rows.
    Offending {
        count: String,
        sample: String,
        /// What `count` counts: "duplicated key(s)", "row(s)".
        unit: &'static str,
    },
    /// Compared in Rust: min/max/change of the row count.
    RowCount,
    /// Compared in Rust: `newest` returns the newest value's date as text.
    Freshness { newest: String },
}

pub use crate::engine::sql_ident as ident;

/// `'text'` with embedded quotes doubled.
pub fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// A short, stable name for messages and the run log, e.g. `unique(customer_key)`.
pub fn name(check: &CheckSpec) -> String {
    match check {
        CheckSpec::Unique { columns, .. } => format!("unique({})", columns.join(", ")),
        CheckSpec::NotNull { columns, .. } => format!("not_null({})", columns.join(", ")),
        CheckSpec::AcceptedValues { column, .. } => format!("accepted_values({column})"),
        CheckSpec::Relationships {
            column, to, field, ..
        } => format!("relationships({column} -> {to}.{field})"),
        CheckSpec::RowCount { .. } => "row_count".into(),
        CheckSpec::Freshness {
            column,
            max_age_days,
            ..
        } => format!("freshness({column}, {max_age_days} days)"),
        CheckSpec::Sql { name, .. } => format!("sql({name})"),
    }
}

/// The evaluation plan of `check` over `table`; `sql` is a custom check's SQL
/// with job variables already substituted.
pub fn plan(check: &CheckSpec, table: &str, sql: Option<&str>) -> Plan {
    let t = ident(table);
    let offending = |select: String, unit| Plan::Offending {
        count: format!("SELECT COUNT(*) FROM ({select}) offending"),
        sample: format!("SELECT * FROM ({select}) offending LIMIT {SAMPLE_ROWS}"),
        unit,
    };
    match check {
        CheckSpec::Unique { columns, .. } => {
            let cols = columns.iter().map(|c| ident(c)).collect::<Vec<_>>();
            // NULL keys are the business of not_null, as in dbt.
            let present = cols
                .iter()
                .map(|c| format!("{c} IS NOT NULL"))
                .collect::<Vec<_>>()
                .join(" AND ");
            let list = cols.join(", ");
            offending(
                format!(
                    "SELECT {list}, COUNT(*) AS copies FROM {t} WHERE {present} GROUP BY {list} HAVING COUNT(*) > 1 ORDER BY {list}"
                ),
                "duplicated key(s)",
            )
        }
        CheckSpec::NotNull { columns, .. } => {
            let any_null = columns
                .iter()
                .map(|c| format!("{} IS NULL", ident(c)))
                .collect::<Vec<_>>()
                .join(" OR ");
            offending(format!("SELECT * FROM {t} WHERE {any_null}"), "row(s)")
        }
        CheckSpec::AcceptedValues { column, values, .. } => {
            let c = ident(column);
            let list = values
                .iter()
                .map(|v| literal(v))
                .collect::<Vec<_>>()
                .join(", ");
            offending(
                format!(
                    "SELECT {c} FROM {t} WHERE {c} IS NOT NULL AND CAST({c} AS VARCHAR) NOT IN ({list})"
                ),
                "row(s)",
            )
        }
        CheckSpec::Relationships {
            column, to, field, ..
        } => {
            let (c, f) = (ident(column), ident(field));
            offending(
                format!(
                    "SELECT child.{c} FROM {t} child LEFT JOIN (SELECT DISTINCT {f} AS parent_key FROM {}) parent ON child.{c} = parent.parent_key WHERE child.{c} IS NOT NULL AND parent.parent_key IS NULL",
                    ident(to)
                ),
                "row(s)",
            )
        }
        CheckSpec::RowCount { .. } => Plan::RowCount,
        CheckSpec::Freshness { column, .. } => Plan::Freshness {
            newest: format!(
                "SELECT CAST(CAST(MAX({c}) AS DATE) AS VARCHAR) FROM {t}",
                c = ident(column)
            ),
        },
        CheckSpec::Sql { .. } => {
            let body = sql.unwrap_or_default().trim().trim_end_matches(';');
            offending(body.to_string(), "row(s)")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::Severity;

    #[test]
    fn identifiers_and_literals_are_quoted() {
        assert_eq!(ident(r#"a"b"#), r#""a""b""#);
        assert_eq!(literal("O'Neil"), "'O''Neil'");
        let check = CheckSpec::AcceptedValues {
            column: "status".into(),
            values: vec!["a".into(), "it's".into()],
            severity: Severity::Error,
        };
        let Plan::Offending { count, .. } = plan(&check, "t", None) else {
            panic!("accepted_values counts offending rows");
        };
        assert!(count.contains(r#"NOT IN ('a', 'it''s')"#), "{count}");
    }
}
