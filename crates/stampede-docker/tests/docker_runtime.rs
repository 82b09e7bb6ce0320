//! The docker runtime against the real Docker Engine on this machine (never a mock).
//!
//! Every test has its own run id and a [`common::RunGuard`], so whatever it created is removed
//! even when an assertion fails; tests that check cleanup itself assert that nothing is left.

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bollard::query_parameters::InspectContainerOptions;
use stampede_core::measure::Role;
use stampede_docker::options::DockerNetwork;
use stampede_docker::DockerRuntime;
use stampede_runtime::{Handle, Runtime, RuntimeError};

use common::{CallbackListener, RunGuard};

const DIAL_BACK: Duration = Duration::from_secs(15);

async fn state(rt: &DockerRuntime, h: &Handle) -> bollard::models::ContainerState {
    rt.client().inspect_container(&h.id, None::<InspectContainerOptions>).await.expect("inspect").state.expect("state")
}

#[tokio::test]
async fn action_container_lifecycle() {
    let image = common::test_image().await;
    let guard = RunGuard::new("life");
    let mut listener = CallbackListener::bind().await;
    let rt = common::runtime().await.with_network(DockerNetwork::Bridge);
    let callback = listener.address_for(&rt).await;
    let spec = common::spec(&guard.run_id, &image, Role::Action, 0, Some(3), &callback);

    let launched = rt.launch(&spec).await.expect("launch");
    let started_wall_us =
        (SystemTime::now().duration_since(UNIX_EPOCH).unwrap() - launched.started.elapsed()).as_micros() as i64;
    assert_eq!(launched.handle.detail.as_deref(), Some(format!("stampede-{}-g0-s0-a3", guard.run_id).as_str()));
    assert!(launched.created.expect("docker separates create and start") <= launched.started);
    assert!(listener.next(DIAL_BACK).await.is_some(), "the container never dialled back to {callback}");

    let native = rt.native_times(&launched.handle).await.started_unix_us.expect("State.StartedAt");
    assert!(
        (native - started_wall_us).abs() < 50_000,
        "StartedAt {native} vs our `started` {started_wall_us}: more than 50 ms apart"
    );

    let inspected = rt.client().inspect_container(&launched.handle.id, None::<InspectContainerOptions>).await.unwrap();
    let labels = inspected.config.and_then(|c| c.labels).unwrap_or_default();
    assert_eq!(labels.get("stampede.run"), Some(&guard.run_id));
    assert_eq!(labels.get("stampede.role").map(String::as_str), Some("action"));
    let host_config = inspected.host_config.unwrap();
    assert_eq!(host_config.network_mode.as_deref(), Some("bridge"));
    assert_ne!(host_config.auto_remove, Some(true), "removal is timed by us, not done by the engine");
    assert!(host_config.binds.unwrap_or_default().is_empty(), "actions get no Docker socket");

    assert!(rt.is_running(&launched.handle).await);
    rt.pause(&launched.handle).await.expect("pause");
    assert_eq!(state(&rt, &launched.handle).await.paused, Some(true));
    rt.resume(&launched.handle).await.expect("resume");
    assert_eq!(state(&rt, &launched.handle).await.paused, Some(false));
    rt.kill(&launched.handle).await.expect("kill");
    assert!(!rt.is_running(&launched.handle).await);
    assert!(matches!(rt.kill(&launched.handle).await, Err(RuntimeError::Control { op: "kill", .. })));
    rt.remove(&launched.handle).await.expect("remove");
    rt.remove(&launched.handle).await.expect("removing an already removed container is not an error");
    assert!(!rt.is_running(&launched.handle).await);
    assert_eq!(common::leftovers(&rt, &guard.run_id).await, (vec![], vec![]));
}

