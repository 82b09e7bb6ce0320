//! [`DockerRuntime`]: every instance is a container of the Docker Engine on this machine.
//!
//! - launch = create + start, each call timed on return (`created`, `started`); no AutoRemove,
//!   because removal is one of the things we time (and a failed scenario's container stays for
//!   the driver to inspect); a scenario whose driver is gone removes its own container instead
//!   ([`Runtime::remove_self`]);
//! - a container that dies before it connects fails its launch at once (its `die` event, see
//!   [`crate::deaths`]);
//! - pause/resume = `docker pause`/`unpause` (cgroup freezer); kill = SIGKILL; remove = force
//!   remove, tolerating containers that are already gone;
//! - networking per scenario file: host, the default bridge, or one user-defined bridge per
//!   scenario (created by [`Runtime::prepare`]) shared by the scenario and its actions, so that no
//!   bridge ever exceeds Linux's 1023 ports;
//! - scenario containers get the Docker socket bind-mounted to launch their own actions;
//! - everything carries the run's labels, and `remove_run` deletes by label only, so cleanup
//!   works from any process (`stampede clean`) and after a crash.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use async_trait::async_trait;
use bollard::models::{ContainerCreateBody, HostConfig, NetworkCreateRequest};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, InspectContainerOptions, InspectNetworkOptions, KillContainerOptionsBuilder,
    ListContainersOptionsBuilder, ListNetworksOptionsBuilder, RemoveContainerOptionsBuilder, StartContainerOptions,
};
use bollard::Docker;
use futures_util::stream::{self, StreamExt};
use tokio::sync::{Mutex, OnceCell};

use stampede_core::measure::Role;
use stampede_runtime::{labels, Handle, LaunchSpec, Launched, NativeTimes, Runtime, RuntimeError};

use crate::options::DockerNetwork;

use crate::callback::{self, SelfLocation};
use crate::error::{status_of, DockerError};
use crate::names;

/// Where the daemon's socket is when `DOCKER_HOST` does not say otherwise.
const DEFAULT_SOCKET: &str = "/var/run/docker.sock";
/// Where scenario containers find the socket (the path bollard and the docker CLI default to).
const SOCKET_IN_CONTAINER: &str = "/var/run/docker.sock";
/// Engine API calls run concurrently during cleanup; enough to hide latency, few enough not to
/// make a loaded daemon slower still.
const CLEANUP_CONCURRENCY: usize = 16;

#[derive(Debug)]
pub struct DockerRuntime {
    docker: Docker,
    /// Host path of the daemon socket, bind-mounted into scenario containers.
    socket: String,
    /// Per-scenario networks known to exist → their IPv4 gateway. Makes `prepare` cheap when the
    /// parent and the scenario both call it, and gives `callback_host` a gateway to fall back on.
    networks: Mutex<HashMap<String, String>>,
    location: OnceCell<SelfLocation>,
    bridge_gateway: OnceCell<Option<String>>,
    /// Where this runtime's containers are networked (the group's `docker.network`).
    network: DockerNetwork,
    /// `die` events, for failing a launch whose container exits before it connects.
    deaths: crate::deaths::Deaths,
}

impl DockerRuntime {
    /// Connect over the unix socket (`DOCKER_HOST=unix://…` or `/var/run/docker.sock`) and
    /// negotiate the API version, so that older engines (20.10 = API 1.41) are spoken to in theirs.
    pub async fn connect() -> Result<Self, RuntimeError> {
        let socket = match std::env::var("DOCKER_HOST") {
            Ok(h) if h.starts_with("unix://") => h.trim_start_matches("unix://").to_owned(),
            _ => DEFAULT_SOCKET.to_owned(),
        };
        Self::connect_to(&socket).await
    }

    /// [`connect`](Self::connect) to the daemon socket at `socket` (a path on this machine).
    pub async fn connect_to(socket: &str) -> Result<Self, RuntimeError> {
        let socket = socket.to_owned();
        let connect_error = |source| DockerError::Connect { socket: socket.clone(), source };
        let docker = Docker::connect_with_socket(&socket, 120, bollard::API_DEFAULT_VERSION).map_err(connect_error)?;
        let docker = docker.negotiate_version().await.map_err(connect_error)?;
        Ok(Self::with_client(docker, socket))
    }

