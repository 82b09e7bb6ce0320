//! Recorded exchanges with a real Mesos master: the recorder's proxy (examples/record.rs), the
//! replay server the tests run, and the one script of runtime calls both drive.
//!
//! A recording is the list of HTTP exchanges in the order the master answered them: request
//! (method, path, `Mesos-Stream-Id` header, body), response (status, stream id, body). The
//! SUBSCRIBE exchanges carry their event stream as items, each with *when* it came: after how
//! many other requests had reached the master, and how long after the last of them (or after
//! the SUBSCRIBE). The replay serves an item only once as many requests reached it, that long
//! after: an offer comes after the REVIVE it answers, an update after the ACCEPT, as they did.
//!
//! The replay answers a request with the first unused exchange whose request is the same (JSON
//! bodies compared as JSON, the stream id header included). A request with none is a mismatch:
//! answered 500 and reported, so a test fails when our calls drift from what the master saw.

#![allow(dead_code)]

use bytes::Bytes;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::Notify;

use stampede_core::measure::Role;
use stampede_mesos::options::MesosOptions;
use stampede_mesos::recordio::{encode, Decoder};
use stampede_mesos::MesosRuntime;
use stampede_runtime::{LaunchSpec, Runtime, RuntimeError};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Recording {
    /// The master's `/version` these exchanges came from.
    pub mesos_version: String,
    pub note: String,
    pub exchanges: Vec<Exchange>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Exchange {
    pub method: String,
    pub uri: String,
    /// The request's `Mesos-Stream-Id` header.
    pub stream_id: Option<String>,
    pub body: Value,
    pub status: u16,
    pub content_type: String,
    /// The response's `Mesos-Stream-Id` header (SUBSCRIBE).
    pub response_stream_id: Option<String>,
    pub response: Value,
    /// SUBSCRIBE: the event stream.
    pub events: Vec<StreamItem>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StreamItem {
    /// Requests other than SUBSCRIBE that had reached the master before this item.
    pub after_requests: usize,
    /// Milliseconds after the last of those requests (or after the SUBSCRIBE, if later).
    pub delay_ms: u64,
    /// The event; `None`: the stream ended here.
    pub event: Option<Value>,
}

fn body_json(bytes: &[u8]) -> Value {
    if bytes.is_empty() {
        return Value::Null;
    }
    serde_json::from_slice(bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(bytes).into_owned()))
}

fn is_subscribe(body: &Value) -> bool {
    body["type"] == "SUBSCRIBE"
}

pub type Reply = hyper::Response<http_body_util::combinators::BoxBody<Bytes, Infallible>>;

pub fn full(status: u16, content_type: &str, body: Vec<u8>) -> Reply {
    hyper::Response::builder()
        .status(status)
        .header("content-type", content_type)
        .body(Full::new(Bytes::from(body)).boxed())
        .expect("valid response")
}

pub fn streamed(stream_id: &str, rx: tokio::sync::mpsc::Receiver<Bytes>) -> Reply {
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<_, Infallible>(Frame::data(b)), rx))
    });
    hyper::Response::builder()
        .status(200)
        .header("content-type", "application/json")
        .header("Mesos-Stream-Id", stream_id)
        .body(BodyExt::boxed(StreamBody::new(stream)))
        .expect("valid response")
}

