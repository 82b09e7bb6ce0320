//! Helpers shared by the CLI tests: run the real binary, read its results, find its children.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The binary under test: `$STAMPEDE_BIN` when set (scripts/test points it at the static
/// release binary, the one users run and images hold; a debug build measures its own overhead
/// on a two-core machine), else the binary cargo built for these tests.
pub fn bin() -> PathBuf {
    std::env::var_os("STAMPEDE_BIN").map(PathBuf::from).unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_stampede")))
}

pub fn stampede(args: &[&str]) -> Command {
    let mut c = Command::new(bin());
    c.args(args);
    c
}

/// Run to completion, with a hard limit so a hang fails the test instead of the CI job.
pub fn run(args: &[&str], limit: Duration) -> Output {
    let mut child = stampede(args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn stampede");
    let t0 = Instant::now();
    loop {
        if child.try_wait().expect("wait").is_some() {
            return child.wait_with_output().expect("output");
        }
        if t0.elapsed() > limit {
            let _ = child.kill();
            let out = child.wait_with_output().expect("output");
            panic!(
                "stampede {args:?} did not finish within {limit:?}\nstdout:\n{}\nstderr:\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub fn results(dir: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(dir.join("results.json")).expect("results.json exists");
    serde_json::from_str(&text).expect("results.json is JSON")
}

pub fn csv_rows(path: &Path) -> Vec<Vec<String>> {
    std::fs::read_to_string(path)
        .expect("csv exists")
        .lines()
        .map(|l| l.split(',').map(str::to_owned).collect())
        .collect()
}

/// Wait until the driver wrote its partial results.json and return the run id.
pub fn wait_run_id(dir: &Path, limit: Duration) -> String {
    let t0 = Instant::now();
    while t0.elapsed() < limit {
        if let Ok(text) = std::fs::read_to_string(dir.join("results.json")) {
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) {
                return v["run"]["id"].as_str().expect("run.id").to_owned();
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("no results.json in {} within {limit:?}", dir.display());
}

/// Pids of live processes started for `run_id` whose instance id satisfies `pred`.
pub fn run_processes(run_id: &str, pred: impl Fn(&str) -> bool) -> Vec<(i32, String)> {
    let mut v = Vec::new();
    for e in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else { continue };
        let Ok(env) = std::fs::read(e.path().join("environ")) else { continue };
        // Zombies keep no environment; a reaped child disappears. Either way, not running.
        if std::fs::read_to_string(e.path().join("stat")).is_ok_and(|s| s.contains(") Z ")) {
            continue;
        }
        let vars: Vec<String> = env.split(|b| *b == 0).map(|s| String::from_utf8_lossy(s).into_owned()).collect();
        let has_run = vars.iter().any(|v| v == &format!("STAMPEDE_RUN_ID={run_id}"));
        let id = vars.iter().find_map(|v| v.strip_prefix("STAMPEDE_INSTANCE_ID=").map(str::to_owned));
        if let (true, Some(id)) = (has_run, id) {
            if pred(&id) {
                v.push((pid, id));
            }
        }
    }
    v
}

pub fn wait_for(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let t0 = Instant::now();
    loop {
        if let Some(s) = child.try_wait().expect("wait") {
            return s;
        }
        if t0.elapsed() > limit {
            let _ = child.kill();
            panic!("stampede did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("tempdir")
}

/// End-to-end runs start hundreds of processes on a two-core machine: run them one at a time
/// within a test binary, so one run's load does not become another's measurement.
pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|p| p.into_inner())
}

/// Start `stampede ARGS` in the background with its output captured.
pub fn spawn(args: &[&str]) -> Child {
    stampede(args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn stampede")
}

/// Send a signal to a process (SIGINT as a terminal's Ctrl-C, SIGKILL as a crash).
#[allow(unsafe_code)]
pub fn signal(pid: i32, sig: i32) -> i32 {
    // SAFETY: kill(2) has no memory-safety preconditions; the worst case is ESRCH.
    unsafe { libc::kill(pid, sig) }
}

/// Poll `probe` every 20 ms until it yields a value; fail naming `what` after `limit`.
pub fn wait_until<T>(limit: Duration, what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let t0 = Instant::now();
    loop {
        if let Some(v) = probe() {
            return v;
        }
        assert!(t0.elapsed() < limit, "{what} did not happen within {limit:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The docker CLI's stdout; these tests use the CLI to look at the engine independently of
/// stampede's own client.
pub fn docker(args: &[&str]) -> String {
    let o = Command::new("docker").args(args).output().expect("the docker CLI must be installed for these tests");
    assert!(o.status.success(), "docker {args:?} failed: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The identities DESIGN §4 requires of every results.json `accounting`.
pub fn assert_balanced(a: &serde_json::Value) {
    let n = |k: &str| a[k].as_u64().unwrap_or_else(|| panic!("accounting.{k} missing in {a}"));
    assert_eq!(n("instances_requested"), n("instances_ready") + n("instances_failed"), "{a}");
    assert_eq!(n("requests_sent"), n("requests_ok") + n("requests_failed") + n("requests_timed_out"), "{a}");
    assert_eq!(n("requests_planned"), n("requests_sent") + n("requests_not_sent"), "{a}");
}
