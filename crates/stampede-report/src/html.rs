//! `report.html`: one self-contained page per results folder.
//!
//! [`render_report_html`] is a pure function of `results.json` and the instance records; it
//! derives each plot's data here (CDFs from the merged histograms, timelines and rates from
//! `instances.csv`) and hands plain numbers to [`crate::plot`]. The page carries its CSS inline
//! and no script, font or image from anywhere else, so it opens the same from a laptop, a CI
//! artefact or an air-gapped lab.
//!
//! Markup contract (the report tests rely on it): every chart is a
//! `<figure class="plot" id="plot-…">`; one without data says why in `<p class="nodata">`
//! and gets the class `empty`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use plotters::style::RGBColor;
use stampede_core::measure::{names as metric, InstanceRecord, Outcome, Role, NATIVE_PHASE_PREFIX};
use stampede_core::results::Results;
use stampede_core::stats::{cdf_points, Metrics, Summary};

use crate::plot::{self, color, Series, StackedBar, TimelineRow, PALETTE};
use crate::summary::{fmt_us, ordered};
use crate::{names, ReportError};

/// Above this many instances the timeline shows every k-th one (sorted by request time), so
/// the page stays light; at ~1 px per row this is still one screen of rows.
pub const MAX_TIMELINE_ROWS: usize = 1200;

/// Write `report.html` into a results folder (atomically, like every results file).
pub fn write_report_html(dir: &Path, results: &Results, instances: &[InstanceRecord]) -> Result<PathBuf, ReportError> {
    let path = dir.join(names::REPORT_HTML);
    let page = render_report_html(results, instances)?;
    crate::files::write_atomic(&path, |w| std::io::Write::write_all(w, page.as_bytes()))?;
    Ok(path)
}

pub fn escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

/// Shared page chrome: CSS sized so nothing needs a horizontal scrollbar (charts scale down,
/// tables and code wrap).
pub(crate) const CSS: &str = "\
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:0 auto;max-width:1000px;padding:16px;color:#222;line-height:1.4}\
h1{font-size:1.5em;margin:.2em 0}h2{font-size:1.2em;margin-top:1.6em;border-bottom:1px solid #ddd}\
.meta{color:#555}\
table{border-collapse:collapse;margin:.5em 0;font-size:.9em;max-width:100%}\
td,th{padding:2px 8px;text-align:right;border-bottom:1px solid #eee}td:first-child,th:first-child{text-align:left}\
th{background:#f5f5f5}.few{color:#999;font-style:italic}\
table.kv td{text-align:left;vertical-align:top;overflow-wrap:anywhere}\
pre{white-space:pre-wrap;overflow-wrap:anywhere;background:#f7f7f7;padding:8px;font-size:.8em}\
figure.plot{margin:1em 0;padding:0}figure.plot svg{width:100%;height:auto;display:block}\
figcaption{font-size:.9em;color:#444;margin-bottom:4px}figcaption b{color:#222;font-size:1.05em}\
.nodata{color:#999;font-style:italic}\
ul.legend{list-style:none;padding:0;margin:2px 0 0 56px;font-size:.85em}ul.legend li{display:inline-block;margin-right:14px}\
.swatch{display:inline-block;width:12px;height:12px;margin-right:4px;vertical-align:-1px}\
.warnings{background:#fff4e5;border-left:4px solid #F28E2B;padding:6px 12px}.warnings li{margin:4px 0}\
.ok{color:#59A14F}.bad{color:#E15759;font-weight:bold}";

pub(crate) fn page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
<title>{}</title><style>{CSS}</style></head><body>\n{body}\n</body></html>\n",
        escape(title)
    )
}

