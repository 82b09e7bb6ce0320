//! Measurement records, named as DESIGN §4 names them.
//!
//! Every timestamp is integer microseconds since the *run start* on the driver's timeline.
//! A tier measures on its own monotonic clock ([`Clock`]) and reports its wall-clock anchor;
//! the parent shifts child timestamps by the difference of anchors ([`Clock::align`]), so one
//! machine's observers line up exactly and several machines' line up to their clock skew.

use serde::{Deserialize, Serialize};
use std::time::{Instant, SystemTime, UNIX_EPOCH};


/// Every metric stampede writes: one table of name, unit and meaning. results.json, the CSV
/// headers, the terminal summary and the report all take their names from here, and a test
/// checks that each is documented in docs/results.md and schema/results.schema.json.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Metric {
    StartLatency,
    PhaseQueue,
    PhaseCreate,
    PhaseStart,
    PhaseBoot,
    PhaseInit,
    PhaseEntry,
    PhaseToEntry,
    PhaseEntryToConnect,
    PhaseRuntimeBoot,
    RuntimeStartSkew,
    RequestRtt,
    RequestRttCold,
    RequestRttWarm,
    ServiceTime,
    Overhead,
    PauseLatency,
    ResumeLatency,
    KillLatency,
    RemoveLatency,
    EvictionProbeCold,
    EvictionProbeWarm,
}

/// What a metric counts in. Every metric today is a duration in µs; the unit is named so a new
/// kind of metric cannot slip into a `_us` summary unnoticed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Microseconds,
}

impl Metric {
    pub const ALL: [Metric; 22] = [
        Metric::StartLatency,
        Metric::PhaseQueue,
        Metric::PhaseCreate,
        Metric::PhaseStart,
        Metric::PhaseEntry,
        Metric::PhaseToEntry,
        Metric::PhaseEntryToConnect,
        Metric::PhaseBoot,
        Metric::PhaseRuntimeBoot,
        Metric::PhaseInit,
        Metric::RuntimeStartSkew,
        Metric::RequestRtt,
        Metric::RequestRttCold,
        Metric::RequestRttWarm,
        Metric::ServiceTime,
        Metric::Overhead,
        Metric::PauseLatency,
        Metric::ResumeLatency,
        Metric::KillLatency,
        Metric::RemoveLatency,
        Metric::EvictionProbeCold,
        Metric::EvictionProbeWarm,
    ];

    /// The metric's row of the table: its name and one line on what it measures, between
    /// which two moments.
    const fn row(self) -> (&'static str, &'static str) {
        match self {
            Metric::StartLatency => ("start_latency", "ready − requested: the cold start as the user feels it, from the runtime call"),
            Metric::PhaseQueue => ("phase_queue", "queued → requested: waiting for a start slot or a start-rate token in stampede's own queue"),
            Metric::PhaseCreate => ("phase_create", "requested → created: the runtime's create call"),
            Metric::PhaseStart => ("phase_start", "created (or requested) → started: the runtime's start call"),
            Metric::PhaseBoot => ("phase_boot", "started → connected: boot until the websocket handshake was accepted"),
            Metric::PhaseInit => ("phase_init", "connected → ready"),
            Metric::PhaseEntry => ("phase_entry", "started → the child's own clock at process entry"),
            Metric::PhaseToEntry => ("phase_to_entry", "created (or requested) → process entry: the runtime's share of the start"),
            Metric::PhaseEntryToConnect => ("phase_entry_to_connect", "process entry → connected: the process's own boot and handshake"),
            Metric::PhaseRuntimeBoot => ("phase_runtime_boot", "the runtime's own start time → connected"),
            Metric::RuntimeStartSkew => ("runtime_start_skew", "|started − the runtime's own start time|"),
            Metric::RequestRtt => ("request_rtt", "response received − request scheduled (open loop) or sent (closed loop)"),
            Metric::RequestRttCold => ("request_rtt_cold", "request_rtt of the first request a process serves"),
            Metric::RequestRttWarm => ("request_rtt_warm", "request_rtt of every later request"),
            Metric::ServiceTime => ("service_time", "the work's duration as the action measured it"),
            Metric::Overhead => ("overhead", "request_rtt − service_time: transport and scheduling"),
            Metric::PauseLatency => ("pause_latency", "pause call → it returned"),
            Metric::ResumeLatency => ("resume_latency", "resume call → the next response"),
            Metric::KillLatency => ("kill_latency", "kill call → it returned"),
            Metric::RemoveLatency => ("remove_latency", "remove call → it returned"),
            Metric::EvictionProbeCold => ("eviction_probe_cold", "RTT of an eviction probe that found a fresh (cold) process"),
            Metric::EvictionProbeWarm => ("eviction_probe_warm", "RTT of an eviction probe that reached the same warm process"),
        }
    }