    /// Use an existing client (already negotiated); `socket` is its host path, for scenarios.
    pub fn with_client(docker: Docker, socket: String) -> Self {
        Self {
            docker,
            socket,
            networks: Mutex::new(HashMap::new()),
            location: OnceCell::new(),
            bridge_gateway: OnceCell::new(),
            network: DockerNetwork::default(),
            deaths: crate::deaths::Deaths::new(),
        }
    }

    /// Network the containers this runtime launches join.
    pub fn with_network(mut self, network: DockerNetwork) -> Self {
        self.network = network;
        self
    }

    /// The bollard client (image building, tests).
    pub fn client(&self) -> &Docker {
        &self.docker
    }

    /// Host path of the daemon socket (what scenario containers get bind-mounted).
    pub fn socket(&self) -> &str {
        &self.socket
    }

    /// IPv4 gateway of a network's first IPAM config.
    pub(crate) async fn gateway_of(&self, network: &str) -> Result<String, DockerError> {
        let inspected = self
            .docker
            .inspect_network(network, None::<InspectNetworkOptions>)
            .await
            .map_err(|source| DockerError::InspectNetwork { name: network.to_owned(), source })?;
        inspected
            .ipam
            .and_then(|ipam| ipam.config)
            .into_iter()
            .flatten()
            .find_map(|c| match c.gateway {
                Some(gw) if gw.parse::<std::net::Ipv4Addr>().is_ok() => Some(gw),
                // Docker 20.10 leaves the default bridge's gateway out of its IPAM config; it is
                // the subnet's first address unless the daemon's `bip` says otherwise, and then
                // it is recorded.
                _ => c.subnet.as_deref().and_then(first_host_of),
            })
            .ok_or_else(|| DockerError::NoGateway { name: network.to_owned() })
    }

    pub(crate) async fn location(&self) -> Result<&SelfLocation, DockerError> {
        self.location.get_or_try_init(|| self.detect_location()).await
    }

    async fn detect_location(&self) -> Result<SelfLocation, DockerError> {
        let Some(id) = callback::own_container_id() else { return Ok(SelfLocation::Host) };
        let inspected = match self.docker.inspect_container(&id, None::<InspectContainerOptions>).await {
            Ok(c) => c,
            // A container of another engine (or none of ours): its network is not ours to judge,
            // and from the daemon's point of view we are on the host.
            Err(e) if status_of(&e) == Some(404) => return Ok(SelfLocation::Host),
            Err(source) => return Err(DockerError::InspectContainer { id, source }),
        };
        let mode = inspected.host_config.as_ref().and_then(|h| h.network_mode.clone()).unwrap_or_default();
        if mode == "host" {
            return Ok(SelfLocation::Host);
        }
        let ips = inspected
            .network_settings
            .and_then(|n| n.networks)
            .unwrap_or_default()
            .into_iter()
            .filter_map(|(net, ep)| ep.ip_address.filter(|ip| !ip.is_empty()).map(|ip| (net, ip)))
            .collect::<BTreeMap<_, _>>();
        let name = inspected.name.unwrap_or(id).trim_start_matches('/').to_owned();
        Ok(SelfLocation::Container { name, ips })
    }

    /// The default bridge's gateway, or, on a daemon without one, that of a network we prepared.
    pub(crate) async fn host_gateway(&self) -> Option<String> {
        let bridge = self.bridge_gateway.get_or_init(|| async { self.gateway_of("bridge").await.ok() }).await.clone();
        match bridge {
            Some(gw) => Some(gw),
            None => self.networks.lock().await.values().next().cloned(),
        }
    }

