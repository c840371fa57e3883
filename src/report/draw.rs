//! The report's charts as SVG text, drawn with plotters' SVG backend (no
//! bitmap backend, no font files: plotters estimates text widths, the browser
//! draws the text). plotters escapes every text it writes into the SVG.
//!
//! Category labels (bars, heatmap rows and columns) are drawn by hand at the
//! pixel positions of their categories rather than as axis ticks, so a label
//! always sits on its bar whatever tick steps plotters would pick.

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::ReportError;

/// Width of every chart, in pixels.
const WIDTH: u32 = 960;
/// Labels longer than this are cut with `…`.
const MAX_LABEL_CHARS: usize = 34;
const FONT: &str = "sans-serif";
const CURRENT: RGBColor = RGBColor(78, 121, 167);
const PREVIOUS: RGBColor = RGBColor(186, 176, 172);
const NEGATIVE: RGBColor = RGBColor(225, 87, 89);
const GRID: RGBColor = RGBColor(230, 230, 230);
const TEXT: RGBColor = RGBColor(40, 40, 40);

/// A drawing failure of chart `chart`.
fn failed(chart: &str) -> impl Fn(String) -> ReportError + '_ {
    move |message| ReportError::Draw {
        chart: chart.to_string(),
        message,
    }
}

/// Draws on an SVG canvas of `height` and returns the SVG text.
fn svg(
    chart: &str,
    height: u32,
    draw: impl FnOnce(&DrawingArea<SVGBackend<'_>, Shift>) -> Result<(), String>,
) -> Result<String, ReportError> {
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, (WIDTH, height)).into_drawing_area();
        root.fill(&WHITE)
            .map_err(|e| failed(chart)(e.to_string()))?;
        draw(&root).map_err(failed(chart))?;
        root.present().map_err(|e| failed(chart)(e.to_string()))?;
    }
    Ok(out)
}

/// A label as shown: at most [`MAX_LABEL_CHARS`] characters.
fn shown(label: &str) -> String {
    if label.chars().count() <= MAX_LABEL_CHARS {
        return label.to_string();
    }
    let cut: String = label.chars().take(MAX_LABEL_CHARS - 1).collect();
    format!("{cut}…")
}

/// Pixels a label column needs (plotters' own estimate is about 7 px a character at 13 px).
fn label_width(labels: &[String]) -> u32 {
    let chars = labels
        .iter()
        .map(|l| shown(l).chars().count())
        .max()
        .unwrap_or(0);
    (chars as u32 * 7 + 16).clamp(40, 260)
}

/// A number on an axis or a bar: thousands separated, at most two decimals.
pub(super) fn number(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        return thousands(value as i64);
    }
    let rounded = format!("{value:.2}");
    let (int, frac) = rounded.split_once('.').unwrap_or((&rounded, ""));
    let sign = if int.starts_with('-') { "-" } else { "" };
    let digits: i64 = int.trim_start_matches('-').parse().unwrap_or(0);
    let frac = frac.trim_end_matches('0');
    let int = format!("{sign}{}", thousands(digits));
    if frac.is_empty() {
        int
    } else {
        format!("{int}.{frac}")
    }
}

/// `1234567` as `1,234,567`.
pub(super) fn thousands(value: i64) -> String {
    let digits = value.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if value < 0 { format!("-{out}") } else { out }
}

