//! [`SwarmRuntime`]: every instance is a Swarm service of one replica on the local swarm.
//!
//! - **Mapping.** One service per instance (`service_per_action`): per-instance control
//!   (pause/resume/kill one action, relaunch it as a new incarnation) needs one task per service.
//!   `replicated_service` (one service of A replicas) is refused when an action is launched
//!   (scenarios are always a service each): `launch` sees one
//!   instance at a time and does not know A, every replica would share one environment (the
//!   instance id could only be templated from `{{.Task.Slot}}`, which is 1-based and not the
//!   tiers' id), and a killed replica with restart condition `none` leaves its slot dead, so a
//!   relaunch cannot reuse it.
//! - **Image by ID.** The tag is resolved to its image ID (`sha256:…`) once and the service gets
//!   the ID: Swarm's executor tries to pull every image given by tag before each task, which here
//!   (no registry) fails after a timeout and makes starts about 7× slower; an image ID is never
//!   pulled.
//! - **Timing.** `created` = `started` = the service create call returned. Swarm has no start
//!   call: after the create, its orchestrator, scheduler and agent start the task on their own,
//!   and that path shows in the `boot` phase (started → connected) and, broken down, in the task
//!   states. Returning at once (instead of polling until the task runs) keeps poll lag out of
//!   `connected`/`ready`, and makes the start-concurrency limit mean what it means for Docker:
//!   API calls in flight, not Swarm's own start parallelism, which is what is measured.
//! - **Task states.** A task object carries only its current state and that state's timestamp,
//!   and Docker 20.10 emits no task events. A [`Tracker`] polls the tasks of every service still
//!   starting, all in one list call every [`POLL`], and the first sighting of each state records
//!   the task's own `Status.Timestamp` (when Swarm entered it, not when we saw it); `new` comes
//!   from the task's `CreatedAt`. A state that lasted less than one poll (typically `accepted`,
//!   sometimes `preparing`) is absent, never guessed. Tracking ends when the task runs or ends.
//! - **Nodes.** [`Place`] (read at connect) says how many nodes the swarm has and which one this
//!   engine is. On more than one, a host-networked child dials its parent at the parent's node
//!   address in the swarm (used when it is this process's own, else the driver needs
//!   `--advertise`); scenarios are constrained to managers (they create services) and actions to
//!   their scenario's node unless `actions = "spread"`. `preflight` checks with a global probe
//!   service that the image ID is on every eligible node; `portable_image` hands scenarios the
//!   ID. An instance whose link dropped on a node the swarm then reports down is "node lost"
//!   (`why_lost`, which waits a few dispatcher heartbeats for the verdict).
//! - **Control.** The task's container is a container of this node's engine (actions run with
//!   their scenario by default), so pause/resume/kill act on it through the Docker API
//!   ([`DockerRuntime`]). Kill leaves the task
//!   `failed`; with restart condition `none` Swarm does not replace it. Remove deletes the service
//!   (its container goes asynchronously; `remove_run` waits for it). A scenario whose driver is
//!   gone deletes its own service (`remove_self`, named in `STAMPEDE_SELF`).
//! - **Networks.** `host` attaches tasks to the swarm's `host` network; `overlay` gives each run
//!   one attachable overlay network `stampede-<run>`, created by [`Runtime::prepare`].
//! - Services, their containers and the overlay network carry the run's labels; `remove_run`
//!   deletes by label only.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bollard::models::{
    EndpointSpec, EndpointSpecModeEnum, LocalNodeState, NodeState, Mount, MountTypeEnum, NetworkAttachmentConfig,
    NetworkCreateRequest, ServiceSpec, ServiceSpecMode, ServiceSpecModeReplicated, ServiceSpecUpdateConfig, Task,
    TaskSpec, TaskSpecContainerSpec, TaskSpecPlacement, TaskSpecRestartPolicy, TaskSpecRestartPolicyConditionEnum,
    TaskState,
};
use bollard::query_parameters::{
    InspectContainerOptions, InspectNetworkOptions, ListContainersOptionsBuilder, ListServicesOptions, ListTasksOptions,
};
use tokio::sync::Mutex;

use stampede_core::measure::Role;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use stampede_runtime::{labels, Handle, LaunchSpec, Launched, NativeTimes, Runtime, RuntimeError};

use crate::options::{ActionPlacement, DockerNetwork, SwarmNetwork, SwarmOptions};

use crate::callback::{self, SelfLocation};
use crate::error::{status_of, DockerError};
use crate::names;
use crate::runtime::{parse_started_at, DockerRuntime};

/// How often starting tasks are polled (all of them in one call). Short enough to see most states
/// of a task that runs within a few hundred ms.
pub const POLL: Duration = Duration::from_millis(20);
/// Services per task-list call of the [`Tracker`] (keeps the query string short).
const TRACK_BATCH: usize = 100;
/// A task that neither runs nor ends within this long (unplaceable, say) is no longer polled.
const TRACK_AT_MOST: Duration = Duration::from_secs(600);
/// How long `remove_run` waits for the containers of deleted services before force-removing them.
const CONTAINERS_GONE_WITHIN: Duration = Duration::from_secs(20);
/// How long `remove_run` retries removing an overlay network that tasks still hold.
const NETWORK_FREED_WITHIN: Duration = Duration::from_secs(15);
/// How many dispatcher heartbeats (plus [`NODE_DOWN_SLACK`]) `why_lost` watches a node for:
/// the manager marks a node down after missing about three (a multiple of the period, with
/// jitter), counted from when its engine stopped answering — which, when the engine shuts down
/// cleanly, is a second or two after its containers' connections dropped. A lost instance on a
/// node that stays up is recorded that much later (5 s heartbeats: 32 s).
const NODE_DOWN_WITHIN: f64 = 6.0;
const NODE_DOWN_SLACK: Duration = Duration::from_secs(2);
/// How long the image check on every node may take (a probe task per node runs `--version`).
const IMAGE_CHECK_WITHIN: Duration = Duration::from_secs(30);
/// Stop grace of task containers: the tiers stop instances themselves before removing them, so
/// whatever is still running at removal is a leftover to end quickly, not a process to drain.
const STOP_GRACE: Duration = Duration::from_secs(1);
/// Where scenario containers find the socket.
const SOCKET_IN_CONTAINER: &str = "/var/run/docker.sock";
/// The swarm's predefined network that shares the host's network namespace.
const HOST_NETWORK: &str = "host";
/// The bridge Swarm connects overlay-attached containers to for traffic leaving the overlay.
const GWBRIDGE: &str = "docker_gwbridge";

