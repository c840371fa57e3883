//! Steps that read a window of days (`window_days: N`): each source the step
//! reads is bound to its cached days with `date − dt ≤ N`, plus the rows held
//! out for erasure (read back every run), and its deduplicated rows to those
//! days' winners among the run's duplicates, as an incremental step's days are
//! ([`Inputs`]). The step's SQL promises that its filters leave out every row of
//! an older day (e.g. events dated within N days of the date and not after the
//! day their file arrived), so the window only saves reading: a cluster reads
//! every day and gets the same rows.

use chrono::NaiveDate;
use datafusion::prelude::SessionContext;

use super::merge::{Inputs, sub_context};
use super::{CarryEnv, DaysBySource, StepError, files_of};
use crate::job::StepSpec;

/// What a step with `window_days` read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Window {
    /// Source days read.
    pub days: u64,
    /// Parquet bytes of those days and of the held-out rows read back: the
    /// step's joins, and its readers', are chosen from these, not from its
    /// sources' sizes.
    pub bytes: u64,
}

/// Registers SQL `step` (interpolated `text`, read from `file`) on `ctx` over
/// the last `days` days of its sources (module docs).
pub async fn register_windowed(
    ctx: &SessionContext,
    step: &StepSpec,
    days: u32,
    (file, text): (&str, &str),
    date: NaiveDate,
    env: &CarryEnv,
) -> Result<Window, StepError> {
    let name = step.name.as_str();
    let sql_err = |source| StepError::Sql {
        step: name.to_string(),
        file: file.to_string(),
        source,
    };
    let (sources, deduped) = env
        .bind(&step.depends_on)
        .map_err(|message| StepError::State {
            step: name.to_string(),
            message,
        })?;
    let within = |dt: NaiveDate| dt <= date && (date - dt).num_days() <= i64::from(days);
    let window: DaysBySource = sources
        .iter()
        .map(|(source, cached)| {
            let days = cached.days.iter().filter(|d| within(d.dt)).collect();
            (*source, days)
        })
        .collect();
    let read_back = |source: &str| sources[source].read_back.as_ref();
    let typed = window.values().flatten().filter_map(|d| d.typed.as_ref());
    let held_out = sources.keys().filter_map(|s| read_back(s));
    let read = Window {
        days: window.values().map(|d| d.len() as u64).sum(),
        bytes: typed.chain(held_out).map(|f| f.bytes).sum(),
    };
    let inputs = Inputs {
        files: files_of(&sources, &window, |s| read_back(s).map(|f| f.path.clone())),
        deduped: &deduped,
        date,
        store_url: &env.store_url,
    };
    let sub = sub_context(ctx);
    let frame = inputs.step(ctx, &sub, text).await.map_err(sql_err)?;
    ctx.register_table(name, frame.into_view())
        .map_err(sql_err)?;
    tracing::info!(
        step = name,
        window_days = days,
        days_read = read.days,
        bytes = read.bytes,
        "windowed step"
    );
    Ok(read)
}
