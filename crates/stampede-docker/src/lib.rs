//! The `docker` runtime and the image builder: Docker Engine API over the unix socket (bollard).
//!
//! What lives where:
//!
//! - [`runtime`]: [`DockerRuntime`], the `stampede_runtime::Runtime` implementation —
//!   launch (create + start, timed separately), pause/resume (cgroup freezer), kill, remove,
//!   per-scenario networks, label-based cleanup of a run.
//! - [`callback`]: where a child must dial to reach a server in *this* process, which depends on
//!   whether this process runs on the host, in a host-networked container or in a bridged one.
//! - [`names`]: container and network names derived from a launch spec (pure functions).
//! - `deaths`: one `die` event stream per runtime, so a container that exits before it connects
//!   fails its launch at once.
//! - [`image`]: [`build_image`] (a `FROM scratch` image holding only the static `stampede`
//!   binary, built through the API from an in-memory context) and [`default_binary`].
//! - [`swarm`]: [`SwarmRuntime`], the `swarm` runtime — one service per instance on the local
//!   swarm, image by ID, task-state timestamps, pause/resume/kill on the task's container.
//! - [`error`]: [`DockerError`] (one variant per Engine API operation) and [`ImageError`].
//! - [`options`]: the `docker = { … }` and `swarm = { … }` scenario tables, read here.
//! - [`DockerProvider`], [`SwarmProvider`] (this file): the two runtimes as the binary's
//!   registry offers them — name, capabilities, options, connect, clean.
//!
//! The API version is negotiated on connect, so the same code drives Docker 20.10 (API 1.41)
//! and current engines.

pub mod callback;
mod deaths;
pub mod error;
pub mod image;
pub mod names;
pub mod options;
pub mod runtime;
pub mod swarm;

pub use error::{DockerError, ImageError};
pub use image::{build_filler_image, build_image, copy_image, default_binary, is_static_elf, STATIC_BUILD_COMMAND};
pub use runtime::DockerRuntime;
pub use swarm::SwarmRuntime;

use async_trait::async_trait;
use std::sync::Arc;

use stampede_core::scenario::{Capabilities, OptionsTable, RuntimeInfo};
use stampede_runtime::{Runtime, RuntimeError, RuntimeProvider};

use options::{DockerOptions, SwarmOptions};

/// Catalog names of the two runtimes of this crate.
pub const DOCKER: &str = "docker";
pub const SWARM: &str = "swarm";

/// Swarm's task states, in the order a task reaches them (`native_phase_<state>`).
pub const SWARM_STATES: &[&str] = &["new", "pending", "assigned", "accepted", "preparing", "starting", "running"];

/// The `docker` runtime in the registry.
#[derive(Debug, Clone, Default)]
pub struct DockerProvider;

/// The `swarm` runtime in the registry.
#[derive(Debug, Clone, Default)]
pub struct SwarmProvider;

fn json<T: serde::Serialize>(v: &T) -> serde_json::Value {
    serde_json::to_value(v).unwrap_or(serde_json::Value::Null)
}

/// What both runtimes of the Docker engine can do (pause through the cgroup freezer, kill,
/// images and filler images built by the engine); they differ in start concurrency and states.
/// A running container costs this host about 14 threads (its process, containerd-shim and the
/// engine's own per-container goroutine threads) and 4 MiB, measured on Docker 20.10 with
/// 2,200 containers up: 13.4 threads each. Past `kernel.pid_max` the engine itself cannot
/// start a thread and dies (seen here at 2,400 containers with the default 32,768).
///
/// The engine serialises much of a start internally: however many scenarios launch, it gets
/// at most `run_start_concurrency` create+start calls at once (8 for Docker: starts/s stop
/// rising there on two cores, while the start call's return lags `State.StartedAt` more).
fn engine_capabilities(
    default_start_concurrency: u32,
    run_start_concurrency: u32,
    native_states: &'static [&'static str],
) -> Capabilities {
    Capabilities {
        pause_resume: true,
        kill: true,
        image: true,
        image_filler: true,
        default_start_concurrency,
        run_start_concurrency,
        native_states,
        threads_per_instance: 14,
        memory_per_instance_kib: 4096,
    }
}

/// One Linux bridge holds at most 1023 ports: the 1024th container fails "exchange full".
pub const BRIDGE_MAX_CONTAINERS: u64 = 1023;
/// Docker's default address pools (172.17–31.0.0/16, 192.168.0.0/16 in /20s) hold 31 bridge
/// networks, the default bridge among them.
pub const DEFAULT_POOL_NETWORKS: u64 = 31;
/// The run's overlay network is a /24: 256 addresses, less network, broadcast, gateway and
/// the load balancer's.
pub const OVERLAY_MAX_TASKS: u64 = 252;

/// `stampede clean` on an engine: `None` when no daemon answers (an absent Docker has nothing
/// left on it), else what `remove_run` removed.
async fn clean_if_reachable(
    rt: &dyn Runtime,
    client: &bollard::Docker,
    run_id: Option<&str>,
) -> Result<Option<usize>, RuntimeError> {
    if client.ping().await.is_err() {
        return Ok(None);
    }
    rt.remove_run(run_id).await.map(Some)
}

