//! Integration tests: one test binary, one module per behaviour area (STYLE.md).

mod cli;
mod clv;
mod generate;
mod run;
mod sample;
mod source;
mod storage;
mod udf;
mod util;
mod validate;
