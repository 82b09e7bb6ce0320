//! The validated, typed scenario: what one run will do.
//!
//! Everything here has already passed validation (see [`super`]); the tiers take
//! these values as they are. Durations are `std::time::Duration`; counts are `u32`.
//! The whole model serialises to JSON so the driver can hand a group to a scenario tier
//! and record the resolved scenario in `results.json`.

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// A whole scenario file after validation and CLI overrides.
///
/// Fields added after the first results were written carry `#[serde(default)]`, so that
/// `stampede report` and `stampede compare` still read older results folders.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scenario {
    /// Name shown in results; defaults to the file stem, or "cli" without a file.
    pub name: String,
    /// Seed of every random draw in the run. Chosen at random and recorded when not given.
    pub seed: Option<u64>,
    /// How groups run relative to each other.
    pub groups_mode: GroupsMode,
    /// Hard limit on the whole run; when it passes, the run stops as on Ctrl-C.
    #[serde(with = "duration_us", rename = "run_timeout_us")]
    pub run_timeout: Duration,
    /// Launch rate limit of the whole run, split evenly among all scenario instances.
    #[serde(default)]
    pub start_rate: Option<StartRate>,
    pub groups: Vec<Group>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GroupsMode {
    /// One group after the other; a group's `start_delay` counts from the previous group's end.
    Sequence,
    /// All groups at once; a group's `start_delay` counts from the run's start.
    Parallel,
}

/// The name of a runtime (`process`, `docker`, `swarm`, …) as the scenario file spells it.
///
/// The core knows no runtime by name: the list, and what each can do, comes from the
/// [`RuntimeCatalog`](super::RuntimeCatalog) the binary hands to the parser.
pub type RuntimeName = String;

/// How long a group's instances live relative to each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Hold {
    /// Each action starts, works and goes away on its own schedule.
    #[default]
    None,
    /// Every instance of the group is started and ready before any request is sent, and all
    /// stay until the whole group's work is done: `1 + S + S·A` alive at once.
    AllReady,
}

/// One group: S scenarios × A actions × N requests, and how they behave.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Group {
    pub name: String,
    /// Runtime that launches the scenarios (and, unless `action_runtime` says otherwise, the actions).
    pub runtime: RuntimeName,
    /// Runtime the scenarios use to launch their actions; `None` = same as `runtime`.
    pub action_runtime: Option<RuntimeName>,
    /// Image for container runtimes (tag or ID). `None` = the default `stampede:latest`.
    pub image: Option<String>,
    /// S
    pub scenarios: u32,
    /// A (per scenario)
    pub actions: u32,
    /// N (per action)
    pub requests: u32,
    pub work: Work,
    pub payload: Payload,
    pub arrivals: Arrivals,
    pub lifecycle: Lifecycle,
    /// Delay before this group starts (see [`GroupsMode`]).
    #[serde(with = "duration_us", rename = "start_delay_us")]
    pub start_delay: Duration,
    /// Most launches (create+start) one scenario has in flight at once; `None` = runtime default.
    pub start_concurrency: Option<u32>,
    pub timeouts: Timeouts,
    /// Per-action steps (pause/resume, kill).
    pub steps: Vec<Step>,
    /// Warm-up group: kept in raw data and instances.csv, left out of summaries.
    pub warmup: bool,
    /// Start, work, stop, repeat (see [`Churn`]); `None` = one cycle.
    #[serde(default)]
    pub churn: Option<Churn>,
    /// Launch rate limit of each scenario of this group; `None` = unlimited.
    #[serde(default)]
    pub start_rate: Option<StartRate>,
    /// Pad the action image with a filler file of this many MiB (container runtimes; 0 = none),
    /// to see what image size does to start time.
    #[serde(default)]
    pub image_filler_mb: u32,
    /// Whether the group's instances are held alive together (see [`Hold`]).
    #[serde(default)]
    pub hold: Hold,
    /// Options of each runtime this group uses (and of any other whose table the file has),
    /// keyed by runtime name: `docker = { … }` in the file. Each runtime's crate reads and
    /// validates its own table and fills its defaults; the core only carries the result.
    #[serde(default)]
    pub runtime_options: std::collections::BTreeMap<RuntimeName, serde_json::Value>,
}

