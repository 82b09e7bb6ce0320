//! Faults from docs/faults.md, triggered for real on the process runtime: a stopped
//! (SIGSTOP) action in the middle of a large payload, a stopped scenario, a token holder
//! sending an oversized message, a flood of idle connections on a scenario's port. Each run
//! must end within its request timeout plus the liveness deadline (and slack), write complete
//! results that count the loss by its cause, and leave no process behind.

mod common;

use common::*;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

/// The links' liveness deadline (`stampede_protocol::conn::LIVENESS`) plus its grace.
const LIVENESS: Duration = Duration::from_secs(21);

/// A run of `toml` in the background, returned once the instance the fault is aimed at,
/// `*{victim}` (`-g0-s1`, say), is up and the live endpoint counts `answered` requests, so
/// that the fault lands mid-work: (child, results folder, run id, the victim's pid).
/// `answered` counts the requests of every group, or of the one group named in `answered_in`.
fn start_with_victim(dir: &Path, toml: &str, extra: &[&str], victim: &str, answered: f64) -> (Child, PathBuf, String, i32) {
    start_with_victim_in(dir, toml, extra, victim, answered, None)
}

fn start_with_victim_in(
    dir: &Path,
    toml: &str,
    extra: &[&str],
    victim: &str,
    answered: f64,
    answered_in: Option<&str>,
) -> (Child, PathBuf, String, i32) {
    let file = write_scenario(dir, toml);
    let mut args = vec![file.to_str().unwrap()];
    args.extend_from_slice(extra);
    let (child, out, run_id, addr) = start_live(dir, &args);
    let pid = wait_until(Duration::from_secs(60), &format!("instance *{victim} up"), || {
        run_processes(&run_id, |id| id.ends_with(victim)).first().map(|p| p.0)
    });
    wait_until(Duration::from_secs(60), &format!("{answered} answered requests"), || {
        let done = match answered_in {
            None => requests_done(&addr)?,
            Some(group) => requests_done_in(&addr, group)?,
        };
        (done >= answered).then_some(())
    });
    (child, out, run_id, pid)
}

/// The process's environment variable `name` (the run token, say), as a child sees it.
fn env_of(pid: i32, name: &str) -> String {
    let env = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
    env.split(|b| *b == 0)
        .find_map(|v| std::str::from_utf8(v).ok()?.strip_prefix(&format!("{name}=")).map(str::to_owned))
        .unwrap_or_else(|| panic!("{name} not in the environment of {pid}"))
}

