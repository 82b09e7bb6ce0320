//! [`Framework`]: one tier's framework on the Mesos v1 scheduler HTTP API.
//!
//! - SUBSCRIBE opens the event stream (RecordIO of JSON events, [`crate::recordio`]); every
//!   other call goes on its own request with the stream's `Mesos-Stream-Id` header.
//! - The stream is watched: no event (heartbeats included) for three heartbeat intervals is a
//!   silent master. The framework then subscribes again with its id and RECONCILEs its tasks;
//!   when that fails for [`RECONNECT_FOR`], everything waiting fails with the reason.
//! - OFFERS are packed with the launches waiting, in the order asked, and ACCEPTed (LAUNCH);
//!   an offer nothing fits is DECLINEd. Both carry `filters.refuse_seconds`: what is left of an
//!   offer stays away from us that long, which is the setting under study.
//! - When nothing has waited for longer than `refuse_seconds` the framework SUPPRESSes offers
//!   (every filter it set has expired by then, so this changes no offer timing), and REVIVEs
//!   when a launch comes.
//! - Every UPDATE with a uuid is ACKNOWLEDGEd at once (the agent holds back the next update of
//!   a task until the previous one is acknowledged); RESCIND drops an offer we still held.
//! - KILL asks for no grace period; TEARDOWN ends the framework and every task of it.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{oneshot, watch, Notify};

use stampede_core::measure::wall_us;

use crate::options::MesosOptions;
use crate::recordio::Decoder;
use crate::runtime::BoxError;
use crate::MesosError;

/// How long a framework whose scheduler is gone keeps its tasks (FrameworkInfo
/// `failover_timeout`): long enough to subscribe again after a dropped stream.
pub const FAILOVER_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a dropped stream is retried before the framework gives up.
pub const RECONNECT_FOR: Duration = Duration::from_secs(20);
/// How long SUBSCRIBE may take to answer with SUBSCRIBED.
const SUBSCRIBE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a KILL may take to end in a terminal status.
pub const KILL_TIMEOUT: Duration = Duration::from_secs(60);

/// Task states after which a task runs no more.
pub const TERMINAL: &[&str] = &[
    "TASK_FINISHED",
    "TASK_FAILED",
    "TASK_KILLED",
    "TASK_ERROR",
    "TASK_LOST",
    "TASK_DROPPED",
    "TASK_GONE",
    "TASK_GONE_BY_OPERATOR",
    "TASK_UNREACHABLE",
    "TASK_UNKNOWN",
];

/// Terminal states that are no failure: the task finished, or was killed as asked. Every other
/// terminal state means it failed.
const ENDED_WELL: &[&str] = &["TASK_FINISHED", "TASK_KILLED"];

/// Whether `state` ends a task in failure.
pub fn is_failure(state: &str) -> bool {
    TERMINAL.contains(&state) && !ENDED_WELL.contains(&state)
}

pub type HttpClient = Client<HttpConnector, Full<Bytes>>;

pub fn http_client() -> HttpClient {
    Client::builder(TokioExecutor::new()).build_http()
}

/// Sends `req` (named `what` in errors) and reads the whole answer.
pub(crate) async fn exchange(
    http: &HttpClient,
    req: http::Request<Full<Bytes>>,
    what: &str,
) -> Result<(http::StatusCode, Bytes), MesosError> {
    let unreachable = |e: BoxError| MesosError::Http { what: what.to_owned(), source: e };
    let resp = http.request(req).await.map_err(|e| unreachable(Box::new(e)))?;
    let status = resp.status();
    let body = resp.into_body().collect().await.map_err(|e| unreachable(Box::new(e)))?.to_bytes();
    Ok((status, body))
}

/// The master's refusal of `what`, with its own words.
pub(crate) fn refused(what: String, status: http::StatusCode, body: &[u8]) -> MesosError {
    MesosError::Refused { what, status: status.as_u16(), message: String::from_utf8_lossy(body).trim().to_owned() }
}

