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

/// The allocator (Cargo.toml says why), with its default purge delay (1,000 ms
/// in mimalloc v3): freed pages stay with it that long before going back to the
/// OS, and a page returned and then taken again costs the kernel a fault and
/// zeroing it. With 100 ms (set in `main` until the sixteenth session) that was
/// 11% of a 1M-customer night's CPU samples (`clear_page_erms`: the sorts'
/// buffers freed and allocated again); the default made that night about 5-8%
/// faster at the same peak RSS, and raised the peak of the 1M full load from
/// 1,915 to 2,037-2,074 MiB (2 GiB pool) and of a 100k load from about 515 to
/// 635-677 MiB (BENCHMARKS.md). `MIMALLOC_PURGE_DELAY=100` in the environment
/// gives back the lower peaks.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Stack of every runtime thread. DataFusion plans a job's chain of views
/// (customer_360 reads a dozen of them) by recursion, which in a debug build can
/// outgrow tokio's 2 MiB default on the worker threads the scheduler runs jobs on.
const THREAD_STACK_BYTES: usize = 32 * 1024 * 1024;

/// How long an idle blocking thread (local file reads, raw-file parsers) lives.
/// Memory such a thread allocated and another thread freed (a Parquet column
/// chunk read here, decoded there) returns to mimalloc only when its owner runs
/// again or exits, so threads left idle held it; tokio's default is 10 s.
const BLOCKING_THREAD_KEEP_ALIVE: std::time::Duration = std::time::Duration::from_millis(250);

fn main() -> ExitCode {
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