    pub const fn name(self) -> &'static str {
        self.row().0
    }

    pub const fn unit(self) -> Unit {
        Unit::Microseconds
    }

    /// One line: what it measures, between which two moments.
    pub const fn meaning(self) -> &'static str {
        self.row().1
    }

    pub fn from_name(name: &str) -> Option<Metric> {
        Metric::ALL.into_iter().find(|m| m.name() == name)
    }
}

/// The family of metrics a runtime's own states make: `native_phase_<state>` is the time to
/// reach `<state>` from the previous state seen (the first from `requested`).
pub const NATIVE_PHASE_PREFIX: &str = "native_phase_";

/// The metric name of a runtime's native state.
pub fn native_phase(state: &str) -> String {
    format!("{NATIVE_PHASE_PREFIX}{state}")
}

/// Metric names as constants, for code that records them (all from [`Metric`]).
pub mod names {
    use super::Metric;
    pub const START_LATENCY: &str = Metric::StartLatency.name();
    pub const PHASE_QUEUE: &str = Metric::PhaseQueue.name();
    pub const PHASE_CREATE: &str = Metric::PhaseCreate.name();
    pub const PHASE_START: &str = Metric::PhaseStart.name();
    pub const PHASE_BOOT: &str = Metric::PhaseBoot.name();
    pub const PHASE_INIT: &str = Metric::PhaseInit.name();
    pub const PHASE_ENTRY: &str = Metric::PhaseEntry.name();
    pub const PHASE_TO_ENTRY: &str = Metric::PhaseToEntry.name();
    pub const PHASE_ENTRY_TO_CONNECT: &str = Metric::PhaseEntryToConnect.name();
    pub const PHASE_RUNTIME_BOOT: &str = Metric::PhaseRuntimeBoot.name();
    pub const RUNTIME_START_SKEW: &str = Metric::RuntimeStartSkew.name();
    pub const REQUEST_RTT: &str = Metric::RequestRtt.name();
    pub const REQUEST_RTT_COLD: &str = Metric::RequestRttCold.name();
    pub const REQUEST_RTT_WARM: &str = Metric::RequestRttWarm.name();
    pub const SERVICE_TIME: &str = Metric::ServiceTime.name();
    pub const OVERHEAD: &str = Metric::Overhead.name();
    pub const PAUSE_LATENCY: &str = Metric::PauseLatency.name();
    pub const RESUME_LATENCY: &str = Metric::ResumeLatency.name();
    pub const KILL_LATENCY: &str = Metric::KillLatency.name();
    pub const REMOVE_LATENCY: &str = Metric::RemoveLatency.name();
    pub const EVICTION_PROBE_COLD: &str = Metric::EvictionProbeCold.name();
    pub const EVICTION_PROBE_WARM: &str = Metric::EvictionProbeWarm.name();
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
    pub runtime: Option<String>,
    pub outcome: Outcome,
    pub error: Option<String>,
    /// Container/service/pid the runtime knows it by.
    pub runtime_id: Option<String>,
    /// The machine the platform placed it on (a Swarm node's hostname); empty on one-machine
    /// runtimes.
    #[serde(default)]
    pub node: Option<String>,
    /// Where it was told to dial its parent (`ws://host:port/`): the address that tier used.
    #[serde(default)]
    pub callback: Option<String>,
    pub hostname: Option<String>,
    pub pid: Option<u32>,
    pub boot_id: Option<String>,
    /// Launches (create+start) of the same parent already in flight when this one was requested.
    pub in_flight_at_request: u32,
    /// The launch was wanted (before stampede's own start slot and rate token).
    #[serde(default)]
    pub queued_us: Option<i64>,
    /// The runtime call began: start latency and the ready timeout count from here.
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
    fn timestamps_mut(&mut self) -> [&mut Option<i64>; 13] {
        [
            &mut self.queued_us,
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
        ]
    }
}

/// One row of `native_states.csv`: a state the platform itself reported for an instance
/// (Swarm task states, Kubernetes pod conditions, …), on our timeline. Long format, so any
/// runtime's states fit without a column per state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NativeStateRecord {
    pub instance_id: String,
    /// The platform's own name of the state, e.g. `pending`, `running`.
    pub state: String,
    pub time_us: i64,
    /// Where the time comes from, e.g. `swarm_task_status`, `pod_watch`.
    pub source: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum RequestOutcome {
    #[default]
    Ok,
    Failed,
    TimedOut,
}

/// One row of `requests.csv` (only kept when raw output is asked for). `Default` is an
/// all-zero row, as for [`InstanceRecord`]: what names the columns of a file with no rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
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
    /// received − scheduled (no coordinated omission): the `request_rtt` metric.
    pub request_rtt_us: Option<i64>,
    /// The `service_time` metric of this request.
    pub service_time_us: Option<i64>,
    /// The `overhead` metric of this request.
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
