//! SQL steps: a file under `sql/`, interpolated with the job's variables and
//! registered as a view named after the step.

use std::collections::BTreeMap;
use std::path::Path;

use datafusion::prelude::SessionContext;

use super::StepError;

/// Plans `sql` (after `{name}` interpolation) and registers it as view `name`.
pub async fn register_sql_step(
    ctx: &SessionContext,
    name: &str,
    file: &Path,
    sql: &str,
    vars: &BTreeMap<String, String>,
) -> Result<(), StepError> {
    let file_name = file.display().to_string();
    let text = interpolated(name, &file_name, sql, vars)?;
    let sql_err = |source| StepError::Sql {
        step: name.to_string(),
        file: file_name.clone(),
        source,
    };
    let frame = ctx.sql(&text).await.map_err(sql_err)?;
    ctx.register_table(name, frame.into_view())
        .map_err(sql_err)?;
    Ok(())
}

/// The SQL of step `name` (from `file`) with its `{name}` placeholders filled.
pub(super) fn interpolated(
    name: &str,
    file: &str,
    sql: &str,
    vars: &BTreeMap<String, String>,
) -> Result<String, StepError> {
    crate::job::interpolate(sql, vars).map_err(|e| StepError::Template {
        step: name.to_string(),
        file: file.to_string(),
        message: e.to_string(),
    })
}
