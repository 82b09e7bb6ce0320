//! The `docker = { … }` and `swarm = { … }` tables of a scenario group: their types, their
//! defaults, and how each is read (through the parser's [`OptionsTable`], so a mistake is
//! reported with file, line and field like any other).
//!
//! ```toml
//! docker = { network = "host" }   # host (default) | bridge | per_scenario
//! swarm = { network = "host", mapping = "service_per_action", restart_condition = "none",
//!           update_parallelism = 0, placement = [], actions = "with_scenario",
//!           action_placement = [] }
//!   # network host|overlay; mapping service_per_action (replicated_service is refused: see
//!   # README, Swarm); restart_condition none|on-failure|any; placement: constraints of every
//!   # service, such as "node.labels.zone==a"; actions with_scenario|spread; action_placement:
//!   # constraints of action services only
//! ```

use serde::{Deserialize, Serialize};
use stampede_core::scenario::OptionsTable;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum DockerNetwork {
    /// `--network host`: fastest starts; children reach parents on 127.0.0.1.
    #[default]
    Host,
    /// Docker's default bridge: every container of the group on `docker0` (at most 1023).
    Bridge,
    /// One user-defined bridge network per scenario, holding that scenario and its actions.
    PerScenario,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct DockerOptions {
    pub network: DockerNetwork,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum SwarmNetwork {
    #[default]
    Host,
    /// One overlay network for the run.
    Overlay,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum SwarmMapping {
    /// One service per action: per-instance control, one task each.
    #[default]
    ServicePerAction,
}

/// Where a scenario's action services may run. Scenarios themselves are spread over the
/// swarm's managers by its scheduler (they create services, which only a manager can).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ActionPlacement {
    /// On their scenario's node (`node.id==` its node): traffic stays on one machine, and the
    /// scenario can pause and kill their containers through its own node's engine.
    #[default]
    WithScenario,
    /// Wherever the scheduler puts them: actions dial their scenario across nodes. A scenario
    /// cannot pause or kill a container on another node (the Engine API of that node is not
    /// its own), so pause and kill steps are refused with it.
    Spread,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SwarmOptions {
    pub network: SwarmNetwork,
    pub mapping: SwarmMapping,
    /// Restart policy condition: "none", "on-failure" or "any".
    pub restart_condition: String,
    /// Update parallelism of each service (0 = all at once).
    pub update_parallelism: u64,
    /// Placement constraints of every service, e.g. `node.labels.zone==a`.
    pub placement: Vec<String>,
    /// Where action services run relative to their scenario.
    pub actions: ActionPlacement,
    /// Constraints of action services only (beside `placement`).
    pub action_placement: Vec<String>,
}

impl Default for SwarmOptions {
    fn default() -> Self {
        SwarmOptions {
            network: SwarmNetwork::Host,
            mapping: SwarmMapping::ServicePerAction,
            restart_condition: "none".to_owned(),
            update_parallelism: 0,
            placement: Vec::new(),
            actions: ActionPlacement::WithScenario,
            action_placement: Vec::new(),
        }
    }
}

pub(crate) fn read_docker(t: &mut OptionsTable<'_>) -> DockerOptions {
    t.allow(&["network"]);
    let mut o = DockerOptions::default();
    let choices = [("host", DockerNetwork::Host), ("bridge", DockerNetwork::Bridge), ("per_scenario", DockerNetwork::PerScenario)];
    if let Some(n) = t.keyword("network", &choices) {
        o.network = n;
    }
    o
}

pub(crate) fn read_swarm(t: &mut OptionsTable<'_>) -> SwarmOptions {
    t.allow(&["network", "mapping", "restart_condition", "update_parallelism", "placement", "actions", "action_placement"]);
    let mut o = SwarmOptions::default();
    if let Some(n) = t.keyword("network", &[("host", SwarmNetwork::Host), ("overlay", SwarmNetwork::Overlay)]) {
        o.network = n;
    }
    if t.has("mapping") {
        // One service of A replicas shares one environment (no per-action identity) and a
        // killed replica's slot stays dead under restart policy none: per-action
        // pause/kill/relaunch, which stampede measures, cannot work on it.
        let choices = [("service_per_action", Some(SwarmMapping::ServicePerAction)), ("replicated_service", None)];
        match t.keyword("mapping", &choices) {
            Some(Some(m)) => o.mapping = m,
            Some(None) => t.problem(
                "mapping",
                "\"replicated_service\" is not supported: its replicas share one environment and cannot \
                 be paused, killed or relaunched one by one; use \"service_per_action\" (see README, Swarm)",
            ),
            None => {}
        }
    }
    let conditions = [("none", "none"), ("on-failure", "on-failure"), ("any", "any")];
    if let Some(c) = t.keyword("restart_condition", &conditions) {
        o.restart_condition = c.to_owned();
    }
    if let Some(p) = t.integer("update_parallelism", 0, i64::MAX) {
        o.update_parallelism = p as u64;
    }
    if let Some(p) = t.string_list("placement", "[\"node.role==manager\"]") {
        o.placement = p;
    }
    if let Some(a) = t.keyword("actions", &[("with_scenario", ActionPlacement::WithScenario), ("spread", ActionPlacement::Spread)]) {
        o.actions = a;
    }
    if let Some(p) = t.string_list("action_placement", "[\"node.labels.stampede.node==node2\"]") {
        o.action_placement = p;
    }
    o
}

/// Options as the registry hands them to `connect` (validated JSON, or null for defaults).
pub(crate) fn decode<T: for<'de> Deserialize<'de> + Default>(v: &serde_json::Value) -> T {
    // The JSON came from `read_*` above (or an older results file): a shape it cannot have is a
    // bug, and the defaults are the safe answer.
    serde_json::from_value(v.clone()).unwrap_or_default()
}
