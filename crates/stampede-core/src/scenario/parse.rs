//! TOML text → validated [`Scenario`], collecting every problem with its line and field.
//!
//! Each group is read in two passes. `read_group` reads every key on its own (type, range,
//! keyword), reporting at the key's line, and skips keys a CLI flag overrides. `check_group`
//! then checks the rules that span fields (burst against N; lifecycle against arrivals, churn
//! and steps; steps against N, A and each other), using a [`Source`] per value so a message can
//! say where the other value came from. A value that failed its own check is left out of the
//! cross-field rules, so one mistake does not cascade into misleading follow-up messages.

use std::collections::HashMap;
use std::ops::Range;
use std::path::Path;
use std::time::Duration;

use toml_edit::{ImDocument, Item, TableLike, TomlError};

use super::duration::DURATION_SYNTAX;
use super::model::*;
use super::{flags, format_duration, parse_duration, Overrides, Problem, MAX_IMAGE_FILLER_MB, MAX_PAYLOAD};

const TOP_KEYS: &[&str] = &["name", "seed", "groups", "timeout", "start_rate", "group"];
const GROUP_KEYS: &[&str] = &[
    "name",
    "runtime",
    "action_runtime",
    "image",
    "scenarios",
    "actions",
    "requests",
    "work",
    "payload",
    "start_delay",
    "start_concurrency",
    "warmup",
    "arrivals",
    "lifecycle",
    "churn",
    "start_rate",
    "image_filler_mb",
    "timeouts",
    "docker",
    "swarm",
    "steps",
];
const PAUSE_KEYS: &[&str] = &["kind", "after_requests", "duration", "actions"];
const KILL_KEYS: &[&str] = &["kind", "after_requests", "actions"];

const DEFAULT_RUN_TIMEOUT: Duration = Duration::from_secs(30 * 60);
const DEFAULT_PAYLOAD: u32 = 64;

/// Where to report a problem with a value: its field path and line.
#[derive(Debug, Clone)]
struct Loc {
    field: String,
    line: Option<usize>,
}

impl Loc {
    fn root() -> Loc {
        Loc { field: String::new(), line: None }
    }
    fn flag(flag: &str) -> Loc {
        Loc { field: flag.to_owned(), line: None }
    }
    /// A key of this table; without a line of its own it is reported at the table's line.
    fn key(&self, key: &str, line: Option<usize>) -> Loc {
        let field = if self.field.is_empty() { key.to_owned() } else { format!("{}.{key}", self.field) };
        Loc { field, line: line.or(self.line) }
    }
    fn index(&self, index: usize, line: Option<usize>) -> Loc {
        Loc { field: format!("{}[{index}]", self.field), line: line.or(self.line) }
    }
}

