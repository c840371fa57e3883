//! Validation problems, each pointing at a place: `file:line:col: message`.

use std::fmt;
use std::path::{Path, PathBuf};

/// One problem in a job file or a SQL file it uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: PathBuf,
    /// 1-based line.
    pub line: u32,
    /// 1-based character column.
    pub column: u32,
    pub message: String,
}

impl Diagnostic {
    /// A problem at `file:line:column`.
    pub fn new(file: &Path, line: u32, column: u32, message: impl Into<String>) -> Self {
        Self {
            file: file.to_path_buf(),
            line,
            column,
            message: message.into(),
        }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file.display(),
            self.line,
            self.column,
            self.message
        )
    }
}

/// Every problem found in one validation, in (file, line, column) order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    /// Sorts by file, line and column so output reads top to bottom; ties keep the
    /// order they were found in.
    pub(crate) fn sorted(mut items: Vec<Diagnostic>) -> Self {
        items.sort_by(|a, b| (&a.file, a.line, a.column).cmp(&(&b.file, b.line, b.column)));
        items.dedup();
        Self(items)
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn displays_one_per_line_sorted() {
        let f = Path::new("jobs/a.yaml");
        let s = Path::new("sql/b.sql");
        let d = Diagnostics::sorted(vec![
            Diagnostic::new(s, 1, 1, "third"),
            Diagnostic::new(f, 3, 2, "second"),
            Diagnostic::new(f, 1, 9, "first"),
        ]);
        assert_eq!(
            d.to_string(),
            "jobs/a.yaml:1:9: first\njobs/a.yaml:3:2: second\nsql/b.sql:1:1: third"
        );
    }
}
