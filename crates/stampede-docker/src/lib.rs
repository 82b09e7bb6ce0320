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
pub mod error;
pub mod image;
pub mod names;
pub mod options;
pub mod runtime;
pub mod swarm;

pub use error::{DockerError, ImageError};
pub use image::{build_filler_image, build_image, default_binary, is_static_elf, STATIC_BUILD_COMMAND};
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
fn engine_capabilities(default_start_concurrency: u32, native_states: &'static [&'static str]) -> Capabilities {
    Capabilities { pause_resume: true, kill: true, image: true, image_filler: true, default_start_concurrency, native_states }
}

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
        engine_capabilities(2, &[])
    }
    fn read_options(&self, table: &mut OptionsTable<'_>) -> serde_json::Value {
        json(&options::read_docker(table))
    }
    fn default_options(&self) -> serde_json::Value {
        json(&DockerOptions::default())
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
        engine_capabilities(4, SWARM_STATES)
    }
    fn read_options(&self, table: &mut OptionsTable<'_>) -> serde_json::Value {
        json(&options::read_swarm(table))
    }
    fn default_options(&self) -> serde_json::Value {
        json(&SwarmOptions::default())
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
