//! End-to-end runs of the real binary on the process runtime: the three tiers as processes.

mod common;

use common::*;
use std::time::Duration;

#[test]
fn four_by_twenty_five_by_twenty_sleep_runs_clean_and_accounts_for_everything() {
    let _serial = serial();
    let (r, _dir, out, stdout) = case_clean_run(&PROCESS, [4, 25, 20], "sleep:10ms");
    let a = &r["accounting"];
    assert_eq!((a["instances_failed"].as_u64(), a["requests_failed"].as_u64(), a["requests_timed_out"].as_u64()), (Some(0), Some(0), Some(0)));

    // The action measures its own service time: a 10 ms sleep never reads shorter. How much
    // longer is a timing figure of a shared machine: printed, and measured by benchmarks, not
    // asserted here.
    let p50 = r["metrics"]["service_time"]["p50_us"].as_u64().unwrap();
    // (A histogram bucket near 10 ms is a few µs wide: its lower edge may read just under.)
    let min = r["metrics"]["service_time"]["min_us"].as_u64().unwrap();
    assert!(min >= 9_950, "a sleep of 10 ms measured {min} µs");
    eprintln!("service_time p50 = {p50} µs");
    for m in ["start_latency", "phase_boot", "phase_init", "request_rtt", "request_rtt_cold", "request_rtt_warm", "overhead"] {
        let s = &r["metrics"][m];
        for k in ["count", "min_us", "mean_us", "p50_us", "p90_us", "p99_us", "p999_us", "max_us"] {
            assert!(s[k].is_u64(), "{m}.{k} missing in {s}");
        }
    }
    assert_eq!(r["metrics"]["start_latency"]["count"], 100);
    assert_eq!(r["metrics"]["request_rtt_cold"]["count"], 100, "one cold request per fresh action process");
    assert_eq!(r["metrics"]["request_rtt_warm"]["count"], 1900);
    let eff = r["efficiency"]["ratio"].as_f64().unwrap();
    assert!(eff > 0.0 && eff <= 1.0, "efficiency {eff}");
    assert_eq!(r["efficiency"]["ideal_us"], 200_000);

    // instances.csv: a header and one row per scenario and action, each with its timestamps.
    let rows = csv_rows(&out.join("instances.csv"));
    assert_eq!(rows.len(), 1 + 104);
    let col = |name: &str| rows[0].iter().position(|c| c == name).unwrap_or_else(|| panic!("no column {name}"));
    for row in &rows[1..] {
        for c in ["requested_us", "started_us", "connected_us", "ready_us", "stopped_us", "process_entry_us", "self_ready_us"] {
            assert!(!row[col(c)].is_empty(), "{c} empty in {row:?}");
        }
        let t = |c: &str| row[col(c)].parse::<i64>().unwrap();
        // `started` is taken when spawn() returns; a fast child can connect before the parent
        // thread gets to read the clock, so started and connected have no fixed order.
        assert!(t("requested_us") <= t("started_us") && t("requested_us") <= t("connected_us"), "{row:?}");
        assert!(t("connected_us") <= t("ready_us"), "{row:?}");
        assert_eq!(row[col("outcome")], "ready");
    }
    assert_eq!(rows[1..].iter().filter(|r| r[col("role")] == "scenario").count(), 4);
    assert!(stdout.contains("start_latency") && stdout.contains("efficiency"), "summary:\n{stdout}");
}

