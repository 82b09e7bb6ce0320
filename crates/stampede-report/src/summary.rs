//! The terminal summary: counts, p50/p90/p99/max per metric, efficiency, runtime — at a glance.

use std::fmt::Write as _;

use stampede_core::measure::{Metric, NATIVE_PHASE_PREFIX};
use stampede_core::results::{Results, RunStatus};
use stampede_core::stats::Summary;

/// Human duration from µs: "850 µs", "12.3 ms", "1.25 s".
pub fn fmt_us(us: u64) -> String {
    if us < 1_000 {
        format!("{us} µs")
    } else if us < 1_000_000 {
        format!("{:.1} ms", us as f64 / 1e3)
    } else {
        format!("{:.2} s", us as f64 / 1e6)
    }
}

/// Metric names in display order: the table's order (`Metric::ALL`: the start, its phases,
/// requests, control), the runtime's native phases right after the start phases in the order
/// of `native_states`, anything else last, alphabetically.
pub fn ordered<'a>(names: impl Iterator<Item = &'a String>, native_states: &[String]) -> Vec<&'a String> {
    let after_start = Metric::ALL.iter().position(|m| *m == Metric::RuntimeStartSkew).unwrap_or(0);
    let rank = |n: &str| -> (usize, usize) {
        if let Some(i) = Metric::ALL.iter().position(|m| m.name() == n) {
            return (if i > after_start { i + 1 } else { i }, 0);
        }
        match n.strip_prefix(NATIVE_PHASE_PREFIX) {
            Some(state) => (after_start + 1, native_states.iter().position(|s| s == state).unwrap_or(usize::MAX)),
            None => (usize::MAX, 0),
        }
    };
    let mut v: Vec<&String> = names.collect();
    v.sort_by_key(|n| (rank(n), n.as_str()));
    v
}

fn table(out: &mut String, title: &str, metrics: &std::collections::BTreeMap<String, Summary>, native_states: &[String]) {
    if metrics.is_empty() {
        return;
    }
    let _ = writeln!(out, "  {title:<24}{:>7}{:>11}{:>11}{:>11}{:>11}", "count", "p50", "p90", "p99", "max");
    for name in ordered(metrics.keys(), native_states) {
        let s = &metrics[name];
        let _ = writeln!(
            out,
            "  {name:<24}{:>7}{:>11}{:>11}{:>11}{:>11}",
            s.count,
            fmt_us(s.p50_us),
            fmt_us(s.p90_us),
            fmt_us(s.p99_us),
            fmt_us(s.max_us)
        );
    }
}

/// More than one group: each group's action start latency side by side, with the ratio of its
/// p50 to the first group's, so a scenario that compares settings (one group per setting)
/// reads its answer here.
fn groups_table(out: &mut String, r: &Results) {
    let measured: Vec<_> = r.groups.iter().filter(|g| !g.warmup).collect();
    if measured.len() < 2 {
        return;
    }
    let start = stampede_core::measure::names::START_LATENCY;
    let p50 = |g: &stampede_core::results::GroupResult| g.metrics.get(start).map(|s| s.p50_us);
    let base = p50(measured[0]);
    let _ = writeln!(out);
    let _ = writeln!(out, "  {:<24}{:>7}{:>11}{:>11}{:>11}  {}", "groups: action start", "count", "p50", "p99", "max", "p50 ratio");
    for g in &measured {
        let Some(s) = g.metrics.get(start) else {
            let _ = writeln!(out, "  {:<24}{:>7}", g.name, 0);
            continue;
        };
        let ratio = match (base, p50(g)) {
            (Some(b), Some(p)) if b > 0 => format!("{:.2}", p as f64 / b as f64),
            _ => "-".to_owned(),
        };
        let _ = writeln!(
            out,
            "  {:<24}{:>7}{:>11}{:>11}{:>11}  {ratio}",
            g.name,
            s.count,
            fmt_us(s.p50_us),
            fmt_us(s.p99_us),
            fmt_us(s.max_us)
        );
    }
}