/// Horizontal bars, one per label in order; with `previous`, a grey bar of the
/// previous snapshot above each (labels only there are added at the end).
pub(super) fn bars(
    chart: &str,
    axis: &str,
    rows: &[(String, f64)],
    previous: Option<&[(String, f64)]>,
) -> Result<String, ReportError> {
    let mut labels: Vec<String> = rows.iter().map(|(l, _)| l.clone()).collect();
    for (label, _) in previous.unwrap_or_default() {
        if !labels.contains(label) {
            labels.push(label.clone());
        }
    }
    let value =
        |set: &[(String, f64)], label: &str| set.iter().find(|(l, _)| l == label).map(|(_, v)| *v);
    let n = labels.len().max(1);
    let per = if previous.is_some() { 38 } else { 26 };
    let legend = if previous.is_some() { 26 } else { 0 };
    let height = n as u32 * per + 58 + legend;
    let all = rows
        .iter()
        .chain(previous.unwrap_or_default())
        .map(|(_, v)| *v);
    let (lo, hi) = padded(all);
    let left = label_width(&labels);
    svg(chart, height, |root| {
        let e = |e: DrawingAreaErrorKind<_>| e.to_string();
        let mut plot = ChartBuilder::on(root)
            .margin_top(8 + legend)
            .margin_right(16)
            .margin_left(left)
            .x_label_area_size(44)
            .build_cartesian_2d(lo..hi, -0.5..(n as f64 - 0.5))
            .map_err(e)?;
        plot.configure_mesh()
            .disable_y_mesh()
            .y_labels(0)
            .max_light_lines(0)
            .bold_line_style(GRID)
            .x_labels(6)
            .x_label_formatter(&|x| number(*x))
            .x_desc(axis)
            .axis_desc_style((FONT, 13).into_font().color(&TEXT))
            .label_style((FONT, 12).into_font().color(&TEXT))
            .draw()
            .map_err(e)?;
        let y_of = |i: usize| (n - 1 - i) as f64;
        let bar = |y: f64, half: f64, v: f64, color: RGBColor| {
            Rectangle::new([(0.0, y - half), (v, y + half)], color.filled())
        };
        let label_style = |anchor| {
            TextStyle::from((FONT, 12).into_font())
                .color(&TEXT)
                .pos(Pos::new(anchor, VPos::Center))
        };
        let end_label = |y: f64, v: f64| {
            let (anchor, dx) = if v < 0.0 {
                (HPos::Right, -4)
            } else {
                (HPos::Left, 4)
            };
            EmptyElement::at((v, y)) + Text::new(number(v), (dx, 0), label_style(anchor))
        };
        for (i, label) in labels.iter().enumerate() {
            let y = y_of(i);
            let now = value(rows, label);
            if let Some(before) = previous {
                let was = value(before, label);
                if let Some(v) = was {
                    plot.draw_series([bar(y + 0.19, 0.16, v, PREVIOUS)])
                        .map_err(e)?;
                    plot.draw_series([end_label(y + 0.19, v)]).map_err(e)?;
                }
                if let Some(v) = now {
                    plot.draw_series([bar(y - 0.17, 0.18, v, colour(v))])
                        .map_err(e)?;
                    plot.draw_series([end_label(y - 0.17, v)]).map_err(e)?;
                }
            } else if let Some(v) = now {
                plot.draw_series([bar(y, 0.34, v, colour(v))]).map_err(e)?;
                plot.draw_series([end_label(y, v)]).map_err(e)?;
            }
            let (px, py) = plot.backend_coord(&(lo, y));
            root.draw(&Text::new(
                shown(label),
                (px - 8, py),
                label_style(HPos::Right),
            ))
            .map_err(e)?;
        }
        if previous.is_some() {
            legend_row(
                root,
                left,
                &[("previous snapshot", PREVIOUS), ("this snapshot", CURRENT)],
            )
            .map_err(e)?;
        }
        Ok(())
    })
}

/// Negative values (a drop since the previous snapshot) in red.
fn colour(value: f64) -> RGBColor {
    if value < 0.0 { NEGATIVE } else { CURRENT }
}