#[test]
fn an_action_killed_with_sigkill_is_counted_as_failed_and_nothing_is_left_running() {
    let _serial = serial();
    let dir = tempdir();
    let (mut child, out, run_id, addr) = start_live(dir.path(), &["-S", "2", "-A", "4", "-N", "40", "--work", "sleep:25ms"]);
    // Action 2 of scenario 0 up, and the run serving (each action has 40 × 25 ms to do).
    let victim = wait_until(Duration::from_secs(20), "action 0/2 up", || {
        run_processes(&run_id, |id| id.ends_with("-g0-s0-a2")).first().map(|p| p.0)
    });
    wait_until(Duration::from_secs(20), "answered requests", || (requests_done(&addr)? >= 8.0).then_some(()));
    assert_eq!(signal(victim, libc::SIGKILL), 0, "kill -9 {victim}");

    let status = wait_for(&mut child, Duration::from_secs(60));
    assert_eq!(status.code(), Some(1), "a failed action means exit 1");
    let r = results(&out);
    let a = &r["accounting"];
    assert_eq!(a["instances_requested"], 10);
    assert_eq!(a["instances_failed"], 1, "{a}");
    assert_eq!(a["instances_ready"], 9);
    let n = |k: &str| a[k].as_u64().unwrap();
    assert_balanced(a);
    assert_eq!(n("requests_planned"), 320);
    assert!(n("requests_not_sent") > 0, "the killed action's remaining requests are not sent: {a}");
    assert_eq!(r["run"]["status"], "failed");

    let rows = csv_rows(&out.join("instances.csv"));
    let col = |name: &str| rows[0].iter().position(|c| c == name).unwrap();
    let failed: Vec<_> = rows[1..].iter().filter(|r| r[col("outcome")] == "failed").collect();
    assert_eq!(failed.len(), 1);
    assert!(failed[0][col("instance_id")].ends_with("-g0-s0-a2"));
    assert!(failed[0][col("error")].contains("connection lost"), "{:?}", failed[0]);

    assert!(run_processes(&run_id, |_| true).is_empty(), "children left running");
}

#[test]
fn ctrl_c_stops_writes_results_reaps_children_and_exits_130() {
    let _serial = serial();
    let r = case_ctrl_c(&PROCESS, [2, 3, 100], "sleep:50ms", 8);
    assert_eq!(r["accounting"]["instances_requested"], 8);
}

#[test]
fn a_sigkilled_driver_leaves_no_process_after_60_s() {
    let _serial = serial();
    case_driver_killed(&PROCESS, [2, 3, 100], "sleep:50ms", 8);
}

#[test]
fn sigterm_sighup_and_sigquit_end_a_run_as_ctrl_c_does_with_128_plus_the_signal() {
    let _serial = serial();
    // SIGHUP (the terminal went away) and SIGQUIT (Ctrl-\) would otherwise kill the driver
    // by their default action and leave its children running.
    for sig in [libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT] {
        let r = case_signal(&PROCESS, [1, 3, 100], "sleep:50ms", 4, sig);
        assert_eq!(r["accounting"]["instances_requested"], 4, "signal {sig}");
    }
}

#[test]
fn invalid_input_exits_2_naming_the_problem_and_starts_nothing() {
    let _serial = serial();
    let dir = tempdir();
    let out = dir.path().join("r");
    let o = run(&["run", "-S", "0", "--out", out.to_str().unwrap()], Duration::from_secs(20));
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("--scenarios") && err.contains("at least 1"), "{err}");
    assert!(!out.exists(), "nothing is created for invalid input");

    let o = run(&["run", "--work", "nap:5ms"], Duration::from_secs(20));
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--work"));

    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[[group]]\nscenarios = 2\nactoins = 3\n").unwrap();
    let o = run(&["run", bad.to_str().unwrap()], Duration::from_secs(20));
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("bad.toml:3") && err.contains("actoins"), "{err}");
}