/// Where a value used by a cross-field rule came from, so the message can point at both ends.
#[derive(Debug, Clone)]
enum Source {
    Default,
    File(Loc),
    Flag(&'static str),
}

impl Source {
    fn describe(&self) -> String {
        match self {
            Source::Default => "the default".to_owned(),
            Source::File(Loc { line: Some(line), .. }) => format!("set at line {line}"),
            Source::File(loc) => format!("set in {}", loc.field),
            Source::Flag(flag) => format!("set by {flag}"),
        }
    }
}

/// Where the values of one group that other rules depend on came from; `None` = invalid.
struct GroupSources {
    name: Loc,
    requests: Option<Source>,
    actions: Option<Source>,
    lifecycle: Option<Source>,
    /// Where the arrivals came from; `None` = invalid.
    arrivals: Option<Source>,
    /// Set when the group is open loop with a burst given in the file.
    burst: Option<Loc>,
    /// Set when the group has a valid churn table.
    churn: Option<Loc>,
    /// Parallel to `Group::steps`.
    steps: Vec<StepSources>,
}

struct StepSources {
    step: Loc,
    kind: Loc,
    after_requests: Loc,
    /// Each listed action index with its location (empty for "all").
    indices: Vec<(u32, Loc)>,
}

struct Reader {
    line_starts: Vec<usize>,
    problems: Vec<Problem>,
}

pub(super) fn parse(text: &str, file: Option<&Path>, ov: &Overrides) -> Result<Scenario, Vec<Problem>> {
    let mut r = Reader::new(text);
    let doc = match ImDocument::parse(text) {
        Ok(doc) => doc,
        Err(e) => return Err(vec![r.syntax_problem(text, &e)]),
    };
    let root: &dyn TableLike = doc.as_table();
    let top = Loc::root();
    r.deny_unknown(root, &top, TOP_KEYS, "at the top level");

    let default_name = file
        .and_then(Path::file_stem)
        .map(|stem| stem.to_string_lossy().into_owned())
        .unwrap_or_else(|| "scenario".to_owned());
    let name = r.entry(root, &top, "name").and_then(|(item, loc)| r.non_empty_string(item, &loc));
    let seed = match ov.seed {
        Some(seed) => Some(seed),
        None => r
            .entry(root, &top, "seed")
            .and_then(|(item, loc)| r.integer(item, &loc, 0, i64::MAX))
            .map(|seed| seed as u64),
    };
    let groups_mode = r
        .entry(root, &top, "groups")
        .and_then(|(item, loc)| {
            r.keyword(item, &loc, &[("sequence", GroupsMode::Sequence), ("parallel", GroupsMode::Parallel)])
        })
        .unwrap_or(GroupsMode::Sequence);
    let run_timeout = r
        .entry(root, &top, "timeout")
        .and_then(|(item, loc)| r.positive_duration(item, &loc))
        .unwrap_or(DEFAULT_RUN_TIMEOUT);
    let start_rate = r.entry(root, &top, "start_rate").and_then(|(item, loc)| r.start_rate(item, &loc));

    let mut groups = Vec::new();
    let mut names: Vec<(String, Loc)> = Vec::new();
    match r.entry(root, &top, "group") {
        None => r.push(&top.key("group", None), "a scenario needs at least one group: add a [[group]] table"),
        Some((item, loc)) => {
            let before = r.problems.len();
            let tables = r.table_array(item, &loc, "write each group as [[group]]");
            if tables.is_empty() && r.problems.len() == before {
                r.push(&loc, "a scenario needs at least one group: add a [[group]] table");
            }
            for (index, (table, gloc)) in tables.into_iter().enumerate() {
                let first = (index == 0).then_some(ov);
                let (mut group, sources) = r.read_group(Some(table), &gloc, &format!("group-{index}"), first);
                // --runtime and --image also become the default of every later group that does
                // not name its own: `stampede run FILE --runtime docker` runs the file on Docker.
                if index > 0 {
                    if let (Some(k), false) = (ov.runtime, table.contains_key("runtime")) {
                        group.runtime = k;
                    }
                    if let (Some(i), false) = (&ov.image, table.contains_key("image")) {
                        group.image = Some(i.clone());
                    }
                }
                r.check_group(&group, &sources);
                if let Some((_, earlier)) = names.iter().find(|(n, _)| *n == group.name) {
                    let at = earlier.line.map(|l| format!(" (line {l})")).unwrap_or_default();
                    let msg = format!(
                        "group name \"{}\" is already used by {}{at}; names must be unique",
                        group.name, earlier.field
                    );
                    r.push(&sources.name, msg);
                }
                names.push((group.name.clone(), sources.name));
                groups.push(group);
            }
        }
    }

    r.finish(Scenario { name: name.unwrap_or(default_name), seed, groups_mode, run_timeout, start_rate, groups })
}

pub(super) fn from_overrides(ov: &Overrides) -> Result<Scenario, Vec<Problem>> {
    let mut r = Reader::new("");
    let (group, sources) =
        r.read_group(None, &Loc::root().key("group", None).index(0, None), "cli", Some(ov));
    r.check_group(&group, &sources);
    r.finish(Scenario {
        start_rate: None,
        name: "cli".to_owned(),
        seed: ov.seed,
        groups_mode: GroupsMode::Sequence,
        run_timeout: DEFAULT_RUN_TIMEOUT,
        groups: vec![group],
    })
}

fn default_group(name: &str) -> Group {
    Group {
        name: name.to_owned(),
        runtime: RuntimeKind::Process,
        action_runtime: None,
        image: None,
        scenarios: 1,
        actions: 1,
        requests: 10,
        work: Work { kind: WorkKind::Sleep, duration: DurationDist::fixed(Duration::from_millis(10)) },
        payload: Payload { request: DEFAULT_PAYLOAD, response: DEFAULT_PAYLOAD },
        arrivals: Arrivals::Closed,
        lifecycle: Lifecycle::KeepWarm,
        start_delay: Duration::ZERO,
        start_concurrency: None,
        timeouts: Timeouts { ready: Duration::from_secs(60), request: Duration::from_secs(30) },
        steps: Vec::new(),
        warmup: false,
        churn: None,
        start_rate: None,
        image_filler_mb: 0,
        docker: DockerOptions { network: DockerNetwork::Host },
        swarm: SwarmOptions {
            network: SwarmNetwork::Host,
            mapping: SwarmMapping::ServicePerAction,
            restart_condition: "none".to_owned(),
            update_parallelism: 0,
            placement: Vec::new(),
        },
    }
}

/// What is wrong with a distribution given whole (the `--work` flag); file values are checked
/// field by field instead, to point at the exact line.
fn dist_problem(dist: &DurationDist) -> Option<String> {
    match dist {
        DurationDist::Fixed { .. } => None,
        DurationDist::Uniform { min, max } if min > max => Some(format!(
            "uniform min ({}) must not exceed max ({})",
            format_duration(*min),
            format_duration(*max)
        )),
        DurationDist::Exponential { mean } if mean.is_zero() => {
            Some("exponential mean must be greater than 0".into())
        }
        DurationDist::Lognormal { median, .. } if median.is_zero() => {
            Some("lognormal median must be greater than 0".into())
        }
        DurationDist::Lognormal { sigma, .. } if !(sigma.is_finite() && *sigma > 0.0) => {
            Some(format!("lognormal sigma must be greater than 0, got {sigma}"))
        }
        _ => None,
    }
}

/// Two selectors share at least one action (of `actions` in all).
fn overlap(a: &ActionSelector, b: &ActionSelector, actions: u32) -> bool {
    match (a, b) {
        (ActionSelector::All, ActionSelector::All) => actions > 0,
        (ActionSelector::All, ActionSelector::Indices(v))
        | (ActionSelector::Indices(v), ActionSelector::All) => v.iter().any(|i| *i < actions),
        (ActionSelector::Indices(a), ActionSelector::Indices(b)) => a.iter().any(|i| b.contains(i)),
    }
}

/// The `dist` of a work-duration table.
#[derive(Debug, Clone, Copy)]
enum DistKind {
    Fixed,
    Uniform,
    Exponential,
    Lognormal,
}

/// The `dist` of an inter-arrival-time table.
#[derive(Debug, Clone, Copy)]
enum IatKind {
    Fixed,
    Exponential,
    ShiftedExponential,
}

fn step_kind(step: &Step) -> &'static str {
    match step {
        Step::Pause { .. } => "pause",
        Step::Kill { .. } => "kill",
    }
}