/// What the framework knows of one task.
#[derive(Debug, Clone, Default)]
pub struct Task {
    pub agent_id: String,
    /// The agent's hostname, as its offer named it.
    pub hostname: String,
    /// When the offer that took it arrived, and when our ACCEPT returned (wall µs).
    pub offered_us: i64,
    pub accepted_us: i64,
    /// Status updates: (state as Mesos names it, the update's own timestamp in wall µs).
    pub states: Vec<(String, i64)>,
    /// The same updates by when we received them (wall µs).
    pub received: Vec<(String, i64)>,
    /// The terminal state, with the status's message and reason.
    pub terminal: Option<(String, String)>,
    pub kill_asked: bool,
    /// When the first of TASK_STARTING / TASK_RUNNING reached us (the launch's `started`).
    pub starting_at: Option<Instant>,
}

impl Task {
    pub fn failed(&self) -> Option<String> {
        self.terminal.as_ref().filter(|(s, _)| is_failure(s)).map(|(s, why)| format!("{s}: {why}"))
    }
}

/// Where a launch went.
#[derive(Debug, Clone)]
pub struct Placed {
    pub accepted: Instant,
    pub hostname: String,
}

struct Pending {
    task_id: String,
    /// TaskInfo without `agent_id` and `resources` (set from the offer that takes it).
    template: Value,
    /// Env to add with the agent's hostname (a scenario telling its actions where it is).
    advertise_env: Option<&'static str>,
    done: oneshot::Sender<Result<Placed, String>>,
}

#[derive(Debug, Clone, PartialEq)]
enum Link {
    Idle,
    Up,
    Reconnecting,
    /// Given up, with the reason; every launch and wait fails with it.
    Down(String),
    TornDown,
}

struct State {
    framework_id: Option<String>,
    stream_id: Option<String>,
    heartbeat: Duration,
    link: Link,
    pending: Vec<Pending>,
    tasks: HashMap<String, Task>,
    suppressed: bool,
    /// Since when nothing waits for an offer.
    idle_since: Instant,
    declined: u64,
    rescinded: u64,
    /// SUBSCRIBED events taken (more than one: the stream was lost and taken up again).
    subscriptions: u64,
    /// TEARDOWN was sent: the stream's end is expected.
    tearing_down: bool,
}

/// Counts worth reporting.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OfferCounts {
    pub declined: u64,
    pub rescinded: u64,
}

pub struct Framework {
    http: HttpClient,
    base: String,
    name: String,
    options: MesosOptions,
    state: Mutex<State>,
    /// Bumped on every change of `state` that a waiter may care about.
    changed: watch::Sender<u64>,
    /// A launch is waiting (wakes the event loop to REVIVE).
    work: Notify,
    /// Serialises the first subscription.
    starting: tokio::sync::Mutex<()>,
    events: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl std::fmt::Debug for Framework {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Framework").field("name", &self.name).field("master", &self.base).finish()
    }
}

impl Drop for Framework {
    fn drop(&mut self) {
        if let Some(t) = self.events.lock().expect("events lock").take() {
            t.abort();
        }
    }
}

fn id(v: &Value) -> String {
    v["value"].as_str().unwrap_or_default().to_owned()
}

/// Sums of the scalar resources `cpus` and `mem` of an offer.
fn offered(offer: &Value) -> (f64, f64) {
    let mut cpus = 0.0;
    let mut mem = 0.0;
    for r in offer["resources"].as_array().into_iter().flatten() {
        let v = r["scalar"]["value"].as_f64().unwrap_or(0.0);
        match r["name"].as_str() {
            Some("cpus") => cpus += v,
            Some("mem") => mem += v,
            _ => {}
        }
    }
    (cpus, mem)
}

/// The status time Mesos gives (seconds since the epoch, fractional) in wall µs.
fn status_us(status: &Value) -> i64 {
    status["timestamp"].as_f64().map(|s| (s * 1e6).round() as i64).unwrap_or_else(wall_us)
}

