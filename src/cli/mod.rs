//! Command-line interface: clap definitions and the dispatch from a parsed
//! command to the library. `main` only parses, sets up logging and exits.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use chrono::NaiveDate;
use clap::{Parser, Subcommand};

use crate::clock::SystemClock;
use crate::run::RunOptions;

mod cluster;
mod generate;
mod init;
mod query;
mod report;
mod schedule;
mod status;
mod summary;

/// Exit codes, documented in the README and `--help`.
pub mod exit {
    /// The command did what it was asked.
    pub const SUCCESS: u8 = 0;
    /// A run (or generate) started and failed: storage, data, a query, a budget.
    pub const RUN_FAILED: u8 = 1;
    /// The job file or the command line is invalid; nothing was run.
    pub const INVALID: u8 = 2;
    /// Another run holds the warehouse lease; nothing was run. Try again later.
    pub const LOCKED: u8 = 3;
}

/// c360 loads a customer data warehouse from raw CRM extracts.
#[derive(Debug, Parser)]
#[command(
    name = "c360",
    version,
    about,
    after_help = "Examples:\n  c360 run jobs/customer_360.yaml --date 2026-03-01\n  c360 run jobs/customer_360.yaml --set warehouse=/tmp/wh --set fatigue_days=14\n  c360 validate jobs/*.yaml\n  c360 explain jobs/customer_360.yaml --date 2026-03-01\n  c360 generate --customers 2000 --days 60 --seed 7 --out sample_data/raw\n  c360 query \"SELECT value_segment, COUNT(*) FROM customer_360 GROUP BY 1\"\n  c360 status jobs/customer_360.yaml\n  c360 scheduler jobs/\n  c360 backfill jobs/customer_360.yaml --from 2026-02-01 --to 2026-03-01\n\nExit codes: 0 success, 1 run failed, 2 invalid job or usage, 3 another run holds the warehouse lease."
)]
pub struct Cli {
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// More detail: `-v` logs c360 at debug (and `explain` adds each step's plans), `-vv` at trace.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Warnings and errors only.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    /// The log filter these flags ask for; `C360_LOG` (an `EnvFilter`) wins over them.
    pub fn log_filter(&self) -> &'static str {
        match (self.quiet, self.verbose) {
            (true, _) => "warn",
            (false, 0) => "info,object_store=warn",
            (false, 1) => "info,c360=debug,object_store=warn",
            (false, _) => "info,c360=trace,object_store=info",
        }
    }
}

