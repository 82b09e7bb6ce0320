//! End-to-end runs on the real single-node swarm: scenarios and actions as Swarm services.
//!
//! Needs the engine, an active swarm (`docker swarm init --advertise-addr 127.0.0.1`; the
//! tests start one when it is inactive and leave it running) and the `stampede:latest` image.
//! Without them they fail with instructions — never pass by skipping.

mod common;

use common::*;

use std::time::Duration;

fn require_swarm() {
    (SWARM.require)();
}

#[test]
fn swarm_run_end_to_end_with_native_task_phases_and_nothing_left() {
    let _serial = serial();
    let (r, _dir, out, stdout) = case_clean_run(&SWARM, [2, 10, 10], "sleep:10ms");
    assert!(r["environment"]["runtime_versions"]["swarm"].as_str().unwrap().contains("swarm"));
    assert_eq!(r["environment"]["runtime_options"]["cli"]["options"]["swarm"]["restart_condition"], "none");
    assert_eq!(r["native_states"], serde_json::json!(["new", "pending", "assigned", "accepted", "preparing", "starting", "running"]));

    // Task states per instance in native_states.csv (long format) ...
    let rows = csv_rows(&out.join("instances.csv"));
    let col = |name: &str| rows[0].iter().position(|c| c == name).unwrap();
    let states = csv_rows(&out.join("native_states.csv"));
    assert_eq!(states[0], ["instance_id", "state", "time_us", "source"]);
    for row in &rows[1..] {
        for c in ["runtime_started_us", "connected_us", "ready_us"] {
            assert!(!row[col(c)].is_empty(), "{c} empty in {row:?}");
        }
        let id = &row[col("instance_id")];
        let mine: Vec<&Vec<String>> = states[1..].iter().filter(|s| &s[0] == id).collect();
        let at = |state: &str| {
            mine.iter().find(|s| s[1] == state).unwrap_or_else(|| panic!("{id}: no {state} in {mine:?}"))[2].parse::<i64>().unwrap()
        };
        let requested = row[col("requested_us")].parse::<i64>().unwrap();
        assert!(requested <= at("new") + 1_000 && at("new") <= at("pending") && at("pending") <= at("assigned"));
        assert!(mine.iter().all(|s| s[3] == "swarm_task_status"));
    }
    // ... their phase summaries in results.json and the summary.
    for m in ["native_phase_new", "native_phase_pending", "native_phase_assigned"] {
        assert_eq!(r["metrics"][m]["count"], 20, "{m}: {}", r["metrics"][m]);
        assert_eq!(r["scenario_metrics"][m]["count"], 2, "{m}");
        assert!(stdout.contains(m), "summary lacks {m}:\n{stdout}");
    }
    assert_nothing_left(&SWARM, r["run"]["id"].as_str().unwrap());
}

#[test]
fn swarm_overlay_network_pause_and_kill_steps() {
    let _serial = serial();
    require_swarm();
    let dir = tempdir();
    let toml = one_group("swarm-overlay", [1, 3, 6], "sleep:5ms", r#"
runtime = "swarm"
swarm = { network = "overlay" }
[[group.steps]]
kind = "pause"
after_requests = 2
duration = "200ms"
actions = [0]
[[group.steps]]
kind = "kill"
after_requests = 3
actions = [1]
"#);
    let (_, r) = run_file(dir.path(), &toml, &[], Duration::from_secs(600));
    assert_eq!(r["accounting"]["requests_ok"], 6 + 3 + 6);
    assert_eq!(r["metrics"]["pause_latency"]["count"], 1);
    assert_eq!(r["metrics"]["resume_latency"]["count"], 1);
    assert_eq!(r["metrics"]["kill_latency"]["count"], 1);
    assert_nothing_left(&SWARM, r["run"]["id"].as_str().unwrap());
}

#[test]
fn a_sigkilled_swarm_driver_leaves_no_service_or_container_after_60_s() {
    let _serial = serial();
    case_driver_killed(&SWARM, [1, 3, 200], "sleep:50ms", 4);
}

#[test]
fn ctrl_c_of_a_swarm_run_removes_every_service_and_exits_130() {
    let _serial = serial();
    case_ctrl_c(&SWARM, [1, 3, 200], "sleep:50ms", 4);
}
