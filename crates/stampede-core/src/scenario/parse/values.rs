//! Decoders of the group's structured values: work and its duration distribution,
//! payload, arrivals and their inter-arrival time, lifecycle, churn, start rate, timeouts.
//! Each reports problems at the exact key, with what is allowed.

use std::time::Duration;

use toml_edit::Item;

use super::super::duration::DURATION_SYNTAX;
use super::super::format_duration;
use super::super::limits::{MAX_DURATION_TEXT, MAX_INSTANCES};
use super::super::model::*;
use super::limits::over_max_duration;
use super::reader::{describe, Loc, Reader};
use super::DEFAULT_PAYLOAD;

/// What is wrong with a distribution given whole (the `--work` flag); file values are checked
/// field by field instead, to point at the exact line.
pub(super) fn dist_problem(dist: &DurationDist) -> Option<String> {
    match dist {
        DurationDist::Fixed { .. } => None,
        DurationDist::Uniform { min, max } if min > max => {
            Some(format!("uniform min ({}) must not exceed max ({})", format_duration(*min), format_duration(*max)))
        }
        DurationDist::Exponential { mean } if mean.is_zero() => Some("exponential mean must be greater than 0".into()),
        DurationDist::Lognormal { median, .. } if median.is_zero() => {
            Some("lognormal median must be greater than 0".into())
        }
        DurationDist::Lognormal { sigma, .. } if !(sigma.is_finite() && *sigma > 0.0) => {
            Some(format!("lognormal sigma must be greater than 0, got {sigma}"))
        }
        DurationDist::Lognormal { median, sigma } => lognormal_mean_problem(*median, *sigma),
        _ => None,
    }
}

/// A lognormal's mean, median · e^(σ²/2), grows fast with σ: it must stay a duration the
/// tiers can compute with (σ = 40 overflows every clock).
pub(super) fn lognormal_mean_problem(median: Duration, sigma: f64) -> Option<String> {
    let mean = median.as_secs_f64() * (sigma * sigma / 2.0).exp();
    if !over_max_duration(mean) {
        return None;
    }
    Some(format!(
        "gives the lognormal a mean of {mean:.3e} s (median {} · e^(sigma²/2)), more than the limit of {MAX_DURATION_TEXT}; lower sigma or the median",
        format_duration(median)
    ))
}

/// The `dist` of a duration table: work durations and inter-arrival times share one reader,
/// each allowing the kinds that make sense for it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum DistKind {
    Fixed,
    Uniform,
    Exponential,
    ShiftedExponential,
    Lognormal,
}

impl DistKind {
    fn name(self) -> &'static str {
        match self {
            DistKind::Fixed => "fixed",
            DistKind::Uniform => "uniform",
            DistKind::Exponential => "exponential",
            DistKind::ShiftedExponential => "shifted_exponential",
            DistKind::Lognormal => "lognormal",
        }
    }
}

/// A duration distribution as read, before it becomes a work duration or an inter-arrival time.
enum Dist {
    Fixed(Duration),
    Uniform(Duration, Duration),
    Exponential(Duration),
    ShiftedExponential { shift: Duration, mean: Duration },
    Lognormal(Duration, f64),
}

/// What a distribution is used for: which kinds it allows and whether zero may be drawn.
struct DistUse {
    /// "work duration" or "inter-arrival time", for messages.
    what: &'static str,
    kinds: &'static [DistKind],
    /// A fixed zero is allowed (work: measures pure overhead); a zero gap is not.
    zero_ok: bool,
}

const WORK_DIST: DistUse = DistUse {
    what: "distribution",
    kinds: &[DistKind::Fixed, DistKind::Uniform, DistKind::Exponential, DistKind::Lognormal],
    zero_ok: true,
};
const IAT_DIST: DistUse = DistUse {
    what: "inter-arrival time",
    kinds: &[DistKind::Fixed, DistKind::Exponential, DistKind::ShiftedExponential],
    zero_ok: false,
};