#[test]
fn every_example_scenario_runs_on_the_process_runtime_and_shows_its_effect() {
    let _serial = serial();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scenarios");
    let dir = tempdir();
    let mut ran = std::collections::BTreeMap::new();
    let mut files: Vec<_> = std::fs::read_dir(&root).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    for path in files {
        if path.extension().is_none_or(|x| x != "toml") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        // Container-only examples are exercised by the Docker tests (Kubernetes ones by hand
        // and Mesos ones by hand and by the recorded exchanges: no cluster runs here).
        if ["docker", "swarm", "kubernetes", "mesos"].iter().any(|r| text.contains(&format!("runtime = \"{r}\""))) {
            continue;
        }
        let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
        let out = dir.path().join(&stem);
        let o = run(&["run", path.to_str().unwrap(), "--out", out.to_str().unwrap(), "-q"], Duration::from_secs(180));
        let r = results(&out);
        let a = &r["accounting"];
        assert_balanced(a);
        assert_eq!(o.status.code(), Some(0), "{stem}: {a}\n{}", String::from_utf8_lossy(&o.stderr));
        ran.insert(stem, r);
    }
    let m = |stem: &str, metric: &str, k: &str| ran[stem]["metrics"][metric][k].as_u64().unwrap_or(0);
    let acc = |stem: &str, k: &str| ran[stem]["accounting"][k].as_u64().unwrap();

    // One-shot: a fresh process for every request, so every request is cold.
    assert_eq!(m("one-shot", "request_rtt_cold", "count"), acc("one-shot", "requests_ok"));
    assert_eq!(m("one-shot", "request_rtt_warm", "count"), 0);
    assert_eq!(acc("one-shot", "instances_requested"), 1 + 4 * 8);
    // Keep-warm: one cold request per action, the rest warm.
    assert_eq!(m("hello", "request_rtt_cold", "count"), 10);
    // Pause: the next request after a resume is measured from the resume call.
    assert!(m("pause-resume", "pause_latency", "count") > 0 && m("pause-resume", "resume_latency", "count") > 0);
    assert!(m("pause-between-bursts", "resume_latency", "count") > 0);
    // Kill: planned, timed, and not a failure.
    assert!(m("kill", "kill_latency", "count") > 0);
    // Eviction probe: nothing evicts a warm process here, so every probe finds it warm.
    assert_eq!(m("eviction-probe", "eviction_probe_warm", "count"), 8);
    assert_eq!(m("eviction-probe", "eviction_probe_cold", "count"), 0);
    // Churn: every cycle is a fresh instance.
    assert_eq!(acc("churn", "instances_requested"), 2 + 2 * 4 * 3);
    // Poisson arrivals queue behind a busy action now and then; fixed ones at the same rate do not.
    assert!(
        m("open-exponential", "request_rtt", "p90_us") > m("open-fixed", "request_rtt", "p90_us"),
        "exponential arrivals widen the RTT tail: {} vs {}",
        ran["open-exponential"]["metrics"]["request_rtt"],
        ran["open-fixed"]["metrics"]["request_rtt"]
    );
    // All together: every instance alive at once, no request before the last is ready, no
    // removal before the last response.
    assert_eq!(ran["hold-all-ready"]["peak_alive"], 3 + 3 * 15);
    // Warm-up groups stay out of the summaries but not out of the accounting.
    assert!(acc("warmup", "instances_requested") > m("warmup", "start_latency", "count") + 2);
    assert!(ran.len() >= 15, "only {} example scenarios ran", ran.len());
}


#[test]
fn a_held_group_is_all_ready_before_any_request_and_all_up_until_the_last_response() {
    let _serial = serial();
    let dir = tempdir();
    let toml = one_group("held", [3, 8, 4], "sleep:5ms", r#"hold = "all_ready""#);
    let (held, r) = run_file(dir.path(), &toml, &["-q"], Duration::from_secs(120));
    assert_balanced(&r["accounting"]);
    assert_eq!(r["peak_alive"], 3 + 3 * 8);
    let rows = csv_rows(&held.join("instances.csv"));
    let col = |name: &str| rows[0].iter().position(|c| c == name).unwrap();
    let actions: Vec<&Vec<String>> = rows[1..].iter().filter(|r| r[col("role")] == "action").collect();
    let t = |r: &Vec<String>, c: &str| r[col(c)].parse::<i64>().unwrap();
    let last_ready = actions.iter().map(|r| t(r, "ready_us")).max().unwrap();
    let first_response = actions.iter().map(|r| t(r, "first_response_us")).min().unwrap();
    let last_response = actions.iter().map(|r| t(r, "last_response_us")).max().unwrap();
    let first_removed = actions.iter().map(|r| t(r, "removed_us")).min().unwrap();
    assert!(last_ready <= first_response, "a request went out before every action was ready");
    assert!(last_response <= first_removed, "an action was removed before the group's work was done");
}

#[test]
fn a_run_past_pid_max_is_refused_before_anything_starts() {
    // As many scenarios as the host has pids: each scenario and its action need threads of
    // their own, so this can never fit, whatever pid_max this host has.
    let pid_max = std::fs::read_to_string("/proc/sys/kernel/pid_max").unwrap().trim().to_owned();
    let dir = tempdir();
    let out = dir.path().join("r");
    let o = run(&["run", "-S", &pid_max, "-A", "1", "-N", "1", "--out", out.to_str().unwrap()], Duration::from_secs(30));
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("kernel.pid_max") && err.contains("sysctl -w kernel.pid_max="), "{err}");
    assert!(!out.exists(), "nothing may start, not even the results folder");
}
