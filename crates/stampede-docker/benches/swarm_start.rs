//! How fast 50 tasks start on the local swarm: through stampede (one service per action, the
//! swarm runtime's mapping) next to a plain service of 50 replicas created through the API.
//!
//! `cargo bench -p stampede-docker --bench swarm_start` (harness = false: it prints figures).
//! Needs an active swarm, the image (`stampede image build`) and the debug binary
//! (`cargo build -p stampede`); `STAMPEDE_BIN`, `STAMPEDE_IMAGE` and `SWARM_BENCH_TASKS`
//! override the defaults.
//!
//! - stampede: `stampede run --runtime swarm -S 1 -A 50 -N 1`, once with the default start
//!   concurrency (4) and once with 50 (all at once, like the plain service); figures read from
//!   `instances.csv`: tasks/s = actions / (last action ready − first action requested), and
//!   the median action `start_latency` (ready − requested).
//! - plain: one service of 50 replicas of the same image *by ID* on the host network, each
//!   task running `stampede action` pointed at a listener here that holds its connection (so the
//!   tasks stay up); tasks/s = 50 / (all tasks running − create call), median = median of each
//!   task's `running` timestamp − the create call, and the same for "dialled back".

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bollard::models::{
    NetworkAttachmentConfig, ServiceSpec, ServiceSpecMode, ServiceSpecModeReplicated, TaskSpec, TaskSpecContainerSpec,
    TaskSpecRestartPolicy, TaskSpecRestartPolicyConditionEnum, TaskState,
};
use bollard::query_parameters::ListTasksOptions;
use stampede_docker::runtime::parse_started_at;
use stampede_docker::SwarmRuntime;
use stampede_runtime::Runtime;

fn wall_us() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_micros() as i64
}

fn median(mut v: Vec<i64>) -> i64 {
    v.sort_unstable();
    if v.is_empty() {
        0
    } else {
        v[v.len() / 2]
    }
}

struct Figures {
    label: String,
    tasks_per_s: f64,
    median_ms: f64,
    extra: String,
}