/// What was seen of an instance's task while it started.
#[derive(Debug, Clone, Default)]
struct TaskTrace {
    task_id: Option<String>,
    /// (state, wall µs) in the order first seen.
    states: Vec<(String, i64)>,
}

/// This engine's place in its swarm, read once at connect: how many nodes there are decides
/// whether children can dial loopback, and a scenario pins its actions to its own node.
#[derive(Debug, Clone, Default)]
struct Place {
    nodes: u32,
    node_id: String,
    /// The address this node advertises to the swarm (`--advertise-addr`): routable from every
    /// other node, so that is where a child on another node dials a host-networked parent.
    node_addr: String,
    /// The swarm's dispatcher heartbeat (how soon a lost node is reported down), read only on
    /// more than one node.
    heartbeat: Duration,
}

impl Place {
    fn multi_node(&self) -> bool {
        self.nodes > 1
    }
}

#[derive(Debug)]
pub struct SwarmRuntime {
    /// The group's `swarm` table: network, restart policy, placement.
    options: SwarmOptions,
    place: Place,
    /// Node ID → hostname, for the `node` column of instances.csv.
    node_names: Mutex<HashMap<String, String>>,
    /// Container-level control (pause/resume/kill of a task's container), where this process
    /// runs, gateways, and label-based removal of containers and networks.
    docker: DockerRuntime,
    /// Image tag → image ID, resolved once per tag.
    image_ids: Mutex<HashMap<String, String>>,
    /// Overlay networks known to exist (also held across a create so two launches don't race).
    networks: Mutex<HashSet<String>>,
    /// What was seen of each service's task while it started, for `native_times` and control.
    tracker: Arc<Tracker>,
}

/// One service being (or done being) tracked.
#[derive(Debug)]
struct Tracked {
    trace: TaskTrace,
    /// The node the task was assigned to.
    node_id: Option<String>,
    /// The task's container, once it runs.
    container: Option<String>,
    /// Running, ended, or given up on: no longer polled.
    settled: bool,
    since: Instant,
}

#[derive(Debug, Default)]
struct TrackerState {
    services: HashMap<String, Tracked>,
    /// Whether the poll loop runs (it stops when nothing is left to poll).
    polling: bool,
}

/// Polls the tasks of all starting services together: one list call per [`POLL`] however many
/// tasks start at once, so that a thousand starts do not cost a thousand pollers.
#[derive(Debug)]
struct Tracker {
    client: bollard::Docker,
    state: std::sync::Mutex<TrackerState>,
    /// The poll loop, tracked so the end of a run can stop it and wait for it.
    tasks: TaskTracker,
    stop: CancellationToken,
}

impl Tracker {
    fn lock(&self) -> std::sync::MutexGuard<'_, TrackerState> {
        self.state.lock().expect("tracker lock")
    }

    /// Start tracking `service`'s task; spawns the poll loop unless it runs.
    fn track(self: &Arc<Self>, service: &str) {
        let mut st = self.lock();
        st.services.insert(
            service.to_owned(),
            Tracked {
                trace: TaskTrace::default(),
                node_id: None,
                container: None,
                settled: false,
                since: Instant::now(),
            },
        );
        if !st.polling {
            st.polling = true;
            let (this, stop) = (self.clone(), self.stop.clone());
            self.tasks.spawn(async move {
                tokio::select! {
                    () = this.poll_loop() => {}
                    () = stop.cancelled() => {}
                }
            });
        }
    }

    fn forget(&self, service: &str) {
        self.lock().services.remove(service);
    }

    /// Stop the poll loop and wait until it has (the end of a run: nothing left to time).
    async fn shutdown(&self) {
        self.stop.cancel();
        self.tasks.close();
        self.tasks.wait().await;
    }

    async fn poll_loop(self: Arc<Self>) {
        let mut tick = tokio::time::interval(POLL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let unsettled: Vec<String> = {
                let mut st = self.lock();
                let ids: Vec<String> =
                    st.services.iter().filter(|(_, t)| !t.settled).map(|(id, _)| id.clone()).collect();
                if ids.is_empty() {
                    // Decided under the lock `track` takes, so no service is left unpolled.
                    st.polling = false;
                    return;
                }
                ids
            };
            for chunk in unsettled.chunks(TRACK_BATCH) {
                let filters = HashMap::from([("service".to_owned(), chunk.to_vec())]);
                let tasks = match self.client.list_tasks(Some(ListTasksOptions { filters: Some(filters) })).await {
                    Ok(t) => t,
                    Err(e) => {
                        tracing::debug!("listing starting tasks: {e}");
                        continue;
                    }
                };
                let mut by_service: HashMap<String, Vec<Task>> = HashMap::new();
                for t in tasks {
                    by_service.entry(t.service_id.clone().unwrap_or_default()).or_default().push(t);
                }
                let mut st = self.lock();
                for (service, tasks) in by_service {
                    let (Some(tracked), Some(task)) = (st.services.get_mut(&service), newest(tasks)) else { continue };
                    observe(&mut tracked.trace, &task);
                    if let Some(node) = task.node_id.clone().filter(|n| !n.is_empty()) {
                        tracked.node_id = Some(node);
                    }
                    let status = task.status.unwrap_or_default();
                    match status.state {
                        Some(TaskState::RUNNING) => {
                            tracked.container =
                                status.container_status.and_then(|c| c.container_id).filter(|c| !c.is_empty());
                            tracked.settled = true;
                        }
                        Some(s) if is_terminal(s) => tracked.settled = true,
                        _ => {}
                    }
                }
                for t in st.services.values_mut() {
                    if t.since.elapsed() > TRACK_AT_MOST {
                        t.settled = true;
                    }
                }
            }
        }
    }
}

