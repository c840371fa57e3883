//! Scale-out on an Apache DataFusion Ballista cluster: the same job, the same SQL.
//!
//! `c360 cluster scheduler` and `c360 cluster executor` run Ballista 55's
//! scheduler and executor as libraries inside the c360 binary, so every process
//! of the cluster knows c360's UDFs ([`crate::udf::all`]) and plans with c360's
//! session settings ([`crate::engine::session_config`]). `c360 run --engine
//! ballista://HOST:PORT` then opens its session with [`connect`]: every query
//! of the run is planned by the scheduler and executed by the executors, which
//! write step tables and outputs straight to the warehouse
//! ([`crate::outputs::write_on_cluster`]); the commit protocol still runs once,
//! on the client. What needs the whole customer base at once (the identity
//! graph's connected components, the CLV fit) runs on the client over the
//! compact inputs it streams back (docs/cluster.md).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use ballista::extension::SessionContextExt;
use ballista_core::extension::SessionConfigExt;
use ballista_core::registry::BallistaFunctionRegistry;
use ballista_executor::executor_process::{ExecutorProcessConfig, start_executor_process};
use ballista_scheduler::cluster::BallistaCluster;
use ballista_scheduler::config::SchedulerConfig;
use ballista_scheduler::scheduler_process::start_server;
use datafusion::execution::SessionState;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::prelude::{SessionConfig, SessionContext};

use crate::engine::{self, EngineOptions};
use crate::storage::StorageRegistry;

