//! Shared by the real-engine tests: a client, the test image, unique run ids, a cleanup guard and
//! a callback listener. Nothing here skips a test: without a reachable Docker daemon or a static
//! binary, tests fail and say what is missing.
#![allow(dead_code)] // each test file uses a different subset

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use bollard::models::{Network, NetworkContainer};
use bollard::query_parameters::InspectNetworkOptions;
use stampede_core::measure::Role;
use stampede_docker::DockerRuntime;
use stampede_runtime::{env, LaunchSpec, Runtime, RuntimeError};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, OnceCell};

/// Tag of the image the tests share; rebuilt (from cache) once per test binary.
pub const TEST_IMAGE: &str = "stampede-test:latest";

pub async fn runtime() -> DockerRuntime {
    DockerRuntime::connect()
        .await
        .unwrap_or_else(|e| panic!("these tests need a running Docker Engine reachable over its unix socket: {e}"))
}

/// The static binary the test image is built from: `$STAMPEDE_STATIC_BIN`, else the workspace's
/// static release build.
pub fn static_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("STAMPEDE_STATIC_BIN") {
        return PathBuf::from(p);
    }
    let built =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..").join(stampede_docker::image::STATIC_BINARY_PATH);
    if built.is_file() {
        return built;
    }
    panic!(
        "these tests need a statically linked stampede binary: set STAMPEDE_STATIC_BIN, or build it with\n    {}\n\
         (until it builds, a stand-in: gcc -static -o /tmp/callback_probe crates/stampede-docker/tests/fixtures/callback_probe.c)",
        stampede_docker::STATIC_BUILD_COMMAND
    )
}

/// The image every test launches, built by `build_image` once per test binary.
pub async fn test_image() -> String {
    static IMAGE: OnceCell<String> = OnceCell::const_new();
    IMAGE
        .get_or_init(|| async {
            let rt = runtime().await;
            let binary = static_binary();
            stampede_docker::build_image(rt.client(), &binary, TEST_IMAGE, 0)
                .await
                .unwrap_or_else(|e| panic!("building the test image from {} failed: {e}", binary.display()))
        })
        .await
        .clone()
}

/// A run id no other test (or test process) uses.
pub fn unique_run_id(test: &str) -> String {
    static SEQ: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    format!("t{test}{}x{nanos:x}{}", std::process::id(), SEQ.fetch_add(1, Ordering::Relaxed))
}

/// Removes everything labelled with the run when dropped, also when an assertion failed.
/// Drop cannot await inside the test's runtime, so it cleans up from a thread of its own, with
/// whichever runtime created the run (Docker by default, Swarm for the swarm tests).
pub struct RunGuard {
    pub run_id: String,
    remove: fn(&str) -> Result<usize, RuntimeError>,
}

impl RunGuard {
    pub fn new(test: &str) -> Self {
        Self::removing_with(test, |run_id| block_on(async { runtime().await.remove_run(Some(run_id)).await }))
    }

    /// A guard whose cleanup is `remove(run_id)`, run on a thread of its own.
    pub fn removing_with(test: &str, remove: fn(&str) -> Result<usize, RuntimeError>) -> Self {
        Self { run_id: unique_run_id(test), remove }
    }
}

/// Run a future to completion on a fresh single-threaded runtime (for cleanup threads).
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime").block_on(f)
}

impl Drop for RunGuard {
    fn drop(&mut self) {
        let (run_id, remove) = (self.run_id.clone(), self.remove);
        let outcome = std::thread::spawn(move || remove(&run_id)).join();
        match outcome {
            Ok(Ok(_)) => {}
            Ok(Err(e)) if !std::thread::panicking() => panic!("cleanup of run {} failed: {e}", self.run_id),
            Ok(Err(e)) => eprintln!("cleanup of run {} failed: {e}", self.run_id),
            Err(_) => eprintln!("cleanup of run {} panicked", self.run_id),
        }
    }
}

/// Containers and networks (names) still labelled with `run_id`, as `docker ps -a --filter
/// label=…` and `docker network ls --filter label=…` see them.
pub async fn leftovers(rt: &DockerRuntime, run_id: &str) -> (Vec<String>, Vec<String>) {
    use bollard::query_parameters::{ListContainersOptionsBuilder, ListNetworksOptionsBuilder};
    let label = format!("stampede.run={run_id}");
    let filters = HashMap::from([("label", vec![label.as_str()])]);
    let containers = rt
        .client()
        .list_containers(Some(ListContainersOptionsBuilder::new().all(true).filters(&filters).build()))
        .await
        .expect("list containers");
    let networks = rt
        .client()
        .list_networks(Some(ListNetworksOptionsBuilder::new().filters(&filters).build()))
        .await
        .expect("list networks");
    (
        containers.into_iter().flat_map(|c| c.names.unwrap_or_default()).collect(),
        networks.into_iter().filter_map(|n| n.name).collect(),
    )
}