/// Log output formats.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a job once for a logical date.
    #[command(
        after_help = "Examples:\n  c360 run jobs/customer_360.yaml --date 2026-03-01\n  c360 run jobs/customer_360.yaml --set warehouse=s3://bucket/wh --memory-limit 2GiB\n  c360 run jobs/customer_360.yaml --date 2026-03-01 --full-refresh\n\nExit codes: 0 success, 1 run failed (the last good output stays published), 2 invalid job or usage, 3 another run holds the warehouse lease."
    )]
    Run {
        /// The job file.
        job: PathBuf,
        /// Logical date (YYYY-MM-DD); default: today in the job's time zone.
        #[arg(long)]
        date: Option<NaiveDate>,
        #[command(flatten)]
        flags: RunFlags,
        /// Parse every raw partition again instead of reusing the typed staging
        /// cache (`<warehouse>/_c360/staging/`), and rewrite its entries.
        #[arg(long)]
        full_refresh: bool,
    },
    /// Show what a run would do: sources and the days it reads, steps as a DAG, checks, outputs.
    #[command(
        after_help = "Examples:\n  c360 explain jobs/customer_360.yaml --date 2026-03-01\n  c360 -v explain jobs/customer_360.yaml   # with each step's logical and physical plan"
    )]
    Explain {
        /// The job file.
        job: PathBuf,
        /// Logical date (YYYY-MM-DD); default: today in the job's time zone.
        #[arg(long)]
        date: Option<NaiveDate>,
        /// Override a storage root (`raw`, `warehouse`) or a param: `--set key=value`.
        #[arg(long = "set", value_parser = parse_key_value)]
        sets: Vec<(String, String)>,
    },
    /// Check job files and report every problem as file:line:col.
    #[command(
        after_help = "Examples:\n  c360 validate jobs/customer_360.yaml\n  c360 validate jobs/*.yaml\n\nExit codes: 0 valid, 2 problems found (each printed as file:line:col: message)."
    )]
    Validate {
        /// Job files.
        #[arg(required = true)]
        jobs: Vec<PathBuf>,
    },
    /// Show recent runs (from the warehouse's run log), newest first.
    #[command(
        after_help = "Examples:\n  c360 status jobs/customer_360.yaml\n  c360 status --warehouse s3://bucket/wh --limit 5"
    )]
    Status {
        /// A job file: its warehouse, and only its runs.
        job: Option<PathBuf>,
        /// The warehouse (path or URL); default: the job's, else `warehouse`.
        #[arg(long)]
        warehouse: Option<String>,
        /// How many runs to show.
        #[arg(long, default_value_t = 20)]
        limit: usize,
        /// The scheduler daemon's health file, shown first when it exists.
        #[arg(long, default_value = ".c360/scheduler.json")]
        status_file: PathBuf,
    },
    /// Run SQL on the committed outputs of a warehouse (latest snapshots).
    #[command(
        after_help = "Examples:\n  c360 query \"SELECT value_segment, COUNT(*) FROM customer_360 GROUP BY 1\"\n  c360 query --date 2026-02-01 --format csv \"SELECT * FROM segment_summary\" > segments.csv\n  c360 query --job jobs/customer_360.yaml        # interactive prompt"
    )]
    Query {
        /// The SQL; none: an interactive prompt (or the SQL on stdin when it is not a terminal).
        sql: Option<String>,
        /// A job file: its warehouse.
        #[arg(long)]
        job: Option<PathBuf>,
        /// The warehouse (path or URL); default: the job's, else `warehouse`.
        #[arg(long)]
        warehouse: Option<String>,
        /// Read the latest snapshot on or before this date instead of the latest.
        #[arg(long)]
        date: Option<NaiveDate>,
        /// How rows are written.
        #[arg(long, value_enum, default_value_t = query::QueryFormat::Table)]
        format: query::QueryFormat,
    },
    /// Print where the run report of the latest logical date (or of --date) is; --open opens it.
    Report {
        /// A job file: its warehouse, and only its reports.
        job: Option<PathBuf>,
        /// The warehouse (path or URL); default: the job's, else `warehouse`.
        #[arg(long)]
        warehouse: Option<String>,
        /// The report of this logical date instead of the latest.
        #[arg(long)]
        date: Option<NaiveDate>,
        /// Open it with the system's opener (xdg-open, open); local warehouses only.
        #[arg(long)]
        open: bool,
    },
    /// Write deterministic synthetic raw extracts (and their ground truth).
    #[command(
        after_help = "Examples:\n  c360 generate --customers 2000 --days 60 --seed 7 --out sample_data/raw\n  c360 generate --customers 1000000 --days 365 --out /data/raw   # the scale benchmark's extracts"
    )]
    Generate {
        /// Number of customers (people).
        #[arg(long, default_value_t = 2000)]
        customers: u64,
        /// Number of extract days.
        #[arg(long, default_value_t = 60)]
        days: u32,
        /// Random seed: same seed, same bytes.
        #[arg(long, default_value_t = 7)]
        seed: u64,
        /// First extract day.
        #[arg(long, default_value = "2026-01-01")]
        start_date: NaiveDate,
        /// Raw root to write to (path or object-store URL).
        #[arg(long)]
        out: String,
    },
    /// Run every job with a `schedule:` block at its cron ticks, until SIGTERM.
    #[command(
        after_help = "Examples:\n  c360 scheduler jobs/\n  c360 scheduler jobs/ --set warehouse=s3://bucket/wh --memory-limit 4GiB\n  c360 status jobs/customer_360.yaml    # heartbeat and next runs"
    )]
    Scheduler {
        /// Folder of job files (reloaded on SIGHUP or when a file changes).
        #[arg(default_value = "jobs")]
        jobs_dir: PathBuf,
        /// Health file: next run per job, last outcome, heartbeat.
        #[arg(long, default_value = ".c360/scheduler.json")]
        status_file: PathBuf,
        /// After SIGTERM, how long running loads may finish before they are cancelled.
        #[arg(long, default_value = "60s", value_parser = crate::job::parse_duration)]
        grace: std::time::Duration,
        /// How often to wake without a cron tick (file changes, late ticks, health).
        #[arg(long, default_value = "15s", value_parser = crate::job::parse_duration)]
        heartbeat: std::time::Duration,
        /// Applied to every job's runs.
        #[command(flatten)]
        flags: RunFlags,
    },
    /// Start a process of a Ballista cluster that runs c360 jobs (`run --engine ballista://…`).
    #[command(
        subcommand,
        after_help = "Examples:\n  c360 cluster scheduler --port 50050\n  c360 cluster executor --scheduler localhost:50050 --port 50051 --grpc-port 50052\n  c360 run jobs/customer_360.yaml --engine ballista://localhost:50050"
    )]
    Cluster(cluster::ClusterCommand),
    /// Write a starter project (job, SQL, reference and synthetic raw data) that runs at once.
    #[command(
        after_help = "Example:\n  c360 init my-warehouse && cd my-warehouse && c360 run jobs/customer_360.yaml --date 2026-03-01"
    )]
    Init {
        /// The project folder (created if missing; nothing in it is overwritten).
        dir: PathBuf,
    },
    /// Print a shell completion script to stdout.
    #[command(
        after_help = "Examples:\n  c360 completions bash > ~/.local/share/bash-completion/completions/c360\n  c360 completions zsh > \"${fpath[1]}/_c360\"\n  c360 completions fish > ~/.config/fish/completions/c360.fish"
    )]
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Run a job for each logical date of a range, oldest first; resumable.
    #[command(
        after_help = "Examples:\n  c360 backfill jobs/customer_360.yaml --from 2026-02-01 --to 2026-03-01\n  c360 backfill jobs/customer_360.yaml --from 2026-02-01 --to 2026-03-01 --set warehouse=/tmp/wh --force\n\nExit codes: 0 every date succeeded, 1 a date failed (run the same command to resume), 2 invalid job or usage."
    )]
    Backfill {
        /// The job file.
        job: PathBuf,
        /// First logical date (YYYY-MM-DD).
        #[arg(long)]
        from: NaiveDate,
        /// Last logical date, inclusive.
        #[arg(long)]
        to: NaiveDate,
        /// Re-run dates that already succeeded.
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        flags: RunFlags,
    },
}

