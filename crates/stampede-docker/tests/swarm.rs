//! The swarm runtime against the real single-node swarm on this machine (never a mock).
//!
//! The engine is made a swarm (`docker swarm init --advertise-addr 127.0.0.1`) when it is not
//! one yet, and left so. Every test has its own run id and a guard (`swarm_guard`) that removes the
//! run's services, containers and networks even when an assertion fails.

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bollard::models::{LocalNodeState, SwarmInitRequest};
use bollard::query_parameters::{
    InspectContainerOptions, InspectNetworkOptions, InspectServiceOptions, ListServicesOptions, ListTasksOptions,
};
use stampede_core::measure::Role;
use stampede_docker::options::{SwarmMapping, SwarmNetwork, SwarmOptions};
use stampede_docker::SwarmRuntime;
use stampede_runtime::{Handle, NativeTimes, Runtime, RuntimeError};
use tokio::sync::OnceCell;

use common::CallbackListener;

const DIAL_BACK: Duration = Duration::from_secs(30);
const TASK_STATES: [&str; 7] = ["new", "pending", "assigned", "accepted", "preparing", "starting", "running"];

/// A swarm runtime on an engine that is a swarm manager (initialised here if it was not).
async fn runtime() -> SwarmRuntime {
    static SWARM: OnceCell<()> = OnceCell::const_new();
    let rt = SwarmRuntime::connect()
        .await
        .unwrap_or_else(|e| panic!("these tests need a running Docker Engine reachable over its unix socket: {e}"));
    SWARM
        .get_or_init(|| async {
            let info = rt.client().info().await.expect("docker info");
            let state = info.swarm.and_then(|s| s.local_node_state);
            if state != Some(LocalNodeState::ACTIVE) {
                let request = SwarmInitRequest {
                    listen_addr: Some("0.0.0.0:2377".into()),
                    advertise_addr: Some("127.0.0.1".into()),
                    ..Default::default()
                };
                rt.client().init_swarm(request).await.unwrap_or_else(|e| panic!("docker swarm init failed: {e}"));
            }
        })
        .await;
    rt
}

fn options(network: SwarmNetwork) -> SwarmOptions {
    SwarmOptions {
        network,
        mapping: SwarmMapping::ServicePerAction,
        restart_condition: "none".into(),
        update_parallelism: 0,
        placement: vec!["node.role==manager".into()],
        ..SwarmOptions::default()
    }
}

/// A guard that removes everything of the run through the swarm runtime (services first).
fn swarm_guard(test: &str) -> common::RunGuard {
    common::RunGuard::removing_with(test, |run_id| common::block_on(async { runtime().await.remove_run(Some(run_id)).await }))
}

/// Services, containers and networks still labelled with `run_id`.
async fn leftovers(rt: &SwarmRuntime, run_id: &str) -> (Vec<String>, Vec<String>, Vec<String>) {
    let filters = HashMap::from([("label".to_owned(), vec![format!("stampede.run={run_id}")])]);
    let services = rt
        .client()
        .list_services(Some(ListServicesOptions { filters: Some(filters), status: None }))
        .await
        .expect("list services");
    let (containers, networks) = common::leftovers(&common::runtime().await, run_id).await;
    (services.into_iter().filter_map(|s| s.spec.and_then(|s| s.name)).collect(), containers, networks)
}

async fn container_state(rt: &SwarmRuntime, id: &str) -> bollard::models::ContainerState {
    rt.client().inspect_container(id, None::<InspectContainerOptions>).await.expect("inspect").state.expect("state")
}

async fn wait_until_not_running(rt: &SwarmRuntime, h: &Handle) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if !rt.is_running(h).await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

