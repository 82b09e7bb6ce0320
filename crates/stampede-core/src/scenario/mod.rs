//! Scenario files: the TOML format, its validation, CLI overrides, and the validated model.
//!
//! What lives where:
//! - [`model`]: the typed, validated scenario the tiers run (re-exported here).
//! - `parse`: reads a TOML document into the model, collecting every problem with its line.
//! - [`parse_duration`] / [`format_duration`]: durations as users write them.
//! - [`ScenarioError`] / [`Problem`]: what went wrong, where, and what is allowed.
//! - [`catalog`]: what the parser knows of runtimes — names, [`Capabilities`], and the
//!   [`OptionsTable`] through which each runtime crate reads its own `<runtime> = { … }` table.
//!
//! # File format
//!
//! Every key is optional unless marked required; unknown keys are refused everywhere, and the
//! error lists the keys allowed at that place.
//!
//! ```toml
//! name = "hello"        # default: the file stem ("scenario" for text without a file); up to 64 letters, digits, '_', '.', '-', not starting with '.'
//! seed = 42             # seed of every random draw; chosen at random and recorded when absent
//! groups = "sequence"   # "sequence" (default) | "parallel"
//! timeout = "30m"       # whole-run timeout, > 0; default "30m"; every duration is at most
//!                       # "8760h" (365 days, see Limits)
//! start_rate = { qps = 20, burst = 5 }
//!                       # launch-rate limit of the whole run (token bucket), split evenly among
//!                       # all scenario instances; default none (unlimited). qps: launches per
//!                       # second, a finite number > 0 (integer or float, e.g. 0.5); burst: most
//!                       # launches at once, >= 1, default 1
//!
//! [[group]]                  # at least one; groups are counted from 0 in error messages
//! name = "main"              # default "group-<index>"; the same rule as the run name; unique
//! runtime = "process"        # a runtime of the binary's catalog (`stampede run --help` lists
//!                            # them: process, docker, swarm); default process
//! action_runtime = "docker"  # runtime the scenarios launch actions with; default = runtime
//! image = "stampede:latest"  # tag or image ID for container runtimes
//! scenarios = 4              # S >= 1, default 1
//! actions = 25               # A >= 1 per scenario, default 1
//! requests = 20              # N >= 1 per action, default 10; at most 16,777,216 (see Limits)
//! work = "sleep:10ms"        # <sleep|spin>:<duration>, default "sleep:10ms"; or a table
//!                            # { kind = "spin", duration = D } where D is a duration string or
//!                            #   { dist = "fixed", value = "5ms" }
//!                            # | { dist = "uniform", min = "5ms", max = "15ms" }      (min <= max)
//!                            # | { dist = "exponential", mean = "10ms" }              (mean > 0)
//!                            # | { dist = "lognormal", median = "10ms", sigma = 0.5 } (both > 0)
//!                            # A work duration of "0ms" is allowed (measures pure overhead).
//! payload = 64               # bytes both ways, default 64; or { request = 64, response = 1024 }
//!                            # (a missing side defaults to 64); at most 16 MiB each
//! start_delay = "0s"         # see GroupsMode: from the previous group's end or the run's start
//! start_concurrency = 8      # most launches in flight per scenario, >= 1; default: runtime's
//! warmup = false             # kept in raw data, left out of summaries
//! arrivals = "closed"        # default; or { mode = "open", iat = I, burst = 1 } where I is a
//!                            # duration string (fixed, > 0) or
//!                            #   { dist = "fixed", value = "100ms" }
//!                            # | { dist = "exponential", mean = "100ms" }
//!                            # | { dist = "shifted_exponential", shift = "50ms", mean = "50ms" }
//!                            # and 1 <= burst <= requests
//! lifecycle = "keep_warm"    # "keep_warm" (default): start once, reuse for all N requests
//!                            # | "one_shot": a fresh instance per request (closed loop) or burst
//!                            #   (open loop): cold every time
//!                            # | "pause_between_bursts": open loop only; freeze the instance
//!                            #   between bursts, thaw it before the next
//!                            # | { mode = "eviction_probe", idle = "30s" }: keep warm for the N
//!                            #   requests, idle for `idle` (> 0), then one probe request
//!                            # The table form { mode = "keep_warm" } etc. is accepted too.
//! churn = { cycles = 5 }     # start, work, stop, repeat per action slot: `cycles` (>= 1)
//!                            # instances one after the other, or { duration = "30s" } (> 0): keep
//!                            # starting fresh ones until it passes; both = whichever comes first.
//!                            # Default none (one cycle). An empty table is refused.
//! start_rate = { qps = 10, burst = 2 }   # launch-rate limit of each scenario instance of this
//!                            # group, same form as the top-level one; default none
//! hold = "none"              # "none" (default) | "all_ready": start every instance of the group
//!                            # and wait until all are ready before any request, and keep them all
//!                            # until the group's work is done (1 + S + S·A alive at once); not
//!                            # with lifecycle = "one_shot" or churn
//! image_filler_mb = 50       # pad the action image with this many MiB of filler, 0..=10240,
//!                            # default 0; container runtimes only (the process runtime ignores
//!                            # it with a warning, so the same file runs everywhere)
//! timeouts = { ready = "60s", request = "30s" }   # defaults as shown, both > 0
//! docker = { network = "host" }  # one table per runtime, named after it: read and validated
//!                            # by that runtime's crate (its module docs list the keys). Options
//!                            # of a runtime the group does not use are validated and ignored.
//!
//! [[group.steps]]            # per-action steps, in file order
//! kind = "pause"             # pause for `duration` (required, "0s" allowed), then resume
//! after_requests = 5         # required: after this many responses of the action
//! duration = "200ms"
//! actions = "all"            # "all" (default) or a list of action indices, e.g. [0, 3]
//!
//! [[group.steps]]
//! kind = "kill"              # kill the action; it gets no further requests
//! after_requests = 10
//! actions = [1]
//! ```
//!
//! Rules checked across fields, each reported with the line and field to fix:
//! - every step needs `after_requests < requests`: a kill after all N responses is the normal
//!   end of the action, and a pause after the last response has no next response to measure
//!   `resume_latency` with. `after_requests = 0` is allowed (pause or kill before any request).
//! - action indices are `< actions` and listed once each.
//! - no steps with `lifecycle = "one_shot"`: a one-shot instance serves one request (closed loop)
//!   or one burst (open loop) and is gone. Open loop with one-shot is allowed.
//! - no pause steps with `"pause_between_bursts"` (it already pauses between bursts); kill steps
//!   are allowed.
//! - no kill steps with `"eviction_probe"` (a killed action would never get its probe); pause
//!   steps are allowed (they happen during the N requests, before the idle time).
//! - no kill steps with `churn`; pause steps apply to the instance of every cycle.
//! - no `churn` with `"one_shot"`: one_shot already starts a fresh instance per request or burst.
//! - `"pause_between_bursts"` needs open-loop arrivals with more than one burst
//!   (`burst < requests`): otherwise there is no idle gap to pause in.
//! - no step may touch an action at or after the point where another step kills it.
//! - what the group asks of the runtime that launches its actions must be among that
//!   runtime's [`Capabilities`]: pause steps and `pause_between_bursts` need pause/resume, kill
//!   steps need kill, `image_filler_mb` needs an image filler on a container runtime (the
//!   process runtime has no image and ignores it, with a warning, so one file runs anywhere).
//!
//! # Limits
//!
//! Sizes and durations are bounded so that no accepted scenario overflows a number or a clock,
//! or asks a tier for more memory than a large host has ([`limits`] has each constant and what
//! it protects). A value over a limit is refused like any other mistake: exit 2, at the line
//! and field to change, with the limit in the message. The limits, generous for real runs:
//!
//! | what | at most |
//! |---|---|
//! | the scenario file | 1 MiB |
//! | groups | 1,000 |
//! | a string (image, runtime options) | 4,096 bytes (run and group names: 64 characters) |
//! | requests per action, N | 16,777,216 (2^24) |
//! | requests per scenario instance, A·N (one more per action with `eviction_probe`) | 16,777,216 (2^24) |
//! | requests per run, Σ S·A·N × churn cycles | 4,294,967,296 (2^32) |
//! | instances per run, Σ S + S·A·k, k = churn cycles (× N for `one_shot` closed loop, × bursts open loop) | 16,777,216 (2^24); also the most `start_concurrency` and start-rate `burst` |
//! | payload, each way | 16 MiB |
//! | payload in flight per scenario instance, A × burst × (request + response), burst = 1 closed loop | 4 GiB |
//! | steps per group | 1,000 |
//! | action indices listed by one group's steps, all lists together | 100,000 |
//! | entries of a runtime option list or table | 1,000 |
//! | `image_filler_mb` | 10,240 |
//! | any duration; the mean of a distribution (lognormal: median · e^(σ²/2)); N × mean work duration; an open-loop schedule, (bursts − 1) × mean inter-arrival time; the gap between launches of a start rate, 1/qps (the run's `start_rate` is split: ΣS/qps) | 365 days (`"8760h"`) |
//!
//! A churn by `duration` alone counts as one cycle. Drawn durations are cut at a century
//! ([`crate::schedule::MAX_DRAW`]); with every mean at most 365 days only a lognormal's far
//! tail ever is.
//!
//! # CLI overrides
//!
//! [`Overrides`] replace the values of the *first* group (and the top-level seed). An
//! overridden key of the file is not read at all; the flag's value is validated instead, and
//! problems name the flag (`--actions`).