#[test]
fn a_stopped_action_mid_payload_is_failed_within_its_request_timeout_plus_the_liveness_deadline() {
    let _serial = serial();
    let dir = tempdir();
    // 4 MiB per request fills the socket buffers of an action that stopped reading.
    let toml = one_group("stalled-action", [1, 3, 40], "sleep:20ms", r#"
payload = { request = 4194304, response = 16 }
timeouts = { request = "2s" }
"#);
    let (mut child, out, run_id, victim) = start_with_victim(dir.path(), &toml, &[], "-g0-s0-a1", 3.0);
    assert_eq!(signal(victim, libc::SIGSTOP), 0);
    let t0 = Instant::now();
    let status = wait_for(&mut child, Duration::from_secs(120));
    let took = t0.elapsed();
    // The other two actions do the rest of their 40 × ~25 ms; the stopped one must not hold it.
    assert!(took < Duration::from_secs(2) + LIVENESS + Duration::from_secs(30), "the run took {took:?} after the stop");
    assert_eq!(status.code(), Some(1), "a failed action means exit 1");
    let r = results(&out);
    assert_eq!(r["run"]["status"], "failed");
    let a = &r["accounting"];
    assert_balanced(a);
    assert_eq!((a["instances_requested"].as_u64(), a["instances_failed"].as_u64()), (Some(4), Some(1)), "{a}");
    assert!(a["requests_timed_out"].as_u64().unwrap() + a["requests_failed"].as_u64().unwrap() >= 1, "{a}");
    let (h, rows) = instance_rows(&out);
    let col = |n: &str| h.iter().position(|c| c == n).unwrap();
    let failed: Vec<_> = rows.iter().filter(|r| r[col("outcome")] == "failed").collect();
    assert_eq!(failed.len(), 1, "{rows:?}");
    assert!(failed[0][col("instance_id")].ends_with("-g0-s0-a1"));
    assert_eq!(rows.iter().filter(|r| r[col("requests_ok")] == "40").count(), 2, "the others answered everything");
    assert!(run_processes(&run_id, |_| true).is_empty(), "children left running (a stopped one included)");
}

/// One of 2 scenarios (3 actions each, 200 requests of 50 ms) gets `sig` mid-work, once it has
/// reported answers of its own. The run ends within `limit` of it, exit 1: S + S·A requested,
/// that scenario and its 3 actions failed, the requests it last reported answered kept, no
/// process left. Returns the accounting and that scenario's error.
fn lose_a_scenario(sig: i32, limit: Duration) -> (serde_json::Value, String) {
    let dir = tempdir();
    // Two groups of one scenario, so the live metrics (labelled by group) say when the victim
    // itself has reported: on a loaded machine the other scenario alone can answer any number
    // before the victim's first progress, and then it has nothing reported to keep.
    let group = |name: &str| format!("[[group]]\nname = \"{name}\"\nscenarios = 1\nactions = 3\nrequests = 200\nwork = \"sleep:50ms\"\n");
    let toml = format!("name = \"lost-scenario\"\n{}{}", group("kept"), group("lost"));
    let (mut child, out, run_id, victim) = start_with_victim_in(dir.path(), &toml, &[], "-g1-s0", 10.0, Some("lost"));
    assert_eq!(signal(victim, sig), 0);
    let t0 = Instant::now();
    let status = wait_for(&mut child, Duration::from_secs(120));
    let took = t0.elapsed();
    assert!(took < limit, "the run took {took:?} after signal {sig}");
    assert_eq!(status.code(), Some(1));
    let r = results(&out);
    let a = &r["accounting"];
    assert_balanced(a);
    // S + S·A whatever happened; the lost scenario and its 3 actions failed.
    assert_eq!(a["instances_requested"].as_u64(), Some(2 + 2 * 3), "{a}");
    assert_eq!(a["instances_failed"].as_u64(), Some(1 + 3), "{a}");
    // What the lost scenario reported as answered before it went stays answered.
    assert!(a["requests_ok"].as_u64().unwrap() > 3 * 200, "{a}");
    let (h, rows) = instance_rows(&out);
    let col = |n: &str| h.iter().position(|c| c == n).unwrap();
    let s1 = rows.iter().find(|r| r[col("instance_id")].ends_with("-g1-s0")).expect("a row for the lost scenario");
    assert_eq!(s1[col("outcome")], "failed");
    assert!(run_processes(&run_id, |_| true).is_empty(), "children left running");
    (a.clone(), s1[col("error")].clone())
}

#[test]
fn a_stopped_scenario_is_failed_after_the_liveness_deadline_and_its_actions_still_count() {
    let _serial = serial();
    let (a, error) = lose_a_scenario(libc::SIGSTOP, LIVENESS + Duration::from_secs(30));
    assert!(a["links_stalled"].as_u64().unwrap() >= 1, "the driver counts the stall: {a}");
    assert!(error.contains("stalled"), "{error}");
}

/// SIGKILL closes the scenario's link at once: no liveness deadline to wait for; its actions
/// (its children) die with it.
#[test]
fn a_killed_scenario_is_failed_at_once_and_its_actions_still_count() {
    let _serial = serial();
    let (a, error) = lose_a_scenario(libc::SIGKILL, Duration::from_secs(30));
    assert_eq!(a["links_stalled"].as_u64(), Some(0), "a closed link is not a stall: {a}");
    assert!(!error.is_empty(), "the row says why");
}

#[test]
fn a_token_holder_sending_an_oversized_message_loses_that_link_only_and_is_counted() {
    let _serial = serial();
    let dir = tempdir();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let listen = format!("127.0.0.1:{port}");
    let toml = one_group("oversized", [1, 2, 100], "sleep:20ms", "");
    let (mut child, out, run_id, scenario) = start_with_victim(dir.path(), &toml, &["--listen", &listen], "-g0-s0", 2.0);
    let token = env_of(scenario, "STAMPEDE_TOKEN");
    // A hand-made websocket client with the run's token: upgrade, then one 64 MiB text frame
    // header (masked, length only). The driver must close it at the header, buffering nothing.
    let mut s = std::net::TcpStream::connect(&listen).unwrap();
    write!(
        s,
        "GET / HTTP/1.1\r\nHost: {listen}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nx-stampede-token: {token}\r\n\r\n"
    )
    .unwrap();
    // The upgrade is accepted: the token is right.
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        std::io::Read::read_exact(&mut s, &mut byte).expect("the driver answers the upgrade");
        head.push(byte[0]);
    }
    assert!(head.starts_with(b"HTTP/1.1 101"), "{}", String::from_utf8_lossy(&head));
    let mut frame = vec![0x81u8, 0x80 | 127];
    frame.extend_from_slice(&(64u64 << 20).to_be_bytes());
    frame.extend_from_slice(&[1, 2, 3, 4]);
    s.write_all(&frame).unwrap();
    let _ = s.write_all(&vec![b'a'; 1 << 20]);
    drop(s);
    let status = wait_for(&mut child, Duration::from_secs(120));
    let r = results(&out);
    let a = &r["accounting"];
    assert_eq!(a["messages_too_large"].as_u64(), Some(1), "{a}");
    assert_eq!(status.code(), Some(1), "a token holder's bad message fails the run, as a protocol error does");
    // The real children were not touched.
    assert_balanced(a);
    assert_eq!((a["instances_failed"].as_u64(), a["requests_ok"].as_u64()), (Some(0), Some(200)), "{a}");
    assert!(run_processes(&run_id, |_| true).is_empty(), "children left running");
}