/// The native times once the tracker has seen the task running.
async fn wait_for_running_state(rt: &SwarmRuntime, h: &Handle) -> NativeTimes {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let native = rt.native_times(h).await;
        if native.states.last().is_some_and(|(s, _)| s == "running") || Instant::now() >= deadline {
            return native;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The container of the service's running task, as the task list says.
async fn running_container(rt: &SwarmRuntime, service: &Handle) -> String {
    let filters = HashMap::from([("service".to_owned(), vec![service.id.clone()])]);
    let tasks = rt.client().list_tasks(Some(ListTasksOptions { filters: Some(filters) })).await.expect("list tasks");
    assert_eq!(tasks.len(), 1, "one task per service: {tasks:?}");
    tasks[0].status.clone().and_then(|s| s.container_status).and_then(|c| c.container_id).expect("task container")
}

#[tokio::test]
async fn service_per_action_lifecycle_with_task_states() {
    let image = common::test_image().await;
    let guard = swarm_guard("swlife");
    let mut listener = CallbackListener::bind().await;
    let rt = runtime().await.with_options(options(SwarmNetwork::Host));
    let callback = listener.address_for(&rt).await;
    assert_eq!(callback, format!("127.0.0.1:{}", listener.port));
    let spec = common::spec(&guard.run_id, &image, Role::Action, 0, Some(3), &callback);

    rt.prepare(&spec).await.expect("prepare");
    let launched = rt.launch(&spec).await.expect("launch");
    assert_eq!(launched.created, Some(launched.started), "Swarm has no start call: started = created");
    assert!(listener.next(DIAL_BACK).await.is_some(), "the task never dialled back to {callback}");
    let native = wait_for_running_state(&rt, &launched.handle).await;
    let container = running_container(&rt, &launched.handle).await;

    // The service: named after the instance, labelled, image by ID, one replica, restart none.
    let service =
        rt.client().inspect_service(&launched.handle.id, None::<InspectServiceOptions>).await.expect("inspect service");
    let spec_ = service.spec.expect("spec");
    assert_eq!(spec_.name, Some(format!("stampede-{}-g0-s0-a3", guard.run_id)));
    let labels = spec_.labels.unwrap_or_default();
    assert_eq!(labels.get("stampede.run"), Some(&guard.run_id));
    assert_eq!(labels.get("stampede.action").map(String::as_str), Some("3"));
    let task = spec_.task_template.expect("task template");
    let cs = task.container_spec.expect("container spec");
    assert!(cs.image.as_deref().unwrap_or_default().starts_with("sha256:"), "image by ID, not tag: {:?}", cs.image);
    assert_eq!(cs.labels.unwrap_or_default().get("stampede.role").map(String::as_str), Some("action"));
    assert!(cs.mounts.unwrap_or_default().is_empty(), "actions get no Docker socket");
    assert_eq!(task.restart_policy.and_then(|r| r.condition).map(|c| c.to_string()).as_deref(), Some("none"));
    // The group's own constraint, then the action's: on the node of the scenario launching it
    // (this engine's), the default `actions = "with_scenario"`.
    let node = rt.client().info().await.expect("info").swarm.and_then(|s| s.node_id).expect("a swarm node ID");
    assert_eq!(
        task.placement.and_then(|p| p.constraints),
        Some(vec!["node.role==manager".to_owned(), format!("node.id=={node}")])
    );
    let inspected = rt.client().inspect_container(&container, None::<InspectContainerOptions>).await.unwrap();
    assert_eq!(inspected.config.and_then(|c| c.labels).unwrap_or_default().get("stampede.run"), Some(&guard.run_id));
    assert_eq!(inspected.host_config.and_then(|h| h.network_mode).as_deref(), Some("host"));

    // Task states: present, in Swarm's order, with ascending times, ending in running.
    let names: Vec<&str> = native.states.iter().map(|(s, _)| s.as_str()).collect();
    eprintln!("task states: {:?}", native.states);
    assert_eq!(names.first(), Some(&"new"), "{names:?}");
    assert_eq!(names.last(), Some(&"running"), "{names:?}");
    assert!(names.len() >= 3, "too few states seen: {names:?}");
    let order: Vec<usize> =
        names.iter().map(|n| TASK_STATES.iter().position(|s| s == n).expect("known state")).collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "states out of order: {names:?}");
    assert!(native.states.windows(2).all(|w| w[0].1 <= w[1].1), "times not ascending: {:?}", native.states);
    let started_at = native.started_unix_us.expect("container StartedAt");
    let running_at = native.states.last().unwrap().1;
    assert!((running_at - started_at).abs() < 1_000_000, "running {running_at} vs StartedAt {started_at}");

    // Control on the task's container.
    assert!(rt.is_running(&launched.handle).await);
    rt.pause(&launched.handle).await.expect("pause");
    assert_eq!(container_state(&rt, &container).await.paused, Some(true));
    rt.resume(&launched.handle).await.expect("resume");
    assert_eq!(container_state(&rt, &container).await.paused, Some(false));
    rt.kill(&launched.handle).await.expect("kill");
    assert!(wait_until_not_running(&rt, &launched.handle).await, "still running 10 s after kill");
    assert_eq!(container_state(&rt, &container).await.running, Some(false));
    // Restart condition none: Swarm does not replace the killed task.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!rt.is_running(&launched.handle).await, "Swarm restarted a task with restart condition none");
    assert!(listener.next(Duration::from_millis(10)).await.is_none(), "a replacement task dialled back");

    rt.remove(&launched.handle).await.expect("remove");
    rt.remove(&launched.handle).await.expect("removing a removed service is not an error");
    assert!(
        rt.client().inspect_service(&launched.handle.id, None::<InspectServiceOptions>).await.is_err(),
        "service still there"
    );
    rt.remove_run(Some(&guard.run_id)).await.expect("remove_run");
    assert_eq!(leftovers(&rt, &guard.run_id).await, (vec![], vec![], vec![]));
}

#[tokio::test]
async fn overlay_network_per_run_reaches_the_host_and_remove_run_clears_everything() {
    let image = common::test_image().await;
    let guard = swarm_guard("swov");
    let mut listener = CallbackListener::bind().await;
    let rt = runtime().await.with_options(options(SwarmNetwork::Overlay));
    let network = format!("stampede-{}", guard.run_id);
    let scenario = common::spec(&guard.run_id, &image, Role::Scenario, 0, None, "unused:1");

    let mut net = common::prepare_network(&rt, &runtime().await, rt.client(), &scenario, &network).await;
    // A swarm network's driver shows once the manager's allocator has taken it, just after the
    // create returns.
    let t0 = Instant::now();
    while net.driver.as_deref().unwrap_or_default().is_empty() && t0.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(50)).await;
        net = rt.client().inspect_network(&network, None::<InspectNetworkOptions>).await.expect("the network exists");
    }
    assert_eq!(net.driver.as_deref(), Some("overlay"));
    assert_eq!(net.attachable, Some(true));

    // Asked before any overlay task exists (docker_gwbridge may not exist yet), and after.
    let callback = listener.address_for(&rt).await;
    let scenario = common::spec(&guard.run_id, &image, Role::Scenario, 0, None, &callback);
    let s = rt.launch(&scenario).await.expect("launch scenario");
    assert!(listener.next(DIAL_BACK).await.is_some(), "a task on {network} never reached the host at {callback}");
    let callback = listener.address_for(&rt).await;
    let action = common::spec(&guard.run_id, &image, Role::Action, 0, Some(0), &callback);
    let a = rt.launch(&action).await.expect("launch action");
    assert!(listener.next(DIAL_BACK).await.is_some(), "a task on {network} never reached the host at {callback}");

    let service =
        rt.client().inspect_service(&s.handle.id, None::<InspectServiceOptions>).await.expect("inspect service");
    let task = service.spec.and_then(|s| s.task_template).expect("task template");
    let mounts = task.container_spec.and_then(|c| c.mounts).unwrap_or_default();
    assert!(
        mounts.iter().any(|m| m.target.as_deref() == Some("/var/run/docker.sock")),
        "scenario services get the Docker socket: {mounts:?}"
    );
    let members = common::network_members(rt.client(), &network).await;
    for h in [&s.handle, &a.handle] {
        let c = running_container(&rt, h).await;
        assert!(members.contains_key(&c), "task container {c} is not on {network}");
    }

    let removed = rt.remove_run(Some(&guard.run_id)).await.expect("remove_run");
    assert!(removed >= 3, "2 services and 1 network, got {removed}");
    assert_eq!(leftovers(&rt, &guard.run_id).await, (vec![], vec![], vec![]));
    assert_eq!(rt.remove_run(Some(&guard.run_id)).await.expect("remove_run twice"), 0);
}

