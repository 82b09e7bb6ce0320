//! Recorded API exchanges: the recorder's proxy (examples/record.rs), the replay server the
//! tests run, and the one script of runtime calls both drive.
//!
//! A recording is a list of exchanges, each a request (method, path and query, JSON body) and
//! the real server's response (status, content type, body; a watch response as the chunks it
//! streamed, each with its offset in ms from the request). The replay server answers a request
//! with the first unused recorded exchange whose request is the same (query parameters in any
//! order, bodies compared as JSON). A request with no such exchange is a mismatch: answered 500
//! and reported, so a test fails when our requests drift from what the real server saw.

#![allow(dead_code)]

use bytes::Bytes;
use http_body_util::{Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde::{Deserialize, Serialize};
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;

use stampede_core::measure::Role;
use stampede_kubernetes::options::{ApiHostOverride, Callback, KubernetesOptions, PullPolicy};
use stampede_kubernetes::KubernetesRuntime;
use stampede_runtime::{Handle, LaunchSpec, Runtime, RuntimeError};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Recording {
    /// The API server's `/version` gitVersion these exchanges came from.
    pub kubernetes_version: String,
    pub note: String,
    pub exchanges: Vec<Exchange>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Exchange {
    pub method: String,
    pub uri: String,
    pub body: serde_json::Value,
    pub status: u16,
    pub content_type: String,
    /// Whole body (JSON when it parses, else a string), for non-streamed responses.
    pub response: serde_json::Value,
    /// Streamed (watch) responses: (offset ms, chunk text).
    pub chunks: Vec<(u64, String)>,
}

fn body_json(bytes: &[u8]) -> serde_json::Value {
    if bytes.is_empty() {
        return serde_json::Value::Null;
    }
    serde_json::from_slice(bytes).unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(bytes).into_owned()))
}

fn is_watch(uri: &str) -> bool {
    uri.contains("watch=true")
}

/// Path and query with the query's parameters sorted: the same request in any order.
fn normalise(uri: &str) -> String {
    match uri.split_once('?') {
        Some((p, q)) => {
            let mut params: Vec<&str> = q.split('&').collect();
            params.sort_unstable();
            format!("{p}?{}", params.join("&"))
        }
        None => uri.to_owned(),
    }
}

async fn serve<F, Fut>(listener: TcpListener, handler: F)
where
    F: Fn(hyper::Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = hyper::Response<http_body_util::combinators::BoxBody<Bytes, Infallible>>> + Send,
{
    loop {
        let Ok((stream, _)) = listener.accept().await else { return };
        let handler = handler.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req| {
                let h = handler.clone();
                async move { Ok::<_, Infallible>(h(req).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), svc).await;
        });
    }
}

type Reply = hyper::Response<http_body_util::combinators::BoxBody<Bytes, Infallible>>;

fn full(status: u16, content_type: &str, body: Vec<u8>) -> Reply {
    hyper::Response::builder()
        .status(status)
        .header("content-type", content_type)
        .body(Full::new(Bytes::from(body)).boxed())
        .expect("valid response")
}

/// A stream body fed from a channel (chunks as they come).
fn streamed(status: u16, content_type: &str, rx: tokio::sync::mpsc::Receiver<Bytes>) -> Reply {
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<_, Infallible>(Frame::data(b)), rx))
    });
    hyper::Response::builder()
        .status(status)
        .header("content-type", content_type)
        .body(BodyExt::boxed(StreamBody::new(stream)))
        .expect("valid response")
}

use http_body_util::BodyExt;

/// The replay server: serves `recording` on 127.0.0.1, collects mismatches.
pub struct Replay {
    pub url: String,
    used: Arc<Mutex<Vec<bool>>>,
    mismatches: Arc<Mutex<Vec<String>>>,
    recording: Arc<Recording>,
}