impl Framework {
    /// A framework named `name` (nothing is sent until [`Framework::start`]).
    pub fn new(http: HttpClient, options: MesosOptions, name: String) -> Arc<Self> {
        let base = format!("http://{}", options.master);
        Arc::new(Framework {
            http,
            base,
            name,
            options,
            state: Mutex::new(State {
                framework_id: None,
                stream_id: None,
                heartbeat: Duration::from_secs(15),
                link: Link::Idle,
                pending: Vec::new(),
                tasks: HashMap::new(),
                suppressed: false,
                idle_since: Instant::now(),
                declined: 0,
                rescinded: 0,
                subscriptions: 0,
                tearing_down: false,
            }),
            changed: watch::channel(0).0,
            work: Notify::new(),
            starting: tokio::sync::Mutex::new(()),
            events: Mutex::new(None),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn framework_id(&self) -> Option<String> {
        self.lock().framework_id.clone()
    }

    /// How many times the framework subscribed (2 after one lost stream taken up again).
    pub fn subscriptions(&self) -> u64 {
        self.lock().subscriptions
    }

    pub fn counts(&self) -> OfferCounts {
        let s = self.lock();
        OfferCounts { declined: s.declined, rescinded: s.rescinded }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("framework state lock")
    }

    fn bump(&self) {
        self.changed.send_modify(|n| *n += 1);
    }

    fn framework_info(&self, framework_id: Option<&str>) -> Value {
        let mut info = json!({
            "user": "root",
            "name": self.name,
            "roles": [self.options.role],
            "failover_timeout": FAILOVER_TIMEOUT.as_secs_f64(),
            "capabilities": [{"type": "MULTI_ROLE"}, {"type": "PARTITION_AWARE"}],
        });
        if let Some(fid) = framework_id {
            info["id"] = json!({ "value": fid });
        }
        info
    }

    /// POST /api/v1/scheduler with `body` (no stream): the master answers 202.
    pub async fn call(&self, body: Value) -> Result<(), MesosError> {
        let kind = body["type"].as_str().unwrap_or("?").to_owned();
        let (stream, fid) = {
            let s = self.lock();
            (s.stream_id.clone(), s.framework_id.clone())
        };
        let mut body = body;
        if let Some(fid) = fid {
            body["framework_id"] = json!({ "value": fid });
        }
        let mut req = http::Request::post(format!("{}/api/v1/scheduler", self.base))
            .header(http::header::CONTENT_TYPE, "application/json")
            .header(http::header::ACCEPT, "application/json");
        if let Some(s) = stream {
            req = req.header("Mesos-Stream-Id", s);
        }
        let req = req.body(Full::new(Bytes::from(body.to_string()))).expect("a well-formed request");
        let what = format!("{kind} call");
        let (status, body) = exchange(&self.http, req, &what).await?;
        if status == http::StatusCode::ACCEPTED || status == http::StatusCode::OK {
            Ok(())
        } else {
            Err(refused(what, status, &body))
        }
    }

    /// Subscribes (again, with the framework's id once it has one): the response whose body is
    /// the event stream, and the stream's id.
    async fn subscribe(&self) -> Result<(hyper::body::Incoming, String, bool), MesosError> {
        let fid = self.lock().framework_id.clone();
        // Subscribed with offers suppressed while nothing waits: an offer declined before the
        // first launch would keep the agent's resources from us for `refuse_seconds`.
        let suppressed = {
            let s = self.lock();
            if s.pending.is_empty() {
                vec![self.options.role.clone()]
            } else {
                Vec::new()
            }
        };
        let mut body = json!({"type": "SUBSCRIBE", "subscribe": {
            "framework_info": self.framework_info(fid.as_deref()),
            "suppressed_roles": suppressed,
        }});
        if let Some(fid) = &fid {
            body["framework_id"] = json!({ "value": fid });
        }
        let req = http::Request::post(format!("{}/api/v1/scheduler", self.base))
            .header(http::header::CONTENT_TYPE, "application/json")
            .header(http::header::ACCEPT, "application/json")
            .body(Full::new(Bytes::from(body.to_string())))
            .expect("a well-formed request");
        let resp = self
            .http
            .request(req)
            .await
            .map_err(|e| MesosError::Http { what: "SUBSCRIBE".into(), source: Box::new(e) })?;
        let status = resp.status();
        if status == http::StatusCode::TEMPORARY_REDIRECT {
            let leader =
                resp.headers().get(http::header::LOCATION).and_then(|l| l.to_str().ok()).unwrap_or("?").to_owned();
            return Err(MesosError::NotLeader(leader));
        }
        if status != http::StatusCode::OK {
            let text = resp
                .into_body()
                .collect()
                .await
                .map(|b| String::from_utf8_lossy(&b.to_bytes()).into_owned())
                .unwrap_or_default();
            return Err(MesosError::Refused {
                what: "SUBSCRIBE".into(),
                status: status.as_u16(),
                message: text.trim().to_owned(),
            });
        }
        let stream_id = resp
            .headers()
            .get("Mesos-Stream-Id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .ok_or_else(|| MesosError::Protocol("SUBSCRIBE answered without a Mesos-Stream-Id header".into()))?;
        Ok((resp.into_body(), stream_id, !suppressed.is_empty()))
    }

    /// Subscribes once (later calls return at once) and starts following the event stream.
    /// A refusal (role, authentication) or no SUBSCRIBED within 30 s is the error.
    pub async fn start(self: &Arc<Self>) -> Result<(), MesosError> {
        let _one = self.starting.lock().await;
        match self.lock().link.clone() {
            Link::Idle => {}
            Link::Down(why) => return Err(MesosError::Down(why)),
            Link::TornDown => return Err(MesosError::Down("the framework was torn down".into())),
            Link::Up | Link::Reconnecting => return Ok(()),
        }
        let (body, stream_id, suppressed) = self.subscribe().await?;
        let mut events = EventStream::new(body);
        let first = tokio::time::timeout(SUBSCRIBE_TIMEOUT, events.next())
            .await
            .map_err(|_| MesosError::Protocol(format!("no SUBSCRIBED event within {SUBSCRIBE_TIMEOUT:?}")))??;
        self.subscribed(&first, stream_id, suppressed)?;
        let me = Arc::downgrade(self);
        let task = tokio::spawn(async move { follow(me, events).await });
        *self.events.lock().expect("events lock") = Some(task);
        Ok(())
    }

    /// Takes the SUBSCRIBED event (or the ERROR that refused us).
    fn subscribed(&self, event: &Value, stream_id: String, suppressed: bool) -> Result<(), MesosError> {
        match event["type"].as_str() {
            Some("SUBSCRIBED") => {
                let sub = &event["subscribed"];
                let mut s = self.lock();
                s.framework_id = Some(id(&sub["framework_id"]));
                s.stream_id = Some(stream_id);
                if let Some(h) = sub["heartbeat_interval_seconds"].as_f64().filter(|h| *h > 0.0) {
                    s.heartbeat = Duration::from_secs_f64(h);
                }
                s.link = Link::Up;
                s.suppressed = suppressed;
                s.subscriptions += 1;
                drop(s);
                tracing::debug!(framework = %self.name, id = %self.framework_id().unwrap_or_default(), "subscribed");
                self.bump();
                Ok(())
            }
            Some("ERROR") => {
                Err(MesosError::FrameworkRefused(event["error"]["message"].as_str().unwrap_or("").to_owned()))
            }
            other => Err(MesosError::Protocol(format!("the first event was {other:?}, not SUBSCRIBED"))),
        }
    }

    /// Queues a task for the next offer that fits and waits until it was accepted.
    pub async fn launch(
        self: &Arc<Self>,
        task_id: String,
        template: Value,
        advertise_env: Option<&'static str>,
    ) -> Result<Placed, MesosError> {
        self.start().await?;
        let (tx, rx) = oneshot::channel();
        {
            let mut s = self.lock();
            if let Link::Down(why) = &s.link {
                return Err(MesosError::Down(why.clone()));
            }
            s.tasks.insert(task_id.clone(), Task::default());
            s.pending.push(Pending { task_id, template, advertise_env, done: tx });
        }
        self.work.notify_one();
        match rx.await {
            Ok(Ok(p)) => Ok(p),
            Ok(Err(why)) => Err(MesosError::Down(why)),
            Err(_) => Err(MesosError::Down("the framework stopped".into())),
        }
    }

    /// A copy of what is known of `task_id`.
    pub fn task(&self, task_id: &str) -> Option<Task> {
        self.lock().tasks.get(task_id).cloned()
    }

    pub fn forget(&self, task_id: &str) {
        self.lock().tasks.remove(task_id);
    }

    /// Waits until `f` says something of the task (or of the framework going down).
    pub async fn wait_for<T>(&self, task_id: &str, f: impl Fn(&Task) -> Option<T>) -> Result<T, String> {
        let mut rx = self.changed.subscribe();
        loop {
            {
                let s = self.lock();
                match s.tasks.get(task_id) {
                    Some(t) => {
                        if let Some(v) = f(t) {
                            return Ok(v);
                        }
                    }
                    None => return Err(format!("task {task_id} is not known to framework {}", self.name)),
                }
                if let Link::Down(why) = &s.link {
                    return Err(why.clone());
                }
                if s.link == Link::TornDown {
                    return Err("the framework was torn down".into());
                }
            }
            if rx.changed().await.is_err() {
                return Err("the framework stopped".into());
            }
        }
    }

    /// KILL with no grace period; returns when the task is in a terminal state.
    pub async fn kill(&self, task_id: &str) -> Result<(), MesosError> {
        let agent = {
            let mut s = self.lock();
            let Some(t) = s.tasks.get_mut(task_id) else { return Ok(()) };
            if t.terminal.is_some() {
                return Ok(());
            }
            t.kill_asked = true;
            t.agent_id.clone()
        };
        self.call(json!({
            "type": "KILL",
            "kill": {
                "task_id": {"value": task_id},
                "agent_id": {"value": agent},
                "kill_policy": {"grace_period": {"nanoseconds": 0}},
            }
        }))
        .await?;
        match tokio::time::timeout(KILL_TIMEOUT, self.wait_for(task_id, |t| t.terminal.clone())).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(why)) => Err(MesosError::Down(why)),
            Err(_) => Err(MesosError::NotKilled { task: task_id.to_owned(), after: KILL_TIMEOUT }),
        }
    }

    /// TEARDOWN: the master kills every task of the framework and forgets it.
    pub async fn teardown(&self) -> Result<(), MesosError> {
        let subscribed = {
            let s = self.lock();
            s.framework_id.is_some() && matches!(s.link, Link::Up | Link::Reconnecting)
        };
        if !subscribed {
            return Ok(());
        }
        self.lock().tearing_down = true;
        let r = self.call(json!({"type": "TEARDOWN"})).await;
        self.lock().link = Link::TornDown;
        if let Some(t) = self.events.lock().expect("events lock").take() {
            t.abort();
        }
        self.fail_pending("the framework was torn down");
        self.bump();
        r
    }

    /// Launches waiting, or tasks not yet over.
    fn busy(&self) -> bool {
        let s = self.lock();
        !s.pending.is_empty() || s.tasks.values().any(|t| t.terminal.is_none())
    }

    fn fail_pending(&self, why: &str) {
        let pending = std::mem::take(&mut self.lock().pending);
        for p in pending {
            let _ = p.done.send(Err(why.to_owned()));
        }
    }

    /// One event off the stream.
    async fn handle(&self, event: Value) {
        match event["type"].as_str().unwrap_or("") {
            "OFFERS" => {
                for offer in event["offers"]["offers"].as_array().cloned().unwrap_or_default() {
                    self.take_offer(&offer).await;
                }
            }
            "RESCIND" => {
                // We answer every offer as it comes and keep none: nothing to drop but the count.
                self.lock().rescinded += 1;
                tracing::debug!(offer = %id(&event["rescind"]["offer_id"]), "offer rescinded");
            }
            "UPDATE" => self.update(&event["update"]["status"]).await,
            "ERROR" => {
                let why = format!(
                    "the master ended framework {}: {}",
                    self.name,
                    event["error"]["message"].as_str().unwrap_or("")
                );
                tracing::error!("{why}");
                self.lock().link = Link::Down(why.clone());
                self.fail_pending(&why);
                self.bump();
            }
            "FAILURE" => {
                tracing::debug!(failure = %event["failure"], "agent or executor failure");
            }
            _ => {}
        }
    }

    /// Packs waiting launches into `offer` and accepts it, or declines it.
    async fn take_offer(&self, offer: &Value) {
        let received = wall_us();
        let offer_id = id(&offer["id"]);
        let agent_id = id(&offer["agent_id"]);
        let hostname = offer["hostname"].as_str().unwrap_or_default().to_owned();
        let role = offer["allocation_info"]["role"].as_str().unwrap_or(&self.options.role).to_owned();
        let (mut cpus, mut mem) = offered(offer);
        let (need_cpus, need_mem) = (self.options.cpus, self.options.mem);
        let mut taken = Vec::new();
        {
            let mut s = self.lock();
            // A launch given up meanwhile (its ready deadline passed) must not start a task
            // nobody waits for.
            let (gone, kept): (Vec<Pending>, Vec<Pending>) =
                std::mem::take(&mut s.pending).into_iter().partition(|p| p.done.is_closed());
            s.pending = kept;
            for p in gone {
                s.tasks.remove(&p.task_id);
            }
            let mut i = 0;
            while i < s.pending.len() {
                if cpus + 1e-9 >= need_cpus && mem + 1e-9 >= need_mem {
                    taken.push(s.pending.remove(i));
                    cpus -= need_cpus;
                    mem -= need_mem;
                } else {
                    i += 1;
                }
            }
            if s.pending.is_empty() && !taken.is_empty() {
                s.idle_since = Instant::now();
            }
        }
        let filters = json!({"refuse_seconds": self.options.refuse_seconds});
        if taken.is_empty() {
            self.lock().declined += 1;
            if let Err(e) = self
                .call(json!({"type": "DECLINE", "decline": {"offer_ids": [{"value": offer_id}], "filters": filters}}))
                .await
            {
                tracing::warn!("declining offer {offer_id}: {e}");
            }
            return;
        }
        let resources = |amount: f64, name: &str| json!({"name": name, "type": "SCALAR", "scalar": {"value": amount}, "allocation_info": {"role": role}});
        let infos: Vec<Value> = taken
            .iter()
            .map(|p| {
                let mut t = p.template.clone();
                t["agent_id"] = json!({ "value": agent_id });
                t["resources"] = json!([resources(need_cpus, "cpus"), resources(need_mem, "mem")]);
                if let Some(var) = p.advertise_env {
                    if let Some(vars) = t["command"]["environment"]["variables"].as_array_mut() {
                        vars.push(json!({"name": var, "value": hostname}));
                    }
                }
                t
            })
            .collect();
        {
            let mut s = self.lock();
            for p in &taken {
                if let Some(t) = s.tasks.get_mut(&p.task_id) {
                    t.agent_id = agent_id.clone();
                    t.hostname = hostname.clone();
                    t.offered_us = received;
                }
            }
        }
        let accept = json!({
            "type": "ACCEPT",
            "accept": {
                "offer_ids": [{"value": offer_id}],
                "operations": [{"type": "LAUNCH", "launch": {"task_infos": infos}}],
                "filters": filters,
            }
        });
        let result = self.call(accept).await;
        let accepted = Instant::now();
        let accepted_us = wall_us();
        let mut s = self.lock();
        for p in taken {
            match &result {
                Ok(()) => {
                    if let Some(t) = s.tasks.get_mut(&p.task_id) {
                        t.accepted_us = accepted_us;
                    }
                    let _ = p.done.send(Ok(Placed { accepted, hostname: hostname.clone() }));
                }
                Err(e) => {
                    let _ = p.done.send(Err(format!("accepting offer {offer_id} failed: {e}")));
                }
            }
        }
        drop(s);
        self.bump();
    }

    /// A status update: recorded, acknowledged.
    async fn update(&self, status: &Value) {
        let task_id = id(&status["task_id"]);
        let state = status["state"].as_str().unwrap_or("TASK_UNKNOWN").to_owned();
        let at = status_us(status);
        {
            let mut s = self.lock();
            if let Some(t) = s.tasks.get_mut(&task_id) {
                if t.agent_id.is_empty() {
                    t.agent_id = id(&status["agent_id"]);
                }
                // Reconciliation repeats the latest state: one row per state reached.
                if t.starting_at.is_none() && (state == "TASK_STARTING" || state == "TASK_RUNNING") {
                    t.starting_at = Some(Instant::now());
                }
                if t.states.last().map(|(s, _)| s) != Some(&state) {
                    t.states.push((state.clone(), at));
                    t.received.push((state.clone(), wall_us()));
                }
                if TERMINAL.contains(&state.as_str()) && t.terminal.is_none() {
                    let message = status["message"].as_str().unwrap_or("").to_owned();
                    let reason = status["reason"].as_str().unwrap_or("").to_owned();
                    let source = status["source"].as_str().unwrap_or("").to_owned();
                    let why = match (message.is_empty(), reason.is_empty()) {
                        (false, false) => format!("{message} ({reason}, {source})"),
                        (false, true) => message,
                        (true, false) => format!("{reason} ({source})"),
                        (true, true) => "no reason given".to_owned(),
                    };
                    t.terminal = Some((state.clone(), why));
                }
            }
        }
        self.bump();
        if let Some(uuid) = status["uuid"].as_str() {
            let ack = json!({
                "type": "ACKNOWLEDGE",
                "acknowledge": {"agent_id": status["agent_id"], "task_id": {"value": task_id}, "uuid": uuid}
            });
            if let Err(e) = self.call(ack).await {
                tracing::warn!("acknowledging {state} of {task_id}: {e}");
            }
        }
    }

    /// After subscribing again: ask for the state of every task not known to be over.
    async fn reconcile(&self) {
        let tasks: Vec<Value> = {
            let s = self.lock();
            s.tasks
                .iter()
                .filter(|(_, t)| t.terminal.is_none() && !t.agent_id.is_empty())
                .map(|(id, t)| json!({"task_id": {"value": id}, "agent_id": {"value": t.agent_id}}))
                .collect()
        };
        if tasks.is_empty() {
            return;
        }
        if let Err(e) = self.call(json!({"type": "RECONCILE", "reconcile": {"tasks": tasks}})).await {
            tracing::warn!("reconciling after a reconnect: {e}");
        }
    }

    /// SUPPRESS when nothing has waited for `refuse_seconds`, REVIVE when something waits.
    async fn tend_offers(&self) {
        let action = {
            let mut s = self.lock();
            let idle_for = s.idle_since.elapsed().as_secs_f64();
            if !s.pending.is_empty() && s.suppressed {
                s.suppressed = false;
                Some("REVIVE")
            } else if s.pending.is_empty() && !s.suppressed && idle_for > self.options.refuse_seconds {
                s.suppressed = true;
                Some("SUPPRESS")
            } else {
                None
            }
        };
        if let Some(kind) = action {
            let key = kind.to_ascii_lowercase();
            let mut call = json!({ "type": kind });
            call[key] = json!({ "roles": [self.options.role] });
            if let Err(e) = self.call(call).await {
                tracing::warn!("{kind}: {e}");
            }
        }
    }

    /// When the next SUPPRESS may be due.
    fn suppress_due(&self) -> Option<Instant> {
        let s = self.lock();
        (s.pending.is_empty() && !s.suppressed)
            .then(|| s.idle_since + Duration::from_secs_f64(self.options.refuse_seconds) + Duration::from_millis(10))
    }
}

/// The body of the SUBSCRIBE response as events.
struct EventStream {
    body: hyper::body::Incoming,
    decoder: Decoder,
    /// Records framed but not yet handed out (one chunk may carry several).
    ready: std::collections::VecDeque<Vec<u8>>,
}

impl EventStream {
    fn new(body: hyper::body::Incoming) -> Self {
        EventStream { body, decoder: Decoder::new(), ready: Default::default() }
    }

    async fn next(&mut self) -> Result<Value, MesosError> {
        loop {
            if let Some(r) = self.ready.pop_front() {
                return serde_json::from_slice(&r)
                    .map_err(|e| MesosError::Protocol(format!("an event that is not JSON: {e}")));
            }
            match self.body.frame().await {
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        let records = self.decoder.push(&data).map_err(|e| MesosError::Protocol(e.to_string()))?;
                        self.ready.extend(records);
                    }
                }
                Some(Err(e)) => return Err(MesosError::Http { what: "the event stream".into(), source: Box::new(e) }),
                None => return Err(MesosError::Protocol("the master closed the event stream".into())),
            }
        }
    }
}