/// One `stampede run` with `concurrency` launches in flight; figures from instances.csv.
fn through_stampede(bin: &PathBuf, image: &str, tasks: u32, concurrency: u32) -> Figures {
    let dir = std::env::temp_dir().join(format!("stampede-swarm-bench-{}-{concurrency}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let scenario = dir.join("bench.toml");
    std::fs::write(
        &scenario,
        format!(
            "name = \"swarm-bench\"\n\n[[group]]\nname = \"bench\"\nruntime = \"swarm\"\nscenarios = 1\nactions = {tasks}\n\
             requests = 1\nwork = \"sleep:10ms\"\nimage = \"{image}\"\nstart_concurrency = {concurrency}\n"
        ),
    )
    .unwrap();
    let out = dir.join("results");
    let t0 = Instant::now();
    let status = std::process::Command::new(bin)
        .args(["run", "--quiet", "--out"])
        .arg(&out)
        .arg(&scenario)
        .status()
        .unwrap_or_else(|e| panic!("running {}: {e}", bin.display()));
    let wall = t0.elapsed();
    assert!(status.success(), "stampede run exited with {status}; see {}", out.display());

    let csv = std::fs::read_to_string(out.join("instances.csv")).expect("instances.csv");
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().expect("header").split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap_or_else(|| panic!("no column {name}"));
    let (role, requested, ready) = (col("role"), col("requested_us"), col("ready_us"));
    let (mut first_requested, mut last_ready, mut latencies) = (i64::MAX, 0, Vec::new());
    for line in lines {
        let f: Vec<&str> = line.split(',').collect();
        if f[role] != "action" {
            continue;
        }
        let (Ok(req), Ok(rdy)) = (f[requested].parse::<i64>(), f[ready].parse::<i64>()) else { continue };
        first_requested = first_requested.min(req);
        last_ready = last_ready.max(rdy);
        latencies.push(rdy - req);
    }
    assert_eq!(latencies.len(), tasks as usize, "not every action became ready");
    let span_s = (last_ready - first_requested) as f64 / 1e6;
    let _ = std::fs::remove_dir_all(&dir);
    Figures {
        label: format!("stampede, service per action, start concurrency {concurrency}"),
        tasks_per_s: f64::from(tasks) / span_s,
        median_ms: median(latencies) as f64 / 1e3,
        extra: format!("{span_s:.2} s first requested → last ready; whole run {:.1} s", wall.as_secs_f64()),
    }
}

/// One service of `tasks` replicas through the API; figures from its tasks' timestamps.
async fn plain_service(rt: &SwarmRuntime, image: &str, tasks: u32) -> Figures {
    let image_id = rt.image_id(image).await.expect("image ID");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, mut dialled) = tokio::sync::mpsc::unbounded_channel::<i64>();
    let holder = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            held.push(s);
            let _ = tx.send(wall_us());
        }
    });
    let run_id = format!("bench{}", std::process::id());
    let labels =
        HashMap::from([("stampede.run".to_owned(), run_id.clone()), ("stampede.role".to_owned(), "action".to_owned())]);
    let spec = ServiceSpec {
        name: Some(format!("stampede-{run_id}-plain")),
        labels: Some(labels.clone()),
        task_template: Some(TaskSpec {
            container_spec: Some(TaskSpecContainerSpec {
                image: Some(image_id),
                labels: Some(labels),
                args: Some(vec!["action".into()]),
                env: Some(vec![
                    format!("STAMPEDE_CALLBACK=ws://127.0.0.1:{port}/"),
                    "STAMPEDE_TOKEN=bench".into(),
                    "STAMPEDE_INSTANCE_ID=plain".into(),
                    format!("STAMPEDE_RUN_ID={run_id}"),
                ]),
                stop_grace_period: Some(1_000_000_000),
                ..Default::default()
            }),
            restart_policy: Some(TaskSpecRestartPolicy {
                condition: Some(TaskSpecRestartPolicyConditionEnum::NONE),
                ..Default::default()
            }),
            networks: Some(vec![NetworkAttachmentConfig { target: Some("host".into()), ..Default::default() }]),
            ..Default::default()
        }),
        mode: Some(ServiceSpecMode {
            replicated: Some(ServiceSpecModeReplicated { replicas: Some(i64::from(tasks)) }),
            ..Default::default()
        }),
        ..Default::default()
    };

    let created_wall = wall_us();
    let t0 = Instant::now();
    let service = rt.client().create_service(spec, None).await.expect("create service").id.expect("service id");
    let filters = HashMap::from([("service".to_owned(), vec![service.clone()])]);
    let mut running_at: HashMap<String, i64> = HashMap::new();
    let all_running = loop {
        let list = rt
            .client()
            .list_tasks(Some(ListTasksOptions { filters: Some(filters.clone()) }))
            .await
            .expect("list tasks");
        for t in &list {
            let status = t.status.clone().unwrap_or_default();
            if status.state == Some(TaskState::RUNNING) {
                let at = status.timestamp.as_deref().and_then(parse_started_at).unwrap_or_else(wall_us);
                running_at.entry(t.id.clone().unwrap_or_default()).or_insert(at);
            }
        }
        if running_at.len() >= tasks as usize {
            break t0.elapsed();
        }
        assert!(t0.elapsed() < Duration::from_secs(300), "not all {tasks} tasks running after 300 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let mut dial = Vec::new();
    while dial.len() < tasks as usize {
        match tokio::time::timeout(Duration::from_secs(30), dialled.recv()).await {
            Ok(Some(t)) => dial.push(t - created_wall),
            _ => break,
        }
    }
    rt.remove_run(Some(&run_id)).await.expect("cleanup");
    holder.abort();
    let latencies: Vec<i64> = running_at.values().map(|t| t - created_wall).collect();
    Figures {
        label: format!("plain service of {tasks} replicas (API, image by ID)"),
        tasks_per_s: f64::from(tasks) / all_running.as_secs_f64(),
        median_ms: median(latencies) as f64 / 1e3,
        extra: format!(
            "{:.2} s create → all running; median create → dialled back {:.0} ms ({} of {tasks} dialled)",
            all_running.as_secs_f64(),
            median(dial.clone()) as f64 / 1e3,
            dial.len()
        ),
    }
}

#[tokio::main]
async fn main() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let bin = std::env::var_os("STAMPEDE_BIN").map(PathBuf::from).unwrap_or_else(|| root.join("target/debug/stampede"));
    let image = std::env::var("STAMPEDE_IMAGE").unwrap_or_else(|_| "stampede:latest".into());
    let tasks: u32 = std::env::var("SWARM_BENCH_TASKS").ok().and_then(|v| v.parse().ok()).unwrap_or(50);
    let rt = SwarmRuntime::connect().await.unwrap_or_else(|e| panic!("{e}"));
    let version = rt.preflight(&image).await.unwrap_or_else(|e| panic!("{e}"));
    println!("swarm start benchmark: {tasks} tasks, image {image}, {version}");

    let figures = vec![
        through_stampede(&bin, &image, tasks, 4),
        through_stampede(&bin, &image, tasks, tasks),
        plain_service(&rt, &image, tasks).await,
    ];
    println!("{:<58} {:>9} {:>14}", "", "tasks/s", "median start");
    for f in &figures {
        println!("{:<58} {:>9.1} {:>11.0} ms   ({})", f.label, f.tasks_per_s, f.median_ms, f.extra);
    }
}
