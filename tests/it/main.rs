//! Integration tests: one test binary, one module per behaviour area (STYLE.md).

mod storage;
mod udf;
mod util;
