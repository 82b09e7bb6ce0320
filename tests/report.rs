//! The results contracts, end to end through the real binary on the `process` runtime:
//! results.json of a real run validates against `schema/results.schema.json`; an interrupted
//! run still leaves complete results and a report; `stampede report` and `stampede compare`
//! work on real folders; report.html renders every plot with data — checked structurally here
//! and in headless Chromium by [`report_renders_in_chromium`] (needs `STAMPEDE_CHROMIUM`).

mod common;

use common::{data_elements, figures};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use stampede_report::plot::PALETTE;

const BIN: &str = env!("CARGO_BIN_EXE_stampede");

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A short process-runtime run of S scenarios × A actions × N requests of 10 ms.
fn run(out: &Path, [s, a, n]: [u32; 3]) -> Output {
    let o = Command::new(BIN)
        .arg("run")
        .args(["-S", &s.to_string(), "-A", &a.to_string(), "-N", &n.to_string()])
        .args(["--work", "sleep:10ms", "--raw", "--quiet", "--out"])
        .arg(out)
        .output()
        .expect("run stampede");
    assert_eq!(o.status.code(), Some(0), "stampede run failed: {}", String::from_utf8_lossy(&o.stderr));
    o
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))).unwrap()
}

fn assert_valid(results: &serde_json::Value) {
    let schema = json(&repo_root().join("schema/results.schema.json"));
    let validator = jsonschema::validator_for(&schema).expect("the schema itself is valid");
    let errors: Vec<String> = validator.iter_errors(results).map(|e| format!("{} at {}", e, e.instance_path)).collect();
    assert!(errors.is_empty(), "results.json does not match schema/results.schema.json:\n{}", errors.join("\n"));
}

#[test]
fn real_results_json_matches_the_schema() {
    let dir = tempfile::tempdir().unwrap();
    run(dir.path(), [2, 10, 10]);
    let r = json(&dir.path().join("results.json"));
    assert_valid(&r);
    assert_eq!(r["run"]["status"], "complete");
    // The schema must also catch a broken file, or the test above proves nothing.
    let mut broken = r.clone();
    broken["accounting"]["instances_ready"] = serde_json::json!(-1);
    let schema = json(&repo_root().join("schema/results.schema.json"));
    assert!(!jsonschema::is_valid(&schema, &broken));
}

const EXPECTED_PLOTS: [&str; 7] = ["start-phases", "timeline", "starts-per-second", "in-flight", "contention", "rtt", "efficiency"];

fn check_report_structure(dir: &Path) -> Vec<(String, String)> {
    let html = std::fs::read_to_string(dir.join("report.html")).expect("report.html written");
    let figs = figures(&html);
    let ids: Vec<&str> = figs.iter().map(|(id, _)| id.as_str()).collect();
    for want in EXPECTED_PLOTS {
        assert!(ids.contains(&want), "plot {want} missing; have {ids:?}");
    }
    let instances = std::fs::read_to_string(dir.join("instances.csv")).unwrap().lines().count() - 1;
    for (id, svg) in &figs {
        let n = data_elements(svg);
        // The timeline draws one launch bar per instance at least.
        let need = if id == "timeline" { instances } else { 1 };
        assert!(n >= need, "plot {id} has {n} data elements, expected at least {need}");
    }
    for section in ["Accounting", "Configuration", "Environment", "Metrics"] {
        assert!(html.contains(&format!("<h2>{section}")), "section {section} missing");
    }
    assert!(!html.contains("<script"), "report.html must be script-free");
    figs
}

#[test]
fn report_html_has_every_plot_with_data() {
    let dir = tempfile::tempdir().unwrap();
    run(dir.path(), [2, 10, 10]);
    check_report_structure(dir.path());
}

