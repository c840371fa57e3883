//! The `report:` block: the charts of the run report, each a SQL query over the
//! job's outputs drawn as a bar chart, a heatmap or a histogram.
//!
//! ```yaml
//! report:
//!   charts:
//!     - title: Customers by value segment
//!       kind: bar
//!       sql: SELECT segment AS label, customers AS value FROM segment_summary WHERE dimension = 'value_segment'
//!       compare: previous
//!     - { title: CLV, kind: histogram, sql: SELECT clv FROM customer_360, bins: 20, upper_quantile: 0.95 }
//! ```
//! Each chart is decoded on its own, so one bad chart does not hide the others;
//! its SQL is checked when the job resolves (`resolve`), planned by `c360 validate`.

use super::model::{ChartKind, ChartSpec};
use super::node::Node;
use super::node_de::{Located, decode};
use super::report::Reporter;
use super::sections::{list, mapping};
use super::spec::ChartRaw;

/// Bins of a histogram that does not say.
pub const DEFAULT_BINS: usize = 20;
/// More bins than this draw bars under a pixel wide.
const MAX_BINS: usize = 200;

/// A decoded chart and where its SQL is, for the checks of its tables.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ChartDraft {
    pub spec: ChartSpec,
    pub sql: Located<String>,
}

/// Decodes `report:` into its charts, in file order.
pub(crate) fn decode_report(node: &Node, report: &mut Reporter) -> Vec<ChartDraft> {
    let mut charts = Vec::new();
    for (key, value) in mapping(node, "report", report) {
        match key.as_scalar() {
            Some("charts") => charts.extend(decode_charts(value, report)),
            other => report.at(
                key.line,
                key.column,
                format!(
                    "report: unknown key `{}`, expected charts",
                    other.unwrap_or_default()
                ),
            ),
        }
    }
    charts
}

fn decode_charts(node: &Node, report: &mut Reporter) -> Vec<ChartDraft> {
    let items = list(node, "report.charts", report);
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let context = format!("report.charts[{i}]");
        match decode::<ChartRaw>(item) {
            Err(e) => report.decode(&context, e),
            Ok(raw) => out.push(resolve_chart(raw, &context, report)),
        }
    }
    out
}

/// Options that belong to one kind are errors on another.
fn resolve_chart(raw: ChartRaw, context: &str, report: &mut Reporter) -> ChartDraft {
    let kind: ChartKind = raw.kind.value.into();
    if let Some(compare) = &raw.compare
        && kind != ChartKind::Bar
    {
        let message = format!(
            "{context}.compare: only bar charts compare with the previous snapshot, this one is a {}",
            kind.as_str()
        );
        report.at(compare.line, compare.column, message);
    }
    let bins = match &raw.bins {
        None => DEFAULT_BINS,
        Some(bins) if kind != ChartKind::Histogram => {
            let message = format!(
                "{context}.bins: only histograms have bins, this chart is a {}",
                kind.as_str()
            );
            report.at(bins.line, bins.column, message);
            DEFAULT_BINS
        }
        Some(bins) if bins.value == 0 || bins.value > MAX_BINS => {
            let message = format!("{context}.bins: must be 1 to {MAX_BINS}");
            report.at(bins.line, bins.column, message);
            DEFAULT_BINS
        }
        Some(bins) => bins.value,
    };
    let upper_quantile = match &raw.upper_quantile {
        None => None,
        Some(q) if kind != ChartKind::Histogram => {
            let message = format!(
                "{context}.upper_quantile: only histograms have one, this chart is a {}",
                kind.as_str()
            );
            report.at(q.line, q.column, message);
            None
        }
        Some(q) if !(q.value > 0.0 && q.value <= 1.0) => {
            let message = format!("{context}.upper_quantile: must be above 0 and at most 1");
            report.at(q.line, q.column, message);
            None
        }
        Some(q) => Some(q.value),
    };
    ChartDraft {
        spec: ChartSpec {
            title: raw.title.value,
            kind,
            sql: raw.sql.value.clone(),
            compare_previous: raw.compare.is_some(),
            bins,
            upper_quantile,
        },
        sql: raw.sql,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn charts(yaml: &str) -> (Vec<ChartDraft>, Vec<String>) {
        let node = Node::parse(yaml).unwrap();
        let mut report = Reporter::new(Path::new("j.yaml"));
        let out = decode_report(&node, &mut report);
        let messages = report.diagnostics.iter().map(|d| d.to_string()).collect();
        (out, messages)
    }

    #[test]
    fn charts_decode_with_their_defaults() {
        let (out, messages) = charts(
            "charts:\n  - { title: A, kind: bar, sql: SELECT 1, compare: previous }\n  - { title: B, kind: histogram, sql: SELECT 2 }\n",
        );
        assert!(messages.is_empty(), "{messages:?}");
        let specs: Vec<_> = out.into_iter().map(|c| c.spec).collect();
        assert_eq!(
            specs,
            vec![
                ChartSpec {
                    title: "A".into(),
                    kind: ChartKind::Bar,
                    sql: "SELECT 1".into(),
                    compare_previous: true,
                    bins: DEFAULT_BINS,
                    upper_quantile: None,
                },
                ChartSpec {
                    title: "B".into(),
                    kind: ChartKind::Histogram,
                    sql: "SELECT 2".into(),
                    compare_previous: false,
                    bins: DEFAULT_BINS,
                    upper_quantile: None,
                },
            ]
        );
    }

    #[test]
    fn every_bad_chart_is_reported_where_it_is() {
        let (out, messages) = charts(
            "charts:\n  - { title: A, kind: pie, sql: SELECT 1 }\n  - { title: B, kind: heatmap, sql: SELECT 1, compare: previous }\n  - { title: C, kind: bar, sql: SELECT 1, bins: 5 }\n  - { title: D, kind: histogram, sql: SELECT 1, bins: 0, upper_quantile: 1.5 }\n  - { title: E, kind: bar, sql: SELECT 1, colour: red }\nlegend: top\n",
        );
        assert_eq!(out.len(), 3);
        assert_eq!(
            messages,
            vec![
                "j.yaml:2:23: report.charts[0]: unknown variant `pie`, expected one of `bar`, `heatmap`, `histogram`",
                "j.yaml:3:56: report.charts[1].compare: only bar charts compare with the previous snapshot, this one is a heatmap",
                "j.yaml:4:49: report.charts[2].bins: only histograms have bins, this chart is a bar",
                "j.yaml:5:55: report.charts[3].bins: must be 1 to 200",
                "j.yaml:5:74: report.charts[3].upper_quantile: must be above 0 and at most 1",
                "j.yaml:6:43: report.charts[4]: unknown field `colour`, expected one of `title`, `kind`, `sql`, `compare`, `bins`, `upper_quantile`",
                "j.yaml:7:1: report: unknown key `legend`, expected charts",
            ]
        );
    }
}
