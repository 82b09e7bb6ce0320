//! The limits of values derived from several keys (see [`super::super::limits`]): per group
//! (requests per scenario instance, an action's ideal time and open-loop span, payload in
//! flight) and over the whole run (instances, requests, the run's start rate split among its
//! scenarios). Each key was checked on its own first; a derived value with an invalid part
//! is not checked, so one mistake gives one message.
//!
//! Products are computed in saturating u128 and durations in f64 seconds, so that computing
//! a limit cannot itself overflow.

use super::super::limits::*;
use super::super::model::*;
use super::group::GroupSources;
use super::reader::{Loc, Reader, Source};

/// Where to report a value derived from several keys: the first of them set in the file or
/// by a flag, else the group itself.
fn blame(src: &GroupSources, candidates: &[&Option<Source>]) -> Loc {
    candidates
        .iter()
        .find_map(|c| match c {
            Some(Source::File(l)) => Some(l.clone()),
            Some(Source::Flag(f)) => Some(Loc::flag(f)),
            _ => None,
        })
        .unwrap_or_else(|| src.group.clone())
}

/// A derived length of time for messages: it may be far beyond what a `Duration` holds.
fn secs_text(secs: f64) -> String {
    if secs < 1e12 {
        format!("{secs:.0}s ({:.1} days)", secs / 86_400.0)
    } else {
        format!("{secs:.3e}s")
    }
}

/// One more request per action for an eviction probe.
fn requests_per_slot(g: &Group) -> u128 {
    u128::from(g.requests) + u128::from(matches!(g.lifecycle, Lifecycle::EvictionProbe { .. }))
}

/// Instances one action slot starts: one per churn cycle, and for one-shot one per request
/// (closed loop) or burst (open loop). A churn by duration alone counts one cycle: how many
/// it makes is not known up front.
fn instances_per_slot(g: &Group) -> u128 {
    let per_cycle = match (&g.lifecycle, &g.arrivals) {
        (Lifecycle::OneShot, Arrivals::Closed) => u128::from(g.requests),
        (Lifecycle::OneShot, Arrivals::Open { burst, .. }) => u128::from(g.requests.div_ceil((*burst).max(1))),
        _ => 1,
    };
    per_cycle.saturating_mul(cycles(g))
}

/// Longer than [`MAX_DURATION`], or not a number at all (an overflowed product).
pub(super) fn over_max_duration(secs: f64) -> bool {
    secs.is_nan() || secs > MAX_DURATION.as_secs_f64()
}

fn cycles(g: &Group) -> u128 {
    u128::from(g.churn.and_then(|c| c.cycles).unwrap_or(1))
}