    /// Containers and networks labelled with `filter` (`stampede.run=<id>` or `stampede.run`).
    pub(crate) async fn remove_labelled(&self, filter: &str) -> Result<usize, DockerError> {
        let filters = HashMap::from([("label", vec![filter])]);
        let containers = self
            .docker
            .list_containers(Some(ListContainersOptionsBuilder::new().all(true).filters(&filters).build()))
            .await
            .map_err(|source| DockerError::ListContainers { filter: filter.to_owned(), source })?;
        // A daemon that lets one removal run into the client's timeout (120 s) will not answer
        // the next thousands either: once one has timed out, the rest are not sent (those in
        // flight finish) and the timeout is the error, for the caller to retry or report. Seen
        // at ~2,400 containers, when dockerd stopped completing removals: a pass that sent
        // them all, 16 at a time, would have waited out a timeout for each — hours.
        let unanswered = AtomicBool::new(false);
        let results: Vec<Option<Result<bool, DockerError>>> = stream::iter(containers.into_iter().filter_map(|c| c.id))
            .map(|id| {
                let unanswered = &unanswered;
                async move {
                    if unanswered.load(Ordering::Relaxed) {
                        return None;
                    }
                    let r = self.force_remove(&id).await;
                    if matches!(&r, Err(DockerError::RemoveContainer { source: bollard::errors::Error::RequestTimeoutError, .. })) {
                        unanswered.store(true, Ordering::Relaxed);
                    }
                    Some(r)
                }
            })
            .buffer_unordered(CLEANUP_CONCURRENCY)
            .collect()
            .await;
        let mut removed = 0;
        for r in results.into_iter().flatten() {
            removed += usize::from(r?);
        }

        // Networks last: a network with containers attached cannot be removed.
        let networks = self
            .docker
            .list_networks(Some(ListNetworksOptionsBuilder::new().filters(&filters).build()))
            .await
            .map_err(|source| DockerError::ListNetworks { filter: filter.to_owned(), source })?;
        for name in networks.into_iter().filter_map(|n| n.name) {
            match self.docker.remove_network(&name).await {
                Ok(()) => removed += 1,
                Err(e) if status_of(&e) == Some(404) => {}
                Err(source) => return Err(DockerError::RemoveNetwork { name, source }),
            }
            self.networks.lock().await.remove(&name);
        }
        Ok(removed)
    }

    /// Force-remove one container; `false` when it was already gone (or going).
    pub(crate) async fn force_remove(&self, id: &str) -> Result<bool, DockerError> {
        let opts = RemoveContainerOptionsBuilder::new().force(true).v(true).build();
        match self.docker.remove_container(id, Some(opts)).await {
            Ok(()) => Ok(true),
            // 404: already removed; 409: "removal already in progress" (a concurrent cleanup).
            Err(e) if matches!(status_of(&e), Some(404 | 409)) => Ok(false),
            Err(source) => Err(DockerError::RemoveContainer { id: id.to_owned(), source }),
        }
    }

    async fn create_and_start(&self, spec: &LaunchSpec) -> Result<Launched, DockerError> {
        let name = names::container_name(spec);
        let network_mode = match self.network {
            DockerNetwork::Host => "host".to_owned(),
            DockerNetwork::Bridge => "bridge".to_owned(),
            DockerNetwork::PerScenario => {
                // `prepare` is the documented place, but a launch must not fail for want of it.
                self.ensure_network(spec).await?;
                names::network_name(spec)
            }
        };
        let binds = (spec.role == Role::Scenario).then(|| vec![format!("{}:{SOCKET_IN_CONTAINER}", self.socket)]);
        self.deaths.follow(&self.docker, spec);
        let mut env: Vec<String> = spec.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        env.push(names::self_env(crate::DOCKER, &name));
        let body = ContainerCreateBody {
            image: Some(spec.image.clone()),
            cmd: Some(spec.args.clone()),
            env: Some(env),
            labels: Some(spec.labels().into_iter().collect()),
            host_config: Some(HostConfig {
                network_mode: Some(network_mode),
                binds,
                auto_remove: Some(false),
                ..Default::default()
            }),
            ..Default::default()
        };
        let created = self
            .docker
            .create_container(Some(CreateContainerOptionsBuilder::new().name(&name).build()), body)
            .await
            .map_err(|source| DockerError::CreateContainer { name: name.clone(), source })?;
        let created_at = Instant::now();
        if let Err(source) = self.docker.start_container(&created.id, None::<StartContainerOptions>).await {
            // The caller gets no handle to remove it with; don't leave it for the end of the run.
            let _ = self.force_remove(&created.id).await;
            return Err(DockerError::StartContainer { name, source });
        }
        let started = Instant::now();
        Ok(Launched { handle: Handle { id: created.id, detail: Some(name) }, created: Some(created_at), started })
    }

