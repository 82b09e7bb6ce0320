//! Charts as inline SVG strings, drawn with plotters' SVG backend.
//!
//! Every function here takes plain, already-derived data (milliseconds, seconds, counts) and
//! returns one `<svg>` element; deriving that data from results lives in [`crate::html`] and
//! [`crate::compare`]. Legends are not drawn into the SVG but written as HTML next to it
//! ([`legend_html`]): they stay readable at any width, and every element in a plot's SVG that
//! carries a [`PALETTE`] colour is then data — which is what the report tests check.
//!
//! No font is embedded or fetched: plotters' SVG backend emits `<text>` with a generic
//! `sans-serif` family, which the browser resolves locally.

use plotters::chart::MeshStyle;
use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::coord::Shift;
use plotters::prelude::*;

/// Series colours (Tableau 10). Axes, grid and text use black/grey only, never these.
pub const PALETTE: [RGBColor; 10] = [
    RGBColor(0x4E, 0x79, 0xA7),
    RGBColor(0xF2, 0x8E, 0x2B),
    RGBColor(0xE1, 0x57, 0x59),
    RGBColor(0x76, 0xB7, 0xB2),
    RGBColor(0x59, 0xA1, 0x4F),
    RGBColor(0xED, 0xC9, 0x48),
    RGBColor(0xB0, 0x7A, 0xA1),
    RGBColor(0xFF, 0x9D, 0xA7),
    RGBColor(0x9C, 0x75, 0x5F),
    RGBColor(0xBA, 0xB0, 0xAC),
];

/// Width of every chart in SVG units; the page scales it down to the viewport (CSS), so a
/// narrow window never scrolls sideways.
pub const WIDTH: u32 = 960;