impl Replay {
    pub async fn start(recording: Recording) -> Replay {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind the replay server");
        let url = format!("http://{}", listener.local_addr().expect("local addr"));
        let recording = Arc::new(recording);
        let used = Arc::new(Mutex::new(vec![false; recording.exchanges.len()]));
        let mismatches = Arc::new(Mutex::new(Vec::new()));
        let (rec, u, m) = (recording.clone(), used.clone(), mismatches.clone());
        tokio::spawn(serve(listener, move |req: hyper::Request<Incoming>| {
            let (rec, u, m) = (rec.clone(), u.clone(), m.clone());
            async move {
                let method = req.method().to_string();
                let uri = req.uri().path_and_query().map(|p| p.to_string()).unwrap_or_default();
                let body = body_json(&req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default());
                let found = {
                    let mut used = u.lock().unwrap();
                    let i = rec.exchanges.iter().enumerate().position(|(i, e)| {
                        !used[i] && e.method == method && normalise(&e.uri) == normalise(&uri) && e.body == body
                    });
                    if let Some(i) = i {
                        used[i] = true;
                    }
                    i
                };
                let Some(i) = found else {
                    m.lock().unwrap().push(format!("{method} {uri} {body}"));
                    return full(500, "text/plain", b"no recorded exchange for this request".to_vec());
                };
                let e = &rec.exchanges[i];
                if e.chunks.is_empty() {
                    let bytes = match &e.response {
                        serde_json::Value::Null => Vec::new(),
                        serde_json::Value::String(s) if !e.content_type.contains("json") => s.clone().into_bytes(),
                        v => serde_json::to_vec(v).expect("json"),
                    };
                    return full(e.status, &e.content_type, bytes);
                }
                let (tx, rx) = tokio::sync::mpsc::channel(16);
                let chunks = e.chunks.clone();
                tokio::spawn(async move {
                    let t0 = tokio::time::Instant::now();
                    for (at, text) in chunks {
                        tokio::time::sleep_until(t0 + Duration::from_millis(at)).await;
                        if tx.send(Bytes::from(text)).await.is_err() {
                            return;
                        }
                    }
                    // The real watch was still open when the recording ended: keep it open
                    // until the client goes, so it does not re-watch (an unrecorded request).
                    tx.closed().await;
                });
                streamed(e.status, &e.content_type, rx)
            }
        }));
        Replay { url, used, mismatches, recording }
    }

    /// Requests that matched no recorded exchange, and recorded exchanges never asked for.
    pub fn problems(&self) -> (Vec<String>, Vec<String>) {
        let used = self.used.lock().unwrap();
        let unused = self
            .recording
            .exchanges
            .iter()
            .zip(used.iter())
            .filter(|(_, u)| !**u)
            .map(|(e, _)| format!("{} {}", e.method, e.uri))
            .collect();
        (self.mismatches.lock().unwrap().clone(), unused)
    }
}

/// The recorder's proxy: listens on 127.0.0.1, forwards each request through `client` (the
/// real server, with kubeconfig credentials and TLS), logs every exchange as it happens.
pub struct Recorder {
    pub url: String,
    pub exchanges: Arc<Mutex<Vec<Exchange>>>,
}

impl Recorder {
    pub async fn start(client: kube::Client) -> Recorder {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind the recording proxy");
        let url = format!("http://{}", listener.local_addr().expect("local addr"));
        let exchanges: Arc<Mutex<Vec<Exchange>>> = Arc::default();
        let log = exchanges.clone();
        tokio::spawn(serve(listener, move |req: hyper::Request<Incoming>| {
            let (client, log) = (client.clone(), log.clone());
            async move {
                let (parts, body) = req.into_parts();
                let uri = parts.uri.path_and_query().map(|p| p.to_string()).unwrap_or_default();
                let bytes = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
                let mut up = http::Request::builder().method(parts.method.clone()).uri(&uri);
                if let Some(ct) = parts.headers.get("content-type") {
                    up = up.header("content-type", ct);
                }
                let up = up.body(kube::client::Body::from(bytes.to_vec())).expect("request");
                let t0 = Instant::now();
                let resp = match client.send(up).await {
                    Ok(r) => r,
                    Err(e) => return full(502, "text/plain", e.to_string().into_bytes()),
                };
                let status = resp.status().as_u16();
                let content_type =
                    resp.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
                let mut exchange = Exchange {
                    method: parts.method.to_string(),
                    uri: uri.clone(),
                    body: body_json(&bytes),
                    status,
                    content_type: content_type.clone(),
                    response: serde_json::Value::Null,
                    chunks: Vec::new(),
                };
                let mut body = resp.into_body();
                if !is_watch(&uri) {
                    let bytes = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
                    exchange.response = body_json(&bytes);
                    log.lock().unwrap().push(exchange);
                    return full(status, &content_type, bytes.to_vec());
                }
                // A watch: forward each chunk at once, and log it with its offset.
                let index = {
                    let mut l = log.lock().unwrap();
                    l.push(exchange);
                    l.len() - 1
                };
                let (tx, rx) = tokio::sync::mpsc::channel(16);
                tokio::spawn(async move {
                    while let Some(Ok(frame)) = body.frame().await {
                        let Ok(data) = frame.into_data() else { continue };
                        let at = t0.elapsed().as_millis() as u64;
                        log.lock().unwrap()[index].chunks.push((at, String::from_utf8_lossy(&data).into_owned()));
                        if tx.send(data).await.is_err() {
                            return;
                        }
                    }
                });
                streamed(status, &content_type, rx)
            }
        }));
        Recorder { url, exchanges }
    }
}

