//! Step execution: each step's result is registered on the session under the
//! step's name, in dependency order, so later SQL can read it like a table.
//!
//! SQL steps become views (DataFusion plans lazily; nothing is collected here).
//! Builtin steps (identity stitching, CLV fitting) are Rust code over Arrow batches.
//! A step materialized as a table (`materialize: table`) is then computed once into
//! run-private Parquet and re-registered over those files (`materialize.rs`), so
//! every later reader scans them instead of planning the chain beneath again.

pub mod carried;
pub mod clv;
pub mod identity;
mod materialize;
mod sql;

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::NaiveDate;
use datafusion::error::DataFusionError;
use datafusion::prelude::SessionContext;
use object_store::ObjectStore;
use object_store::path::Path;

use crate::job::{BuiltinSettings, StepKind, StepSpec};

pub use materialize::{Materialized, materialize};
pub use sql::register_sql_step;

/// Errors of the step layer; each names the step and, for SQL, its file.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    #[error("step {step}: {file}: {source}")]
    Sql {
        step: String,
        file: String,
        source: DataFusionError,
    },
    #[error("step {step}: {file}: {message}")]
    Template {
        step: String,
        file: String,
        message: String,
    },
    /// A builtin's setting, as overridden by `--set` (the job file's own values
    /// were checked at load).
    #[error("step {step}: {source}")]
    Setting {
        step: String,
        source: crate::job::SettingError,
    },
    #[error("step {step}: stitch_identities: {source}")]
    Identity {
        step: String,
        source: identity::IdentityError,
    },
    #[error("step {step}: fit_clv: {source}")]
    Clv { step: String, source: clv::ClvError },
    /// An incremental step's carried state could not be read or written.
    #[error("step {step}: carried state: {message}")]
    State { step: String, message: String },
    #[error("step {step}: writing its table: {source}")]
    Write {
        step: String,
        source: crate::outputs::SinkError,
    },
}

/// Where each output is published: (store, folder) by output name.
pub type PublishedLocations = BTreeMap<String, (Arc<dyn ObjectStore>, Path)>;

/// What steps may use besides the session.
pub struct StepEnv<'a> {
    /// Interpolation variables (params, `date`, storage roots) for `{name}` in SQL.
    pub vars: &'a BTreeMap<String, String>,
    /// The logical date of the run.
    pub date: NaiveDate,
    /// Where each output is published (store, folder), by output name: a builtin step
    /// reads its own previous snapshots from the output of the same name, or from the
    /// one its `previous:` names.
    pub published: PublishedLocations,
    /// What incremental steps carry from run to run ([`carried`]); `None`
    /// (planning without a warehouse): they are planned as plain SQL steps.
    pub carry: Option<carried::CarryEnv>,
}

/// What registering a step did besides registering it (the run log's figures).
#[derive(Debug, Default)]
pub struct Registered {
    /// An incremental step: what it carried.
    pub carried: Option<carried::Carried>,
    /// A step with `window_days`: what it read (none when it read every day:
    /// a cluster, or a plan without a warehouse).
    pub window: Option<carried::Window>,
}

/// Registers one step on `ctx`: a SQL step becomes a view (an incremental one
/// over its carried state, [`carried`]; one with `window_days` over its
/// sources' last days), a builtin (`stitch_identities`, `fit_clv`) runs here
/// and registers its tables. The run then materializes the result
/// ([`materialize`]) when the step is a table.
pub async fn register_step(
    ctx: &SessionContext,
    step: &StepSpec,
    env: &StepEnv<'_>,
) -> Result<Registered, StepError> {
    let mut carried = None;
    let mut window = None;
    match &step.kind {
        StepKind::Sql { file, sql } => match (&step.incremental, &step.window_days, &env.carry) {
            (None, Some(text_days), Some(carry)) if !carry.on_cluster => {
                let file = file.display().to_string();
                let text = sql::interpolated(&step.name, &file, sql, env.vars)?;
                let days = crate::job::window_days(text_days, env.vars).map_err(|message| {
                    StepError::Template {
                        step: step.name.clone(),
                        file: file.clone(),
                        message: format!("window_days: {message}"),
                    }
                })?;
                let text = (file.as_str(), text.as_str());
                let read = carried::register_windowed(ctx, step, days, text, env.date, carry);
                window = Some(read.await?);
            }
            (None, _, _) | (_, _, None) => {
                register_sql_step(ctx, &step.name, file, sql, env.vars).await?
            }
            (Some(incremental), _, Some(carry)) => {
                let file = file.display().to_string();
                let text = sql::interpolated(&step.name, &file, sql, env.vars)?;
                carried = carried::register_carried(
                    ctx,
                    step,
                    incremental,
                    &file,
                    &text,
                    env.date,
                    carry,
                )
                .await?;
            }
        },
        StepKind::Builtin { builtin, inputs } => match builtin.settings(env.vars) {
            Err(source) => {
                return Err(StepError::Setting {
                    step: step.name.clone(),
                    source,
                });
            }
            Ok(BuiltinSettings::StitchIdentities(settings)) => {
                let previous = step.previous.as_deref().unwrap_or(&step.name);
                identity::register_stitch_identities(
                    ctx, &step.name, inputs, previous, &settings, env,
                )
                .await
                .map_err(|source| StepError::Identity {
                    step: step.name.clone(),
                    source,
                })?;
            }
            Ok(BuiltinSettings::FitClv(settings)) => {
                clv::register_fit_clv(ctx, &step.name, inputs, &settings)
                    .await
                    .map_err(|source| StepError::Clv {
                        step: step.name.clone(),
                        source,
                    })?;
            }
        },
    }
    tracing::debug!(step = %step.name, "step registered");
    Ok(Registered { carried, window })
}
