//! Messages, serialised as JSON text frames tagged by `type`.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use stampede_core::measure::{InstanceRecord, RequestRecord, Role};
use stampede_core::results::Accounting;
use stampede_core::scenario::{Group, WorkKind};

/// Who a child is, sent in its first message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Identity {
    pub instance_id: String,
    pub role: Role,
    pub hostname: String,
    /// `/proc/sys/kernel/random/boot_id`: tells observers on different kernels apart.
    pub boot_id: String,
    pub pid: u32,
    /// The child's wall clock at process entry, µs since the Unix epoch.
    pub process_entry_unix_us: i64,
    /// The wall clock at the zero of the child's monotonic clock, µs since the Unix epoch.
    pub clock_anchor_unix_us: i64,
    /// Whether this process has served a request before (false = the next request is cold).
    pub served_before: bool,
}

/// What a driver tells a scenario to do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Assignment {
    pub run_id: String,
    pub group_index: u32,
    pub scenario_index: u32,
    pub group: Group,
    pub seed: u64,
    /// Keep a record of every request (requests.csv).
    pub raw: bool,
    /// Image (tag or ID) the scenario launches its actions from, for container runtimes.
    pub image: String,
    /// Launch rate limit for this scenario's actions: the group's own, or its share of the
    /// run's, whichever is stricter.
    pub start_rate: Option<stampede_core::scenario::StartRate>,
}

/// A scenario's final report: everything it measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ScenarioReport {
    /// Name → base64 HdrHistogram (see `stampede_core::stats::Metrics::to_wire`).
    pub metrics: BTreeMap<String, String>,
    /// One record per action instance, on the scenario's own timeline.
    pub instances: Vec<InstanceRecord>,
    /// Only when raw output was asked for.
    pub requests: Vec<RequestRecord>,
    /// The runtime's own states of each action instance (native_states.csv), scenario timeline.
    #[serde(default)]
    pub native_states: Vec<stampede_core::measure::NativeStateRecord>,
    pub accounting: Accounting,
    /// When the scenario sent its first launch and when its last action finished (its timeline).
    pub work_started_us: Option<i64>,
    pub work_finished_us: Option<i64>,
    /// Whether the scenario stopped early because it was told to.
    pub interrupted: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Progress {
    pub actions_launched: u64,
    pub actions_ready: u64,
    pub actions_failed: u64,
    pub requests_done: u64,
    pub requests_planned: u64,
    /// Of `requests_done`, answered intact: kept as answered if the scenario dies before its report.
    #[serde(default)]
    pub requests_ok: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Message {
    // ---- child → parent ----
    /// First message of every connection.
    Hello { version: u32, identity: Identity },
    /// The child is ready for work. `self_ready_unix_us` is its own clock when it said so.
    Ready { self_ready_unix_us: i64 },
    Response {
        id: u64,
        /// Time the action spent on the work, by its own clock.
        service_time_us: u64,
        /// First request this process served.
        cold: bool,
        payload: String,
    },
    Progress(Progress),
    /// `hold = "all_ready"`: every action of this scenario is ready (or failed to start).
    Held,
    /// `hold = "all_ready"`: every action of this scenario has done its requests; its
    /// instances stay up until the driver says `release`.
    WorkDone,
    Report(Box<ScenarioReport>),
    Error { message: String },

    // ---- parent → child ----
    Assign(Box<Assignment>),
    Request {
        id: u64,
        work: WorkKind,
        duration_us: u64,
        payload: String,
        /// Bytes the response payload must have.
        response_size: u32,
    },
    /// `hold = "all_ready"`: the whole group is ready: send requests.
    Go,
    /// `hold = "all_ready"`: the whole group's work is done: stop and remove the actions.
    Release,
    /// Stop work, report what you have and exit.
    Stop,
}

impl Message {
    pub fn kind(&self) -> &'static str {
        match self {
            Message::Hello { .. } => "hello",
            Message::Ready { .. } => "ready",
            Message::Response { .. } => "response",
            Message::Progress(_) => "progress",
            Message::Held => "held",
            Message::WorkDone => "work_done",
            Message::Go => "go",
            Message::Release => "release",
            Message::Report(_) => "report",
            Message::Error { .. } => "error",
            Message::Assign(_) => "assign",
            Message::Request { .. } => "request",
            Message::Stop => "stop",
        }
    }
}

/// The payload a request carries: deterministic in (id, size) so the receiver can tell a
/// corrupted or misrouted echo from the real one.
pub fn request_payload(id: u64, size: u32) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut x = id.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..size)
        .map(|_| {
            // xorshift: cheap, and different ids give different strings.
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            ALPHABET[(x % ALPHABET.len() as u64) as usize] as char
        })
        .collect()
}

/// What an action answers: the request's bytes echoed, cut or padded to `response_size`.
pub fn echo_payload(request: &str, response_size: u32) -> String {
    let n = response_size as usize;
    if request.len() >= n {
        request[..n].to_owned()
    } else {
        let mut s = String::with_capacity(n);
        s.push_str(request);
        s.extend(std::iter::repeat_n('.', n - request.len()));
        s
    }
}

/// Whether `response` is the intact echo of `request` (see [`echo_payload`]).
pub fn echo_is_intact(request: &str, response: &str, response_size: u32) -> bool {
    response.len() == response_size as usize && response == echo_payload(request, response_size)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_differ_by_id_and_echo_checks_catch_corruption() {
        let a = request_payload(1, 64);
        assert_eq!(a.len(), 64);
        assert_ne!(a, request_payload(2, 64));
        assert!(echo_is_intact(&a, &echo_payload(&a, 64), 64));
        assert!(echo_is_intact(&a, &echo_payload(&a, 10), 10));
        assert!(echo_is_intact(&a, &echo_payload(&a, 100), 100));
        let mut bad = echo_payload(&a, 64);
        bad.replace_range(5..6, if &a[5..6] == "x" { "y" } else { "x" });
        assert!(!echo_is_intact(&a, &bad, 64));
        assert!(!echo_is_intact(&a, &request_payload(2, 64), 64));
    }

    #[test]
    fn messages_round_trip_with_a_type_tag() {
        let m = Message::Request { id: 7, work: WorkKind::Spin, duration_us: 5000, payload: "ab".into(), response_size: 2 };
        let s = serde_json::to_string(&m).unwrap();
        assert!(s.contains("\"type\":\"request\""), "{s}");
        assert_eq!(serde_json::from_str::<Message>(&s).unwrap(), m);
        let s = serde_json::to_string(&Message::Stop).unwrap();
        assert_eq!(s, r#"{"type":"stop"}"#);
    }
}
