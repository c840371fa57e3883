//! Job files: YAML spec, validation with locations, interpolation.

mod interpolate;
pub mod model;
mod node;
mod node_de;
mod sql_refs;

pub use interpolate::{InterpolateError, interpolate};
pub use sql_refs::{SqlParseError, referenced_tables};

pub use model::*;
