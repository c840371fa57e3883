//! Sources of a job file (`sources:`): placeholders, the `currencies` link,
//! reject budgets and size limits, checked and resolved into `SourceSpec`s.

use super::model::{ContractSchema, RejectBudget, SourceLimits, SourceSpec};
use super::node_de::Located;
use super::report::Reporter;
use super::resolve::check_placeholders;
use super::spec::{LimitsRaw, SourceRaw};
use super::units::parse_bytes;
use std::collections::BTreeMap;

/// `sources.<name>:` resolved; problems go to `report`.
pub(super) fn resolve_source(
    name: &Located<String>,
    raw: &SourceRaw,
    schemas: &BTreeMap<&str, ContractSchema>,
    vars: &BTreeMap<String, String>,
    report: &mut Reporter,
) -> SourceSpec {
    let context = format!("sources.{}", name.value);
    check_placeholders(&raw.path, &format!("{context}.path"), vars, report);
    let schema: ContractSchema = raw.schema.into();
    if let Some(currencies) = &raw.currencies {
        let problem = if schema != ContractSchema::Transactions {
            Some("`currencies` only applies to schema transactions".to_string())
        } else {
            match schemas.get(currencies.value.as_str()) {
                Some(ContractSchema::FxRates) => None,
                Some(_) => Some(format!(
                    "`{}` does not have schema fx_rates",
                    currencies.value
                )),
                None => Some(format!("undefined source `{}`", currencies.value)),
            }
        };
        if let Some(problem) = problem {
            report.at(
                currencies.line,
                currencies.column,
                format!("{context}.currencies: {problem}"),
            );
        }
    }
    let mut rejects = RejectBudget::default();
    if let Some(r) = &raw.rejects {
        if let Some(fraction) = &r.max_fraction {
            if !(0.0..=1.0).contains(&fraction.value) {
                let message = format!("{context}.rejects.max_fraction: must be between 0 and 1");
                report.at(fraction.line, fraction.column, message);
            }
            rejects.max_fraction = fraction.value;
        }
        rejects.max_rows = r.max_rows;
    }
    let limits = raw
        .limits
        .as_ref()
        .map(|l| resolve_limits(l, &context, report))
        .unwrap_or_default();
    SourceSpec {
        name: name.value.clone(),
        path: raw.path.value.clone(),
        format: raw.format.into(),
        schema,
        partitions: raw.partitions.clone(),
        rejects,
        limits,
        currencies: raw.currencies.as_ref().map(|c| c.value.clone()),
        optional: raw.optional,
    }
}

/// `sources.<name>.limits:`: each value above 0; an unset one keeps its default.
fn resolve_limits(raw: &LimitsRaw, context: &str, report: &mut Reporter) -> SourceLimits {
    let mut limits = SourceLimits::default();
    let mut size = |loc: &Option<Located<String>>, key: &str, value: &mut u64| {
        let Some(loc) = loc else { return };
        match parse_bytes(&loc.value) {
            Ok(0) => {
                let message = format!("{context}.limits.{key}: must be more than 0");
                report.at(loc.line, loc.column, message);
            }
            Ok(bytes) => *value = bytes,
            Err(m) => report.at(loc.line, loc.column, format!("{context}.limits.{key}: {m}")),
        }
    };
    size(
        &raw.max_field_bytes,
        "max_field_bytes",
        &mut limits.max_field_bytes,
    );
    size(
        &raw.max_record_bytes,
        "max_record_bytes",
        &mut limits.max_record_bytes,
    );
    size(
        &raw.max_decompressed_bytes,
        "max_decompressed_bytes",
        &mut limits.max_decompressed_bytes,
    );
    if let Some(columns) = &raw.max_columns {
        if columns.value == 0 {
            let message = format!("{context}.limits.max_columns: must be more than 0");
            report.at(columns.line, columns.column, message);
        } else {
            limits.max_columns = columns.value;
        }
    }
    limits
}