/// The image the script runs (loaded on the node), and one that is not there.
pub const IMAGE: &str = "stampede:k8s";
pub const MISSING_IMAGE: &str = "stampede:not-on-this-node";
pub const RUN_ID: &str = "rec1";
/// Fixed, so the recorded pod specs are the same in every replay.
pub const HOLD_PORT: u16 = 39123;

pub fn options() -> KubernetesOptions {
    KubernetesOptions {
        image_pull_policy: PullPolicy::Never,
        callback: Callback::Loopback,
        api_host_override: ApiHostOverride::Address("127.0.0.1:6443".into()),
        ..Default::default()
    }
}

pub fn runtime(url: &str, options: KubernetesOptions) -> KubernetesRuntime {
    let config = kube::Config::new(url.parse().expect("url"));
    KubernetesRuntime::with_config(config, options).expect("a client")
}

fn spec(scenario: u32, action: u32, image: &str) -> LaunchSpec {
    LaunchSpec {
        run_id: RUN_ID.into(),
        role: Role::Action,
        instance_id: format!("g0-s{scenario}-a{action}"),
        group: 0,
        scenario,
        action: Some(action),
        image: image.into(),
        args: vec!["action".into()],
        // A listener that accepts and never answers (see `script`): the action stays running.
        env: vec![(
            "STAMPEDE_CALLBACK".into(),
            format!("ws://127.0.0.1:{HOLD_PORT}/")),
            ("STAMPEDE_TOKEN".into(), "t".into()),
        ],
    }
}

/// What the script saw, for the tests to check.
#[derive(Debug)]
pub struct Seen {
    pub version: String,
    pub running_states: Vec<String>,
    pub condition_states: Vec<String>,
    pub missing_image: String,
    pub unschedulable: String,
    pub removed_namespaces: usize,
}

async fn wait_until<T>(what: &str, mut f: impl AsyncFnMut() -> Option<T>) -> T {
    let t0 = Instant::now();
    loop {
        if let Some(t) = f().await {
            return t;
        }
        assert!(t0.elapsed() < Duration::from_secs(60), "{what}: not within 60 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The script: a run's namespace and rights; a pod that runs, killed and removed; a pod whose
/// image is not on the node; an unschedulable pod; the run removed.
pub async fn script(url: &str) -> Result<Seen, RuntimeError> {
    // While recording, the pod's action dials this and waits for a handshake that never comes
    // (in a replay nothing dials it, and the port may be taken: then there is nothing to hold).
    let mut held = Vec::new();
    let hold = tokio::net::TcpListener::bind(("127.0.0.1", HOLD_PORT)).await.ok();
    let rt = runtime(url, options());
    let version = rt.preflight(IMAGE).await?;
    rt.begin_run(RUN_ID).await?;

    let ok = rt.launch(&spec(0, 0, IMAGE)).await?.handle;
    let native = wait_until("the pod running", async || {
        if let Some(l) = &hold {
            if let Ok(Ok((s, _))) = tokio::time::timeout(Duration::from_millis(1), l.accept()).await {
                held.push(s);
            }
        }
        let n = rt.native_times(&ok).await;
        n.states.iter().any(|(s, _)| s == "containers_ready").then_some(n)
    })
    .await;
    rt.kill(&ok).await?;
    rt.remove(&ok).await?;

    let missing = rt.launch(&spec(0, 1, MISSING_IMAGE)).await?.handle;
    let missing_image = tokio::time::timeout(Duration::from_secs(30), rt.wait_failed(&missing)).await.expect("failed in time");
    rt.remove(&missing).await?;

    // A second client in the run's namespace asking for more CPU than the node has.
    let big = KubernetesOptions { namespace: format!("stampede-{RUN_ID}"), cpu_request: "1000".into(), ..options() };
    let rt2 = runtime(url, big);
    let huge: Handle = rt2.launch(&spec(1, 0, IMAGE)).await?.handle;
    let unschedulable = tokio::time::timeout(Duration::from_secs(30), rt2.wait_failed(&huge)).await.expect("failed in time");
    rt2.remove(&huge).await?;
    drop(rt2);

    let removed_namespaces = rt.remove_run(Some(RUN_ID)).await?;
    Ok(Seen {
        version,
        running_states: native.states.iter().map(|(s, _)| s.clone()).collect(),
        condition_states: native.reference.iter().map(|(s, _)| s.clone()).collect(),
        missing_image,
        unschedulable,
        removed_namespaces,
    })
}