/// `0` and every value, with room at the ends for the value labels.
fn padded(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (mut lo, mut hi) = values
        .filter(|v| v.is_finite())
        .fold((0.0f64, 0.0f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let span = if hi - lo > 0.0 { hi - lo } else { 1.0 };
    if hi > 0.0 || lo == 0.0 {
        hi += span * 0.16;
    }
    if lo < 0.0 {
        lo -= span * 0.16;
    }
    (lo, hi)
}

/// Coloured squares and their names in one row above the plot.
fn legend_row(
    root: &DrawingArea<SVGBackend<'_>, Shift>,
    left: u32,
    entries: &[(&str, RGBColor)],
) -> Result<(), DrawingAreaErrorKind<std::io::Error>> {
    let mut x = left as i32;
    let style = TextStyle::from((FONT, 12).into_font())
        .color(&TEXT)
        .pos(Pos::new(HPos::Left, VPos::Center));
    for (name, color) in entries {
        root.draw(&Rectangle::new([(x, 8), (x + 12, 20)], color.filled()))?;
        root.draw(&Text::new(name.to_string(), (x + 17, 14), style.clone()))?;
        x += 30 + name.chars().count() as i32 * 7;
    }
    Ok(())
}

/// A grid of cells shaded from white to blue by value, the value written in
/// each. Columns and rows are in order of their labels as numbers when every
/// label is one (RFM scores), else in order of first appearance.
pub(super) fn heatmap(
    chart: &str,
    axes: (&str, &str, &str),
    cells: &[(String, String, f64)],
) -> Result<String, ReportError> {
    let xs = ordered(cells.iter().map(|c| c.0.as_str()));
    let ys = ordered(cells.iter().map(|c| c.1.as_str()));
    let (nx, ny) = (xs.len().max(1), ys.len().max(1));
    let cell_h = 44u32.min(480 / ny as u32).max(16);
    let height = ny as u32 * cell_h + 72;
    let max = cells.iter().map(|c| c.2).fold(0.0f64, f64::max);
    // Room for the row labels and, left of them, the rotated y axis title.
    let left = label_width(&ys) + 30;
    svg(chart, height, |root| {
        let e = |e: DrawingAreaErrorKind<_>| e.to_string();
        let mut plot = ChartBuilder::on(root)
            .margin_top(8)
            .margin_right(90)
            .y_label_area_size(left)
            .x_label_area_size(50)
            .build_cartesian_2d(-0.5..(nx as f64 - 0.5), -0.5..(ny as f64 - 0.5))
            .map_err(e)?;
        plot.configure_mesh()
            .disable_mesh()
            .x_labels(0)
            .y_labels(0)
            .x_desc(axes.0)
            .y_desc(axes.1)
            .axis_desc_style((FONT, 13).into_font().color(&TEXT))
            .draw()
            .map_err(e)?;
        let centred =
            TextStyle::from((FONT, 12).into_font()).pos(Pos::new(HPos::Center, VPos::Center));
        for (x, y, v) in cells {
            let (Some(i), Some(j)) = (position(&xs, x), position(&ys, y)) else {
                continue;
            };
            let (i, j) = (i as f64, j as f64);
            let share = if max > 0.0 {
                (v / max).clamp(0.0, 1.0)
            } else {
                0.0
            };
            let fill = shade(share);
            plot.draw_series([Rectangle::new(
                [(i - 0.5, j - 0.5), (i + 0.5, j + 0.5)],
                fill.filled(),
            )])
            .map_err(e)?;
            let ink = if share > 0.7 { WHITE } else { TEXT };
            plot.draw_series([Text::new(number(*v), (i, j), centred.clone().color(&ink))])
                .map_err(e)?;
        }
        for (i, label) in xs.iter().enumerate() {
            let (px, py) = plot.backend_coord(&(i as f64, -0.5));
            let style = centred
                .clone()
                .color(&TEXT)
                .pos(Pos::new(HPos::Center, VPos::Top));
            root.draw(&Text::new(shown(label), (px, py + 6), style))
                .map_err(e)?;
        }
        for (j, label) in ys.iter().enumerate() {
            let (px, py) = plot.backend_coord(&(-0.5, j as f64));
            let style = centred
                .clone()
                .color(&TEXT)
                .pos(Pos::new(HPos::Right, VPos::Center));
            root.draw(&Text::new(shown(label), (px - 6, py), style))
                .map_err(e)?;
        }
        // The scale, titled by the value column: the darkest shade is the largest value.
        let (px, _) = plot.backend_coord(&(nx as f64 - 0.5, 0.0));
        let key_x = px + 16;
        let title = TextStyle::from((FONT, 12).into_font())
            .color(&TEXT)
            .pos(Pos::new(HPos::Left, VPos::Center));
        root.draw(&Text::new(shown(axes.2), (key_x, 14), title))
            .map_err(e)?;
        for step in 0..=4 {
            let share = f64::from(step) / 4.0;
            let top = 26 + (4 - step) * 18;
            root.draw(&Rectangle::new(
                [(key_x, top), (key_x + 14, top + 16)],
                shade(share).filled(),
            ))
            .map_err(e)?;
            let style = TextStyle::from((FONT, 11).into_font())
                .color(&TEXT)
                .pos(Pos::new(HPos::Left, VPos::Center));
            root.draw(&Text::new(
                number((max * share).round()),
                (key_x + 18, top + 8),
                style,
            ))
            .map_err(e)?;
        }
        Ok(())
    })
}

/// White (0) to the chart blue (1).
fn shade(share: f64) -> RGBColor {
    let mix = |to: u8| (255.0 - (255.0 - f64::from(to)) * share).round() as u8;
    RGBColor(mix(CURRENT.0), mix(CURRENT.1), mix(CURRENT.2))
}

/// Distinct labels: by number when all are numbers, else by first appearance.
fn ordered<'a>(labels: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for label in labels {
        if !out.iter().any(|l| l == label) {
            out.push(label.to_string());
        }
    }
    let numbers: Option<Vec<f64>> = out.iter().map(|l| l.parse::<f64>().ok()).collect();
    if let Some(numbers) = numbers {
        let mut paired: Vec<(f64, String)> = numbers.into_iter().zip(out).collect();
        paired.sort_by(|a, b| a.0.total_cmp(&b.0));
        out = paired.into_iter().map(|(_, l)| l).collect();
    }
    out
}

