//! The checks stage: every check of the job over the staged outputs, which are
//! exactly what the commit would publish. An error-level failure stops the run
//! before anything is published.

use std::collections::BTreeMap;

use datafusion::prelude::SessionContext;

use super::{Progress, Run, RunError, record};
use crate::checks::{self, OutputFacts, SortedFiles};
use crate::outputs::StagedOutput;

/// Runs every check; records the outcomes in `p`.
pub(super) async fn check_outputs(
    r: &Run<'_>,
    ctx: &SessionContext,
    p: &mut Progress,
    staged_outputs: &[StagedOutput],
) -> Result<(), RunError> {
    let t = record::StageStart::now();
    let bound = &r.bound;
    let mut facts = BTreeMap::new();
    for staged in staged_outputs {
        let previous = checks::previous_snapshot(
            &bound.warehouse.store,
            &staged.name,
            &staged.root,
            staged.partitioned,
            bound.date,
        )
        .await?;
        facts.insert(
            staged.name.clone(),
            OutputFacts {
                rows: staged.staged.rows(),
                previous,
                files: SortedFiles {
                    store: bound.warehouse.store.clone(),
                    files: staged.staged.files.clone(),
                    sort_by: staged.sort_by.clone(),
                },
            },
        );
    }
    let cx = checks::CheckContext {
        ctx,
        date: bound.date,
        vars: &bound.vars,
        outputs: &facts,
    };
    p.record.checks = checks::run_checks(&r.job.checks, &cx).await?;
    record::stage(&mut p.record, "checks", t);
    match checks::failures(&p.record.checks) {
        Some(failed) => Err(failed.into()),
        None => Ok(()),
    }
}