/// As an error of the swarm runtime, not the docker one (the message names the right runtime).
fn swarm_kind(e: RuntimeError) -> RuntimeError {
    match e {
        RuntimeError::Unavailable { source, .. } => RuntimeError::Unavailable { runtime: crate::SWARM.to_owned(), source },
        e => e,
    }
}

fn unavailable(source: impl Into<stampede_runtime::BoxError>) -> RuntimeError {
    RuntimeError::Unavailable { runtime: crate::SWARM.to_owned(), source: source.into() }
}

/// `stampede-<run>`: the run's overlay network.
pub fn overlay_name(run_id: &str) -> String {
    format!("stampede-{run_id}")
}

fn restart_condition(s: &str) -> Result<TaskSpecRestartPolicyConditionEnum, String> {
    match s {
        "none" => Ok(TaskSpecRestartPolicyConditionEnum::NONE),
        "on-failure" => Ok(TaskSpecRestartPolicyConditionEnum::ON_FAILURE),
        "any" => Ok(TaskSpecRestartPolicyConditionEnum::ANY),
        other => Err(format!("restart condition `{other}`: allowed are none, on-failure, any")),
    }
}

fn is_terminal(s: TaskState) -> bool {
    matches!(
        s,
        TaskState::COMPLETE
            | TaskState::SHUTDOWN
            | TaskState::FAILED
            | TaskState::REJECTED
            | TaskState::REMOVE
            | TaskState::ORPHANED
    )
}

/// Record what one poll saw of `task`: `new` from its creation time, then its current state
/// with the task's own timestamp, the first time that state is seen.
fn observe(trace: &mut TaskTrace, task: &Task) {
    if trace.task_id != task.id {
        // A replacement task (restart policy other than none): its history is the one that counts.
        *trace = TaskTrace { task_id: task.id.clone(), states: Vec::new() };
        if let Some(t) = task.created_at.as_deref().and_then(parse_started_at) {
            trace.states.push(("new".to_owned(), t));
        }
    }
    let Some(status) = &task.status else { return };
    let (Some(state), Some(t)) = (status.state, status.timestamp.as_deref().and_then(parse_started_at)) else { return };
    let name = state.to_string();
    if !trace.states.iter().any(|(s, _)| *s == name) {
        trace.states.push((name, t));
    }
}

/// The newest task of a service's list (a replaced task's successor comes later).
fn newest(tasks: Vec<Task>) -> Option<Task> {
    tasks.into_iter().max_by_key(|t| t.created_at.as_deref().and_then(parse_started_at).unwrap_or(0))
}

impl SwarmRuntime {
    /// Connect like [`DockerRuntime::connect`] (unix socket, negotiated API version). Whether
    /// the engine is a swarm manager is checked by `preflight`.
    pub async fn connect() -> Result<Self, RuntimeError> {
        let rt = DockerRuntime::connect().await.map(Self::with_docker).map_err(swarm_kind)?;
        Ok(rt.discover().await)
    }

    /// [`connect`](Self::connect) to the daemon socket at `socket`.
    pub async fn connect_to(socket: &str) -> Result<Self, RuntimeError> {
        let rt = DockerRuntime::connect_to(socket).await.map(Self::with_docker).map_err(swarm_kind)?;
        Ok(rt.discover().await)
    }

    /// Read this engine's place in its swarm. An engine that does not answer or is in no swarm
    /// keeps the single-node defaults: `preflight` says what is wrong with it.
    async fn discover(mut self) -> Self {
        if let Ok(info) = self.client().info().await {
            let swarm = info.swarm.unwrap_or_default();
            self.place = Place {
                nodes: swarm.nodes.unwrap_or(0).max(0) as u32,
                node_id: swarm.node_id.unwrap_or_default(),
                node_addr: swarm.node_addr.unwrap_or_default(),
                heartbeat: Duration::ZERO,
            };
            if self.place.multi_node() {
                self.place.heartbeat = self.heartbeat().await;
            }
        }
        self
    }

    pub fn with_docker(docker: DockerRuntime) -> Self {
        Self {
            options: SwarmOptions::default(),
            place: Place::default(),
            node_names: Mutex::new(HashMap::new()),
            tracker: Arc::new(Tracker {
                client: docker.client().clone(),
                state: Default::default(),
                tasks: TaskTracker::new(),
                stop: CancellationToken::new(),
            }),
            docker,
            image_ids: Mutex::new(HashMap::new()),
            networks: Mutex::new(HashSet::new()),
        }
    }

