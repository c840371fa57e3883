//! Step execution: each step's result is registered on the session under the
//! step's name, in dependency order, so later SQL can read it like a table.
//!
//! SQL steps become views (DataFusion plans lazily; nothing is collected here).
//! Builtin steps (identity stitching, CLV fitting) are Rust code over Arrow batches.

pub mod clv;
mod sql;

use std::collections::BTreeMap;

use datafusion::error::DataFusionError;
use datafusion::prelude::SessionContext;

use crate::job::{StepKind, StepSpec};

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
    #[error("step {step}: builtin `{builtin}` is not available in this version of c360")]
    UnknownBuiltin { step: String, builtin: String },
}

/// Registers every step of the job on `ctx`, in the given (dependency) order.
///
/// `vars` are the interpolation variables (params, `date`, storage roots) that
/// SQL files may reference as `{name}`.
pub async fn register_steps(
    ctx: &SessionContext,
    steps: &[StepSpec],
    vars: &BTreeMap<String, String>,
) -> Result<(), StepError> {
    for step in steps {
        match &step.kind {
            StepKind::Sql { file, sql } => {
                register_sql_step(ctx, &step.name, file, sql, vars).await?;
            }
            StepKind::Builtin { name, .. } => {
                return Err(StepError::UnknownBuiltin {
                    step: step.name.clone(),
                    builtin: name.clone(),
                });
            }
        }
        tracing::debug!(step = %step.name, "step registered");
    }
    Ok(())
}
