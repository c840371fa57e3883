//! The `c360` binary: parse the command line, set up logging, run, exit.

use std::io::IsTerminal;
use std::process::ExitCode;

use c360::cli::{self, Cli, LogFormat};
use clap::Parser;
use tracing_indicatif::IndicatifLayer;
use tracing_indicatif::filter::{IndicatifFilter, hide_indicatif_span_fields};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::filter_fn;
use tracing_subscriber::fmt::{self, format::DefaultFields};
use tracing_subscriber::layer::{Layer, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;

/// The allocator (Cargo.toml says why).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Stack of every runtime thread. DataFusion plans a job's chain of views
/// (customer_360 reads a dozen of them) by recursion, which in a debug build can
/// outgrow tokio's 2 MiB default on the worker threads the scheduler runs jobs on.
const THREAD_STACK_BYTES: usize = 32 * 1024 * 1024;

/// mimalloc's `mi_option_purge_delay`: its index in `mi_option_t` (mimalloc v3's
/// `mimalloc.h`; libmimalloc-sys names no constant for it).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// How long mimalloc keeps freed pages before returning them (see `main`).
const PURGE_DELAY_MS: std::ffi::c_long = 100;

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
    // slower; 100 ms on a 200k load: the same peak RSS as 10 ms, less system time.
    // `MIMALLOC_PURGE_DELAY` in the environment still decides.
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: a plain store into mimalloc's option table, before any other thread exists.
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, PURGE_DELAY_MS) };
    }
    // Huge pages off for the whole process, as mimalloc does at start-up when
    // `MIMALLOC_ALLOW_THP=0` (setting its option here would be too late: its first
    // arena is reserved, and advised huge, by the allocations before `main`).
    // The kernel checks the flag at each fault, so it covers that arena too.
    // On a 200k load the kernel's zeroing fell from 8% of all samples to 1.6%.
    #[cfg(target_os = "linux")]
    if std::env::var_os("MIMALLOC_ALLOW_THP").is_none() {
        // SAFETY: prctl with integer arguments only; a failure leaves huge pages on.
        let _ = unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) };
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
    let daemon = matches!(
        cli.command,
        cli::Command::Scheduler { .. } | cli::Command::Cluster(_)
    );
    if !daemon {
        // `c360 query … | head` ends quietly when the reader goes, like other
        // Unix tools; the daemons (the scheduler, cluster processes, whose peers
        // may hang up) keep Rust's default: a write error, not a kill.
        // SAFETY: sets the disposition of one signal before any thread writes.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        }
    }
    // By default info for c360; object_store logs each retry at info, which would
    // repeat every failed request several times, so only its warnings show.
    let filter =
        EnvFilter::try_from_env("C360_LOG").unwrap_or_else(|_| EnvFilter::new(cli.log_filter()));
    let terminal = std::io::stderr().is_terminal();
    let fields = || hide_indicatif_span_fields(DefaultFields::new());
    let registry = tracing_subscriber::registry().with(filter);
    match cli.log_format {
        // Progress bars on a terminal; their periodic progress lines only in logs.
        LogFormat::Text if terminal && !matches!(cli.command, cli::Command::Scheduler { .. }) => {
            let bars = IndicatifLayer::new().with_span_field_formatter(fields());
            let lines = fmt::layer()
                .fmt_fields(fields())
                .with_writer(bars.get_stderr_writer())
                .with_filter(filter_fn(|m| m.target() != c360::progress::TARGET));
            registry
                .with(lines)
                .with(bars.with_filter(IndicatifFilter::new(false)))
                .init();
        }
        LogFormat::Text => registry
            .with(
                fmt::layer()
                    .fmt_fields(fields())
                    .with_writer(std::io::stderr)
                    .with_ansi(terminal),
            )
            .init(),
        LogFormat::Json => registry
            .with(fmt::layer().json().with_writer(std::io::stderr))
            .init(),
    }
    cli::dispatch(cli).await
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_purge_delay_index_is_the_purge_delay() {
        // mimalloc v3's default purge_delay is 1,000 ms, unless the environment set it.
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
            // SAFETY: reads mimalloc's option table.
            let value = unsafe { libmimalloc_sys::mi_option_get(super::MI_OPTION_PURGE_DELAY) };
            assert_eq!(value, 1000, "option 15 is not MIMALLOC_PURGE_DELAY");
        }
    }
}
