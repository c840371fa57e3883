//! Integration tests: one test binary, one module per behaviour area (STYLE.md).

mod cli;
mod generate;
mod identity;
mod run;
mod sample;
mod source;
mod storage;
mod udf;
mod util;
mod validate;
