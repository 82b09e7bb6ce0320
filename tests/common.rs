//! Helpers shared by the CLI tests: run the real binary, read its results, find its children,
//! look at its report pages (and screenshot them in headless Chromium).
#![allow(dead_code)]

use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use stampede_report::plot::{hex, PALETTE};

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

// ---- the runtimes the end-to-end cases run on ------------------------------------------------

/// A runtime under test: what it needs, and how to see a run's instances on it from outside
/// (`ps`, the docker CLI), independently of stampede's own client.
pub struct Target {
    pub runtime: &'static str,
    /// Fails with instructions when the runtime is not there; never skips.
    pub require: fn(),
    /// Instances of the run that are up (processes, containers, services).
    pub up: fn(&str) -> usize,
    /// Instances of the run that exist in any state (processes, containers, services).
    pub instances: fn(&str) -> usize,
    /// Everything of the run still present, of every kind (instances, networks).
    pub leftovers: fn(&str) -> usize,
}

pub const IMAGE: &str = "stampede:latest";

pub const PROCESS: Target = Target {
    runtime: "process",
    require: || {},
    up: |run| run_processes(run, |_| true).len(),
    instances: |run| run_processes(run, |_| true).len(),
    leftovers: |run| run_processes(run, |_| true).len(),
};

pub const DOCKER: Target = Target {
    runtime: "docker",
    require: require_engine_and_image,
    up: |run| docker_count(&["ps", "-q"], run),
    instances: |run| docker_count(&["ps", "-aq"], run),
    leftovers: |run| docker_count(&["ps", "-aq"], run) + docker_count(&["network", "ls", "-q"], run),
};

pub const SWARM: Target = Target {
    runtime: "swarm",
    require: || {
        require_engine_and_image();
        if docker(&["info", "--format", "{{.Swarm.LocalNodeState}}"]).trim() != "active" {
            docker(&["swarm", "init", "--advertise-addr", "127.0.0.1"]);
        }
    },
    up: |run| docker_count(&["service", "ls", "-q"], run),
    instances: |run| docker_count(&["service", "ls", "-q"], run) + docker_count(&["ps", "-aq"], run),
    leftovers: |run| {
        docker_count(&["service", "ls", "-q"], run)
            + docker_count(&["ps", "-aq"], run)
            + docker_count(&["network", "ls", "-q"], run)
    },
};

fn require_engine_and_image() {
    let o = Command::new("docker").args(["image", "inspect", IMAGE]).output().expect("docker CLI");
    assert!(
        o.status.success(),
        "these tests need the Docker engine and the {IMAGE} image: run scripts/test, or build it with \
         `stampede image build` from the static binary ({})",
        String::from_utf8_lossy(&o.stderr).trim()
    );
}

/// Lines of `docker ARGS --filter label=stampede.run=RUN`.
fn docker_count(args: &[&str], run: &str) -> usize {
    let filter = format!("label=stampede.run={run}");
    let mut all = args.to_vec();
    all.extend(["--filter", &filter]);
    docker(&all).lines().count()
}

/// instances.csv of a results folder: its header and its rows.
pub fn instance_rows(out: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let mut rows = csv_rows(&out.join("instances.csv"));
    let header = rows.remove(0);
    (header, rows)
}

/// The text of a scenario file named `name` with one group, `g`, of S×A×N requests of `work`;
/// `extra` follows as more of the group's keys and its steps.
pub fn one_group(name: &str, [s, a, n]: [u32; 3], work: &str, extra: &str) -> String {
    format!("name = \"{name}\"\n[[group]]\nname = \"g\"\nscenarios = {s}\nactions = {a}\nrequests = {n}\nwork = \"{work}\"\n{extra}")
}

/// `toml` written as `dir/scenario.toml`, for `stampede run` or `stampede sweep`.
pub fn write_scenario(dir: &Path, toml: &str) -> PathBuf {
    let file = dir.join("scenario.toml");
    std::fs::write(&file, toml).unwrap();
    file
}

