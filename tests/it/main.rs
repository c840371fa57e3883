//! Integration tests: one test binary, one module per behaviour area (STYLE.md).

mod checks;
mod cli;
mod cluster;
mod clv;
mod commit;
mod crash;
mod engagement;
mod erasure;
mod explain;
mod fuzz;
mod generate;
#[cfg(target_os = "linux")]
mod hostile;
mod identity;
mod incremental;
mod layout;
mod materialize;
mod modules;
mod pii;
mod query;
mod report;
mod run;
mod s3;
mod s3_errors;
mod sample;
mod schedule;
mod slt;
mod source;
mod stage_sql;
mod storage;
mod udf;
mod util;
mod validate;
mod value;
mod value_segments;
mod window;
