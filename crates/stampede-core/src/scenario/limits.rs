//! How big a scenario may be. Every count, size, length and duration of a scenario, and the
//! values derived from them that the tiers compute with or allocate for, has a limit here; the
//! parser refuses a scenario over any of them (exit 2, at the line and field to change) before
//! anything is allocated for it or started.
//!
//! The limits are generous for real runs (thousands of containers, millions of requests, runs
//! of days) and low enough that no accepted scenario overflows an integer, a `Duration` or an
//! `Instant` in any tier, or asks one process for more memory than a large host has. Each
//! names what it protects. The same list, for users, is in the module docs of
//! [`super`] ("Limits") and in the README.

use std::time::Duration;

/// Largest scenario file: 1 MiB. Read no further than that (a scenario is a few KiB; this
/// also stops `stampede run /dev/zero`).
pub const MAX_FILE_BYTES: u64 = 1024 * 1024;

/// Longest string value (image, runtime options): 4096 bytes. Run and group names have their
/// own, shorter limit (64), since they become file and container names.
pub const MAX_STRING_BYTES: usize = 4096;

/// Most groups in one scenario.
pub const MAX_GROUPS: usize = 1_000;

/// Most `[[group.steps]]` in one group.
pub const MAX_STEPS: usize = 1_000;

/// Most action indices listed by the steps of one group, all lists together
/// (`actions = "all"` counts none).
pub const MAX_STEP_INDICES: usize = 100_000;

/// Most entries of a list or table in a runtime's options (placement constraints, node
/// selectors, tolerations).
pub const MAX_OPTION_ENTRIES: usize = 1_000;

/// Most requests per action, N: 2^24 = 16,777,216. Each action's schedule is drawn up front,
/// 16 bytes per request for the work durations and 16 for the arrival offsets.
pub const MAX_REQUESTS: u32 = 1 << 24;

/// Most requests one scenario instance plans, A·N (one more per action for an eviction
/// probe): 2^24 = 16,777,216. A scenario instance holds the schedules and then the results of
/// all its actions' requests at once, about 128 bytes a request: 2 GiB at the limit.
pub const MAX_SCENARIO_REQUESTS: u64 = 1 << 24;

/// Most requests in a whole run, Σ S·A·N over the groups, times the churn cycles:
/// 2^32 = 4,294,967,296.
pub const MAX_RUN_REQUESTS: u64 = 1 << 32;

/// Most instances a whole run starts, 2^24 = 16,777,216: Σ S + S·A·k over the groups, with k
/// the instances of one action slot (churn cycles, times N for `one_shot` closed loop or the
/// number of bursts for `one_shot` open loop; a churn by duration alone counts one cycle).
/// Each instance is a record in memory and a row of `instances.csv`; the count bounds S, A,
/// `start_concurrency` and a start rate's `burst` too.
pub const MAX_INSTANCES: u64 = 1 << 24;

/// Largest payload in either direction: 16 MiB.
pub const MAX_PAYLOAD: u32 = 16 * 1024 * 1024;

/// Most payload bytes one scenario instance has in flight when each of its actions has one
/// burst out, A · burst · (request + response) (burst = 1 for a closed loop): 4 GiB.
pub const MAX_INFLIGHT_PAYLOAD: u64 = 4 * 1024 * 1024 * 1024;

/// Largest `image_filler_mb`: 10 GiB of filler.
pub const MAX_IMAGE_FILLER_MB: u32 = 10 * 1024;

/// Longest duration anywhere in a scenario, written or derived: 365 days (`"8760h"`). It
/// bounds every duration value, the mean of every distribution (a lognormal's is
/// median · e^(σ²/2)), one action's ideal time (N × mean work duration), its open-loop
/// schedule ((bursts − 1) × mean inter-arrival time), and the gap between two launches of a
/// start rate (1/qps; for the run's `start_rate`, which is split among all scenario
/// instances, ΣS/qps). The tiers add such durations to clock readings and sum them in
/// microseconds; this keeps every sum far from overflowing.
pub const MAX_DURATION: Duration = Duration::from_secs(365 * 24 * 3600);

/// `MAX_DURATION` as users write it, for messages.
pub const MAX_DURATION_TEXT: &str = "8760h (365 days)";
