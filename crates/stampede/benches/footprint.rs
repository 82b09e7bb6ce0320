//! What one instance costs the machine: the image's size, and an action's and a scenario's
//! resident memory and threads, read off real Docker containers in the middle of a run, each
//! against issue 11's target.
//!
//!     stampede image build && cargo bench -p stampede --bench footprint     # 1 scenario × 50 actions
//!     STAMPEDE_BENCH_A=250 cargo bench -p stampede --bench footprint        # a scenario's 250
//!
//! The run is `-S 1 -A A -N 2 --work sleep:W` with `hold = "all_ready"`: every action is up
//! before any request goes, then each serves two long sleeps, and the figures are taken during
//! the second: every action holds its connection *and* a request in flight (its busiest state:
//! the sleep runs on a second thread) and has sent a response before. The scenario's peak
//! (VmHWM) is read until it exits: its teardown, every slot holding its results while it waits
//! to remove its action, is when one histogram set per slot cost ~1 MiB per action. Resident
//! memory is read from each container's PID 1 on the host (`/proc/PID/status` VmRSS, and `smaps_rollup` Pss, which shares what the processes share).
//! With fuse-overlayfs, each container maps its own copy of the binary, so VmRSS — its own
//! copy's pages plus its heap — is what each container really costs; on overlay2 the binary's
//! pages are shared and Pss is closer to the cost. Both are printed.

use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bollard::query_parameters::ListContainersOptionsBuilder;

const IMAGE: &str = "stampede:latest";
const TARGET_IMAGE_MB: f64 = 5.0;
const TARGET_ACTION_RSS_MIB: f64 = 3.0;
const TARGET_ACTION_THREADS: f64 = 2.0;

#[derive(Debug)]
struct Proc {
    rss_kib: u64,
    hwm_kib: u64,
    pss_kib: u64,
    threads: u64,
}

fn main() {
    let a: usize = std::env::var("STAMPEDE_BENCH_A").ok().and_then(|v| v.parse().ok()).unwrap_or(50);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let docker = rt.block_on(async { bollard::Docker::connect_with_unix_defaults().unwrap().negotiate_version().await.unwrap() });
    let image = rt
        .block_on(docker.inspect_image(IMAGE))
        .unwrap_or_else(|e| panic!("{IMAGE} missing ({e}): run `stampede image build`"));
    let image_mb = image.size.unwrap_or_default() as f64 / 1e6;

    let (actions, scenario) = during_a_run(&rt, &docker, a);
    let mean = |f: fn(&Proc) -> u64| actions.iter().map(f).sum::<u64>() as f64 / actions.len() as f64;
    let max = |f: fn(&Proc) -> u64| actions.iter().map(f).max().unwrap_or(0) as f64;
    let (rss, pss, threads) = (mean(|p| p.rss_kib) / 1024.0, mean(|p| p.pss_kib) / 1024.0, max(|p| p.threads));

    println!("footprint: 1 scenario × {a} actions on Docker, each action serving a request");
    println!("  {:<34} {:>9} {:>9} {:>8}", "", "measured", "target", "ratio");
    println!("  {:<34} {:>6.1} MB {:>6.1} MB {:>8.2}", "image size", image_mb, TARGET_IMAGE_MB, image_mb / TARGET_IMAGE_MB);
    println!("  {:<34} {:>5.2} MiB {:>5.1} MiB {:>8.2}", "action VmRSS (mean)", rss, TARGET_ACTION_RSS_MIB, rss / TARGET_ACTION_RSS_MIB);
    println!("  {:<34} {:>5.2} MiB", "action Pss (mean)", pss);
    println!("  {:<34} {:>9} {:>9} {:>8.2}", "action threads (max)", threads, TARGET_ACTION_THREADS, threads / TARGET_ACTION_THREADS);
    println!(
        "  {:<34} {:>5.1} MiB, {} threads   ({:.1} KiB of VmRSS per action it holds; peak {:.1} MiB)",
        "scenario VmRSS",
        scenario.rss_kib as f64 / 1024.0,
        scenario.threads,
        scenario.rss_kib as f64 / a as f64,
        scenario.hwm_kib as f64 / 1024.0
    );
}

