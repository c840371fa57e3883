//! Helpers shared by the integration tests.

#![allow(dead_code)]

use std::path::PathBuf;

/// The repository root (where Cargo.toml, jobs/, sql/ and sample_data/ live).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}