pub mod catalog;
pub mod limits;
pub mod model;
pub use catalog::{Capabilities, NoRuntimes, RuntimeCatalog, RuntimeInfo};
pub use model::*;
pub use parse::{OptionsTable, DEFAULT_RUNTIME};

mod duration;
mod error;
mod parse;

pub use duration::{format_duration, parse_duration};
pub use error::{Problem, ScenarioError};
pub use limits::{MAX_IMAGE_FILLER_MB, MAX_PAYLOAD};

use std::fmt;
use std::path::Path;
use std::str::FromStr;

/// Values given on the command line. Each replaces the value of the *first* group of a file
/// (or of the single group built when there is no file); `seed` replaces the top-level seed.
/// `runtime` and `image` are also the default of every later group that does not set its own.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Overrides {
    pub runtime: Option<RuntimeName>,
    pub scenarios: Option<u32>,
    pub actions: Option<u32>,
    pub requests: Option<u32>,
    pub work: Option<Work>,
    /// Bytes both ways.
    pub payload: Option<u32>,
    pub seed: Option<u64>,
    pub image: Option<String>,
}

/// The flag names used as the `field` of problems with an override. The CLI must spell its
/// long flags the same way.
pub mod flags {
    pub const RUNTIME: &str = "--runtime";
    pub const SCENARIOS: &str = "--scenarios";
    pub const ACTIONS: &str = "--actions";
    pub const REQUESTS: &str = "--requests";
    pub const WORK: &str = "--work";
    pub const PAYLOAD: &str = "--payload";
    pub const SEED: &str = "--seed";
    pub const IMAGE: &str = "--image";
}

