//! The driver role: the whole run, from a validated scenario to a results folder.
//!
//! [`run`] reads as the pipeline:
//! 1. name the run (id, token, seed), create the results folder and write a partial
//!    `results.json` at once, so even a crash leaves something behind;
//! 2. preflight every runtime the scenario uses (daemon reachable, image present) — before
//!    anything is started, so a bad setup costs nothing and exits 3;
//! 3. serve the websocket scenarios connect back to;
//! 4. run the groups (in sequence or in parallel, with their delays): each launches S scenarios
//!    ([`run_group`]), hands each its assignment and collects its report;
//! 5. merge histograms and accounting, write results (before teardown);
//! 6. remove everything of the run, by label, on success, failure and interrupt — also when
//!    writing the results failed: that error is returned only after the cleanup.
//!
//! Interrupts: the first (`Interrupt::stop`) stops sending, drains reports and cleans up; the
//! second (`Interrupt::now`) stops draining and cleans up at once.

use std::collections::{BTreeMap, HashMap};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicI32, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use stampede_core::measure::{names, Clock, InstanceRecord, NativeStateRecord, Outcome, RequestRecord, Role};
use stampede_core::results::{
    contention, peak_alive, starts_per_second, Accounting, Efficiency, Environment, GroupResult, Results, RunInfo,
    RunStatus, Warning, WarningKind, SCHEMA_VERSION,
};
use stampede_core::scenario::{GroupsMode, RuntimeCatalog, Scenario, StartRate};
use stampede_core::stats::Metrics;
use stampede_protocol::{Assignment, Message, Progress, RecvError};
use stampede_runtime::{env, LaunchSpec, Registry, Runtime, RuntimeError};

use crate::exit;
use crate::hold::{Hold, Ticket};
use crate::launch::{record_start_metrics, Launcher};
use crate::runtimes;
use crate::server::Server;

/// Image used by container runtimes when neither the group nor the CLI names one.
pub const DEFAULT_IMAGE: &str = "stampede:latest";

/// How long the driver waits for reports after a stop before it gives up on them.
const DRAIN_DEADLINE: Duration = Duration::from_secs(60);
/// How long cleanup keeps retrying a runtime that does not answer (see `remove_run_patiently`).
const CLEANUP_PATIENCE: Duration = Duration::from_secs(60);

pub struct DriverConfig {
    pub scenario: Scenario,
    /// Where results go (created if missing).
    pub out_dir: PathBuf,
    pub raw: bool,
    /// The runtimes this binary offers; the scenario names which to use.
    pub registry: Arc<Registry>,
    /// Host scenarios dial to reach this driver, when the runtime cannot tell (driver in a container).
    pub advertise: Option<String>,
    /// Address the driver's websocket server binds; default 127.0.0.1:0 or 0.0.0.0:0 as needed.
    pub listen: Option<SocketAddr>,
    pub command_line: Vec<String>,
    /// Called with the partial results whenever they change materially (start, each group).
    pub progress: Arc<LiveProgress>,
}

/// Cancellation for Ctrl-C: `stop` drains and reports, `now` cleans up at once.
#[derive(Clone, Default)]
pub struct Interrupt {
    pub stop: CancellationToken,
    pub now: CancellationToken,
    /// The signal that stopped the run (0: none said, taken as SIGINT), so the exit code can be
    /// 128 + its number as a shell expects of a process a signal ended.
    signal: Arc<AtomicI32>,
}

impl Interrupt {
    /// Stop the run because `signal` arrived; the first signal is the one the exit code names.
    pub fn stop_by(&self, signal: i32) {
        let _ = self.signal.compare_exchange(0, signal, Ordering::SeqCst, Ordering::SeqCst);
        self.stop.cancel();
    }

    /// The exit code of a run this interrupt stopped: 128 + the signal (130 for Ctrl-C).
    pub fn exit_code(&self) -> i32 {
        match self.signal.load(Ordering::SeqCst) {
            0 => exit::INTERRUPTED,
            n => 128 + n,
        }
    }
}

/// Live counts for a progress display, updated as scenarios report progress.
#[derive(Debug, Default)]
pub struct LiveProgress {
    pub scenarios_launched: AtomicU64,
    pub scenarios_ready: AtomicU64,
    pub scenarios_failed: AtomicU64,
    per_scenario: Mutex<HashMap<String, Progress>>,
    /// Total requests planned for the whole run (for an ETA).
    pub requests_planned: AtomicU64,
    pub started: Mutex<Option<Instant>>,
    /// The same events, per group, for the `--metrics-addr` endpoint.
    pub live: crate::live::LiveMetrics,
}

