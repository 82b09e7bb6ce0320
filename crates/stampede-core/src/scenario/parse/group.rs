//! One `[[group]]`: every key read on its own, at its own line (pass one of two; the rules
//! across fields are in `checks`), and the option tables of the runtimes, which each runtime
//! reads itself through an [`OptionsTable`].

use std::collections::BTreeMap;

use toml_edit::{Item, TableLike};

use super::super::duration::DURATION_SYNTAX;
use super::super::limits::{MAX_INSTANCES, MAX_REQUESTS, MAX_STEPS, MAX_STEP_INDICES, MAX_STRING_BYTES};
use super::super::model::*;
use super::super::{flags, Overrides, MAX_IMAGE_FILLER_MB, MAX_PAYLOAD};
use super::reader::describe;
use super::reader::{Loc, OptionsTable, Reader, Source};
use super::{default_group, values::dist_problem, GROUP_KEYS, KILL_KEYS, PAUSE_KEYS};

/// Where the values of one group that other rules depend on came from; `None` = invalid.
pub(super) struct GroupSources {
    /// The `[[group]]` table itself: where problems of values derived from several keys go
    /// when none of those keys is in the file.
    pub(super) group: Loc,
    pub(super) name: Loc,
    pub(super) scenarios: Option<Source>,
    pub(super) requests: Option<Source>,
    pub(super) actions: Option<Source>,
    pub(super) lifecycle: Option<Source>,
    pub(super) work: Option<Source>,
    pub(super) payload: Option<Source>,
    /// Where the arrivals came from; `None` = invalid.
    pub(super) arrivals: Option<Source>,
    /// Set when the group is open loop with a burst given in the file.
    pub(super) burst: Option<Loc>,
    /// Set when the group has a valid churn table.
    pub(super) churn: Option<Loc>,
    /// Parallel to `Group::steps`.
    pub(super) steps: Vec<StepSources>,
    /// Where the runtime of the scenarios, and of the actions, was chosen; `None` = invalid.
    pub(super) runtime: Option<Source>,
    pub(super) action_runtime: Option<Source>,
    /// Set when the file asks for a filler image.
    pub(super) image_filler: Option<Loc>,
    /// Where `hold` was set (when it was).
    pub(super) hold: Option<Loc>,
}

pub(super) struct StepSources {
    pub(super) step: Loc,
    pub(super) kind: Loc,
    pub(super) after_requests: Loc,
    /// Each listed action index with its location (empty for "all").
    pub(super) indices: Vec<(u32, Loc)>,
}

