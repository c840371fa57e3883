//! c360: a batch ETL and warehouse loader for a unified customer view.
//!
//! The flow of a run (DESIGN.md): a YAML job is loaded and validated (`job`),
//! raw extracts are read, validated and typed (`source`) from object storage
//! (`storage`), SQL and builtin steps run on DataFusion (`engine`, `steps`, `udf`),
//! outputs are written as Hive-partitioned Parquet (`sink`), checked (`checks`)
//! and published atomically (`commit`), and every run is recorded (`runlog`)
//! and reported as an HTML page (`report`).
//! `run` ties one load together; `schedule` runs loads at their cron ticks and over
//! date ranges; `generate` makes synthetic extracts in the contract layout.

pub mod checks;
pub mod cli;
pub mod clock;
pub mod cluster;
pub mod commit;
pub mod engine;
pub mod erasure;
pub mod generate;
pub mod job;
pub mod outputs;
pub mod progress;
pub mod report;
pub mod run;
pub mod runlog;
pub mod schedule;
pub mod source;
pub mod steps;
pub mod storage;
pub mod udf;