impl Group {
    /// The runtime that launches this group's actions.
    pub fn effective_action_runtime(&self) -> &str {
        self.action_runtime.as_deref().unwrap_or(&self.runtime)
    }
    /// The validated options of `runtime` for this group (`null` when it has none).
    pub fn options_of(&self, runtime: &str) -> serde_json::Value {
        self.runtime_options.get(runtime).cloned().unwrap_or(serde_json::Value::Null)
    }
    /// Ideal duration of one action's request sequence: N·M for sequential requests,
    /// with M the mean work duration. Saturates at `Duration::MAX` rather than panic (the
    /// parser keeps it within [`MAX_DURATION`](super::limits::MAX_DURATION); a results file
    /// read back may not have been through it).
    pub fn ideal_duration(&self) -> Duration {
        saturating_secs(self.work.duration.mean().as_secs_f64() * f64::from(self.requests))
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Work {
    pub kind: WorkKind,
    pub duration: DurationDist,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkKind {
    /// Sleep M: the action is idle, like a function waiting on I/O.
    Sleep,
    /// Busy-spin M by the clock: the action burns a CPU, like a compute function.
    Spin,
}

/// A duration that is fixed or drawn per request from a distribution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "dist", rename_all = "snake_case")]
pub enum DurationDist {
    Fixed {
        #[serde(with = "duration_us", rename = "value_us")]
        value: Duration,
    },
    Uniform {
        #[serde(with = "duration_us", rename = "min_us")]
        min: Duration,
        #[serde(with = "duration_us", rename = "max_us")]
        max: Duration,
    },
    Exponential {
        #[serde(with = "duration_us", rename = "mean_us")]
        mean: Duration,
    },
    /// Lognormal given by its median and the sigma of the underlying normal.
    Lognormal {
        #[serde(with = "duration_us", rename = "median_us")]
        median: Duration,
        sigma: f64,
    },
}

impl DurationDist {
    pub fn fixed(value: Duration) -> Self {
        DurationDist::Fixed { value }
    }
    /// Mean of the distribution (used for the ideal duration); saturates at `Duration::MAX`
    /// (a lognormal's mean, median · e^(σ²/2), overflows for a large σ).
    pub fn mean(&self) -> Duration {
        match self {
            DurationDist::Fixed { value } => *value,
            DurationDist::Uniform { min, max } => min.saturating_add(*max) / 2,
            DurationDist::Exponential { mean } => *mean,
            DurationDist::Lognormal { median, sigma } => {
                saturating_secs(median.as_secs_f64() * (sigma * sigma / 2.0).exp())
            }
        }
    }
}

/// Seconds as a `Duration`, saturating: infinity and overflow give `Duration::MAX`, NaN and
/// negative values zero (`Duration::mul_f64` would panic on either).
fn saturating_secs(secs: f64) -> Duration {
    if secs.is_nan() {
        return Duration::ZERO;
    }
    Duration::try_from_secs_f64(secs.max(0.0)).unwrap_or(Duration::MAX)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payload {
    /// Bytes the scenario sends with each request.
    pub request: u32,
    /// Bytes the action echoes back (the first `min(request, response)` bytes are the request's
    /// own bytes, checked intact by the scenario).
    pub response: u32,
}

/// When an action's requests are sent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum Arrivals {
    /// Next request right after the previous response.
    Closed,
    /// Requests scheduled on absolute times: bursts of `burst` requests, one burst per
    /// inter-arrival time drawn from `iat`. Latency counts from the scheduled time.
    Open { iat: Iat, burst: u32 },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "dist", rename_all = "snake_case")]
pub enum Iat {
    Fixed {
        #[serde(with = "duration_us", rename = "value_us")]
        value: Duration,
    },
    Exponential {
        #[serde(with = "duration_us", rename = "mean_us")]
        mean: Duration,
    },
    /// `shift + Exp(mean)`, as STeLLAR draws inter-arrival times.
    ShiftedExponential {
        #[serde(with = "duration_us", rename = "shift_us")]
        shift: Duration,
        #[serde(with = "duration_us", rename = "mean_us")]
        mean: Duration,
    },
}

impl Iat {
    /// Mean inter-arrival time.
    pub fn mean(&self) -> Duration {
        match self {
            Iat::Fixed { value } => *value,
            Iat::Exponential { mean } => *mean,
            Iat::ShiftedExponential { shift, mean } => shift.saturating_add(*mean),
        }
    }
}

/// How long action instances live.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum Lifecycle {
    /// Start every action once, keep it warm, send it all N requests, stop it at the end.
    KeepWarm,
    /// A fresh instance for every request (closed loop) or burst (open loop): cold every time.
    OneShot,
    /// Open loop only: freeze the instance while it is idle between bursts and thaw it just
    /// before the next, as FaaS platforms do; the thaw shows in the next burst's latency.
    PauseBetweenBursts,
    /// Keep warm for the N requests, stay idle for `idle`, then send one probe request: its
    /// cold/warm flag says whether it reached the same warm instance (no eviction) or not.
    EvictionProbe {
        #[serde(with = "duration_us", rename = "idle_us")]
        idle: Duration,
    },
}

/// Start, work, stop, repeat: each action slot runs `cycles` instances one after the other, or
/// keeps starting fresh ones until `duration` has passed (whichever is given; both = both limits).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Churn {
    pub cycles: Option<u32>,
    #[serde(with = "option_duration_us", rename = "duration_us")]
    pub duration: Option<Duration>,
}

