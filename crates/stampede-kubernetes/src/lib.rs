//! The `kubernetes` runtime: scenarios and actions as pods, through the Kubernetes API (kube-rs).
//!
//! What lives where:
//!
//! - [`runtime`]: [`KubernetesRuntime`], the `stampede_runtime::Runtime` implementation —
//!   connect (credentials as kubectl finds them), preflight, the run's namespace and rights,
//!   launch, kill, remove, label-based cleanup.
//! - [`watch`]: [`watch::PodWatch`], one watch per launching tier, timing every pod's
//!   transitions with our own receive time beside the API's condition times, and saying at once
//!   when a pod can never start.
//! - [`pace`]: client-side QPS/burst pacing of API calls (kube-burner's defaults).
//! - [`names`]: pod and namespace names, label selectors (pure functions).
//! - [`options`]: the `kubernetes = { … }` scenario table, its defaults in its module docs.
//! - [`KubernetesProvider`], [`KubeError`] (this file): the runtime as the binary's registry
//!   offers it, and the errors of this crate, named after the API operation that failed.

pub mod names;
pub mod options;
pub mod pace;
pub mod runtime;
pub mod watch;

pub use runtime::KubernetesRuntime;

use async_trait::async_trait;
use std::sync::Arc;
use std::time::Duration;

use stampede_core::scenario::{Capabilities, OptionsTable, RuntimeInfo};
use stampede_runtime::{Runtime, RuntimeError, RuntimeProvider};

use options::KubernetesOptions;

/// Catalog name of this runtime.
pub const KUBERNETES: &str = "kubernetes";

/// The `kubernetes` runtime in the registry.
#[derive(Debug, Clone, Default)]
pub struct KubernetesProvider;

#[derive(Debug, thiserror::Error)]
pub enum KubeError {
    #[error("no Kubernetes credentials: {0}; set KUBECONFIG or write ~/.kube/config (as for kubectl), or run in a pod")]
    Config(String),
    #[error("cannot reach the Kubernetes API server or it refused our credentials: {0}; check the server address \
             and credentials of your kubeconfig's current context (`kubectl version` must work)")]
    Version(#[source] kube::Error),
    #[error("the API server forbids this client to {what}: {reason}; use a context whose user may do it, or \
             kubernetes = {{ namespace = \"…\" }} with a namespace you may use")]
    Forbidden { what: String, reason: String },
    #[error("creating {what} failed")]
    Create { what: String, source: kube::Error },
    #[error("deleting {what} failed")]
    Delete { what: String, source: kube::Error },
    #[error("listing {what} failed")]
    List { what: String, source: kube::Error },
    #[error("reading {what} failed")]
    Get { what: String, source: kube::Error },
    #[error("watching pods labelled {selector} in namespace {namespace} failed")]
    Watch { namespace: String, selector: String, source: kube::Error },
    #[error("{0}")]
    WatchBroken(String),
    #[error("{what} was still there {after:?} after it was deleted")]
    NotGone { what: String, after: Duration },
    #[error("no namespace for pods: the run's namespace is made by the driver (begin_run), or given as kubernetes = {{ namespace = \"…\" }}")]
    NoNamespace,
    #[error("{0}")]
    NoCallbackHost(String),
}

impl KubeError {
    pub fn unavailable(self) -> RuntimeError {
        RuntimeError::Unavailable { runtime: KUBERNETES.to_owned(), source: Box::new(self) }
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

impl RuntimeInfo for KubernetesProvider {
    fn name(&self) -> &'static str {
        KUBERNETES
    }
    /// No pause on Kubernetes (a pod cannot be frozen through the API); kill is a delete with
    /// grace 0. Eight launches in flight per tier: the API server and scheduler pipeline pod
    /// creates well, and the client's QPS pacing (20/s by default) is the real limit.
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            pause_resume: false,
            kill: true,
            image: true,
            image_filler: false,
            default_start_concurrency: 8,
            // The API server sees every scenario's client; the QPS pacing of each is per client.
            run_start_concurrency: 32,
            native_states: watch::STATES,
            // Pods run on the cluster's nodes, not on this host: nothing for the host preflight.
            threads_per_instance: 0,
            memory_per_instance_kib: 0,
        }
    }
    fn read_options(&self, table: &mut OptionsTable<'_>) -> serde_json::Value {
        json(&options::read(table))
    }
    fn default_options(&self) -> serde_json::Value {
        json(&KubernetesOptions::default())
    }
}

#[async_trait]
impl RuntimeProvider for KubernetesProvider {
    async fn connect(&self, o: &serde_json::Value) -> Result<Arc<dyn Runtime>, RuntimeError> {
        Ok(Arc::new(KubernetesRuntime::connect(options::decode(o)).await?))
    }
    /// Every namespace labelled `stampede.run` (of one run, or all); `None` when no cluster is
    /// configured or reachable (nothing could be left on it).
    async fn clean(&self, run_id: Option<&str>) -> Result<Option<usize>, RuntimeError> {
        let Ok(rt) = KubernetesRuntime::connect(KubernetesOptions::default()).await else { return Ok(None) };
        if rt.client().apiserver_version().await.is_err() {
            return Ok(None);
        }
        rt.remove_run(run_id).await.map(Some)
    }
}