/// A chart figure, or a note saying why there is none.
pub(crate) fn figure(id: &str, title: &str, how_to_read: &str, chart: Option<Result<String, String>>, legend: &[(String, RGBColor)]) -> String {
    let cap = format!("<figcaption><b>{}</b> — {}</figcaption>", escape(title), escape(how_to_read));
    match chart {
        Some(Ok(svg)) => format!("<figure class=\"plot\" id=\"plot-{id}\">{cap}{svg}{}</figure>\n", plot::legend_html(legend)),
        Some(Err(e)) => format!("<figure class=\"plot empty\" id=\"plot-{id}\">{cap}<p class=\"nodata\">could not draw: {}</p></figure>\n", escape(&e)),
        None => format!("<figure class=\"plot empty\" id=\"plot-{id}\">{cap}<p class=\"nodata\">no data in this run</p></figure>\n"),
    }
}

/// CDF points of a histogram, x in ms.
pub(crate) fn cdf_ms(m: &Metrics, name: &str) -> Option<Vec<(f64, f64)>> {
    let pts = cdf_points(m.get(name)?);
    (!pts.is_empty()).then(|| pts.into_iter().map(|(v, f)| (v as f64 / 1000.0, f)).collect())
}


/// The metric table with every statistic; percentiles resting on too few samples are greyed.
pub(crate) fn metric_table(title: &str, metrics: &BTreeMap<String, Summary>) -> String {
    if metrics.is_empty() {
        return String::new();
    }
    let mut s = format!(
        "<table><tr><th>{}</th><th>count</th><th>min</th><th>mean</th><th>p50</th><th>p90</th><th>p99</th><th>p99.9</th><th>max</th><th>stdev</th></tr>",
        escape(title)
    );
    let few = |count: u64, need: u64, v: u64| {
        if count < need {
            format!("<td class=\"few\" title=\"fewer than {need} samples: this percentile is close to the max\">{}</td>", fmt_us(v))
        } else {
            format!("<td>{}</td>", fmt_us(v))
        }
    };
    for name in ordered(metrics.keys(), &[]) {
        let m = &metrics[name];
        let _ = write!(
            s,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>{}{}<td>{}</td><td>{}</td></tr>",
            escape(name),
            m.count,
            fmt_us(m.min_us),
            fmt_us(m.mean_us),
            fmt_us(m.p50_us),
            fmt_us(m.p90_us),
            few(m.count, 100, m.p99_us),
            few(m.count, 1000, m.p999_us),
            fmt_us(m.max_us),
            fmt_us(m.stdev_us),
        );
    }
    s.push_str("</table>\n");
    s
}

/// Each node's share of the run, when it ran on more than one: a slow or failing node stands
/// out here before any plot.
fn node_table(nodes: &[stampede_core::results::NodeSummary]) -> String {
    if nodes.len() < 2 {
        return String::new();
    }
    let mut s = String::from(
        "<h3 id=\"nodes\">Per node</h3>\n<table><tr><th>node</th><th>instances</th><th>ready</th><th>failed</th>\
         <th>start p50</th><th>start max</th><th>starts/s</th></tr>",
    );
    for n in nodes {
        let failed = if n.failed > 0 { format!("<td class=\"bad\">{}</td>", n.failed) } else { "<td>0</td>".to_owned() };
        let _ = write!(
            s,
            "<tr><td>{}</td><td>{}</td><td>{}</td>{failed}<td>{}</td><td>{}</td><td>{:.1}</td></tr>",
            escape(&n.node),
            n.instances,
            n.ready,
            fmt_us(n.start_p50_us),
            fmt_us(n.start_max_us),
            n.starts_per_second
        );
    }
    s.push_str("</table>\n");
    s
}

fn kv_table(rows: &[(&str, String)]) -> String {
    let mut s = String::from("<table class=\"kv\">");
    for (k, v) in rows {
        let _ = write!(s, "<tr><td>{}</td><td>{}</td></tr>", escape(k), escape(v));
    }
    s.push_str("</table>\n");
    s
}

/// The last thing we know happened to an instance (for the end of its timeline row).
fn end_us(r: &InstanceRecord, run_end_us: i64) -> i64 {
    r.stopped_us.or(r.removed_us).or(r.last_response_us).or(r.ready_us).or(r.requested_us).unwrap_or(run_end_us)
}

