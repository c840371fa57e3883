//! Job files: YAML spec, validation with locations, interpolation.

pub mod model;

pub use model::*;