    /// Launch services with these options (the group's `swarm` table).
    pub fn with_options(mut self, options: SwarmOptions) -> Self {
        self.options = options;
        self
    }

    /// The bollard client (tests, benchmarks).
    pub fn client(&self) -> &bollard::Docker {
        self.docker.client()
    }

    /// The image ID of `image` (a tag, or already an ID).
    pub async fn image_id(&self, image: &str) -> Result<String, DockerError> {
        if image.starts_with("sha256:") {
            return Ok(image.to_owned());
        }
        let mut ids = self.image_ids.lock().await;
        if let Some(id) = ids.get(image) {
            return Ok(id.clone());
        }
        let inspected = self
            .client()
            .inspect_image(image)
            .await
            .map_err(|source| DockerError::InspectImage { image: image.to_owned(), source })?;
        let id = inspected.id.ok_or_else(|| DockerError::Unreachable(format!("image {image} has no ID")))?;
        ids.insert(image.to_owned(), id.clone());
        Ok(id)
    }

    /// Create the run's attachable overlay network unless it exists.
    async fn ensure_overlay(&self, run_id: &str) -> Result<(), DockerError> {
        let name = overlay_name(run_id);
        let mut known = self.networks.lock().await;
        if known.contains(&name) {
            return Ok(());
        }
        match self.client().inspect_network(&name, None::<InspectNetworkOptions>).await {
            Ok(_) => {}
            Err(e) if status_of(&e) == Some(404) => {
                let request = NetworkCreateRequest {
                    name: name.clone(),
                    driver: Some("overlay".to_owned()),
                    // Attachable, so that a plain container (a docker-runtime driver in compose)
                    // can join the run's network too.
                    attachable: Some(true),
                    labels: Some(HashMap::from([
                        (labels::RUN.to_owned(), run_id.to_owned()),
                        (labels::ROLE.to_owned(), Role::Driver.as_str().to_owned()),
                    ])),
                    ..Default::default()
                };
                match self.client().create_network(request).await {
                    Ok(_) => {}
                    // Created meanwhile by another process (the driver, or a scenario).
                    Err(e) if status_of(&e) == Some(409) => {}
                    Err(source) => return Err(DockerError::CreateNetwork { name, source }),
                }
            }
            Err(source) => return Err(DockerError::InspectNetwork { name, source }),
        }
        known.insert(name);
        Ok(())
    }

    /// Placement constraints of one service: the group's own, then what the role needs. A
    /// scenario creates services, which only a manager can; actions `with_scenario` run on the
    /// node of the scenario launching them (this engine's).
    fn constraints(&self, role: Role) -> Vec<String> {
        let o = &self.options;
        let mut c = o.placement.clone();
        match role {
            Role::Scenario => c.push("node.role==manager".to_owned()),
            Role::Action => {
                c.extend(o.action_placement.iter().cloned());
                if o.actions == ActionPlacement::WithScenario && !self.place.node_id.is_empty() {
                    c.push(format!("node.id=={}", self.place.node_id));
                }
            }
            Role::Driver => {}
        }
        c
    }

    /// The hostname of node `id` as the swarm knows it (its ID when it cannot be inspected:
    /// from a worker, or once the node is gone).
    async fn node_name(&self, id: &str) -> String {
        if let Some(n) = self.node_names.lock().await.get(id) {
            return n.clone();
        }
        let name = match self.client().inspect_node(id).await {
            Ok(n) => n.description.and_then(|d| d.hostname).filter(|h| !h.is_empty()),
            Err(e) => {
                tracing::debug!("inspecting node {id}: {e}");
                None
            }
        };
        let Some(name) = name else { return id.to_owned() };
        self.node_names.lock().await.insert(id.to_owned(), name.clone());
        name
    }

    fn service_spec(&self, spec: &LaunchSpec, options: &SwarmOptions, image_id: String) -> Result<ServiceSpec, String> {
        let labels: HashMap<String, String> = spec.labels().into_iter().collect();
        let network = match options.network {
            SwarmNetwork::Host => HOST_NETWORK.to_owned(),
            SwarmNetwork::Overlay => overlay_name(&spec.run_id),
        };
        let mounts = (spec.role == Role::Scenario).then(|| {
            vec![Mount {
                target: Some(SOCKET_IN_CONTAINER.to_owned()),
                source: Some(self.docker.socket().to_owned()),
                typ: Some(MountTypeEnum::BIND),
                ..Default::default()
            }]
        });
        Ok(ServiceSpec {
            name: Some(names::container_name(spec)),
            labels: Some(labels.clone()),
            task_template: Some(TaskSpec {
                container_spec: Some(TaskSpecContainerSpec {
                    image: Some(image_id),
                    labels: Some(labels),
                    args: Some(spec.args.clone()),
                    env: Some(
                        spec.env
                            .iter()
                            .map(|(k, v)| format!("{k}={v}"))
                            .chain([names::self_env(crate::SWARM, &names::container_name(spec))])
                            .collect(),
                    ),
                    mounts,
                    stop_grace_period: Some(STOP_GRACE.as_nanos() as i64),
                    ..Default::default()
                }),
                restart_policy: Some(TaskSpecRestartPolicy {
                    condition: Some(restart_condition(&options.restart_condition)?),
                    ..Default::default()
                }),
                placement: Some(TaskSpecPlacement {
                    constraints: Some(self.constraints(spec.role)),
                    ..Default::default()
                }),
                networks: Some(vec![NetworkAttachmentConfig { target: Some(network), ..Default::default() }]),
                ..Default::default()
            }),
            mode: Some(ServiceSpecMode {
                replicated: Some(ServiceSpecModeReplicated { replicas: Some(1) }),
                ..Default::default()
            }),
            update_config: Some(ServiceSpecUpdateConfig {
                parallelism: Some(options.update_parallelism as i64),
                ..Default::default()
            }),
            // DNS round robin: nothing dials a service by name (children dial IPs), and a
            // virtual IP would cost an IPVS load balancer per service on overlay networks.
            endpoint_spec: Some(EndpointSpec { mode: Some(EndpointSpecModeEnum::DNSRR), ..Default::default() }),
            ..Default::default()
        })
    }