/// Metrics that are phases of a start, in display order: start_latency, then phase_*, then
/// the runtime's own view (runtime_start_skew). Whatever a runtime recorded is shown.
fn start_metric_names(m: &Metrics) -> Vec<String> {
    let owned: Vec<String> = m
        .names()
        .filter(|n| *n == metric::START_LATENCY || n.starts_with("phase_") || *n == metric::RUNTIME_START_SKEW)
        .map(str::to_owned)
        .collect();
    ordered(owned.iter(), &[]).into_iter().cloned().collect()
}

/// One figure overlaying the cumulative distributions of `names` (durations, log time axis).
fn duration_cdfs(hist: &Metrics, names: &[String], id: &str, title: &str, caption: &str) -> String {
    let series: Vec<Series> = names
        .iter()
        .enumerate()
        .filter_map(|(i, n)| Some(Series { label: n.clone(), color: color(i), points: cdf_ms(hist, n)? }))
        .collect();
    let legend: Vec<_> = series.iter().map(|s| (s.label.clone(), s.color)).collect();
    figure(id, title, caption, (!series.is_empty()).then(|| plot::cdf_chart("duration (log scale)", &series)), &legend)
}

/// The runtime's own phases (`native_phase_<state>`), in the order its states are reached.
fn native_phase_names(m: &Metrics, native_states: &[String]) -> Vec<String> {
    let owned: Vec<String> = m.names().filter(|n| n.starts_with(NATIVE_PHASE_PREFIX)).map(str::to_owned).collect();
    ordered(owned.iter(), native_states).into_iter().cloned().collect()
}

/// Launches (requested → ready, or → end for one that never got ready) in flight over time,
/// per role, as step points (s, count).
fn in_flight_series(instances: &[InstanceRecord], role: Role, run_end_us: i64) -> Vec<(f64, f64)> {
    let mut ev: Vec<(i64, i32)> = Vec::new();
    for r in instances.iter().filter(|r| r.role == Some(role)) {
        let Some(req) = r.requested_us else { continue };
        let done = r.ready_us.unwrap_or_else(|| end_us(r, run_end_us));
        ev.push((req, 1));
        ev.push((done.max(req), -1));
    }
    // Ends before starts at the same instant, so an instant launch does not count.
    ev.sort_by_key(|&(t, d)| (t, d));
    let mut pts = vec![(0.0, 0.0)];
    let mut n = 0i32;
    for (t, d) in ev {
        let x = t as f64 / 1e6;
        pts.push((x, f64::from(n)));
        n += d;
        pts.push((x, f64::from(n)));
    }
    pts
}

/// A bin width giving about 60 bins over `span_us`, rounded to 1/2/5 × 10^k µs.
fn nice_bin_us(span_us: i64) -> i64 {
    let raw = (span_us / 60).max(1_000);
    let mut unit = 1i64;
    while unit * 10 <= raw {
        unit *= 10;
    }
    [1, 2, 5, 10].iter().map(|m| m * unit).find(|b| *b >= raw).unwrap_or(10 * unit)
}

/// Instances of `role` that became ready, as a rate (per second) in bins, as step points.
fn starts_rate_series(instances: &[InstanceRecord], role: Role, bin_us: i64, bins: usize) -> Vec<(f64, f64)> {
    let mut counts = vec![0u32; bins];
    for t in instances.iter().filter(|r| r.role == Some(role)).filter_map(|r| r.ready_us) {
        let i = usize::try_from(t.max(0) / bin_us).unwrap_or(0).min(bins - 1);
        counts[i] += 1;
    }
    let per_s = 1e6 / bin_us as f64;
    let mut pts = Vec::with_capacity(bins * 2);
    for (i, c) in counts.iter().enumerate() {
        let (a, b) = ((i as i64 * bin_us) as f64 / 1e6, ((i as i64 + 1) * bin_us) as f64 / 1e6);
        pts.push((a, f64::from(*c) * per_s));
        pts.push((b, f64::from(*c) * per_s));
    }
    pts
}