#[tokio::test]
async fn preflight_names_the_swarm_and_refuses_a_missing_image() {
    let version = common::assert_preflight(&runtime().await, "swarm").await;
    assert!(version.starts_with("Docker ") && version.contains("swarm"), "{version}");
}

#[tokio::test]
async fn launch_failures_name_the_instance_and_leave_nothing() {
    let image = common::test_image().await;
    let guard = swarm_guard("swfail");
    let rt = runtime().await.with_options(options(SwarmNetwork::Host));
    let reason = common::assert_launch_fails(&rt, &guard.run_id, 1).await;
    assert!(reason.contains("stampede-missing:nope"), "{reason}");
    // A task that can never be placed: the launch returns (Swarm schedules on its own), the task
    // stays pending, and removing the instance leaves nothing.
    let rt = runtime().await.with_options(SwarmOptions { placement: vec!["node.role==worker".into()], ..options(SwarmNetwork::Host) });
    let spec = common::spec(&guard.run_id, &image, Role::Action, 0, Some(2), "127.0.0.1:1");
    let launched = rt.launch(&spec).await.expect("launch of an unplaceable task");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!rt.is_running(&launched.handle).await);
    let states = rt.native_times(&launched.handle).await.states;
    assert_eq!(states.iter().map(|(s, _)| s.as_str()).collect::<Vec<_>>(), ["new", "pending"], "{states:?}");
    assert!(matches!(rt.kill(&launched.handle).await, Err(RuntimeError::Control { op: "kill", .. })));
    rt.remove(&launched.handle).await.expect("remove");
    rt.remove_run(Some(&guard.run_id)).await.expect("remove_run");
    assert_eq!(leftovers(&rt, &guard.run_id).await, (vec![], vec![], vec![]));
}

#[tokio::test]
async fn an_unreachable_daemon_makes_the_swarm_runtime_unavailable() {
    match SwarmRuntime::connect_to("/nonexistent/docker.sock").await {
        Err(e @ RuntimeError::Unavailable { .. }) => {
            let reason = e.chain();
            assert!(matches!(&e, RuntimeError::Unavailable { runtime, .. } if runtime == "swarm"), "{reason}");
            assert!(reason.contains("/nonexistent/docker.sock"), "{reason}")
        }
        other => panic!("expected Unavailable, got {other:?}"),
    }
}