pub async fn serve<F, Fut>(listener: TcpListener, handler: F)
where
    F: Fn(hyper::Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = Reply> + Send,
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

/// When each request other than SUBSCRIBE arrived (the clock items are gated on).
#[derive(Default)]
struct Arrivals {
    at: Mutex<Vec<Instant>>,
    changed: Notify,
}

impl Arrivals {
    fn arrived(&self) -> usize {
        let mut a = self.at.lock().unwrap();
        a.push(Instant::now());
        drop(a);
        self.changed.notify_waiters();
        self.count()
    }

    fn count(&self) -> usize {
        self.at.lock().unwrap().len()
    }

    fn nth(&self, n: usize) -> Option<Instant> {
        n.checked_sub(1).and_then(|i| self.at.lock().unwrap().get(i).copied())
    }

    async fn wait_for(&self, n: usize) -> Instant {
        loop {
            let notified = self.changed.notified();
            if let Some(t) = self.nth(n) {
                return t;
            }
            if n == 0 {
                return Instant::now();
            }
            notified.await;
        }
    }
}

/// The replay server: serves `recording` on 127.0.0.1, collects mismatches.
pub struct Replay {
    /// `host:port`, as `mesos.master` takes it.
    pub master: String,
    used: Arc<Mutex<Vec<bool>>>,
    mismatches: Arc<Mutex<Vec<String>>>,
    recording: Arc<Recording>,
}

impl Replay {
    pub async fn start(recording: Recording) -> Replay {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind the replay server");
        let master = listener.local_addr().expect("local addr").to_string();
        let recording = Arc::new(recording);
        let used = Arc::new(Mutex::new(vec![false; recording.exchanges.len()]));
        let mismatches = Arc::new(Mutex::new(Vec::new()));
        let arrivals = Arc::new(Arrivals::default());
        let (rec, u, m) = (recording.clone(), used.clone(), mismatches.clone());
        tokio::spawn(serve(listener, move |req: hyper::Request<Incoming>| {
            let (rec, u, m, arrivals) = (rec.clone(), u.clone(), m.clone(), arrivals.clone());
            async move {
                let method = req.method().to_string();
                let uri = req.uri().path_and_query().map(|p| p.to_string()).unwrap_or_default();
                let stream_id = req.headers().get("Mesos-Stream-Id").and_then(|v| v.to_str().ok()).map(str::to_owned);
                let body = body_json(&req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default());
                let subscribe = is_subscribe(&body);
                let found = {
                    let mut used = u.lock().unwrap();
                    let i = rec.exchanges.iter().enumerate().position(|(i, e)| {
                        !used[i] && e.method == method && e.uri == uri && e.body == body && e.stream_id == stream_id
                    });
                    if let Some(i) = i {
                        used[i] = true;
                    }
                    i
                };
                let since = Instant::now();
                if !subscribe {
                    arrivals.arrived();
                }
                let Some(i) = found else {
                    m.lock().unwrap().push(format!("{method} {uri} stream={stream_id:?} {body}"));
                    return full(500, "text/plain", b"no recorded exchange for this request".to_vec());
                };
                let e = rec.exchanges[i].clone();
                if !(subscribe && e.status == 200) {
                    let bytes = match &e.response {
                        Value::Null => Vec::new(),
                        Value::String(s) => s.clone().into_bytes(),
                        v => serde_json::to_vec(v).expect("json"),
                    };
                    return full(e.status, &e.content_type, bytes);
                }
                let (tx, rx) = tokio::sync::mpsc::channel(64);
                tokio::spawn(async move {
                    for item in e.events {
                        let last = arrivals.wait_for(item.after_requests).await;
                        let base = if item.after_requests == 0 { since } else { last.max(since) };
                        tokio::time::sleep_until((base + Duration::from_millis(item.delay_ms)).into()).await;
                        let Some(event) = item.event else { return };
                        if tx.send(Bytes::from(encode(event.to_string().as_bytes()))).await.is_err() {
                            return;
                        }
                    }
                    // The real stream was still open when the recording ended.
                    tx.closed().await;
                });
                streamed(e.response_stream_id.as_deref().unwrap_or(""), rx)
            }
        }));
        Replay { master, used, mismatches, recording }
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
            .map(|(e, _)| format!("{} {} {}", e.method, e.uri, e.body))
            .collect();
        (self.mismatches.lock().unwrap().clone(), unused)
    }
}

/// The recorder's proxy: listens on 127.0.0.1, forwards each request to the real master, logs
/// every exchange as it happens. `cut` ends the event stream being forwarded (the framework
/// then subscribes again), and the recording says where.
pub struct Recorder {
    pub master: String,
    pub exchanges: Arc<Mutex<Vec<Exchange>>>,
    pub cut: Arc<Notify>,
}

impl Recorder {
    pub async fn start(upstream: String) -> Recorder {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind the recording proxy");
        let master = listener.local_addr().expect("local addr").to_string();
        let exchanges: Arc<Mutex<Vec<Exchange>>> = Arc::default();
        let cut = Arc::new(Notify::new());
        let arrivals = Arc::new(Arrivals::default());
        let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .build_http::<Full<Bytes>>();
        let (log, cut2) = (exchanges.clone(), cut.clone());
        tokio::spawn(serve(listener, move |req: hyper::Request<Incoming>| {
            let (client, log, cut, arrivals, upstream) =
                (client.clone(), log.clone(), cut2.clone(), arrivals.clone(), upstream.clone());
            async move {
                let (parts, body) = req.into_parts();
                let uri = parts.uri.path_and_query().map(|p| p.to_string()).unwrap_or_default();
                let stream_id = parts.headers.get("Mesos-Stream-Id").and_then(|v| v.to_str().ok()).map(str::to_owned);
                let bytes = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
                let json = body_json(&bytes);
                let subscribe = is_subscribe(&json);
                let since = Instant::now();
                let mut up =
                    http::Request::builder().method(parts.method.clone()).uri(format!("http://{upstream}{uri}"));
                for h in ["content-type", "accept", "Mesos-Stream-Id"] {
                    if let Some(v) = parts.headers.get(h) {
                        up = up.header(h, v);
                    }
                }
                let up = up.body(Full::new(bytes.clone())).expect("request");
                // Counted when sent on, as the master sees it.
                if !subscribe {
                    arrivals.arrived();
                }
                let resp = match client.request(up).await {
                    Ok(r) => r,
                    Err(e) => return full(502, "text/plain", e.to_string().into_bytes()),
                };
                let status = resp.status().as_u16();
                let content_type =
                    resp.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
                let response_stream_id =
                    resp.headers().get("Mesos-Stream-Id").and_then(|v| v.to_str().ok()).map(str::to_owned);
                let mut exchange = Exchange {
                    method: parts.method.to_string(),
                    uri,
                    stream_id,
                    body: json,
                    status,
                    content_type: content_type.clone(),
                    response_stream_id: response_stream_id.clone(),
                    response: Value::Null,
                    events: Vec::new(),
                };
                let mut body = resp.into_body();
                if !(subscribe && status == 200) {
                    let bytes = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
                    exchange.response = body_json(&bytes);
                    log.lock().unwrap().push(exchange);
                    return full(status, &content_type, bytes.to_vec());
                }
                let index = {
                    let mut l = log.lock().unwrap();
                    l.push(exchange);
                    l.len() - 1
                };
                let (tx, rx) = tokio::sync::mpsc::channel(64);
                tokio::spawn(async move {
                    let mut decoder = Decoder::new();
                    let item = |event: Option<Value>| {
                        let n = arrivals.count();
                        let base = arrivals.nth(n).map_or(since, |t| t.max(since));
                        StreamItem { after_requests: n, delay_ms: base.elapsed().as_millis() as u64, event }
                    };
                    loop {
                        let frame = tokio::select! {
                            f = body.frame() => f,
                            _ = cut.notified() => {
                                log.lock().unwrap()[index].events.push(item(None));
                                return;
                            }
                        };
                        let Some(Ok(frame)) = frame else { return };
                        let Ok(data) = frame.into_data() else { continue };
                        for record in decoder.push(&data).expect("the master speaks RecordIO") {
                            let event = body_json(&record);
                            log.lock().unwrap()[index].events.push(item(Some(event)));
                            if tx.send(Bytes::from(encode(&record))).await.is_err() {
                                return;
                            }
                        }
                    }
                });
                streamed(response_stream_id.as_deref().unwrap_or(""), rx)
            }
        }));
        Recorder { master, exchanges, cut }
    }
}

/// The image the script runs (in the agent's Docker), and one that is not there.
pub const IMAGE: &str = "stampede:latest";
pub const MISSING_IMAGE: &str = "stampede:not-on-this-agent";
pub const RUN_ID: &str = "rec1";
/// Fixed, so the recorded task infos are the same in every replay.
pub const HOLD_PORT: u16 = 39124;

pub fn options(master: &str) -> MesosOptions {
    MesosOptions { master: master.to_owned(), ..Default::default() }
}

fn spec(action: u32, image: &str) -> LaunchSpec {
    LaunchSpec {
        run_id: RUN_ID.into(),
        role: Role::Action,
        instance_id: format!("{RUN_ID}-g0-s0-a{action}"),
        group: 0,
        scenario: 0,
        action: Some(action),
        image: image.into(),
        args: vec!["action".into()],
        // A listener that accepts and never answers (see `script`): the action stays running.
        env: vec![
            ("STAMPEDE_CALLBACK".into(), format!("ws://127.0.0.1:{HOLD_PORT}/")),
            ("STAMPEDE_TOKEN".into(), "t".into()),
            ("STAMPEDE_INSTANCE_ID".into(), format!("{RUN_ID}-g0-s0-a{action}")),
        ],
    }
}

/// What the script saw, for the tests to check.
#[derive(Debug)]
pub struct Seen {
    pub version: String,
    pub running_states: Vec<String>,
    pub received_states: Vec<String>,
    pub subscriptions: u64,
    pub missing_image: String,
    pub declined: u64,
    pub removed: usize,
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

/// The script: preflight; the framework subscribed; a task that runs, its stream cut and taken
/// up again (RECONCILE), killed; a task whose image the agent lacks; an offer nothing fits,
/// declined; the run torn down. `cut` ends the event stream (a no-op in a replay, where the
/// recording ends it).
pub async fn script(master: &str, cut: impl Fn()) -> Result<Seen, RuntimeError> {
    let mut held = Vec::new();
    let hold = tokio::net::TcpListener::bind(("127.0.0.1", HOLD_PORT)).await.ok();
    let rt = MesosRuntime::new(options(master));
    let version = rt.preflight(IMAGE).await?;
    rt.begin_run(RUN_ID).await?;
    let fw = rt.framework_for(RUN_ID);

    let ok = rt.launch(&spec(0, IMAGE)).await?.handle;
    wait_until("the task running", async || {
        if let Some(l) = &hold {
            if let Ok(Ok((s, _))) = tokio::time::timeout(Duration::from_millis(1), l.accept()).await {
                held.push(s);
            }
        }
        fw.task(&ok.id).is_some_and(|t| t.states.iter().any(|(s, _)| s == "TASK_RUNNING")).then_some(())
    })
    .await;
    // The stream lost: the framework subscribes again and reconciles.
    cut();
    wait_until("subscribed again", async || (fw.subscriptions() >= 2).then_some(())).await;
    rt.kill(&ok).await?;
    let native = rt.native_times(&ok).await;
    rt.remove(&ok).await?;

    // Fails its launch, with the agent's reason, before it would hold a start slot any longer.
    let missing_image = match rt.launch(&spec(1, MISSING_IMAGE)).await {
        Ok(l) => panic!("a task whose image is missing launched: {:?}", l.handle),
        Err(e) => e.chain(),
    };

    // A second framework asking for more than the agent has: its offers are declined.
    let big = MesosRuntime::new(MesosOptions { cpus: 1000.0, ..options(master) });
    let big_fw = big.framework_for(RUN_ID);
    big_fw.start().await.map_err(|e| e.unavailable())?;
    let pending = {
        let (fw, t) = (big_fw.clone(), big.task_template(&spec(2, IMAGE)));
        tokio::spawn(async move { fw.launch("stampede-rec1-g0-s0-a2".into(), t, None).await })
    };
    wait_until("an offer declined", async || (big_fw.counts().declined >= 1).then_some(())).await;
    let declined = big_fw.counts().declined;
    big_fw.teardown().await.map_err(|e| e.unavailable())?;
    let _ = pending.await;

    let removed = rt.remove_run(Some(RUN_ID)).await?;
    Ok(Seen {
        version,
        running_states: native.states.iter().map(|(s, _)| s.clone()).collect(),
        received_states: native.reference.iter().map(|(s, _)| s.clone()).collect(),
        subscriptions: fw.subscriptions(),
        missing_image,
        declined,
        removed,
    })
}
