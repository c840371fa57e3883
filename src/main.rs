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

/// mimalloc's `mi_option_purge_delay`: its index in `mi_option_t` (mimalloc v3's
/// `mimalloc.h`; libmimalloc-sys names no constant for it).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// How long mimalloc keeps freed pages before returning them (see `main`).
const PURGE_DELAY_MS: std::ffi::c_long = 100;

/// mimalloc's `mi_option_allow_thp` (v3's `mi_option_t`, like the purge delay).
const MI_OPTION_ALLOW_THP: libmimalloc_sys::mi_option_t = 43;

/// How long an idle blocking thread (local file reads, raw-file parsers) lives.
/// Memory such a thread allocated and another thread freed (a Parquet column
/// chunk read here, decoded there) returns to mimalloc only when its owner runs
/// again or exits, so threads left idle held it; tokio's default is 10 s.
const BLOCKING_THREAD_KEEP_ALIVE: std::time::Duration = std::time::Duration::from_millis(250);

fn main() -> ExitCode {
    // mimalloc (v3) returns freed pages to the OS a second after the free by
    // default, so a load kept hundreds of MiB resident beyond DataFusion's pool;
    // and it asks for transparent huge pages, so each page it takes back costs the
    // kernel zeroing 2 MiB (`clear_page_erms` was 11% of a 200k load's profile,
    // 15% of its customer_events step). Measured on a 100k load (BENCHMARKS.md):
    // 1,000 ms peaks at 1.24-1.50 GiB RSS, 10 ms at 0.99-1.05 GiB, 0 ms about 20%
    // slower. On a 200k load, huge pages off and 100 ms: 43.5 / 43.4 s wall and
    // 13.7 / 12.6 s system time against 46.2 / 49.1 s and 17.0 / 18.1 s with
    // mimalloc's huge pages and 10 ms, at the same peak RSS (1.37-1.52 GiB).
    // `MIMALLOC_PURGE_DELAY` / `MIMALLOC_ALLOW_THP` in the environment still decide.
    let options = [
        (
            "MIMALLOC_PURGE_DELAY",
            MI_OPTION_PURGE_DELAY,
            PURGE_DELAY_MS,
        ),
        ("MIMALLOC_ALLOW_THP", MI_OPTION_ALLOW_THP, 0),
    ];
    for (variable, option, value) in options {
        if std::env::var_os(variable).is_none() {
            // SAFETY: a plain store into mimalloc's option table, before any other thread exists.
            unsafe { libmimalloc_sys::mi_option_set(option, value) };
        }
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_stack_size(THREAD_STACK_BYTES)
        .thread_keep_alive(BLOCKING_THREAD_KEEP_ALIVE)
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

#[cfg(test)]
mod tests {
    #[test]
    fn option_indices_are_the_options_they_name() {
        // mimalloc v3's defaults: purge_delay 1,000 ms, allow_thp 1 (on Linux),
        // unless the environment set them.
        for (variable, option, default) in [
            ("MIMALLOC_PURGE_DELAY", super::MI_OPTION_PURGE_DELAY, 1000),
            ("MIMALLOC_ALLOW_THP", super::MI_OPTION_ALLOW_THP, 1),
        ] {
            if std::env::var_os(variable).is_none() {
                // SAFETY: reads mimalloc's option table.
                let value = unsafe { libmimalloc_sys::mi_option_get(option) };
                assert_eq!(value, default, "option {option} is not {variable}");
            }
        }
    }
}
