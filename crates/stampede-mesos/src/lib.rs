//! The `mesos` runtime: scenarios and actions as Mesos tasks, launched through offers by a
//! framework on the v1 scheduler HTTP API (`/api/v1/scheduler`, JSON).
//!
//! Who launches: every tier that launches instances subscribes as a framework of its own — the
//! driver (`stampede-<run>-driver`) for its scenarios, each scenario (`stampede-<its instance
//! id>`) for its actions — so the master's allocator shares offers among them as among real
//! tenants. The driver's cleanup tears down its own framework and every framework named after
//! the run (through the master's operator endpoint), so nothing of a run outlives it.
//!
//! What lives where:
//!
//! - [`framework`]: [`framework::Framework`], one subscription: the event stream, offers
//!   packed with waiting launches (ACCEPT/DECLINE with the refuse filter), SUPPRESS/REVIVE,
//!   status updates acknowledged, KILL, RECONCILE after a reconnect, TEARDOWN.
//! - [`recordio`]: the stream's framing.
//! - [`runtime`]: [`MesosRuntime`], the `stampede_runtime::Runtime` implementation: preflight
//!   (version, the allocation interval, agents), task infos from launch specs, native phases,
//!   cleanup through the operator endpoints.
//! - [`options`]: the `mesos = { … }` scenario table, its defaults in its module docs.
//! - [`MesosProvider`], [`MesosError`] (this file): the runtime as the binary's registry offers
//!   it, and the errors of this crate.

pub mod framework;
pub mod options;
pub mod recordio;
pub mod runtime;

pub use runtime::MesosRuntime;

use async_trait::async_trait;
use std::sync::Arc;
use std::time::Duration;

use stampede_core::scenario::{Capabilities, OptionsTable, RuntimeInfo};
use stampede_runtime::{Runtime, RuntimeError, RuntimeProvider};

use options::MesosOptions;

/// Catalog name of this runtime.
pub const MESOS: &str = "mesos";

/// The platform's states this runtime reports per task, in order: `offer_wait` is the moment an
/// offer that fits arrived (so `native_phase_offer_wait` is the wait for it), `accepted` when our
/// ACCEPT returned, then the task states from the status updates' own timestamps.
pub const STATES: &[&str] = &["offer_wait", "accepted", "staging", "starting", "running"];
/// The `source` of those rows in native_states.csv, and of the receive times kept beside them.
pub const STATUS_SOURCE: &str = "mesos_task_status";
pub const RECEIVED_SOURCE: &str = "mesos_update_received";

/// The `mesos` runtime in the registry.
#[derive(Debug, Clone, Default)]
pub struct MesosProvider;

#[derive(Debug, thiserror::Error)]
pub enum MesosError {
    #[error("cannot reach the Mesos master for {what}; check mesos = {{ master = \"host:port\" }} and that the master runs there")]
    Http { what: String, source: runtime::BoxError },
    #[error("the Mesos master refused {what} (HTTP {status}): {message}")]
    Refused { what: String, status: u16, message: String },
    #[error(
        "the Mesos master refused the framework: {0}; check mesos = {{ role = \"…\" }} and whether the master wants \
             frameworks to authenticate (--authenticate_frameworks)"
    )]
    FrameworkRefused(String),
    #[error("this master is not the leader; the leading master is {0}: point mesos.master at it")]
    NotLeader(String),
    #[error("the Mesos master spoke unexpectedly: {0}")]
    Protocol(String),
    #[error("{0}")]
    Down(String),
    #[error("the Mesos master has no agent registered: start one (mesos-agent --master=…) before the run")]
    NoAgents,
    #[error("task {task} was not killed {after:?} after KILL")]
    NotKilled { task: String, after: Duration },
    #[error("framework {name} was still registered {after:?} after TEARDOWN")]
    NotGone { name: String, after: Duration },
    #[error("{0}")]
    NoCallbackHost(String),
}

impl MesosError {
    pub fn unavailable(self) -> RuntimeError {
        RuntimeError::Unavailable { runtime: MESOS.to_owned(), source: Box::new(self) }
    }

    pub fn into_launch(self, instance: &str) -> RuntimeError {
        RuntimeError::Launch { instance: instance.to_owned(), source: Box::new(self) }
    }

    pub fn into_control(self, op: &'static str, id: &str) -> RuntimeError {
        RuntimeError::Control { op, id: id.to_owned(), source: Box::new(self) }
    }
}

fn json<T: serde::Serialize>(v: &T) -> serde_json::Value {
    serde_json::to_value(v).unwrap_or(serde_json::Value::Null)
}

impl RuntimeInfo for MesosProvider {
    fn name(&self) -> &'static str {
        MESOS
    }
    /// No pause in Mesos; kill is KILL with no grace period. A launch holds its slot from the
    /// wait for an offer until the agent reports the task running, so the slots bound what
    /// the agents start at once (each task is an executor process and, with the Docker
    /// containerizer, a container): eight per tier, 32 per run. One offer takes every launch
    /// waiting that fits.
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            pause_resume: false,
            kill: true,
            image: true,
            image_filler: false,
            default_start_concurrency: 8,
            run_start_concurrency: 32,
            native_states: STATES,
            // Tasks run on the agents, wherever those are: nothing for the host preflight.
            threads_per_instance: 0,
            memory_per_instance_kib: 0,
        }
    }
    fn read_options(&self, table: &mut OptionsTable<'_>) -> serde_json::Value {
        json(&options::read(table))
    }
    fn default_options(&self) -> serde_json::Value {
        json(&MesosOptions::default())
    }
}

#[async_trait]
impl RuntimeProvider for MesosProvider {
    async fn connect(&self, o: &serde_json::Value) -> Result<Arc<dyn Runtime>, RuntimeError> {
        Ok(Arc::new(MesosRuntime::new(options::decode(o))))
    }
    /// Every framework named `stampede-<run>-…` (of one run, or all) torn down; `None` when no
    /// master answers at the default address (nothing could be left on it).
    async fn clean(&self, run_id: Option<&str>) -> Result<Option<usize>, RuntimeError> {
        let rt = MesosRuntime::new(MesosOptions::default());
        if rt.version().await.is_err() {
            return Ok(None);
        }
        rt.remove_run(run_id).await.map(Some)
    }
}