#[tokio::test]
async fn per_scenario_network_holds_scenario_and_actions_and_remove_run_clears_it() {
    let image = common::test_image().await;
    let guard = RunGuard::new("net");
    let mut listener = CallbackListener::bind().await;
    let rt = common::runtime().await.with_network(DockerNetwork::PerScenario);
    let callback = listener.address_for(&rt).await;
    let scenario = common::spec(&guard.run_id, &image, Role::Scenario, 1, None, &callback);
    let network = format!("stampede-{}-g0-s1", guard.run_id);

    common::prepare_network(&rt, &common::runtime().await, rt.client(), &scenario, &network).await;

    let s = rt.launch(&scenario).await.expect("launch scenario");
    let mut actions = Vec::new();
    for a in 0..2 {
        let spec = common::spec(&guard.run_id, &image, Role::Action, 1, Some(a), &callback);
        rt.prepare(&spec).await.expect("prepare (action)");
        actions.push(rt.launch(&spec).await.expect("launch action"));
    }
    for _ in 0..3 {
        assert!(listener.next(DIAL_BACK).await.is_some(), "an instance on {network} never dialled back to {callback}");
    }

    let inspected = rt.client().inspect_container(&s.handle.id, None::<InspectContainerOptions>).await.unwrap();
    assert_eq!(inspected.host_config.unwrap().network_mode.as_deref(), Some(network.as_str()));
    let mounts = inspected.mounts.unwrap_or_default();
    assert!(
        mounts.iter().any(|m| m.destination.as_deref() == Some("/var/run/docker.sock")),
        "scenario containers get the Docker socket: {mounts:?}"
    );
    let members = common::network_members(rt.client(), &network).await;
    for h in std::iter::once(&s.handle).chain(actions.iter().map(|l| &l.handle)) {
        assert!(members.contains_key(&h.id), "{:?} is not on {network}", h.detail);
    }

    let removed = rt.remove_run(Some(&guard.run_id)).await.expect("remove_run");
    assert_eq!(removed, 4, "3 containers and 1 network");
    assert_eq!(common::leftovers(&rt, &guard.run_id).await, (vec![], vec![]));
    assert_eq!(rt.remove_run(Some(&guard.run_id)).await.expect("remove_run twice"), 0);
    // The network can be prepared again after cleanup (the runtime forgot it).
    rt.prepare(&scenario).await.expect("prepare after cleanup");
    assert_eq!(rt.remove_run(Some(&guard.run_id)).await.expect("remove_run"), 1);
}

#[tokio::test]
async fn callback_host_reaches_this_process_from_every_placement() {
    let image = common::test_image().await;
    let guard = RunGuard::new("cb");
    let mut listener = CallbackListener::bind().await;
    for (i, network) in [DockerNetwork::Host, DockerNetwork::Bridge, DockerNetwork::PerScenario].into_iter().enumerate()
    {
        let rt = common::runtime().await.with_network(network);
        let host = rt.callback_host().await.unwrap_or_else(|e| panic!("callback host for {network:?}: {e}"));
        let callback = format!("{host}:{}", listener.port);
        let spec = common::spec(&guard.run_id, &image, Role::Scenario, i as u32, None, &callback);
        rt.prepare(&spec).await.expect("prepare");
        rt.launch(&spec).await.expect("launch");
        let peer = listener.next(DIAL_BACK).await;
        assert!(peer.is_some(), "a container placed on {network:?} never reached {callback}");
    }
    assert_eq!(common::runtime().await.with_network(DockerNetwork::Host).callback_host().await.unwrap(), "127.0.0.1");
}

#[tokio::test]
async fn preflight_names_the_engine_and_refuses_a_missing_image() {
    let version = common::assert_preflight(&common::runtime().await, "docker").await;
    assert!(version.starts_with("Docker ") && version.contains("(API 1."), "{version}");
}

#[tokio::test]
async fn launch_failure_leaves_nothing_and_names_the_instance() {
    let rt = common::runtime().await.with_network(DockerNetwork::Bridge);
    let guard = RunGuard::new("fail");
    let reason = common::assert_launch_fails(&rt, &guard.run_id, 0).await;
    assert!(reason.contains(&format!("stampede-{}-g0-s0-a0", guard.run_id)), "{reason}");
    assert_eq!(common::leftovers(&rt, &guard.run_id).await, (vec![], vec![]));
}

#[tokio::test]
async fn an_unreachable_daemon_makes_the_runtime_unavailable() {
    match DockerRuntime::connect_to("/nonexistent/docker.sock").await {
        Err(e @ RuntimeError::Unavailable { .. }) => {
            let reason = e.chain();
            assert!(
                reason.contains("/nonexistent/docker.sock") && reason.contains("is the Docker daemon running"),
                "{reason}"
            )
        }
        other => panic!("expected Unavailable, got {other:?}"),
    }
}

/// A container that exits before it connects: its `die` event (one event stream for the
/// runtime) resolves `wait_failed` with the exit code, long before any ready timeout.
#[tokio::test]
async fn a_container_that_exits_at_once_is_reported_by_its_die_event() {
    let image = common::test_image().await;
    let guard = RunGuard::new("die");
    let rt = common::runtime().await.with_network(DockerNetwork::Bridge);
    let mut spec = common::spec(&guard.run_id, &image, Role::Action, 0, Some(0), "127.0.0.1:1");
    // The binary refuses an unknown subcommand with exit 2, at once.
    spec.args = vec!["no-such-subcommand".into()];
    let launched = rt.launch(&spec).await.expect("launch");
    let why = tokio::time::timeout(Duration::from_secs(30), rt.wait_failed(&launched.handle)).await.expect("a die event");
    assert!(why.contains("exit code 2"), "{why}");
    rt.remove(&launched.handle).await.expect("remove");
    assert_eq!(common::leftovers(&rt, &guard.run_id).await, (vec![], vec![]));
}
