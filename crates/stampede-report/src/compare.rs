//! `stampede compare`: several results folders side by side — in the terminal
//! ([`compare_text`]) and as `compare.html` with overlaid CDFs ([`render_compare_html`]).
//!
//! The first run is the baseline; every other value is also shown as a ratio to it (`2.31×`),
//! which is the form "process vs Docker vs Swarm" or "bridge vs host" questions are asked in.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use stampede_core::results::Results;
use stampede_core::stats::{Metrics, Summary};

use crate::html::{cdf_ms, escape, figure, page};
use crate::plot::{self, color, Series};
use crate::summary::{fmt_us, ordered};
use crate::ReportError;

/// One results folder taking part in a comparison.
#[derive(Debug, Clone)]
pub struct ComparedRun {
    /// Short name for column headers and legends (the folder's name unless given).
    pub label: String,
    pub dir: PathBuf,
    pub results: Results,
}

impl ComparedRun {
    pub fn load(dir: &Path) -> Result<Self, ReportError> {
        let results = crate::load_results(dir)?;
        let label = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| dir.display().to_string());
        Ok(ComparedRun { label, dir: dir.to_owned(), results })
    }

    /// Runtimes of its groups ("process", "docker", "swarm+docker actions").
    pub fn runtimes(&self) -> String {
        let set: BTreeSet<String> = self
            .results
            .groups
            .iter()
            .map(|g| if g.runtime == g.action_runtime { g.runtime.clone() } else { format!("{}/{}", g.runtime, g.action_runtime) })
            .collect();
        if set.is_empty() {
            self.results.scenario.groups.iter().map(|g| g.runtime.to_string()).collect::<BTreeSet<_>>().into_iter().collect::<Vec<_>>().join(",")
        } else {
            set.into_iter().collect::<Vec<_>>().join(",")
        }
    }
}

/// `1.00×`, `2.31×`; `–` when the baseline is zero (no ratio to speak of).
pub fn ratio(value: f64, baseline: f64) -> String {
    let r = value / baseline;
    if baseline <= 0.0 {
        "–".to_owned()
    } else if r >= 100.0 {
        // Past 100× the decimals are noise and would overflow the column.
        format!("{r:.0}×")
    } else {
        format!("{r:.2}×")
    }
}

/// The status as results.json spells it ("complete", "interrupted", …).
fn status(r: &Results) -> String {
    serde_json::to_value(r.run.status).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
}

/// A statistic of a summary, by name.
type Stat = (&'static str, fn(&Summary) -> u64);

const STATS: [Stat; 4] =
    [("p50", |s| s.p50_us), ("p90", |s| s.p90_us), ("p99", |s| s.p99_us), ("max", |s| s.max_us)];

/// Every action metric any run has, in display order.
fn metric_names(runs: &[ComparedRun]) -> Vec<String> {
    let all: BTreeSet<String> = runs.iter().flat_map(|r| r.results.metrics.keys().cloned()).collect();
    let v: Vec<String> = all.into_iter().collect();
    ordered(v.iter(), &[]).into_iter().cloned().collect()
}

/// Rows of the comparison: (metric, stat, value per run as (µs or count, formatted)).
type Row = (String, String, Vec<Option<(f64, String)>>);

fn rows(runs: &[ComparedRun]) -> Vec<Row> {
    let mut out: Vec<Row> = Vec::new();
    let per_run = |f: &dyn Fn(&Results) -> Option<(f64, String)>| runs.iter().map(|r| f(&r.results)).collect::<Vec<_>>();
    out.push(("duration".into(), "".into(), per_run(&|r| Some((r.run.duration_us as f64, fmt_us(r.run.duration_us))))));
    out.push(("efficiency".into(), "ideal/actual".into(), per_run(&|r| Some((r.efficiency.ratio, format!("{:.2}", r.efficiency.ratio))))));
    out.push((
        "instances".into(),
        "ready/requested".into(),
        per_run(&|r| Some((r.accounting.instances_ready as f64, format!("{}/{}", r.accounting.instances_ready, r.accounting.instances_requested)))),
    ));
    out.push((
        "requests".into(),
        "ok/sent".into(),
        per_run(&|r| Some((r.accounting.requests_ok as f64, format!("{}/{}", r.accounting.requests_ok, r.accounting.requests_sent)))),
    ));
    for name in metric_names(runs) {
        for (i, (stat, get)) in STATS.iter().enumerate() {
            let vals = per_run(&|r| r.metrics.get(&name).map(|s| (get(s) as f64, fmt_us(get(s)))));
            out.push((if i == 0 { name.clone() } else { String::new() }, (*stat).to_owned(), vals));
        }
    }
    out
}

fn cell(v: &Option<(f64, String)>, base: &Option<(f64, String)>, first: bool) -> (String, String) {
    match (v, base) {
        (None, _) => ("–".into(), String::new()),
        (Some((_, s)), _) if first => (s.clone(), String::new()),
        (Some((x, s)), Some((b, _))) => (s.clone(), ratio(*x, *b)),
        (Some((_, s)), None) => (s.clone(), String::new()),
    }
}

/// The terminal table: one column per run, ratios to the first run.
pub fn compare_text(runs: &[ComparedRun]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "stampede compare · ratios are to run A");
    for (i, r) in runs.iter().enumerate() {
        let g = r.results.scenario.groups.first();
        let _ = writeln!(
            out,
            "  {}  {}  ({} · {} · {}{})",
            column_name(i),
            r.dir.display(),
            r.results.run.id,
            r.runtimes(),
            status(&r.results),
            g.map(|g| format!(" · S={} A={} N={}", g.scenarios, g.actions, g.requests)).unwrap_or_default(),
        );
    }
    let _ = writeln!(out);
    let rows = rows(runs);
    // The name column fits the longest metric name, so long phase names never run into the stat.
    let w = rows.iter().map(|(m, _, _)| m.len() + 2).max().unwrap_or(0).max(20);
    let _ = write!(out, "  {:<w$}{:<16}", "metric", "");
    for i in 0..runs.len() {
        let _ = write!(out, "{:>12}{:>9}", column_name(i), "");
    }
    let _ = writeln!(out);
    for (metric, stat, vals) in rows {
        let _ = write!(out, "  {metric:<w$}{stat:<16}");
        for (i, v) in vals.iter().enumerate() {
            let (s, r) = cell(v, &vals[0], i == 0);
            let _ = write!(out, "{s:>12}{r:>9}");
        }
        let _ = writeln!(out);
    }
    for (i, r) in runs.iter().enumerate() {
        for w in &r.results.warnings {
            let _ = writeln!(out, "  warning ({}): {}", column_name(i), w.message);
        }
    }
    out
}

