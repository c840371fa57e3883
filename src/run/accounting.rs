//! The accounting stage: every source deduplicated and every row accounted for
//! (`dedup`), then each source's reject budget checked. Returns the sizes of
//! what is staged, from which the step stage chooses its joins.

use std::collections::BTreeMap;

use datafusion::prelude::SessionContext;

use super::sources::StagedSources;
use super::{Progress, Run, RunError, dag, record, rejects};
use crate::commit;
use crate::source::{dedup, stage};

/// Deduplicates and accounts for every staged source; records the accounting in `p`.
pub(super) async fn account(
    r: &Run<'_>,
    ctx: &SessionContext,
    p: &mut Progress,
    sources: &StagedSources<'_>,
) -> Result<dag::Sizes, RunError> {
    let t = record::StageStart::now();
    let bound = &r.bound;
    let store = &bound.warehouse.store;
    let tmp = r.committer.staging_dir(&r.run_id);
    let mut sizes = dag::Sizes {
        bytes: BTreeMap::new(),
        view_reads: BTreeMap::new(),
        carried: BTreeMap::new(),
    };
    for (spec, staged) in sources {
        let mut typed_rows = 0;
        for file in &staged.typed {
            typed_rows += commit::footer_rows(store, &file.path).await?;
        }
        let mut rejected_rows = 0;
        for file in &staged.rejects.files {
            rejected_rows += commit::footer_rows(store, &file.path).await?;
        }
        let at = dedup::DuplicatesAt {
            store,
            store_url: bound.warehouse.store_url.as_str(),
            dir: tmp.clone().join("duplicates").join(spec.name.as_str()),
        };
        let deduped = dedup::dedup_source(
            ctx,
            spec,
            &staged.report,
            (typed_rows, rejected_rows),
            bound.date,
            &at,
            r.engine.cluster.is_none(),
        )
        .await?;
        sizes.bytes.insert(
            spec.name.clone(),
            staged.typed.iter().map(|f| f.bytes).sum(),
        );
        if let Some(file) = &deduped.duplicates {
            sizes
                .bytes
                .insert(dedup::duplicates_table(&spec.name), file.bytes);
        }
        sizes
            .view_reads
            .extend(dedup::deduped_reads(spec, &deduped));
        p.record.accounting.push(deduped.accounting);
    }
    for (spec, staged) in sources {
        stage::check_reject_budget(spec, &staged.report, rejects::location(bound, &spec.name))?;
    }
    record::stage(&mut p.record, "accounting", t);
    Ok(sizes)
}