fn position(labels: &[String], label: &str) -> Option<usize> {
    labels.iter().position(|l| l == label)
}

/// A histogram's bins.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Bins {
    /// The lower edge of the first bin.
    pub lo: f64,
    pub width: f64,
    pub counts: Vec<u64>,
    /// Values above the upper edge (an `upper_quantile`), counted in the last bin.
    pub above: u64,
    /// The largest value.
    pub max: f64,
}

/// The bins of a histogram (docs/rules.md "Run report"): `bins` equal-width
/// bins from the smallest value to the largest, or to the `upper_quantile`
/// (nearest rank) of the values; a value on an inner edge counts in the bin
/// above it, the upper edge and every value above it in the last bin.
pub(super) fn binned(values: &[f64], bins: usize, upper_quantile: Option<f64>) -> Bins {
    let bins = bins.max(1);
    let mut sorted: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    sorted.sort_by(f64::total_cmp);
    let (Some(&lo), Some(&max)) = (sorted.first(), sorted.last()) else {
        return Bins {
            lo: 0.0,
            width: 1.0,
            counts: vec![0; bins],
            above: 0,
            max: 0.0,
        };
    };
    let hi = match upper_quantile {
        Some(q) => {
            let rank = (q * sorted.len() as f64).ceil() as usize;
            sorted[rank.clamp(1, sorted.len()) - 1]
        }
        None => max,
    };
    let width = if hi > lo {
        (hi - lo) / bins as f64
    } else {
        1.0
    };
    let mut counts = vec![0u64; bins];
    let mut above = 0;
    for v in &sorted {
        if *v > hi {
            above += 1;
        }
        let at = ((v - lo) / width).floor();
        let at = if at < 0.0 {
            0
        } else {
            (at as usize).min(bins - 1)
        };
        counts[at] += 1;
    }
    Bins {
        lo,
        width,
        counts,
        above,
        max,
    }
}

/// Vertical bars of the counts per bin ([`binned`]).
pub(super) fn histogram(chart: &str, axis: &str, bins: &Bins) -> Result<String, ReportError> {
    let (lo, width, counts) = (bins.lo, bins.width, &bins.counts);
    let hi = lo + width * counts.len() as f64;
    let top = counts.iter().copied().max().unwrap_or(0).max(1) as f64 * 1.12;
    svg(chart, 340, |root| {
        let e = |e: DrawingAreaErrorKind<_>| e.to_string();
        let mut plot = ChartBuilder::on(root)
            .margin(12)
            .margin_right(24)
            .x_label_area_size(44)
            .y_label_area_size(64)
            .build_cartesian_2d(lo..hi, 0.0..top)
            .map_err(e)?;
        plot.configure_mesh()
            .disable_x_mesh()
            .max_light_lines(0)
            .bold_line_style(GRID)
            .x_labels(10)
            .y_labels(6)
            .x_label_formatter(&|x| number(*x))
            .y_label_formatter(&|y| number(y.round()))
            .x_desc(axis)
            .y_desc("count")
            .axis_desc_style((FONT, 13).into_font().color(&TEXT))
            .label_style((FONT, 12).into_font().color(&TEXT))
            .draw()
            .map_err(e)?;
        let last = counts.len() - 1;
        plot.draw_series(counts.iter().enumerate().map(|(i, count)| {
            let x0 = lo + width * i as f64;
            // The last bin holds the tail beyond the upper quantile: another shade.
            let color = if i == last && bins.above > 0 {
                PREVIOUS
            } else {
                CURRENT
            };
            let mut bar = Rectangle::new([(x0, 0.0), (x0 + width, *count as f64)], color.filled());
            bar.set_margin(0, 0, 1, 1);
            bar
        }))
        .map_err(e)?;
        Ok(())
    })
}

#[cfg(test)]
#[path = "draw_tests.rs"]
mod tests;
