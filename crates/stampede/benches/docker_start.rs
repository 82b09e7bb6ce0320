//! Containers started per second: through stampede vs the raw Engine API, in the same run.
//!
//!     cargo bench -p stampede --bench docker_start            # 200 containers, host networking
//!     STAMPEDE_BENCH_N=100 cargo bench -p stampede --bench docker_start
//!
//! Both sides start the same number of containers of the same image (`stampede:latest`, built
//! by `stampede image build`), with host networking and the same create+start concurrency (4,
//! stampede's Docker default per scenario). The raw side is bollard's create + start and
//! nothing else; stampede's side is a real run (`-S 1 -A N -N 1`), read back from
//! instances.csv. It holds its group (`hold = "all_ready"`), so every action outlives the start
//! phase and no stop/remove competes with the starts (the raw side removes only after timing
//! too). Raw containers run the action tier against a listener that accepts and holds
//! connections, so both sides keep the same processes alive. The machine is shared and noisy:
//! the ratio, measured back to back, is the figure to read — not the absolute rates.

use std::collections::HashMap;
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use bollard::models::{ContainerCreateBody, HostConfig};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, ListContainersOptionsBuilder, RemoveContainerOptionsBuilder, StartContainerOptions,
};
use futures_util::StreamExt;

const IMAGE: &str = "stampede:latest";
const CONCURRENCY: usize = 4;

fn main() {
    let n: usize = std::env::var("STAMPEDE_BENCH_N").ok().and_then(|v| v.parse().ok()).unwrap_or(200);
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let raw = rt.block_on(raw_engine(n));
    let ours = through_stampede(n);
    println!("docker_start: {n} containers, host networking, create+start concurrency {CONCURRENCY}");
    println!("  raw Engine API (create+start)      {:>7.1} containers/s  ({:.2} s)", n as f64 / raw, raw);
    println!("  stampede (requested → started)     {:>7.1} containers/s  ({:.2} s)", n as f64 / ours.0, ours.0);
    println!("  stampede (requested → ready)       {:>7.1} containers/s  ({:.2} s)", n as f64 / ours.1, ours.1);
    println!("  ratio stampede/raw (started)       {:>7.2}", raw / ours.0);
    println!("  ratio stampede/raw (ready)         {:>7.2}", raw / ours.1);
}

/// Seconds from the first create call to the last start call returning.
async fn raw_engine(n: usize) -> f64 {
    let docker = bollard::Docker::connect_with_unix_defaults().unwrap().negotiate_version().await.unwrap();
    docker.inspect_image(IMAGE).await.unwrap_or_else(|e| panic!("{IMAGE} missing ({e}): run `stampede image build`"));
    // A listener that accepts and holds connections: the actions stay alive, as in a real run.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let held = Arc::new(tokio::sync::Mutex::new(Vec::new()));
    let h = held.clone();
    let acceptor = tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            h.lock().await.push(s);
        }
    });
    let run = format!("bench-raw-{}", std::process::id());
    let t0 = Instant::now();
    let docker2 = docker.clone();
    futures_util::stream::iter(0..n)
        .map(|i| {
            let (docker, run) = (docker2.clone(), run.clone());
            async move {
                let body = ContainerCreateBody {
                    image: Some(IMAGE.into()),
                    cmd: Some(vec!["action".into()]),
                    env: Some(vec![
                        format!("STAMPEDE_CALLBACK=ws://127.0.0.1:{port}/"),
                        "STAMPEDE_TOKEN=bench".into(),
                        format!("STAMPEDE_INSTANCE_ID={run}-{i}"),
                    ]),
                    labels: Some(HashMap::from([("stampede.run".to_owned(), run.clone())])),
                    host_config: Some(HostConfig { network_mode: Some("host".into()), ..Default::default() }),
                    ..Default::default()
                };
                let name = format!("{run}-{i}");
                let c = docker
                    .create_container(Some(CreateContainerOptionsBuilder::new().name(&name).build()), body)
                    .await
                    .unwrap();
                docker.start_container(&c.id, None::<StartContainerOptions>).await.unwrap();
            }
        })
        .buffer_unordered(CONCURRENCY)
        .collect::<Vec<()>>()
        .await;
    let took = t0.elapsed().as_secs_f64();

    // Clean up by label, as stampede itself does.
    let list = docker
        .list_containers(Some(
            ListContainersOptionsBuilder::new()
                .all(true)
                .filters(&HashMap::from([("label", vec![format!("stampede.run={run}")])]))
                .build(),
        ))
        .await
        .unwrap();
    futures_util::stream::iter(list)
        .map(|c| {
            let docker = docker.clone();
            async move {
                let _ = docker
                    .remove_container(c.id.as_deref().unwrap_or_default(), Some(RemoveContainerOptionsBuilder::new().force(true).build()))
                    .await;
            }
        })
        .buffer_unordered(16)
        .collect::<Vec<()>>()
        .await;
    acceptor.abort();
    took
}

/// Seconds from the first action requested to the last started, and to the last ready.
fn through_stampede(n: usize) -> (f64, f64) {
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("bench.toml");
    std::fs::write(
        &scenario,
        format!(
            "name = \"bench\"\n[[group]]\nruntime = \"docker\"\nscenarios = 1\nactions = {n}\nrequests = 1\nwork = \"sleep:1ms\"\n\
             hold = \"all_ready\"\nstart_concurrency = {CONCURRENCY}\ndocker = {{ network = \"host\" }}\n"
        ),
    )
    .unwrap();
    let out = dir.path().join("r");
    let status = Command::new(env!("CARGO_BIN_EXE_stampede"))
        .args(["run", scenario.to_str().unwrap(), "--out", out.to_str().unwrap(), "-q"])
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(0), "the stampede run failed");
    let text = std::fs::read_to_string(out.join("instances.csv")).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let col = |name: &str| header.iter().position(|c| *c == name).unwrap();
    let (mut first_req, mut last_started, mut last_ready) = (i64::MAX, 0i64, 0i64);
    for l in lines {
        let f: Vec<&str> = l.split(',').collect();
        if f[col("role")] != "action" {
            continue;
        }
        let t = |c: &str| f[col(c)].parse::<i64>().unwrap();
        first_req = first_req.min(t("requested_us"));
        last_started = last_started.max(t("started_us"));
        last_ready = last_ready.max(t("ready_us"));
    }
    ((last_started - first_req) as f64 / 1e6, (last_ready - first_req) as f64 / 1e6)
}