pub fn color(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

/// `#RRGGBB`, as plotters writes it into the SVG.
pub fn hex(c: RGBColor) -> String {
    format!("#{:02X}{:02X}{:02X}", c.0, c.1, c.2)
}

/// One named line (or point set) of a chart.
#[derive(Debug, Clone)]
pub struct Series {
    pub label: String,
    pub color: RGBColor,
    pub points: Vec<(f64, f64)>,
}

/// A legend as HTML swatches, to sit under a chart.
pub fn legend_html(items: &[(String, RGBColor)]) -> String {
    let mut s = String::from("<ul class=\"legend\">");
    for (label, c) in items {
        s.push_str(&format!("<li><span class=\"swatch\" style=\"background:{}\"></span>{}</li>", hex(*c), crate::html::escape(label)));
    }
    s.push_str("</ul>");
    s
}

type PlotResult = Result<(), String>;

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// A chart on `root` over `x` × `y`, with the margin and x-label room every chart shares and
/// `y_label_width` px for its y labels.
#[allow(clippy::type_complexity)]
fn new_chart<'a, 'b, X: AsRangedCoord, Y: AsRangedCoord>(
    root: &'a DrawingArea<SVGBackend<'b>, Shift>,
    y_label_width: u32,
    x: X,
    y: Y,
) -> Result<ChartContext<'a, SVGBackend<'b>, Cartesian2d<X::CoordDescType, Y::CoordDescType>>, String> {
    ChartBuilder::on(root).margin(12).x_label_area_size(42).y_label_area_size(y_label_width).build_cartesian_2d(x, y).map_err(err)
}

/// Draws a chart's mesh, once the chart has configured its axes, in the style every chart
/// shares: faint grid lines, 13 px labels.
fn draw_mesh<X, Y>(mesh: &mut MeshStyle<'_, '_, X, Y, SVGBackend<'_>>) -> PlotResult
where
    X: Ranged + ValueFormatter<X::ValueType>,
    Y: Ranged + ValueFormatter<Y::ValueType>,
{
    mesh.light_line_style(BLACK.mix(0.05)).label_style(("sans-serif", 13)).draw().map_err(err)
}

/// Draw into a fresh SVG of `WIDTH × height` and return its text.
fn svg(height: u32, draw: impl FnOnce(&DrawingArea<SVGBackend<'_>, Shift>) -> PlotResult) -> Result<String, String> {
    let mut buf = String::new();
    {
        let root = SVGBackend::with_string(&mut buf, (WIDTH, height)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        draw(&root)?;
        root.present().map_err(err)?;
    }
    Ok(buf)
}

/// Axis label for a value in milliseconds: "850 µs", "12.3 ms", "1.25 s".
fn ms_label(v: &f64) -> String {
    crate::summary::fmt_us((v * 1000.0).round().max(0.0) as u64)
}

/// Log-axis label: only at 1, 2 and 5 × 10^k, so ticks packed at the top of a decade do not
/// print on top of each other.
fn log_ms_label(v: &f64) -> String {
    if *v <= 0.0 {
        return String::new();
    }
    let mantissa = v / 10f64.powf(v.log10().floor());
    if [1.0, 2.0, 5.0, 10.0].iter().any(|m| (mantissa - m).abs() < 0.02 * m) {
        ms_label(v)
    } else {
        String::new()
    }
}

fn positive_range(series: &[Series]) -> (f64, f64) {
    let xs = series.iter().flat_map(|s| s.points.iter().map(|p| p.0)).filter(|x| *x > 0.0);
    let (lo, hi) = xs.fold((f64::MAX, f64::MIN), |(lo, hi), x| (lo.min(x), hi.max(x)));
    if lo > hi {
        return (0.001, 1.0);
    }
    // Pad by a fraction of a decade so the first and last steps are not glued to the frame.
    (lo / 1.3, (hi * 1.3).max(lo * 10.0))
}

/// Cumulative distributions on a log time axis (ms). Points are (value ms, fraction ≤ value)
/// and are drawn as steps, which is what a CDF of bucketed data is.
pub fn cdf_chart(x_desc: &str, series: &[Series]) -> Result<String, String> {
    let (lo, hi) = positive_range(series);
    svg(360, |root| {
        let mut chart = new_chart(root, 56, (lo..hi).log_scale(), 0f64..1.02f64)?;
        draw_mesh(
            chart
                .configure_mesh()
                .x_desc(x_desc)
                .y_desc("fraction ≤ x")
                .x_label_formatter(&log_ms_label)
                .y_label_formatter(&|v| format!("{:.0}%", v * 100.0)),
        )?;
        for s in series {
            let mut steps = Vec::with_capacity(s.points.len() * 2 + 1);
            let mut prev = 0.0;
            for &(x, y) in &s.points {
                let x = x.max(lo);
                steps.push((x, prev));
                steps.push((x, y));
                prev = y;
            }
            chart.draw_series(LineSeries::new(steps, s.color.stroke_width(2))).map_err(err)?;
        }
        Ok(())
    })
}

/// One instance's row in the timeline: launch (requested → ready) and life (ready → end), ms.
#[derive(Debug, Clone)]
pub struct TimelineRow {
    pub requested_ms: f64,
    /// None: never became ready (the launch bar then runs to `end_ms` in the failure colour).
    pub ready_ms: Option<f64>,
    pub end_ms: f64,
    /// Colours of the launch and the life bars.
    pub launch: RGBColor,
    pub life: RGBColor,
}

/// Every instance as one thin row, top to bottom in the order given.
pub fn timeline_chart(rows: &[TimelineRow], x_desc: &str, y_desc: &str) -> Result<String, String> {
    let n = rows.len().max(1);
    let x_max = rows.iter().map(|r| r.end_ms.max(r.ready_ms.unwrap_or(0.0))).fold(1.0, f64::max) * 1.02;
    // About 1 px per row, never shorter than a normal chart, never absurdly tall.
    let height = (n as u32).clamp(240, 1200) + 70;
    svg(height, |root| {
        let mut chart = new_chart(root, 56, 0f64..x_max, 0f64..n as f64)?;
        draw_mesh(
            chart
                .configure_mesh()
                .disable_y_mesh()
                .y_labels(0)
                .x_desc(x_desc)
                .y_desc(y_desc)
                .x_label_formatter(&ms_label),
        )?;
        let top = n as f64;
        let bars = rows.iter().enumerate().flat_map(|(i, r)| {
            let (y0, y1) = (top - i as f64 - 1.0, top - i as f64);
            let launch_end = r.ready_ms.unwrap_or(r.end_ms);
            let launch = Rectangle::new([(r.requested_ms, y0), (launch_end.max(r.requested_ms), y1)], r.launch.filled());
            let life = r.ready_ms.map(|ready| Rectangle::new([(ready, y0), (r.end_ms.max(ready), y1)], r.life.filled()));
            std::iter::once(launch).chain(life)
        });
        chart.draw_series(bars).map_err(err)?;
        Ok(())
    })
}

/// Lines over a linear x axis (time in s, or a count); `areas` are filled down to zero.
/// `x_max`: right end of the axis (so charts over the same run line up); None fits the data.
pub fn line_chart(x_desc: &str, y_desc: &str, series: &[Series], areas: bool, x_max: Option<f64>) -> Result<String, String> {
    let pts = || series.iter().flat_map(|s| s.points.iter());
    let x_max = x_max.unwrap_or_else(|| pts().map(|p| p.0).fold(0.0, f64::max)).max(1e-3);
    let x_min = pts().map(|p| p.0).fold(f64::MAX, f64::min).min(0.0);
    let y_max = pts().map(|p| p.1).fold(0.0, f64::max).max(1.0) * 1.1;
    svg(300, |root| {
        let mut chart = new_chart(root, 56, x_min..x_max, 0f64..y_max)?;
        draw_mesh(chart.configure_mesh().x_desc(x_desc).y_desc(y_desc))?;
        for s in series {
            if areas {
                chart
                    .draw_series(AreaSeries::new(s.points.iter().copied(), 0.0, s.color.mix(0.25)).border_style(s.color.stroke_width(2)))
                    .map_err(err)?;
            } else {
                chart.draw_series(LineSeries::new(s.points.iter().copied(), s.color.stroke_width(2))).map_err(err)?;
            }
        }
        Ok(())
    })
}

/// Points (x, y ms) per series, plus optional lines (e.g. the median curve) on top.
pub fn scatter_chart(x_desc: &str, y_desc: &str, points: &[Series], lines: &[Series]) -> Result<String, String> {
    let all = || points.iter().chain(lines).flat_map(|s| s.points.iter());
    let x_max = all().map(|p| p.0).fold(0.0, f64::max).max(1.0) * 1.05;
    let y_max = all().map(|p| p.1).fold(0.0, f64::max).max(0.001) * 1.1;
    svg(360, |root| {
        let mut chart = new_chart(root, 72, -0.5f64..x_max, 0f64..y_max)?;
        draw_mesh(chart.configure_mesh().x_desc(x_desc).y_desc(y_desc).y_label_formatter(&ms_label))?;
        for s in points {
            let c = s.color;
            chart.draw_series(s.points.iter().map(|&p| Circle::new(p, 3, c.mix(0.6).filled()))).map_err(err)?;
        }
        for s in lines {
            chart.draw_series(LineSeries::new(s.points.iter().copied(), s.color.stroke_width(2))).map_err(err)?;
        }
        Ok(())
    })
}

/// One horizontal bar made of coloured segments (ms), with its label on the y axis.
#[derive(Debug, Clone)]
pub struct StackedBar {
    pub label: String,
    pub segments: Vec<(f64, RGBColor)>,
}

/// Horizontal stacked bars, first bar at the top.
pub fn bar_chart(x_desc: &str, bars: &[StackedBar]) -> Result<String, String> {
    let n = bars.len().max(1);
    let x_max = bars.iter().map(|b| b.segments.iter().map(|s| s.0).sum::<f64>()).fold(0.001, f64::max) * 1.05;
    let labels: Vec<String> = bars.iter().map(|b| b.label.clone()).collect();
    let label_of = move |v: &f64| {
        // Row i is centred on y = n-1-i; ticks between rows get no label.
        let r = v.round();
        if (v - r).abs() > 0.01 || r < 0.0 {
            return String::new();
        }
        labels.get(n - 1 - (r as usize).min(n - 1)).cloned().unwrap_or_default()
    };
    let longest = bars.iter().map(|b| b.label.chars().count()).max().unwrap_or(4) as u32;
    svg(60 + 40 * n as u32 + 40, |root| {
        let mut chart = new_chart(root, (longest * 7 + 16).clamp(60, 360), 0f64..x_max, -0.5f64..n as f64 - 0.5)?;
        draw_mesh(
            chart
                .configure_mesh()
                .disable_y_mesh()
                .y_labels(n * 2 + 1)
                .y_label_formatter(&label_of)
                .x_desc(x_desc)
                .x_label_formatter(&ms_label),
        )?;
        let rects = bars.iter().enumerate().flat_map(|(i, b)| {
            let y = (n - 1 - i) as f64;
            let mut x = 0.0;
            b.segments
                .iter()
                .filter(|s| s.0 > 0.0)
                .map(move |&(w, c)| {
                    let r = Rectangle::new([(x, y - 0.32), (x + w, y + 0.32)], c.filled());
                    x += w;
                    r
                })
                .collect::<Vec<_>>()
        });
        chart.draw_series(rects).map_err(err)?;
        Ok(())
    })
}

/// One point of a [`BandSeries`]: the median of a sweep point's repeats and their range.
#[derive(Debug, Clone, Copy)]
pub struct BandPoint {
    pub x: f64,
    pub median: f64,
    pub min: f64,
    pub max: f64,
    /// Drawn filled when the point differs from its reference beyond the spread, hollow when not.
    pub significant: bool,
}

/// A series of a sweep chart: a median line inside a min–max band.
#[derive(Debug, Clone)]
pub struct BandSeries {
    pub label: String,
    pub color: RGBColor,
    pub points: Vec<BandPoint>,
}

/// Medians as lines with markers, each series inside its translucent min–max band. `x_ticks`
/// are the swept values and where they sit on the x axis; only they get tick labels.
pub fn band_chart(
    x_desc: &str,
    y_desc: &str,
    x_ticks: &[(String, f64)],
    series: &[BandSeries],
) -> Result<String, String> {
    let xs = || x_ticks.iter().map(|t| t.1);
    let (x_lo, x_hi) = (xs().fold(f64::MAX, f64::min), xs().fold(f64::MIN, f64::max));
    let pad = ((x_hi - x_lo) * 0.06).max(0.3);
    let y_max =
        series.iter().flat_map(|s| s.points.iter().map(|p| p.max)).filter(|v| v.is_finite()).fold(0.0, f64::max);
    let y_max = if y_max > 0.0 { y_max * 1.12 } else { 1.0 };
    svg(320, |root| {
        let mut chart = new_chart(root, 64, (x_lo - pad)..(x_hi + pad), 0f64..y_max)?;
        draw_mesh(
            chart
                .configure_mesh()
                .x_desc(x_desc)
                .y_desc(y_desc)
                // The swept values are the only x ticks worth a label: drawn below, one per value.
                .x_labels(0)
                .disable_x_mesh(),
        )?;
        for s in series {
            let c = s.color;
            let mut band: Vec<(f64, f64)> = s.points.iter().map(|p| (p.x, p.max)).collect();
            band.extend(s.points.iter().rev().map(|p| (p.x, p.min)));
            if s.points.len() > 1 {
                chart.draw_series(std::iter::once(Polygon::new(band, c.mix(0.18).filled()))).map_err(err)?;
            }
            // Each point's own range as a whisker: the band of a single point is a line.
            chart
                .draw_series(
                    s.points
                        .iter()
                        .map(|p| PathElement::new(vec![(p.x, p.min), (p.x, p.max)], c.mix(0.7).stroke_width(1))),
                )
                .map_err(err)?;
            chart
                .draw_series(LineSeries::new(s.points.iter().map(|p| (p.x, p.median)), c.stroke_width(2)))
                .map_err(err)?;
            chart
                .draw_series(s.points.iter().map(|p| {
                    let style = if p.significant { c.filled() } else { WHITE.filled() };
                    Circle::new((p.x, p.median), 4, style)
                }))
                .map_err(err)?;
            chart
                .draw_series(
                    s.points
                        .iter()
                        .filter(|p| !p.significant)
                        .map(|p| Circle::new((p.x, p.median), 4, c.stroke_width(2))),
                )
                .map_err(err)?;
        }
        for (label, x) in x_ticks {
            let (px, py) = chart.backend_coord(&(*x, 0.0));
            let width = 7 * label.chars().count() as i32;
            root.draw(&PathElement::new(vec![(px, py), (px, py + 5)], BLACK.stroke_width(1))).map_err(err)?;
            root.draw(&Text::new(label.clone(), (px - width / 2, py + 8), ("sans-serif", 13).into_font().color(&BLACK))).map_err(err)?;
        }
        Ok(())
    })
}