impl LiveProgress {
    /// Totals over every scenario's latest progress report.
    pub fn totals(&self) -> Progress {
        let map = self.per_scenario.lock().expect("progress lock");
        map.values().fold(Progress::default(), |mut t, p| {
            t.actions_launched += p.actions_launched;
            t.actions_ready += p.actions_ready;
            t.actions_failed += p.actions_failed;
            t.requests_done += p.requests_done;
            t.requests_planned += p.requests_planned;
            t.requests_ok += p.requests_ok;
            t
        })
    }
    fn update(&self, id: &str, p: Progress) {
        self.live.progress(id, p);
        self.per_scenario.lock().expect("progress lock").insert(id.to_owned(), p);
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    #[error(transparent)]
    RuntimeUnavailable(RuntimeError),
    #[error("cannot create the results folder {path}: {source}")]
    OutDir { path: PathBuf, source: std::io::Error },
    #[error("cannot start the driver's websocket server on {addr}: {source}")]
    Bind { addr: SocketAddr, source: std::io::Error },
    #[error(transparent)]
    Write(#[from] stampede_report::ReportError),
}

impl DriverError {
    pub fn exit_code(&self) -> i32 {
        match self {
            DriverError::RuntimeUnavailable(_) => exit::RUNTIME_UNAVAILABLE,
            _ => exit::FAILED,
        }
    }
}

pub struct DriverOutcome {
    pub results: Results,
    pub exit_code: i32,
}

/// What one group produced, on the driver's timeline.
#[derive(Default)]
struct GroupOutcome {
    instances: Vec<InstanceRecord>,
    requests: Vec<RequestRecord>,
    metrics: Metrics,
    scenario_metrics: Metrics,
    native_states: Vec<NativeStateRecord>,
    accounting: Accounting,
    start_us: Option<i64>,
    end_us: Option<i64>,
    critical_ready_us: Option<i64>,
}

fn random_hex(bytes: usize) -> String {
    use rand::Rng as _;
    let mut rng = rand::rng();
    (0..bytes).map(|_| format!("{:02x}", rng.random::<u8>())).collect()
}

pub async fn run(cfg: DriverConfig, interrupt: Interrupt) -> Result<DriverOutcome, DriverError> {
    // 1. Name the run; results folder and a partial results.json right away.
    let clock = Clock::start();
    let run_id = random_hex(4);
    let token = random_hex(16);
    let seed = cfg.scenario.seed.unwrap_or_else(|| rand::random::<u64>() >> 11);
    let mut scenario = cfg.scenario.clone();
    scenario.seed = Some(seed);
    std::fs::create_dir_all(&cfg.out_dir).map_err(|source| DriverError::OutDir { path: cfg.out_dir.clone(), source })?;
    let mut results = empty_results(&run_id, &scenario, seed, &clock, &cfg);
    stampede_report::write_results_json(&cfg.out_dir, &results)?;
    *cfg.progress.started.lock().expect("progress lock") = Some(Instant::now());
    cfg.progress.live.start(&run_id, scenario.groups.iter().map(|g| (g.name.clone(), g.runtime.to_string())));

    // 2. Preflight every runtime used, before anything starts: each (runtime, options) is
    // connected once, each (runtime, image) checked once.
    let registry = cfg.registry.clone();
    let mut connected: BTreeMap<(String, String), Arc<dyn Runtime>> = BTreeMap::new();
    let mut checked = std::collections::BTreeSet::new();
    let mut group_runtimes = Vec::new();
    let mut group_hosts: Vec<String> = Vec::new();
    let mut action_images: BTreeMap<u32, String> = BTreeMap::new();
    for (i, g) in scenario.groups.iter().enumerate() {
        let image = g.image.clone().unwrap_or_else(|| DEFAULT_IMAGE.to_owned());
        let mut pair = Vec::new();
        for name in [g.runtime.as_str(), g.effective_action_runtime()] {
            let options = g.options_of(name);
            let key = (name.to_owned(), options.to_string());
            let rt = match connected.get(&key) {
                Some(rt) => rt.clone(),
                None => {
                    let rt = registry.connect(name, &options).await.map_err(DriverError::RuntimeUnavailable)?;
                    connected.insert(key, rt.clone());
                    rt
                }
            };
            if checked.insert((name.to_owned(), image.clone())) {
                let version = rt.preflight(&image).await.map_err(DriverError::RuntimeUnavailable)?;
                results.environment.runtime_versions.insert(name.to_owned(), version);
            }
            pair.push(rt);
        }
        let (scenario_rt, action_rt) = (pair[0].clone(), pair[1].clone());
        // Where this group's scenarios dial back: asked now, so a runtime that cannot tell
        // (a multi-node swarm without --advertise) stops the run before anything starts.
        let callback_host = match &cfg.advertise {
            Some(h) => h.clone(),
            None => scenario_rt.callback_host().await.map_err(DriverError::RuntimeUnavailable)?,
        };
        group_hosts.push(callback_host.clone());
        results.environment.runtime_options.insert(
            g.name.clone(),
            serde_json::json!({
                "runtime": g.runtime,
                "action_runtime": g.effective_action_runtime(),
                "start_concurrency": runtimes::start_concurrency(g, g.effective_action_runtime(), g.scenarios, registry.as_ref()),
                "options": g.runtime_options,
                "driver_address": callback_host,
            }),
        );
        // Image-size experiments: a filler-padded action image, built by the action runtime.
        let has_images = registry.find(g.effective_action_runtime()).is_some_and(|r| r.capabilities().image);
        let action_image = if g.image_filler_mb == 0 {
            image
        } else if !has_images {
            results.warnings.push(Warning::new(
                WarningKind::ImageFillerIgnored,
                format!(
                    "group {}: image_filler_mb = {} is ignored: the {} runtime runs no image (use a container runtime)",
                    g.name,
                    g.image_filler_mb,
                    g.effective_action_runtime()
                ),
            ));
            image
        } else {
            action_rt.filler_image(&image, g.image_filler_mb).await.map_err(DriverError::RuntimeUnavailable)?
        };
        // Scenarios launch their actions elsewhere (another node): by a name that means the
        // same image there.
        let action_image = action_rt.portable_image(&action_image).await.map_err(DriverError::RuntimeUnavailable)?;
        action_images.insert(i as u32, action_image);
        for name in [g.runtime.as_str(), g.effective_action_runtime()] {
            for state in registry.find(name).map(|r| r.capabilities().native_states).unwrap_or_default() {
                if !results.native_states.iter().any(|s| s == state) {
                    results.native_states.push((*state).to_owned());
                }
            }
        }
        group_runtimes.push(scenario_rt);
    }
    // What each runtime's instances share for this run (a namespace, rights), once per
    // connected runtime; torn down by `remove_run` with the rest.
    for rt in connected.values() {
        if let Err(e) = rt.begin_run(&run_id).await {
            // Whatever of it was created already goes again.
            for rt in connected.values() {
                if let Err(e) = rt.remove_run(Some(&run_id)).await {
                    tracing::error!("{}", e.chain());
                }
            }
            return Err(DriverError::RuntimeUnavailable(e));
        }
    }
    results.scenario = scenario.clone();
    stampede_report::write_results_json(&cfg.out_dir, &results)?;

    // 3. The websocket server scenarios dial back to.
    let all_loopback = group_runtimes.iter().all(|rt| rt.children_dial_loopback());
    let listen = cfg.listen.unwrap_or_else(|| {
        SocketAddr::from((if all_loopback && cfg.advertise.is_none() { Ipv4Addr::LOCALHOST } else { Ipv4Addr::UNSPECIFIED }, 0))
    });
    let server_cancel = CancellationToken::new();
    let tracker = TaskTracker::new();
    let cap = crate::limits::driver_bound(&scenario.groups, cfg.raw);
    let server = Server::bind(listen, token.clone(), cap, server_cancel.clone(), &tracker)
        .await
        .map_err(|source| DriverError::Bind { addr: listen, source })?;
    let server = Arc::new(server);

    // The whole-run timeout acts like a first Ctrl-C; tracked, and ended with the server.
    let timed_out = Arc::new(std::sync::atomic::AtomicBool::new(false));
    {
        let (stop, t, limit, done) = (interrupt.stop.clone(), timed_out.clone(), scenario.run_timeout, server_cancel.clone());
        tracker.spawn(async move {
            tokio::select! {
                _ = tokio::time::sleep(limit) => {
                    t.store(true, Ordering::SeqCst);
                    stop.cancel();
                }
                _ = done.cancelled() => {}
            }
        });
    }

    // 4. The groups.
    let ctx = Arc::new(RunCtx {
        run_id: run_id.clone(),
        token,
        seed,
        raw: cfg.raw,
        clock,
        server: server.clone(),
        group_hosts,
        interrupt: interrupt.clone(),
        progress: cfg.progress.clone(),
        group_runtimes,
        registry: registry.clone(),
        action_images,
        run_rate: scenario.start_rate.map(|r| Arc::new(crate::rate::RateLimiter::new(r))),
        run_rate_share: scenario.start_rate.map(|r| {
            // The run's action launches are paced by every scenario at once: each gets its share.
            let total = scenario.groups.iter().map(|g| g.scenarios).sum::<u32>().max(1);
            StartRate { qps: r.qps / f64::from(total), burst: (r.burst / total).max(1) }
        }),
    });
    for g in &scenario.groups {
        cfg.progress
            .requests_planned
            .fetch_add(u64::from(g.scenarios) * u64::from(g.actions) * u64::from(g.requests), Ordering::Relaxed);
    }
    let outcomes: Vec<GroupOutcome> = match scenario.groups_mode {
        GroupsMode::Sequence => {
            let mut v = Vec::new();
            for (i, _) in scenario.groups.iter().enumerate() {
                let delay = scenario.groups[i].start_delay;
                if !delay.is_zero() {
                    tokio::select! { _ = tokio::time::sleep(delay) => {}, _ = interrupt.stop.cancelled() => {} }
                }
                v.push(run_group(ctx.clone(), &scenario, i as u32).await);
            }
            v
        }
        GroupsMode::Parallel => {
            let mut set = tokio::task::JoinSet::new();
            for i in 0..scenario.groups.len() {
                let (ctx, sc) = (ctx.clone(), scenario.clone());
                set.spawn(async move {
                    let delay = sc.groups[i].start_delay;
                    if !delay.is_zero() {
                        tokio::select! { _ = tokio::time::sleep(delay) => {}, _ = ctx.interrupt.stop.cancelled() => {} }
                    }
                    (i, run_group(ctx, &sc, i as u32).await)
                });
            }
            let mut v: Vec<(usize, GroupOutcome)> = Vec::new();
            while let Some(r) = set.join_next().await {
                match r {
                    Ok(x) => v.push(x),
                    Err(e) => tracing::error!("a group task failed: {e}"),
                }
            }
            v.sort_by_key(|(i, _)| *i);
            v.into_iter().map(|(_, o)| o).collect()
        }
    };

    // 5. Results, written before teardown. A failed write must not skip the cleanup: it is
    // kept and returned after it.
    let interrupted = interrupt.stop.is_cancelled().then(|| interrupt.exit_code());
    // The driver's own losses (refused, shed, stalled ...) beside those the scenarios reported.
    let mut own = Accounting::default();
    server.counters.fill(&mut own);
    results.accounting.add(&own);
    let written = finish_results(&mut results, &scenario, outcomes, &ctx.clock, interrupted, timed_out.load(Ordering::SeqCst), &cfg);

    // 6. Clean up everything of this run, whatever happened.
    server_cancel.cancel();
    let mut cleanup_failed = false;
    for ((name, _), rt) in &connected {
        match remove_run_patiently(rt.as_ref(), name, &run_id, &interrupt).await {
            Ok(0) => {}
            Ok(n) => tracing::info!("removed {n} leftover {name} instance(s) of run {run_id}"),
            Err(e) => {
                tracing::error!("{}", e.chain());
                cleanup_failed = true;
                results.warnings.push(Warning::new(
                    WarningKind::CleanupFailed,
                    format!("{}; run `stampede clean --run {run_id}` to remove what is left", e.chain()),
                ));
            }
        }
    }
    tracker.close();
    tracker.wait().await;
    written?;
    if cleanup_failed {
        stampede_report::write_results_json(&cfg.out_dir, &results)?;
    }
    let exit_code = results.run.exit_code.unwrap_or(exit::FAILED);
    Ok(DriverOutcome { results, exit_code })
}

/// `remove_run`, retried while the runtime does not answer (a daemon restarting mid-run comes
/// back within seconds, and its stopped containers are still there to remove), for at most
/// [`CLEANUP_PATIENCE`] or until a second Ctrl-C; then the last error.
async fn remove_run_patiently(
    rt: &dyn Runtime,
    name: &str,
    run_id: &str,
    interrupt: &Interrupt,
) -> Result<usize, RuntimeError> {
    let give_up = Instant::now() + CLEANUP_PATIENCE;
    let mut said = false;
    loop {
        match rt.remove_run(Some(run_id)).await {
            Err(e) if Instant::now() < give_up && !interrupt.now.is_cancelled() => {
                if !said {
                    said = true;
                    tracing::warn!(
                        "cleaning up on {name} failed ({}); retrying for up to {} s (Ctrl-C to stop waiting)",
                        e.chain(),
                        CLEANUP_PATIENCE.as_secs()
                    );
                }
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(2)) => {}
                    _ = interrupt.now.cancelled() => {}
                }
            }
            other => return other,
        }
    }
}