    async fn tasks_of(&self, service: &str) -> Result<Vec<Task>, DockerError> {
        let filters = HashMap::from([("service".to_owned(), vec![service.to_owned()])]);
        self.client()
            .list_tasks(Some(ListTasksOptions { filters: Some(filters) }))
            .await
            .map_err(|source| DockerError::ListTasks { service: service.to_owned(), source })
    }

    async fn create(&self, spec: &LaunchSpec) -> Result<Launched, DockerError> {
        let name = names::container_name(spec);
        let options = &self.options;
        if options.network == SwarmNetwork::Overlay {
            self.ensure_overlay(&spec.run_id).await?;
        }
        let image_id = self.image_id(&spec.image).await?;
        let service_spec = self.service_spec(spec, options, image_id).map_err(DockerError::Unreachable)?;
        let created = self
            .client()
            .create_service(service_spec, None)
            .await
            .map_err(|source| DockerError::CreateService { name: name.clone(), source })?;
        let created_at = Instant::now();
        let service =
            created.id.ok_or_else(|| DockerError::Unreachable(format!("service {name} created without an ID")))?;

        self.tracker.track(&service);
        Ok(Launched { handle: Handle { id: service, detail: None }, created: Some(created_at), started: created_at })
    }

    /// The container of the instance's task: as the handle or the tracker knows it, else the
    /// newest task's.
    async fn container_of(&self, h: &Handle) -> Result<String, DockerError> {
        if let Some(c) = &h.detail {
            return Ok(c.clone());
        }
        if let Some(c) = self.tracker.lock().services.get(&h.id).and_then(|t| t.container.clone()) {
            return Ok(c);
        }
        newest(self.tasks_of(&h.id).await?)
            .and_then(|t| t.status)
            .and_then(|s| s.container_status)
            .and_then(|c| c.container_id)
            .filter(|c| !c.is_empty())
            .ok_or_else(|| DockerError::NoTaskContainer { service: h.id.clone() })
    }

    /// A handle the docker runtime understands: the task's container.
    async fn container_handle(&self, h: &Handle, op: &'static str) -> Result<Handle, RuntimeError> {
        let id = self.container_of(h).await.map_err(|e| swarm_kind(e.into_control(op, &h.id)))?;
        Ok(Handle { id, detail: Some(format!("task container of service {}", h.id)) })
    }

    /// Whether every node the run may place on holds the image (no registry here, and Swarm
    /// pulls nothing given by ID): a global service of it, whose one task per eligible node runs
    /// `stampede --version` where the image is and is rejected ("No such image") where it is
    /// not. About a second; refused (exit 3) naming the nodes that lack it.
    async fn check_image_on_nodes(&self, image: &str, image_id: &str) -> Result<(), RuntimeError> {
        let probe = format!("stampede-imagecheck-{:08x}", rand::random::<u32>());
        let labels = HashMap::from([
            (labels::RUN.to_owned(), probe.clone()),
            (labels::ROLE.to_owned(), Role::Driver.as_str().to_owned()),
        ]);
        let spec = ServiceSpec {
            name: Some(probe.clone()),
            labels: Some(labels.clone()),
            task_template: Some(TaskSpec {
                container_spec: Some(TaskSpecContainerSpec {
                    image: Some(image_id.to_owned()),
                    labels: Some(labels),
                    args: Some(vec!["--version".to_owned()]),
                    ..Default::default()
                }),
                restart_policy: Some(TaskSpecRestartPolicy {
                    condition: Some(TaskSpecRestartPolicyConditionEnum::NONE),
                    ..Default::default()
                }),
                placement: Some(TaskSpecPlacement { constraints: Some(self.options.placement.clone()), ..Default::default() }),
                ..Default::default()
            }),
            mode: Some(ServiceSpecMode { global: Some(Default::default()), ..Default::default() }),
            endpoint_spec: Some(EndpointSpec { mode: Some(EndpointSpecModeEnum::DNSRR), ..Default::default() }),
            ..Default::default()
        };
        let created = self
            .client()
            .create_service(spec, None)
            .await
            .map_err(|source| unavailable(DockerError::CreateService { name: probe.clone(), source }))?;
        let service = created.id.unwrap_or_else(|| probe.clone());
        let verdict = self.image_probe_verdict(&service).await;
        if let Err(e) = self.client().delete_service(&service).await {
            tracing::warn!("removing the image check service {probe}: {e} (`stampede clean` removes it)");
        }
        let missing = verdict?;
        if missing.is_empty() {
            return Ok(());
        }
        Err(unavailable(format!(
            "image {image} ({image_id}) is not on node(s) {}: with no registry every node needs it loaded, e.g. \
             `stampede image build --node-host unix:///path/to/that/node.sock`, or \
             `docker save {image} | docker -H <node> load`",
            missing.join(", ")
        )))
    }