#[test]
fn report_subcommand_rerenders_and_compare_puts_runs_side_by_side() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    run(a.path(), [2, 10, 10]);
    run(b.path(), [2, 20, 10]);
    std::fs::remove_file(a.path().join("report.html")).unwrap();
    let o = Command::new(BIN).arg("report").arg(a.path()).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("start_latency"));
    check_report_structure(a.path());

    let page = a.path().join("cmp.html");
    let o = Command::new(BIN).arg("compare").arg(a.path()).arg(b.path()).arg("--out").arg(&page).output().unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let row = text.lines().find(|l| l.trim_start().starts_with("start_latency")).unwrap_or_else(|| panic!("no start_latency row:\n{text}"));
    assert!(row.contains('×'), "no ratio in {row}");
    let html = std::fs::read_to_string(&page).unwrap();
    for (id, svg) in figures(&html) {
        assert!(data_elements(&svg) >= 2, "compare plot {id} should overlay both runs");
    }
    assert!(html.contains("id=\"plot-start-latency\"") && html.contains("id=\"plot-request-rtt\""));
}

#[test]
fn interrupted_run_keeps_complete_results_and_report() {
    let dir = tempfile::tempdir().unwrap();
    let child = Command::new(BIN)
        .args(["run", "-S", "2", "-A", "5", "-N", "50", "--work", "sleep:200ms", "--quiet", "--out"])
        .arg(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The folder and a partial results.json exist from the start (written whole, by rename).
    let t0 = std::time::Instant::now();
    let partial = loop {
        if let Ok(text) = std::fs::read_to_string(dir.path().join("results.json")) {
            break serde_json::from_str::<serde_json::Value>(&text).expect("a partial results.json is whole");
        }
        assert!(t0.elapsed() < Duration::from_secs(20), "no results.json within 20 s");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(partial["run"]["status"], "running");
    assert_valid(&partial);
    // Any moment of its 10 s of work will do: Ctrl-C leaves requests unsent.
    let killed = Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(killed.success());
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(130), "stderr: {}", String::from_utf8_lossy(&o.stderr));
    let r = json(&dir.path().join("results.json"));
    assert_eq!(r["run"]["status"], "interrupted");
    assert_eq!(r["run"]["exit_code"], 130);
    assert_valid(&r);
    let a = &r["accounting"];
    assert!(a["requests_not_sent"].as_u64().unwrap() > 0, "an interrupted run leaves requests unsent: {a}");
    assert!(dir.path().join("instances.csv").exists());
    assert!(dir.path().join("report.html").exists());
}

/// Distinct series-coloured pixels in a PNG (within a small tolerance for anti-aliasing).
fn palette_pixels(png_path: &Path) -> (usize, usize) {
    let (px, step) = common::png_pixels(png_path);
    let colours: Vec<[i32; 3]> = PALETTE.iter().map(|c| [c.0, c.1, c.2].map(i32::from)).collect();
    let near = |p: &[u8], c: &[i32; 3]| (0..3).map(|i| (i32::from(p[i]) - c[i]).abs()).sum::<i32>() < 24;
    let total = px.len() / step;
    let hits = px.chunks(step).filter(|p| colours.iter().any(|c| near(p, c))).count();
    (hits, total)
}

/// Opens a real run's report.html in headless Chromium. Each plot is also rendered on its own
/// page and screenshotted, so "rendered with data" is checked per plot, not for the page as a
/// whole. Run it with: `STAMPEDE_CHROMIUM=chromium cargo test -p stampede --test report -- --ignored`
/// (set `STAMPEDE_SCREENSHOT_DIR` to keep the screenshots).
#[test]
#[ignore = "needs chromium: STAMPEDE_CHROMIUM=chromium cargo test -p stampede --test report -- --ignored"]
fn report_renders_in_chromium() {
    let chromium = common::chromium();
    let dir = tempfile::tempdir().unwrap();
    run(dir.path(), [4, 25, 5]);
    let figs = check_report_structure(dir.path());
    let shots = common::screenshot_dir(dir.path());

    let whole = shots.join("report.png");
    common::chromium_screenshot(&chromium, &dir.path().join("report.html"), &whole, "1280,4000");
    let (hits, total) = palette_pixels(&whole);
    assert!(hits * 200 > total, "the report screenshot is almost blank: {hits} of {total} pixels in series colours");

    for (id, svg) in figs {
        let page = common::plot_page(dir.path(), &id, &svg);
        let png = shots.join(format!("plot-{id}.png"));
        common::chromium_screenshot(&chromium, &page, &png, "960,1300");
        let (hits, _) = palette_pixels(&png);
        // A legend-free chart only has series colours where data was drawn.
        assert!(hits > 150, "plot {id} rendered {hits} data-coloured pixels: no data visible");
    }
}