/// The event loop: events, the heartbeat watch, offer tending, and reconnecting.
async fn follow(me: std::sync::Weak<Framework>, mut events: EventStream) {
    loop {
        let Some(fw) = me.upgrade() else { return };
        let silent = fw.lock().heartbeat * 3;
        let suppress_at = fw.suppress_due();
        let next = tokio::select! {
            e = tokio::time::timeout(silent, events.next()) => Some(e),
            _ = fw.work.notified() => None,
            _ = async { match suppress_at { Some(t) => tokio::time::sleep_until(t.into()).await, None => std::future::pending().await } } => None,
        };
        match next {
            None => fw.tend_offers().await,
            Some(Ok(Ok(event))) => {
                fw.handle(event).await;
                fw.tend_offers().await;
            }
            Some(failed) => {
                let why = match failed {
                    Err(_) => format!("the master sent nothing, not even a heartbeat, for {silent:?}"),
                    Ok(Err(e)) => e.to_string(),
                    Ok(Ok(_)) => unreachable!(),
                };
                {
                    let s = fw.lock();
                    if s.tearing_down || matches!(s.link, Link::Down(_) | Link::TornDown) {
                        return;
                    }
                }
                // A framework with nothing running or waiting may have been torn down on purpose
                // (the driver's cleanup ends every framework of the run): not worth a warning.
                let busy = fw.busy();
                if busy {
                    tracing::warn!(framework = %fw.name, "{why}; subscribing again");
                } else {
                    tracing::debug!(framework = %fw.name, "{why}; subscribing again");
                }
                fw.lock().link = Link::Reconnecting;
                match resubscribe(&fw).await {
                    Ok(stream) => {
                        events = stream;
                        fw.reconcile().await;
                    }
                    Err(e) => {
                        let why = format!(
                            "lost the Mesos master ({why}) and could not subscribe again within {RECONNECT_FOR:?}: {e}"
                        );
                        if busy {
                            tracing::error!(framework = %fw.name, "{why}");
                        } else {
                            tracing::debug!(framework = %fw.name, "{why}");
                        }
                        fw.lock().link = Link::Down(why.clone());
                        fw.fail_pending(&why);
                        fw.bump();
                        return;
                    }
                }
            }
        }
    }
}

async fn resubscribe(fw: &Framework) -> Result<EventStream, MesosError> {
    let deadline = Instant::now() + RECONNECT_FOR;
    let mut last = MesosError::Protocol("no attempt".into());
    while Instant::now() < deadline {
        match fw.subscribe().await {
            Ok((body, stream_id, suppressed)) => {
                let mut events = EventStream::new(body);
                match tokio::time::timeout(SUBSCRIBE_TIMEOUT, events.next()).await {
                    Ok(Ok(first)) => {
                        fw.subscribed(&first, stream_id, suppressed)?;
                        return Ok(events);
                    }
                    Ok(Err(e)) => last = e,
                    Err(_) => last = MesosError::Protocol("no SUBSCRIBED event".into()),
                }
            }
            Err(e) => last = e,
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Err(last)
}