impl Reader<'_> {
    /// The limits of one group's derived values.
    pub(super) fn check_derived(&mut self, g: &Group, src: &GroupSources) {
        if let (Some(_), Some(_)) = (&src.actions, &src.requests) {
            let total = u128::from(g.actions) * requests_per_slot(g);
            if total > u128::from(MAX_SCENARIO_REQUESTS) {
                let probe = if requests_per_slot(g) > u128::from(g.requests) { " + 1 (the probe)" } else { "" };
                let msg = format!(
                    "actions × requests = {} × {}{probe} = {total} requests for each scenario instance, more than the limit of {MAX_SCENARIO_REQUESTS} (2^24): a scenario instance holds the schedules and results of all its actions' requests at once; lower actions or requests, or spread the actions over more scenarios",
                    g.actions, g.requests
                );
                self.push(&blame(src, &[&src.requests, &src.actions]), msg);
            }
        }
        if let (Some(_), Some(_)) = (&src.work, &src.requests) {
            let mean = g.work.duration.mean().as_secs_f64();
            let total = mean * f64::from(g.requests);
            if over_max_duration(total) {
                let msg = format!(
                    "requests × mean work duration = {} × {} = {} for one action, more than the limit of {MAX_DURATION_TEXT}; lower requests or the work duration",
                    g.requests,
                    secs_text(mean),
                    secs_text(total)
                );
                self.push(&blame(src, &[&src.work, &src.requests]), msg);
            }
        }
        if let (Some(_), Some(_), Arrivals::Open { iat, burst }) = (&src.arrivals, &src.requests, &g.arrivals) {
            let gaps = g.requests.div_ceil((*burst).max(1)).saturating_sub(1);
            let mean = iat.mean().as_secs_f64();
            let total = mean * f64::from(gaps);
            if over_max_duration(total) {
                let msg = format!(
                    "the open-loop schedule of one action spans {gaps} inter-arrival times of {} on average = {}, more than the limit of {MAX_DURATION_TEXT}; lower requests or the inter-arrival time, or raise burst",
                    secs_text(mean),
                    secs_text(total)
                );
                self.push(&blame(src, &[&src.arrivals, &src.requests]), msg);
            }
        }
        if let (Some(_), Some(_), Some(_)) = (&src.actions, &src.payload, &src.arrivals) {
            // A burst over N is refused on its own; the most in flight is then N.
            let burst = match g.arrivals {
                Arrivals::Open { burst, .. } => burst.min(g.requests),
                Arrivals::Closed => 1,
            };
            let bytes = u128::from(g.payload.request) + u128::from(g.payload.response);
            let total = u128::from(g.actions) * u128::from(burst) * bytes;
            if total > u128::from(MAX_INFLIGHT_PAYLOAD) {
                let msg = format!(
                    "actions × burst × (request + response payload) = {} × {burst} × {bytes} = {total} bytes in flight in one scenario instance, more than the limit of {MAX_INFLIGHT_PAYLOAD} (4 GiB); lower the payload, actions or burst",
                    g.actions
                );
                self.push(&blame(src, &[&src.payload, &src.actions, &src.arrivals]), msg);
            }
        }
    }

    /// The limits of the whole run: instances and requests summed over the groups (reported
    /// at the group that crosses the limit), and the run's start rate split among every
    /// scenario instance.
    pub(super) fn check_run(&mut self, groups: &[Group], sources: &[GroupSources], rate: Option<(StartRate, Loc)>) {
        let (mut instances, mut requests, mut scenarios) = (0u128, 0u128, 0u128);
        let (mut instances_said, mut requests_said) = (false, false);
        for (g, src) in groups.iter().zip(sources) {
            let valid = [&src.scenarios, &src.actions, &src.requests, &src.arrivals, &src.lifecycle];
            if valid.iter().any(|s| s.is_none()) {
                continue;
            }
            let (s, a) = (u128::from(g.scenarios), u128::from(g.actions));
            scenarios += s;
            let sa = s.saturating_mul(a);
            instances = instances.saturating_add(s).saturating_add(sa.saturating_mul(instances_per_slot(g)));
            requests = requests.saturating_add(sa.saturating_mul(requests_per_slot(g)).saturating_mul(cycles(g)));
            if instances > u128::from(MAX_INSTANCES) && !instances_said {
                instances_said = true;
                let msg = format!(
                    "the run starts {instances} instances up to this group (Σ S + S·A, an action once per churn cycle and, for one_shot, per request or burst), more than the limit of {MAX_INSTANCES} (2^24); lower scenarios, actions, churn cycles or requests"
                );
                self.push(&blame(src, &[&src.scenarios, &src.actions]), msg);
            }
            if requests > u128::from(MAX_RUN_REQUESTS) && !requests_said {
                requests_said = true;
                let msg = format!(
                    "the run sends {requests} requests up to this group (Σ S·A·N, times the churn cycles), more than the limit of {MAX_RUN_REQUESTS} (2^32); lower scenarios, actions, requests or churn cycles"
                );
                self.push(&blame(src, &[&src.requests, &src.scenarios, &src.actions]), msg);
            }
        }
        if let Some((rate, loc)) = rate {
            // The tiers pace each scenario instance at qps / ΣS.
            let gap = scenarios.max(1) as f64 / rate.qps;
            if over_max_duration(gap) {
                let msg = format!(
                    "qps {} is split evenly among the run's {scenarios} scenario instances: one launch per {} for each, more than the limit of {MAX_DURATION_TEXT}; raise qps",
                    rate.qps,
                    secs_text(gap)
                );
                self.push(&loc, msg);
            }
        }
    }
}