/// A short rendering of a TOML value for "got …" in messages.
fn describe(item: &Item) -> String {
    match item {
        Item::Value(value) => {
            let text = value.to_string();
            let text = text.trim();
            let text = if text.chars().count() > 40 {
                format!("{}…", text.chars().take(40).collect::<String>())
            } else {
                text.to_owned()
            };
            format!("{} {text}", value.type_name())
        }
        other => other.type_name().to_owned(),
    }
}

impl Reader {
    fn new(text: &str) -> Reader {
        let line_starts = std::iter::once(0).chain(text.match_indices('\n').map(|(i, _)| i + 1)).collect();
        Reader { line_starts, problems: Vec::new() }
    }

    fn line(&self, span: Option<Range<usize>>) -> Option<usize> {
        let start = span?.start;
        Some(self.line_starts.partition_point(|&s| s <= start))
    }

    fn push(&mut self, loc: &Loc, message: impl Into<String>) {
        self.problems.push(Problem { line: loc.line, field: loc.field.clone(), message: message.into() });
    }

    /// The scenario if nothing was wrong, else every problem, earliest line first (problems
    /// without a line, i.e. CLI flags, last).
    fn finish(mut self, scenario: Scenario) -> Result<Scenario, Vec<Problem>> {
        if self.problems.is_empty() {
            return Ok(scenario);
        }
        self.problems.sort_by_key(|p| p.line.unwrap_or(usize::MAX));
        Err(self.problems)
    }

    fn syntax_problem(&self, text: &str, e: &TomlError) -> Problem {
        let line = self.line(e.span());
        let message: Vec<&str> = e.message().lines().map(str::trim).filter(|l| !l.is_empty()).collect();
        Problem {
            line,
            field: line.map(|l| guess_field(text, l)).unwrap_or_default(),
            message: format!("TOML syntax error: {}", message.join("; ")),
        }
    }

    // ---- tables -------------------------------------------------------------------------