/// Errors starting a cluster process or connecting to one.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("cluster: {0}")]
    Ballista(#[from] ballista_core::error::BallistaError),
    #[error("cluster: cannot connect to the scheduler at {url}: {source}")]
    Connect {
        url: String,
        source: datafusion::error::DataFusionError,
    },
    #[error("cluster: cannot build the session: {0}")]
    Engine(#[from] engine::EngineError),
    #[error("cluster: {0}")]
    Config(String),
}

/// `c360 cluster scheduler`: where it listens.
#[derive(Debug, Clone)]
pub struct SchedulerOptions {
    pub bind_host: String,
    pub port: u16,
    /// The host executors and clients reach this scheduler at.
    pub external_host: String,
}

/// `c360 cluster executor`: where it listens, which scheduler it serves, and
/// what it may use.
#[derive(Debug, Clone)]
pub struct ExecutorOptions {
    pub bind_host: String,
    /// The host the scheduler and other executors reach this executor at;
    /// `None`: the address the scheduler sees it connect from.
    pub external_host: Option<String>,
    /// Arrow Flight port (shuffle data and results).
    pub port: u16,
    /// gRPC port (tasks from the scheduler).
    pub grpc_port: u16,
    pub scheduler_host: String,
    pub scheduler_port: u16,
    /// Shuffle files and spills go here; `None`: `c360-executor-<port>` in the
    /// system's temporary folder.
    pub work_dir: Option<String>,
    /// Tasks run at once; `0`: the core count.
    pub concurrent_tasks: usize,
    /// The executor's memory pool, shared by its running tasks; `None`: Ballista's
    /// default share of the host's memory.
    pub memory_limit: Option<u64>,
}

/// The settings a cluster process starts its sessions from: Ballista's, with
/// c360's ([`engine::session_config`]); a client's own settings travel with
/// each query and override them.
fn cluster_config() -> SessionConfig {
    let ours = engine::session_config(&EngineOptions::default());
    let mut config = SessionConfig::new_with_ballista();
    for entry in ours.options().entries() {
        if let Some(value) = entry.value {
            // Every key comes from DataFusion's own option list, so setting it
            // back cannot fail; a failure would only leave Ballista's default.
            let _ = config.options_mut().set(&entry.key, &value);
        }
    }
    config
}

/// The scheduler's session for a client's query: DataFusion's defaults with
/// c360's UDFs, physical rules without the ones whose operators have no wire form.
fn scheduler_session(config: SessionConfig) -> datafusion::common::Result<SessionState> {
    let runtime = RuntimeEnvBuilder::new()
        .with_object_store_registry(stores())
        .build_arc()?;
    let mut state = engine::session_state(config, runtime, engine::physical_optimizer_rules(false));
    for udf in crate::udf::all() {
        datafusion::execution::FunctionRegistry::register_udf(&mut state, Arc::new(udf))?;
    }
    Ok(state)
}

/// How a cluster process reaches the warehouse: local paths as they are, cloud
/// URLs (`s3://`, `gs://`, `az://`) through stores built on first use from the
/// process's environment (`AWS_*`, `GOOGLE_*`, `AZURE_*`), as the client's are
/// (`crate::storage`). A job's `storage.options` stay with the client.
fn stores() -> Arc<StorageRegistry> {
    let here = std::env::current_dir().unwrap_or_default();
    Arc::new(StorageRegistry::new(here, BTreeMap::new()))
}

/// DataFusion's functions and c360's, for executors to resolve plans with.
fn function_registry() -> BallistaFunctionRegistry {
    let mut registry = BallistaFunctionRegistry::default();
    // The array functions (`array_position`, …) are a feature of their own.
    for udf in datafusion::functions_nested::all_default_nested_functions() {
        registry
            .scalar_functions
            .insert(udf.name().to_string(), udf);
    }
    for udf in crate::udf::all() {
        registry
            .scalar_functions
            .insert(udf.name().to_string(), Arc::new(udf));
    }
    registry
}

/// Runs a Ballista scheduler until the process is stopped.
pub async fn run_scheduler(options: &SchedulerOptions) -> Result<(), ClusterError> {
    let config = SchedulerConfig {
        bind_host: options.bind_host.clone(),
        bind_port: options.port,
        external_host: options.external_host.clone(),
        override_config_producer: Some(Arc::new(cluster_config)),
        override_session_builder: Some(Arc::new(scheduler_session)),
        ..SchedulerConfig::default()
    };
    let addr: SocketAddr = format!("{}:{}", options.bind_host, options.port)
        .parse()
        .map_err(|e| ClusterError::Config(format!("--bind-host/--port: {e}")))?;
    tracing::info!(%addr, "c360 cluster scheduler starting");
    let cluster = BallistaCluster::new_from_config(&config).await?;
    start_server(cluster, addr, Arc::new(config)).await?;
    Ok(())
}

/// Runs a Ballista executor until the process is stopped.
pub async fn run_executor(options: &ExecutorOptions) -> Result<(), ClusterError> {
    let work_dir = match &options.work_dir {
        Some(dir) => dir.clone(),
        None => std::env::temp_dir()
            .join(format!("c360-executor-{}", options.port))
            .display()
            .to_string(),
    };
    std::fs::create_dir_all(&work_dir)
        .map_err(|e| ClusterError::Config(format!("--work-dir {work_dir}: {e}")))?;
    let spill_dir = work_dir.clone();
    let runtime = move |_: &SessionConfig| {
        RuntimeEnvBuilder::new()
            .with_temp_file_path(spill_dir.clone())
            .with_object_store_registry(stores())
            .build_arc()
    };
    let config = ExecutorProcessConfig {
        bind_host: options.bind_host.clone(),
        external_host: options.external_host.clone(),
        port: options.port,
        grpc_port: options.grpc_port,
        scheduler_host: options.scheduler_host.clone(),
        scheduler_port: options.scheduler_port,
        // Wait for a scheduler started at the same time (in seconds).
        scheduler_connect_timeout_seconds: 30,
        vcores: options.concurrent_tasks,
        work_dir: Some(work_dir),
        memory_pool_size: options.memory_limit,
        override_function_registry: Some(Arc::new(function_registry())),
        override_runtime_producer: Some(Arc::new(runtime)),
        override_config_producer: Some(Arc::new(cluster_config)),
        ..ExecutorProcessConfig::default()
    };
    tracing::info!(
        port = options.port,
        grpc_port = options.grpc_port,
        scheduler = %format!("{}:{}", options.scheduler_host, options.scheduler_port),
        "c360 cluster executor starting"
    );
    start_executor_process(Arc::new(config)).await?;
    Ok(())
}

/// A session whose queries run on the Ballista scheduler at `url`
/// (`ballista://host:port`), planned with c360's settings and UDFs. The client
/// keeps its own memory pool, which bounds what Rust steps hold
/// ([`engine::reserve`]).
pub async fn connect(url: &str, options: &EngineOptions) -> Result<SessionContext, ClusterError> {
    // The one-shot commands die quietly on SIGPIPE (`src/main.rs`); a run that
    // talks to a cluster must not be killed by a peer hanging up mid-write
    // (gRPC writes with writev, which raises it): a write error fails the query.
    // SAFETY: sets the disposition of one signal; no handler runs Rust code.
    #[cfg(target_os = "linux")]
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
    let runtime = engine::runtime(options)?;
    let config = engine::session_config(options).upgrade_for_ballista();
    let state = engine::session_state(config, runtime, engine::physical_optimizer_rules(false));
    let ctx = SessionContext::remote_with_state(url, state)
        .await
        .map_err(|source| ClusterError::Connect {
            url: url.to_string(),
            source,
        })?;
    crate::udf::register_all(&ctx);
    // Fail now, naming the scheduler, rather than in the middle of the run.
    let probe = async { ctx.sql("SELECT 1").await?.collect().await };
    probe.await.map_err(|source| ClusterError::Connect {
        url: url.to_string(),
        source,
    })?;
    Ok(ctx)
}
