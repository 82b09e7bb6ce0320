//! A sweep's files: `sweep.json` (the plan and every run's state and figures — what
//! `stampede sweep --resume` continues from), `sweep.csv` (one row per point: median and
//! spread over its repeats) and `sweep.html` (the curves, with the repeats' min–max band).
//!
//! Everything here is a pure function of [`Sweep`], which the binary keeps up to date after
//! every run; running the points is the binary's business (`crates/stampede/src/cmd/sweep.rs`).
//!
//! Significance: a point's median is compared with a *reference* — the first series at the
//! same x (for every later series), or the first point of the first series (along that series).
//! When the two points' min–max ranges over their repeats overlap, the difference is within the
//! spread of the repeats and is flagged not significant: `sweep.csv` says `false` in the
//! metric's `_significant` column, `sweep.html` draws the point hollow and marks its cell `≈`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use plotters::style::RGBColor;
use serde::{Deserialize, Serialize};
use stampede_core::measure::{names as metric, InstanceRecord, Outcome, Role};
use stampede_core::results::Results;

use crate::html::{escape, figure, page};
use crate::plot::{self, color};
use crate::ReportError;

pub const SWEEP_SCHEMA_VERSION: u32 = 1;

/// File names inside a sweep folder.
pub mod names {
    pub const SWEEP_JSON: &str = "sweep.json";
    pub const SWEEP_CSV: &str = "sweep.csv";
    pub const SWEEP_HTML: &str = "sweep.html";
    /// Each point's scenario file, as run.
    pub const POINTS_DIR: &str = "points";
    /// Each run's results folder.
    pub const RUNS_DIR: &str = "runs";
}

