//! The one trait every platform implements, and the `process` runtime.
//!
//! Tiers never call a platform API directly: they hold an `Arc<dyn Runtime>` and ask it to
//! launch, pause, resume, kill and remove instances, and to remove everything of one run by
//! label. Each launch returns the runtime's own timings where the platform has them.
//!
//! - [`Runtime`], [`LaunchSpec`], [`Launched`], [`Handle`], [`RuntimeError`]: the contract (this file).
//! - [`registry`]: [`RuntimeProvider`] (one per runtime crate: its name, capabilities, option
//!   table and how to connect) and the [`Registry`] the binary builds from them. Tiers get a
//!   registry and never name a platform.
//! - [`process`]: children of the same binary — the embedded default and the zero-container
//!   baseline.
//!
//! Every other runtime lives in its own crate (`stampede-docker` for docker and swarm), so that
//! this crate, and everything that only needs processes, stays free of their clients.

pub mod process;
pub mod registry;

pub use registry::{Registry, RuntimeProvider};

use async_trait::async_trait;
use std::collections::BTreeMap;
use std::time::Instant;

use stampede_core::measure::Role;

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
    /// The largest message the child accepts from its parent, in bytes: what the scenario can
    /// legitimately send it (an assignment, a request payload) plus a margin.
    pub const MAX_MESSAGE_BYTES: &str = "STAMPEDE_MAX_MESSAGE_BYTES";
    /// `<runtime>:<name>`: the runtime that launched this instance and its name for it (a
    /// container, a service), so that a scenario whose driver is gone can remove itself
    /// ([`Runtime::remove_self`](super::Runtime::remove_self)). Set by runtimes whose instances
    /// outlive their process; a process just exits.
    pub const SELF: &str = "STAMPEDE_SELF";
}

/// Label keys carried by everything stampede creates.
pub mod labels {
    pub const RUN: &str = "stampede.run";
    pub const ROLE: &str = "stampede.role";
    pub const GROUP: &str = "stampede.group";
    pub const SCENARIO: &str = "stampede.scenario";
    pub const ACTION: &str = "stampede.action";
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
    /// When the platform says the instance's process started (Docker `State.StartedAt`).
    pub started_unix_us: Option<i64>,
    /// The platform's own states in the order reached, with its names (`pending`, `running`).
    pub states: Vec<(String, i64)>,
    /// Where the state times come from, e.g. `swarm_task_status` (the `source` column of
    /// native_states.csv).
    pub source: &'static str,
    /// The same or similar states from a second, coarser clock kept beside `states` for
    /// comparison (e.g. API timestamps of one-second resolution): rows of native_states.csv
    /// with `reference_source`, never turned into phases.
    pub reference: Vec<(String, i64)>,
    pub reference_source: &'static str,
    /// The machine the platform ran the instance on, by the platform's name for it (a Swarm
    /// node's hostname), where instances may land on more than one.
    pub node: Option<String>,
}

/// Any error a platform client returns, kept whole so its chain can be printed.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The runtime cannot be used at all (daemon unreachable, image missing): exit code 3.
    #[error("the {runtime} runtime cannot be used")]
    Unavailable { runtime: String, source: BoxError },
    #[error("launching {instance} failed")]
    Launch { instance: String, source: BoxError },
    #[error("{op} of {id} failed")]
    Control { op: &'static str, id: String, source: BoxError },
    #[error("cleaning up run {run_id} failed")]
    Cleanup { run_id: String, source: BoxError },
    /// Asked for something its capabilities do not offer (the parser refuses such scenarios;
    /// this is the guard behind it).
    #[error("the {runtime} runtime cannot {what}")]
    Unsupported { runtime: &'static str, what: &'static str },
}

impl RuntimeError {
    /// This error and every cause, `: `-joined, for one line of a CSV or log.
    pub fn chain(&self) -> String {
        error_chain(self)
    }
}

/// Whether `ip` is an address of this network namespace: binding to it succeeds (or fails for
/// another reason than "not available", such as permissions). Where a server could listen for
/// children dialling that address.
pub fn is_local_address(ip: std::net::IpAddr) -> bool {
    match std::net::TcpListener::bind((ip, 0)) {
        Ok(_) => true,
        Err(e) => e.kind() != std::io::ErrorKind::AddrNotAvailable,
    }
}

