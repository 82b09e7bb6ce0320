//! Pass two of a group: the rules that span fields (burst against N; lifecycle against
//! arrivals, churn and steps; steps against N, A and each other) and what the group asks of
//! its runtimes against their capabilities. Each message points at both ends.

use super::super::model::*;
use super::group::GroupSources;
use super::reader::{Reader, Source};

/// A step's actions as compared with other steps': `None` for all, else its indices sorted,
/// so two lists meet in linear time (a group may list up to `MAX_STEP_INDICES`).
fn sorted_indices(selector: &ActionSelector) -> Option<Vec<u32>> {
    match selector {
        ActionSelector::All => None,
        ActionSelector::Indices(v) => {
            let mut v = v.clone();
            v.sort_unstable();
            Some(v)
        }
    }
}

/// Two selectors (from [`sorted_indices`]) share at least one action (of `actions` in all).
fn overlap(a: Option<&[u32]>, b: Option<&[u32]>, actions: u32) -> bool {
    match (a, b) {
        (None, None) => actions > 0,
        (None, Some(v)) | (Some(v), None) => v.first().is_some_and(|i| *i < actions),
        (Some(a), Some(b)) => {
            let (mut i, mut j) = (0, 0);
            while i < a.len() && j < b.len() {
                match a[i].cmp(&b[j]) {
                    std::cmp::Ordering::Less => i += 1,
                    std::cmp::Ordering::Greater => j += 1,
                    std::cmp::Ordering::Equal => return true,
                }
            }
            false
        }
    }
}

pub(super) fn step_kind(step: &Step) -> &'static str {
    match step {
        Step::Pause { .. } => "pause",
        Step::Kill { .. } => "kill",
    }
}

