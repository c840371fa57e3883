//! `c360 cluster scheduler` and `c360 cluster executor`: the processes of a
//! Ballista cluster, with c360's UDFs (`crate::cluster`).

use std::process::ExitCode;

use super::exit;
use crate::cluster::{ExecutorOptions, SchedulerOptions};

/// The process to start.
#[derive(Debug, clap::Subcommand)]
pub enum ClusterCommand {
    /// Plan queries and hand their tasks to executors, until stopped.
    #[command(after_help = "Example:\n  c360 cluster scheduler --bind-host 0.0.0.0 --port 50050")]
    Scheduler {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1")]
        bind_host: String,
        /// gRPC port clients and executors connect to.
        #[arg(long, default_value_t = crate::job::DEFAULT_SCHEDULER_PORT)]
        port: u16,
        /// Host name executors and clients reach this scheduler at.
        #[arg(long, default_value = "localhost")]
        external_host: String,
    },
    /// Run tasks for a scheduler, until stopped. Every executor must see the
    /// warehouse at the same URL as the client (a shared `file://` path or an
    /// object store), and hash PII with the same `C360_PII_KEY`.
    #[command(
        after_help = "Example:\n  c360 cluster executor --scheduler localhost:50050 --port 50051 --grpc-port 50052 --work-dir /var/tmp/c360-executor --memory-limit 4GiB"
    )]
    Executor {
        /// The scheduler, HOST:PORT.
        #[arg(long, default_value = "localhost:50050")]
        scheduler: String,
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1")]
        bind_host: String,
        /// Host name the scheduler and other executors reach this executor at
        /// (default: the address the scheduler sees it connect from).
        #[arg(long)]
        external_host: Option<String>,
        /// Arrow Flight port (shuffle data and results).
        #[arg(long, default_value_t = 50051)]
        port: u16,
        /// gRPC port (tasks from the scheduler).
        #[arg(long, default_value_t = 50052)]
        grpc_port: u16,
        /// Folder for shuffle files and spills (default: `c360-executor-<PORT>` in
        /// the system temporary folder).
        #[arg(long)]
        work_dir: Option<std::path::PathBuf>,
        /// Tasks run at once; 0: the core count.
        #[arg(long, default_value_t = 0)]
        concurrent_tasks: usize,
        /// The memory pool shared by this executor's tasks, e.g. `4GiB`; beyond
        /// it sorts, aggregations and sort-merge joins spill to the work folder.
        #[arg(long, value_parser = crate::job::parse_bytes)]
        memory_limit: Option<u64>,
    },
}

/// Starts the process; returns when it stops.
pub async fn cluster(command: ClusterCommand) -> ExitCode {
    let result = match command {
        ClusterCommand::Scheduler {
            bind_host,
            port,
            external_host,
        } => {
            let options = SchedulerOptions {
                bind_host,
                port,
                external_host,
            };
            crate::cluster::run_scheduler(&options).await
        }
        ClusterCommand::Executor {
            scheduler,
            bind_host,
            external_host,
            port,
            grpc_port,
            work_dir,
            concurrent_tasks,
            memory_limit,
        } => {
            let Some((scheduler_host, scheduler_port)) = scheduler
                .rsplit_once(':')
                .and_then(|(h, p)| Some((h.to_string(), p.parse::<u16>().ok()?)))
            else {
                eprintln!("error: --scheduler: expected HOST:PORT, got `{scheduler}`");
                return ExitCode::from(exit::INVALID);
            };
            let options = ExecutorOptions {
                bind_host,
                external_host,
                port,
                grpc_port,
                scheduler_host,
                scheduler_port,
                work_dir: work_dir.map(|d| d.display().to_string()),
                concurrent_tasks,
                memory_limit,
            };
            crate::cluster::run_executor(&options).await
        }
    };
    match result {
        Ok(()) => ExitCode::from(exit::SUCCESS),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(exit::RUN_FAILED)
        }
    }
}
