//! End-to-end runs on the real Docker Engine: scenarios and actions as containers.
//!
//! Needs the engine and the `stampede:latest` image (`scripts/test` builds it). Without them
//! these tests fail with instructions — they never pass by skipping. Every run is labelled
//! `stampede.run=<id>`; each test checks that nothing of its run is left.

mod common;

use common::*;
use std::process::Command;
use std::time::Duration;

fn require_engine_and_image() {
    (DOCKER.require)();
}

/// Containers and networks of the run still present.
fn leftovers(run_id: &str) -> (usize, usize) {
    let filter = format!("label=stampede.run={run_id}");
    (docker(&["ps", "-aq", "--filter", &filter]).lines().count(), docker(&["network", "ls", "-q", "--filter", &filter]).lines().count())
}

fn container_of(run_id: &str, scenario: u32, action: u32) -> Option<String> {
    let out = docker(&[
        "ps",
        "-q",
        "--filter",
        &format!("label=stampede.run={run_id}"),
        "--filter",
        "label=stampede.role=action",
        "--filter",
        &format!("label=stampede.scenario={scenario}"),
        "--filter",
        &format!("label=stampede.action={action}"),
    ]);
    out.lines().next().map(str::to_owned)
}

#[test]
fn docker_run_end_to_end_accounts_for_everything_and_leaves_nothing() {
    let _serial = serial();
    let (r, _dir, out, _) = case_clean_run(&DOCKER, [2, 10, 10], "sleep:10ms");
    assert!(r["environment"]["runtime_versions"]["docker"].as_str().unwrap().starts_with("Docker"));
    assert_eq!(r["environment"]["runtime_options"]["cli"]["options"]["docker"]["network"], "host");

    let rows = csv_rows(&out.join("instances.csv"));
    let col = |name: &str| rows[0].iter().position(|c| c == name).unwrap();
    for row in &rows[1..] {
        for c in ["requested_us", "created_us", "started_us", "runtime_started_us", "connected_us", "ready_us", "removed_us"] {
            assert!(!row[col(c)].is_empty(), "{c} empty in {row:?}");
        }
        let t = |c: &str| row[col(c)].parse::<i64>().unwrap();
        assert!(t("requested_us") <= t("created_us") && t("created_us") <= t("started_us"));
    }
    // Our `started` next to Docker's State.StartedAt, for every action container. How close
    // they are is a timing figure (the machine is shared): printed here, reported by runs and
    // the benchmark, not asserted.
    let skew = &r["metrics"]["runtime_start_skew"];
    assert_eq!(skew["count"], 20, "{skew}");
    eprintln!("runtime_start_skew: p50 {} µs, p99 {} µs", skew["p50_us"], skew["p99_us"]);
    assert!(r["metrics"]["phase_create"]["count"].as_u64().unwrap() == 20);

    let run_id = r["run"]["id"].as_str().unwrap();
    assert_eq!(leftovers(run_id), (0, 0), "containers/networks left behind");
}