/// How each run of a command is shaped: `run`, `backfill` and `scheduler` take
/// the same flags.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct RunFlags {
    /// Override a storage root (`raw`, `warehouse`) or a param: `--set key=value`
    /// (repeatable).
    #[arg(long = "set", value_parser = parse_key_value)]
    pub sets: Vec<(String, String)>,
    /// Cap DataFusion's memory pool, e.g. `2GiB` or `512MiB`; beyond it sorts,
    /// aggregations and sort-merge joins spill to disk. Default: the job's
    /// `engine.memory_limit`, else a share of physical memory.
    #[arg(long, value_parser = crate::job::parse_bytes)]
    pub memory_limit: Option<u64>,
    /// Where queries run: `local` (this process) or `ballista://HOST:PORT`, a
    /// cluster started with `c360 cluster scheduler` / `executor`. Default: the
    /// job's `engine.cluster`, else local.
    #[arg(long, value_parser = crate::job::parse_engine)]
    pub engine: Option<crate::job::EngineChoice>,
}

fn parse_key_value(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.trim().is_empty() => {
            Ok((key.trim().to_string(), value.to_string()))
        }
        _ => Err(format!("expected key=value, got `{text}`")),
    }
}

/// Runs a parsed command and returns the process exit code.
pub async fn dispatch(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Validate { jobs } => {
            let mut problems = Vec::new();
            for path in &jobs {
                match crate::job::load(path) {
                    Err(diagnostics) => problems.extend(diagnostics.0),
                    Ok(job) => {
                        let findings = crate::run::plan_job(&job).await;
                        for warning in &findings.warnings {
                            eprintln!("{warning}");
                        }
                        problems.extend(findings.errors);
                    }
                }
            }
            for problem in &problems {
                eprintln!("{problem}");
            }
            if problems.is_empty() {
                println!("{} job file(s) valid", jobs.len());
                ExitCode::from(exit::SUCCESS)
            } else {
                eprintln!("{} problem(s) found", problems.len());
                ExitCode::from(exit::INVALID)
            }
        }
        Command::Run {
            job,
            date,
            flags,
            full_refresh,
        } => {
            let job = match load_job(&job) {
                Ok(job) => job,
                Err(code) => return code,
            };
            let options = RunOptions {
                date,
                overrides: flags.sets,
                memory_limit: flags.memory_limit,
                engine: flags.engine.clone(),
                clock: Arc::new(SystemClock),
                full_refresh,
            };
            match crate::run::run(&job, &options).await {
                Ok(summary) => {
                    summary::print_summary(&summary);
                    ExitCode::from(exit::SUCCESS)
                }
                Err(e) => {
                    // One line whatever the layers below put in their messages (S3 bodies span lines).
                    let message = crate::storage::one_line(&e.to_string());
                    eprintln!("error: run of {} failed: {message}", job.name);
                    eprintln!("next: {}", e.next_step());
                    ExitCode::from(exit_code(&e))
                }
            }
        }
        Command::Status {
            job,
            warehouse,
            limit,
            status_file,
        } => status::status(job, warehouse, limit, &status_file).await,
        Command::Explain { job, date, sets } => explain(job, date, sets, cli.verbose > 0).await,
        Command::Query {
            sql,
            job,
            warehouse,
            date,
            format,
        } => query::command(sql, job, warehouse, date, format).await,
        Command::Report {
            job,
            warehouse,
            date,
            open,
        } => report::report(job, warehouse, date, open).await,
        Command::Generate {
            customers,
            days,
            seed,
            start_date,
            out,
        } => generate::generate(customers, days, seed, start_date, &out).await,
        Command::Cluster(command) => cluster::cluster(command).await,
        Command::Scheduler {
            jobs_dir,
            status_file,
            grace,
            heartbeat,
            flags,
        } => schedule::scheduler(jobs_dir, status_file, grace, heartbeat, flags).await,
        Command::Backfill {
            job,
            from,
            to,
            force,
            flags,
        } => schedule::backfill_command(job, from, to, force, flags).await,
        Command::Init { dir } => init::init(dir).await,
        Command::Completions { shell } => {
            use clap::CommandFactory;
            let mut command = Cli::command();
            clap_complete::generate(shell, &mut command, "c360", &mut std::io::stdout());
            ExitCode::from(exit::SUCCESS)
        }
    }
}

