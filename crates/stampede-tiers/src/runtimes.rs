//! Which [`Runtime`] serves a [`RuntimeKind`], and the per-group runtime choices.

use std::path::PathBuf;
use std::sync::Arc;

use stampede_core::measure::{Clock, InstanceRecord};
use stampede_core::scenario::{DockerNetwork, Group, RuntimeKind, SwarmNetwork};
use stampede_runtime::process::ProcessRuntime;
use stampede_runtime::{NativeTimes, Placement, Runtime, RuntimeError};

/// Connect to the runtime of `kind`. `exe` is the binary the process runtime starts.
pub async fn connect(kind: RuntimeKind, exe: PathBuf) -> Result<Arc<dyn Runtime>, RuntimeError> {
    Ok(match kind {
        RuntimeKind::Process => Arc::new(ProcessRuntime::new(exe)),
        RuntimeKind::Docker => Arc::new(stampede_docker::DockerRuntime::connect().await?),
        RuntimeKind::Swarm => Arc::new(stampede_docker::SwarmRuntime::connect().await?),
    })
}

/// Where a group's instances of `kind` are networked.
pub fn placement(group: &Group, kind: RuntimeKind) -> Placement {
    match kind {
        RuntimeKind::Process => Placement::None,
        RuntimeKind::Docker => Placement::Docker(group.docker.network),
        RuntimeKind::Swarm => Placement::Swarm(group.swarm.clone()),
    }
}

/// Whether every child launched with `placement` dials its parent on loopback, so the parent
/// may listen on 127.0.0.1 only (nothing exposed beyond this machine).
pub fn children_dial_loopback(placement: &Placement) -> bool {
    match placement {
        Placement::None | Placement::Docker(DockerNetwork::Host) => true,
        Placement::Swarm(o) => o.network == SwarmNetwork::Host,
        Placement::Docker(_) => false,
    }
}

/// Put a runtime's task-state timestamps (Swarm) into the instance record, on `clock`'s timeline.
pub fn apply_task_states(rec: &mut InstanceRecord, native: &NativeTimes, clock: &Clock) {
    for (state, t) in &native.task_states {
        let v = Some(clock.from_wall(*t));
        match state.as_str() {
            "new" => rec.task_new_us = v,
            "pending" => rec.task_pending_us = v,
            "assigned" => rec.task_assigned_us = v,
            "accepted" => rec.task_accepted_us = v,
            "preparing" => rec.task_preparing_us = v,
            "starting" => rec.task_starting_us = v,
            "running" => rec.task_running_us = v,
            _ => {}
        }
    }
}
