//! The report's HTML: one page with inline CSS and inline SVG, no script and
//! no URL, so it opens from disk, from a mail attachment or an object store
//! download the same way.
//!
//! Every text is escaped ([`escape`]). Text from the data (raw reject rows,
//! file names, check samples) is hostile input and also goes through
//! [`untrusted`]: control characters are shown as symbols, and text that a
//! spreadsheet would run as a formula (starting with `=`, `+`, `-`, `@`, tab or
//! carriage return) gets a leading `'`, as OWASP advises for CSV, so copying a
//! table into a spreadsheet runs nothing.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::charts::{Chart, ChartData, Charts};
use super::draw::{self, number, thousands};
use super::rejects::Examples;
use super::{ReportError, ReportInput};
use crate::checks::CheckStatus;
use crate::runlog::{RunRecord, RunStatus};

/// Characters of raw reject text shown per example.
const RAW_CHARS: usize = 240;

const STYLE: &str = "
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:0;color:#222;background:#f6f7f9}
main{max-width:1100px;margin:0 auto;padding:16px 24px 48px}
header{background:#fff;border-bottom:1px solid #ddd;padding:16px 24px}
header h1{margin:0 0 4px;font-size:1.5em}
h2{margin:32px 0 8px;font-size:1.2em;border-bottom:1px solid #ddd;padding-bottom:4px}
h3{font-size:1em;margin:16px 0 6px}
nav a{margin-right:14px;color:#2a5d9f}
.meta{color:#555;font-size:.9em}
.status{display:inline-block;padding:2px 10px;border-radius:10px;font-weight:600;color:#fff}
.succeeded,.pass{background:#3b8b3b}.failed,.fail{background:#c0392b}.running,.abandoned,.warn{background:#c77c02}
.pass,.fail,.warn{display:inline-block;padding:0 8px;border-radius:8px;color:#fff;font-size:.85em}
table{border-collapse:collapse;background:#fff;margin:6px 0 12px;font-size:.9em}
th,td{border:1px solid #ddd;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#eef1f5}
td.n{text-align:right;font-variant-numeric:tabular-nums}
code,pre{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.85em}
td code{white-space:pre-wrap;word-break:break-all}
.error{background:#fdecea;border:1px solid #c0392b;padding:8px 12px;border-radius:4px}
.note{color:#555;font-size:.9em}
figure.chart{background:#fff;border:1px solid #ddd;border-radius:4px;margin:12px 0;padding:8px 12px}
figure.chart figcaption{font-weight:600;margin-bottom:6px}
figure.chart svg{max-width:100%;height:auto;display:block}
.chart-error{color:#8a1f11}
details summary{cursor:pointer;color:#555;font-size:.85em}
";

/// Text made safe inside HTML elements and attribute values.
pub(super) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The text a page shows, tags turned into field breaks (`,`) and [`escape`]
/// undone, for matching erased identifiers against an earlier report.
pub(super) fn visible_text(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut in_tag = false;
    for c in html.chars() {
        match (in_tag, c) {
            (false, '<') => {
                in_tag = true;
                out.push(',');
            }
            (true, '>') => in_tag = false,
            (false, c) => out.push(c),
            (true, _) => {}
        }
    }
    out.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

/// Text from the data as shown: control characters as their symbols (␀, ␍, …),
/// a leading `'` before formula-like text, then escaped.
pub(super) fn untrusted(text: &str) -> String {
    let visible: String = text
        .chars()
        .map(|c| match c {
            // The C0 control pictures start at U+2400 (␀).
            '\u{0}'..='\u{1f}' => char::from_u32(0x2400 + c as u32).unwrap_or('\u{fffd}'),
            '\u{7f}' => '\u{2421}',
            c => c,
        })
        .collect();
    let formula = text.starts_with(['=', '+', '-', '@', '\t', '\r']);
    if formula {
        escape(&format!("'{visible}"))
    } else {
        escape(&visible)
    }
}

fn count(n: u64) -> String {
    thousands(i64::try_from(n).unwrap_or(i64::MAX))
}

/// The whole page.
pub(super) fn render(
    input: &ReportInput<'_>,
    examples: &Examples,
    charts: &Charts,
) -> Result<String, ReportError> {
    let record = input.record;
    let title = format!("c360 · {} · {}", record.job, record.logical_date);
    let mut page = String::new();
    page.push_str("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n");
    // Nothing to load: no script, no request, whatever ends up in the page.
    page.push_str("<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">\n");
    page.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    let _ = writeln!(
        page,
        "<title>{}</title>\n<style>{STYLE}</style></head><body>",
        escape(&title)
    );
    header(&mut page, record);
    page.push_str("<main>\n<nav><a href=\"#rows\">Rows</a><a href=\"#rejects\">Rejects</a><a href=\"#checks\">Checks</a><a href=\"#outputs\">Outputs</a><a href=\"#charts\">Customer base</a><a href=\"#timings\">Timings</a><a href=\"#params\">Parameters</a></nav>\n");
    if let Some(error) = &record.error {
        let options = &input.job.storage.options;
        let _ = writeln!(
            page,
            "<section id=\"error\"><h2>Error</h2><div class=\"error\"><p><strong>{}</strong>: {}</p><p>Next: {}</p></div>\
             <p class=\"note\">The sections below show what the run did before it stopped; the charts show the latest snapshot committed on or before {}.</p></section>",
            escape(&error.layer),
            untrusted(&crate::storage::redact_secrets(&error.message, options)),
            escape(&error.next_step),
            record.logical_date
        );
    }
    accounting(&mut page, record);
    rejects(&mut page, record, examples);
    checks(&mut page, record);
    outputs(&mut page, input, charts);
    page.push_str("<section id=\"charts\"><h2>Customer base</h2>\n");
    if charts.charts.is_empty() {
        page.push_str(
            "<p class=\"note\">The job declares no charts (<code>report.charts</code>).</p>\n",
        );
    }
    for (i, chart) in charts.charts.iter().enumerate() {
        figure(&mut page, i, chart)?;
    }
    page.push_str("</section>\n");
    timings(&mut page, record)?;
    params(&mut page, input);
    let _ = writeln!(
        page,
        "<footer class=\"note\"><p>Written by c360 {} for run {}.</p></footer>\n</main></body></html>",
        env!("CARGO_PKG_VERSION"),
        escape(&record.run_id)
    );
    Ok(page)
}

fn header(page: &mut String, record: &RunRecord) {
    let status = match record.status {
        RunStatus::Running => "running",
        RunStatus::Succeeded => "succeeded",
        RunStatus::Failed => "failed",
        RunStatus::Abandoned => "abandoned",
    };
    let ended = record.ended_at.map_or_else(
        || "-".to_string(),
        |t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
    );
    let _ = writeln!(
        page,
        "<header><h1>{} · {}</h1><p><span class=\"status {status}\" id=\"status\">{status}</span> \
         <span class=\"meta\">run {} · started {} · ended {ended} · {:.1} s · job file {}</span></p></header>",
        escape(&record.job),
        record.logical_date,
        escape(&record.run_id),
        record.started_at.format("%Y-%m-%d %H:%M:%S UTC"),
        record.elapsed_secs(),
        escape(&record.job_file),
    );
}

fn accounting(page: &mut String, record: &RunRecord) {
    page.push_str("<section id=\"rows\"><h2>Row accounting</h2>\n");
    page.push_str("<p class=\"note\">Per extract: read = accepted + rejected; accepted = kept + deduplicated + filtered. Unattributed: kept guest order lines whose email is no identifier.</p>\n");
    page.push_str("<table id=\"accounting\"><tr><th>extract</th><th>files</th><th>read</th><th>accepted</th><th>rejected</th><th>deduplicated</th><th>filtered</th><th>kept</th><th>unattributed</th></tr>\n");
    for source in &record.sources {
        let acc = record.accounting.iter().find(|a| a.extract == source.name);
        let cell = |f: &dyn Fn(&crate::runlog::RowAccounting) -> u64| {
            acc.map_or_else(|| "-".to_string(), |a| count(f(a)))
        };
        let filtered = acc.map_or_else(
            || "-".to_string(),
            |a| {
                let total: u64 = a.filtered.values().sum();
                let parts: Vec<String> = a
                    .filtered
                    .iter()
                    .filter(|(_, n)| **n > 0)
                    .map(|(why, n)| format!("{} {}", escape(why), count(*n)))
                    .collect();
                if parts.is_empty() {
                    count(total)
                } else {
                    format!("{} ({})", count(total), parts.join(", "))
                }
            },
        );
        let _ = writeln!(
            page,
            "<tr><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{filtered}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
            escape(&source.name),
            count(source.files),
            count(source.rows_read),
            count(source.rows_accepted),
            count(source.rows_rejected),
            cell(&|a| a.deduplicated),
            cell(&|a| a.kept),
            cell(&|a| a.unattributed),
        );
    }
    page.push_str("</table>\n");
    if record.sources.is_empty() {
        page.push_str("<p class=\"note\">No source was read.</p>\n");
    } else if record.accounting.is_empty() {
        page.push_str("<p class=\"note\">The run stopped before duplicates were resolved: no deduplicated, filtered or kept counts.</p>\n");
    }
    page.push_str("</section>\n");
}

fn rejects(page: &mut String, record: &RunRecord, examples: &Examples) {
    page.push_str("<section id=\"rejects\"><h2>Rejects by reason</h2>\n");
    let removed = record
        .erasure
        .as_ref()
        .map(|e| e.reject_rows_removed.clone())
        .unwrap_or_default();
    let any = record.sources.iter().any(|s| s.rows_rejected > 0);
    if !any {
        page.push_str("<p class=\"note\">No row was rejected.</p>\n");
    }
    if record.rejects.is_empty() && any {
        page.push_str(
            "<p class=\"note\">The run published no rejects, so no examples are shown.</p>\n",
        );
    }
    for source in record.sources.iter().filter(|s| s.rows_rejected > 0) {
        let _ = writeln!(
            page,
            "<h3>{}: {} rejected</h3>",
            escape(&source.name),
            count(source.rows_rejected)
        );
        if let Some(n) = removed.get(&source.name) {
            let _ = writeln!(
                page,
                "<p class=\"note\">{} of them carried an erased person's identifiers and were not published; no example comes from them.</p>",
                count(*n)
            );
        }
        page.push_str("<table class=\"rejects\"><tr><th>reason</th><th>rows</th><th>examples (file:line, raw text)</th></tr>\n");
        let none = BTreeMap::new();
        let shown = examples.get(&source.name).unwrap_or(&none);
        for (reason, rows) in &source.rejects_by_reason {
            let mut cell = String::new();
            for example in shown.get(reason).into_iter().flatten() {
                let raw = example.raw.as_deref().unwrap_or("");
                let cut: String = raw.chars().take(RAW_CHARS).collect();
                let more = if cut.len() < raw.len() { " …" } else { "" };
                let _ = write!(
                    cell,
                    "<div><span class=\"note\">{}:{}</span> <code>{}</code>{more}</div>",
                    untrusted(&example.file),
                    example.line,
                    untrusted(&cut)
                );
            }
            let _ = writeln!(
                page,
                "<tr><td>{}</td><td class=\"n\">{}</td><td>{cell}</td></tr>",
                escape(reason),
                count(*rows)
            );
        }
        page.push_str("</table>\n");
    }
    page.push_str("</section>\n");
}

fn checks(page: &mut String, record: &RunRecord) {
    page.push_str("<section id=\"checks\"><h2>Checks</h2>\n");
    if record.checks.is_empty() {
        page.push_str("<p class=\"note\">No check ran.</p>\n");
    } else {
        page.push_str("<table id=\"check-table\"><tr><th>status</th><th>table</th><th>check</th><th>severity</th><th>failures</th><th>message</th></tr>\n");
        for check in &record.checks {
            let status = match check.status {
                CheckStatus::Pass => "pass",
                CheckStatus::Warn => "warn",
                CheckStatus::Fail => "fail",
            };
            let samples: Vec<String> = check
                .sample
                .iter()
                .map(|s| format!("<br><code>{}</code>", untrusted(s)))
                .collect();
            let _ = writeln!(
                page,
                "<tr><td><span class=\"{status}\">{status}</span></td><td>{}</td><td>{}</td><td>{}</td><td class=\"n\">{}</td><td>{}{}</td></tr>",
                escape(&check.table),
                escape(&check.check),
                escape(&check.severity),
                count(check.failures),
                untrusted(&check.message),
                samples.concat()
            );
        }
        page.push_str("</table>\n");
    }
    page.push_str("</section>\n");
}

fn outputs(page: &mut String, input: &ReportInput<'_>, charts: &Charts) {
    let record = input.record;
    page.push_str("<section id=\"outputs\"><h2>Outputs</h2>\n");
    if record.outputs.is_empty() {
        page.push_str("<p class=\"note\">This run published no output.</p>\n");
    } else {
        page.push_str(
            "<table><tr><th>output</th><th>rows</th><th>files</th><th>location</th></tr>\n",
        );
        let options = &input.job.storage.options;
        for output in &record.outputs {
            let _ = writeln!(
                page,
                "<tr><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td><code>{}</code></td></tr>",
                escape(&output.name),
                count(output.rows),
                output.files.len(),
                escape(&crate::storage::redact_secrets(&output.location, options))
            );
        }
        page.push_str("</table>\n");
    }
    if !charts.snapshots.is_empty() {
        page.push_str("<p class=\"note\">The charts read these committed snapshots:</p><table><tr><th>output</th><th>snapshot</th><th>rows</th><th>previous snapshot</th></tr>\n");
        for s in &charts.snapshots {
            let date =
                |d: Option<chrono::NaiveDate>| d.map_or_else(|| "-".to_string(), |d| d.to_string());
            let _ = writeln!(
                page,
                "<tr><td>{}</td><td>{}</td><td class=\"n\">{}</td><td>{}</td></tr>",
                escape(&s.output),
                date(s.current),
                s.rows.map_or_else(|| "-".to_string(), count),
                date(s.previous)
            );
        }
        page.push_str("</table>\n");
    }
    page.push_str("</section>\n");
}

fn figure(page: &mut String, i: usize, chart: &Chart) -> Result<(), ReportError> {
    let spec = &chart.spec;
    let _ = writeln!(
        page,
        "<figure class=\"chart\" id=\"chart-{}\" data-kind=\"{}\"><figcaption>{}</figcaption>",
        i + 1,
        spec.kind.as_str(),
        escape(&spec.title)
    );
    let mut tail = None;
    match &chart.data {
        Err(message) => {
            let _ = writeln!(page, "<p class=\"chart-error\">{}</p>", escape(message));
        }
        Ok(data) => {
            let svg = match data {
                ChartData::Bars {
                    axis,
                    rows,
                    previous,
                    ..
                } if !rows.is_empty() => draw::bars(&spec.title, axis, rows, previous.as_deref())?,
                ChartData::Heatmap { axes, cells } if !cells.is_empty() => {
                    draw::heatmap(&spec.title, (&axes.0, &axes.1, &axes.2), cells)?
                }
                ChartData::Histogram {
                    axis,
                    values,
                    bins,
                    upper_quantile,
                } if !values.is_empty() => {
                    let bins = draw::binned(values, *bins, *upper_quantile);
                    if let (Some(q), true) = (upper_quantile, bins.above > 0) {
                        let edge = bins.lo + bins.width * bins.counts.len() as f64;
                        tail = Some(format!(
                            "The bins end at {} (the {} quantile); the last, grey bin also counts the {} values above it, up to {}.",
                            number(edge),
                            q,
                            count(bins.above),
                            number(bins.max)
                        ));
                    }
                    draw::histogram(&spec.title, axis, &bins)?
                }
                _ => String::from("<p class=\"chart-error\">The query returned no rows.</p>"),
            };
            page.push_str(&svg);
        }
    }
    for note in chart.note.iter().chain(&tail) {
        let _ = writeln!(page, "<p class=\"note\">{}</p>", escape(note));
    }
    let _ = writeln!(
        page,
        "<details><summary>SQL</summary><pre>{}</pre></details></figure>",
        escape(&spec.sql)
    );
    Ok(())
}

fn timings(page: &mut String, record: &RunRecord) -> Result<(), ReportError> {
    page.push_str("<section id=\"timings\"><h2>Timings</h2>\n");
    if !record.stages.is_empty() {
        let rows: Vec<(String, f64)> = record
            .stages
            .iter()
            .map(|s| (s.stage.clone(), (s.secs * 100.0).round() / 100.0))
            .collect();
        page.push_str("<figure class=\"chart\" id=\"chart-stages\" data-kind=\"bar\"><figcaption>Seconds per stage</figcaption>\n");
        page.push_str(&draw::bars("stages", "seconds", &rows, None)?);
        page.push_str("</figure>\n");
    }
    if !record.steps.is_empty() {
        page.push_str("<table><tr><th>step</th><th>materialize</th><th>join</th><th>rows</th><th>seconds</th><th>peak memory (MiB)</th><th>spilled (MiB)</th></tr>\n");
        let mib = |b: u64| number((b as f64 / 1048576.0 * 10.0).round() / 10.0);
        for step in &record.steps {
            let _ = writeln!(
                page,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{:.2}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
                escape(&step.name),
                escape(&step.materialize),
                escape(&step.join),
                step.rows.map_or_else(|| "-".to_string(), count),
                step.secs,
                mib(step.peak_memory_bytes),
                mib(step.spilled_bytes)
            );
        }
        page.push_str("</table>\n");
    }
    page.push_str("</section>\n");
    Ok(())
}

fn params(page: &mut String, input: &ReportInput<'_>) {
    let options = &input.job.storage.options;
    page.push_str("<section id=\"params\"><h2>Parameters</h2>\n<p class=\"note\">After <code>--set</code>; storage secrets are masked.</p><table>\n");
    for (key, value) in &input.record.params {
        let _ = writeln!(
            page,
            "<tr><th>{}</th><td><code>{}</code></td></tr>",
            escape(key),
            escape(&crate::storage::redact_secrets(value, options))
        );
    }
    page.push_str("</table></section>\n");
}

#[cfg(test)]
#[path = "page_tests.rs"]
mod tests;