/// The whole sweep: its plan, and what happened so far. Serialised as `sweep.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sweep {
    pub schema_version: u32,
    pub name: String,
    /// The scenario file the points were made from.
    pub scenario_file: PathBuf,
    pub axes: Vec<Axis>,
    /// The field plotted along x (one of `axes`); every other axis makes series.
    pub x_axis: Option<String>,
    pub repeat: u32,
    /// Arguments every run gets besides its scenario and folder (e.g. `--image`).
    pub run_args: Vec<String>,
    pub points: Vec<Point>,
    /// Every run, in the order they run (interleaved: repeat 0 of every point, then repeat 1 …).
    pub runs: Vec<Run>,
    pub status: SweepStatus,
    pub command_line: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Axis {
    /// A field of the first group (`start_concurrency`, `docker.network`), or of the file's top
    /// level (`run.start_rate.qps`, `seed`).
    pub field: String,
    /// The values as the user wrote them (display form: strings without quotes).
    pub values: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Point {
    pub index: u32,
    /// field → value (display form), in axis order.
    pub settings: Vec<(String, String)>,
    /// The point's scenario file, relative to the sweep folder.
    pub file: PathBuf,
}

impl Point {
    pub fn label(&self) -> String {
        if self.settings.is_empty() {
            return "(base)".to_owned();
        }
        self.settings.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(" ")
    }
    pub fn value_of(&self, field: &str) -> Option<&str> {
        self.settings.iter().find(|(k, _)| k == field).map(|(_, v)| v.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SweepStatus {
    Running,
    Complete,
    Interrupted,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Not run yet (or interrupted and to be run again on `--resume`).
    Pending,
    /// Exit 0: everything done.
    Ok,
    /// Exit 1: finished, but something failed (counted in its failure rate; figures kept).
    Failed,
    /// No usable results: invalid input, runtime unusable, crash (exit 2, 3, …).
    Error,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Run {
    pub point: u32,
    pub repeat: u32,
    /// The run's results folder, relative to the sweep folder.
    pub dir: PathBuf,
    pub status: RunStatus,
    pub exit_code: Option<i32>,
    pub run_id: Option<String>,
    /// Wall time of the whole `stampede run`, seconds.
    pub wall_s: Option<f64>,
    pub figures: Option<Figures>,
    /// Why a run has no figures.
    pub error: Option<String>,
}

/// The key figures of one run, the unit a sweep aggregates.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Figures {
    pub start_latency_p50_ms: f64,
    pub start_latency_p99_ms: f64,
    /// Actions that became ready / (last ready − first requested).
    pub starts_per_second: f64,
    /// Ideal N·M / actual duration.
    pub efficiency: f64,
    /// Planned requests that were not answered ok (failed, timed out, or never sent because
    /// their instance failed), as a fraction of the planned ones.
    pub failure_rate: f64,
}

/// The figures a sweep plots, in order: (key in Figures, title, unit).
pub const FIGURES: [(&str, &str, &str); 5] = [
    ("start_latency_p50_ms", "start latency p50", "ms"),
    ("start_latency_p99_ms", "start latency p99", "ms"),
    ("starts_per_second", "starts per second", "1/s"),
    ("efficiency", "efficiency", "ideal/actual"),
    ("failure_rate", "failure rate", "fraction"),
];

impl Figures {
    pub fn get(&self, key: &str) -> f64 {
        match key {
            "start_latency_p50_ms" => self.start_latency_p50_ms,
            "start_latency_p99_ms" => self.start_latency_p99_ms,
            "starts_per_second" => self.starts_per_second,
            "efficiency" => self.efficiency,
            "failure_rate" => self.failure_rate,
            other => panic!("unknown sweep figure {other}"),
        }
    }

    /// The figures of one finished run.
    pub fn of(results: &Results, instances: &[InstanceRecord]) -> Figures {
        let start = results.metrics.get(metric::START_LATENCY);
        let ms = |v: Option<u64>| v.map(|us| us as f64 / 1000.0).unwrap_or(f64::NAN);
        let actions = instances.iter().filter(|r| r.role == Some(Role::Action));
        let ready: Vec<i64> =
            actions.clone().filter(|r| r.outcome == Outcome::Ready).filter_map(|r| r.ready_us).collect();
        let first = actions.filter_map(|r| r.requested_us).min();
        let starts_per_second = match (first, ready.iter().max()) {
            (Some(a), Some(b)) if *b > a => ready.len() as f64 / ((b - a) as f64 / 1e6),
            _ => 0.0,
        };
        let a = &results.accounting;
        let failure_rate = if a.requests_planned == 0 {
            if a.instances_failed > 0 {
                1.0
            } else {
                0.0
            }
        } else {
            1.0 - a.requests_ok as f64 / a.requests_planned as f64
        };
        Figures {
            start_latency_p50_ms: ms(start.map(|s| s.p50_us)),
            start_latency_p99_ms: ms(start.map(|s| s.p99_us)),
            starts_per_second,
            efficiency: results.efficiency.ratio,
            failure_rate,
        }
    }
}

impl Sweep {
    pub fn load(dir: &Path) -> Result<Sweep, ReportError> {
        let path = dir.join(names::SWEEP_JSON);
        let text = std::fs::read_to_string(&path).map_err(|source| ReportError::Read { path: path.clone(), source })?;
        serde_json::from_str(&text).map_err(|e| ReportError::Parse { path, reason: e.to_string() })
    }

    /// Write `sweep.json`, `sweep.csv` and `sweep.html` (each atomically).
    pub fn write_all(&self, dir: &Path) -> Result<(), ReportError> {
        crate::files::write_atomic(&dir.join(names::SWEEP_JSON), |w| {
            serde_json::to_writer_pretty(&mut *w, self).map_err(std::io::Error::other)?;
            std::io::Write::write_all(w, b"\n")
        })?;
        let summary = self.summarize();
        let csv = sweep_csv(self, &summary);
        crate::files::write_atomic(&dir.join(names::SWEEP_CSV), |w| std::io::Write::write_all(w, csv.as_bytes()))?;
        let html = render_sweep_html(self, &summary);
        crate::files::write_atomic(&dir.join(names::SWEEP_HTML), |w| std::io::Write::write_all(w, html.as_bytes()))
    }

    /// The series: one per combination of the non-x axes, in first-seen order; each holds its
    /// points in x order.
    pub fn series(&self) -> Vec<(String, Vec<u32>)> {
        let mut out: Vec<(String, Vec<u32>)> = Vec::new();
        for p in &self.points {
            let key = p
                .settings
                .iter()
                .filter(|(k, _)| Some(k) != self.x_axis.as_ref())
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(" ");
            let key = if key.is_empty() { self.name.clone() } else { key };
            match out.iter_mut().find(|(k, _)| *k == key) {
                Some((_, v)) => v.push(p.index),
                None => out.push((key, vec![p.index])),
            }
        }
        out
    }

    /// Median and spread of every figure per point, with the significance flags.
    pub fn summarize(&self) -> Vec<PointSummary> {
        let mut out: Vec<PointSummary> = self
            .points
            .iter()
            .map(|p| {
                let runs: Vec<&Run> = self.runs.iter().filter(|r| r.point == p.index).collect();
                let figs: Vec<Figures> = runs.iter().filter_map(|r| r.figures).collect();
                let mut stats = BTreeMap::new();
                for (key, _, _) in FIGURES {
                    let mut v: Vec<f64> = figs.iter().map(|f| f.get(key)).filter(|x| x.is_finite()).collect();
                    if v.is_empty() {
                        continue;
                    }
                    v.sort_by(f64::total_cmp);
                    let n = v.len();
                    let median = if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 };
                    stats.insert(
                        key.to_owned(),
                        Stat { median, min: v[0], max: v[n - 1], significant: None, ratio: None },
                    );
                }
                PointSummary {
                    point: p.index,
                    runs_done: runs.iter().filter(|r| r.status != RunStatus::Pending).count() as u32,
                    runs_with_figures: figs.len() as u32,
                    runs_error: runs.iter().filter(|r| r.status == RunStatus::Error).count() as u32,
                    stats,
                }
            })
            .collect();
        // Significance against the reference point (see the module docs).
        let series = self.series();
        for (si, (_, pts)) in series.iter().enumerate() {
            for (xi, &p) in pts.iter().enumerate() {
                let reference = if si > 0 {
                    series[0].1.get(xi).copied()
                } else if xi > 0 {
                    Some(pts[0])
                } else {
                    None
                };
                let Some(r) = reference else { continue };
                for (key, _, _) in FIGURES {
                    let (Some(a), Some(b)) =
                        (out[p as usize].stats.get(key).copied(), out[r as usize].stats.get(key).copied())
                    else {
                        continue;
                    };
                    let overlap = a.min <= b.max && b.min <= a.max;
                    let s = out[p as usize].stats.get_mut(key).expect("present");
                    s.significant = Some(!overlap);
                    s.ratio = (b.median != 0.0).then(|| a.median / b.median);
                }
            }
        }
        out
    }
}

#[derive(Debug, Clone)]
pub struct PointSummary {
    pub point: u32,
    pub runs_done: u32,
    pub runs_with_figures: u32,
    pub runs_error: u32,
    /// Per figure key; absent when no run of the point produced it.
    pub stats: BTreeMap<String, Stat>,
}

#[derive(Debug, Clone, Copy)]
pub struct Stat {
    pub median: f64,
    pub min: f64,
    pub max: f64,
    /// Whether the median differs from the reference point's by more than both spreads; None
    /// for a reference point (or when the reference has no data).
    pub significant: Option<bool>,
    /// median / the reference's median.
    pub ratio: Option<f64>,
}

fn num(v: f64) -> String {
    if v.is_finite() {
        format!("{}", (v * 10_000.0).round() / 10_000.0)
    } else {
        String::new()
    }
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

/// `sweep.csv`: one row per point — its settings, how many runs it has, and per figure the
/// median, min, max over the repeats, the ratio to its reference and whether the difference is
/// beyond the spread.
pub fn sweep_csv(sweep: &Sweep, summary: &[PointSummary]) -> String {
    let mut head: Vec<String> = vec!["point".into(), "label".into()];
    head.extend(sweep.axes.iter().map(|a| a.field.clone()));
    head.extend(["runs".into(), "runs_with_figures".into(), "runs_error".into()]);
    for (key, _, _) in FIGURES {
        for s in ["median", "min", "max", "ratio", "significant"] {
            head.push(format!("{key}_{s}"));
        }
    }
    let mut out = head.join(",") + "\n";
    for (p, s) in sweep.points.iter().zip(summary) {
        let mut row = vec![p.index.to_string(), csv_field(&p.label())];
        row.extend(sweep.axes.iter().map(|a| csv_field(p.value_of(&a.field).unwrap_or(""))));
        row.extend([s.runs_done.to_string(), s.runs_with_figures.to_string(), s.runs_error.to_string()]);
        for (key, _, _) in FIGURES {
            match s.stats.get(key) {
                Some(st) => row.extend([
                    num(st.median),
                    num(st.min),
                    num(st.max),
                    st.ratio.map(num).unwrap_or_default(),
                    st.significant.map(|b| b.to_string()).unwrap_or_default(),
                ]),
                None => row.extend(std::iter::repeat_n(String::new(), 5)),
            }
        }
        out.push_str(&row.join(","));
        out.push('\n');
    }
    out
}

/// Where each x value sits on the chart, and its tick label.
fn x_positions(sweep: &Sweep) -> (Vec<(String, f64)>, &'static str) {
    let values: Vec<String> = match sweep.x_axis.as_ref().and_then(|x| sweep.axes.iter().find(|a| &a.field == x)) {
        Some(a) => a.values.clone(),
        None => vec![String::new()],
    };
    let nums: Option<Vec<f64>> = values.iter().map(|v| v.parse::<f64>().ok()).collect();
    match nums {
        // Powers-of-two style sweeps (1, 2, 4, 8, 16) read best with each doubling one step.
        Some(n)
            if n.iter().all(|v| *v > 0.0)
                && n.iter().cloned().fold(0.0, f64::max) / n.iter().cloned().fold(f64::MAX, f64::min) >= 8.0 =>
        {
            (values.iter().cloned().zip(n.iter().map(|v| v.log2())).collect(), "log₂ scale")
        }
        Some(n) => (values.iter().cloned().zip(n).collect(), "linear"),
        None => (values.iter().cloned().enumerate().map(|(i, v)| (v, i as f64)).collect(), "categories"),
    }
}

/// `sweep.html`: one chart per figure, every series a median line inside its repeats' min–max
/// band; the point table; every run with a link to its report. Self-contained, like report.html.
pub fn render_sweep_html(sweep: &Sweep, summary: &[PointSummary]) -> String {
    let mut b = String::new();
    let runs_done = sweep.runs.iter().filter(|r| r.status != RunStatus::Pending).count();
    let _ = writeln!(
        b,
        "<h1>stampede sweep · {}</h1><p class=\"meta\">{} points × {} repeats · {} of {} runs done · status {:?} · scenario <code>{}</code></p>",
        escape(&sweep.name),
        sweep.points.len(),
        sweep.repeat,
        runs_done,
        sweep.runs.len(),
        sweep.status,
        escape(&sweep.scenario_file.display().to_string()),
    );
    b.push_str(
        "<p>Each line is one series (a combination of the non-x settings) through the median of its repeats; the shaded \
band spans the repeats' minimum to maximum. A hollow marker (and <b>≈</b> in the table) means the point's range overlaps \
its reference's — the first series at the same x, or, along the first series, its first point — so the difference is \
within the run-to-run spread and not significant.</p>\n",
    );
    let (xs, scale) = x_positions(sweep);
    let x_desc = match &sweep.x_axis {
        Some(x) => format!("{x} ({scale})"),
        None => "point".to_owned(),
    };
    let series = sweep.series();
    let legend: Vec<(String, RGBColor)> = series.iter().enumerate().map(|(i, (k, _))| (k.clone(), color(i))).collect();
    let pos_of = |p: &Point| -> f64 {
        let v = sweep.x_axis.as_ref().and_then(|x| p.value_of(x)).unwrap_or("");
        xs.iter().find(|(l, _)| l == v).map(|(_, x)| *x).unwrap_or(0.0)
    };
    for (key, title, unit) in FIGURES {
        let bands: Vec<plot::BandSeries> = series
            .iter()
            .enumerate()
            .map(|(i, (label, pts))| plot::BandSeries {
                label: label.clone(),
                color: color(i),
                points: pts
                    .iter()
                    .filter_map(|&p| {
                        let st = summary[p as usize].stats.get(key)?;
                        Some(plot::BandPoint {
                            x: pos_of(&sweep.points[p as usize]),
                            median: st.median,
                            min: st.min,
                            max: st.max,
                            significant: st.significant.unwrap_or(true),
                        })
                    })
                    .collect(),
            })
            .collect();
        let has_data = bands.iter().any(|s| !s.points.is_empty());
        let chart = has_data.then(|| plot::band_chart(&x_desc, &format!("{title} ({unit})"), &xs, &bands));
        let id = key.replace('_', "-");
        b.push_str(&figure(&id, title, &format!("median of the repeats, band = min–max; {unit}"), chart, &legend));
    }

    b.push_str("<h2>Points</h2><table><tr><th>point</th><th>runs</th>");
    for (_, title, unit) in FIGURES {
        let _ = write!(b, "<th>{} ({})</th>", escape(title), escape(unit));
    }
    b.push_str("</tr>");
    for (p, s) in sweep.points.iter().zip(summary) {
        let _ = write!(b, "<tr><td>{}</td><td>{}/{}</td>", escape(&p.label()), s.runs_with_figures, sweep.repeat);
        for (key, _, _) in FIGURES {
            match s.stats.get(key) {
                Some(st) => {
                    let mark = match (st.significant, st.ratio) {
                        (Some(false), _) => {
                            " <b title=\"within the repeats' spread: not significant\">≈</b>".to_owned()
                        }
                        (Some(true), Some(r)) => format!(" <span class=\"meta\">×{r:.2}</span>"),
                        _ => String::new(),
                    };
                    let _ = write!(
                        b,
                        "<td>{} <span class=\"meta\">[{}–{}]</span>{mark}</td>",
                        num3(st.median),
                        num3(st.min),
                        num3(st.max)
                    );
                }
                None => b.push_str("<td class=\"few\">—</td>"),
            }
        }
        b.push_str("</tr>");
    }
    b.push_str("</table>\n<h2>Runs</h2><table><tr><th>run</th><th>point</th><th>repeat</th><th>status</th><th>exit</th><th>wall</th></tr>");
    for r in &sweep.runs {
        let dir = r.dir.display().to_string();
        let link = if r.status == RunStatus::Pending {
            escape(&dir)
        } else {
            format!("<a href=\"{0}/report.html\">{0}</a>", escape(&dir))
        };
        let _ = write!(
            b,
            "<tr><td>{link}</td><td>{}</td><td>{}</td><td>{:?}{}</td><td>{}</td><td>{}</td></tr>",
            escape(&sweep.points.get(r.point as usize).map(Point::label).unwrap_or_default()),
            r.repeat,
            r.status,
            r.error.as_deref().map(|e| format!(": {}", escape(e))).unwrap_or_default(),
            r.exit_code.map(|c| c.to_string()).unwrap_or_default(),
            r.wall_s.map(|s| format!("{s:.1} s")).unwrap_or_default(),
        );
    }
    b.push_str("</table>\n<h2>Configuration</h2><pre>");
    b.push_str(&escape(&sweep.command_line.join(" ")));
    b.push('\n');
    for a in &sweep.axes {
        let _ = writeln!(b, "{} = {}", escape(&a.field), escape(&a.values.join(", ")));
    }
    b.push_str("</pre>\n");
    page(&format!("stampede sweep · {}", sweep.name), &b)
}

fn num3(v: f64) -> String {
    if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else if v.abs() >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn figs(p50: f64) -> Figures {
        Figures {
            start_latency_p50_ms: p50,
            start_latency_p99_ms: p50 * 2.0,
            starts_per_second: 10.0,
            efficiency: 0.5,
            failure_rate: 0.0,
        }
    }

    fn sweep() -> Sweep {
        let axes = vec![
            Axis { field: "runtime".into(), values: vec!["process".into(), "docker".into()] },
            Axis { field: "start_concurrency".into(), values: vec!["1".into(), "8".into()] },
        ];
        let mut points = Vec::new();
        for r in ["process", "docker"] {
            for c in ["1", "8"] {
                let index = points.len() as u32;
                points.push(Point {
                    index,
                    settings: vec![("runtime".into(), r.into()), ("start_concurrency".into(), c.into())],
                    file: format!("points/p{index}.toml").into(),
                });
            }
        }
        // process: 10±1 at both x (not significant along x); docker: 50±1 and 11±1.
        let p50 = [[9.0, 10.0, 11.0], [9.5, 10.0, 10.5], [49.0, 50.0, 51.0], [10.0, 11.0, 12.0]];
        let runs = (0..3)
            .flat_map(|r| {
                (0..4u32).map(move |p| Run {
                    point: p,
                    repeat: r,
                    dir: format!("runs/p{p}-r{r}").into(),
                    status: RunStatus::Ok,
                    exit_code: Some(0),
                    run_id: None,
                    wall_s: Some(1.0),
                    figures: Some(figs(p50[p as usize][r as usize])),
                    error: None,
                })
            })
            .collect();
        Sweep {
            schema_version: SWEEP_SCHEMA_VERSION,
            name: "t".into(),
            scenario_file: "t.toml".into(),
            axes,
            x_axis: Some("start_concurrency".into()),
            repeat: 3,
            run_args: vec![],
            points,
            runs,
            status: SweepStatus::Complete,
            command_line: vec![],
        }
    }

    #[test]
    fn medians_spreads_and_significance() {
        let s = sweep();
        let series = s.series();
        assert_eq!(series, vec![("runtime=process".to_owned(), vec![0, 1]), ("runtime=docker".to_owned(), vec![2, 3])]);
        let sum = s.summarize();
        let p50 = |p: usize| sum[p].stats["start_latency_p50_ms"];
        assert_eq!((p50(0).median, p50(0).min, p50(0).max), (10.0, 9.0, 11.0));
        assert_eq!(p50(0).significant, None, "the first point is everyone's reference");
        assert_eq!(p50(1).significant, Some(false), "9.5–10.5 overlaps 9–11");
        assert_eq!(p50(2).significant, Some(true), "49–51 vs 9–11");
        assert_eq!(p50(2).ratio, Some(5.0));
        assert_eq!(p50(3).significant, Some(false), "10–12 overlaps 9.5–10.5 (first series, same x)");
        let csv = sweep_csv(&s, &sum);
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines.len(), 5);
        assert!(lines[0].starts_with("point,label,runtime,start_concurrency,runs,"));
        assert!(lines[3].contains(",50,49,51,5,true,"), "{}", lines[3]);
    }

    #[test]
    fn html_draws_a_band_per_series() {
        let s = sweep();
        let html = render_sweep_html(&s, &s.summarize());
        for (key, _, _) in FIGURES {
            assert!(html.contains(&format!("id=\"plot-{}\"", key.replace('_', "-"))), "{key}");
        }
        assert!(!html.contains("plot empty"));
        assert!(html.contains("≈"));
        assert!(!html.contains("<script"));
    }
}
