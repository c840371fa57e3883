//! The `c360` binary: parse the command line, set up logging, run, exit.

use std::io::IsTerminal;
use std::process::ExitCode;

use c360::cli::{self, Cli, LogFormat};
use clap::Parser;
use tracing_subscriber::EnvFilter;

/// The allocator (Cargo.toml says why).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Info for c360; object_store logs each retry at info, which would repeat every
/// failed request several times, so only its warnings are shown by default.
const DEFAULT_LOG: &str = "info,object_store=warn";

/// Stack of every runtime thread. DataFusion plans a job's chain of views
/// (customer_360 reads a dozen of them) by recursion, which in a debug build can
/// outgrow tokio's 2 MiB default on the worker threads the scheduler runs jobs on.
const THREAD_STACK_BYTES: usize = 32 * 1024 * 1024;

fn main() -> ExitCode {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_stack_size(THREAD_STACK_BYTES)
        .build();
    match runtime {
        Ok(runtime) => runtime.block_on(run()),
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> ExitCode {
    let cli = Cli::parse();
    let filter =
        EnvFilter::try_from_env("C360_LOG").unwrap_or_else(|_| EnvFilter::new(DEFAULT_LOG));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    match cli.log_format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
    cli::dispatch(cli).await
}