/// A start-rate limit (token bucket): at most `qps` launches per second on average, with up to
/// `burst` at once. Applies per scenario (group option) or to the whole run (top level).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct StartRate {
    pub qps: f64,
    pub burst: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Timeouts {
    /// From launch request to `ready`.
    #[serde(with = "duration_us", rename = "ready_us")]
    pub ready: Duration,
    /// From sending (or scheduled time) to response.
    #[serde(with = "duration_us", rename = "request_us")]
    pub request: Duration,
}

/// A per-action step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum Step {
    /// After `after_requests` responses, pause the action for `duration`, then resume it.
    Pause {
        actions: ActionSelector,
        after_requests: u32,
        #[serde(with = "duration_us", rename = "duration_us")]
        duration: Duration,
    },
    /// After `after_requests` responses, kill the action; it gets no further requests.
    Kill { actions: ActionSelector, after_requests: u32 },
}

impl Step {
    pub fn actions(&self) -> &ActionSelector {
        match self {
            Step::Pause { actions, .. } | Step::Kill { actions, .. } => actions,
        }
    }
    pub fn after_requests(&self) -> u32 {
        match self {
            Step::Pause { after_requests, .. } | Step::Kill { after_requests, .. } => *after_requests,
        }
    }
}

/// Which actions (by index within their scenario) a step applies to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionSelector {
    All,
    Indices(Vec<u32>),
}

impl ActionSelector {
    pub fn contains(&self, index: u32) -> bool {
        match self {
            ActionSelector::All => true,
            ActionSelector::Indices(v) => v.contains(&index),
        }
    }
}

/// (De)serialises an `Option<Duration>` as integer microseconds or null.
pub mod option_duration_us {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_some(&u64::try_from(d.as_micros()).unwrap_or(u64::MAX)),
            None => s.serialize_none(),
        }
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        Ok(Option::<u64>::deserialize(d)?.map(Duration::from_micros))
    }
}

/// (De)serialises a `Duration` as integer microseconds, the unit of every `_us` field.
pub mod duration_us {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_micros(u64::deserialize(d)?))
    }
}
