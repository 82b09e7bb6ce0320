//! The terminal summary: counts, p50/p90/p99/max per metric, efficiency, runtime — at a glance.

use std::fmt::Write as _;

use stampede_core::results::{Results, RunStatus};
use stampede_core::stats::Summary;

/// Metrics in the order a reader wants them: the start, its phases, then requests, then control.
pub const METRIC_ORDER: &[&str] = &[
    "start_latency",
    "phase_create",
    "phase_start",
    "phase_entry",
    "phase_to_entry",
    "phase_entry_to_connect",
    "phase_boot",
    "phase_runtime_boot",
    "phase_init",
    "runtime_start_skew",
    "swarm_phase_new",
    "swarm_phase_pending",
    "swarm_phase_assigned",
    "swarm_phase_accepted",
    "swarm_phase_preparing",
    "swarm_phase_starting",
    "swarm_phase_running",
    "request_rtt",
    "request_rtt_cold",
    "request_rtt_warm",
    "service_time",
    "overhead",
    "pause_latency",
    "resume_latency",
    "kill_latency",
    "remove_latency",
];

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

/// Metric names in display order: known ones first, any others after, alphabetically.
pub fn ordered<'a>(names: impl Iterator<Item = &'a String>) -> Vec<&'a String> {
    let mut v: Vec<&String> = names.collect();
    v.sort_by_key(|n| (METRIC_ORDER.iter().position(|m| m == n).unwrap_or(usize::MAX), n.as_str()));
    v
}

fn table(out: &mut String, title: &str, metrics: &std::collections::BTreeMap<String, Summary>) {
    if metrics.is_empty() {
        return;
    }
    let _ = writeln!(out, "  {title:<24}{:>7}{:>11}{:>11}{:>11}{:>11}", "count", "p50", "p90", "p99", "max");
    for name in ordered(metrics.keys()) {
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
            g.action_runtime.filter(|k| *k != g.runtime).map(|k| format!(" (actions on {k})")).unwrap_or_default(),
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
    if a.connections_refused + a.protocol_errors > 0 {
        let _ = writeln!(out, "  connections refused (bad token): {}, protocol errors: {}", a.connections_refused, a.protocol_errors);
    }
    let _ = writeln!(out);
    table(&mut out, "actions", &r.metrics);
    table(&mut out, "scenarios", &r.scenario_metrics);
    let e = &r.efficiency;
    let _ = writeln!(out);
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