#[test]
fn docker_pause_resume_and_per_scenario_networks() {
    let _serial = serial();
    require_engine_and_image();
    let dir = tempdir();
    let toml = one_group("docker-pause", [2, 2, 6], "sleep:5ms", r#"
runtime = "docker"
docker = { network = "per_scenario" }
[[group.steps]]
kind = "pause"
after_requests = 3
duration = "300ms"
actions = [1]
"#);
    let (_, r) = run_file(dir.path(), &toml, &[], Duration::from_secs(300));
    assert_eq!(r["accounting"]["requests_ok"], 24);
    assert_eq!(r["metrics"]["pause_latency"]["count"], 2, "one pause per scenario");
    // The request after a resume waits for the thaw: at least the work, and the pause
    // itself is not in it (the resume clock starts after the pause).
    let resume = &r["metrics"]["resume_latency"];
    assert_eq!(resume["count"], 2);
    assert!(resume["min_us"].as_u64().unwrap() >= 5_000, "{resume}");
    // Closed loop: the pause waits for the action to be idle, so no request is frozen mid-way:
    // every request still succeeds and none times out.
    assert_eq!(r["accounting"]["requests_timed_out"], 0);
    let run_id = r["run"]["id"].as_str().unwrap();
    assert_eq!(leftovers(run_id), (0, 0));
}

/// A run of S=1, A=3 on Docker with its live endpoint, returned once action 0/1's container
/// exists and `answered` requests are answered: (child, results folder, run id, that container).
fn start_with_victim(dir: &std::path::Path, n: &str, work: &str, answered: f64) -> (std::process::Child, std::path::PathBuf, String, String) {
    let (child, out, run_id, addr) = start_live(dir, &["--runtime", "docker", "-S", "1", "-A", "3", "-N", n, "--work", work]);
    let victim = wait_until(Duration::from_secs(60), "action container 0/1 starting", || container_of(&run_id, 0, 1));
    wait_until(Duration::from_secs(60), "answered requests", || (requests_done(&addr)? >= answered).then_some(()));
    (child, out, run_id, victim)
}

/// One of four instances failed, the rest accounted, exit 1, nothing left.
fn assert_one_action_lost(status: std::process::ExitStatus, out: &std::path::Path, run_id: &str) {
    assert_eq!(status.code(), Some(1));
    let r = results(out);
    let a = &r["accounting"];
    assert_eq!(a["instances_failed"], 1, "{a}");
    assert_eq!(a["instances_requested"], 4);
    assert_balanced(a);
    assert_eq!(leftovers(run_id), (0, 0));
}

#[test]
fn a_killed_action_container_fails_the_run_with_exit_1_and_nothing_left() {
    let _serial = serial();
    require_engine_and_image();
    let dir = tempdir();
    let (mut child, out, run_id, victim) = start_with_victim(dir.path(), "60", "sleep:25ms", 3.0);
    docker(&["kill", &victim]);
    let status = wait_for(&mut child, Duration::from_secs(120));
    assert_one_action_lost(status, &out, &run_id);
}

/// `docker pause` from outside freezes the container as SIGSTOP freezes a process: its link goes
/// silent, the liveness deadline fails it, the others finish, and the frozen container is removed.
#[test]
fn an_action_container_paused_from_outside_is_failed_and_removed_and_the_rest_complete() {
    let _serial = serial();
    require_engine_and_image();
    let dir = tempdir();
    let (mut child, out, run_id, victim) = start_with_victim(dir.path(), "200", "sleep:50ms", 6.0);
    docker(&["pause", &victim]);
    let t0 = std::time::Instant::now();
    let status = wait_for(&mut child, Duration::from_secs(180));
    // docs/faults.md: within the request timeout (30 s by default) plus 30 s.
    assert!(t0.elapsed() < Duration::from_secs(60), "the run took {:?} after the pause", t0.elapsed());
    assert_one_action_lost(status, &out, &run_id);
    let r = results(&out);
    assert_eq!(r["accounting"]["links_stalled"].as_u64(), Some(1), "{}", r["accounting"]);
    assert_eq!(r["accounting"]["requests_ok"].as_u64().map(|ok| ok >= 400), Some(true), "{}", r["accounting"]);
}

/// A container that exits at once ([`case_child_exits_at_once`]): its `die` event fails the
/// launch, with the container's exit code.
#[test]
fn a_container_that_exits_at_once_fails_its_launch_at_once_with_its_exit_code() {
    let _serial = serial();
    let (h, rows) = case_child_exits_at_once(&DOCKER, Duration::from_secs(40));
    let col = |n: &str| h.iter().position(|c| c == n).unwrap();
    for row in rows.iter().filter(|r| r[col("role")] == "scenario") {
        assert!(row[col("error")].contains("exited before it connected (exit code 1)"), "{row:?}");
    }
}

/// Stop this machine's Docker daemon and start it again with the same command line, as an
/// operator restarting it would; returns once it answers again (and its swarm, if any, has a
/// leader). Fails loudly when the daemon is not a local process this test can restart.
fn restart_daemon() {
    let pid = std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .find(|pid| std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "dockerd"))
        .expect("the daemon-restart test needs dockerd running on this machine");
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    let argv: Vec<String> =
        cmdline.split(|b| *b == 0).filter(|a| !a.is_empty()).map(|a| String::from_utf8_lossy(a).into_owned()).collect();
    let swarm = docker(&["info", "--format", "{{.Swarm.LocalNodeState}}"]).trim() == "active";
    assert_eq!(signal(pid, libc::SIGTERM), 0);
    wait_until(Duration::from_secs(90), "dockerd to stop", || (!std::path::Path::new(&format!("/proc/{pid}")).exists()).then_some(()));
    let log = std::fs::File::create(std::env::temp_dir().join("stampede-test-dockerd.log")).unwrap();
    // Its own session, so it outlives this test and no terminal signal reaches it. Never waited
    // for: the daemon is the machine's, not a child of this test.
    #[allow(clippy::zombie_processes)]
    let _daemon = Command::new("setsid")
        .args(&argv)
        .stdin(std::process::Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("restart dockerd");
    let answers = |args: &[&str]| Command::new("docker").args(args).output().is_ok_and(|o| o.status.success());
    wait_until(Duration::from_secs(90), "dockerd to answer again", || answers(&["info"]).then_some(()));
    if swarm {
        wait_until(Duration::from_secs(90), "the swarm to have a leader again", || answers(&["node", "ls"]).then_some(()));
    }
}

/// The daemon restarted mid-run: its shutdown stops every container of the run, the driver
/// loses its scenarios and ends the run (results complete, answered requests kept), and its
/// cleanup waits for the daemon to answer again, so the stopped containers are removed too.
#[test]
#[ignore = "stops and restarts this machine's Docker daemon: scripts/test runs it"]
fn a_daemon_restarted_mid_run_ends_the_run_and_its_containers_are_removed_once_it_is_back() {
    let _serial = serial();
    require_engine_and_image();
    let dir = tempdir();
    let (mut child, out, run_id, addr) =
        start_live(dir.path(), &["--runtime", "docker", "-S", "2", "-A", "3", "-N", "2000", "--work", "sleep:50ms"]);
    wait_until(Duration::from_secs(120), "8 instances up", || ((DOCKER.up)(&run_id) >= 8).then_some(()));
    wait_until(Duration::from_secs(60), "answered requests", || (requests_done(&addr)? >= 20.0).then_some(()));
    restart_daemon();
    let status = wait_for(&mut child, Duration::from_secs(180));
    assert_eq!(status.code(), Some(1));
    let r = results(&out);
    assert_eq!(r["run"]["status"], "failed");
    let a = &r["accounting"];
    assert_balanced(a);
    assert_eq!(a["instances_requested"].as_u64(), Some(8), "{a}");
    assert!(a["requests_ok"].as_u64().unwrap() >= 20, "answered requests were lost: {a}");
    assert_eq!(leftovers(&run_id), (0, 0), "the cleanup did not wait for the daemon");
}

#[test]
fn a_results_folder_that_cannot_be_written_still_removes_every_container() {
    let _serial = serial();
    require_engine_and_image();
    let dir = tempdir();
    let out = dir.path().join("r");
    let mut child = spawn(&[
        "run", "--runtime", "docker", "-S", "1", "-A", "3", "-N", "40", "--work", "sleep:25ms", "--out", out.to_str().unwrap(),
    ]);
    let run_id = wait_run_id(&out, Duration::from_secs(30));
    wait_until(Duration::from_secs(60), "action container 0/2 starting", || container_of(&run_id, 0, 2));
    // The folder goes away and a file takes its place: every final write fails (ENOTDIR),
    // as on a removed mount. Root ignores permission bits, so chmod would prove nothing.
    std::fs::remove_dir_all(&out).unwrap();
    std::fs::write(&out, b"not a folder").unwrap();

    let status = wait_for(&mut child, Duration::from_secs(120));
    assert_eq!(status.code(), Some(1), "a run whose results cannot be written must not exit 0");
    assert_eq!(leftovers(&run_id), (0, 0), "the failed write skipped the cleanup");
}

#[test]
fn ctrl_c_of_the_docker_driver_writes_results_removes_everything_and_exits_130() {
    let _serial = serial();
    case_ctrl_c(&DOCKER, [2, 3, 200], "sleep:50ms", 8);
}

#[test]
fn a_sigkilled_docker_driver_leaves_no_container_after_60_s() {
    let _serial = serial();
    case_driver_killed(&DOCKER, [2, 3, 200], "sleep:50ms", 8);
}

#[test]
fn a_missing_image_exits_3_before_creating_anything() {
    let _serial = serial();
    let dir = tempdir();
    let out = dir.path().join("r");
    let before = docker(&["ps", "-aq", "--filter", "label=stampede.run"]).lines().count();
    let o = run(
        &["run", "--runtime", "docker", "--image", "stampede-does-not-exist:nope", "-S", "1", "-A", "1", "--out", out.to_str().unwrap()],
        Duration::from_secs(60),
    );
    assert_eq!(o.status.code(), Some(3));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("stampede image build"), "the message says how to build it: {err}");
    assert_eq!(docker(&["ps", "-aq", "--filter", "label=stampede.run"]).lines().count(), before);
}

