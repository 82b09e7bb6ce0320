//! The live metrics endpoint (`--metrics-addr`) of a real run on the `process` runtime: scraped
//! during the run, its text parses as Prometheus text (with `prometheus-parse`, not the crate
//! that wrote it); after the run its counters equal results.json's `accounting` and its
//! histograms' counts the metrics' counts.

mod common;

use common::*;
use std::time::Duration;

#[test]
fn metrics_endpoint_serves_prometheus_text_that_ends_equal_to_results() {
    let _g = serial();
    let dir = tempdir();
    // Two groups, so labels tell them apart; long enough to be scraped while it runs.
    let scenario = dir.path().join("two.toml");
    std::fs::write(
        &scenario,
        "name = \"metrics\"\ngroups = \"parallel\"\n[[group]]\nname = \"a\"\nscenarios = 2\nactions = 5\nrequests = 20\nwork = \"sleep:50ms\"\n\
[[group]]\nname = \"b\"\nscenarios = 1\nactions = 3\nrequests = 20\nwork = \"sleep:50ms\"\n",
    )
    .unwrap();
    let (mut child, out, _, addr) = start_live(dir.path(), &[scenario.to_str().unwrap(), "--quiet", "--metrics-linger", "120s"]);

    // During the run: instances are being counted, the run is not finished.
    let during = wait_until(Duration::from_secs(60), "a scrape showing ready actions", || {
        let text = scrape(&addr)?;
        let s = parse(&text);
        (value(&s, "stampede_instances_ready_total", &[]) >= 4.0 && value(&s, "stampede_run_finished", &[]) == 0.0).then_some(text)
    });
    assert!(during.contains("group=\"a\"") && during.contains("group=\"b\"") && during.contains("runtime=\"process\""), "{during}");

    // After it: results.json is complete and the endpoint lingers with the final numbers.
    let results = wait_until(Duration::from_secs(120), "the run to finish", || {
        let r: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).ok()?).ok()?;
        (r["run"]["status"] == "complete").then_some(r)
    });
    let text = wait_until(Duration::from_secs(30), "the final scrape", || {
        let text = scrape(&addr)?;
        (value(&parse(&text), "stampede_run_finished", &[]) == 1.0).then_some(text)
    });
    let s = parse(&text);
    let run_id = results["run"]["id"].as_str().unwrap();
    for group in results["groups"].as_array().unwrap() {
        let l = [("run", run_id), ("group", group["name"].as_str().unwrap())];
        let a = &group["accounting"];
        let n = |k: &str| a[k].as_f64().unwrap();
        assert_eq!(value(&s, "stampede_instances_requested_total", &l), n("instances_requested"), "{l:?}");
        assert_eq!(value(&s, "stampede_instances_ready_total", &l), n("instances_ready"), "{l:?}");
        assert_eq!(value(&s, "stampede_instances_failed_total", &l), n("instances_failed"), "{l:?}");
        for outcome in ["ok", "failed", "timed_out", "not_sent"] {
            let want = n(&format!("requests_{outcome}"));
            assert_eq!(value(&s, "stampede_requests_total", &[l[0], l[1], ("outcome", outcome)]), want, "{outcome}");
        }
        assert_eq!(value(&s, "stampede_launches_in_flight", &l), 0.0);
        let count = |m: &str| group["metrics"][m]["count"].as_f64().unwrap();
        assert_eq!(value(&s, "stampede_start_latency_seconds", &l), count("start_latency"), "start latency histogram count");
        assert_eq!(value(&s, "stampede_start_latency_seconds_count", &l), count("start_latency"));
        assert_eq!(value(&s, "stampede_request_rtt_seconds", &l), count("request_rtt"), "RTT histogram count");
    }
    // Totals over the groups are the run's accounting.
    let total = results["accounting"]["instances_requested"].as_f64().unwrap();
    assert_eq!(value(&s, "stampede_instances_requested_total", &[("run", run_id)]), total);

    // Ctrl-C ends the linger; the run's exit code is its own.
    assert_eq!(signal(child.id() as i32, libc::SIGINT), 0);
    let status = wait_for(&mut child, Duration::from_secs(30));
    assert_eq!(status.code(), Some(0));
}

#[test]
fn metrics_addr_in_use_is_invalid_input() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let dir = tempdir();
    let o = run(&["run", "-S", "1", "-A", "1", "-N", "1", "--quiet", "--out", dir.path().to_str().unwrap(), "--metrics-addr", &addr], Duration::from_secs(30));
    assert_eq!(o.status.code(), Some(2), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--metrics-addr"));
}

/// A sweep's endpoint follows the whole sweep: its own progress, and the current run's metrics
/// relayed from that run's endpoint.
#[test]
fn sweep_metrics_relay_the_current_run() {
    use std::io::BufRead as _;
    let _g = serial();
    let dir = tempdir();
    let base = dir.path().join("base.toml");
    std::fs::write(&base, "# metrics sweep\nname = \"msweep\"\n[[group]]\nscenarios = 1\nactions = 4\nrequests = 20\nwork = \"sleep:50ms\"\n").unwrap();
    let out = dir.path().join("sw");
    let mut child = spawn(&["sweep", base.to_str().unwrap(), "--set", "actions=3,4", "--repeat", "1", "--out", out.to_str().unwrap(), "--metrics-addr", "127.0.0.1:0"]);
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let addr = loop {
        let mut line = String::new();
        assert!(stderr.read_line(&mut line).unwrap() > 0, "the sweep ended without saying where its metrics are");
        if let Some(a) = line.trim().strip_prefix("sweep: metrics on http://") {
            break a.trim_end_matches("/metrics").to_owned();
        }
    };
    // Keep draining stderr so the sweep never blocks on a full pipe.
    std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
    let text = wait_until(Duration::from_secs(120), "a scrape with a run's metrics", || {
        let text = scrape(&addr)?;
        let s = parse(&text);
        s.samples.iter().any(|x| x.metric == "stampede_instances_ready_total").then_some(text)
    });
    let s = parse(&text);
    assert_eq!(value(&s, "stampede_sweep_runs", &[]), 2.0);
    assert!(value(&s, "stampede_instances_requested_total", &[("group", "group-0")]) >= 1.0, "{text}");
    let status = wait_for(&mut child, Duration::from_secs(120));
    assert_eq!(status.code(), Some(0));
}