const ACTION_LAUNCH: RGBColor = PALETTE[3];
const ACTION_LIFE: RGBColor = PALETTE[0];
const SCENARIO_LAUNCH: RGBColor = PALETTE[5];
const SCENARIO_LIFE: RGBColor = PALETTE[1];
const FAILED: RGBColor = PALETTE[2];

fn timeline(instances: &[InstanceRecord], run_end_us: i64) -> (String, String) {
    let mut sorted: Vec<&InstanceRecord> = instances.iter().filter(|r| r.requested_us.is_some()).collect();
    sorted.sort_by_key(|r| (r.requested_us, r.role));
    let stride = sorted.len().div_ceil(MAX_TIMELINE_ROWS).max(1);
    let rows: Vec<TimelineRow> = sorted
        .iter()
        .step_by(stride)
        .map(|r| {
            let scenario = r.role == Some(Role::Scenario);
            let failed = r.outcome == Outcome::Failed;
            TimelineRow {
                requested_ms: r.requested_us.unwrap_or(0) as f64 / 1e3,
                ready_ms: r.ready_us.map(|t| t as f64 / 1e3),
                end_ms: end_us(r, run_end_us) as f64 / 1e3,
                launch: if failed && r.ready_us.is_none() { FAILED } else if scenario { SCENARIO_LAUNCH } else { ACTION_LAUNCH },
                life: if failed { FAILED } else if scenario { SCENARIO_LIFE } else { ACTION_LIFE },
            }
        })
        .collect();
    let note = if stride > 1 {
        format!("showing every {stride}th of {} instances, sorted by request time", sorted.len())
    } else {
        format!("{} instances, one row each, sorted by request time", sorted.len())
    };
    let chart = if rows.is_empty() { None } else { Some(plot::timeline_chart(&rows, "time since run start", &note)) };
    let fig = figure(
        "timeline",
        "Timeline of every instance",
        &format!("{note}. Each row runs from requested through ready (launch) to stopped; a wide launch band means slow starts, a slanted left edge means starts were queued."),
        chart,
        &[
            ("scenario launch".into(), SCENARIO_LAUNCH),
            ("scenario alive".into(), SCENARIO_LIFE),
            ("action launch".into(), ACTION_LAUNCH),
            ("action alive".into(), ACTION_LIFE),
            ("failed".into(), FAILED),
        ],
    );
    (fig, note)
}