struct RunCtx {
    run_id: String,
    token: String,
    seed: u64,
    raw: bool,
    clock: Clock,
    server: Arc<Server>,
    /// Host each group's scenarios dial (`--advertise`, else the runtime's callback host).
    group_hosts: Vec<String>,
    interrupt: Interrupt,
    progress: Arc<LiveProgress>,
    /// The runtime that launches each group's scenarios.
    group_runtimes: Vec<Arc<dyn Runtime>>,
    registry: Arc<Registry>,
    /// Image each group's actions run (the group's image, or its filler-padded variant).
    action_images: BTreeMap<u32, String>,
    /// The run's start-rate limit, paced here for scenario launches ...
    run_rate: Option<Arc<crate::rate::RateLimiter>>,
    /// ... and each scenario's share of it for its action launches.
    run_rate_share: Option<StartRate>,
}

/// Launch a group's S scenarios, hand out assignments, collect reports, stop and remove them.
async fn run_group(ctx: Arc<RunCtx>, scenario: &Scenario, g: u32) -> GroupOutcome {
    let group = &scenario.groups[g as usize];
    let runtime = ctx.group_runtimes[g as usize].clone();
    let mut out = GroupOutcome { start_us: Some(ctx.clock.now_us()), ..Default::default() };
    let callback = format!("ws://{}:{}/", ctx.group_hosts[g as usize], ctx.server.port());
    let launcher = Arc::new(Launcher {
        runtime,
        server: ctx.server.clone(),
        clock: ctx.clock,
        limiter: Arc::new(Semaphore::new(runtimes::start_concurrency(group, &group.runtime, 1, ctx.registry.as_ref()) as usize)),
        in_flight: Arc::new(AtomicU32::new(0)),
        rate: ctx.run_rate.clone(),
    });
    let image = group.image.clone().unwrap_or_else(|| DEFAULT_IMAGE.to_owned());
    // hold = "all_ready": the group's scenarios cross the driver's lines, one each.
    let hold = (group.hold == stampede_core::scenario::Hold::AllReady).then(|| Hold::new(group.scenarios));

    let mut set = tokio::task::JoinSet::new();
    for s in 0..group.scenarios {
        let (ctx, launcher, callback, image, group) = (ctx.clone(), launcher.clone(), callback.clone(), image.clone(), group.clone());
        let tickets = hold.as_ref().map(|h| (h.clone(), h.held.ticket(), h.done.ticket()));
        set.spawn(async move { run_one_scenario(&ctx, &launcher, &callback, &image, &group, g, s, tickets).await });
    }
    while let Some(r) = set.join_next().await {
        let Ok(one) = r else { continue };
        let _ = out.metrics.merge(&one.metrics);
        let _ = out.scenario_metrics.merge(&one.scenario_metrics);
        out.accounting.add(&one.accounting);
        out.instances.extend(one.instances);
        out.requests.extend(one.requests);
        out.native_states.extend(one.native_states);
        if one.end_us > out.end_us {
            out.end_us = one.end_us;
            out.critical_ready_us = one.critical_ready_us;
        }
    }
    // Each scenario's row first, then its actions in order.
    out.instances.sort_by_key(|r| (r.scenario, r.action.is_some(), r.action, r.incarnation));
    out
}