/// A, B, …, Z, AA, …: short column names that fit a terminal.
fn column_name(i: usize) -> String {
    let mut s = String::new();
    let mut n = i + 1;
    while n > 0 {
        n -= 1;
        s.insert(0, (b'A' + (n % 26) as u8) as char);
        n /= 26;
    }
    s
}

/// Metrics whose distributions are overlaid, when present in any run.
const OVERLAID_FIRST: &[&str] = &["start_latency", "request_rtt", "request_rtt_cold", "request_rtt_warm", "overhead"];

pub fn render_compare_html(runs: &[ComparedRun]) -> Result<String, ReportError> {
    let mut hists = Vec::new();
    for r in runs {
        hists.push(Metrics::from_wire(&r.results.histograms).map_err(|e| ReportError::Parse {
            path: r.dir.join(crate::names::RESULTS_JSON),
            reason: e.to_string(),
        })?);
    }
    let mut b = String::from("<h1>stampede compare</h1>\n<table><tr><th>run</th><th>folder</th><th>id</th><th>runtime</th><th>status</th><th>S·A·N</th></tr>");
    for (i, r) in runs.iter().enumerate() {
        let g = r.results.scenario.groups.first();
        let _ = write!(
            b,
            "<tr><td><span class=\"swatch\" style=\"background:{}\"></span>{} {}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            plot::hex(color(i)),
            column_name(i),
            escape(&r.label),
            escape(&r.dir.display().to_string()),
            escape(&r.results.run.id),
            escape(&r.runtimes()),
            status(&r.results),
            g.map(|g| format!("{}·{}·{}", g.scenarios, g.actions, g.requests)).unwrap_or_default(),
        );
    }
    b.push_str("</table>\n<h2>Side by side</h2>\n<p class=\"meta\">ratios are to run A (the first folder given).</p>\n<table><tr><th>metric</th><th></th>");
    for i in 0..runs.len() {
        let _ = write!(b, "<th>{}</th>", column_name(i));
    }
    b.push_str("</tr>");
    for (metric, stat, vals) in rows(runs) {
        let _ = write!(b, "<tr><td>{}</td><td>{}</td>", escape(&metric), escape(&stat));
        for (i, v) in vals.iter().enumerate() {
            let (s, r) = cell(v, &vals[0], i == 0);
            let _ = write!(b, "<td>{}{}</td>", escape(&s), if r.is_empty() { String::new() } else { format!(" <small>{}</small>", escape(&r)) });
        }
        b.push_str("</tr>");
    }
    b.push_str("</table>\n<h2>Distributions</h2>\n");

    let mut names: Vec<String> = OVERLAID_FIRST.iter().map(|s| (*s).to_owned()).collect();
    let all: BTreeSet<String> = hists.iter().flat_map(|h| h.names().map(str::to_owned)).collect();
    let rest: Vec<String> = all.into_iter().filter(|n| !names.contains(n)).collect();
    names.extend(ordered(rest.iter(), &[]).into_iter().cloned());
    let legend: Vec<_> = runs.iter().enumerate().map(|(i, r)| (format!("{} {} ({})", column_name(i), r.label, r.runtimes()), color(i))).collect();
    for name in names {
        let series: Vec<Series> = hists
            .iter()
            .enumerate()
            .filter_map(|(i, h)| Some(Series { label: column_name(i), color: color(i), points: cdf_ms(h, &name)? }))
            .collect();
        if series.is_empty() {
            continue;
        }
        b.push_str(&figure(
            &name.replace('_', "-"),
            &name,
            "cumulative distribution per run, log time axis: the curve further left is faster.",
            Some(plot::cdf_chart(&format!("{name} (log scale)"), &series)),
            &legend,
        ));
    }
    Ok(page("stampede compare", &b))
}

/// Write `compare.html` to `path` (atomically).
pub fn write_compare_html(path: &Path, runs: &[ComparedRun]) -> Result<PathBuf, ReportError> {
    let page = render_compare_html(runs)?;
    crate::files::write_atomic(path, |w| std::io::Write::write_all(w, page.as_bytes()))?;
    Ok(path.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratios_and_column_names() {
        assert_eq!(ratio(2.31, 1.0), "2.31×");
        assert_eq!(ratio(5.0, 0.0), "–");
        assert_eq!(ratio(8626.04, 1.0), "8626×");
        assert_eq!(column_name(0), "A");
        assert_eq!(column_name(25), "Z");
        assert_eq!(column_name(26), "AA");
    }
}