/// Listening TCP ports of process `pid` (from `ss`, which names each socket's owner).
fn listening_ports(pid: i32) -> Vec<u16> {
    let o = std::process::Command::new("ss").args(["-ltnpH"]).output().expect("ss (iproute2) must be installed");
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter(|l| l.contains(&format!("pid={pid},")))
        .filter_map(|l| l.split_whitespace().nth(3)?.rsplit(':').next()?.parse().ok())
        .collect()
}

#[test]
fn a_flood_of_idle_connections_on_a_scenario_port_leaves_its_one_shot_launches_unaffected() {
    let _serial = serial();
    let dir = tempdir();
    // One-shot: a fresh action (a fresh connection to the scenario) for every request.
    let toml = one_group("flood", [1, 4, 100], "sleep:100ms", r#"lifecycle = "one_shot""#);
    let (mut child, out, run_id, scenario) = start_with_victim(dir.path(), &toml, &[], "-g0-s0", 1.0);
    let port =
        wait_until(Duration::from_secs(30), "the scenario's port", || listening_ports(scenario).first().copied());
    // 1,100 idle sockets (what made launches fail with "Too many open files" before).
    let mut idle = Vec::new();
    for _ in 0..1100 {
        match std::net::TcpStream::connect(("127.0.0.1", port)) {
            Ok(s) => idle.push(s),
            Err(e) => panic!("the scenario stopped accepting after {} connections: {e}", idle.len()),
        }
    }
    let status = wait_for(&mut child, Duration::from_secs(180));
    drop(idle);
    let r = results(&out);
    let a = &r["accounting"];
    assert_eq!(status.code(), Some(0), "{a}");
    assert_balanced(a);
    assert_eq!((a["instances_failed"].as_u64(), a["requests_ok"].as_u64()), (Some(0), Some(4 * 100)), "{a}");
    assert!(
        a["connections_shed"].as_u64().unwrap() + a["handshake_timeouts"].as_u64().unwrap() > 0,
        "the flood is counted: {a}"
    );
    assert!(run_processes(&run_id, |_| true).is_empty(), "children left running");
}

/// The process case of [`case_child_exits_at_once`]: the actions' rows say so too.
#[test]
fn a_child_that_exits_at_once_fails_at_once_not_at_its_ready_timeout() {
    let _serial = serial();
    let (h, rows) = case_child_exits_at_once(&PROCESS, Duration::from_secs(20));
    let col = |n: &str| h.iter().position(|c| c == n).unwrap();
    for row in &rows {
        assert!(row[col("error")].contains("exited before it connected"), "{row:?}");
    }
}

#[test]
fn a_bad_advertise_is_refused_up_front_with_exit_2() {
    let dir = tempdir();
    let out = dir.path().join("r");
    let o = run(&["run", "--advertise", "ws://driver:8080", "--out", out.to_str().unwrap()], Duration::from_secs(30));
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--advertise"), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(!out.exists(), "nothing started");
}

/// A small tmpfs mounted for one test, unmounted however the test ends.
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    fn mount(at: &Path, size: &str) -> Self {
        std::fs::create_dir_all(at).unwrap();
        let o = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .output()
            .unwrap();
        assert!(o.status.success(), "mount tmpfs (the tests run as root): {}", String::from_utf8_lossy(&o.stderr));
        Tmpfs(at.to_owned())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_full_disk_at_the_final_write_never_leaves_results_saying_running_nor_a_temp_file() {
    let _serial = serial();
    let dir = tempdir();
    let fs = Tmpfs::mount(&dir.path().join("small"), "256k");
    let out = fs.0.join("r");
    let mut child =
        spawn(&["run", "-S", "1", "-A", "3", "-N", "40", "--work", "sleep:25ms", "--out", out.to_str().unwrap()]);
    let run_id = wait_run_id(&out, Duration::from_secs(30));
    // Fill the filesystem to the last byte while the run works.
    let mut filler = std::fs::File::create(fs.0.join("filler")).unwrap();
    let block = vec![0u8; 4096];
    while filler.write_all(&block).is_ok() {}
    let _ = filler.write_all(&[0u8; 1]);
    drop(filler);

    let status = wait_for(&mut child, Duration::from_secs(120));
    assert_eq!(status.code(), Some(1), "a run whose results could not be written must not exit 0");
    let files: Vec<String> =
        std::fs::read_dir(&out).unwrap().flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect();
    assert!(!files.iter().any(|f| f.ends_with(".tmp")), "a stray temp file: {files:?}");
    if let Ok(text) = std::fs::read_to_string(out.join("results.json")) {
        let r: serde_json::Value = serde_json::from_str(&text).expect("what is left of results.json is complete JSON");
        assert_ne!(r["run"]["status"], "running", "results.json still says running");
    }
    assert!(run_processes(&run_id, |_| true).is_empty(), "children left running");
}

/// Ctrl-C twice: the first press stops the work and waits for every scenario's report; a
/// scenario that will never report (SIGSTOPped) would hold that wait until its link's liveness
/// deadline. The second press ends the wait at once: results written, that scenario recorded as
/// interrupted before its report, everything removed (the stopped process too), exit 130.
#[test]
fn a_second_ctrl_c_stops_waiting_for_reports_and_cleans_up_at_once() {
    use std::io::BufRead as _;
    let _serial = serial();
    let dir = tempdir();
    let toml = one_group("ctrl-c-twice", [2, 2, 1000], "sleep:50ms", "");
    let (mut child, out, run_id, victim) = start_with_victim(dir.path(), &toml, &[], "-g0-s1", 4.0);
    assert_eq!(signal(victim, libc::SIGSTOP), 0);
    let driver = child.id() as i32;
    signal(driver, libc::SIGINT);
    // The second press only after the driver said it took the first.
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut said = String::new();
    loop {
        let mut line = String::new();
        assert!(stderr.read_line(&mut line).unwrap() > 0, "the driver ended after one Ctrl-C:\n{said}");
        said.push_str(&line);
        if line.starts_with("stopping (SIGINT)") {
            break;
        }
    }
    let drain = std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
    signal(driver, libc::SIGINT);
    let t0 = Instant::now();
    let status = wait_for(&mut child, Duration::from_secs(120));
    let took = t0.elapsed();
    drain.join().unwrap().unwrap();
    // Sooner than the stopped scenario's link could have been declared stalled.
    assert!(took < LIVENESS, "the run took {took:?} after the second Ctrl-C");
    assert_eq!(status.code(), Some(130));
    let r = results(&out);
    assert_eq!((r["run"]["status"].as_str(), r["run"]["exit_code"].as_i64()), (Some("interrupted"), Some(130)));
    let a = &r["accounting"];
    assert_balanced(a);
    assert_eq!(a["instances_requested"].as_u64(), Some(6), "{a}");
    let (h, rows) = instance_rows(&out);
    let col = |n: &str| h.iter().position(|c| c == n).unwrap();
    let stopped = rows.iter().find(|r| r[col("instance_id")].ends_with("-g0-s1")).expect("the stopped scenario's row");
    assert_eq!(stopped[col("error")], "interrupted before its report", "{stopped:?}");
    assert_nothing_left(&PROCESS, &run_id);
}
