//! Step execution: SQL views and builtin Rust steps.
