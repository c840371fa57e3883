//! Which tables a SQL step reads: the basis of dependency inference.
//!
//! SQL is parsed with DataFusion's own sqlparser (generic dialect, DataFusion's
//! default), relation names are normalised the way DataFusion does (unquoted
//! identifiers lower-cased) and names of CTEs defined in the query are left out.

use datafusion::sql::sqlparser::ast::{
    Ident, ObjectName, ObjectNamePart, Query, Statement, Visit, Visitor,
};
use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::parser::{Parser, ParserError};
use std::collections::BTreeSet;
use std::ops::ControlFlow;
use thiserror::Error;

/// SQL that does not parse; `line`/`column` are 1-based (0 when the parser gave none).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{message}")]
pub struct SqlParseError {
    pub line: u32,
    pub column: u32,
    pub message: String,
}

/// A relation read by a query, with the position of its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TableRef {
    pub name: String,
    pub line: u32,
    pub column: u32,
}

/// Relation names the SQL reads, in order of first mention, without its own CTEs.
pub fn referenced_tables(sql: &str) -> Result<Vec<String>, SqlParseError> {
    let statements = parse(sql)?;
    Ok(table_refs(&statements)
        .into_iter()
        .map(|t| t.name)
        .collect())
}

/// Parses SQL the way DataFusion's default dialect does.
pub(crate) fn parse(sql: &str) -> Result<Vec<Statement>, SqlParseError> {
    Parser::parse_sql(&GenericDialect {}, sql).map_err(|e| parse_error(sql, e))
}

/// First mention of each relation, CTE names excluded.
pub(crate) fn table_refs(statements: &[Statement]) -> Vec<TableRef> {
    let mut collector = RelationCollector::default();
    // The collector never breaks.
    for statement in statements {
        let _ = statement.visit(&mut collector);
    }
    let mut seen = BTreeSet::new();
    collector
        .relations
        .into_iter()
        .filter(|t| !collector.ctes.contains(&t.name))
        .filter(|t| seen.insert(t.name.clone()))
        .collect()
}

#[derive(Default)]
struct RelationCollector {
    relations: Vec<TableRef>,
    /// CTE names are collected for the whole statement: a name that is a CTE anywhere
    /// is a CTE everywhere, which only matters for SQL that shadows a job table.
    ctes: BTreeSet<String>,
}

impl Visitor for RelationCollector {
    type Break = ();

    fn pre_visit_query(&mut self, query: &Query) -> ControlFlow<()> {
        if let Some(with) = &query.with {
            for cte in &with.cte_tables {
                self.ctes.insert(normalise(&cte.alias.name));
            }
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_relation(&mut self, relation: &ObjectName) -> ControlFlow<()> {
        let idents: Vec<&Ident> = relation
            .0
            .iter()
            .filter_map(ObjectNamePart::as_ident)
            .collect();
        if let Some(first) = idents.first() {
            let name = idents
                .iter()
                .map(|i| normalise(i))
                .collect::<Vec<_>>()
                .join(".");
            self.relations.push(TableRef {
                name,
                line: u32::try_from(first.span.start.line).unwrap_or(0),
                column: u32::try_from(first.span.start.column).unwrap_or(0),
            });
        }
        ControlFlow::Continue(())
    }
}

/// DataFusion lower-cases unquoted identifiers.
fn normalise(ident: &Ident) -> String {
    match ident.quote_style {
        None => ident.value.to_lowercase(),
        Some(_) => ident.value.clone(),
    }
}

/// sqlparser puts the position at the end of its message: "… at Line: 3, Column: 7";
/// errors at end of input have none, so they point just past the last character.
fn parse_error(sql: &str, err: ParserError) -> SqlParseError {
    let text = match err {
        ParserError::TokenizerError(s) | ParserError::ParserError(s) => s,
        ParserError::RecursionLimitExceeded => "recursion limit exceeded".to_string(),
    };
    if let Some(i) = text.rfind(" at Line: ") {
        let (message, position) = text.split_at(i);
        let mut numbers = position
            .split(|c: char| !c.is_ascii_digit())
            .filter_map(|s| s.parse::<u32>().ok());
        if let (Some(line), Some(column)) = (numbers.next(), numbers.next()) {
            return SqlParseError {
                line,
                column,
                message: message.to_string(),
            };
        }
    }
    let (line, column) = if text.ends_with("found: EOF") {
        let trimmed = sql.trim_end();
        let line = trimmed.lines().count().max(1);
        let column = trimmed.lines().last().map_or(0, |l| l.chars().count()) + 1;
        (
            u32::try_from(line).unwrap_or(u32::MAX),
            u32::try_from(column).unwrap_or(u32::MAX),
        )
    } else {
        (0, 0)
    };
    SqlParseError {
        line,
        column,
        message: text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_relations_in_first_mention_order() {
        let sql = "SELECT * FROM b JOIN a ON a.k = b.k WHERE b.x IN (SELECT x FROM c) UNION ALL SELECT * FROM a";
        assert_eq!(referenced_tables(sql).unwrap(), vec!["b", "a", "c"]);
    }

    #[test]
    fn excludes_ctes_and_normalises_case() {
        let sql =
            "WITH recent AS (SELECT * FROM Orders) SELECT * FROM recent JOIN \"Mixed\" USING (k)";
        assert_eq!(referenced_tables(sql).unwrap(), vec!["orders", "Mixed"]);
    }

    #[test]
    fn reports_positions_of_names() {
        let statements = parse("SELECT *\nFROM  t1").unwrap();
        assert_eq!(
            table_refs(&statements),
            vec![TableRef {
                name: "t1".into(),
                line: 2,
                column: 7
            }]
        );
    }

    #[test]
    fn parse_error_carries_line_and_column() {
        let err = referenced_tables("SELECT a\nFROM t WHERE )").unwrap_err();
        assert_eq!((err.line, err.column), (2, 14), "{err:?}");
        assert_eq!(err.message, "Expected: an expression, found: )");
    }

    #[test]
    fn parse_error_at_end_points_past_last_character() {
        let err = referenced_tables("SELECT a\nFROM t WHERE\n\n").unwrap_err();
        assert_eq!((err.line, err.column), (2, 13), "{err:?}");
        assert_eq!(err.message, "Expected: an expression, found: EOF");
    }
}
