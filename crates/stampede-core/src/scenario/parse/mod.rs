//! TOML text → validated [`Scenario`], collecting every problem with its line and field.
//!
//! Each group is read in two passes. `read_group` reads every key on its own (type, range,
//! keyword), reporting at the key's line, and skips keys a CLI flag overrides. `check_group`
//! then checks the rules that span fields (burst against N; lifecycle against arrivals, churn
//! and steps; steps against N, A and each other), using a [`Source`] per value so a message can
//! say where the other value came from. A value that failed its own check is left out of the
//! cross-field rules, so one mistake does not cascade into misleading follow-up messages.
//!
//! What lives where: `reader` (locations, typed reads, syntax errors), `group` (one group's
//! keys and its runtimes' option tables), `values` (work, distributions, arrivals, lifecycle,
//! …), `checks` (rules across fields, runtime capabilities), `limits` (sizes and durations
//! derived from several keys, per group and for the whole run).

mod checks;
mod group;
mod limits;
mod reader;
mod values;

use std::path::Path;
use std::time::Duration;

use toml_edit::{ImDocument, TableLike};

use super::limits::MAX_GROUPS;
use super::model::*;
use super::{Overrides, Problem, RuntimeCatalog};
use reader::{Loc, Reader};

pub use reader::OptionsTable;

const TOP_KEYS: &[&str] = &["name", "seed", "groups", "timeout", "start_rate", "group"];
/// Keys of a `[[group]]` besides the option tables named after the catalog's runtimes.
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
    "hold",
    "timeouts",
    "steps",
];
const PAUSE_KEYS: &[&str] = &["kind", "after_requests", "duration", "actions"];
const KILL_KEYS: &[&str] = &["kind", "after_requests", "actions"];

const DEFAULT_RUN_TIMEOUT: Duration = Duration::from_secs(30 * 60);
const DEFAULT_PAYLOAD: u32 = 64;
/// The embedded default, and the zero-container baseline: every binary's catalog has it.
pub const DEFAULT_RUNTIME: &str = "process";

pub(super) fn parse(
    text: &str,
    file: Option<&Path>,
    ov: &Overrides,
    catalog: &dyn RuntimeCatalog,
) -> Result<Scenario, Vec<Problem>> {
    let mut r = Reader::new(text, catalog);
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
    let name = r.entry(root, &top, "name").and_then(|(item, loc)| r.safe_name(item, &loc));
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
    let (start_rate, start_rate_loc) = match r.entry(root, &top, "start_rate") {
        Some((item, loc)) => (r.start_rate(item, &loc), Some(loc)),
        None => (None, None),
    };

    let mut groups = Vec::new();
    let mut all_sources = Vec::new();
    let mut names: Vec<(String, Loc)> = Vec::new();
    match r.entry(root, &top, "group") {
        None => r.push(&top.key("group", None), "a scenario needs at least one group: add a [[group]] table"),
        Some((item, loc)) => {
            let before = r.problems.len();
            let mut tables = r.table_array(item, &loc, "write each group as [[group]]");
            if tables.is_empty() && r.problems.len() == before {
                r.push(&loc, "a scenario needs at least one group: add a [[group]] table");
            }
            if tables.len() > MAX_GROUPS {
                r.push(&loc, format!("a scenario may have at most {MAX_GROUPS} groups, got {}", tables.len()));
                tables.clear();
            }
            for (index, (table, gloc)) in tables.into_iter().enumerate() {
                // --runtime and --image replace the first group's values, and are the default of
                // every later group that does not name its own: `stampede run FILE --runtime
                // docker` runs the file on Docker.
                let first = (index == 0).then_some(ov);
                let (group, sources) = r.read_group(Some(table), &gloc, &format!("group-{index}"), first, ov);
                r.check_group(&group, &sources);
                if let Some((_, earlier)) = names.iter().find(|(n, _)| *n == group.name) {
                    let at = earlier.line.map(|l| format!(" (line {l})")).unwrap_or_default();
                    let msg = format!(
                        "group name \"{}\" is already used by {}{at}; names must be unique",
                        group.name, earlier.field
                    );
                    r.push(&sources.name, msg);
                }
                names.push((group.name.clone(), sources.name.clone()));
                groups.push(group);
                all_sources.push(sources);
            }
        }
    }
    r.check_run(&groups, &all_sources, start_rate.zip(start_rate_loc));

    r.finish(Scenario { name: name.unwrap_or(default_name), seed, groups_mode, run_timeout, start_rate, groups })
}

pub(super) fn from_overrides(ov: &Overrides, catalog: &dyn RuntimeCatalog) -> Result<Scenario, Vec<Problem>> {
    let mut r = Reader::new("", catalog);
    let (group, sources) = r.read_group(None, &Loc::root().key("group", None).index(0, None), "cli", Some(ov), ov);
    r.check_group(&group, &sources);
    r.check_run(std::slice::from_ref(&group), std::slice::from_ref(&sources), None);
    r.finish(Scenario {
        start_rate: None,
        name: "cli".to_owned(),
        seed: ov.seed,
        groups_mode: GroupsMode::Sequence,
        run_timeout: DEFAULT_RUN_TIMEOUT,
        groups: vec![group],
    })
}

pub(super) fn default_group(name: &str) -> Group {
    Group {
        name: name.to_owned(),
        runtime: DEFAULT_RUNTIME.to_owned(),
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
        hold: Hold::None,
        runtime_options: Default::default(),
    }
}