/// The exit code of a failed run.
pub fn exit_code(error: &crate::run::RunError) -> u8 {
    use crate::run::RunError;
    match error {
        // A bad --set is a usage error: nothing was run.
        RunError::Bind(_) | RunError::Staging(crate::source::StagingError::Bind(_)) => {
            exit::INVALID
        }
        RunError::Commit(crate::commit::CommitError::Locked(_)) => exit::LOCKED,
        _ => exit::RUN_FAILED,
    }
}

/// Loads a job file; its problems are printed and give the exit code (2).
pub(crate) fn load_job(path: &std::path::Path) -> Result<crate::job::Job, ExitCode> {
    crate::job::load(path).map_err(|diagnostics| {
        eprintln!("{diagnostics}");
        ExitCode::from(exit::INVALID)
    })
}

/// The warehouse of `job` (or `warehouse`, else `./warehouse`), and the job's name.
fn warehouse_of(
    job: Option<PathBuf>,
    warehouse: Option<String>,
) -> Result<(Option<String>, crate::storage::StorageLocation), ExitCode> {
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    let (job, registry, root) = match job {
        Some(path) => {
            let job = load_job(&path)?;
            let registry =
                crate::storage::StorageRegistry::for_job(job.base_dir.clone(), &job.storage);
            let root = warehouse.unwrap_or_else(|| job.storage.warehouse.clone());
            (Some(job.name), registry, root)
        }
        None => (
            None,
            crate::storage::StorageRegistry::new(cwd, Default::default()),
            warehouse.unwrap_or_else(|| "warehouse".into()),
        ),
    };
    match registry.resolve(&root) {
        Ok(location) => Ok((job, location)),
        Err(e) => {
            eprintln!("error: {e}");
            Err(ExitCode::from(exit::INVALID))
        }
    }
}

async fn explain(
    path: PathBuf,
    date: Option<NaiveDate>,
    sets: Vec<(String, String)>,
    verbose: bool,
) -> ExitCode {
    let job = match load_job(&path) {
        Ok(job) => job,
        Err(code) => return code,
    };
    let options = RunOptions {
        date,
        overrides: sets,
        memory_limit: None,
        engine: None,
        clock: Arc::new(SystemClock),
        full_refresh: false,
    };
    match crate::run::explain(&job, &options, verbose).await {
        Ok(text) => {
            print!("{text}");
            ExitCode::from(exit::SUCCESS)
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(exit_code(&e))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_takes_key_equals_value() {
        assert_eq!(
            parse_key_value("warehouse=s3://b/w=x"),
            Ok(("warehouse".into(), "s3://b/w=x".into()))
        );
        assert!(parse_key_value("novalue").is_err());
        assert!(parse_key_value("=x").is_err());
    }
}
