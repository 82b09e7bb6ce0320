//! The `results.json` schema (versioned) and the pure functions that derive its summaries.
//!
//! The driver fills a [`Results`] from merged [`Metrics`](crate::stats::Metrics) and the
//! instance records; reporters read nothing else. Bump [`SCHEMA_VERSION`] on any breaking
//! change and update `schema/results.schema.json`.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use crate::measure::{InstanceRecord, Outcome, Role};
use crate::scenario::Scenario;
use crate::stats::Summary;

/// 2: runtime options under `runtime_options`, Swarm's `task_*_us` columns and `swarm_phase_*`
/// metrics replaced by `native_states.csv` and `native_phase_*`, `queued_us` and `phase_queue`,
/// `peak_alive`, requests.csv's `rtt_us` renamed `request_rtt_us` (docs/results.md, changelog).
pub const SCHEMA_VERSION: u32 = 2;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Results {
    pub schema_version: u32,
    pub run: RunInfo,
    /// The resolved scenario (file + CLI overrides, defaults filled in).
    pub scenario: Scenario,
    pub environment: Environment,
    pub accounting: Accounting,
    /// Action-tier metrics (the function under test), summed over non-warm-up groups.
    pub metrics: BTreeMap<String, Summary>,
    /// Scenario-tier metrics (their start phases), as measured by the driver.
    pub scenario_metrics: BTreeMap<String, Summary>,
    pub groups: Vec<GroupResult>,
    pub efficiency: Efficiency,
    /// Start latency against launches in flight when requested (actions).
    pub contention: Vec<ContentionPoint>,
    /// Action starts (ready) per second since run start.
    pub starts_per_second: Vec<u32>,
    /// The runtime-native states of the runtimes used, in the order an instance reaches them:
    /// the order of the `native_phase_<state>` metrics.
    #[serde(default)]
    pub native_states: Vec<String>,
    /// The most instances alive at one time (from launch returned to removed), all tiers.
    #[serde(default)]
    pub peak_alive: u64,
    /// Per machine the platform placed instances on (runtimes that name nodes: Swarm), so one
    /// slow or failing node stands out; empty on one-machine runtimes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nodes: Vec<NodeSummary>,
    pub warnings: Vec<Warning>,
    /// The merged histograms themselves (name → base64 HdrHistogram V2+DEFLATE), so that
    /// `stampede compare` can overlay full distributions without raw data.
    pub histograms: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Written at start and while running: a crash leaves this behind.
    Running,
    Complete,
    Failed,
    Interrupted,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunInfo {
    pub id: String,
    pub status: RunStatus,
    /// RFC 3339 wall-clock time of the run start (the zero of every `_us` timestamp).
    pub started_at: String,
    /// Wall clock of the run start, µs since the Unix epoch.
    pub started_at_unix_us: i64,
    pub duration_us: u64,
    pub exit_code: Option<i32>,
    pub seed: u64,
    pub command_line: Vec<String>,
    pub raw: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct Environment {
    pub stampede_version: String,
    pub hostname: String,
    pub os: String,
    pub kernel: String,
    pub cpus: u32,
    pub memory_bytes: u64,
    /// e.g. {"docker": "20.10.24 (API 1.41)"}
    pub runtime_versions: BTreeMap<String, String>,
    /// Runtime options in effect per group (network mode, swarm settings, start concurrency).
    pub runtime_options: BTreeMap<String, serde_json::Value>,
}

/// Every instance and request accounted for. See [`Accounting::balanced`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Accounting {
    /// Scenarios + actions launched through a runtime.
    pub instances_requested: u64,
    pub instances_ready: u64,
    /// Never ready, or died before their work was done.
    pub instances_failed: u64,
    /// Requests the scenario planned to send (N per action, fewer where a kill step cuts it short).
    pub requests_planned: u64,
    pub requests_sent: u64,
    pub requests_ok: u64,
    pub requests_failed: u64,
    pub requests_timed_out: u64,
    /// Planned but never sent (the action failed or the run was interrupted first).
    pub requests_not_sent: u64,
    /// Websocket connections refused for a missing/wrong run token.
    pub connections_refused: u64,
    /// Connections closed for a malformed or unexpected message.
    pub protocol_errors: u64,
    /// Connections dropped for not finishing the websocket upgrade and `hello` in time.
    #[serde(default)]
    pub handshake_timeouts: u64,
    /// Connections that were not a websocket upgrade at all.
    #[serde(default)]
    pub handshake_failures: u64,
    /// Connections dropped at once because too many were still in their handshake (a flood).
    #[serde(default)]
    pub connections_shed: u64,
    /// `hello`s of another protocol version.
    #[serde(default)]
    pub version_mismatches: u64,
    /// Links closed for a message over the size the scenario can legitimately send.
    #[serde(default)]
    pub messages_too_large: u64,
    /// Links whose peer stopped answering (no message or ping within the liveness deadline).
    #[serde(default)]
    pub links_stalled: u64,
}

impl Accounting {
    pub fn add(&mut self, o: &Accounting) {
        self.instances_requested += o.instances_requested;
        self.instances_ready += o.instances_ready;
        self.instances_failed += o.instances_failed;
        self.requests_planned += o.requests_planned;
        self.requests_sent += o.requests_sent;
        self.requests_ok += o.requests_ok;
        self.requests_failed += o.requests_failed;
        self.requests_timed_out += o.requests_timed_out;
        self.requests_not_sent += o.requests_not_sent;
        self.connections_refused += o.connections_refused;
        self.protocol_errors += o.protocol_errors;
        self.handshake_timeouts += o.handshake_timeouts;
        self.handshake_failures += o.handshake_failures;
        self.connections_shed += o.connections_shed;
        self.version_mismatches += o.version_mismatches;
        self.messages_too_large += o.messages_too_large;
        self.links_stalled += o.links_stalled;
    }

    /// Connections lost or refused, by cause, in words (all of them, zeros included).
    pub fn connection_losses(&self) -> [(&'static str, u64); 8] {
        [
            ("refused (bad token)", self.connections_refused),
            ("protocol errors", self.protocol_errors),
            ("handshake timeouts", self.handshake_timeouts),
            ("not a websocket", self.handshake_failures),
            ("shed (flood)", self.connections_shed),
            ("other protocol version", self.version_mismatches),
            ("message too large", self.messages_too_large),
            ("peer stalled", self.links_stalled),
        ]
    }

    /// The identities that must hold; each violated one is named.
    pub fn imbalances(&self) -> Vec<String> {
        let mut v = Vec::new();
        if self.instances_requested != self.instances_ready + self.instances_failed {
            v.push(format!(
                "instances_requested ({}) != instances_ready ({}) + instances_failed ({})",
                self.instances_requested, self.instances_ready, self.instances_failed
            ));
        }
        if self.requests_sent != self.requests_ok + self.requests_failed + self.requests_timed_out {
            v.push(format!(
                "requests_sent ({}) != requests_ok ({}) + requests_failed ({}) + requests_timed_out ({})",
                self.requests_sent, self.requests_ok, self.requests_failed, self.requests_timed_out
            ));
        }
        if self.requests_planned != self.requests_sent + self.requests_not_sent {
            v.push(format!(
                "requests_planned ({}) != requests_sent ({}) + requests_not_sent ({})",
                self.requests_planned, self.requests_sent, self.requests_not_sent
            ));
        }
        v
    }

    pub fn balanced(&self) -> bool {
        self.imbalances().is_empty()
    }

    /// Nothing failed, timed out or was left unsent.
    pub fn all_ok(&self) -> bool {
        self.instances_failed == 0
            && self.requests_failed == 0
            && self.requests_timed_out == 0
            && self.requests_not_sent == 0
            && self.protocol_errors == 0
            && self.version_mismatches == 0
            && self.messages_too_large == 0
            && self.links_stalled == 0
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GroupResult {
    pub index: u32,
    pub name: String,
    pub runtime: String,
    pub action_runtime: String,
    pub warmup: bool,
    pub accounting: Accounting,
    pub metrics: BTreeMap<String, Summary>,
    pub efficiency: Efficiency,
}

/// How far a run (or group) was from its ideal, and why.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
pub struct Efficiency {
    /// N·M: the duration with zero start-up, zero transport and no contention.
    pub ideal_us: u64,
    /// From the first launch requested to the last action done.
    pub actual_us: u64,
    /// ideal / actual (1.0 is perfect).
    pub ratio: f64,
    /// actual − ideal, split: waiting for the slowest action to become ready ...
    pub startup_us: u64,
    /// ... the mean per-request transport overhead times N ...
    pub transport_us: u64,
    /// ... and the rest (contention, stragglers, pauses).
    pub other_us: u64,
}

impl Efficiency {
    pub fn new(ideal_us: u64, actual_us: u64, startup_us: u64, transport_us: u64) -> Self {
        let gap = actual_us.saturating_sub(ideal_us);
        let startup_us = startup_us.min(gap);
        let transport_us = transport_us.min(gap - startup_us);
        Efficiency {
            ideal_us,
            actual_us,
            ratio: if actual_us == 0 { 0.0 } else { ideal_us as f64 / actual_us as f64 },
            startup_us,
            transport_us,
            other_us: gap - startup_us - transport_us,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ContentionPoint {
    /// Launches already in flight when these were requested.
    pub in_flight: u32,
    pub count: u64,
    pub p50_us: u64,
    pub max_us: u64,
}

/// One node's share of a run: its instances, how they ended, how fast they started.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeSummary {
    pub node: String,
    /// Instances placed there (scenarios and actions).
    pub instances: u64,
    pub ready: u64,
    pub failed: u64,
    /// Start latency (requested → ready) of its instances that became ready.
    pub start_p50_us: u64,
    pub start_max_us: u64,
    /// Instances that became ready there per second, from its first launch call to its last
    /// ready.
    pub starts_per_second: f64,
}

/// [`NodeSummary`] per node named in the records, by name.
pub fn per_node(instances: &[InstanceRecord]) -> Vec<NodeSummary> {
    let mut by: BTreeMap<&str, Vec<&InstanceRecord>> = BTreeMap::new();
    for r in instances {
        if let Some(n) = r.node.as_deref().filter(|n| !n.is_empty()) {
            by.entry(n).or_default().push(r);
        }
    }
    by.into_iter()
        .map(|(node, rs)| {
            let mut lat: Vec<i64> = rs.iter().filter_map(|r| r.start_latency_us()).collect();
            lat.sort_unstable();
            let ready = rs.iter().filter(|r| r.outcome == Outcome::Ready).count() as u64;
            let first = rs.iter().filter_map(|r| r.requested_us).min();
            let last = rs.iter().filter_map(|r| r.ready_us).max();
            let span_s = match (first, last) {
                (Some(a), Some(b)) if b > a => (b - a) as f64 / 1e6,
                _ => 0.0,
            };
            NodeSummary {
                node: node.to_owned(),
                instances: rs.len() as u64,
                ready,
                failed: rs.iter().filter(|r| r.outcome == Outcome::Failed).count() as u64,
                start_p50_us: lat.get(lat.len().saturating_sub(1) / 2).map_or(0, |v| u64::try_from(*v).unwrap_or(0)),
                start_max_us: lat.last().map_or(0, |v| u64::try_from(*v).unwrap_or(0)),
                starts_per_second: if span_s > 0.0 { lat.len() as f64 / span_s } else { 0.0 },
            }
        })
        .collect()
}

/// Every warning stampede raises: one table of name and meaning (documented in
/// docs/results.md, checked by a test).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WarningKind {
    AccountingImbalance,
    InstancesFailed,
    ConnectionsRefused,
    RunTimeout,
    ClockSkew,
    ImageFillerIgnored,
    CleanupFailed,
    DriverCpuSaturated,
    MachineCpuSaturated,
    FailureRate,
    FewSamples,
}

impl WarningKind {
    pub const ALL: [WarningKind; 11] = [
        WarningKind::AccountingImbalance,
        WarningKind::InstancesFailed,
        WarningKind::ConnectionsRefused,
        WarningKind::RunTimeout,
        WarningKind::ClockSkew,
        WarningKind::ImageFillerIgnored,
        WarningKind::CleanupFailed,
        WarningKind::DriverCpuSaturated,
        WarningKind::MachineCpuSaturated,
        WarningKind::FailureRate,
        WarningKind::FewSamples,
    ];

    /// The warning's row of the table: its name and what it means.
    const fn row(self) -> (&'static str, &'static str) {
        match self {
            WarningKind::AccountingImbalance => ("accounting_imbalance", "the accounting identities do not hold (a bug)"),
            WarningKind::InstancesFailed => ("instances_failed", "instances failed; instances.csv's error column says why"),
            WarningKind::ConnectionsRefused => ("connections_refused", "connections without the run token were refused"),
            WarningKind::RunTimeout => ("run_timeout", "the run hit its timeout and was stopped"),
            WarningKind::ClockSkew => ("clock_skew", "children's clocks disagree with the driver's"),
            WarningKind::ImageFillerIgnored => ("image_filler_ignored", "image_filler_mb on a runtime without images"),
            WarningKind::CleanupFailed => ("cleanup_failed", "something of the run could not be removed"),
            WarningKind::DriverCpuSaturated => ("driver_cpu_saturated", "the driver's CPU was saturated: the numbers measure the load generator"),
            WarningKind::MachineCpuSaturated => ("machine_cpu_saturated", "the machine's CPUs were saturated"),
            WarningKind::FailureRate => ("failure_rate", "more than 1 % of requests or instances failed"),
            WarningKind::FewSamples => ("few_samples", "too few samples for the percentiles shown"),
        }
    }

    pub const fn name(self) -> &'static str {
        self.row().0
    }

    pub const fn meaning(self) -> &'static str {
        self.row().1
    }
}

impl Warning {
    pub fn new(kind: WarningKind, message: impl Into<String>) -> Warning {
        Warning { kind: kind.name().to_owned(), message: message.into() }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Warning {
    /// Stable identifier, e.g. `driver_cpu_saturated`, `accounting_imbalance`.
    pub kind: String,
    /// What happened and what to do about it.
    pub message: String,
}

/// The most instances alive at one time: each counts from its launch call returning
/// (`started`) to its removal (`removed`, or the end of the records when it has none).
pub fn peak_alive(instances: &[InstanceRecord]) -> u64 {
    let mut events: Vec<(i64, i64)> = Vec::with_capacity(instances.len() * 2);
    for r in instances {
        if let Some(s) = r.started_us {
            events.push((s, 1));
            if let Some(e) = r.removed_us {
                events.push((e, -1));
            }
        }
    }
    // At equal times a removal comes first: one leaving as another arrives is not two alive.
    events.sort_unstable();
    let (mut alive, mut peak) = (0i64, 0i64);
    for (_, d) in events {
        alive += d;
        peak = peak.max(alive);
    }
    u64::try_from(peak).unwrap_or(0)
}

/// Start latency grouped by launches in flight at request time (actions that became ready).
pub fn contention(instances: &[InstanceRecord]) -> Vec<ContentionPoint> {
    let mut by: BTreeMap<u32, Vec<i64>> = BTreeMap::new();
    for r in instances.iter().filter(|r| r.role == Some(Role::Action)) {
        if let Some(l) = r.start_latency_us() {
            by.entry(r.in_flight_at_request).or_default().push(l);
        }
    }
    // One sorted vector per bucket is fine here: instances, unlike requests, are few
    // (thousands) and their records are kept anyway for instances.csv.
    by.into_iter()
        .map(|(in_flight, mut v)| {
            v.sort_unstable();
            ContentionPoint {
                in_flight,
                count: v.len() as u64,
                p50_us: u64::try_from(v[(v.len() - 1) / 2]).unwrap_or(0),
                max_us: u64::try_from(*v.last().unwrap_or(&0)).unwrap_or(0),
            }
        })
        .collect()
}

/// Actions that became ready in each second since the run start.
pub fn starts_per_second(instances: &[InstanceRecord]) -> Vec<u32> {
    let mut v: Vec<u32> = Vec::new();
    for r in instances.iter().filter(|r| r.role == Some(Role::Action)) {
        if let (Some(t), Outcome::Ready | Outcome::Pending) = (r.ready_us, r.outcome) {
            let s = usize::try_from(t.max(0) / 1_000_000).unwrap_or(0);
            if v.len() <= s {
                v.resize(s + 1, 0);
            }
            v[s] += 1;
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accounting_names_what_does_not_balance() {
        let mut a = Accounting { instances_requested: 3, instances_ready: 2, instances_failed: 1, ..Default::default() };
        assert!(a.balanced());
        a.requests_planned = 10;
        a.requests_sent = 9;
        a.requests_ok = 9;
        let why = a.imbalances();
        assert_eq!(why.len(), 1);
        assert!(why[0].starts_with("requests_planned (10)"), "{why:?}");
        a.requests_not_sent = 1;
        assert!(a.balanced());
        assert!(!a.all_ok());
    }

    #[test]
    fn efficiency_splits_the_gap_without_exceeding_it() {
        let e = Efficiency::new(200_000, 500_000, 250_000, 100_000);
        assert!((e.ratio - 0.4).abs() < 1e-9);
        assert_eq!(e.startup_us + e.transport_us + e.other_us, 300_000);
        assert_eq!(e.transport_us, 50_000);
    }

    #[test]
    fn contention_buckets_by_in_flight() {
        let mk = |k, req, ready| InstanceRecord {
            role: Some(Role::Action),
            in_flight_at_request: k,
            requested_us: Some(req),
            ready_us: Some(ready),
            outcome: Outcome::Ready,
            ..Default::default()
        };
        let c = contention(&[mk(0, 0, 10), mk(0, 0, 30), mk(3, 0, 100)]);
        assert_eq!(c.len(), 2);
        assert_eq!((c[0].in_flight, c[0].count, c[0].p50_us, c[0].max_us), (0, 2, 10, 30));
        assert_eq!((c[1].in_flight, c[1].count), (3, 1));
        assert_eq!(starts_per_second(&[mk(0, 0, 10), mk(0, 0, 1_500_000)]), vec![1, 1]);
    }

    #[test]
    fn per_node_splits_instances_by_node_and_skips_unnamed_ones() {
        let mk = |node: Option<&str>, outcome, req: i64, ready: Option<i64>| InstanceRecord {
            node: node.map(str::to_owned),
            outcome,
            requested_us: Some(req),
            ready_us: ready,
            ..Default::default()
        };
        let rows = [
            mk(Some("b"), Outcome::Ready, 0, Some(1_000_000)),
            mk(Some("a"), Outcome::Ready, 0, Some(300_000)),
            mk(Some("a"), Outcome::Ready, 0, Some(500_000)),
            mk(Some("a"), Outcome::Failed, 0, None),
            mk(None, Outcome::Ready, 0, Some(1)),
        ];
        let n = per_node(&rows);
        assert_eq!(n.iter().map(|s| s.node.as_str()).collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!((n[0].instances, n[0].ready, n[0].failed), (3, 2, 1));
        assert_eq!((n[0].start_p50_us, n[0].start_max_us), (300_000, 500_000));
        assert!((n[0].starts_per_second - 4.0).abs() < 1e-9, "2 ready in 0.5 s");
        assert!(per_node(&rows[4..]).is_empty());
    }

    #[test]
    fn peak_alive_counts_overlaps_only() {
        let mk = |s, e| InstanceRecord { started_us: Some(s), removed_us: e, ..Default::default() };
        // [0,10) [5,20) [10,30) and one never removed from 25: two at once at most, since the
        // first leaves as the third arrives.
        assert_eq!(peak_alive(&[mk(0, Some(10)), mk(5, Some(20)), mk(10, Some(30)), mk(25, None)]), 2);
        assert_eq!(peak_alive(&[mk(0, Some(10)), mk(5, Some(20)), mk(9, Some(30))]), 3);
        assert_eq!(peak_alive(&[mk(0, Some(10)), mk(10, Some(20))]), 1);
        assert_eq!(peak_alive(&[]), 0);
    }
}