/// The scenario file `toml` run to completion (with `extra` arguments), writing to `dir/r`:
/// checks that it exited 0 and returns the results folder and results.json.
pub fn run_file(dir: &Path, toml: &str, extra: &[&str], limit: Duration) -> (PathBuf, serde_json::Value) {
    let file = write_scenario(dir, toml);
    let out = dir.join("r");
    let mut args = vec!["run", file.to_str().unwrap(), "--out", out.to_str().unwrap()];
    args.extend_from_slice(extra);
    let o = run(&args, limit);
    assert_eq!(o.status.code(), Some(0), "{}\n{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    let r = results(&out);
    (out, r)
}

/// Nothing of the run is left on `t`. Swarm removes a service's containers shortly after the
/// service, and a killed process is reaped a moment later: waited for, within 30 s.
pub fn assert_nothing_left(t: &Target, run: &str) {
    wait_until(Duration::from_secs(30), &format!("everything of run {run} gone from {}", t.runtime), || {
        ((t.leftovers)(run) == 0).then_some(())
    });
}

// ---- end-to-end cases, written once, run on every target -----------------------------------

/// A clean run: exit 0, every instance ready, every request answered, the accounting balanced,
/// one instances.csv row per instance, nothing left. Returns results.json, the folder (kept
/// alive by the TempDir) and stdout for each runtime's own checks.
pub fn case_clean_run(
    t: &Target,
    [s, a, n]: [u32; 3],
    work: &str,
) -> (serde_json::Value, tempfile::TempDir, PathBuf, String) {
    (t.require)();
    let dir = tempdir();
    let out = dir.path().join("r");
    let (s_, a_, n_) = (s.to_string(), a.to_string(), n.to_string());
    let args = [
        "run",
        "--runtime",
        t.runtime,
        "-S",
        &s_,
        "-A",
        &a_,
        "-N",
        &n_,
        "--work",
        work,
        "--out",
        out.to_str().unwrap(),
    ];
    let o = run(&args, Duration::from_secs(600));
    let stdout = String::from_utf8_lossy(&o.stdout).into_owned();
    assert_eq!(o.status.code(), Some(0), "stdout:\n{stdout}\nstderr:\n{}", String::from_utf8_lossy(&o.stderr));
    let r = results(&out);
    let acc = &r["accounting"];
    let (instances, requests) = (u64::from(s + s * a), u64::from(s * a * n));
    assert_eq!(
        (acc["instances_requested"].as_u64(), acc["instances_ready"].as_u64()),
        (Some(instances), Some(instances)),
        "{acc}"
    );
    assert_eq!((acc["requests_sent"].as_u64(), acc["requests_ok"].as_u64()), (Some(requests), Some(requests)), "{acc}");
    assert_balanced(acc);
    assert_eq!((r["run"]["status"].as_str(), r["run"]["exit_code"].as_i64()), (Some("complete"), Some(0)));
    assert_eq!(csv_rows(&out.join("instances.csv")).len() as u64, 1 + instances);
    assert_nothing_left(t, r["run"]["id"].as_str().unwrap());
    (r, dir, out, stdout)
}

/// Ctrl-C once `up` instances of the run are up and working: see [`case_signal`].
pub fn case_ctrl_c(t: &Target, shape: [u32; 3], work: &str, up: usize) -> serde_json::Value {
    case_signal(t, shape, work, up, libc::SIGINT)
}

/// An ending signal once `up` instances of the run are up and requests are being answered:
/// exit 128 + the signal (130 for Ctrl-C), results written and `interrupted`, the accounting
/// balanced with some requests answered and some never sent, nothing left.
pub fn case_signal(t: &Target, [s, a, n]: [u32; 3], work: &str, up: usize, sig: i32) -> serde_json::Value {
    (t.require)();
    let dir = tempdir();
    let (mut child, out, run_id, _) = start_working(t, dir.path(), [s, a, n], work, up);
    signal(child.id() as i32, sig);
    let status = wait_for(&mut child, Duration::from_secs(180));
    assert_eq!(status.code(), Some(128 + sig));
    let r = results(&out);
    assert_eq!(
        (r["run"]["status"].as_str(), r["run"]["exit_code"].as_i64()),
        (Some("interrupted"), Some(i64::from(128 + sig)))
    );
    let acc = &r["accounting"];
    assert_balanced(acc);
    assert_eq!(acc["requests_planned"].as_u64(), Some(u64::from(s * a * n)), "{acc}");
    assert!(acc["requests_ok"].as_u64().unwrap() > 0 && acc["requests_not_sent"].as_u64().unwrap() > 0, "{acc}");
    assert_nothing_left(t, &run_id);
    r
}

/// Scenarios that cannot resolve their callback host (`--advertise no-such-host.invalid`) exit
/// as soon as they start: each launch fails at once, within `within`, not at the 60 s ready
/// timeout, with the reason in its row. Exit 1, all S + S·A instances requested and failed, the
/// accounting balanced, nothing left. Returns instances.csv (header, rows).
pub fn case_child_exits_at_once(t: &Target, within: Duration) -> (Vec<String>, Vec<Vec<String>>) {
    (t.require)();
    let dir = tempdir();
    let out = dir.path().join("r");
    let t0 = Instant::now();
    let o = run(
        &["run", "--runtime", t.runtime, "-S", "2", "-A", "2", "-N", "5", "--advertise", "no-such-host.invalid", "--out", out.to_str().unwrap()],
        Duration::from_secs(180),
    );
    let took = t0.elapsed();
    assert_eq!(o.status.code(), Some(1), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(took < within, "failed only after {took:?}: the ready timeout, not the exit");
    let r = results(&out);
    let a = &r["accounting"];
    assert_balanced(a);
    assert_eq!((a["instances_requested"].as_u64(), a["instances_failed"].as_u64()), (Some(2 + 2 * 2), Some(2 + 2 * 2)), "{a}");
    let (h, rows) = instance_rows(&out);
    let col = |n: &str| h.iter().position(|c| c == n).unwrap();
    let scenarios: Vec<_> = rows.iter().filter(|r| r[col("role")] == "scenario").collect();
    assert_eq!(scenarios.len(), 2, "{rows:?}");
    for row in scenarios {
        assert!(row[col("error")].contains("exited before it connected"), "{row:?}");
    }
    assert_nothing_left(t, r["run"]["id"].as_str().unwrap());
    (h, rows)
}

/// A run of `args` (after `run`) in the background with its live endpoint, writing to
/// `dir/r`; returns (child, results folder, run id, metrics address).
pub fn start_live(dir: &Path, args: &[&str]) -> (Child, PathBuf, String, String) {
    start_live_with(dir, args, &[])
}

/// [`start_live`] with `env` set for the driver (e.g. `DOCKER_HOST` of another engine).
pub fn start_live_with(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> (Child, PathBuf, String, String) {
    let out = dir.join("r");
    let addr_file = dir.join("metrics-addr");
    let mut all = vec!["run"];
    all.extend_from_slice(args);
    all.extend_from_slice(&[
        "--out",
        out.to_str().unwrap(),
        "--metrics-addr",
        "127.0.0.1:0",
        "--metrics-addr-file",
        addr_file.to_str().unwrap(),
    ]);
    let child = stampede(&all)
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn stampede");
    let run_id = wait_run_id(&out, Duration::from_secs(30));
    let addr =
        wait_until(Duration::from_secs(30), "the metrics address file", || std::fs::read_to_string(&addr_file).ok());
    (child, out, run_id, addr)
}

/// An S×A×N run of `work` on `t`, returned once `up` of its instances are up and the live
/// endpoint counts an answered request (a fault then lands mid-work).
pub fn start_working(t: &Target, dir: &Path, [s, a, n]: [u32; 3], work: &str, up: usize) -> (Child, PathBuf, String, String) {
    let (s, a, n) = (s.to_string(), a.to_string(), n.to_string());
    let started = start_live(dir, &["--runtime", t.runtime, "-S", &s, "-A", &a, "-N", &n, "--work", work]);
    let run_id = &started.2;
    wait_until(Duration::from_secs(120), &format!("{up} instances up"), || ((t.up)(run_id) >= up).then_some(()));
    wait_until(Duration::from_secs(60), "a first answered request", || (requests_done(&started.3)? > 0.0).then_some(()));
    started
}

/// The driver SIGKILLed mid-work: nothing cleans up after it but its scenarios, which remove
/// their actions and then themselves. Within 60 s no instance of the run exists (networks may:
/// `stampede clean` lists and removes them, and does here).
pub fn case_driver_killed(t: &Target, shape: [u32; 3], work: &str, up: usize) {
    (t.require)();
    let dir = tempdir();
    let (mut child, out, run_id, _) = start_working(t, dir.path(), shape, work, up);
    signal(child.id() as i32, libc::SIGKILL);
    wait_for(&mut child, Duration::from_secs(30));
    wait_until(Duration::from_secs(60), &format!("no instance of run {run_id} on {}", t.runtime), || {
        ((t.instances)(&run_id) == 0).then_some(())
    });
    // The dead driver's results say `running`: they were never finished, and say so.
    assert_eq!(results(&out)["run"]["status"].as_str(), Some("running"));
    let o = run(&["clean", "--run", &run_id], Duration::from_secs(120));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_nothing_left(t, &run_id);
}

/// GET /metrics over plain HTTP, as Prometheus or `curl` would.
pub fn scrape(addr: &str) -> Option<String> {
    let mut conn = std::net::TcpStream::connect(addr).ok()?;
    conn.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    conn.write_all(b"GET /metrics HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n").ok()?;
    let mut text = String::new();
    conn.read_to_string(&mut text).ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.contains("Content-Type: application/openmetrics-text"), "{head}");
    Some(body.to_owned())
}

/// Parse strictly: every sample line must be understood.
pub fn parse(text: &str) -> prometheus_parse::Scrape {
    let lines = text.lines().map(|l| Ok(l.to_owned()));
    let scrape = prometheus_parse::Scrape::parse(lines).unwrap_or_else(|e| panic!("not Prometheus text: {e}\n{text}"));
    let samples = text.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()).count();
    // A histogram's _bucket lines fold into one sample (its _sum and _count stay samples).
    let folded: usize = scrape
        .samples
        .iter()
        .map(|s| match &s.value {
            prometheus_parse::Value::Histogram(b) => b.len(),
            _ => 1,
        })
        .sum();
    assert_eq!(folded, samples, "some sample lines were not understood:\n{text}");
    scrape
}

pub fn value(scrape: &prometheus_parse::Scrape, metric: &str, labels: &[(&str, &str)]) -> f64 {
    let matching: Vec<&prometheus_parse::Sample> = scrape
        .samples
        .iter()
        .filter(|s| s.metric == metric && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .collect();
    assert!(!matching.is_empty(), "no sample {metric}{labels:?}");
    matching
        .iter()
        .map(|s| match &s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => *v,
            prometheus_parse::Value::Histogram(b) => b.iter().map(|x| x.count).fold(0.0, f64::max),
            other => panic!("{metric}: unexpected {other:?}"),
        })
        .sum()
}

/// Requests answered so far, summed over groups, from the live endpoint (none before its
/// groups are counted).
pub fn requests_done(addr: &str) -> Option<f64> {
    requests_done_where(addr, &[])
}

/// The same, for the group named `group` alone.
pub fn requests_done_in(addr: &str, group: &str) -> Option<f64> {
    requests_done_where(addr, &[("group", group)])
}

fn requests_done_where(addr: &str, labels: &[(&str, &str)]) -> Option<f64> {
    const NAME: &str = "stampede_requests_done_total";
    let s = parse(&scrape(addr)?);
    s.samples
        .iter()
        .any(|x| x.metric == NAME && labels.iter().all(|(k, v)| x.labels.get(k) == Some(*v)))
        .then(|| value(&s, NAME, labels))
}

// ---- report.html and sweep.html: their plots, and headless Chromium --------------------------

/// Every `<figure class="plot">` of a page: (id, its svg).
pub fn figures(html: &str) -> Vec<(String, String)> {
    html.split("<figure class=\"plot")
        .skip(1)
        .map(|f| {
            let id = f.split("id=\"plot-").nth(1).and_then(|s| s.split('"').next()).unwrap_or("?").to_owned();
            assert!(!f.starts_with(" empty"), "plot {id} has no data: {}", f.split("</figure>").next().unwrap_or(""));
            let svg = f.split("<svg").nth(1).and_then(|s| s.split("</svg>").next()).unwrap_or_else(|| panic!("plot {id} has no svg"));
            (id, format!("<svg{svg}</svg>"))
        })
        .collect()
}

/// Data elements of a chart: shapes in a series colour (axes and grid are black/grey and
/// legends are HTML, so only data carries these), with a line counted only when it has points.
pub fn data_elements(svg: &str) -> usize {
    let colours: Vec<String> = PALETTE.iter().map(|c| hex(*c)).collect();
    svg.split('<')
        .filter(|el| ["polyline", "polygon", "rect", "circle", "path"].iter().any(|t| el.starts_with(t)))
        .filter(|el| colours.iter().any(|c| el.contains(&format!("fill=\"{c}\"")) || el.contains(&format!("stroke=\"{c}\""))))
        .filter(|el| !el.starts_with("polyline") || el.split("points=\"").nth(1).is_some_and(|p| p.split(' ').filter(|x| !x.is_empty()).count() >= 2))
        .count()
}

/// The Chromium the rendering tests drive: `$STAMPEDE_CHROMIUM`. Those tests are ignored by
/// plain `cargo test`; run with `--ignored`, they fail here rather than pass without a browser.
pub fn chromium() -> String {
    std::env::var("STAMPEDE_CHROMIUM")
        .expect("STAMPEDE_CHROMIUM is not set: install Debian's `chromium` and set STAMPEDE_CHROMIUM=chromium to run this test")
}

/// Where screenshots go: `$STAMPEDE_SCREENSHOT_DIR` to keep them, else `dir` (a test's temp dir).
pub fn screenshot_dir(dir: &Path) -> PathBuf {
    let shots = std::env::var_os("STAMPEDE_SCREENSHOT_DIR").map(PathBuf::from).unwrap_or_else(|| dir.to_owned());
    std::fs::create_dir_all(&shots).unwrap();
    shots
}

/// `page` rendered by headless Chromium into `png`, at `size` ("width,height").
pub fn chromium_screenshot(chromium: &str, page: &Path, png: &Path, size: &str) {
    let o = Command::new(chromium)
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--hide-scrollbars"])
        .arg(format!("--screenshot={}", png.display()))
        .arg(format!("--window-size={size}"))
        .arg(format!("file://{}", page.display()))
        .output()
        .unwrap_or_else(|e| panic!("cannot start {chromium}: {e}"));
    assert!(png.exists(), "{chromium} wrote no screenshot: {}", String::from_utf8_lossy(&o.stderr));
}

/// One plot's SVG on a white page of its own (`dir/plot-<id>.html`, 960 px wide), so that a
/// screenshot of it shows that plot and nothing else.
pub fn plot_page(dir: &Path, id: &str, svg: &str) -> PathBuf {
    let page = dir.join(format!("plot-{id}.html"));
    std::fs::write(&page, format!("<!DOCTYPE html><html><body style=\"margin:0;background:#fff\"><div style=\"width:960px\">{svg}</div></body></html>"))
        .unwrap();
    page
}

/// A PNG's pixel bytes and its samples per pixel (3 for RGB, 4 for RGBA): `.chunks(step)` are
/// its pixels.
pub fn png_pixels(png_path: &Path) -> (Vec<u8>, usize) {
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(png_path).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    buf.truncate(info.buffer_size());
    (buf, info.color_type.samples())
}
