//! The scenario role: launches A actions, drives their requests, applies steps, reports up.
//!
//! Life of a scenario: connect to the driver and say hello → receive its [`Assignment`] →
//! start its own websocket server → say ready → run every action slot concurrently
//! ([`run_slot`]) → send one [`ScenarioReport`] → wait for `stop` → exit. A scenario that ends
//! without the driver's `stop` once it had its assignment (the driver died or went away)
//! removes its actions and then itself ([`remove_self`]), so a crashed driver leaves no
//! instance behind.
//!
//! Measurements are recorded here, where the events happen, into one [`SharedMetrics`] every
//! action slot records into (one set of histograms per scenario, however many actions it holds);
//! raw request records are kept only when asked for.
//! A `stop` from the driver (Ctrl-C, run timeout) stops sending; what was not sent is counted
//! as `requests_not_sent`, in-flight requests finish or time out, every action is removed.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot, Semaphore};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use stampede_core::measure::{names, Clock, InstanceRecord, NativeStateRecord, Outcome, RequestOutcome, RequestRecord, Role};
use stampede_core::results::Accounting;
use stampede_core::scenario::{Arrivals, Group, Lifecycle, Step};
use stampede_core::schedule::{plan_action, ActionPlan};
use stampede_core::stats::SharedMetrics;
use stampede_protocol::conn::Receiver;
use stampede_protocol::{
    connect, Assignment, Message, Progress, RecvError, ScenarioReport, PROTOCOL_VERSION,
};
use stampede_runtime::{env, Handle, LaunchSpec, Registry};

use crate::identity::{identity, required_env};
use crate::launch::{record_start_metrics, Launcher};
use crate::runtimes;
use crate::hold::{Hold, Line, Ticket};
use crate::link::{Link, PlannedRequest, ReqResult};
use crate::server::Server;

/// Stops and removals in flight per launch slot (see `Ctx::teardown`).
const TEARDOWN_PER_LAUNCH: usize = 4;