/// Reads, parses and validates a scenario file, then applies `ov`.
///
/// Reads at most [`limits::MAX_FILE_BYTES`]: a larger file (or an endless one such as
/// `/dev/zero`) is refused without being read whole.
pub fn load_file(path: &Path, ov: &Overrides, catalog: &dyn RuntimeCatalog) -> Result<Scenario, ScenarioError> {
    use std::io::Read;
    let read_err = |source| ScenarioError::Read { file: path.to_owned(), source };
    let file = std::fs::File::open(path).map_err(read_err)?;
    let mut text = String::new();
    file.take(limits::MAX_FILE_BYTES + 1).read_to_string(&mut text).map_err(read_err)?;
    if text.len() as u64 > limits::MAX_FILE_BYTES {
        let message =
            format!("the file is larger than {} bytes (1 MiB), the limit of a scenario file", limits::MAX_FILE_BYTES);
        let problem = Problem { line: None, field: String::new(), message };
        return Err(ScenarioError::Invalid { file: Some(path.to_owned()), problems: vec![problem] });
    }
    from_str(&text, Some(path), ov, catalog)
}

/// Parses and validates scenario `text`; `file` names it in errors and gives the default name.
pub fn from_str(
    text: &str,
    file: Option<&Path>,
    ov: &Overrides,
    catalog: &dyn RuntimeCatalog,
) -> Result<Scenario, ScenarioError> {
    parse::parse(text, file, ov, catalog)
        .map_err(|problems| ScenarioError::Invalid { file: file.map(Path::to_owned), problems })
}