impl Reader<'_> {
    // ---- rules across fields ----------------------------------------------------------------

    pub(super) fn check_group(&mut self, g: &Group, src: &GroupSources) {
        self.check_capabilities(g, src);
        self.check_derived(g, src);
        if let (Hold::AllReady, Some(hold_loc)) = (g.hold, &src.hold) {
            // Held instances live through the whole group's work: an instance per request or
            // per cycle contradicts that.
            let conflict = match (&g.lifecycle, &g.churn) {
                (Lifecycle::OneShot, _) => {
                    Some("lifecycle = \"one_shot\" starts a fresh instance per request or burst")
                }
                (_, Some(_)) => Some("churn starts fresh instances cycle after cycle"),
                _ => None,
            };
            if let Some(why) = conflict {
                let msg = format!("hold = \"all_ready\" keeps one instance per action alive for the whole group, but {why}; drop one of them");
                self.push(hold_loc, msg);
            }
        }
        let n = g.requests;
        if let (Arrivals::Open { burst, .. }, Some(burst_loc), Some(n_src)) = (&g.arrivals, &src.burst, &src.requests) {
            if *burst > n {
                let msg = format!(
                    "must be at most requests ({n}, {}), got {burst}: a burst is part of one action's N requests",
                    n_src.describe()
                );
                self.push(burst_loc, msg);
            }
        }

        if let (Lifecycle::OneShot, Some(lc_src), Some(churn_loc)) = (&g.lifecycle, &src.lifecycle, &src.churn) {
            let msg = format!(
                "churn cannot be used with lifecycle = \"one_shot\" ({}): one_shot already starts a fresh instance per request or burst",
                lc_src.describe()
            );
            self.push(churn_loc, msg);
        }

        if let (Lifecycle::PauseBetweenBursts, Some(Source::File(lc_loc)), Some(arr_src)) =
            (&g.lifecycle, &src.lifecycle, &src.arrivals)
        {
            match &g.arrivals {
                Arrivals::Closed => {
                    let msg = format!(
                        "\"pause_between_bursts\" needs open-loop arrivals (arrivals is \"closed\", {}): closed loop has no idle gap between bursts to pause in; set arrivals = {{ mode = \"open\", iat = \"100ms\", burst = 1 }}",
                        arr_src.describe()
                    );
                    self.push(lc_loc, msg);
                }
                Arrivals::Open { burst, .. } => {
                    if let (true, Some(n_src)) = (*burst == n, &src.requests) {
                        let burst_src = src.burst.clone().map_or(Source::Default, Source::File);
                        let msg = format!(
                            "\"pause_between_bursts\" needs more than one burst: burst ({burst}, {}) equals requests ({n}, {}), so there is no idle gap to pause in",
                            burst_src.describe(),
                            n_src.describe()
                        );
                        self.push(lc_loc, msg);
                    }
                }
            }
        }

        let sorted: Vec<Option<Vec<u32>>> = g.steps.iter().map(|s| sorted_indices(s.actions())).collect();
        for (i, (step, ss)) in g.steps.iter().zip(&src.steps).enumerate() {
            let kind = step_kind(step);
            if let Some(lc_src) = &src.lifecycle {
                let why = match (&g.lifecycle, step) {
                    (Lifecycle::OneShot, _) => {
                        Some(("one_shot", "a one-shot instance serves one request (or one burst) and is gone"))
                    }
                    (Lifecycle::PauseBetweenBursts, Step::Pause { .. }) => Some((
                        "pause_between_bursts",
                        "the lifecycle already pauses every instance between bursts; use keep_warm for a pause step",
                    )),
                    (Lifecycle::EvictionProbe { .. }, Step::Kill { .. }) => Some((
                        "eviction_probe",
                        "a killed action gets no further requests, so it would never get its probe",
                    )),
                    _ => None,
                };
                if let Some((lifecycle, why)) = why {
                    let msg = format!(
                        "{kind} steps cannot be used with lifecycle = \"{lifecycle}\" ({}): {why}",
                        lc_src.describe()
                    );
                    self.push(&ss.kind, msg);
                }
            }
            if let (Step::Kill { .. }, Some(churn_loc)) = (step, &src.churn) {
                let at = churn_loc.line.map(|l| format!("set at line {l}")).unwrap_or_default();
                let msg = format!(
                    "kill steps cannot be used with churn ({at}): churn already stops every instance at the end of its cycle, and a kill mid-cycle would leave open whether the next cycle starts"
                );
                self.push(&ss.kind, msg);
            }
            if let Some(n_src) = &src.requests {
                let after = step.after_requests();
                if after >= n {
                    let why = match step {
                        Step::Kill { .. } => "a kill after the last response is just the action's normal end",
                        Step::Pause { .. } => {
                            "a pause after the last response has no next response to measure resume_latency with"
                        }
                    };
                    let msg = format!("must be less than requests ({n}, {}), got {after}: {why}", n_src.describe());
                    self.push(&ss.after_requests, msg);
                }
            }
            if let Some(a_src) = &src.actions {
                for (index, iloc) in &ss.indices {
                    if *index >= g.actions {
                        let msg = format!(
                            "action index {index} is out of range: actions = {} ({}), so indices go from 0 to {}",
                            g.actions,
                            a_src.describe(),
                            g.actions - 1
                        );
                        self.push(iloc, msg);
                    }
                }
            }
            self.check_step_conflicts(g, src, i, &sorted);
        }
    }

    /// Nothing can happen to an action once it is killed, and two pauses of one action at the
    /// same point have no defined order: both would make the tiers guess. `sorted` holds each
    /// step's actions as [`sorted_indices`] gives them.
    pub(super) fn check_step_conflicts(
        &mut self,
        g: &Group,
        src: &GroupSources,
        i: usize,
        sorted: &[Option<Vec<u32>>],
    ) {
        let step = &g.steps[i];
        for (j, other) in g.steps.iter().enumerate() {
            if i == j {
                continue;
            }
            let (mine, theirs) = (step.after_requests(), other.after_requests());
            let other_at = src.steps[j].step.line.map(|l| format!(" (line {l})")).unwrap_or_default();
            let conflict = match (step, other) {
                (_, Step::Kill { .. }) if mine > theirs || (mine == theirs && (j < i || step_kind(step) == "pause")) => {
                    Some(format!("step[{j}]{other_at} kills the same action(s) after {theirs} responses; nothing can happen to an action after its kill"))
                }
                (Step::Pause { .. }, Step::Pause { .. }) if mine == theirs && j < i => Some(format!(
                    "step[{j}]{other_at} already pauses the same action(s) after {theirs} responses; give each pause its own after_requests"
                )),
                _ => None,
            };
            // Whether they share an action is asked last: it is the costly part.
            if let Some(msg) = conflict {
                if !overlap(sorted[i].as_deref(), sorted[j].as_deref(), g.actions) {
                    continue;
                }
                self.push(&src.steps[i].after_requests, msg);
                return;
            }
        }
    }

    /// What the group asks of the runtime that launches its actions, against what that
    /// runtime can do: refused here, before any runtime is contacted, so an input error always
    /// wins over an unreachable runtime.
    fn check_capabilities(&mut self, g: &Group, src: &GroupSources) {
        let (Some(rt_src), Some(info)) = (&src.action_runtime, self.catalog.find(g.effective_action_runtime())) else {
            return;
        };
        // The platform's own limits for this shape: the actions' runtime holds S parents' worth
        // of A children each; a separate scenario runtime holds the S parents alone.
        let (s, a) = (g.scenarios, g.actions);
        let mut shape = info.check_shape(&g.options_of(info.name()), s, a);
        if g.runtime != info.name() {
            if let Some(scenario_rt) = self.catalog.find(&g.runtime) {
                shape.extend(scenario_rt.check_shape(&g.options_of(&g.runtime), s, 0));
            }
        }
        let at = src.actions.as_ref().and_then(Source::loc).unwrap_or(&src.name).clone();
        for why in shape {
            self.push(&at, format!("group \"{}\": {why}", g.name));
        }
        let options = g.options_of(info.name());
        let caps = info.capabilities_for(&options);
        let limited = info.limited_because(&options);
        let runtime = info.name();
        let chosen = rt_src.describe();
        // Lacking it only with these options: the options are what to change.
        let lacks = |what: &str, other: &str| {
            let other = limited.as_deref().unwrap_or(other);
            format!(
                "group \"{}\" runs its actions on the {runtime} runtime ({chosen}), which cannot {what}; {other}",
                g.name
            )
        };
        if !caps.pause_resume {
            for (step, ss) in g.steps.iter().zip(&src.steps) {
                if matches!(step, Step::Pause { .. }) {
                    let msg = lacks(
                        "pause and resume instances",
                        "drop the pause step or pick a runtime that can pause (docker, swarm, process)",
                    );
                    self.push(&ss.kind, msg);
                }
            }
            if let (Lifecycle::PauseBetweenBursts, Some(Source::File(l))) = (&g.lifecycle, &src.lifecycle) {
                let msg =
                    lacks("pause and resume instances", "use lifecycle = \"keep_warm\" or a runtime that can pause");
                self.push(l, msg);
            }
        }
        if !caps.kill {
            for (step, ss) in g.steps.iter().zip(&src.steps) {
                if matches!(step, Step::Kill { .. }) {
                    let msg = lacks("kill one instance", "drop the kill step");
                    self.push(&ss.kind, msg);
                }
            }
        }
        if let (Some(l), true, false) = (&src.image_filler, caps.image, caps.image_filler) {
            let msg = lacks("build a filler-padded image", "drop image_filler_mb (the docker and swarm runtimes can)");
            self.push(l, msg);
        }
    }
}