    /// Create the scenario's network unless it exists; its gateway is remembered.
    async fn ensure_network(&self, spec: &LaunchSpec) -> Result<(), DockerError> {
        let name = names::network_name(spec);
        // Held across the create so two concurrent launches of one scenario cannot race to
        // create two networks of the same name (the Engine API allows duplicates on 20.10).
        let mut networks = self.networks.lock().await;
        if networks.contains_key(&name) {
            return Ok(());
        }
        let gateway = match self.gateway_of(&name).await {
            Ok(gw) => gw,
            Err(DockerError::InspectNetwork { source, .. }) if status_of(&source) == Some(404) => {
                let mut labels: HashMap<String, String> = HashMap::new();
                labels.insert(labels::RUN.to_owned(), spec.run_id.clone());
                labels.insert(labels::ROLE.to_owned(), Role::Scenario.as_str().to_owned());
                labels.insert(labels::GROUP.to_owned(), spec.group.to_string());
                labels.insert(labels::SCENARIO.to_owned(), spec.scenario.to_string());
                let request = NetworkCreateRequest {
                    name: name.clone(),
                    driver: Some("bridge".to_owned()),
                    labels: Some(labels),
                    ..Default::default()
                };
                match self.docker.create_network(request).await {
                    Ok(_) => {}
                    // Created meanwhile by another process (the parent, or the scenario itself).
                    Err(e) if status_of(&e) == Some(409) => {}
                    Err(source) => return Err(DockerError::CreateNetwork { name, source }),
                }
                self.gateway_of(&name).await?
            }
            Err(e) => return Err(e),
        };
        networks.insert(name, gateway);
        Ok(())
    }

    async fn inspect(&self, h: &Handle) -> Result<bollard::models::ContainerInspectResponse, DockerError> {
        self.docker
            .inspect_container(&h.id, None::<InspectContainerOptions>)
            .await
            .map_err(|source| DockerError::InspectContainer { id: display_id(h), source })
    }

    /// Engine version, e.g. "Docker 20.10.24+dfsg1 (API 1.41)" (the API version is the
    /// negotiated one, the one we speak).
    pub async fn version(&self) -> Result<String, RuntimeError> {
        let v = self
            .docker
            .version()
            .await
            .map_err(|source| DockerError::Connect { socket: self.socket.clone(), source })?;
        Ok(format!("Docker {} (API {})", v.version.unwrap_or_else(|| "?".into()), self.docker.client_version()))
    }
}

/// Name for messages: the container name when we know it, else the id.
fn display_id(h: &Handle) -> String {
    h.detail.clone().unwrap_or_else(|| h.id.clone())
}

/// The first host address of an IPv4 subnet (`172.17.0.0/16` → `172.17.0.1`).
fn first_host_of(subnet: &str) -> Option<String> {
    let (addr, len) = subnet.split_once('/')?;
    let (addr, len): (std::net::Ipv4Addr, u32) = (addr.parse().ok()?, len.parse().ok()?);
    if len >= 31 {
        return None;
    }
    let network = u32::from(addr) & (u32::MAX << (32 - len));
    Some(std::net::Ipv4Addr::from(network + 1).to_string())
}

/// `State.StartedAt` → µs since the epoch; `None` for the zero time of a never-started container.
pub fn parse_started_at(s: &str) -> Option<i64> {
    let t = chrono::DateTime::parse_from_rfc3339(s).ok()?;
    let us = t.timestamp_micros();
    (us > 0).then_some(us)
}

