//! SQL steps: a file under `sql/`, interpolated with the job's variables and
//! registered as a view named after the step.

use std::collections::BTreeMap;
use std::path::Path;

use datafusion::catalog::MemTable;
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
    let text = crate::job::interpolate(sql, vars).map_err(|e| StepError::Template {
        step: name.to_string(),
        file: file_name.clone(),
        message: e.to_string(),
    })?;
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

/// Replaces view `name` by an in-memory table of its rows: for small results
/// that many later plans join (the erasure sets, `crate::erasure`), so they are
/// computed once and the later plans stay shallow.
pub async fn materialize(ctx: &SessionContext, name: &str, file: &Path) -> Result<(), StepError> {
    let sql_err = |source| StepError::Sql {
        step: name.to_string(),
        file: file.display().to_string(),
        source,
    };
    let frame = ctx.table(name).await.map_err(sql_err)?;
    let schema = std::sync::Arc::new(frame.schema().as_arrow().clone());
    let batches = frame.collect().await.map_err(sql_err)?;
    let table = MemTable::try_new(schema, vec![batches]).map_err(sql_err)?;
    ctx.deregister_table(name).map_err(sql_err)?;
    ctx.register_table(name, std::sync::Arc::new(table))
        .map_err(sql_err)?;
    Ok(())
}