/// The preflight of runtime `name`: with the test image it answers the engine's version
/// (returned, for each runtime's own checks); with an image that does not exist it is
/// `Unavailable`, saying which image and how to build it.
pub async fn assert_preflight(rt: &impl Runtime, name: &str) -> String {
    let version = rt.preflight(&test_image().await).await.expect("preflight with the test image");
    let missing = format!("stampede-missing:{}", unique_run_id("pf"));
    match rt.preflight(&missing).await {
        Err(e @ RuntimeError::Unavailable { .. }) => {
            let reason = e.chain();
            assert!(matches!(&e, RuntimeError::Unavailable { runtime, .. } if runtime == name), "{reason}");
            assert!(reason.contains(&missing) && reason.contains("stampede image build"), "{reason}")
        }
        other => panic!("expected Unavailable for a missing image, got {other:?}"),
    }
    version
}

/// An action of `run_id` whose image does not exist fails to launch on `rt`, as a launch error
/// of its own instance. Returns the error's whole chain, for each runtime's own checks.
pub async fn assert_launch_fails(rt: &impl Runtime, run_id: &str, action: u32) -> String {
    let spec = spec(run_id, "stampede-missing:nope", Role::Action, 0, Some(action), "127.0.0.1:1");
    match rt.launch(&spec).await {
        Err(e @ RuntimeError::Launch { .. }) => {
            let RuntimeError::Launch { instance, .. } = &e else { unreachable!() };
            assert_eq!(instance, &spec.instance_id);
            e.chain()
        }
        other => panic!("expected a launch error, got {other:?}"),
    }
}

/// Preparing `spec`'s network is idempotent: twice on `rt`, then once on `other`, a second
/// runtime as a scenario's own (in its container) would be, which finds the network already
/// there. Returns the network as the engine describes it, after checking its run label.
pub async fn prepare_network(
    rt: &impl Runtime,
    other: &impl Runtime,
    client: &bollard::Docker,
    spec: &LaunchSpec,
    network: &str,
) -> Network {
    rt.prepare(spec).await.expect("prepare");
    rt.prepare(spec).await.expect("prepare is idempotent");
    other.prepare(spec).await.expect("prepare from another process finds the network");
    let net = client.inspect_network(network, None::<InspectNetworkOptions>).await.expect("the network exists");
    assert_eq!(net.labels.clone().unwrap_or_default().get("stampede.run"), Some(&spec.run_id));
    net
}

/// The containers attached to `network`, by container ID.
pub async fn network_members(client: &bollard::Docker, network: &str) -> HashMap<String, NetworkContainer> {
    client.inspect_network(network, None::<InspectNetworkOptions>).await.unwrap().containers.unwrap_or_default()
}

/// A TCP server on all interfaces that accepts connections, holds them open (an instance that
/// dialled back then waits, as the real one waits for its handshake) and reports each peer.
pub struct CallbackListener {
    pub port: u16,
    pub connected: mpsc::UnboundedReceiver<SocketAddr>,
}

impl CallbackListener {
    pub async fn bind() -> Self {
        let listener = TcpListener::bind("0.0.0.0:0").await.expect("bind callback listener");
        let port = listener.local_addr().unwrap().port();
        let (tx, connected) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((stream, peer)) = listener.accept().await {
                held.push(stream);
                let _ = tx.send(peer);
            }
        });
        Self { port, connected }
    }

    /// `host:port` at which `rt`'s instances reach this listener (through the runtime's
    /// callback host).
    pub async fn address_for(&self, rt: &impl Runtime) -> String {
        let host = rt.callback_host().await.expect("callback host");
        format!("{host}:{}", self.port)
    }

    /// Wait for the next instance to dial back; `None` after `within`.
    pub async fn next(&mut self, within: Duration) -> Option<SocketAddr> {
        tokio::time::timeout(within, self.connected.recv()).await.ok().flatten()
    }
}

/// A spec like the tiers make, running the `stampede` subcommand of `role`, dialling back to
/// `callback_host:port`.
pub fn spec(
    run_id: &str,
    image: &str,
    role: Role,
    scenario: u32,
    action: Option<u32>,
    callback: &str,
) -> LaunchSpec {
    let instance_id = match action {
        Some(a) => format!("g0-s{scenario}-a{a}"),
        None => format!("g0-s{scenario}"),
    };
    LaunchSpec {
        run_id: run_id.to_owned(),
        role,
        instance_id: instance_id.clone(),
        group: 0,
        scenario,
        action,
        image: image.to_owned(),
        args: vec![role.as_str().to_owned()],
        env: vec![
            (env::CALLBACK.to_owned(), format!("ws://{callback}/")),
            (env::TOKEN.to_owned(), "test-token".to_owned()),
            (env::INSTANCE_ID.to_owned(), instance_id),
            (env::RUN_ID.to_owned(), run_id.to_owned()),
        ],
    }
}
