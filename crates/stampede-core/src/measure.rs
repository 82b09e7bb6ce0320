//! Measurement records, named as DESIGN §4 names them.
//!
//! Every timestamp is integer microseconds since the *run start* on the driver's timeline.
//! A tier measures on its own monotonic clock ([`Clock`]) and reports its wall-clock anchor;
//! the parent shifts child timestamps by the difference of anchors ([`Clock::align`]), so one
//! machine's observers line up exactly and several machines' line up to their clock skew.

use serde::{Deserialize, Serialize};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use crate::scenario::RuntimeKind;

/// Metric names: the same strings are used in code, JSON, CSV and the report.
pub mod names {
    /// ready − requested: the cold start as the user feels it.
    pub const START_LATENCY: &str = "start_latency";
    /// requested → created (runtimes that separate create and start).
    pub const PHASE_CREATE: &str = "phase_create";
    /// created (or requested) → started: the runtime's start call.
    pub const PHASE_START: &str = "phase_start";
    /// started → connected: process boot until its websocket handshake was accepted.
    pub const PHASE_BOOT: &str = "phase_boot";
    /// connected → ready.
    pub const PHASE_INIT: &str = "phase_init";
    /// started → the child's own clock at process entry (container/process boot proper).
    pub const PHASE_ENTRY: &str = "phase_entry";
    /// created (or requested) → the child's own clock at process entry: the runtime's share of
    /// the start, independent of when its API calls return.
    pub const PHASE_TO_ENTRY: &str = "phase_to_entry";
    /// Process entry → connected: the process's own boot and websocket handshake.
    pub const PHASE_ENTRY_TO_CONNECT: &str = "phase_entry_to_connect";
    /// The runtime's own start time (Docker `State.StartedAt`) → connected.
    pub const PHASE_RUNTIME_BOOT: &str = "phase_runtime_boot";
    pub const REQUEST_RTT: &str = "request_rtt";
    pub const REQUEST_RTT_COLD: &str = "request_rtt_cold";
    pub const REQUEST_RTT_WARM: &str = "request_rtt_warm";
    pub const SERVICE_TIME: &str = "service_time";
    pub const OVERHEAD: &str = "overhead";
    pub const PAUSE_LATENCY: &str = "pause_latency";
    pub const RESUME_LATENCY: &str = "resume_latency";
    pub const KILL_LATENCY: &str = "kill_latency";
    pub const REMOVE_LATENCY: &str = "remove_latency";
    /// RTT of an eviction probe that found a fresh (cold) process: the instance was evicted.
    pub const EVICTION_PROBE_COLD: &str = "eviction_probe_cold";
    /// RTT of an eviction probe that reached the same warm process.
    pub const EVICTION_PROBE_WARM: &str = "eviction_probe_warm";
    /// Swarm task states: time to reach each state from the previous one seen (the first from
    /// `requested`).
    pub const SWARM_PHASE_NEW: &str = "swarm_phase_new";
    pub const SWARM_PHASE_PENDING: &str = "swarm_phase_pending";
    pub const SWARM_PHASE_ASSIGNED: &str = "swarm_phase_assigned";
    pub const SWARM_PHASE_ACCEPTED: &str = "swarm_phase_accepted";
    pub const SWARM_PHASE_PREPARING: &str = "swarm_phase_preparing";
    pub const SWARM_PHASE_STARTING: &str = "swarm_phase_starting";
    pub const SWARM_PHASE_RUNNING: &str = "swarm_phase_running";
    /// |our `started` − the runtime's own start time| (Docker `State.StartedAt`).
    pub const RUNTIME_START_SKEW: &str = "runtime_start_skew";
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Hash, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Driver,
    Scenario,
    Action,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Driver => "driver",
            Role::Scenario => "scenario",
            Role::Action => "action",
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How an instance ended. Exactly one per instance, so that
/// `instances_requested = instances_ready + instances_failed` always holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Still running (only seen in a partial results file).
    #[default]
    Pending,
    /// Became ready and lived through its lifecycle (a planned kill counts as lived through).
    Ready,
    /// Never became ready, or died/disconnected before its work was done.
    Failed,
}

