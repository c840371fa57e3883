//! Integration tests: one test binary, one module per behaviour area (STYLE.md).

mod util;
mod validate;