pub fn render_report_html(r: &Results, instances: &[InstanceRecord]) -> Result<String, ReportError> {
    let hist = Metrics::from_wire(&r.histograms).map_err(|e| ReportError::Parse { path: PathBuf::from("results.json#histograms"), reason: e.to_string() })?;
    let run_end_us = i64::try_from(r.run.duration_us).unwrap_or(i64::MAX);
    let mut b = String::new();

    // Header and what to worry about first.
    let status_class = if r.run.exit_code == Some(0) { "ok" } else { "bad" };
    let _ = write!(
        b,
        "<h1>stampede run {} · {}</h1>\n<p class=\"meta\">status <span class=\"{status_class}\">{}</span> (exit code {}) · started {} · took {} · seed {} · schema v{}</p>\n",
        escape(&r.run.id),
        escape(&r.scenario.name),
        serde_json::to_value(r.run.status).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default(),
        r.run.exit_code.map(|c| c.to_string()).unwrap_or_else(|| "–".into()),
        escape(&r.run.started_at),
        fmt_us(r.run.duration_us),
        r.run.seed,
        r.schema_version,
    );
    if !r.warnings.is_empty() {
        b.push_str("<div class=\"warnings\"><b>Warnings</b><ul>");
        for w in &r.warnings {
            let _ = write!(b, "<li><code>{}</code>: {}</li>", escape(&w.kind), escape(&w.message));
        }
        b.push_str("</ul></div>\n");
    }

    let a = &r.accounting;
    b.push_str("<h2>Accounting</h2>\n");
    b.push_str(&kv_table(&[
        ("instances", format!("{} requested = {} ready + {} failed", a.instances_requested, a.instances_ready, a.instances_failed)),
        (
            "requests",
            format!(
                "{} planned = {} sent + {} not sent; {} sent = {} ok + {} failed + {} timed out",
                a.requests_planned, a.requests_sent, a.requests_not_sent, a.requests_sent, a.requests_ok, a.requests_failed, a.requests_timed_out
            ),
        ),
        ("connections lost", {
            let losses: Vec<String> = a.connection_losses().iter().filter(|(_, n)| *n > 0).map(|(what, n)| format!("{n} {what}")).collect();
            if losses.is_empty() { "none".into() } else { losses.join(", ") }
        }),
        ("balanced", if a.balanced() { "yes".into() } else { a.imbalances().join("; ") }),
    ]));

    // Start-up.
    b.push_str("<h2>Start-up</h2>\n");
    b.push_str(&duration_cdfs(
        &hist,
        &start_metric_names(&hist),
        "start-phases",
        "Start latency and its phases (actions)",
        "cumulative distribution, log time axis: the further left and the steeper, the better. start_latency = ready − requested; the phases split it (create, start, boot = started→connected, init = connected→ready, entry = started→process entry).",
    ));
    let native = native_phase_names(&hist, &r.native_states);
    if !native.is_empty() {
        b.push_str(&duration_cdfs(
            &hist,
            &native,
            "native-phases",
            "The runtime's own phases (actions)",
            "cumulative distribution of native_phase_<state>: the time to reach each state the platform reported (its own timestamps) from the previous state seen, the first from requested. Every state with its time is in native_states.csv.",
        ));
    }
    let (fig, _) = timeline(instances, run_end_us);
    b.push_str(&fig);

    let span = instances.iter().map(|i| end_us(i, run_end_us)).max().unwrap_or(0).max(run_end_us).max(1);
    let bin = nice_bin_us(span);
    let bins = usize::try_from(span / bin + 1).unwrap_or(1);
    let mut rate = Vec::new();
    let mut flight = Vec::new();
    for (role, c) in [(Role::Action, ACTION_LIFE), (Role::Scenario, SCENARIO_LIFE)] {
        if instances.iter().any(|i| i.role == Some(role) && i.ready_us.is_some()) {
            rate.push(Series { label: format!("{role}s ready per second"), color: c, points: starts_rate_series(instances, role, bin, bins) });
        }
        if instances.iter().any(|i| i.role == Some(role) && i.requested_us.is_some()) {
            flight.push(Series { label: format!("{role} launches in flight"), color: c, points: in_flight_series(instances, role, run_end_us) });
        }
    }
    let legend = |s: &[Series]| s.iter().map(|s| (s.label.clone(), s.color)).collect::<Vec<_>>();
    b.push_str(&figure(
        "starts-per-second",
        "Starts per second",
        &format!("instances that became ready, per {} bin, as a rate: the runtime's start throughput over the run.", fmt_us(u64::try_from(bin).unwrap_or(0))),
        (!rate.is_empty()).then(|| plot::line_chart("seconds since run start", "starts / s", &rate, false, Some(span as f64 / 1e6))),
        &legend(&rate),
    ));
    b.push_str(&figure(
        "in-flight",
        "Starts in flight",
        "launches requested but not yet ready, over time: how much concurrent start-up the runtime was asked to absorb.",
        (!flight.is_empty()).then(|| plot::line_chart("seconds since run start", "in flight", &flight, true, Some(span as f64 / 1e6))),
        &legend(&flight),
    ));

    let mut points = Vec::new();
    for (role, c) in [(Role::Action, ACTION_LIFE), (Role::Scenario, SCENARIO_LIFE)] {
        let p: Vec<(f64, f64)> = instances
            .iter()
            .filter(|i| i.role == Some(role))
            .filter_map(|i| Some((f64::from(i.in_flight_at_request), i.start_latency_us()? as f64 / 1e3)))
            .collect();
        if !p.is_empty() {
            points.push(Series { label: format!("{role} start latency"), color: c, points: p });
        }
    }
    let curve: Vec<Series> = (!r.contention.is_empty())
        .then(|| Series {
            label: "action median (results.contention)".into(),
            color: PALETTE[2],
            points: r.contention.iter().map(|c| (f64::from(c.in_flight), c.p50_us as f64 / 1e3)).collect(),
        })
        .into_iter()
        .collect();
    let mut leg = legend(&points);
    leg.extend(legend(&curve));
    b.push_str(&figure(
        "contention",
        "Contention: start latency against starts in flight",
        "each dot is one instance, placed by how many launches of the same parent were already in flight when it was requested; a rising median means the runtime serialises starts.",
        (!points.is_empty()).then(|| plot::scatter_chart("launches in flight when requested", "start latency", &points, &curve)),
        &leg,
    ));

    b.push_str(&node_table(&r.nodes));

    // Requests.
    b.push_str("<h2>Requests</h2>\n");
    let rtt: Vec<Series> = [(metric::REQUEST_RTT_COLD, PALETTE[1]), (metric::REQUEST_RTT_WARM, PALETTE[0]), (metric::SERVICE_TIME, PALETTE[9])]
        .into_iter()
        .filter_map(|(n, c)| Some(Series { label: n.to_owned(), color: c, points: cdf_ms(&hist, n)? }))
        .collect();
    b.push_str(&figure(
        "rtt",
        "Request round trip: cold vs warm",
        "cumulative distribution, log time axis. Cold = the first request a fresh instance serves; warm = every later one; service_time is the work the action itself measured, so the gap to it is transport and scheduling.",
        rtt.iter().any(|s| s.label != metric::SERVICE_TIME).then(|| plot::cdf_chart("round-trip time (log scale)", &rtt)),
        &legend(&rtt),
    ));

    // Efficiency.
    b.push_str("<h2>Efficiency: actual duration against the ideal N·M</h2>\n");
    let mut bars = Vec::new();
    let mut add = |label: &str, e: &stampede_core::results::Efficiency| {
        let work = e.actual_us.saturating_sub(e.startup_us + e.transport_us + e.other_us);
        bars.push(StackedBar { label: format!("{label} ideal"), segments: vec![(e.ideal_us as f64 / 1e3, PALETTE[9])] });
        bars.push(StackedBar {
            label: format!("{label} actual"),
            segments: vec![
                (work as f64 / 1e3, PALETTE[0]),
                (e.startup_us as f64 / 1e3, PALETTE[1]),
                (e.transport_us as f64 / 1e3, PALETTE[6]),
                (e.other_us as f64 / 1e3, PALETTE[2]),
            ],
        });
    };
    for g in &r.groups {
        add(&format!("{}{}", g.name, if g.warmup { " (warm-up)" } else { "" }), &g.efficiency);
    }
    if r.groups.len() > 1 {
        add("whole run", &r.efficiency);
    }
    let has_bars = bars.iter().any(|b| b.segments.iter().any(|s| s.0 > 0.0));
    b.push_str(&figure(
        "efficiency",
        "Actual duration against the ideal",
        &format!(
            "per group: the ideal N·M (no start-up, no transport, no contention) and the actual duration split into what explains the gap. Efficiency (ideal / actual) of the run: {:.2}.",
            r.efficiency.ratio
        ),
        has_bars.then(|| plot::bar_chart("duration", &bars)),
        &[
            ("ideal N·M".into(), PALETTE[9]),
            ("work".into(), PALETTE[0]),
            ("waiting for start-up".into(), PALETTE[1]),
            ("transport".into(), PALETTE[6]),
            ("other (contention, stragglers, pauses)".into(), PALETTE[2]),
        ],
    ));

    // Numbers.
    b.push_str("<h2>Metrics</h2>\n<p class=\"meta\">µs-precise values are in results.json; greyed percentiles rest on too few samples to mean more than the max.</p>\n");
    b.push_str(&metric_table("actions", &r.metrics));
    b.push_str(&metric_table("scenarios", &r.scenario_metrics));
    if r.groups.len() > 1 {
        for g in &r.groups {
            b.push_str(&metric_table(&format!("group {} (actions)", g.name), &g.metrics));
        }
    }

    // Where the numbers come from.
    b.push_str("<h2>Configuration</h2>\n");
    let mut rows = Vec::new();
    for g in &r.scenario.groups {
        rows.push((
            "group",
            format!(
                "{}: {} (actions on {}), S={} A={} N={}, {}, payload {} B → {} B, start concurrency {}{}",
                g.name,
                g.runtime,
                g.effective_action_runtime(),
                g.scenarios,
                g.actions,
                g.requests,
                serde_json::to_string(&g.work).unwrap_or_default(),
                g.payload.request,
                g.payload.response,
                g.start_concurrency.map(|c| c.to_string()).unwrap_or_else(|| "default".into()),
                if g.warmup { ", warm-up" } else { "" },
            ),
        ));
    }
    rows.push(("command line", r.run.command_line.join(" ")));
    b.push_str(&kv_table(&rows));
    let _ = writeln!(
        b,
        "<details><summary>resolved scenario (file + flags, defaults filled in)</summary><pre>{}</pre></details>",
        escape(&serde_json::to_string_pretty(&r.scenario).unwrap_or_default())
    );

    b.push_str("<h2>Environment</h2>\n");
    let e = &r.environment;
    let mut rows = vec![
        ("stampede", e.stampede_version.clone()),
        ("host", e.hostname.clone()),
        ("os", e.os.clone()),
        ("kernel", e.kernel.clone()),
        ("cpus", e.cpus.to_string()),
        ("memory", format!("{:.1} GiB", e.memory_bytes as f64 / (1u64 << 30) as f64)),
    ];
    for (k, v) in &e.runtime_versions {
        rows.push(("runtime", format!("{k}: {v}")));
    }
    for (k, v) in &e.runtime_options {
        rows.push(("options", format!("{k}: {v}")));
    }
    b.push_str(&kv_table(&rows));

    Ok(page(&format!("stampede {} · {}", r.run.id, r.scenario.name), &b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bins_are_round_numbers() {
        assert_eq!(nice_bin_us(10_000), 1_000);
        assert_eq!(nice_bin_us(1_000_000), 20_000);
        assert_eq!(nice_bin_us(60_000_000), 1_000_000);
    }

    #[test]
    fn in_flight_rises_and_falls_back_to_zero() {
        let mk = |req, ready| InstanceRecord { role: Some(Role::Action), requested_us: Some(req), ready_us: Some(ready), ..Default::default() };
        let pts = in_flight_series(&[mk(0, 100), mk(50, 150)], Role::Action, 1000);
        let max = pts.iter().map(|p| p.1).fold(0.0, f64::max);
        assert_eq!(max, 2.0);
        assert_eq!(pts.last().unwrap().1, 0.0);
    }

    #[test]
    fn thousands_of_instances_are_downsampled_not_dropped_silently() {
        let rows: Vec<InstanceRecord> = (0..5000)
            .map(|i| InstanceRecord {
                role: Some(Role::Action),
                requested_us: Some(i * 100),
                ready_us: Some(i * 100 + 50_000),
                stopped_us: Some(1_000_000),
                outcome: Outcome::Ready,
                ..Default::default()
            })
            .collect();
        let (fig, note) = timeline(&rows, 1_000_000);
        assert_eq!(note, "showing every 5th of 5000 instances, sorted by request time");
        let bars = fig.matches("<rect").count();
        assert!((2000..=2100).contains(&bars), "{bars} bars: two per shown row plus the background");
    }

    #[test]
    fn escape_is_html_safe() {
        assert_eq!(escape("<a href=\"x\">&'"), "&lt;a href=&quot;x&quot;&gt;&amp;&#39;");
    }
}