#[test]
fn an_unreachable_daemon_exits_3() {
    let _serial = serial();
    let dir = tempdir();
    let o = stampede(&["run", "--runtime", "docker", "-S", "1", "-A", "1", "--out", dir.path().join("r").to_str().unwrap()])
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(3), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stderr).contains("daemon"), "{}", String::from_utf8_lossy(&o.stderr));
}


#[test]
fn every_example_scenario_runs_on_docker() {
    let _serial = serial();
    require_engine_and_image();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scenarios");
    let dir = tempdir();
    let mut files: Vec<_> = std::fs::read_dir(&root).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    let mut ran = 0;
    for path in files.iter().filter(|p| p.extension().is_some_and(|x| x == "toml")) {
        let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(path).unwrap();
        // Swarm examples run in the Swarm tests; Mesos ones are about offers (by hand, and the
        // recorded exchanges: no master runs here).
        if text.contains("runtime = \"swarm\"") || text.contains("runtime = \"mesos\"") {
            continue;
        }
        // `--runtime docker` moves every group that does not pin its runtime; a group pinned
        // to processes would not be a Docker run, so the examples must not pin one.
        assert!(!text.contains("runtime = \"process\"") || stem == "hello", "{stem} pins the process runtime");
        let out = dir.path().join(&stem);
        let file = path.to_str().unwrap();
        let o = run(&["run", file, "--runtime", "docker", "--out", out.to_str().unwrap(), "-q"], Duration::from_secs(300));
        let r = results(&out);
        let a = &r["accounting"];
        assert_eq!(o.status.code(), Some(0), "{stem}: {a}\n{}", String::from_utf8_lossy(&o.stderr));
        for g in r["scenario"]["groups"].as_array().unwrap() {
            assert_eq!(g["runtime"], "docker", "{stem}: group {} did not run on Docker", g["name"]);
        }
        assert_eq!(leftovers(r["run"]["id"].as_str().unwrap()), (0, 0), "{stem} left containers or networks");
        ran += 1;
    }
    // The filler image is a cache for image-size experiments: remove what this test built.
    let _ = Command::new("docker").args(["image", "rm", "-f", "stampede-filler:50mb"]).output();
    assert!(ran >= 15, "only {ran} examples ran on Docker");
}

#[test]
fn stampede_clean_removes_leftovers_of_a_run_by_label() {
    let _serial = serial();
    require_engine_and_image();
    // Leftovers as a crashed driver would leave them: a container and a network of one run.
    let run_id = format!("cleantest{}", std::process::id());
    let label = format!("stampede.run={run_id}");
    docker(&["network", "create", "--label", &label, &format!("stampede-{run_id}")]);
    docker(&["create", "--label", &label, "--label", "stampede.role=action", IMAGE, "action"]);
    assert_eq!(leftovers(&run_id), (1, 1));

    let o = run(&["clean", "--run", &run_id], Duration::from_secs(120));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{stdout}\n{}", String::from_utf8_lossy(&o.stderr));
    assert!(stdout.contains("removed"), "{stdout}");
    assert_eq!(leftovers(&run_id), (0, 0));

    // Nothing left: says so, and still succeeds.
    let o = run(&["clean", "--run", &run_id], Duration::from_secs(120));
    assert_eq!(o.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&o.stdout).contains("nothing to clean"));
}