/// A scenario without a file: one group named "cli" with defaults and `ov` applied.
pub fn from_cli(ov: &Overrides, catalog: &dyn RuntimeCatalog) -> Result<Scenario, ScenarioError> {
    parse::from_overrides(ov, catalog).map_err(|problems| ScenarioError::Invalid { file: None, problems })
}

/// `sleep:10ms` / `spin:5ms`, as the CLI's `--work` takes it. Zero is allowed.
impl FromStr for Work {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let expected = "expected <kind>:<duration> with kind sleep or spin, e.g. \"sleep:10ms\" or \"spin:5ms\"";
        let (kind, duration) = s.split_once(':').ok_or_else(|| format!("invalid work \"{s}\": {expected}"))?;
        let kind = match kind.trim() {
            "sleep" => WorkKind::Sleep,
            "spin" => WorkKind::Spin,
            other => return Err(format!("invalid work kind \"{other}\" in \"{s}\": {expected}")),
        };
        let duration = parse_duration(duration)?;
        Ok(Work { kind, duration: DurationDist::fixed(duration) })
    }
}

impl WorkKind {
    pub fn as_str(self) -> &'static str {
        match self {
            WorkKind::Sleep => "sleep",
            WorkKind::Spin => "spin",
        }
    }
}

/// `sleep:10ms`, or `spin:uniform(5ms..15ms)` for a distribution; for logs and the report.
impl fmt::Display for Work {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind.as_str(), self.duration)
    }
}

impl fmt::Display for DurationDist {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = |d: &std::time::Duration| format_duration(*d);
        match self {
            DurationDist::Fixed { value } => f.write_str(&d(value)),
            DurationDist::Uniform { min, max } => write!(f, "uniform({}..{})", d(min), d(max)),
            DurationDist::Exponential { mean } => write!(f, "exponential(mean {})", d(mean)),
            DurationDist::Lognormal { median, sigma } => {
                write!(f, "lognormal(median {}, sigma {sigma})", d(median))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn work_from_str() {
        let w: Work = "spin:5ms".parse().unwrap();
        assert_eq!(w, Work { kind: WorkKind::Spin, duration: DurationDist::fixed(Duration::from_millis(5)) });
        assert_eq!(w.to_string(), "spin:5ms");
        assert_eq!("sleep:0ms".parse::<Work>().unwrap().duration, DurationDist::fixed(Duration::ZERO));
        for bad in ["sleep", "nap:5ms", "spin:5", "spin:-1ms"] {
            assert!(bad.parse::<Work>().is_err(), "{bad}");
        }
        assert!("nap:5ms".parse::<Work>().unwrap_err().contains("sleep or spin"));
    }
}
