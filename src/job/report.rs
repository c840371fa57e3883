//! Collects diagnostics for one job file while its sections are checked.

use super::diagnostic::Diagnostic;
use super::node_de::DecodeError;
use std::path::{Path, PathBuf};

/// Where problems of one job file go; every check reports here and keeps going.
#[derive(Debug)]
pub(crate) struct Reporter {
    pub file: PathBuf,
    pub diagnostics: Vec<Diagnostic>,
}

impl Reporter {
    pub fn new(file: &Path) -> Self {
        Self {
            file: file.to_path_buf(),
            diagnostics: Vec::new(),
        }
    }

    /// A problem in the job file.
    pub fn at(&mut self, line: u32, column: u32, message: impl Into<String>) {
        let d = Diagnostic::new(&self.file, line, column, message);
        self.diagnostics.push(d);
    }

    /// A problem in another file (a SQL file of a step).
    pub fn in_file(&mut self, file: &Path, line: u32, column: u32, message: impl Into<String>) {
        self.diagnostics
            .push(Diagnostic::new(file, line.max(1), column.max(1), message));
    }

    /// A decoding error of the entry at `context` (e.g. `sources.profiles`).
    pub fn decode(&mut self, context: &str, err: DecodeError) {
        self.at(
            err.line.max(1),
            err.column.max(1),
            format!("{context}: {}", err.message),
        );
    }

    pub fn is_clean(&self) -> bool {
        self.diagnostics.is_empty()
    }
}