#[allow(clippy::too_many_arguments)]
async fn run_one_scenario(
    ctx: &RunCtx,
    launcher: &Launcher,
    callback: &str,
    image: &str,
    group: &stampede_core::scenario::Group,
    g: u32,
    s: u32,
    hold: Option<(Hold, Ticket, Ticket)>,
) -> GroupOutcome {
    let mut out = GroupOutcome::default();
    let instance_id = format!("{}-g{g}-s{s}", ctx.run_id);
    let mut rec = InstanceRecord {
        instance_id: instance_id.clone(),
        role: Some(Role::Scenario),
        group: g,
        scenario: s,
        runtime: Some(group.runtime.clone()),
        ..Default::default()
    };
    let planned = u64::from(group.actions) * u64::from(group.requests);
    let assignment = Assignment {
        run_id: ctx.run_id.clone(),
        group_index: g,
        scenario_index: s,
        group: group.clone(),
        seed: ctx.seed,
        raw: ctx.raw,
        image: ctx.action_images.get(&g).cloned().unwrap_or_else(|| image.to_owned()),
        start_rate: crate::rate::stricter(group.start_rate, ctx.run_rate_share),
    };
    let assign = Message::Assign(Box::new(assignment));
    let assign_len = serde_json::to_string(&assign).map(|j| j.len()).unwrap_or(0);
    let mut env = vec![
        (env::CALLBACK.to_owned(), callback.to_owned()),
        (env::MAX_MESSAGE_BYTES.to_owned(), crate::limits::assignment_bound(assign_len).to_string()),
        (env::TOKEN.to_owned(), ctx.token.clone()),
        (env::INSTANCE_ID.to_owned(), instance_id.clone()),
        (env::RUN_ID.to_owned(), ctx.run_id.clone()),
    ];
    if let Ok(v) = std::env::var("RUST_LOG") {
        env.push(("RUST_LOG".to_owned(), v));
    }
    let spec = LaunchSpec {
        run_id: ctx.run_id.clone(),
        role: Role::Scenario,
        instance_id: instance_id.clone(),
        group: g,
        scenario: s,
        action: None,
        image: image.to_owned(),
        args: vec!["scenario".into()],
        env,
    };
    out.accounting.instances_requested += 1;
    ctx.progress.scenarios_launched.fetch_add(1, Ordering::Relaxed);
    ctx.progress.live.scenario_requested(g, s, &instance_id);
    // A scenario has to start its own runtime client before it is ready; give it the group's
    // ready timeout on top of the launch.
    let launched = launcher
        .launch(&spec, &mut rec, group.timeouts.ready, Some(assign), &ctx.interrupt.stop)
        .await;
    let child = match launched {
        Ok(c) => c,
        Err(handle) => {
            if let Some(h) = handle {
                let _ = launcher.runtime.remove(&h).await;
                rec.removed_us = Some(ctx.clock.now_us());
            }
            tracing::warn!("scenario {instance_id} failed: {}", rec.error.as_deref().unwrap_or("?"));
            out.accounting.instances_failed += 1;
            count_lost_actions(&mut out.accounting, group, planned, Progress::default());
            ctx.progress.scenarios_failed.fetch_add(1, Ordering::Relaxed);
            ctx.progress.live.scenario_failed(g, s);
            out.instances.push(rec);
            return out;
        }
    };
    ctx.progress.scenarios_ready.fetch_add(1, Ordering::Relaxed);
    ctx.progress.live.scenario_ready(g, s);
    let offset = ctx.clock.align(child.anchor_unix_us);
    let (tx, mut rx) = child.conn.split();

    // Held groups: this scenario's tickets cross on its `held` / `work_done` (or when it is
    // gone); every scenario is answered `go` / `release` when the whole group has crossed.
    let (mut held_ticket, mut done_ticket) = (None, None);
    let (go_all, release_all) = match hold {
        Some((h, held, done)) => {
            (held_ticket, done_ticket) = (Some(held), Some(done));
            (h.held, h.done)
        }
        None => (crate::hold::Line::new(u32::MAX), crate::hold::Line::new(u32::MAX)),
    };
    let (go_all, release_all) = (go_all.all(), release_all.all());
    tokio::pin!(go_all, release_all);
    let (mut go_sent, mut release_sent) = (held_ticket.is_none(), held_ticket.is_none());

    // Collect progress until the report; pass a stop on; give up at `now` or the drain deadline.
    let mut stop_sent = false;
    let mut link_lost = false;
    let drain = tokio::time::sleep(Duration::MAX / 4);
    tokio::pin!(drain);
    let report = loop {
        tokio::select! {
            m = rx.recv() => match m {
                Ok(Message::Progress(p)) => ctx.progress.update(&instance_id, p),
                Ok(Message::Held) => drop(held_ticket.take()),
                Ok(Message::WorkDone) => drop(done_ticket.take()),
                Ok(Message::Report(r)) => break Some(r),
                Ok(Message::Error { message }) => tracing::warn!("scenario {instance_id}: {message}"),
                Ok(other) => tracing::warn!("scenario {instance_id} sent unexpected `{}`", other.kind()),
                Err(RecvError::Malformed(e)) => {
                    ctx.server.protocol_error();
                    tracing::warn!("scenario {instance_id} sent a malformed message: {e}");
                    tx.close(&format!("malformed message: {e}")).await;
                    break None;
                }
                Err(e) => {
                    ctx.server.counters.link_error(&e);
                    rec.error = Some(format!("connection lost before its report: {e}"));
                    link_lost = true;
                    break None;
                }
            },
            _ = &mut go_all, if !go_sent => {
                go_sent = true;
                let _ = tx.send(&Message::Go).await;
            },
            _ = &mut release_all, if !release_sent => {
                release_sent = true;
                let _ = tx.send(&Message::Release).await;
            },
            _ = ctx.interrupt.stop.cancelled(), if !stop_sent => {
                stop_sent = true;
                let _ = tx.send(&Message::Stop).await;
                drain.as_mut().reset(tokio::time::Instant::now() + DRAIN_DEADLINE);
            },
            _ = &mut drain => { rec.error = Some("no report within the drain deadline".into()); break None },
            _ = ctx.interrupt.now.cancelled() => { rec.error = Some("interrupted before its report".into()); break None },
        }
    };

    // Gone or done: never leave the group's other scenarios waiting for this one.
    drop((held_ticket, done_ticket));
    // The platform may know why (a node lost): asked after the tickets, as it may take a while.
    if link_lost {
        if let Some(why) = launcher.runtime.why_lost(&child.handle).await {
            rec.error = rec.error.take().map(|e| format!("{why}: {e}"));
        }
    }
    match report {
        Some(mut r) => {
            rec.outcome = Outcome::Ready;
            out.accounting.instances_ready += 1;
            out.accounting.add(&r.accounting);
            match Metrics::from_wire(&r.metrics) {
                Ok(m) => {
                    let _ = out.metrics.merge(&m);
                    ctx.progress.live.reported(g, s, r.accounting, &m);
                }
                Err(e) => tracing::error!("scenario {instance_id}: {e}"),
            }
            for i in &mut r.instances {
                i.shift(offset);
            }
            for n in &mut r.native_states {
                n.time_us += offset;
            }
            out.native_states.extend(std::mem::take(&mut r.native_states));
            for q in &mut r.requests {
                q.scheduled_us += offset;
                q.sent_us += offset;
                q.received_us = q.received_us.map(|t| t + offset);
            }
            out.end_us = r.work_finished_us.map(|t| t + offset);
            // The action that finished last decides how much of the gap start-up explains.
            out.critical_ready_us = r
                .instances
                .iter()
                .filter(|i| i.last_response_us.is_some() && i.last_response_us == out.end_us)
                .filter_map(|i| i.ready_us)
                .next();
            rec.first_response_us = r.instances.iter().filter_map(|i| i.first_response_us).min();
            rec.last_response_us = out.end_us;
            out.instances.extend(std::mem::take(&mut r.instances));
            out.requests.extend(std::mem::take(&mut r.requests));
            // Its work is done: tell it to go, and wait briefly for a clean exit.
            let _ = tx.send(&Message::Stop).await;
            let deadline = Instant::now() + Duration::from_secs(10);
            while launcher.runtime.is_running(&child.handle).await && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        None => {
            rec.outcome = Outcome::Failed;
            out.accounting.instances_failed += 1;
            // What it told us last is all we will know of its actions.
            let last = ctx.progress.per_scenario.lock().expect("progress lock").get(&instance_id).copied().unwrap_or_default();
            count_lost_actions(&mut out.accounting, group, planned, last);
            ctx.progress.scenarios_failed.fetch_add(1, Ordering::Relaxed);
            ctx.progress.live.scenario_failed(g, s);
            let _ = tx.send(&Message::Stop).await;
        }
    }
    rec.stopped_us = Some(ctx.clock.now_us());
    let native = launcher.runtime.native_times(&child.handle).await;
    let states = runtimes::apply_native(&mut rec, &native, &ctx.clock);
    record_start_metrics(&mut out.scenario_metrics, &rec);
    runtimes::record_native_phases(&mut out.scenario_metrics, &rec, &states, native.source);
    out.native_states.extend(states);
    let t0 = Instant::now();
    match launcher.runtime.remove(&child.handle).await {
        Ok(()) => {
            out.scenario_metrics.record(names::REMOVE_LATENCY, i64::try_from(t0.elapsed().as_micros()).unwrap_or(i64::MAX));
            rec.removed_us = Some(ctx.clock.now_us());
        }
        Err(e) => tracing::warn!("{}", e.chain()),
    }
    out.instances.push(rec);
    out
}

/// A scenario that never started or died before its report: its actions still count, as
/// requested and failed (so `instances_requested` is always S + S·A), and the requests its last
/// progress said were answered stay answered; the rest were never sent.
fn count_lost_actions(a: &mut Accounting, group: &stampede_core::scenario::Group, planned: u64, last: Progress) {
    let actions = u64::from(group.actions).max(last.actions_launched);
    a.instances_requested += actions;
    a.instances_failed += actions;
    let planned = planned.max(last.requests_planned);
    let done = last.requests_done.min(planned);
    let ok = last.requests_ok.min(done);
    a.requests_planned += planned;
    a.requests_sent += done;
    a.requests_ok += ok;
    a.requests_failed += done - ok;
    a.requests_not_sent += planned - done;
}

fn empty_results(run_id: &str, scenario: &Scenario, seed: u64, clock: &Clock, cfg: &DriverConfig) -> Results {
    Results {
        schema_version: SCHEMA_VERSION,
        run: RunInfo {
            id: run_id.to_owned(),
            status: RunStatus::Running,
            started_at: chrono::DateTime::from_timestamp_micros(clock.anchor_us()).map(|t| t.to_rfc3339()).unwrap_or_default(),
            started_at_unix_us: clock.anchor_us(),
            duration_us: 0,
            exit_code: None,
            seed,
            command_line: cfg.command_line.clone(),
            raw: cfg.raw,
        },
        scenario: scenario.clone(),
        environment: environment(),
        accounting: Accounting::default(),
        metrics: BTreeMap::new(),
        scenario_metrics: BTreeMap::new(),
        groups: Vec::new(),
        efficiency: Efficiency::default(),
        contention: Vec::new(),
        starts_per_second: Vec::new(),
        peak_alive: 0,
        nodes: Vec::new(),
        native_states: Vec::new(),
        warnings: Vec::new(),
        histograms: BTreeMap::new(),
    }
}

fn environment() -> Environment {
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    let os = read("/etc/os-release")
        .lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME=").map(|v| v.trim_matches('"').to_owned()))
        .unwrap_or_else(|| std::env::consts::OS.to_owned());
    let memory_bytes = read("/proc/meminfo")
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:").and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok()))
        .map(|kb| kb * 1024)
        .unwrap_or(0);
    Environment {
        stampede_version: env!("CARGO_PKG_VERSION").to_owned(),
        hostname: crate::identity::hostname(),
        os,
        kernel: read("/proc/sys/kernel/osrelease").trim().to_owned(),
        cpus: std::thread::available_parallelism().map(|n| n.get() as u32).unwrap_or(1),
        memory_bytes,
        runtime_versions: BTreeMap::new(),
        runtime_options: BTreeMap::new(),
    }
}

fn us(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

#[allow(clippy::too_many_arguments)]
fn finish_results(
    results: &mut Results,
    scenario: &Scenario,
    outcomes: Vec<GroupOutcome>,
    clock: &Clock,
    // The exit code when the run was interrupted.
    interrupted: Option<i32>,
    timed_out: bool,
    cfg: &DriverConfig,
) -> Result<(), DriverError> {
    let mut metrics = Metrics::new();
    let mut scenario_metrics = Metrics::new();
    let mut instances = Vec::new();
    let mut requests = Vec::new();
    let mut native_states = Vec::new();
    let mut ideal_total = 0u64;
    let (mut startup_total, mut transport_total) = (0u64, 0u64);
    let mut end_of_run = 0i64;
    for (i, (group, o)) in scenario.groups.iter().zip(outcomes).enumerate() {
        results.accounting.add(&o.accounting);
        if !group.warmup {
            let _ = metrics.merge(&o.metrics);
            let _ = scenario_metrics.merge(&o.scenario_metrics);
        }
        let ideal = u64::try_from(group.ideal_duration().as_micros()).unwrap_or(u64::MAX);
        let start = o.start_us.unwrap_or(0);
        // No report said when the work ended: no actual duration (0, shown as n/a), rather
        // than one that ends at the first launch and makes the group look faster than N·M.
        let end = o.end_us.unwrap_or(start);
        if o.end_us.is_some() {
            end_of_run = end_of_run.max(end);
        }
        let startup = us(o.critical_ready_us.unwrap_or(end) - start);
        let overhead_mean = o.metrics.get(names::OVERHEAD).map(|h| h.mean()).unwrap_or(0.0);
        let transport = (overhead_mean * f64::from(group.requests)) as u64;
        let delay = u64::try_from(group.start_delay.as_micros()).unwrap_or(0);
        match scenario.groups_mode {
            GroupsMode::Sequence => {
                ideal_total += delay + ideal;
                startup_total += startup;
                transport_total += transport;
            }
            GroupsMode::Parallel => {
                if delay + ideal >= ideal_total {
                    ideal_total = delay + ideal;
                    startup_total = startup;
                    transport_total = transport;
                }
            }
        }
        results.groups.push(GroupResult {
            index: i as u32,
            name: group.name.clone(),
            runtime: group.runtime.to_string(),
            action_runtime: group.effective_action_runtime().to_string(),
            warmup: group.warmup,
            accounting: o.accounting,
            metrics: o.metrics.summaries(),
            efficiency: Efficiency::new(ideal, o.end_us.map_or(0, |_| us(end - start)), startup, transport),
        });
        instances.extend(o.instances);
        requests.extend(o.requests);
        native_states.extend(o.native_states);
    }
    let duration = clock.now_us();
    results.run.duration_us = us(duration);
    results.efficiency = Efficiency::new(ideal_total, us(end_of_run), startup_total, transport_total);
    results.metrics = metrics.summaries();
    results.scenario_metrics = scenario_metrics.summaries();
    results.histograms = metrics.to_wire();
    results.contention = contention(&instances);
    results.starts_per_second = starts_per_second(&instances);
    results.peak_alive = peak_alive(&instances);
    results.nodes = stampede_core::results::per_node(&instances);

    let a = results.accounting;
    results.warnings.extend(stampede_report::run_warnings(results, &instances, stampede_report::warnings::CpuUsage::of_this_process(), timed_out));

    let (status, code) = if let (Some(code), false) = (interrupted, timed_out) {
        (RunStatus::Interrupted, code)
    } else if a.balanced() && a.all_ok() && !timed_out {
        (RunStatus::Complete, exit::OK)
    } else {
        (RunStatus::Failed, exit::FAILED)
    };
    results.run.status = status;
    results.run.exit_code = Some(code);

    // Each file on its own: one that cannot be written (disk full, folder gone) must not keep
    // the others — results.json least of all — from being tried. The first error is returned.
    let mut first: Option<stampede_report::ReportError> = None;
    let mut keep = |r: Result<std::path::PathBuf, stampede_report::ReportError>| {
        if let Err(e) = r {
            tracing::error!("{e}");
            first.get_or_insert(e);
        }
    };
    keep(stampede_report::write_instances_csv(&cfg.out_dir, &instances));
    keep(stampede_report::write_native_states_csv(&cfg.out_dir, &native_states));
    if cfg.raw {
        keep(stampede_report::write_requests_csv(&cfg.out_dir, &requests));
    }
    if let Err(e) = stampede_report::write_results_json(&cfg.out_dir, results) {
        tracing::error!("{e}");
        // The complete file left behind is the partial one saying `running`: replace it.
        if let Err(e) = stampede_report::overwrite_results_json(&cfg.out_dir, results) {
            tracing::error!("{e}; results.json was removed rather than left saying `running`");
        }
        first.get_or_insert(e);
    }
    // The report is a view of results.json: failing to draw it must not fail the run or skip cleanup.
    if let Err(e) = stampede_report::write_report_html(&cfg.out_dir, results, &instances) {
        tracing::error!("{e}");
    }
    match first {
        Some(e) => Err(e.into()),
        None => Ok(()),
    }
}