impl Reader<'_> {
    pub(super) fn work(&mut self, item: &Item, loc: &Loc) -> Option<Work> {
        if let Some(s) = item.as_str() {
            return s.parse::<Work>().map_err(|e| self.push(loc, e)).ok();
        }
        let (table, loc) =
            self.table_or(item, loc, "\"sleep:10ms\" or a table { kind = \"spin\", duration = \"5ms\" }")?;
        self.deny_unknown(table, &loc, &["kind", "duration"], "in work");
        let kind = self
            .required(table, &loc, "kind", "\"sleep\" or \"spin\"")
            .and_then(|(item, l)| self.keyword(item, &l, &[("sleep", WorkKind::Sleep), ("spin", WorkKind::Spin)]));
        let duration = self
            .required(table, &loc, "duration", &format!("a duration ({DURATION_SYNTAX}) or a {{ dist = … }} table"))
            .and_then(|(item, l)| self.dist(item, &l));
        Some(Work { kind: kind?, duration: duration? })
    }

    /// A work duration: fixed (zero allowed: measures pure overhead) or a distribution.
    pub(super) fn dist(&mut self, item: &Item, loc: &Loc) -> Option<DurationDist> {
        Some(match self.any_dist(item, loc, &WORK_DIST)? {
            Dist::Fixed(value) => DurationDist::fixed(value),
            Dist::Uniform(min, max) => DurationDist::Uniform { min, max },
            Dist::Exponential(mean) => DurationDist::Exponential { mean },
            Dist::Lognormal(median, sigma) => DurationDist::Lognormal { median, sigma },
            Dist::ShiftedExponential { .. } => unreachable!("not among WORK_DIST's kinds"),
        })
    }

    /// Inter-arrival time: never zero, a zero gap would send every request at once.
    pub(super) fn iat(&mut self, item: &Item, loc: &Loc) -> Option<Iat> {
        Some(match self.any_dist(item, loc, &IAT_DIST)? {
            Dist::Fixed(value) => Iat::Fixed { value },
            Dist::Exponential(mean) => Iat::Exponential { mean },
            Dist::ShiftedExponential { shift, mean } => Iat::ShiftedExponential { shift, mean },
            Dist::Uniform(..) | Dist::Lognormal(..) => unreachable!("not among IAT_DIST's kinds"),
        })
    }

    /// A duration string (fixed) or a `{ dist = … }` table of one of `usage.kinds`.
    fn any_dist(&mut self, item: &Item, loc: &Loc, usage: &DistUse) -> Option<Dist> {
        if item.as_str().is_some() {
            let d = if usage.zero_ok { self.duration(item, loc) } else { self.positive_duration(item, loc) };
            return d.map(Dist::Fixed);
        }
        let (table, loc) =
            self.table_or(item, loc, &format!("a duration ({DURATION_SYNTAX}) or a {{ dist = … }} table"))?;
        let names: Vec<String> = usage.kinds.iter().map(|k| format!("\"{}\"", k.name())).collect();
        let choices: Vec<(&str, DistKind)> = usage.kinds.iter().map(|k| (k.name(), *k)).collect();
        let which = self
            .required(table, &loc, "dist", &names.join(", "))
            .and_then(|(item, l)| self.keyword(item, &l, &choices))?;
        let keys: &[&str] = match which {
            DistKind::Fixed => &["dist", "value"],
            DistKind::Uniform => &["dist", "min", "max"],
            DistKind::Exponential => &["dist", "mean"],
            DistKind::ShiftedExponential => &["dist", "shift", "mean"],
            DistKind::Lognormal => &["dist", "median", "sigma"],
        };
        let article = if matches!(which, DistKind::Exponential) { "an" } else { "a" };
        self.deny_unknown(table, &loc, keys, &format!("in {article} {} {}", which.name(), usage.what));
        // Means and medians are never zero (they would stall or spin); a fixed value may be
        // when the use allows it; a shift and a uniform bound may be zero.
        let read = |r: &mut Self, key: &str, positive: bool| {
            r.required(table, &loc, key, DURATION_SYNTAX).and_then(|(item, l)| {
                let d = if positive { r.positive_duration(item, &l) } else { r.duration(item, &l) };
                Some((d?, l))
            })
        };
        match which {
            DistKind::Fixed => read(self, "value", !usage.zero_ok).map(|(v, _)| Dist::Fixed(v)),
            DistKind::Exponential => read(self, "mean", true).map(|(m, _)| Dist::Exponential(m)),
            DistKind::ShiftedExponential => {
                let mean = read(self, "mean", true);
                let shift = read(self, "shift", false);
                Some(Dist::ShiftedExponential { shift: shift?.0, mean: mean?.0 })
            }
            DistKind::Uniform => {
                let min = read(self, "min", false);
                let max = read(self, "max", false);
                let ((min, min_loc), (max, _)) = (min?, max?);
                if min > max {
                    let msg = format!("must not exceed max ({}), got {}", format_duration(max), format_duration(min));
                    self.push(&min_loc, msg);
                    return None;
                }
                Some(Dist::Uniform(min, max))
            }
            DistKind::Lognormal => {
                let median = read(self, "median", true);
                let sigma = self
                    .required(table, &loc, "sigma", "a number > 0, e.g. 0.5")
                    .and_then(|(i, l)| Some((self.sigma(i, &l)?, l)));
                let ((median, _), (sigma, sigma_loc)) = (median?, sigma?);
                if let Some(why) = lognormal_mean_problem(median, sigma) {
                    self.push(&sigma_loc, why);
                    return None;
                }
                Some(Dist::Lognormal(median, sigma))
            }
        }
    }

    pub(super) fn sigma(&mut self, item: &Item, loc: &Loc) -> Option<f64> {
        let value = item.as_float().or_else(|| item.as_integer().map(|i| i as f64));
        match value {
            None => self.push(loc, format!("expected a number > 0, e.g. 0.5, got {}", describe(item))),
            Some(s) if !(s.is_finite() && s > 0.0) => self.push(loc, format!("must be greater than 0, got {s}")),
            Some(s) => return Some(s),
        }
        None
    }

    pub(super) fn payload(&mut self, item: &Item, loc: &Loc) -> Option<Payload> {
        if item.as_integer().is_some() {
            let bytes = self.payload_bytes(item, loc)?;
            return Some(Payload { request: bytes, response: bytes });
        }
        let (table, loc) =
            self.table_or(item, loc, "a number of bytes or a table { request = 64, response = 1024 }")?;
        self.deny_unknown(table, &loc, &["request", "response"], "in payload");
        let mut side = |key| match self.entry(table, &loc, key) {
            Some((item, l)) => self.payload_bytes(item, &l),
            None => Some(DEFAULT_PAYLOAD),
        };
        let (request, response) = (side("request"), side("response"));
        Some(Payload { request: request?, response: response? })
    }

    /// The arrivals and, for open loop with a valid burst, where the burst was set.
    pub(super) fn arrivals(&mut self, item: &Item, loc: &Loc) -> (Option<Arrivals>, Option<Loc>) {
        const OPEN_EXAMPLE: &str = "{ mode = \"open\", iat = \"100ms\", burst = 1 }";
        if let Some(s) = item.as_str() {
            match s {
                "closed" => return (Some(Arrivals::Closed), None),
                "open" => {
                    self.push(loc, format!("open arrivals need an inter-arrival time: arrivals = {OPEN_EXAMPLE}"))
                }
                other => self.push(loc, format!("must be \"closed\" or a table {OPEN_EXAMPLE}, got \"{other}\"")),
            }
            return (None, None);
        }
        let Some((table, loc)) = self.table_or(item, loc, &format!("\"closed\" or a table {OPEN_EXAMPLE}")) else {
            return (None, None);
        };
        let mode = self
            .required(table, &loc, "mode", "\"closed\" or \"open\"")
            .and_then(|(item, l)| self.keyword(item, &l, &[("closed", false), ("open", true)]));
        match mode {
            None => (None, None),
            Some(false) => {
                self.deny_unknown(table, &loc, &["mode"], "in closed-loop arrivals");
                (Some(Arrivals::Closed), None)
            }
            Some(true) => {
                self.deny_unknown(table, &loc, &["mode", "iat", "burst"], "in open-loop arrivals");
                let iat = self
                    .required(table, &loc, "iat", &format!("a duration ({DURATION_SYNTAX}) or a {{ dist = … }} table"))
                    .and_then(|(item, l)| self.iat(item, &l));
                let (burst, burst_loc) = match self.entry(table, &loc, "burst") {
                    Some((item, l)) => (self.count(item, &l), Some(l)),
                    None => (Some(1), None),
                };
                match (iat, burst) {
                    (Some(iat), Some(burst)) => (Some(Arrivals::Open { iat, burst }), burst_loc),
                    _ => (None, None),
                }
            }
        }
    }

    /// `"keep_warm"`, `"one_shot"`, `"pause_between_bursts"`, or a table
    /// `{ mode = …, idle = … }` (idle only, and required, for `"eviction_probe"`).
    pub(super) fn lifecycle(&mut self, item: &Item, loc: &Loc) -> Option<Lifecycle> {
        const PROBE_EXAMPLE: &str = "{ mode = \"eviction_probe\", idle = \"30s\" }";
        const SIMPLE: &str = "\"keep_warm\", \"one_shot\", \"pause_between_bursts\"";
        let simple = [
            ("keep_warm", Lifecycle::KeepWarm),
            ("one_shot", Lifecycle::OneShot),
            ("pause_between_bursts", Lifecycle::PauseBetweenBursts),
        ];
        if let Some(s) = item.as_str() {
            if let Some((_, lifecycle)) = simple.iter().find(|(k, _)| *k == s) {
                return Some(lifecycle.clone());
            }
            if s == "eviction_probe" {
                self.push(loc, format!("eviction_probe needs an idle time: lifecycle = {PROBE_EXAMPLE}"));
            } else {
                self.push(loc, format!("must be one of {SIMPLE} or a table {PROBE_EXAMPLE}, got \"{s}\""));
            }
            return None;
        }
        let (table, loc) = self.table_or(item, loc, &format!("one of {SIMPLE} or a table {PROBE_EXAMPLE}"))?;
        let modes = [
            ("keep_warm", Some(Lifecycle::KeepWarm)),
            ("one_shot", Some(Lifecycle::OneShot)),
            ("pause_between_bursts", Some(Lifecycle::PauseBetweenBursts)),
            ("eviction_probe", None),
        ];
        let mode = self
            .required(table, &loc, "mode", &format!("{SIMPLE} or \"eviction_probe\""))
            .and_then(|(item, l)| self.keyword(item, &l, &modes))?;
        match mode {
            Some(lifecycle) => {
                self.deny_unknown(table, &loc, &["mode"], "in this lifecycle (idle is for eviction_probe)");
                Some(lifecycle)
            }
            None => {
                self.deny_unknown(table, &loc, &["mode", "idle"], "in an eviction_probe lifecycle");
                let (item, l) = self.required(
                    table,
                    &loc,
                    "idle",
                    &format!("how long to stay idle before the probe, {DURATION_SYNTAX}"),
                )?;
                self.positive_duration(item, &l).map(|idle| Lifecycle::EvictionProbe { idle })
            }
        }
    }

    /// `{ cycles = K }`, `{ duration = "30s" }` or both; at least one.
    pub(super) fn churn(&mut self, item: &Item, loc: &Loc) -> Option<Churn> {
        const EXAMPLE: &str = "churn = { cycles = 5 }, { duration = \"30s\" } or both";
        let (table, loc) = self.table(item, loc, EXAMPLE)?;
        self.deny_unknown(table, &loc, &["cycles", "duration"], "in churn");
        let cycles = self.entry(table, &loc, "cycles").map(|(item, l)| self.count(item, &l));
        let duration = self.entry(table, &loc, "duration").map(|(item, l)| self.positive_duration(item, &l));
        if cycles.is_none() && duration.is_none() {
            self.push(&loc, format!("needs cycles (>= 1), duration (> 0) or both: {EXAMPLE}"));
            return None;
        }
        let cycles = match cycles {
            Some(v) => Some(v?),
            None => None,
        };
        let duration = match duration {
            Some(v) => Some(v?),
            None => None,
        };
        Some(Churn { cycles, duration })
    }

    /// `{ qps = 10, burst = 2 }`: qps required, burst defaults to 1.
    pub(super) fn start_rate(&mut self, item: &Item, loc: &Loc) -> Option<StartRate> {
        let (table, loc) = self.table(item, loc, "start_rate = { qps = 10, burst = 2 }")?;
        self.deny_unknown(table, &loc, &["qps", "burst"], "in start_rate");
        let qps = self
            .required(table, &loc, "qps", "launches per second, a number > 0 such as 10 or 0.5")
            .and_then(|(item, l)| self.qps(item, &l));
        let burst = match self.entry(table, &loc, "burst") {
            Some((item, l)) => {
                self.count_at_most(item, &l, MAX_INSTANCES as u32, " (the most instances a run may start, 2^24)")
            }
            None => Some(1),
        };
        Some(StartRate { qps: qps?, burst: burst? })
    }

    pub(super) fn qps(&mut self, item: &Item, loc: &Loc) -> Option<f64> {
        let value = item.as_float().or_else(|| item.as_integer().map(|i| i as f64));
        match value {
            None => self.push(
                loc,
                format!("expected launches per second, a number > 0 such as 10 or 0.5, got {}", describe(item)),
            ),
            Some(q) if !(q.is_finite() && q > 0.0) => {
                self.push(loc, format!("must be a finite number greater than 0, got {q}"))
            }
            // The tiers turn qps into the gap between launches, which must be a duration they
            // can compute with (the run's rate is further split among its scenarios: checked
            // with all groups known).
            Some(q) if over_max_duration(1.0 / q) => self.push(
                loc,
                format!(
                    "is too small, got {q}: one launch per {:.3e} seconds, more than the limit of {MAX_DURATION_TEXT}",
                    1.0 / q
                ),
            ),
            Some(q) => return Some(q),
        }
        None
    }

    pub(super) fn timeouts(&mut self, item: &Item, loc: &Loc, mut timeouts: Timeouts) -> Timeouts {
        let Some((table, loc)) = self.table(item, loc, "timeouts = { ready = \"60s\", request = \"30s\" }") else {
            return timeouts;
        };
        self.deny_unknown(table, &loc, &["ready", "request"], "in timeouts");
        if let Some((item, l)) = self.entry(table, &loc, "ready") {
            timeouts.ready = self.positive_duration(item, &l).unwrap_or(timeouts.ready);
        }
        if let Some((item, l)) = self.entry(table, &loc, "request") {
            timeouts.request = self.positive_duration(item, &l).unwrap_or(timeouts.request);
        }
        timeouts
    }
}