impl Reader<'_> {
    pub(super) fn read_group(
        &mut self,
        table: Option<&dyn TableLike>,
        loc: &Loc,
        default_name: &str,
        ov: Option<&Overrides>,
        fallback: &Overrides,
    ) -> (Group, GroupSources) {
        let ov = ov.cloned().unwrap_or_default();
        let mut g = default_group(default_name);
        // A later group takes the CLI's runtime and image as its defaults.
        if let Some(runtime) = &fallback.runtime {
            g.runtime = runtime.clone();
        }
        if let Some(image) = &fallback.image {
            g.image = Some(image.clone());
        }
        let mut src = GroupSources {
            group: loc.clone(),
            name: loc.clone(),
            scenarios: Some(Source::Default),
            requests: Some(Source::Default),
            actions: Some(Source::Default),
            lifecycle: Some(Source::Default),
            work: Some(Source::Default),
            payload: Some(Source::Default),
            arrivals: Some(Source::Default),
            burst: None,
            churn: None,
            steps: Vec::new(),
            runtime: Some(Source::Default),
            action_runtime: None,
            image_filler: None,
            hold: None,
        };
        let runtime_names = self.catalog.names();
        if let Some(table) = table {
            let allowed: Vec<&str> = GROUP_KEYS.iter().copied().chain(runtime_names.iter().copied()).collect();
            self.deny_unknown(table, loc, &allowed, "in a [[group]]");
        }

        if let Some((item, nloc)) = self.get(table, loc, "name") {
            if let Some(name) = self.safe_name(item, &nloc) {
                g.name = name;
            }
            src.name = nloc;
        }

        let runtimes: Vec<(&str, &str)> = runtime_names.iter().map(|n| (*n, *n)).collect();
        if let Some(runtime) = &ov.runtime {
            src.runtime = Some(Source::Flag(flags::RUNTIME));
            g.runtime = runtime.clone();
            if self.catalog.find(runtime).is_none() {
                let allowed = runtime_names.join(", ");
                self.push(&Loc::flag(flags::RUNTIME), format!("unknown runtime \"{runtime}\"; allowed: {allowed}"));
                src.runtime = None;
            }
        } else if let Some((item, l)) = self.get(table, loc, "runtime") {
            match self.keyword(item, &l, &runtimes) {
                Some(name) => (g.runtime, src.runtime) = (name.to_owned(), Some(Source::File(l))),
                None => src.runtime = None,
            }
        }
        if let Some((item, l)) = self.get(table, loc, "action_runtime") {
            g.action_runtime = self.keyword(item, &l, &runtimes).map(str::to_owned);
            src.action_runtime = g.action_runtime.as_ref().map(|_| Source::File(l));
        } else {
            src.action_runtime = src.runtime.clone();
        }

        if let Some(image) = &ov.image {
            if image.trim().is_empty() {
                self.push(&Loc::flag(flags::IMAGE), "must not be empty");
            } else if image.len() > MAX_STRING_BYTES {
                let msg = format!("must be at most {MAX_STRING_BYTES} bytes long, got {}", image.len());
                self.push(&Loc::flag(flags::IMAGE), msg);
            }
            g.image = Some(image.clone());
        } else if let Some((item, l)) = self.get(table, loc, "image") {
            g.image = self.non_empty_string(item, &l);
        }

        // S and A are bounded by what they multiply into (instances, requests), checked with
        // the rest of the group; N also sizes each action's schedule on its own.
        match self.count_field(table, loc, "scenarios", g.scenarios, ov.scenarios, flags::SCENARIOS, u32::MAX) {
            Some((v, s)) => (g.scenarios, src.scenarios) = (v, Some(s)),
            None => src.scenarios = None,
        }
        match self.count_field(table, loc, "actions", g.actions, ov.actions, flags::ACTIONS, u32::MAX) {
            Some((v, s)) => (g.actions, src.actions) = (v, Some(s)),
            None => src.actions = None,
        }
        match self.count_field(table, loc, "requests", g.requests, ov.requests, flags::REQUESTS, MAX_REQUESTS) {
            Some((v, s)) => (g.requests, src.requests) = (v, Some(s)),
            None => src.requests = None,
        }

        if let Some(work) = ov.work {
            src.work = Some(Source::Flag(flags::WORK));
            if let Some(why) = dist_problem(&work.duration) {
                self.push(&Loc::flag(flags::WORK), why);
                src.work = None;
            }
            g.work = work;
        } else if let Some((item, l)) = self.get(table, loc, "work") {
            match self.work(item, &l) {
                Some(work) => (g.work, src.work) = (work, Some(Source::File(l))),
                None => src.work = None,
            }
        }

        if let Some(bytes) = ov.payload {
            src.payload = Some(Source::Flag(flags::PAYLOAD));
            if bytes > MAX_PAYLOAD {
                self.push(
                    &Loc::flag(flags::PAYLOAD),
                    format!("must be at most 16 MiB ({MAX_PAYLOAD} bytes), got {bytes}"),
                );
                src.payload = None;
            }
            g.payload = Payload { request: bytes, response: bytes };
        } else if let Some((item, l)) = self.get(table, loc, "payload") {
            match self.payload(item, &l) {
                Some(payload) => (g.payload, src.payload) = (payload, Some(Source::File(l))),
                None => src.payload = None,
            }
        }

        if let Some((item, l)) = self.get(table, loc, "start_delay") {
            g.start_delay = self.duration(item, &l).unwrap_or(g.start_delay);
        }
        if let Some((item, l)) = self.get(table, loc, "start_concurrency") {
            let why = " (the most instances a run may start, 2^24)";
            g.start_concurrency = self.count_at_most(item, &l, MAX_INSTANCES as u32, why);
        }
        if let Some((item, l)) = self.get(table, loc, "warmup") {
            g.warmup = self.boolean(item, &l).unwrap_or(false);
        }
        if let Some((item, l)) = self.get(table, loc, "arrivals") {
            let (arrivals, burst) = self.arrivals(item, &l);
            match arrivals {
                Some(arrivals) => (g.arrivals, src.arrivals) = (arrivals, Some(Source::File(l))),
                None => src.arrivals = None,
            }
            src.burst = burst;
        }
        if let Some((item, l)) = self.get(table, loc, "lifecycle") {
            match self.lifecycle(item, &l) {
                Some(lifecycle) => (g.lifecycle, src.lifecycle) = (lifecycle, Some(Source::File(l))),
                None => src.lifecycle = None,
            }
        }
        if let Some((item, l)) = self.get(table, loc, "churn") {
            g.churn = self.churn(item, &l);
            src.churn = g.churn.is_some().then_some(l);
        }
        if let Some((item, l)) = self.get(table, loc, "start_rate") {
            g.start_rate = self.start_rate(item, &l);
        }
        if let Some((item, l)) = self.get(table, loc, "image_filler_mb") {
            g.image_filler_mb = self.integer(item, &l, 0, i64::from(MAX_IMAGE_FILLER_MB)).map_or(0, |v| v as u32);
            src.image_filler = (g.image_filler_mb > 0).then_some(l);
        }
        if let Some((item, l)) = self.get(table, loc, "hold") {
            match self.keyword(item, &l, &[("none", Hold::None), ("all_ready", Hold::AllReady)]) {
                Some(hold) => (g.hold, src.hold) = (hold, Some(l)),
                None => src.hold = None,
            }
        }
        if let Some((item, l)) = self.get(table, loc, "timeouts") {
            g.timeouts = self.timeouts(item, &l, g.timeouts);
        }
        g.runtime_options = self.runtime_options(table, loc, &g);
        if let Some((item, l)) = self.get(table, loc, "steps") {
            let tables = self.table_array(item, &l, "write each step as [[group.steps]]");
            if tables.len() > MAX_STEPS {
                self.push(&l, format!("a group may have at most {MAX_STEPS} steps, got {}", tables.len()));
            } else {
                for (step_table, sloc) in tables {
                    if let Some((step, sources)) = self.step(step_table, &sloc) {
                        g.steps.push(step);
                        src.steps.push(sources);
                    }
                }
                // Each list is bounded on its own; together they bound the work of checking
                // the steps against each other.
                let listed: usize = src.steps.iter().map(|s| s.indices.len()).sum();
                if listed > MAX_STEP_INDICES {
                    let msg = format!(
                        "the steps of a group may list at most {MAX_STEP_INDICES} action indices in all, got {listed}; use actions = \"all\" where a step applies to every action"
                    );
                    self.push(&l, msg);
                }
            }
        }
        (g, src)
    }

    /// Each runtime's option table, read by that runtime; the runtimes the group uses get
    /// their defaults when the file has no table for them. Options of a runtime the group does
    /// not use are still validated (a typo should not wait for the day it is used).
    fn runtime_options(
        &mut self,
        table: Option<&dyn TableLike>,
        loc: &Loc,
        g: &Group,
    ) -> BTreeMap<String, serde_json::Value> {
        let mut options = BTreeMap::new();
        for name in self.catalog.names() {
            let Some(info) = self.catalog.find(name) else { continue };
            let read = match self.get(table, loc, name) {
                Some((item, l)) => match self.table(item, &l, &format!("{name} = {{ … }}")) {
                    Some((t, tloc)) => {
                        let mut options_table = OptionsTable::new(self, t, tloc);
                        let value = info.read_options(&mut options_table);
                        self.problems.extend(options_table.into_problems());
                        Some(value)
                    }
                    None => None,
                },
                None => None,
            };
            let used = g.runtime == name || g.effective_action_runtime() == name;
            if let Some(value) = read.or_else(|| used.then(|| info.default_options())) {
                options.insert(name.to_owned(), value);
            }
        }
        options
    }

    /// A count of the group (S, A, N): the flag when given, else the file's key, else
    /// `default`; with where it came from. `None` when the value given is invalid or over `max`.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn count_field(
        &mut self,
        table: Option<&dyn TableLike>,
        loc: &Loc,
        key: &str,
        default: u32,
        flag_value: Option<u32>,
        flag: &'static str,
        max: u32,
    ) -> Option<(u32, Source)> {
        if let Some(v) = flag_value {
            if v == 0 {
                self.push(&Loc::flag(flag), "must be at least 1, got 0");
                return None;
            }
            if v > max {
                self.push(&Loc::flag(flag), format!("must be at most {max}, got {v}"));
                return None;
            }
            return Some((v, Source::Flag(flag)));
        }
        match self.get(table, loc, key) {
            None => Some((default, Source::Default)),
            Some((item, l)) => self.count_at_most(item, &l, max, "").map(|v| (v, Source::File(l))),
        }
    }

    /// A run or group name: it ends up in the results folder's name, container and service
    /// names and labels, so it is short and made only of characters safe in all of them (no
    /// '/', so it cannot leave the results folder; no leading '.', so never "." or "..").
    pub(super) fn safe_name(&mut self, item: &Item, loc: &Loc) -> Option<String> {
        const MAX: usize = 64;
        let name = self.non_empty_string(item, loc)?;
        if name.len() > MAX {
            self.push(loc, format!("must be at most {MAX} characters, got {}", name.len()));
            return None;
        }
        if !name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')) || name.starts_with('.') {
            self.push(
                loc,
                format!("\"{name}\" may only contain letters, digits, '_', '.' and '-', and may not start with '.'"),
            );
            return None;
        }
        Some(name)
    }
    pub(super) fn step(&mut self, table: &dyn TableLike, loc: &Loc) -> Option<(Step, StepSources)> {
        let kind = self.required(table, loc, "kind", "\"pause\" or \"kill\"");
        let kind_loc = kind.as_ref().map_or_else(|| loc.key("kind", None), |(_, l)| l.clone());
        let is_pause = kind.and_then(|(item, l)| self.keyword(item, &l, &[("pause", true), ("kill", false)]));
        let (allowed, place) = match is_pause {
            Some(true) => (PAUSE_KEYS, "in a pause step"),
            Some(false) => (KILL_KEYS, "in a kill step"),
            None => (PAUSE_KEYS, "in a step"),
        };
        self.deny_unknown(table, loc, allowed, place);

        let after = self.required(table, loc, "after_requests", "the number of responses after which the step happens");
        let after_loc = after.as_ref().map_or_else(|| loc.key("after_requests", None), |(_, l)| l.clone());
        let after_requests =
            after.and_then(|(item, l)| self.integer(item, &l, 0, i64::from(u32::MAX))).map(|v| v as u32);

        let duration = match is_pause {
            Some(true) => self
                .required(table, loc, "duration", &format!("how long to stay paused, {DURATION_SYNTAX}"))
                .and_then(|(item, l)| self.duration(item, &l)),
            _ => None,
        };

        let (actions, indices) = match self.entry(table, loc, "actions") {
            None => (Some(ActionSelector::All), Vec::new()),
            Some((item, l)) => self.action_selector(item, &l),
        };

        let step = match is_pause? {
            true => Step::Pause { actions: actions?, after_requests: after_requests?, duration: duration? },
            false => Step::Kill { actions: actions?, after_requests: after_requests? },
        };
        Some((step, StepSources { step: loc.clone(), kind: kind_loc, after_requests: after_loc, indices }))
    }

    pub(super) fn action_selector(&mut self, item: &Item, loc: &Loc) -> (Option<ActionSelector>, Vec<(u32, Loc)>) {
        const EXPECTED: &str = "\"all\" or a list of action indices such as [0, 3]";
        if let Some(s) = item.as_str() {
            if s == "all" {
                return (Some(ActionSelector::All), Vec::new());
            }
            self.push(loc, format!("must be {EXPECTED}, got \"{s}\""));
            return (None, Vec::new());
        }
        let Some(array) = item.as_array() else {
            self.push(loc, format!("expected {EXPECTED}, got {}", describe(item)));
            return (None, Vec::new());
        };
        if array.is_empty() {
            self.push(loc, format!("must list at least one action: {EXPECTED}"));
            return (None, Vec::new());
        }
        if array.len() > MAX_STEP_INDICES {
            let msg = format!(
                "may list at most {MAX_STEP_INDICES} action indices, got {}; use actions = \"all\" for every action",
                array.len()
            );
            self.push(loc, msg);
            return (None, Vec::new());
        }
        let mut indices: Vec<(u32, Loc)> = Vec::new();
        // A set beside the list: a long list is checked for repeats in linear time.
        let mut seen = std::collections::HashSet::new();
        let mut ok = true;
        for (i, value) in array.iter().enumerate() {
            let iloc = loc.index(i, self.line(value.span()));
            match value.as_integer() {
                Some(v) if (0..=i64::from(u32::MAX)).contains(&v) => {
                    let v = v as u32;
                    if !seen.insert(v) {
                        self.push(&iloc, format!("action index {v} is listed twice"));
                        ok = false;
                    } else {
                        indices.push((v, iloc));
                    }
                }
                Some(v) => {
                    self.push(&iloc, format!("action indices start at 0, got {v}"));
                    ok = false;
                }
                None => {
                    self.push(
                        &iloc,
                        format!(
                            "expected an action index (an integer), got {} {}",
                            value.type_name(),
                            value.to_string().trim()
                        ),
                    );
                    ok = false;
                }
            }
        }
        let selector = ok.then(|| ActionSelector::Indices(indices.iter().map(|(v, _)| *v).collect()));
        (selector, indices)
    }
}
