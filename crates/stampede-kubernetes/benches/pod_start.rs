//! Pods started per second and start latency: through stampede's kubernetes runtime, against a
//! plain kube-rs create-and-watch loop, in the same run, same image, count and QPS.
//!
//! ```sh
//! KUBECONFIG=… cargo bench -p stampede-kubernetes --bench pod_start            # 20 pods, 20 qps
//! POD_START_COUNT=50 POD_START_QPS=20 POD_START_IMAGE=stampede:k8s cargo bench -p stampede-kubernetes --bench pod_start
//! ```
//!
//! Start latency = create requested → ContainersReady seen on a watch (our receive time). The
//! pods run `stampede action` dialling a listener here that accepts and never answers, so they
//! stay running. Needs a cluster with the image loaded (pull policy Never) and host networking;
//! each side runs in a namespace of its own, deleted at the end.

use futures_util::StreamExt as _;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::api::{Api, DeleteParams, PostParams, WatchEvent, WatchParams};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use stampede_core::measure::Role;
use stampede_kubernetes::options::{KubernetesOptions, PullPolicy};
use stampede_kubernetes::pace::Pacer;
use stampede_kubernetes::KubernetesRuntime;
use stampede_runtime::{LaunchSpec, Runtime};

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn spec(run: &str, i: u32, image: &str, port: u16) -> LaunchSpec {
    LaunchSpec {
        run_id: run.into(),
        role: Role::Action,
        instance_id: format!("a{i}"),
        group: 0,
        scenario: 0,
        action: Some(i),
        image: image.into(),
        args: vec!["action".into()],
        env: vec![
            ("STAMPEDE_CALLBACK".into(), format!("ws://127.0.0.1:{port}/")),
            ("STAMPEDE_TOKEN".into(), "t".into()),
            ("STAMPEDE_INSTANCE_ID".into(), format!("a{i}")),
        ],
    }
}

struct Figures {
    pods_per_s: f64,
    latencies_ms: Vec<f64>,
}

fn pct(v: &[f64], p: f64) -> f64 {
    v[((v.len() - 1) as f64 * p).round() as usize]
}

fn print(name: &str, f: &Figures) {
    println!(
        "{name:<10} {:>6.2} pods/s   start p50 {:>7.0} ms  p90 {:>7.0} ms  max {:>7.0} ms",
        f.pods_per_s,
        pct(&f.latencies_ms, 0.5),
        pct(&f.latencies_ms, 0.9),
        f.latencies_ms.last().copied().unwrap_or_default()
    );
}

async fn through_stampede(run: &str, n: u32, qps: f64, image: &str, port: u16) -> Figures {
    let options =
        KubernetesOptions { image_pull_policy: PullPolicy::Never, qps, burst: qps as u32, ..Default::default() };
    let rt = Arc::new(KubernetesRuntime::connect(options).await.expect("a cluster (KUBECONFIG)"));
    rt.begin_run(run).await.expect("the run's namespace");
    let t0 = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for i in 0..n {
        let (rt, s) = (rt.clone(), spec(run, i, image, port));
        set.spawn(async move {
            let requested = chrono::Utc::now().timestamp_micros();
            let h = rt.launch(&s).await.expect("launch").handle;
            let deadline = Instant::now() + Duration::from_secs(120);
            loop {
                assert!(Instant::now() < deadline, "pod {} not ready within 120 s", h.id);
                let t = rt.native_times(&h).await;
                if let Some((_, at)) = t.states.iter().find(|(s, _)| s == "containers_ready") {
                    return (at - requested) as f64 / 1000.0;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        });
    }
    let mut lat: Vec<f64> = set.join_all().await;
    let elapsed = t0.elapsed().as_secs_f64();
    rt.remove_run(Some(run)).await.expect("cleanup");
    lat.sort_by(f64::total_cmp);
    Figures { pods_per_s: f64::from(n) / elapsed, latencies_ms: lat }
}

async fn plain_kube(run: &str, n: u32, qps: f64, image: &str, port: u16) -> Figures {
    let client = kube::Client::try_default().await.expect("a cluster (KUBECONFIG)");
    let ns_name = format!("stampede-{run}");
    let nss: Api<Namespace> = Api::all(client.clone());
    let mut ns = Namespace::default();
    ns.metadata.name = Some(ns_name.clone());
    nss.create(&PostParams::default(), &ns).await.expect("namespace");
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns_name);
    // The same pod spec, built by the same function, so only the way of driving differs.
    let builder = KubernetesRuntime::connect(KubernetesOptions { image_pull_policy: PullPolicy::Never, ..Default::default() })
        .await
        .expect("client");
    let mut stream = pods.watch(&WatchParams::default(), "0").await.expect("watch").boxed();
    let pacer = Pacer::new(qps, qps as u32);
    let t0 = Instant::now();
    let mut requested = HashMap::new();
    let creator = {
        let pods = pods.clone();
        let specs: Vec<Pod> = (0..n).map(|i| builder.pod(&spec(run, i, image, port), &ns_name)).collect();
        tokio::spawn(async move {
            let mut at = HashMap::new();
            for p in specs {
                pacer.acquire().await;
                at.insert(p.metadata.name.clone().unwrap(), chrono::Utc::now().timestamp_micros());
                pods.create(&PostParams::default(), &p).await.expect("create");
            }
            at
        })
    };
    let mut ready: HashMap<String, i64> = HashMap::new();
    while ready.len() < n as usize {
        let Some(Ok(WatchEvent::Added(p) | WatchEvent::Modified(p))) = stream.next().await else { continue };
        let now = chrono::Utc::now().timestamp_micros();
        let is_ready = p.status.iter().flat_map(|s| s.conditions.iter().flatten()).any(|c| c.type_ == "ContainersReady" && c.status == "True");
        if is_ready {
            ready.entry(p.metadata.name.unwrap()).or_insert(now);
        }
    }
    let elapsed = t0.elapsed().as_secs_f64();
    requested.extend(creator.await.expect("creator"));
    nss.delete(&ns_name, &DeleteParams::default()).await.expect("delete namespace");
    while nss.get_opt(&ns_name).await.expect("get").is_some() {
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let mut lat: Vec<f64> = ready.iter().map(|(k, at)| (at - requested[k]) as f64 / 1000.0).collect();
    lat.sort_by(f64::total_cmp);
    Figures { pods_per_s: f64::from(n) / elapsed, latencies_ms: lat }
}

#[tokio::main]
async fn main() {
    let n: u32 = env_or("POD_START_COUNT", 20);
    let qps: f64 = env_or("POD_START_QPS", 20.0);
    let image: String = env_or("POD_START_IMAGE", "stampede:k8s".to_owned());
    // Actions dial this and wait for a handshake that never comes: they stay running.
    let hold = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = hold.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = hold.accept().await {
            held.push(s);
        }
    });
    let stamp = chrono::Utc::now().timestamp() % 100_000;
    println!("{n} pods of {image}, {qps} qps, host network, pulled never");
    let s = through_stampede(&format!("bench-s{stamp}"), n, qps, &image, port).await;
    print("stampede", &s);
    let p = plain_kube(&format!("bench-p{stamp}"), n, qps, &image, port).await;
    print("kube-rs", &p);
    println!(
        "ratio stampede/kube-rs: pods/s {:.2}, start p50 {:.2}",
        s.pods_per_s / p.pods_per_s,
        pct(&s.latencies_ms, 0.5) / pct(&p.latencies_ms, 0.5)
    );
}
