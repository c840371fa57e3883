//! Job files: the YAML spec of a load, validated with locations.
//!
//! `load` reads a job file in two passes: the YAML is read into a located tree
//! (`node`), each section entry is decoded strictly on its own (`sections`,
//! `checks_spec`, `spec`, `node_de`), then names, placeholders, SQL files and step
//! dependencies are cross-checked (`resolve`, `steps_resolve`, `dag`). Every problem
//! is collected as a `Diagnostic` (`file:line:col: message`) so a user fixes a job in
//! one pass. The result is the plain `model::Job` the rest of the crate runs.

mod builtins;
mod charts_spec;
mod checks_spec;
mod confine;
pub mod cron;
mod dag;
mod dedup;
mod diagnostic;
mod interpolate;
#[cfg(test)]
mod load_tests;
pub mod model;
mod node;
mod node_de;
mod overrides;
mod report;
mod resolve;
mod sections;
mod sources_resolve;
mod spec;
mod sql_refs;
mod steps_resolve;
mod storage_retry;
mod units;

pub use builtins::{
    Builtin, BuiltinSettings, ClvSettings, ClvTimeUnit, SettingError, StitchSettings,
};
pub use charts_spec::DEFAULT_BINS;
pub use confine::within;
pub use dedup::{DedupRule, Winner, deduped_table};
pub use diagnostic::{Diagnostic, Diagnostics};
pub use interpolate::{InterpolateError, interpolate, template_position};
pub use model::*;
pub use overrides::{Overridden, apply_overrides};
pub use sql_refs::{SqlParseError, referenced_tables};
pub(crate) use steps_resolve::window_days;
pub use units::{parse_bytes, parse_duration};

use node::Node;
use report::Reporter;
use std::path::Path;

/// Loads and validates a job file; relative SQL paths resolve against the current
/// directory, which becomes `Job::base_dir`.
pub fn load(path: &Path) -> Result<Job, Diagnostics> {
    let base_dir = std::env::current_dir().map_err(|e| {
        Diagnostics(vec![Diagnostic::new(
            path,
            1,
            1,
            format!("cannot determine the current directory: {e}"),
        )])
    })?;
    load_with_base(path, &base_dir)
}

/// Like `load`, with relative SQL paths resolved against `base_dir`.
pub fn load_with_base(path: &Path, base_dir: &Path) -> Result<Job, Diagnostics> {
    let mut report = Reporter::new(path);
    let job = match std::fs::read_to_string(path) {
        Err(e) => {
            report.at(1, 1, format!("cannot read job file: {e}"));
            None
        }
        Ok(text) => load_text(&text, path, base_dir, &mut report),
    };
    match job {
        Some(job) if report.is_clean() => Ok(job),
        _ => Err(Diagnostics::sorted(report.diagnostics)),
    }
}

fn load_text(text: &str, path: &Path, base_dir: &Path, report: &mut Reporter) -> Option<Job> {
    match Node::parse(text) {
        Err(e) => {
            report.at(e.line, e.column, e.message);
            None
        }
        Ok(root) => {
            let draft = sections::decode_sections(&root, report);
            resolve::resolve(draft, path, base_dir, report)
        }
    }
}
