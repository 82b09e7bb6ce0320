//! The one trait every platform implements, and the `process` runtime.
//!
//! Tiers never call a platform API directly: they hold an `Arc<dyn Runtime>` and ask it to
//! launch, pause, resume, kill and remove instances, and to remove everything of one run by
//! label. Each launch returns the runtime's own timings where the platform has them.
//!
//! - [`Runtime`], [`LaunchSpec`], [`Launched`], [`Handle`], [`RuntimeError`]: the contract (this file).
//! - [`process`]: children of the same binary — the embedded default and the zero-container
//!   baseline.
//!
//! Container runtimes (Docker, Swarm) live in the `stampede-docker` crate so that this crate,
//! and everything that only needs processes, stays free of bollard.

pub mod process;

use async_trait::async_trait;
use std::collections::BTreeMap;
use std::time::Instant;

use stampede_core::measure::Role;
use stampede_core::scenario::{DockerNetwork, RuntimeKind, SwarmOptions};

/// Environment variables a child reads to find its parent. The same names in every runtime.
pub mod env {
    /// `ws://host:port/` of the parent's websocket server.
    pub const CALLBACK: &str = "STAMPEDE_CALLBACK";
    pub const TOKEN: &str = "STAMPEDE_TOKEN";
    pub const INSTANCE_ID: &str = "STAMPEDE_INSTANCE_ID";
    pub const RUN_ID: &str = "STAMPEDE_RUN_ID";
    /// Host a scenario advertises to its actions (its callback host), when its parent knows better.
    pub const ADVERTISE: &str = "STAMPEDE_ADVERTISE";
    /// Which fresh instance of an action slot this is (one-shot, churn); names must differ.
    pub const INCARNATION: &str = "STAMPEDE_INCARNATION";
}

/// Label keys carried by everything stampede creates.
pub mod labels {
    pub const RUN: &str = "stampede.run";
    pub const ROLE: &str = "stampede.role";
    pub const GROUP: &str = "stampede.group";
    pub const SCENARIO: &str = "stampede.scenario";
    pub const ACTION: &str = "stampede.action";
}

/// Where a container-runtime instance is networked; ignored by the process runtime.
#[derive(Debug, Clone, PartialEq)]
pub enum Placement {
    Docker(DockerNetwork),
    Swarm(SwarmOptions),
    None,
}

/// Everything a runtime needs to launch one instance.
#[derive(Debug, Clone)]
pub struct LaunchSpec {
    pub run_id: String,
    pub role: Role,
    pub instance_id: String,
    pub group: u32,
    pub scenario: u32,
    pub action: Option<u32>,
    /// Image tag or ID (container runtimes).
    pub image: String,
    /// Subcommand and arguments of the `stampede` binary (`["action"]`, `["scenario"]`).
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub placement: Placement,
}

impl LaunchSpec {
    /// The labels DESIGN §8 requires on everything created.
    pub fn labels(&self) -> BTreeMap<String, String> {
        let mut l = BTreeMap::new();
        l.insert(labels::RUN.to_owned(), self.run_id.clone());
        l.insert(labels::ROLE.to_owned(), self.role.as_str().to_owned());
        l.insert(labels::GROUP.to_owned(), self.group.to_string());
        l.insert(labels::SCENARIO.to_owned(), self.scenario.to_string());
        if let Some(a) = self.action {
            l.insert(labels::ACTION.to_owned(), a.to_string());
        }
        l
    }
}

/// A launched instance as its runtime knows it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Handle {
    /// Pid, container ID or service ID.
    pub id: String,
    /// Runtime-specific second identifier (e.g. the swarm task's container ID once known).
    pub detail: Option<String>,
}

/// What a launch returns.
#[derive(Debug, Clone)]
pub struct Launched {
    pub handle: Handle,
    /// The create call returned (runtimes that separate create and start).
    pub created: Option<Instant>,
    /// The start call returned.
    pub started: Instant,
}

/// The runtime's own timestamps of an instance, read after the fact (wall clock, µs since epoch).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NativeTimes {
    /// Docker `State.StartedAt`.
    pub started_unix_us: Option<i64>,
    /// Swarm task states in order, e.g. ("pending", t).
    pub task_states: Vec<(String, i64)>,
}

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The runtime cannot be used at all (daemon unreachable, image missing): exit code 3.
    #[error("{runtime} runtime unavailable: {reason}")]
    Unavailable { runtime: RuntimeKind, reason: String },
    #[error("launching {instance} failed: {reason}")]
    Launch { instance: String, reason: String },
    #[error("{op} of {id} failed: {reason}")]
    Control { op: &'static str, id: String, reason: String },
    #[error("cleaning up run {run_id} failed: {reason}")]
    Cleanup { run_id: String, reason: String },
}

#[async_trait]
pub trait Runtime: Send + Sync + std::fmt::Debug {
    fn kind(&self) -> RuntimeKind;

    /// Check before any work that the runtime can be used for `spec`'s image; version string.
    async fn preflight(&self, image: &str) -> Result<String, RuntimeError>;

    /// Host that children launched with `placement` use to reach a server in this process.
    async fn callback_host(&self, placement: &Placement) -> Result<String, RuntimeError>;

    /// Prepare what a scenario's instances need (e.g. its own network). Idempotent.
    async fn prepare(&self, _spec: &LaunchSpec) -> Result<(), RuntimeError> {
        Ok(())
    }

    async fn launch(&self, spec: &LaunchSpec) -> Result<Launched, RuntimeError>;
    async fn pause(&self, h: &Handle) -> Result<(), RuntimeError>;
    async fn resume(&self, h: &Handle) -> Result<(), RuntimeError>;
    /// Kill immediately (SIGKILL); returns when the runtime has acted.
    async fn kill(&self, h: &Handle) -> Result<(), RuntimeError>;
    /// Remove what is left of an instance (reap, delete container/service).
    async fn remove(&self, h: &Handle) -> Result<(), RuntimeError>;

    /// The platform's own timestamps for an instance, where it has them.
    async fn native_times(&self, _h: &Handle) -> NativeTimes {
        NativeTimes::default()
    }

    /// Whether the instance is still running (process alive, container running).
    async fn is_running(&self, h: &Handle) -> bool;

    /// Remove everything labelled with this run (all runs when `None`); returns how many.
    async fn remove_run(&self, run_id: Option<&str>) -> Result<usize, RuntimeError>;
}