pub fn summary_text(r: &Results, out_dir: Option<&std::path::Path>) -> String {
    let mut out = String::new();
    let status = match r.run.status {
        RunStatus::Running => "still running (partial)",
        RunStatus::Complete => "complete",
        RunStatus::Failed => "finished with failures",
        RunStatus::Interrupted => "interrupted",
    };
    let _ = writeln!(out, "stampede run {} · {} · {status} in {}", r.run.id, r.scenario.name, fmt_us(r.run.duration_us));
    for g in &r.scenario.groups {
        let work = match &g.work.duration {
            stampede_core::scenario::DurationDist::Fixed { value } => format!("{:?} {}", g.work.kind, fmt_us(value.as_micros() as u64)),
            d => format!("{:?} {d:?}", g.work.kind),
        };
        let _ = writeln!(
            out,
            "  group {}: {}{}, S={} A={} N={}, {}, payload {} B{}",
            g.name,
            g.runtime,
            g.action_runtime.as_ref().filter(|k| **k != g.runtime).map(|k| format!(" (actions on {k})")).unwrap_or_default(),
            g.scenarios,
            g.actions,
            g.requests,
            work.to_lowercase(),
            g.payload.request,
            if g.warmup { " [warm-up: not in summaries]" } else { "" },
        );
    }
    for (k, v) in &r.environment.runtime_versions {
        let _ = writeln!(out, "  runtime {k}: {v}");
    }
    let a = &r.accounting;
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "  instances  {:>7} requested {:>7} ready {:>7} failed",
        a.instances_requested, a.instances_ready, a.instances_failed
    );
    let _ = writeln!(
        out,
        "  requests   {:>7} sent      {:>7} ok    {:>7} failed {:>5} timed out {:>5} not sent",
        a.requests_sent, a.requests_ok, a.requests_failed, a.requests_timed_out, a.requests_not_sent
    );
    let losses: Vec<String> = a.connection_losses().iter().filter(|(_, n)| *n > 0).map(|(what, n)| format!("{n} {what}")).collect();
    if !losses.is_empty() {
        let _ = writeln!(out, "  connections lost: {}", losses.join(", "));
    }
    // More than one machine: each node's share, so a slow or failing one stands out.
    if r.nodes.len() > 1 {
        let _ = writeln!(out);
        let _ = writeln!(out, "  {:<24} {:>9} {:>7} {:>7} {:>10} {:>10} {:>9}", "nodes", "instances", "ready", "failed", "start p50", "start max", "starts/s");
        for n in &r.nodes {
            let _ = writeln!(
                out,
                "  {:<24} {:>9} {:>7} {:>7} {:>10} {:>10} {:>9.1}",
                n.node,
                n.instances,
                n.ready,
                n.failed,
                fmt_us(n.start_p50_us),
                fmt_us(n.start_max_us),
                n.starts_per_second
            );
        }
    }
    groups_table(&mut out, r);
    let _ = writeln!(out);
    table(&mut out, "actions", &r.metrics, &r.native_states);
    table(&mut out, "scenarios", &r.scenario_metrics, &r.native_states);
    let e = &r.efficiency;
    let _ = writeln!(out);
    if e.actual_us == 0 {
        // No scenario reported when its work ended (all failed, or the run was cut short):
        // there is no actual duration to compare with N·M.
        let _ = writeln!(out, "  efficiency n/a  (ideal N·M {}; no scenario reported the end of its work)", fmt_us(e.ideal_us));
    } else {
        let _ = writeln!(
            out,
            "  efficiency {:.2}  (ideal N·M {}, actual {}: start-up {}, transport {}, other {})",
            e.ratio,
            fmt_us(e.ideal_us),
            fmt_us(e.actual_us),
            fmt_us(e.startup_us),
            fmt_us(e.transport_us),
            fmt_us(e.other_us)
        );
    }
    for w in &r.warnings {
        let _ = writeln!(out, "  warning: {}", w.message);
    }
    if let Some(d) = out_dir {
        let _ = writeln!(out, "  results    {}", d.display());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_naturally() {
        assert_eq!(fmt_us(850), "850 µs");
        assert_eq!(fmt_us(12_345), "12.3 ms");
        assert_eq!(fmt_us(1_250_000), "1.25 s");
    }
}