impl RuntimeInfo for DockerProvider {
    fn name(&self) -> &'static str {
        DOCKER
    }
    /// Docker serialises much of a container start internally. Measured on a two-core machine:
    /// with 2 scenarios, 4 calls each kept throughput within ~5 % of 2 each, but the start
    /// call's return then lagged Docker's own `State.StartedAt` by up to ~75 ms (p99), against
    /// ~25 ms with 2: our `started` timestamp stays honest with fewer calls in flight.
    fn capabilities(&self) -> Capabilities {
        engine_capabilities(2, 8, &[])
    }
    fn read_options(&self, table: &mut OptionsTable<'_>) -> serde_json::Value {
        json(&options::read_docker(table))
    }
    fn default_options(&self) -> serde_json::Value {
        json(&DockerOptions::default())
    }
    fn check_shape(&self, o: &serde_json::Value, scenarios: u32, actions: u32) -> Vec<String> {
        let (s, a) = (u64::from(scenarios), u64::from(actions));
        match options::decode::<DockerOptions>(o).network {
            options::DockerNetwork::Host => Vec::new(),
            options::DockerNetwork::Bridge if s + s * a > BRIDGE_MAX_CONTAINERS => vec![format!(
                "{} containers on Docker's default bridge, which holds at most {BRIDGE_MAX_CONTAINERS} (one Linux bridge); \
                 use docker = {{ network = \"per_scenario\" }} (one bridge per scenario) or \"host\"",
                s + s * a
            )],
            options::DockerNetwork::PerScenario if 1 + a > BRIDGE_MAX_CONTAINERS => vec![format!(
                "{} containers on each scenario's bridge, which holds at most {BRIDGE_MAX_CONTAINERS}; lower actions or use docker = {{ network = \"host\" }}",
                1 + a
            )],
            options::DockerNetwork::PerScenario if s >= DEFAULT_POOL_NETWORKS => vec![format!(
                "{s} per-scenario networks, but Docker's default address pools hold {DEFAULT_POOL_NETWORKS} bridge networks in all (its default bridge is one); \
                 use docker = {{ network = \"host\" }}, or add default-address-pools in /etc/docker/daemon.json"
            )],
            _ => Vec::new(),
        }
    }
}

#[async_trait]
impl RuntimeProvider for DockerProvider {
    async fn connect(&self, o: &serde_json::Value) -> Result<Arc<dyn Runtime>, RuntimeError> {
        let o: DockerOptions = options::decode(o);
        Ok(Arc::new(DockerRuntime::connect().await?.with_network(o.network)))
    }
    async fn clean(&self, run_id: Option<&str>) -> Result<Option<usize>, RuntimeError> {
        let Ok(rt) = DockerRuntime::connect().await else { return Ok(None) };
        clean_if_reachable(&rt, rt.client(), run_id).await
    }
}

impl RuntimeInfo for SwarmProvider {
    fn name(&self) -> &'static str {
        SWARM
    }
    fn capabilities(&self) -> Capabilities {
        engine_capabilities(4, 16, SWARM_STATES)
    }
    /// Actions spread over nodes: a scenario reaches only its own node's engine, so it cannot
    /// pause or kill a container elsewhere (Swarm itself has neither).
    fn capabilities_for(&self, o: &serde_json::Value) -> Capabilities {
        let mut c = self.capabilities();
        if options::decode::<SwarmOptions>(o).actions == options::ActionPlacement::Spread {
            c.pause_resume = false;
            c.kill = false;
        }
        c
    }
    fn limited_because(&self, o: &serde_json::Value) -> Option<String> {
        (options::decode::<SwarmOptions>(o).actions == options::ActionPlacement::Spread).then(|| {
            "with swarm = { actions = \"spread\" } an action may run on another node than its scenario, whose \
             engine alone the scenario can reach; use actions = \"with_scenario\" (the default) or drop the step"
                .to_owned()
        })
    }
    fn read_options(&self, table: &mut OptionsTable<'_>) -> serde_json::Value {
        json(&options::read_swarm(table))
    }
    fn default_options(&self) -> serde_json::Value {
        json(&SwarmOptions::default())
    }
    fn check_shape(&self, o: &serde_json::Value, scenarios: u32, actions: u32) -> Vec<String> {
        let tasks = u64::from(scenarios) * (1 + u64::from(actions));
        match options::decode::<SwarmOptions>(o).network {
            options::SwarmNetwork::Overlay if tasks > OVERLAY_MAX_TASKS => vec![format!(
                "{tasks} tasks on the run's overlay network, a /24 that holds {OVERLAY_MAX_TASKS}; use swarm = {{ network = \"host\" }}"
            )],
            _ => Vec::new(),
        }
    }
}

#[async_trait]
impl RuntimeProvider for SwarmProvider {
    async fn connect(&self, o: &serde_json::Value) -> Result<Arc<dyn Runtime>, RuntimeError> {
        let o: SwarmOptions = options::decode(o);
        Ok(Arc::new(SwarmRuntime::connect().await?.with_options(o)))
    }
    /// Services first (their tasks' containers go with them), then what the docker runtime
    /// would leave (networks, containers of a dead node).
    async fn clean(&self, run_id: Option<&str>) -> Result<Option<usize>, RuntimeError> {
        let Ok(rt) = SwarmRuntime::connect().await else { return Ok(None) };
        clean_if_reachable(&rt, rt.client(), run_id).await
    }
}