#[async_trait]
impl Runtime for DockerRuntime {
    fn name(&self) -> &'static str {
        crate::DOCKER
    }

    fn children_dial_loopback(&self) -> bool {
        self.network == DockerNetwork::Host
    }

    async fn preflight(&self, image: &str) -> Result<String, RuntimeError> {
        self.docker.ping().await.map_err(|source| DockerError::Connect { socket: self.socket.clone(), source })?;
        match self.docker.inspect_image(image).await {
            Ok(_) => {}
            Err(e) if status_of(&e) == Some(404) => {
                return Err(RuntimeError::Unavailable {
                    runtime: crate::DOCKER.to_owned(),
                    source: format!(
                        "image `{image}` is not in the local image store, and no registry can be reached to pull it; \
                         build it with `stampede image build` (it needs the static binary: {})",
                        crate::image::STATIC_BUILD_COMMAND
                    )
                    .into(),
                })
            }
            Err(source) => {
                return Err(DockerError::InspectImage { image: image.to_owned(), source }.into());
            }
        }
        self.version().await
    }

    async fn callback_host(&self) -> Result<String, RuntimeError> {
        let network = self.network;
        let location = self.location().await?;
        let gateway = match location {
            SelfLocation::Host if network != DockerNetwork::Host => self.host_gateway().await,
            _ => None,
        };
        callback::resolve(location, network, gateway.as_deref())
            .map_err(|reason| DockerError::Unreachable(reason).into())
    }

    async fn prepare(&self, spec: &LaunchSpec) -> Result<(), RuntimeError> {
        if self.network == DockerNetwork::PerScenario {
            self.ensure_network(spec).await.map_err(|e| e.into_launch(&spec.instance_id))?;
        }
        Ok(())
    }

    async fn launch(&self, spec: &LaunchSpec) -> Result<Launched, RuntimeError> {
        self.create_and_start(spec).await.map_err(|e| e.into_launch(&spec.instance_id))
    }

    async fn pause(&self, h: &Handle) -> Result<(), RuntimeError> {
        self.docker
            .pause_container(&h.id)
            .await
            .map_err(|source| DockerError::PauseContainer { id: display_id(h), source }.into_control("pause", &h.id))
    }

    async fn resume(&self, h: &Handle) -> Result<(), RuntimeError> {
        self.docker
            .unpause_container(&h.id)
            .await
            .map_err(|source| DockerError::UnpauseContainer { id: display_id(h), source }.into_control("resume", &h.id))
    }

    async fn kill(&self, h: &Handle) -> Result<(), RuntimeError> {
        let opts = KillContainerOptionsBuilder::new().signal("SIGKILL").build();
        self.docker
            .kill_container(&h.id, Some(opts))
            .await
            .map_err(|source| DockerError::KillContainer { id: display_id(h), source }.into_control("kill", &h.id))
    }

    async fn remove(&self, h: &Handle) -> Result<(), RuntimeError> {
        let removed = self.force_remove(&h.id).await.map(drop).map_err(|e| e.into_control("remove", &h.id));
        self.deaths.forget(&h.id);
        removed
    }

    /// The container's `die` event (one event stream for the runtime, see [`crate::deaths`]).
    async fn wait_failed(&self, h: &Handle) -> String {
        self.deaths.wait(&h.id).await
    }

    /// Force-removes this process's own container: the daemon kills it (so this rarely returns)
    /// and removes it whether or not the caller is still there to hear the answer.
    async fn remove_self(&self, name: &str) -> Result<(), RuntimeError> {
        self.force_remove(name).await.map(drop).map_err(|e| e.into_control("remove", name))
    }

    async fn native_times(&self, h: &Handle) -> NativeTimes {
        let started_unix_us = match self.inspect(h).await {
            Ok(c) => c.state.and_then(|s| s.started_at).as_deref().and_then(parse_started_at),
            Err(e) => {
                tracing::debug!("no native times: {e}");
                None
            }
        };
        NativeTimes { started_unix_us, ..Default::default() }
    }

    async fn is_running(&self, h: &Handle) -> bool {
        self.inspect(h).await.ok().and_then(|c| c.state).and_then(|s| s.running).unwrap_or(false)
    }

    async fn filler_image(&self, image: &str, filler_mb: u32) -> Result<String, RuntimeError> {
        crate::image::build_filler_image(&self.docker, image, filler_mb)
            .await
            .map_err(|e| RuntimeError::Unavailable { runtime: crate::DOCKER.to_owned(), source: Box::new(e) })
    }

    async fn remove_run(&self, run_id: Option<&str>) -> Result<usize, RuntimeError> {
        let filter = match run_id {
            Some(id) => format!("{}={id}", labels::RUN),
            None => labels::RUN.to_owned(),
        };
        self.remove_labelled(&filter).await.map_err(|e| e.into_cleanup(run_id.unwrap_or("*")))
    }
}

#[cfg(test)]
mod tests {
    use super::{first_host_of, parse_started_at};

    #[test]
    fn gateway_defaults_to_the_first_host_of_the_subnet() {
        assert_eq!(first_host_of("172.17.0.0/16").as_deref(), Some("172.17.0.1"));
        assert_eq!(first_host_of("10.1.2.128/25").as_deref(), Some("10.1.2.129"));
        assert_eq!(first_host_of("fd00::/64"), None);
    }

    #[test]
    fn started_at_keeps_microseconds() {
        assert_eq!(parse_started_at("2024-05-01T12:00:00.123456789Z"), Some(1_714_564_800_123_456));
        assert_eq!(parse_started_at("0001-01-01T00:00:00Z"), None);
        assert_eq!(parse_started_at("garbage"), None);
    }
}