/// One row of `instances.csv`: every timestamp of one scenario or action instance.
///
/// Kept flat (no nested structs) because it *is* the CSV contract: column order is field order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct InstanceRecord {
    pub instance_id: String,
    pub role: Option<Role>,
    pub group: u32,
    pub scenario: u32,
    /// Action index within its scenario; empty for scenario rows.
    pub action: Option<u32>,
    /// Incarnation of this action slot (one-shot lifecycles start several per slot).
    pub incarnation: u32,
    pub runtime: Option<RuntimeKind>,
    pub outcome: Outcome,
    pub error: Option<String>,
    /// Container/service/pid the runtime knows it by.
    pub runtime_id: Option<String>,
    pub hostname: Option<String>,
    pub pid: Option<u32>,
    pub boot_id: Option<String>,
    /// Launches (create+start) of the same parent already in flight when this one was requested.
    pub in_flight_at_request: u32,
    pub requested_us: Option<i64>,
    pub created_us: Option<i64>,
    pub started_us: Option<i64>,
    /// The runtime's own record of the start (Docker `State.StartedAt`), on our timeline.
    pub runtime_started_us: Option<i64>,
    /// The child's own clock at process entry, on our timeline.
    pub process_entry_us: Option<i64>,
    pub connected_us: Option<i64>,
    pub ready_us: Option<i64>,
    /// The child's own clock when it sent ready, on our timeline.
    pub self_ready_us: Option<i64>,
    pub first_response_us: Option<i64>,
    pub last_response_us: Option<i64>,
    pub stopped_us: Option<i64>,
    pub removed_us: Option<i64>,
    /// Swarm task states (new → pending → assigned → accepted → preparing → starting → running).
    pub task_new_us: Option<i64>,
    pub task_pending_us: Option<i64>,
    pub task_assigned_us: Option<i64>,
    pub task_accepted_us: Option<i64>,
    pub task_preparing_us: Option<i64>,
    pub task_starting_us: Option<i64>,
    pub task_running_us: Option<i64>,
    pub requests_ok: u32,
    pub requests_failed: u32,
    pub requests_timed_out: u32,
    pub requests_not_sent: u32,
}

impl InstanceRecord {
    pub fn start_latency_us(&self) -> Option<i64> {
        Some(self.ready_us? - self.requested_us?)
    }

    /// Shift every timestamp by `offset` µs (aligning a child observer's timeline to ours).
    pub fn shift(&mut self, offset: i64) {
        for t in self.timestamps_mut() {
            if let Some(v) = t.as_mut() {
                *v += offset;
            }
        }
    }

    /// Every `_us` field; a new timestamp field must be added here so it is aligned too.
    fn timestamps_mut(&mut self) -> [&mut Option<i64>; 19] {
        [
            &mut self.requested_us,
            &mut self.created_us,
            &mut self.started_us,
            &mut self.runtime_started_us,
            &mut self.process_entry_us,
            &mut self.connected_us,
            &mut self.ready_us,
            &mut self.self_ready_us,
            &mut self.first_response_us,
            &mut self.last_response_us,
            &mut self.stopped_us,
            &mut self.removed_us,
            &mut self.task_new_us,
            &mut self.task_pending_us,
            &mut self.task_assigned_us,
            &mut self.task_accepted_us,
            &mut self.task_preparing_us,
            &mut self.task_starting_us,
            &mut self.task_running_us,
        ]
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestOutcome {
    Ok,
    Failed,
    TimedOut,
}

/// One row of `requests.csv` (only kept when raw output is asked for).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestRecord {
    pub instance_id: String,
    pub group: u32,
    pub scenario: u32,
    pub action: u32,
    pub request_id: u64,
    /// Open loop: the scheduled send time; closed loop: the send time.
    pub scheduled_us: i64,
    pub sent_us: i64,
    pub received_us: Option<i64>,
    /// received − scheduled (no coordinated omission).
    pub rtt_us: Option<i64>,
    pub service_time_us: Option<i64>,
    pub overhead_us: Option<i64>,
    pub cold: bool,
    pub outcome: RequestOutcome,
    pub warmup: bool,
    pub error: Option<String>,
}

/// A tier's clock: monotonic µs since the tier's zero, plus the wall-clock anchor of that zero.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    zero: Instant,
    /// Wall clock at `zero`, µs since the Unix epoch.
    anchor_us: i64,
}

impl Clock {
    pub fn start() -> Self {
        Self { zero: Instant::now(), anchor_us: wall_us() }
    }
    /// Monotonic µs since this clock's zero.
    pub fn now_us(&self) -> i64 {
        self.us_at(Instant::now())
    }
    pub fn us_at(&self, t: Instant) -> i64 {
        i64::try_from(t.saturating_duration_since(self.zero).as_micros()).unwrap_or(i64::MAX)
    }
    pub fn zero(&self) -> Instant {
        self.zero
    }
    pub fn anchor_us(&self) -> i64 {
        self.anchor_us
    }
    /// Offset to add to a child's timestamps (on a clock anchored at `child_anchor_us`)
    /// to put them on this clock's timeline.
    pub fn align(&self, child_anchor_us: i64) -> i64 {
        child_anchor_us - self.anchor_us
    }
    /// A wall-clock reading (µs since epoch) on this clock's timeline.
    pub fn from_wall(&self, wall_us: i64) -> i64 {
        wall_us - self.anchor_us
    }
}

/// Wall clock, µs since the Unix epoch.
pub fn wall_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shift_moves_every_set_timestamp_and_leaves_unset_alone() {
        let mut r = InstanceRecord { requested_us: Some(10), ready_us: Some(30), ..Default::default() };
        r.shift(100);
        assert_eq!(r.requested_us, Some(110));
        assert_eq!(r.ready_us, Some(130));
        assert_eq!(r.created_us, None);
        assert_eq!(r.start_latency_us(), Some(20));
    }

    #[test]
    fn align_maps_child_timeline_onto_parent() {
        let parent = Clock { zero: Instant::now(), anchor_us: 1_000_000 };
        // A child whose zero was 250 ms after the parent's: its t=0 is our t=250 ms.
        assert_eq!(parent.align(1_250_000), 250_000);
        assert_eq!(parent.from_wall(1_500_000), 500_000);
    }
}