/// How long an action may take to exit after `stop` before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("{0}")]
    Config(String),
    #[error(transparent)]
    Connect(#[from] stampede_protocol::ConnectError),
    #[error("talking to the driver failed: {0}")]
    Send(#[from] stampede_protocol::conn::SendError),
    #[error("the driver did not send an assignment: {0}")]
    NoAssignment(String),
    #[error("cannot start the action server: {0}")]
    Bind(std::io::Error),
    #[error(transparent)]
    Runtime(#[from] stampede_runtime::RuntimeError),
}

/// Everything the action slots of one scenario share.
struct Ctx {
    launcher: Launcher,
    assignment: Assignment,
    callback: String,
    token: String,
    cancel: CancellationToken,
    progress: ProgressCounters,
    instance_prefix: String,
    /// `hold = "all_ready"`: this scenario's slots' lines, answered by the driver.
    hold: Option<Hold>,
    /// Stops and removals in flight at once. A held group releases all its actions together;
    /// a thousand concurrent kill+remove calls made Docker 20.10 give up (seen here), so they
    /// are paced like launches, a few times wider (they are cheaper).
    teardown: Semaphore,
    /// Every slot records here (one set of histograms for the scenario, not one per action).
    metrics: SharedMetrics,
}

#[derive(Default)]
struct ProgressCounters {
    launched: AtomicU64,
    ready: AtomicU64,
    failed: AtomicU64,
    /// Shared with every action link, which counts each request as it completes.
    requests_done: Arc<AtomicU64>,
    /// Of those, answered intact.
    requests_ok: Arc<AtomicU64>,
    requests_planned: AtomicU64,
}

impl ProgressCounters {
    fn snapshot(&self) -> Progress {
        Progress {
            actions_launched: self.launched.load(Ordering::Relaxed),
            actions_ready: self.ready.load(Ordering::Relaxed),
            actions_failed: self.failed.load(Ordering::Relaxed),
            requests_done: self.requests_done.load(Ordering::Relaxed),
            requests_planned: self.requests_planned.load(Ordering::Relaxed),
            requests_ok: self.requests_ok.load(Ordering::Relaxed),
        }
    }
}

/// What one action slot measured; merged into the scenario's report once.
#[derive(Default)]
struct SlotOutcome {
    accounting: Accounting,
    instances: Vec<InstanceRecord>,
    requests: Vec<RequestRecord>,
    native_states: Vec<NativeStateRecord>,
    finished_us: Option<i64>,
}

/// Run the scenario role. Returns when the driver says stop or goes away; in the second case
/// (and whenever this ends without a `stop`), only after removing its own instance.
pub async fn run(registry: Arc<Registry>) -> Result<(), ScenarioError> {
    let driver = Arc::new(DriverLink::default());
    let result = serve(registry.clone(), driver.clone()).await;
    if driver.reached.load(Ordering::SeqCst) && !driver.stopped.load(Ordering::SeqCst) {
        remove_self(&registry, result.as_ref().err()).await;
    }
    result
}

/// What became of the link to the driver, for deciding who removes this scenario.
#[derive(Default)]
struct DriverLink {
    /// The driver sent the assignment: from here on it counts on this scenario and removes it.
    /// A scenario that never got this far (a wrong callback address, a refused connection)
    /// stays, exited, so its logs say why; the driver, if alive, removes it.
    reached: AtomicBool,
    /// The driver said `stop`: it removes this scenario itself (and times it).
    stopped: AtomicBool,
}

/// The driver is gone (it was reached, but no `stop` came): nobody else will remove this
/// scenario's container or service, so it does (its actions are already removed by then). The runtime that launched it
/// said how in `STAMPEDE_SELF`; a process has nothing to remove.
async fn remove_self(registry: &Registry, error: Option<&ScenarioError>) {
    let Ok(me) = std::env::var(env::SELF) else { return };
    let Some((runtime, name)) = me.split_once(':') else {
        tracing::warn!("ignoring {}={me:?}: expected <runtime>:<name>", env::SELF);
        return;
    };
    // Said now: removing a container ends this process before the caller could print it.
    if let Some(e) = error {
        tracing::error!("{e}");
    }
    tracing::info!("no stop from the driver: removing this scenario's own instance {name}");
    // The group's options are not needed to remove one instance by name (and may never have
    // arrived); the defaults connect the same way.
    let result = match registry.connect(runtime, &serde_json::Value::Null).await {
        Ok(rt) => rt.remove_self(name).await,
        Err(e) => Err(e),
    };
    if let Err(e) = result {
        tracing::error!("could not remove this scenario's own instance (`stampede clean` will): {}", e.chain());
    }
}

/// Everything between connecting and the last word with the driver, noting in `driver` how far
/// the link got.
async fn serve(registry: Arc<Registry>, driver: Arc<DriverLink>) -> Result<(), ScenarioError> {
    let callback = required_env(env::CALLBACK).map_err(ScenarioError::Config)?;
    let token = required_env(env::TOKEN).map_err(ScenarioError::Config)?;
    let instance_id = required_env(env::INSTANCE_ID).map_err(ScenarioError::Config)?;
    let clock = Clock::start();

    let mut conn = connect(&callback, &token, crate::limits::from_env()).await?;
    conn.send(&Message::Hello { version: PROTOCOL_VERSION, identity: identity(&instance_id, Role::Scenario, clock.anchor_us(), false) })
        .await?;
    let assignment = match tokio::time::timeout(Duration::from_secs(60), conn.recv()).await {
        Ok(Ok(Message::Assign(a))) => {
            driver.reached.store(true, Ordering::SeqCst);
            *a
        }
        Ok(Ok(other)) => return Err(ScenarioError::NoAssignment(format!("got `{}`", other.kind()))),
        Ok(Err(e)) => return Err(ScenarioError::NoAssignment(e.to_string())),
        Err(_) => return Err(ScenarioError::NoAssignment("nothing within 60 s".into())),
    };
    let group = &assignment.group;
    let kind = group.effective_action_runtime();
    let runtime = registry.connect(kind, &group.options_of(kind)).await?;
    let local_only = runtime.children_dial_loopback();
    let listen = SocketAddr::from((if local_only { Ipv4Addr::LOCALHOST } else { Ipv4Addr::UNSPECIFIED }, 0));

    let cancel = CancellationToken::new();
    let tracker = TaskTracker::new();
    let cap = crate::limits::response_bound(group);
    let server = Server::bind(listen, token.clone(), cap, cancel.clone(), &tracker).await.map_err(ScenarioError::Bind)?;
    let host = match std::env::var(env::ADVERTISE) {
        Ok(h) if !h.is_empty() => h,
        _ => runtime.callback_host().await?,
    };
    let action_callback = format!("ws://{host}:{}/", server.port());
    tracing::debug!(%instance_id, %action_callback, "scenario serving actions");

    let concurrency = runtimes::start_concurrency(group, kind, group.scenarios, registry.as_ref());
    let ctx = Arc::new(Ctx {
        launcher: Launcher {
            runtime,
            server: Arc::new(server),
            clock,
            limiter: Arc::new(Semaphore::new(concurrency as usize)),
            in_flight: Arc::new(AtomicU32::new(0)),
            rate: assignment.start_rate.map(|r| Arc::new(crate::rate::RateLimiter::new(r))),
        },
        callback: action_callback,
        token,
        cancel: CancellationToken::new(),
        progress: ProgressCounters::default(),
        instance_prefix: instance_id.clone(),
        teardown: Semaphore::new(concurrency as usize * TEARDOWN_PER_LAUNCH),
        metrics: SharedMetrics::new(),
        hold: (assignment.group.hold == stampede_core::scenario::Hold::AllReady).then(|| Hold::new(assignment.group.actions)),
        assignment,
    });

    conn.send(&Message::Ready { self_ready_unix_us: stampede_core::measure::wall_us() }).await?;
    let (tx, rx) = conn.split();

    // The driver's messages: `stop` (or losing the driver) cancels the work.
    let (stopped_tx, mut stopped_rx) = oneshot::channel::<()>();
    tokio::spawn(watch_driver(rx, ctx.cancel.clone(), ctx.hold.clone(), stopped_tx, driver));

    // Progress goes up every half second while work runs.
    let (prog_tx, mut prog_rx) = mpsc::channel::<Progress>(4);
    let ticker = {
        let ctx = ctx.clone();
        tokio::spawn(async move {
            let mut iv = tokio::time::interval(Duration::from_millis(500));
            loop {
                iv.tick().await;
                if prog_tx.send(ctx.progress.snapshot()).await.is_err() {
                    break;
                }
            }
        })
    };

    let work_started_us = ctx.launcher.clock.now_us();
    let mut slots: JoinSet<SlotOutcome> = JoinSet::new();
    for a in 0..ctx.assignment.group.actions {
        let ctx = ctx.clone();
        slots.spawn(async move { run_slot(&ctx, a).await });
    }
    let mut report = ScenarioReport { work_started_us: Some(work_started_us), ..Default::default() };
    // Held: tell the driver when every slot crossed a line (never, without a hold).
    let (held_all, done_all) = match &ctx.hold {
        Some(h) => (h.held.clone(), h.done.clone()),
        None => (Line::new(u32::MAX), Line::new(u32::MAX)),
    };
    let (held_all, done_all) = (held_all.all(), done_all.all());
    tokio::pin!(held_all, done_all);
    let (mut held_sent, mut done_sent) = (false, false);
    loop {
        tokio::select! {
            _ = &mut held_all, if !held_sent => {
                held_sent = true;
                let _ = tx.send(&Message::Held).await;
            }
            _ = &mut done_all, if !done_sent => {
                done_sent = true;
                let _ = tx.send(&Message::WorkDone).await;
            }
            joined = slots.join_next() => match joined {
                None => break,
                Some(Ok(o)) => {
                    report.accounting.add(&o.accounting);
                    report.instances.extend(o.instances);
                    report.requests.extend(o.requests);
                    report.native_states.extend(o.native_states);
                    report.work_finished_us = report.work_finished_us.max(o.finished_us);
                }
                Some(Err(e)) => tracing::error!("an action slot task failed: {e}"),
            },
            Some(p) = prog_rx.recv() => { let _ = tx.send(&Message::Progress(p)).await; }
        }
    }
    ticker.abort();
    report.interrupted = ctx.cancel.is_cancelled();
    ctx.launcher.server.counters.fill(&mut report.accounting);
    report.metrics = ctx.metrics.lock().to_wire();
    report.instances.sort_by_key(|r| (r.action, r.incarnation));
    tx.send(&Message::Report(Box::new(report))).await?;

    // Stay until the driver has the report and says stop (or goes away).
    let _ = tokio::time::timeout(Duration::from_secs(60), &mut stopped_rx).await;
    cancel.cancel();
    tracker.close();
    Ok(())
}

async fn watch_driver(
    mut rx: Receiver<stampede_protocol::conn::ClientStream>,
    cancel: CancellationToken,
    hold: Option<Hold>,
    stopped: oneshot::Sender<()>,
    driver: Arc<DriverLink>,
) {
    loop {
        match rx.recv().await {
            Ok(Message::Stop) => {
                driver.stopped.store(true, Ordering::SeqCst);
                break;
            }
            Ok(Message::Go) if hold.is_some() => hold.iter().for_each(|h| h.go.set()),
            Ok(Message::Release) if hold.is_some() => hold.iter().for_each(|h| h.release.set()),
            Ok(other) => tracing::warn!("ignoring unexpected `{}` from the driver", other.kind()),
            Err(RecvError::Malformed(e)) => tracing::warn!("malformed message from the driver: {e}"),
            Err(_) => break,
        }
    }
    cancel.cancel();
    let _ = stopped.send(());
}

/// One action slot: one instance kept warm, or a fresh instance per request/burst (one-shot),
/// and that again for every churn cycle.
async fn run_slot(ctx: &Ctx, a: u32) -> SlotOutcome {
    let asg = &ctx.assignment;
    let group = &asg.group;
    let plan = plan_action(group, asg.seed, asg.group_index, asg.scenario_index, a);
    let mut out = SlotOutcome::default();
    let per_cycle = planned_requests(group, a);
    let (max_cycles, churn_until) = match group.churn {
        Some(c) => (c.cycles.unwrap_or(u32::MAX), c.duration.map(|d| Instant::now() + d)),
        None => (1, None),
    };
    // Held groups have one instance per slot (no one-shot, no churn: the parser sees to it).
    let mut tickets = ctx.hold.as_ref().map(|h| (h.held.ticket(), h.done.ticket()));
    let mut incarnation = 0u32;
    for cycle in 0..max_cycles {
        let over = churn_until.is_some_and(|t| Instant::now() >= t);
        if cycle > 0 && (over || ctx.cancel.is_cancelled()) {
            break;
        }
        ctx.progress.requests_planned.fetch_add(u64::from(per_cycle), Ordering::Relaxed);
        out.accounting.requests_planned += u64::from(per_cycle);

        // Units of work, each served by one instance: all requests (keep warm and its
        // variants), or one request / one burst each (one-shot).
        let ids: Vec<u32> = (0..per_cycle).collect();
        let units: Vec<Vec<u32>> = match (&group.lifecycle, &group.arrivals) {
            (Lifecycle::OneShot, Arrivals::Open { burst, .. }) => {
                ids.chunks((*burst).max(1) as usize).map(<[u32]>::to_vec).collect()
            }
            (Lifecycle::OneShot, Arrivals::Closed) => ids.chunks(1).map(<[u32]>::to_vec).collect(),
            _ => vec![ids],
        };
        let origin = tokio::time::Instant::now();
        for unit in &units {
            if ctx.cancel.is_cancelled() {
                out.accounting.requests_not_sent += unit.len() as u64;
                continue;
            }
            // One-shot: the instance is launched when its first request is due (open loop: at its
            // scheduled time), and that request's latency counts from then, so the cold start
            // shows in it, as a user would feel it.
            let due = match (&group.lifecycle, &plan.arrival_offsets) {
                (Lifecycle::OneShot, Some(offsets)) => {
                    let at = origin + offsets[unit[0] as usize];
                    tokio::select! { _ = tokio::time::sleep_until(at) => {}, _ = ctx.cancel.cancelled() => {} }
                    Some(at)
                }
                (Lifecycle::OneShot, None) => Some(tokio::time::Instant::now()),
                _ => None,
            };
            run_instance(ctx, a, incarnation, unit, due, &plan, tickets.take(), &mut out).await;
            incarnation += 1;
        }
    }
    out
}

/// The kill step that ends this action early, if any: its `after_requests`.
fn kill_after(group: &Group, a: u32) -> Option<u32> {
    group
        .steps
        .iter()
        .filter_map(|s| match s {
            Step::Kill { actions, after_requests } if actions.contains(a) => Some(*after_requests),
            _ => None,
        })
        .min()
}

/// Requests one instance cycle of this action will be sent: N, fewer when a kill step cuts it
/// short, one more when an eviction probe follows.
fn planned_requests(group: &Group, a: u32) -> u32 {
    match (kill_after(group, a), &group.lifecycle) {
        (Some(k), _) => k.min(group.requests),
        (None, Lifecycle::EvictionProbe { .. }) => group.requests + 1,
        (None, _) => group.requests,
    }
}

/// Launch one instance, send it `unit`'s requests, stop and remove it. With `due`, the unit's
/// requests count from then (one-shot); otherwise from when the instance was ready.
async fn run_instance(
    ctx: &Ctx,
    a: u32,
    incarnation: u32,
    unit: &[u32],
    due: Option<tokio::time::Instant>,
    plan: &ActionPlan,
    hold: Option<(Ticket, Ticket)>,
    out: &mut SlotOutcome,
) {
    let asg = &ctx.assignment;
    let group = &asg.group;
    let clock = &ctx.launcher.clock;
    let kind = ctx.launcher.runtime.name();
    let base = format!("{}-a{a}", ctx.instance_prefix);
    // Fresh instances of one slot (one-shot, churn) need names of their own.
    let fresh_each_time = matches!(group.lifecycle, Lifecycle::OneShot) || group.churn.is_some();
    let instance_id = if fresh_each_time { format!("{base}-i{incarnation}") } else { base };
    let mut rec = InstanceRecord {
        instance_id: instance_id.clone(),
        role: Some(Role::Action),
        group: asg.group_index,
        scenario: asg.scenario_index,
        action: Some(a),
        incarnation,
        runtime: Some(kind.to_owned()),
        ..Default::default()
    };
    let mut env = vec![
        (env::CALLBACK.to_owned(), ctx.callback.clone()),
        (env::MAX_MESSAGE_BYTES.to_owned(), crate::limits::request_bound(group).to_string()),
        (env::TOKEN.to_owned(), ctx.token.clone()),
        (env::INSTANCE_ID.to_owned(), instance_id.clone()),
        (env::RUN_ID.to_owned(), asg.run_id.clone()),
    ];
    if fresh_each_time {
        env.push((env::INCARNATION.to_owned(), incarnation.to_string()));
    }
    let spec = LaunchSpec {
        run_id: asg.run_id.clone(),
        role: Role::Action,
        instance_id,
        group: asg.group_index,
        scenario: asg.scenario_index,
        action: Some(a),
        image: asg.image.clone(),
        args: vec!["action".into()],
        env,
    };
    out.accounting.instances_requested += 1;
    ctx.progress.launched.fetch_add(1, Ordering::Relaxed);

    let child = ctx.launcher.launch(&spec, &mut rec, group.timeouts.ready, None, &ctx.cancel).await;
    let child = match child {
        Ok(c) => c,
        Err(handle) => {
            if let Some(h) = handle {
                remove_instance(ctx, &h, &mut rec).await;
            }
            out.accounting.instances_failed += 1;
            out.accounting.requests_not_sent += unit.len() as u64;
            ctx.progress.failed.fetch_add(1, Ordering::Relaxed);
            out.instances.push(rec);
            return;
        }
    };
    ctx.progress.ready.fetch_add(1, Ordering::Relaxed);
    let handle = child.handle.clone();
    let link = Link::new(child.conn, ctx.launcher.server.clone(), ctx.progress.requests_done.clone(), ctx.progress.requests_ok.clone());
    // Held: ready now; no request until the whole group is.
    let done_ticket = match (hold, &ctx.hold) {
        (Some((held, done)), Some(h)) => {
            held.cross();
            h.go.wait_or(&ctx.cancel).await;
            Some(done)
        }
        _ => None,
    };

    // The unit's requests, with this slot's pause/kill steps and lifecycle pauses.
    let (results, sent) = send_unit(ctx, a, unit, due, plan, &handle, &link).await;
    out.accounting.requests_sent += sent;
    out.accounting.requests_not_sent += unit.len() as u64 - sent;
    record_results(ctx, a, &rec.instance_id, &results, out);
    rec.requests_ok = results.iter().filter(|r| r.outcome == RequestOutcome::Ok).count() as u32;
    rec.requests_failed = results.iter().filter(|r| r.outcome == RequestOutcome::Failed).count() as u32;
    rec.requests_timed_out = results.iter().filter(|r| r.outcome == RequestOutcome::TimedOut).count() as u32;
    rec.requests_not_sent = (unit.len() as u64 - sent) as u32;
    rec.first_response_us = results.iter().filter_map(|r| r.received_at).min().map(|t| clock.us_at(t));
    rec.last_response_us = results.iter().filter_map(|r| r.received_at).max().map(|t| clock.us_at(t));

    // Did the instance live through its lifecycle? Losing its connection before the last
    // request was answered means it died (killed from outside, crashed, OOM).
    let planned_kill = kill_after(group, a).is_some();
    let died = link.lost() && (rec.requests_ok as usize) < unit.len() && !ctx.cancel.is_cancelled();
    if died {
        rec.outcome = Outcome::Failed;
        let lost = format!("connection lost after {} of {} requests", rec.requests_ok, unit.len());
        rec.error = Some(match ctx.launcher.runtime.why_lost(&handle).await {
            Some(why) => format!("{why}: {lost}"),
            None => lost,
        });
        out.accounting.instances_failed += 1;
        ctx.progress.failed.fetch_add(1, Ordering::Relaxed);
    } else {
        rec.outcome = Outcome::Ready;
        out.accounting.instances_ready += 1;
    }

    // Held: it stays up until the whole group's work is done (a dead one has nothing to keep).
    if let (Some(done), Some(h)) = (done_ticket, &ctx.hold) {
        done.cross();
        if !died {
            h.release.wait_or(&ctx.cancel).await;
        }
    }

    // Stop: a planned kill is SIGKILL, timed; otherwise ask politely and wait for the exit.
    let _teardown = ctx.teardown.acquire().await.expect("teardown semaphore is never closed");
    if planned_kill && !died {
        let t0 = Instant::now();
        match ctx.launcher.runtime.kill(&handle).await {
            Ok(()) => ctx.metrics.record(names::KILL_LATENCY, us(t0.elapsed())),
            Err(e) => tracing::warn!("{}", e.chain()),
        }
    } else if !died {
        link.stop().await;
        let _ = tokio::time::timeout(STOP_GRACE, link.closed()).await;
    }
    rec.stopped_us = Some(clock.now_us());
    link.shutdown();
    let native = ctx.launcher.runtime.native_times(&handle).await;
    let states = runtimes::apply_native(&mut rec, &native, clock);
    // Now that the runtime's own timestamps are in, the start phases are complete.
    if rec.ready_us.is_some() {
        let mut m = ctx.metrics.lock();
        record_start_metrics(&mut m, &rec);
        runtimes::record_native_phases(&mut m, &rec, &states, native.source);
        drop(m);
    }
    out.native_states.extend(states);
    remove_instance(ctx, &handle, &mut rec).await;
    out.finished_us = out.finished_us.max(rec.last_response_us);
    out.instances.push(rec);
}

/// Send one instance's `unit` of requests, with its slot's pause steps, lifecycle pauses and
/// eviction probe; returns every request's result and how many were sent. With `due`, the
/// unit's requests count from then (one-shot); otherwise from now.
#[allow(clippy::too_many_arguments)]
async fn send_unit(
    ctx: &Ctx,
    a: u32,
    unit: &[u32],
    due: Option<tokio::time::Instant>,
    plan: &ActionPlan,
    handle: &Handle,
    link: &Link,
) -> (Vec<ReqResult>, u64) {
    let group = &ctx.assignment.group;
    let started_at = due.unwrap_or_else(tokio::time::Instant::now);
    let open = plan.arrival_offsets.as_ref();
    let burst = match &group.arrivals {
        Arrivals::Open { burst, .. } => (*burst).max(1),
        Arrivals::Closed => 1,
    };
    let mut inflight: JoinSet<ReqResult> = JoinSet::new();
    let mut results: Vec<ReqResult> = Vec::with_capacity(unit.len());
    // When each resume call started: the next response after it gives the resume latency.
    let mut resumes: Vec<Instant> = Vec::new();
    let mut sent = 0u64;
    for &i in unit {
        if ctx.cancel.is_cancelled() || link.lost() {
            break;
        }
        let probe = matches!(group.lifecycle, Lifecycle::EvictionProbe { .. }) && i == group.requests;
        // Open loop: absolute schedule, relative to this instance's first request.
        let send_at = match open {
            Some(offsets) if !probe => Some(started_at + (offsets[i as usize] - offsets[unit[0] as usize])),
            _ => None,
        };
        if let (Lifecycle::PauseBetweenBursts, Some(at)) = (&group.lifecycle, send_at) {
            // Freeze the idle instance between bursts; thaw it when the next burst is due,
            // so the thaw lands in that burst's latency as it would on a FaaS platform.
            if i > unit[0] && i % burst == 0 {
                drain(&mut inflight, &mut results).await;
                if let Some(r) = pause_for(ctx, handle, link, at).await {
                    resumes.push(r);
                }
            }
        }
        if let Lifecycle::EvictionProbe { idle } = &group.lifecycle {
            if probe {
                // Idle, then one request: did it reach the same warm process?
                drain(&mut inflight, &mut results).await;
                tokio::select! { _ = tokio::time::sleep(*idle) => {}, _ = ctx.cancel.cancelled() => break }
            }
        }
        if let Some(at) = send_at {
            tokio::select! { _ = tokio::time::sleep_until(at) => {}, _ = ctx.cancel.cancelled() => break }
        }
        let scheduled = match send_at {
            Some(d) => d.into_std(),
            // A one-shot closed-loop request was due when its instance was asked for.
            None if i == unit[0] && matches!(group.lifecycle, Lifecycle::OneShot) => started_at.into_std(),
            None => Instant::now(),
        };
        // The request count first: it rules out almost every step without scanning its action list.
        for step in group.steps.iter().filter(|s| s.after_requests() == i && s.actions().contains(a)) {
            if let Step::Pause { duration, .. } = step {
                // Let the requests already sent finish first, so the pause freezes an idle action.
                drain(&mut inflight, &mut results).await;
                if let Some(r) = pause_for(ctx, handle, link, tokio::time::Instant::now() + *duration).await {
                    resumes.push(r);
                }
            }
        }
        let req = PlannedRequest {
            id: u64::from(i),
            work: group.work.kind,
            // The probe reuses the last drawn duration: it asks "warm or cold?", not "how long".
            duration: plan.work_durations.get(i as usize).or(plan.work_durations.last()).copied().unwrap_or_default(),
            payload: group.payload.request,
            response_size: group.payload.response,
            // A resumed or probed request counts from when it is sent; an open-loop one from its
            // schedule, so a late send is charged to the system, not hidden (no coordinated omission).
            scheduled: if probe { Instant::now() } else { scheduled },
            timeout: group.timeouts.request,
        };
        sent += 1;
        if open.is_some() && !probe {
            let link = link.clone();
            inflight.spawn(async move { link.request(req).await });
        } else {
            let r = link.request(req).await;
            if probe && r.outcome == RequestOutcome::Ok {
                let rtt = us(r.received_at.unwrap_or(r.sent_at).saturating_duration_since(r.scheduled));
                ctx.metrics.record(if r.cold { names::EVICTION_PROBE_COLD } else { names::EVICTION_PROBE_WARM }, rtt);
            }
            results.push(r);
        }
    }
    drain(&mut inflight, &mut results).await;
    for t1 in resumes {
        if let Some(at) = results.iter().filter_map(|r| r.received_at).filter(|at| *at >= t1).min() {
            ctx.metrics.record(names::RESUME_LATENCY, us(at - t1));
        }
    }
    (results, sent)
}

/// Count each request's outcome, record its metrics, and keep its raw record when asked.
fn record_results(ctx: &Ctx, a: u32, instance_id: &str, results: &[ReqResult], out: &mut SlotOutcome) {
    let asg = &ctx.assignment;
    let (group, clock) = (&asg.group, &ctx.launcher.clock);
    for r in results {
        let rtt = r.received_at.map(|at| at.saturating_duration_since(r.scheduled));
        match r.outcome {
            RequestOutcome::Ok => out.accounting.requests_ok += 1,
            RequestOutcome::Failed => out.accounting.requests_failed += 1,
            RequestOutcome::TimedOut => out.accounting.requests_timed_out += 1,
        }
        if r.outcome == RequestOutcome::Ok {
            let rtt = us(rtt.unwrap_or_default());
            let service = i64::try_from(r.service_time_us).unwrap_or(i64::MAX);
            let mut m = ctx.metrics.lock();
            m.record(names::REQUEST_RTT, rtt);
            m.record(if r.cold { names::REQUEST_RTT_COLD } else { names::REQUEST_RTT_WARM }, rtt);
            m.record(names::SERVICE_TIME, service);
            m.record(names::OVERHEAD, rtt - service);
        }
        if asg.raw {
            out.requests.push(RequestRecord {
                instance_id: instance_id.to_owned(),
                group: asg.group_index,
                scenario: asg.scenario_index,
                action: a,
                request_id: r.id,
                scheduled_us: clock.us_at(r.scheduled),
                sent_us: clock.us_at(r.sent_at),
                received_us: r.received_at.map(|t| clock.us_at(t)),
                request_rtt_us: rtt.map(us),
                service_time_us: (r.outcome == RequestOutcome::Ok).then(|| i64::try_from(r.service_time_us).unwrap_or(i64::MAX)),
                overhead_us: (r.outcome == RequestOutcome::Ok)
                    .then(|| us(rtt.unwrap_or_default()) - i64::try_from(r.service_time_us).unwrap_or(i64::MAX)),
                cold: r.cold,
                outcome: r.outcome,
                warmup: group.warmup,
                error: r.error.clone(),
            });
        }
    }
}

/// Wait for every request in flight and collect its result.
async fn drain(inflight: &mut JoinSet<ReqResult>, results: &mut Vec<ReqResult>) {
    while let Some(r) = inflight.join_next().await {
        results.extend(r.ok());
    }
}

/// Pause an instance until `until`, then resume it. Returns when the resume call started
/// (the resume latency runs from there to the next response), or `None` if it failed.
async fn pause_for(ctx: &Ctx, handle: &Handle, link: &Link, until: tokio::time::Instant) -> Option<Instant> {
    // A paused action answers no ping: its silence is ours, not a stall.
    let _quiet = link.quiet();
    let t0 = Instant::now();
    if let Err(e) = ctx.launcher.runtime.pause(handle).await {
        tracing::warn!("{}", e.chain());
        return None;
    }
    ctx.metrics.record(names::PAUSE_LATENCY, us(t0.elapsed()));
    // Even when stopping, the instance must be thawed: a frozen one cannot exit.
    tokio::select! { _ = tokio::time::sleep_until(until) => {}, _ = ctx.cancel.cancelled() => {} }
    let t1 = Instant::now();
    match ctx.launcher.runtime.resume(handle).await {
        Ok(()) => Some(t1),
        Err(e) => {
            tracing::warn!("{}", e.chain());
            None
        }
    }
}

async fn remove_instance(ctx: &Ctx, h: &Handle, rec: &mut InstanceRecord) {
    let t0 = Instant::now();
    match ctx.launcher.runtime.remove(h).await {
        Ok(()) => {
            ctx.metrics.record(names::REMOVE_LATENCY, us(t0.elapsed()));
            rec.removed_us = Some(ctx.launcher.clock.now_us());
        }
        Err(e) => {
            tracing::warn!("{}", e.chain());
            rec.error.get_or_insert_with(|| e.chain());
        }
    }
}

fn us(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}
