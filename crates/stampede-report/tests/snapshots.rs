//! Snapshot tests pinning the text formats people and scripts read: the terminal summary of a
//! fixed `Results`, the CSV header lines (the column contract of docs/results.md), and the
//! report's markup contract on a fixed run.
//!
//! A deliberate format change: run with `UPDATE_SNAPSHOTS=1`, review the diff of
//! `tests/snapshots/`, and update docs/results.md with it.

use std::path::{Path, PathBuf};

use stampede_core::measure::{InstanceRecord, RequestRecord};
use stampede_core::results::Results;
use stampede_core::scenario::Overrides;

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/process-run")
}

/// The fixed run. Its scenario is resolved afresh from the same flags the run had, because
/// the scenario model grows options (and the stored one would stop deserialising); everything
/// the snapshots pin comes from the stored measurements.
/// A catalog with the process runtime only: the snapshot's run was a process run.
fn process_only() -> stampede_runtime::Registry {
    stampede_runtime::Registry::new().with(stampede_runtime::process::ProcessProvider::new("stampede".into()))
}

fn fixed_results() -> Results {
    let mut v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(fixture().join("results.json")).unwrap()).unwrap();
    let ov = Overrides {
        scenarios: Some(3),
        actions: Some(10),
        requests: Some(10),
        work: Some("sleep:10ms".parse().unwrap()),
        seed: Some(7),
        ..Default::default()
    };
    v["scenario"] = serde_json::to_value(stampede_core::scenario::from_cli(&ov, &process_only()).unwrap()).unwrap();
    serde_json::from_value(v).unwrap()
}

fn fixed_run() -> stampede_report::ComparedRun {
    stampede_report::ComparedRun { label: "process-run".into(), dir: fixture(), results: fixed_results() }
}

fn check_snapshot(name: &str, actual: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots").join(name);
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (run with UPDATE_SNAPSHOTS=1 to create it)", path.display()));
    assert_eq!(actual, expected, "{name} changed; if deliberate, rerun with UPDATE_SNAPSHOTS=1 and update docs/results.md");
}

#[test]
fn terminal_summary_of_a_fixed_run() {
    let r = fixed_results();
    check_snapshot("summary.txt", &stampede_report::summary_text(&r, Some(Path::new("results/fixture"))));
}

fn header(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap().lines().next().unwrap().to_owned() + "\n"
}

#[test]
fn instances_csv_header() {
    let dir = tempfile::tempdir().unwrap();
    let p = stampede_report::write_instances_csv(dir.path(), &[InstanceRecord::default()]).unwrap();
    check_snapshot("instances_header.csv", &header(&p));
    // An empty run keeps the same header, so the columns are always there to load.
    let p = stampede_report::write_instances_csv(dir.path(), &[]).unwrap();
    check_snapshot("instances_header.csv", &header(&p));
}

#[test]
fn requests_csv_header() {
    let dir = tempfile::tempdir().unwrap();
    let row = RequestRecord { instance_id: "x".into(), cold: true, ..Default::default() };
    let p = stampede_report::write_requests_csv(dir.path(), &[row]).unwrap();
    check_snapshot("requests_header.csv", &header(&p));
    let p = stampede_report::write_requests_csv(dir.path(), &[]).unwrap();
    check_snapshot("requests_header.csv", &header(&p));
}

#[test]
fn fixed_run_report_has_every_plot_with_data() {
    let r = fixed_results();
    let instances = stampede_report::load_instances(&fixture()).unwrap();
    let html = stampede_report::render_report_html(&r, &instances).unwrap();
    for id in ["start-phases", "timeline", "starts-per-second", "in-flight", "contention", "rtt", "efficiency"] {
        assert!(html.contains(&format!("<figure class=\"plot\" id=\"plot-{id}\">")), "plot {id} missing or empty");
    }
    assert!(!html.contains("class=\"plot empty\""));
    // Self-contained: nothing fetched from anywhere.
    for banned in ["<script", "http://", "https://", "@import", "url("] {
        let outside_svg_ns = html.replace("http://www.w3.org/2000/svg", "");
        assert!(!outside_svg_ns.contains(banned), "report.html must not contain {banned}");
    }
}

#[test]
fn compare_shows_ratios_to_the_first_run() {
    let a = fixed_run();
    let mut b = a.clone();
    b.label = "slower".into();
    for s in b.results.metrics.values_mut() {
        s.p50_us *= 2;
    }
    let text = stampede_report::compare_text(&[a.clone(), b.clone()]);
    let line = text.lines().find(|l| l.trim_start().starts_with("start_latency")).unwrap();
    assert!(line.contains("2.00×"), "{line}");
    let html = stampede_report::render_compare_html(&[a, b]).unwrap();
    assert!(html.contains("id=\"plot-start-latency\""));
}

#[test]
fn warnings_tell_what_to_do() {
    use stampede_report::warnings::{run_warnings, CpuUsage};
    let mut r = fixed_results();
    r.accounting.requests_failed = r.accounting.requests_sent / 10;
    let busy = CpuUsage { driver_cpu_us: 9_500_000, wall_us: 10_000_000, machine_busy: Some(0.97) };
    let w = run_warnings(&r, &[], Some(busy), false);
    let kinds: Vec<&str> = w.iter().map(|w| w.kind.as_str()).collect();
    for k in ["driver_cpu_saturated", "machine_cpu_saturated", "failure_rate", "few_samples"] {
        assert!(kinds.contains(&k), "{k} missing in {kinds:?}");
    }
    assert!(w.iter().find(|w| w.kind == "driver_cpu_saturated").unwrap().message.contains("lower S·A"));
    let idle = CpuUsage { driver_cpu_us: 100_000, wall_us: 10_000_000, machine_busy: Some(0.2) };
    r.accounting.requests_failed = 0;
    // The process's own start and the runtime's record of it, 5 s apart: clocks disagree.
    let skewed = InstanceRecord { process_entry_us: Some(1_000), runtime_started_us: Some(5_000_000), ..Default::default() };
    let w = run_warnings(&r, &[skewed], Some(idle), false);
    assert!(w.iter().all(|w| !w.kind.contains("cpu") && w.kind != "failure_rate"), "{w:?}");
    assert!(w.iter().any(|w| w.kind == "clock_skew"));
    // A Swarm task: `started` (service created) is seconds before the container started, but
    // the process and the runtime agree on when it started: no skew.
    let swarm = InstanceRecord {
        started_us: Some(1_000),
        process_entry_us: Some(2_990_000),
        runtime_started_us: Some(3_000_000),
        ..Default::default()
    };
    let w = run_warnings(&r, &[swarm], Some(idle), false);
    assert!(w.iter().all(|w| w.kind != "clock_skew"), "{w:?}");
    // Many thin metrics are summed up, not listed one by one.
    let few = w.iter().find(|w| w.kind == "few_samples").expect("the fixture has thin metrics");
    assert!(few.message.contains(" and 4 more: "), "{}", few.message);
}