    fn entry<'t>(&self, table: &'t dyn TableLike, loc: &Loc, key: &str) -> Option<(&'t Item, Loc)> {
        let (k, item) = table.get_key_value(key)?;
        let line = self.line(k.span()).or_else(|| self.line(item.span()));
        Some((item, loc.key(key, line)))
    }

    /// Like [`Self::entry`] on an optional table (none when the group comes from the CLI).
    fn get<'t>(&self, table: Option<&'t dyn TableLike>, loc: &Loc, key: &str) -> Option<(&'t Item, Loc)> {
        table.and_then(|t| self.entry(t, loc, key))
    }

    fn required<'t>(
        &mut self,
        table: &'t dyn TableLike,
        loc: &Loc,
        key: &str,
        hint: &str,
    ) -> Option<(&'t Item, Loc)> {
        let found = self.entry(table, loc, key);
        if found.is_none() {
            self.push(&loc.key(key, None), format!("missing; expected {hint}"));
        }
        found
    }

    fn deny_unknown(&mut self, table: &dyn TableLike, loc: &Loc, allowed: &[&str], place: &str) {
        let unknown: Vec<String> =
            table.iter().map(|(k, _)| k.to_owned()).filter(|k| !allowed.contains(&k.as_str())).collect();
        for key in unknown {
            if let Some((_, kloc)) = self.entry(table, loc, &key) {
                self.push(&kloc, format!("unknown field `{key}`; allowed {place}: {}", allowed.join(", ")));
            }
        }
    }

    /// The item as a table, located at its own line when it has one.
    fn table_at<'t>(&self, item: &'t Item, loc: &Loc) -> Option<(&'t dyn TableLike, Loc)> {
        let table = item.as_table_like()?;
        Some((table, Loc { field: loc.field.clone(), line: self.line(item.span()).or(loc.line) }))
    }

    fn table<'t>(&mut self, item: &'t Item, loc: &Loc, how: &str) -> Option<(&'t dyn TableLike, Loc)> {
        match self.table_at(item, loc) {
            Some(found) => Some(found),
            None => {
                self.push(loc, format!("expected a table ({how}), got {}", describe(item)));
                None
            }
        }
    }

    /// `[[x]]` tables or an inline array of `{ … }` tables.
    fn table_array<'t>(&mut self, item: &'t Item, loc: &Loc, how: &str) -> Vec<(&'t dyn TableLike, Loc)> {
        match item {
            Item::ArrayOfTables(array) => array
                .iter()
                .enumerate()
                .map(|(i, t)| (t as &dyn TableLike, loc.index(i, self.line(t.span()))))
                .collect(),
            Item::Value(toml_edit::Value::Array(array)) => {
                let mut tables = Vec::new();
                for (i, value) in array.iter().enumerate() {
                    let iloc = loc.index(i, self.line(value.span()));
                    match value.as_inline_table() {
                        Some(t) => tables.push((t as &dyn TableLike, iloc)),
                        None => self.push(
                            &iloc,
                            format!(
                                "expected a table ({how}), got {} {}",
                                value.type_name(),
                                value.to_string().trim()
                            ),
                        ),
                    }
                }
                tables
            }
            other => {
                self.push(loc, format!("expected an array of tables ({how}), got {}", describe(other)));
                Vec::new()
            }
        }
    }

    // ---- scalars ------------------------------------------------------------------------

    fn string<'t>(&mut self, item: &'t Item, loc: &Loc) -> Option<&'t str> {
        let s = item.as_str();
        if s.is_none() {
            self.push(loc, format!("expected a string, got {}", describe(item)));
        }
        s
    }

    fn non_empty_string(&mut self, item: &Item, loc: &Loc) -> Option<String> {
        let s = self.string(item, loc)?;
        if s.trim().is_empty() {
            self.push(loc, "must not be empty");
            return None;
        }
        Some(s.to_owned())
    }

    fn integer(&mut self, item: &Item, loc: &Loc, min: i64, max: i64) -> Option<i64> {
        let Some(v) = item.as_integer() else {
            self.push(loc, format!("expected an integer, got {}", describe(item)));
            return None;
        };
        if v < min {
            self.push(loc, format!("must be at least {min}, got {v}"));
            None
        } else if v > max {
            self.push(loc, format!("must be at most {max}, got {v}"));
            None
        } else {
            Some(v)
        }
    }

    /// S, A, N, burst, start_concurrency: at least 1.
    fn count(&mut self, item: &Item, loc: &Loc) -> Option<u32> {
        self.integer(item, loc, 1, i64::from(u32::MAX)).map(|v| v as u32)
    }

    fn boolean(&mut self, item: &Item, loc: &Loc) -> Option<bool> {
        let b = item.as_bool();
        if b.is_none() {
            self.push(loc, format!("expected true or false, got {}", describe(item)));
        }
        b
    }

    fn duration(&mut self, item: &Item, loc: &Loc) -> Option<Duration> {
        let Some(s) = item.as_str() else {
            self.push(loc, format!("expected a duration string, {DURATION_SYNTAX}; got {}", describe(item)));
            return None;
        };
        parse_duration(s).map_err(|e| self.push(loc, e)).ok()
    }

    /// Timeouts, inter-arrival times, means: a zero would stall or spin the run.
    fn positive_duration(&mut self, item: &Item, loc: &Loc) -> Option<Duration> {
        let d = self.duration(item, loc)?;
        if d.is_zero() {
            self.push(loc, format!("must be greater than 0, got \"{}\"", item.as_str().unwrap_or_default()));
            return None;
        }
        Some(d)
    }

    fn keyword<T: Clone>(&mut self, item: &Item, loc: &Loc, choices: &[(&str, T)]) -> Option<T> {
        let allowed = choices.iter().map(|(k, _)| format!("\"{k}\"")).collect::<Vec<_>>().join(", ");
        let Some(s) = item.as_str() else {
            self.push(loc, format!("expected one of {allowed}, got {}", describe(item)));
            return None;
        };
        let found = choices.iter().find(|(k, _)| *k == s).map(|(_, v)| v.clone());
        if found.is_none() {
            self.push(loc, format!("must be one of {allowed}, got \"{s}\""));
        }
        found
    }

    fn payload_bytes(&mut self, item: &Item, loc: &Loc) -> Option<u32> {
        let v = self.integer(item, loc, 0, i64::MAX)?;
        if v > i64::from(MAX_PAYLOAD) {
            self.push(loc, format!("must be at most 16 MiB ({MAX_PAYLOAD} bytes), got {v}"));
            return None;
        }
        Some(v as u32)
    }

    // ---- a group --------------------------------------------------------------------------

    fn read_group(
        &mut self,
        table: Option<&dyn TableLike>,
        loc: &Loc,
        default_name: &str,
        ov: Option<&Overrides>,
    ) -> (Group, GroupSources) {
        let ov = ov.cloned().unwrap_or_default();
        let mut g = default_group(default_name);
        let mut src = GroupSources {
            name: loc.clone(),
            requests: Some(Source::Default),
            actions: Some(Source::Default),
            lifecycle: Some(Source::Default),
            arrivals: Some(Source::Default),
            burst: None,
            churn: None,
            steps: Vec::new(),
        };
        if let Some(table) = table {
            self.deny_unknown(table, loc, GROUP_KEYS, "in a [[group]]");
        }

        if let Some((item, nloc)) = self.get(table, loc, "name") {
            if let Some(name) = self.group_name(item, &nloc) {
                g.name = name;
            }
            src.name = nloc;
        }

        let runtimes = RuntimeKind::ALL.map(|k| (k.as_str(), k));
        if let Some(runtime) = ov.runtime {
            g.runtime = runtime;
        } else if let Some((item, l)) = self.get(table, loc, "runtime") {
            g.runtime = self.keyword(item, &l, &runtimes).unwrap_or(g.runtime);
        }
        if let Some((item, l)) = self.get(table, loc, "action_runtime") {
            g.action_runtime = self.keyword(item, &l, &runtimes);
        }

        if let Some(image) = &ov.image {
            if image.trim().is_empty() {
                self.push(&Loc::flag(flags::IMAGE), "must not be empty");
            }
            g.image = Some(image.clone());
        } else if let Some((item, l)) = self.get(table, loc, "image") {
            g.image = self.non_empty_string(item, &l);
        }

        if let Some((v, _)) =
            self.count_field(table, loc, "scenarios", g.scenarios, ov.scenarios, flags::SCENARIOS)
        {
            g.scenarios = v;
        }
        match self.count_field(table, loc, "actions", g.actions, ov.actions, flags::ACTIONS) {
            Some((v, s)) => (g.actions, src.actions) = (v, Some(s)),
            None => src.actions = None,
        }
        match self.count_field(table, loc, "requests", g.requests, ov.requests, flags::REQUESTS) {
            Some((v, s)) => (g.requests, src.requests) = (v, Some(s)),
            None => src.requests = None,
        }

        if let Some(work) = ov.work {
            if let Some(why) = dist_problem(&work.duration) {
                self.push(&Loc::flag(flags::WORK), why);
            }
            g.work = work;
        } else if let Some((item, l)) = self.get(table, loc, "work") {
            g.work = self.work(item, &l).unwrap_or(g.work);
        }

        if let Some(bytes) = ov.payload {
            if bytes > MAX_PAYLOAD {
                self.push(
                    &Loc::flag(flags::PAYLOAD),
                    format!("must be at most 16 MiB ({MAX_PAYLOAD} bytes), got {bytes}"),
                );
            }
            g.payload = Payload { request: bytes, response: bytes };
        } else if let Some((item, l)) = self.get(table, loc, "payload") {
            g.payload = self.payload(item, &l).unwrap_or(g.payload);
        }

        if let Some((item, l)) = self.get(table, loc, "start_delay") {
            g.start_delay = self.duration(item, &l).unwrap_or(g.start_delay);
        }
        if let Some((item, l)) = self.get(table, loc, "start_concurrency") {
            g.start_concurrency = self.count(item, &l);
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
            // Accepted on every runtime: the process runtime has no image, and the driver warns
            // and ignores it there, so one file runs on every runtime.
            g.image_filler_mb =
                self.integer(item, &l, 0, i64::from(MAX_IMAGE_FILLER_MB)).map_or(0, |v| v as u32);
        }
        if let Some((item, l)) = self.get(table, loc, "timeouts") {
            g.timeouts = self.timeouts(item, &l, g.timeouts);
        }
        if let Some((item, l)) = self.get(table, loc, "docker") {
            self.docker(item, &l, &mut g.docker);
        }
        if let Some((item, l)) = self.get(table, loc, "swarm") {
            self.swarm(item, &l, &mut g.swarm);
        }
        if let Some((item, l)) = self.get(table, loc, "steps") {
            for (step_table, sloc) in self.table_array(item, &l, "write each step as [[group.steps]]") {
                if let Some((step, sources)) = self.step(step_table, &sloc) {
                    g.steps.push(step);
                    src.steps.push(sources);
                }
            }
        }
        (g, src)
    }

    /// A count of the group (S, A, N): the flag when given, else the file's key, else
    /// `default`; with where it came from. `None` when the value given is invalid.
    fn count_field(
        &mut self,
        table: Option<&dyn TableLike>,
        loc: &Loc,
        key: &str,
        default: u32,
        flag_value: Option<u32>,
        flag: &'static str,
    ) -> Option<(u32, Source)> {
        if let Some(v) = flag_value {
            if v == 0 {
                self.push(&Loc::flag(flag), "must be at least 1, got 0");
                return None;
            }
            return Some((v, Source::Flag(flag)));
        }
        match self.get(table, loc, key) {
            None => Some((default, Source::Default)),
            Some((item, l)) => self.count(item, &l).map(|v| (v, Source::File(l))),
        }
    }

    fn group_name(&mut self, item: &Item, loc: &Loc) -> Option<String> {
        let name = self.non_empty_string(item, loc)?;
        // Group names end up in container and service names and labels.
        if !name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')) {
            self.push(loc, format!("\"{name}\" may only contain letters, digits, '_', '.' and '-'"));
            return None;
        }
        Some(name)
    }

    fn work(&mut self, item: &Item, loc: &Loc) -> Option<Work> {
        if let Some(s) = item.as_str() {
            return s.parse::<Work>().map_err(|e| self.push(loc, e)).ok();
        }
        let Some((table, loc)) = self.table_at(item, loc) else {
            self.push(
                loc,
                format!(
                    "expected \"sleep:10ms\" or a table {{ kind = \"spin\", duration = \"5ms\" }}, got {}",
                    describe(item)
                ),
            );
            return None;
        };
        self.deny_unknown(table, &loc, &["kind", "duration"], "in work");
        let kind = self.required(table, &loc, "kind", "\"sleep\" or \"spin\"").and_then(|(item, l)| {
            self.keyword(item, &l, &[("sleep", WorkKind::Sleep), ("spin", WorkKind::Spin)])
        });
        let duration = self
            .required(
                table,
                &loc,
                "duration",
                &format!("a duration ({DURATION_SYNTAX}) or a {{ dist = … }} table"),
            )
            .and_then(|(item, l)| self.dist(item, &l));
        Some(Work { kind: kind?, duration: duration? })
    }

    /// A work duration: fixed (zero allowed: measures pure overhead) or a distribution.
    fn dist(&mut self, item: &Item, loc: &Loc) -> Option<DurationDist> {
        if item.as_str().is_some() {
            return self.duration(item, loc).map(DurationDist::fixed);
        }
        let Some((table, loc)) = self.table_at(item, loc) else {
            self.push(
                loc,
                format!(
                    "expected a duration ({DURATION_SYNTAX}) or a {{ dist = … }} table, got {}",
                    describe(item)
                ),
            );
            return None;
        };
        use DurationDist as D;
        let dists = [
            ("fixed", DistKind::Fixed),
            ("uniform", DistKind::Uniform),
            ("exponential", DistKind::Exponential),
            ("lognormal", DistKind::Lognormal),
        ];
        let which = self
            .required(table, &loc, "dist", "\"fixed\", \"uniform\", \"exponential\" or \"lognormal\"")
            .and_then(|(item, l)| self.keyword(item, &l, &dists))?;
        match which {
            DistKind::Fixed => {
                self.deny_unknown(table, &loc, &["dist", "value"], "in a fixed distribution");
                let (item, l) = self.required(table, &loc, "value", DURATION_SYNTAX)?;
                self.duration(item, &l).map(D::fixed)
            }
            DistKind::Uniform => {
                self.deny_unknown(table, &loc, &["dist", "min", "max"], "in a uniform distribution");
                let min = self
                    .required(table, &loc, "min", DURATION_SYNTAX)
                    .and_then(|(i, l)| Some((self.duration(i, &l)?, l)));
                let max = self
                    .required(table, &loc, "max", DURATION_SYNTAX)
                    .and_then(|(i, l)| self.duration(i, &l));
                let ((min, min_loc), max) = (min?, max?);
                if min > max {
                    self.push(
                        &min_loc,
                        format!(
                            "must not exceed max ({}), got {}",
                            format_duration(max),
                            format_duration(min)
                        ),
                    );
                    return None;
                }
                Some(D::Uniform { min, max })
            }
            DistKind::Exponential => {
                self.deny_unknown(table, &loc, &["dist", "mean"], "in an exponential distribution");
                let (item, l) = self.required(table, &loc, "mean", DURATION_SYNTAX)?;
                self.positive_duration(item, &l).map(|mean| D::Exponential { mean })
            }
            DistKind::Lognormal => {
                self.deny_unknown(table, &loc, &["dist", "median", "sigma"], "in a lognormal distribution");
                let median = self
                    .required(table, &loc, "median", DURATION_SYNTAX)
                    .and_then(|(i, l)| self.positive_duration(i, &l));
                let sigma = self
                    .required(table, &loc, "sigma", "a number > 0, e.g. 0.5")
                    .and_then(|(i, l)| self.sigma(i, &l));
                Some(D::Lognormal { median: median?, sigma: sigma? })
            }
        }
    }

    fn sigma(&mut self, item: &Item, loc: &Loc) -> Option<f64> {
        let value = item.as_float().or_else(|| item.as_integer().map(|i| i as f64));
        match value {
            None => self.push(loc, format!("expected a number > 0, e.g. 0.5, got {}", describe(item))),
            Some(s) if !(s.is_finite() && s > 0.0) => {
                self.push(loc, format!("must be greater than 0, got {s}"))
            }
            Some(s) => return Some(s),
        }
        None
    }

    fn payload(&mut self, item: &Item, loc: &Loc) -> Option<Payload> {
        if item.as_integer().is_some() {
            let bytes = self.payload_bytes(item, loc)?;
            return Some(Payload { request: bytes, response: bytes });
        }
        let Some((table, loc)) = self.table_at(item, loc) else {
            self.push(
                loc,
                format!(
                    "expected a number of bytes or a table {{ request = 64, response = 1024 }}, got {}",
                    describe(item)
                ),
            );
            return None;
        };
        self.deny_unknown(table, &loc, &["request", "response"], "in payload");
        let mut side = |key| match self.entry(table, &loc, key) {
            Some((item, l)) => self.payload_bytes(item, &l),
            None => Some(DEFAULT_PAYLOAD),
        };
        let (request, response) = (side("request"), side("response"));
        Some(Payload { request: request?, response: response? })
    }

    /// The arrivals and, for open loop with a valid burst, where the burst was set.
    fn arrivals(&mut self, item: &Item, loc: &Loc) -> (Option<Arrivals>, Option<Loc>) {
        const OPEN_EXAMPLE: &str = "{ mode = \"open\", iat = \"100ms\", burst = 1 }";
        if let Some(s) = item.as_str() {
            match s {
                "closed" => return (Some(Arrivals::Closed), None),
                "open" => self.push(
                    loc,
                    format!("open arrivals need an inter-arrival time: arrivals = {OPEN_EXAMPLE}"),
                ),
                other => {
                    self.push(loc, format!("must be \"closed\" or a table {OPEN_EXAMPLE}, got \"{other}\""))
                }
            }
            return (None, None);
        }
        let Some((table, loc)) = self.table_at(item, loc) else {
            self.push(loc, format!("expected \"closed\" or a table {OPEN_EXAMPLE}, got {}", describe(item)));
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
                    .required(
                        table,
                        &loc,
                        "iat",
                        &format!("a duration ({DURATION_SYNTAX}) or a {{ dist = … }} table"),
                    )
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

    /// Inter-arrival time: never zero, a zero gap would send every request at once.
    fn iat(&mut self, item: &Item, loc: &Loc) -> Option<Iat> {
        if item.as_str().is_some() {
            return self.positive_duration(item, loc).map(|value| Iat::Fixed { value });
        }
        let Some((table, loc)) = self.table_at(item, loc) else {
            self.push(
                loc,
                format!(
                    "expected a duration ({DURATION_SYNTAX}) or a {{ dist = … }} table, got {}",
                    describe(item)
                ),
            );
            return None;
        };
        let dists = [
            ("fixed", IatKind::Fixed),
            ("exponential", IatKind::Exponential),
            ("shifted_exponential", IatKind::ShiftedExponential),
        ];
        let which = self
            .required(table, &loc, "dist", "\"fixed\", \"exponential\" or \"shifted_exponential\"")
            .and_then(|(item, l)| self.keyword(item, &l, &dists))?;
        let mut positive = |key: &str| {
            self.required(table, &loc, key, DURATION_SYNTAX)
                .and_then(|(item, l)| self.positive_duration(item, &l))
        };
        match which {
            IatKind::Fixed => {
                let value = positive("value");
                self.deny_unknown(table, &loc, &["dist", "value"], "in a fixed inter-arrival time");
                Some(Iat::Fixed { value: value? })
            }
            IatKind::Exponential => {
                let mean = positive("mean");
                self.deny_unknown(table, &loc, &["dist", "mean"], "in an exponential inter-arrival time");
                Some(Iat::Exponential { mean: mean? })
            }
            IatKind::ShiftedExponential => {
                let mean = positive("mean");
                // The shift may be zero (plain exponential); the mean may not.
                let shift = self
                    .required(table, &loc, "shift", DURATION_SYNTAX)
                    .and_then(|(item, l)| self.duration(item, &l));
                self.deny_unknown(
                    table,
                    &loc,
                    &["dist", "shift", "mean"],
                    "in a shifted_exponential inter-arrival time",
                );
                Some(Iat::ShiftedExponential { shift: shift?, mean: mean? })
            }
        }
    }

    /// `"keep_warm"`, `"one_shot"`, `"pause_between_bursts"`, or a table
    /// `{ mode = …, idle = … }` (idle only, and required, for `"eviction_probe"`).
    fn lifecycle(&mut self, item: &Item, loc: &Loc) -> Option<Lifecycle> {
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
        let Some((table, loc)) = self.table_at(item, loc) else {
            self.push(loc, format!("expected one of {SIMPLE} or a table {PROBE_EXAMPLE}, got {}", describe(item)));
            return None;
        };
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
    fn churn(&mut self, item: &Item, loc: &Loc) -> Option<Churn> {
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
    fn start_rate(&mut self, item: &Item, loc: &Loc) -> Option<StartRate> {
        let (table, loc) = self.table(item, loc, "start_rate = { qps = 10, burst = 2 }")?;
        self.deny_unknown(table, &loc, &["qps", "burst"], "in start_rate");
        let qps = self
            .required(table, &loc, "qps", "launches per second, a number > 0 such as 10 or 0.5")
            .and_then(|(item, l)| self.qps(item, &l));
        let burst = match self.entry(table, &loc, "burst") {
            Some((item, l)) => self.count(item, &l),
            None => Some(1),
        };
        Some(StartRate { qps: qps?, burst: burst? })
    }

    fn qps(&mut self, item: &Item, loc: &Loc) -> Option<f64> {
        let value = item.as_float().or_else(|| item.as_integer().map(|i| i as f64));
        match value {
            None => self.push(
                loc,
                format!("expected launches per second, a number > 0 such as 10 or 0.5, got {}", describe(item)),
            ),
            Some(q) if !(q.is_finite() && q > 0.0) => {
                self.push(loc, format!("must be a finite number greater than 0, got {q}"))
            }
            // The tiers turn qps into the gap between launches; it must fit a Duration.
            Some(q) if Duration::try_from_secs_f64(1.0 / q).is_err() => {
                self.push(loc, format!("is too small, got {q}: one launch per {} seconds", 1.0 / q))
            }
            Some(q) => return Some(q),
        }
        None
    }

    fn timeouts(&mut self, item: &Item, loc: &Loc, mut timeouts: Timeouts) -> Timeouts {
        let Some((table, loc)) = self.table(item, loc, "timeouts = { ready = \"60s\", request = \"30s\" }")
        else {
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

    fn docker(&mut self, item: &Item, loc: &Loc, docker: &mut DockerOptions) {
        let Some((table, loc)) = self.table(item, loc, "docker = { network = \"host\" }") else { return };
        self.deny_unknown(table, &loc, &["network"], "in docker");
        if let Some((item, l)) = self.entry(table, &loc, "network") {
            let choices = [
                ("host", DockerNetwork::Host),
                ("bridge", DockerNetwork::Bridge),
                ("per_scenario", DockerNetwork::PerScenario),
            ];
            docker.network = self.keyword(item, &l, &choices).unwrap_or(docker.network);
        }
    }

    fn swarm(&mut self, item: &Item, loc: &Loc, swarm: &mut SwarmOptions) {
        let Some((table, loc)) = self.table(item, loc, "swarm = { network = \"host\", … }") else { return };
        self.deny_unknown(
            table,
            &loc,
            &["network", "mapping", "restart_condition", "update_parallelism", "placement"],
            "in swarm",
        );
        if let Some((item, l)) = self.entry(table, &loc, "network") {
            let choices = [("host", SwarmNetwork::Host), ("overlay", SwarmNetwork::Overlay)];
            swarm.network = self.keyword(item, &l, &choices).unwrap_or(swarm.network);
        }
        if let Some((item, l)) = self.entry(table, &loc, "mapping") {
            if item.as_str() == Some("replicated_service") {
                // One service of A replicas shares one environment (no per-action identity) and
                // a killed replica's slot stays dead under restart policy none: per-action
                // pause/kill/relaunch, which stampede measures, cannot work on it.
                self.push(
                    &l,
                    "\"replicated_service\" is not supported: its replicas share one environment and cannot \
                     be paused, killed or relaunched one by one; use \"service_per_action\" (see README, Swarm)",
                );
            } else {
                let choices = [("service_per_action", SwarmMapping::ServicePerAction)];
                swarm.mapping = self.keyword(item, &l, &choices).unwrap_or(swarm.mapping);
            }
        }
        if let Some((item, l)) = self.entry(table, &loc, "restart_condition") {
            let choices = [("none", "none"), ("on-failure", "on-failure"), ("any", "any")];
            if let Some(condition) = self.keyword(item, &l, &choices) {
                swarm.restart_condition = condition.to_owned();
            }
        }
        if let Some((item, l)) = self.entry(table, &loc, "update_parallelism") {
            swarm.update_parallelism = self.integer(item, &l, 0, i64::MAX).map_or(0, |v| v as u64);
        }
        if let Some((item, l)) = self.entry(table, &loc, "placement") {
            match item.as_array() {
                None => self.push(
                    &l,
                    format!(
                        "expected a list of constraints such as [\"node.role==manager\"], got {}",
                        describe(item)
                    ),
                ),
                Some(array) => {
                    for (i, value) in array.iter().enumerate() {
                        match value.as_str() {
                            Some(s) => swarm.placement.push(s.to_owned()),
                            None => self.push(
                                &l.index(i, None),
                                format!(
                                    "expected a string, got {} {}",
                                    value.type_name(),
                                    value.to_string().trim()
                                ),
                            ),
                        }
                    }
                }
            }
        }
    }

    fn step(&mut self, table: &dyn TableLike, loc: &Loc) -> Option<(Step, StepSources)> {
        let kind = self.required(table, loc, "kind", "\"pause\" or \"kill\"");
        let kind_loc = kind.as_ref().map_or_else(|| loc.key("kind", None), |(_, l)| l.clone());
        let is_pause = kind.and_then(|(item, l)| self.keyword(item, &l, &[("pause", true), ("kill", false)]));
        let (allowed, place) = match is_pause {
            Some(true) => (PAUSE_KEYS, "in a pause step"),
            Some(false) => (KILL_KEYS, "in a kill step"),
            None => (PAUSE_KEYS, "in a step"),
        };
        self.deny_unknown(table, loc, allowed, place);

        let after = self.required(
            table,
            loc,
            "after_requests",
            "the number of responses after which the step happens",
        );
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

    fn action_selector(&mut self, item: &Item, loc: &Loc) -> (Option<ActionSelector>, Vec<(u32, Loc)>) {
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
        let mut indices: Vec<(u32, Loc)> = Vec::new();
        let mut ok = true;
        for (i, value) in array.iter().enumerate() {
            let iloc = loc.index(i, self.line(value.span()));
            match value.as_integer() {
                Some(v) if (0..=i64::from(u32::MAX)).contains(&v) => {
                    let v = v as u32;
                    if indices.iter().any(|(seen, _)| *seen == v) {
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

    // ---- rules across fields ----------------------------------------------------------------

    fn check_group(&mut self, g: &Group, src: &GroupSources) {
        let n = g.requests;
        if let (Arrivals::Open { burst, .. }, Some(burst_loc), Some(n_src)) =
            (&g.arrivals, &src.burst, &src.requests)
        {
            if *burst > n {
                let msg = format!("must be at most requests ({n}, {}), got {burst}: a burst is part of one action's N requests", n_src.describe());
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
                        Step::Pause { .. } => "a pause after the last response has no next response to measure resume_latency with",
                    };
                    let msg =
                        format!("must be less than requests ({n}, {}), got {after}: {why}", n_src.describe());
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
            self.check_step_conflicts(g, src, i);
        }
    }

    /// Nothing can happen to an action once it is killed, and two pauses of one action at the
    /// same point have no defined order: both would make the tiers guess.
    fn check_step_conflicts(&mut self, g: &Group, src: &GroupSources, i: usize) {
        let step = &g.steps[i];
        for (j, other) in g.steps.iter().enumerate() {
            if i == j || !overlap(step.actions(), other.actions(), g.actions) {
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
            if let Some(msg) = conflict {
                self.push(&src.steps[i].after_requests, msg);
                return;
            }
        }
    }
}

/// Best guess at the field a syntax error is in, from the table headers above it and the key
/// on its line; the parser itself only gives a position.
fn guess_field(text: &str, line: usize) -> String {
    let mut path = String::new();
    let mut counts: HashMap<String, usize> = HashMap::new();
    for (n, raw) in text.lines().enumerate().take(line) {
        let trimmed = raw.trim();
        let is_error_line = n + 1 == line;
        if let Some(name) = trimmed.strip_prefix("[[").and_then(|r| r.split("]]").next()) {
            let name = name.trim();
            *counts.entry(name.to_owned()).or_default() += 1;
            counts.retain(|k, _| !k.starts_with(&format!("{name}.")));
            path = header_path(name, &counts);
        } else if let Some(name) = trimmed.strip_prefix('[').and_then(|r| r.split(']').next()) {
            path = header_path(name.trim(), &counts);
        } else if is_error_line {
            let key = trimmed.split('=').next().unwrap_or("").trim();
            let looks_like_key = trimmed.contains('=')
                && !key.is_empty()
                && key.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
            if looks_like_key {
                return if path.is_empty() { key.to_owned() } else { format!("{path}.{key}") };
            }
        }
    }
    path
}

/// `group.steps` → `group[1].steps[0]` given how many of each array-of-tables header we saw.
fn header_path(name: &str, counts: &HashMap<String, usize>) -> String {
    let mut path = String::new();
    let mut prefix = String::new();
    for part in name.split('.') {
        let part = part.trim();
        if !prefix.is_empty() {
            prefix.push('.');
            path.push('.');
        }
        prefix.push_str(part);
        path.push_str(part);
        if let Some(count) = counts.get(&prefix) {
            path.push_str(&format!("[{}]", count.saturating_sub(1)));
        }
    }
    path
}