    /// The nodes whose task of the image-check `service` was refused for a missing image, once
    /// every task has ended (at most [`IMAGE_CHECK_WITHIN`]).
    async fn image_probe_verdict(&self, service: &str) -> Result<Vec<String>, RuntimeError> {
        let deadline = Instant::now() + IMAGE_CHECK_WITHIN;
        loop {
            let tasks = self.tasks_of(service).await.map_err(unavailable)?;
            let ended = |t: &Task| t.status.as_ref().and_then(|s| s.state).is_some_and(is_terminal);
            if !tasks.is_empty() && tasks.iter().all(ended) {
                let mut missing = Vec::new();
                for t in &tasks {
                    let status = t.status.clone().unwrap_or_default();
                    let err = status.err.unwrap_or_default();
                    if status.state != Some(TaskState::COMPLETE) && err.contains("No such image") {
                        let node = t.node_id.clone().unwrap_or_default();
                        missing.push(self.node_name(&node).await);
                    }
                }
                missing.sort();
                return Ok(missing);
            }
            if Instant::now() >= deadline {
                return Err(unavailable(format!(
                    "checking that the image is on every node: its probe tasks did not end within {IMAGE_CHECK_WITHIN:?}"
                )));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The swarm's dispatcher heartbeat period (Swarm's default, 5 s, when it cannot be read).
    async fn heartbeat(&self) -> Duration {
        let period = match self.client().inspect_swarm().await {
            Ok(s) => s.spec.and_then(|s| s.dispatcher).and_then(|d| d.heartbeat_period),
            Err(e) => {
                tracing::debug!("inspecting the swarm: {e}");
                None
            }
        };
        period.filter(|ns| *ns > 0).map_or(Duration::from_secs(5), |ns| Duration::from_nanos(ns as u64))
    }

    /// Engine version and swarm state, e.g. "Docker 20.10.24 (API 1.41), swarm manager, 1 node".
    pub async fn version(&self) -> Result<String, RuntimeError> {
        let engine = self.docker.version().await.map_err(swarm_kind)?;
        let info = self.client().info().await.map_err(|source| {
            swarm_kind(DockerError::Connect { socket: self.docker.socket().to_owned(), source }.into())
        })?;
        let swarm = info.swarm.unwrap_or_default();
        if swarm.local_node_state != Some(LocalNodeState::ACTIVE) {
            let state = swarm.local_node_state.map(|s| s.to_string()).unwrap_or_else(|| "unknown".into());
            return Err(unavailable(format!(
                "this Docker Engine is not part of an active swarm (state `{state}`); make it a single-node \
                 swarm with `docker swarm init --advertise-addr 127.0.0.1`"
            )));
        }
        if swarm.control_available != Some(true) {
            return Err(unavailable(
                "this Docker Engine is a swarm worker; services can only be created on a manager".to_owned(),
            ));
        }
        let nodes = swarm.nodes.map(|n| format!(", {n} node{}", if n == 1 { "" } else { "s" })).unwrap_or_default();
        Ok(format!("{engine}, swarm manager{nodes}"))
    }

    /// Delete the services labelled `filter`; how many.
    async fn remove_services(&self, filter: &str) -> Result<usize, DockerError> {
        let filters = HashMap::from([("label".to_owned(), vec![filter.to_owned()])]);
        let services = self
            .client()
            .list_services(Some(ListServicesOptions { filters: Some(filters), status: None }))
            .await
            .map_err(|source| DockerError::ListServices { filter: filter.to_owned(), source })?;
        let mut removed = 0;
        for id in services.into_iter().filter_map(|s| s.id) {
            match self.client().delete_service(&id).await {
                Ok(()) => removed += 1,
                Err(e) if status_of(&e) == Some(404) => {}
                Err(source) => return Err(DockerError::RemoveService { id, source }),
            }
            self.tracker.forget(&id);
        }
        Ok(removed)
    }

    /// Wait until no container labelled `filter` exists (the agent removes a deleted service's
    /// containers after their stop grace), at most `within`.
    async fn wait_containers_gone(&self, filter: &str, within: Duration) -> Result<(), DockerError> {
        let filters = HashMap::from([("label", vec![filter])]);
        let deadline = Instant::now() + within;
        loop {
            let left = self
                .client()
                .list_containers(Some(ListContainersOptionsBuilder::new().all(true).filters(&filters).build()))
                .await
                .map_err(|source| DockerError::ListContainers { filter: filter.to_owned(), source })?;
            if left.is_empty() || Instant::now() >= deadline {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

#[async_trait]
impl Runtime for SwarmRuntime {
    fn name(&self) -> &'static str {
        crate::SWARM
    }

    /// Only on a single node: on more, a host-networked child may run on another machine.
    fn children_dial_loopback(&self) -> bool {
        self.options.network == SwarmNetwork::Host && !self.place.multi_node()
    }

    async fn preflight(&self, image: &str) -> Result<String, RuntimeError> {
        let version = self.version().await?;
        // The docker runtime's check names the build command when the image is missing.
        self.docker.preflight(image).await.map_err(swarm_kind)?;
        let id = self.image_id(image).await.map_err(unavailable)?;
        if self.place.multi_node() {
            self.check_image_on_nodes(image, &id).await?;
        }
        Ok(version)
    }

    /// Host networking: loopback. Overlay: from a task on the run's overlay network, our address
    /// there; from the host (a host-side driver), the `docker_gwbridge` gateway: every
    /// overlay-attached container is also on that bridge, and a packet to a host address is
    /// delivered locally, so the host is reachable there. Before the first overlay task exists
    /// the bridge does not, and the default bridge's gateway is used (also a host address).
    async fn callback_host(&self) -> Result<String, RuntimeError> {
        let network = self.options.network;
        let location = self.docker.location().await.map_err(|e| swarm_kind(e.into()))?;
        let nodes = self.place.nodes;
        let resolved = match (location, network) {
            // On more than one node a child may run on another machine. This node's address in
            // the swarm (its `--advertise-addr`) reaches us from every node when it is ours: this
            // process runs on the node (a host-networked scenario task, a driver on a manager).
            // Anywhere else (a bridged container, a machine outside the swarm) only the user
            // knows an address the nodes reach: `--advertise`.
            (SelfLocation::Host, _) if self.place.multi_node()
                && self.place.node_addr.parse().is_ok_and(stampede_runtime::is_local_address) => {
                Ok(self.place.node_addr.clone())
            }
            (SelfLocation::Host | SelfLocation::Container { .. }, SwarmNetwork::Host) if self.place.multi_node() => Err(format!(
                "this swarm has {nodes} nodes, so its tasks may run on other machines, and this process does not run \
                 on the node it talks to (its address there, `{}`, is not one of ours): give --advertise with an \
                 address of this machine that every node reaches",
                self.place.node_addr
            )),
            (SelfLocation::Host, SwarmNetwork::Overlay) if self.place.multi_node() => Err(format!(
                "this swarm has {nodes} nodes, and this process is outside the run's overlay network and not on the \
                 node it talks to: give --advertise with an address of this machine that every node reaches"
            )),
            (SelfLocation::Host, SwarmNetwork::Host) => Ok("127.0.0.1".to_owned()),
            (SelfLocation::Host, SwarmNetwork::Overlay) => match self.docker.gateway_of(GWBRIDGE).await {
                Ok(gw) => Ok(gw),
                Err(_) => self.docker.host_gateway().await.ok_or_else(|| {
                    "neither docker_gwbridge nor the default bridge has a gateway on this host; use swarm host networking"
                        .to_owned()
                }),
            },
            (loc @ SelfLocation::Container { .. }, SwarmNetwork::Host) => {
                callback::resolve(loc, DockerNetwork::Host, None)
            }
            // The run's overlay is the one `stampede-…` network a scenario task is on.
            (loc @ SelfLocation::Container { .. }, SwarmNetwork::Overlay) => {
                callback::resolve(loc, DockerNetwork::PerScenario, None)
            }
        };
        resolved.map_err(unavailable)
    }

    async fn prepare(&self, spec: &LaunchSpec) -> Result<(), RuntimeError> {
        if self.options.network == SwarmNetwork::Overlay {
            self.ensure_overlay(&spec.run_id).await.map_err(|e| swarm_kind(e.into_launch(&spec.instance_id)))?;
        }
        Ok(())
    }

    async fn launch(&self, spec: &LaunchSpec) -> Result<Launched, RuntimeError> {
        self.create(spec).await.map_err(|e| swarm_kind(e.into_launch(&spec.instance_id)))
    }

    async fn pause(&self, h: &Handle) -> Result<(), RuntimeError> {
        let c = self.container_handle(h, "pause").await?;
        self.docker.pause(&c).await.map_err(swarm_kind)
    }

    async fn resume(&self, h: &Handle) -> Result<(), RuntimeError> {
        let c = self.container_handle(h, "resume").await?;
        self.docker.resume(&c).await.map_err(swarm_kind)
    }

    async fn kill(&self, h: &Handle) -> Result<(), RuntimeError> {
        let c = self.container_handle(h, "kill").await?;
        self.docker.kill(&c).await.map_err(swarm_kind)
    }

    async fn remove(&self, h: &Handle) -> Result<(), RuntimeError> {
        self.tracker.forget(&h.id);
        match self.client().delete_service(&h.id).await {
            Ok(()) => Ok(()),
            Err(e) if status_of(&e) == Some(404) => Ok(()),
            Err(source) => {
                Err(swarm_kind(DockerError::RemoveService { id: h.id.clone(), source }.into_control("remove", &h.id)))
            }
        }
    }

    /// The image's ID: a scenario on another node resolving the tag there could get another
    /// image, or none.
    async fn portable_image(&self, image: &str) -> Result<String, RuntimeError> {
        self.image_id(image).await.map_err(unavailable)
    }

    /// A task on a node the swarm no longer reaches: "node lost". Only on more than one node
    /// (a single node that is gone takes the caller with it). The node is reported down some
    /// heartbeats after it went while its tasks' connections drop at once, so this watches the
    /// node for up to [`NODE_DOWN_WITHIN`] heartbeats before it says nothing is known.
    async fn why_lost(&self, h: &Handle) -> Option<String> {
        if !self.place.multi_node() {
            return None;
        }
        let deadline = Instant::now() + self.place.heartbeat.mul_f64(NODE_DOWN_WITHIN) + NODE_DOWN_SLACK;
        let tracked = self.tracker.lock().services.get(&h.id).and_then(|t| t.node_id.clone());
        let node_id = match tracked {
            Some(n) => n,
            None => self.tasks_of(&h.id).await.ok().and_then(newest).and_then(|t| t.node_id)?,
        };
        loop {
            let node = self.client().inspect_node(&node_id).await.ok();
            match node.and_then(|n| n.status).and_then(|s| s.state) {
                Some(NodeState::READY) | None => {}
                Some(state) => return Some(format!("node lost: {} is {state}", self.node_name(&node_id).await)),
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Deletes this task's own service: the manager records it and stops the task (SIGTERM,
    /// then SIGKILL after the grace period), so the service cannot linger once the caller exits.
    async fn remove_self(&self, name: &str) -> Result<(), RuntimeError> {
        self.remove(&Handle { id: name.to_owned(), detail: None }).await
    }

    async fn native_times(&self, h: &Handle) -> NativeTimes {
        let task_states = self.tracker.lock().services.get(&h.id).map(|t| t.trace.states.clone()).unwrap_or_default();
        let started_unix_us = match self.container_of(h).await {
            Ok(c) => match self.client().inspect_container(&c, None::<InspectContainerOptions>).await {
                Ok(c) => c.state.and_then(|s| s.started_at).as_deref().and_then(parse_started_at),
                Err(e) => {
                    tracing::debug!("no StartedAt for service {}: {e}", h.id);
                    None
                }
            },
            Err(e) => {
                tracing::debug!("no StartedAt: {e}");
                None
            }
        };
        let node_id = self.tracker.lock().services.get(&h.id).and_then(|t| t.node_id.clone());
        let node = match node_id {
            Some(id) => Some(self.node_name(&id).await),
            None => None,
        };
        NativeTimes { started_unix_us, states: task_states, source: "swarm_task_status", node, ..Default::default() }
    }

    /// The task is `running` and so is its container (a killed container shows before its task
    /// state catches up).
    async fn is_running(&self, h: &Handle) -> bool {
        let task = match self.tasks_of(&h.id).await {
            Ok(tasks) => newest(tasks),
            Err(_) => return false,
        };
        let status = task.and_then(|t| t.status).unwrap_or_default();
        if status.state != Some(TaskState::RUNNING) {
            return false;
        }
        let Some(container) = status.container_status.and_then(|c| c.container_id) else { return false };
        self.client()
            .inspect_container(&container, None::<InspectContainerOptions>)
            .await
            .ok()
            .and_then(|c| c.state)
            .and_then(|s| s.running)
            .unwrap_or(false)
    }

    /// Services first (their containers go with them), then whatever containers are still
    /// there after [`CONTAINERS_GONE_WITHIN`] (force-removed), then networks, retried while
    /// Swarm still counts a removed task on them.
    async fn filler_image(&self, image: &str, filler_mb: u32) -> Result<String, RuntimeError> {
        self.docker.filler_image(image, filler_mb).await.map_err(swarm_kind)
    }

    async fn remove_run(&self, run_id: Option<&str>) -> Result<usize, RuntimeError> {
        // The run is over: no task state is left to time.
        self.tracker.shutdown().await;
        let filter = match run_id {
            Some(id) => format!("{}={id}", labels::RUN),
            None => labels::RUN.to_owned(),
        };
        let cleanup = |e: DockerError| e.into_cleanup(run_id.unwrap_or("*"));
        let mut removed = self.remove_services(&filter).await.map_err(cleanup)?;
        // Only deleted services' containers go away by themselves; anything else labelled
        // (a plain container of a Docker run) would just be waited for in vain.
        if removed > 0 {
            self.wait_containers_gone(&filter, CONTAINERS_GONE_WITHIN).await.map_err(cleanup)?;
        }
        let deadline = Instant::now() + NETWORK_FREED_WITHIN;
        loop {
            match self.docker.remove_labelled(&filter).await {
                Ok(n) => {
                    removed += n;
                    break;
                }
                Err(e @ DockerError::RemoveNetwork { .. }) if Instant::now() < deadline => {
                    tracing::debug!("retrying: {e}");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => return Err(cleanup(e)),
            }
        }
        let mut networks = self.networks.lock().await;
        match run_id {
            Some(id) => {
                networks.remove(&overlay_name(id));
            }
            None => networks.clear(),
        }
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard::models::TaskStatus;

    fn task(id: &str, created: &str, state: TaskState, at: &str) -> Task {
        Task {
            id: Some(id.into()),
            created_at: Some(created.into()),
            status: Some(TaskStatus { state: Some(state), timestamp: Some(at.into()), ..Default::default() }),
            ..Default::default()
        }
    }

    #[test]
    fn observe_keeps_the_first_sighting_of_each_state_with_the_tasks_own_time() {
        let mut trace = TaskTrace::default();
        observe(
            &mut trace,
            &task("t1", "2024-05-01T12:00:00.000001Z", TaskState::PENDING, "2024-05-01T12:00:00.000100Z"),
        );
        observe(
            &mut trace,
            &task("t1", "2024-05-01T12:00:00.000001Z", TaskState::PENDING, "2024-05-01T12:00:00.000100Z"),
        );
        observe(
            &mut trace,
            &task("t1", "2024-05-01T12:00:00.000001Z", TaskState::RUNNING, "2024-05-01T12:00:00.300000Z"),
        );
        let names: Vec<&str> = trace.states.iter().map(|(s, _)| s.as_str()).collect();
        assert_eq!(names, ["new", "pending", "running"]);
        assert_eq!(trace.states[2].1 - trace.states[0].1, 299_999);
    }

    #[test]
    fn a_replacement_task_starts_a_new_trace() {
        let mut trace = TaskTrace::default();
        observe(&mut trace, &task("t1", "2024-05-01T12:00:00Z", TaskState::FAILED, "2024-05-01T12:00:01Z"));
        observe(&mut trace, &task("t2", "2024-05-01T12:00:02Z", TaskState::STARTING, "2024-05-01T12:00:03Z"));
        assert_eq!(trace.task_id.as_deref(), Some("t2"));
        assert_eq!(trace.states.iter().map(|(s, _)| s.as_str()).collect::<Vec<_>>(), ["new", "starting"]);
    }

    #[test]
    fn restart_conditions() {
        assert_eq!(restart_condition("none"), Ok(TaskSpecRestartPolicyConditionEnum::NONE));
        assert_eq!(restart_condition("on-failure"), Ok(TaskSpecRestartPolicyConditionEnum::ON_FAILURE));
        assert!(restart_condition("always").unwrap_err().contains("allowed"));
    }
}