/// Every action's and the scenario's figures, read once all `a` actions are serving.
fn during_a_run(rt: &tokio::runtime::Runtime, docker: &bollard::Docker, a: usize) -> (Vec<Proc>, Proc) {
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("footprint.toml");
    // Long enough to read every container while its second request sleeps; the run then ends
    // by itself.
    let sleep_ms = 20_000 + 100 * a;
    std::fs::write(
        &scenario,
        format!(
            "name = \"footprint\"\n[[group]]\nruntime = \"docker\"\nscenarios = 1\nactions = {a}\nrequests = 2\n\
             work = \"sleep:{sleep_ms}ms\"\nhold = \"all_ready\"\ndocker = {{ network = \"host\" }}\n"
        ),
    )
    .unwrap();
    let out = dir.path().join("r");
    let mut run = Command::new(env!("CARGO_BIN_EXE_stampede"))
        .args(["run", scenario.to_str().unwrap(), "--out", out.to_str().unwrap(), "-q"])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();

    // Every action container running (counted from the list alone), then a first request's
    // sleep and five seconds more, for the hold's `go` and the last first responses: the
    // second requests are in flight. Each container is inspected once, after that.
    let deadline = Instant::now() + Duration::from_secs(60 + a as u64);
    loop {
        let running = rt.block_on(running(docker));
        if running.iter().filter(|(role, _)| role == "action").count() >= a && running.iter().any(|(role, _)| role == "scenario") {
            break;
        }
        assert!(Instant::now() < deadline, "the actions did not all start in time");
        assert!(run.try_wait().unwrap().is_none(), "the run ended before all its actions were up");
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_millis(sleep_ms as u64) + Duration::from_secs(5));
    let pids = rt.block_on(pids_by_role(docker));
    let actions: Vec<Proc> = pids["action"].iter().filter_map(|&p| read_proc(p)).collect();
    let scenario_pid = pids["scenario"][0];
    let mut scenario = read_proc(scenario_pid).expect("the scenario's /proc");
    // Its peak comes later, when every slot has its results and waits its turn to remove its
    // action: read the high-water mark until the scenario is gone.
    // Only `status` on each poll: walking the scenario's smaps would cost its CPU meanwhile.
    while run.try_wait().unwrap().is_none() {
        if let Some(hwm) = std::fs::read_to_string(format!("/proc/{scenario_pid}/status")).ok().and_then(|t| status_field(&t, "VmHWM:")) {
            scenario.hwm_kib = scenario.hwm_kib.max(hwm);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(run.wait().unwrap().code(), Some(0), "the footprint run failed");
    assert!(!actions.is_empty(), "no action could be read");
    (actions, scenario)
}

/// (role, container ID) of every running stampede container.
async fn running(docker: &bollard::Docker) -> Vec<(String, String)> {
    let filters = HashMap::from([("label", vec!["stampede.role".to_owned()]), ("status", vec!["running".to_owned()])]);
    let list = docker.list_containers(Some(ListContainersOptionsBuilder::new().filters(&filters).build())).await.unwrap();
    list.into_iter()
        .map(|c| {
            let role = c.labels.as_ref().and_then(|l| l.get("stampede.role")).cloned().unwrap_or_default();
            (role, c.id.unwrap_or_default())
        })
        .collect()
}

/// Host PIDs of the running stampede containers, by role.
async fn pids_by_role(docker: &bollard::Docker) -> HashMap<String, Vec<u32>> {
    let mut by_role: HashMap<String, Vec<u32>> = HashMap::new();
    for (role, id) in running(docker).await {
        let Ok(inspect) = docker.inspect_container(&id, None::<bollard::query_parameters::InspectContainerOptions>).await else { continue };
        if let Some(pid) = inspect.state.and_then(|s| s.pid).filter(|p| *p > 0) {
            by_role.entry(role).or_default().push(pid as u32);
        }
    }
    by_role
}

/// The number after `name` in a `/proc` status-style text (kB for the memory fields).
fn status_field(text: &str, name: &str) -> Option<u64> {
    text.lines().find(|l| l.starts_with(name))?.split_whitespace().nth(1)?.parse().ok()
}

fn read_proc(pid: u32) -> Option<Proc> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let smaps = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?;
    Some(Proc {
        rss_kib: status_field(&status, "VmRSS:")?,
        hwm_kib: status_field(&status, "VmHWM:")?,
        threads: status_field(&status, "Threads:")?,
        pss_kib: status_field(&smaps, "Pss:")?,
    })
}