/// An error and its causes on one line: `launching x failed: creating container y failed: …`.
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let text = c.to_string();
        // Some errors repeat their cause in their own message; say it once.
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        cause = c.source();
    }
    out
}

#[async_trait]
pub trait Runtime: Send + Sync + std::fmt::Debug {
    /// The catalog name (`docker`), for messages and results.
    fn name(&self) -> &'static str;

    /// Check before any work that the runtime can be used for this image; version string.
    async fn preflight(&self, image: &str) -> Result<String, RuntimeError>;

    /// Host that children this runtime launches use to reach a server in this process.
    async fn callback_host(&self) -> Result<String, RuntimeError>;

    /// Whether every child dials its parent on loopback, so the parent may listen on
    /// 127.0.0.1 only (nothing exposed beyond this machine).
    fn children_dial_loopback(&self) -> bool;

    /// Create what every instance of run `run_id` shares (e.g. a namespace and the rights its
    /// scenarios need), once, by the driver after preflight and before any launch; undone by
    /// `remove_run`. A failure means the runtime cannot be used (exit 3).
    async fn begin_run(&self, _run_id: &str) -> Result<(), RuntimeError> {
        Ok(())
    }

    /// Prepare what a scenario's instances need (e.g. its own network). Idempotent.
    async fn prepare(&self, _spec: &LaunchSpec) -> Result<(), RuntimeError> {
        Ok(())
    }

    async fn launch(&self, spec: &LaunchSpec) -> Result<Launched, RuntimeError>;

    /// Freeze an instance (only runtimes whose capabilities say `pause_resume`).
    async fn pause(&self, _h: &Handle) -> Result<(), RuntimeError> {
        Err(RuntimeError::Unsupported { runtime: self.name(), what: "pause instances" })
    }
    async fn resume(&self, _h: &Handle) -> Result<(), RuntimeError> {
        Err(RuntimeError::Unsupported { runtime: self.name(), what: "resume instances" })
    }
    /// Kill immediately (SIGKILL); returns when the runtime has acted.
    async fn kill(&self, h: &Handle) -> Result<(), RuntimeError>;
    /// Remove what is left of an instance (reap, delete container/service).
    async fn remove(&self, h: &Handle) -> Result<(), RuntimeError>;

    /// The platform's own timestamps for an instance, where it has them.
    async fn native_times(&self, _h: &Handle) -> NativeTimes {
        NativeTimes::default()
    }

    /// Resolves, with the platform's reason, once it says the launched instance can never
    /// start (unschedulable, image missing): the launch then fails at once instead of at its
    /// ready timeout. Default: the platform never says so (pending for ever).
    async fn wait_failed(&self, _h: &Handle) -> String {
        std::future::pending().await
    }

    /// Remove the instance this process runs in, named `name` by this runtime (the value it set
    /// in [`env::SELF`]): what a scenario does last when its driver is gone, so a crashed run
    /// leaves no instance behind. May not return: removing a container kills its process.
    /// Default: nothing outlives the process.
    async fn remove_self(&self, _name: &str) -> Result<(), RuntimeError> {
        Ok(())
    }

    /// Whether the instance is still running (process alive, container running).
    async fn is_running(&self, h: &Handle) -> bool;

    /// The name of `image` that instances launched by other tiers (on other machines) must use
    /// to run the very image checked here: for Swarm its ID, the same on every node, where a
    /// tag may name another image or none. The identity by default.
    async fn portable_image(&self, image: &str) -> Result<String, RuntimeError> {
        Ok(image.to_owned())
    }

    /// Why an instance whose connection dropped is gone, when the platform knows better than
    /// the dropped connection: e.g. "node lost: node3 is down". Asked once per lost instance;
    /// may wait (a node is reported down some heartbeats after it went); `None` when the
    /// platform knows nothing more.
    async fn why_lost(&self, _h: &Handle) -> Option<String> {
        None
    }

    /// Remove everything labelled with this run (all runs when `None`); returns how many.
    async fn remove_run(&self, run_id: Option<&str>) -> Result<usize, RuntimeError>;

    /// `image` padded with `filler_mb` MiB (image-size experiments); returns the image to run.
    /// Only runtimes whose capabilities say `image_filler`.
    async fn filler_image(&self, _image: &str, _filler_mb: u32) -> Result<String, RuntimeError> {
        Err(RuntimeError::Unsupported { runtime: self.name(), what: "build a filler image" })
    }
}
