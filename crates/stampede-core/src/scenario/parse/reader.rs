//! The reading primitives: where a value is (its field path and line), typed reads of TOML
//! items that report what was wrong at that place, and the best guess at the field of a TOML
//! syntax error.

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;
use std::time::Duration;

use toml_edit::{Item, TableLike, TomlError};

use super::super::duration::DURATION_SYNTAX;
use super::super::limits::{MAX_OPTION_ENTRIES, MAX_STRING_BYTES};
use super::super::model::*;
use super::super::{parse_duration, Problem, RuntimeCatalog, MAX_PAYLOAD};

/// Where to report a problem with a value: its field path and line.
#[derive(Debug, Clone)]
pub(super) struct Loc {
    pub(super) field: String,
    pub(super) line: Option<usize>,
}

impl Loc {
    pub(super) fn root() -> Loc {
        Loc { field: String::new(), line: None }
    }
    pub(super) fn flag(flag: &str) -> Loc {
        Loc { field: flag.to_owned(), line: None }
    }
    /// A key of this table; without a line of its own it is reported at the table's line.
    pub(super) fn key(&self, key: &str, line: Option<usize>) -> Loc {
        let field = if self.field.is_empty() { key.to_owned() } else { format!("{}.{key}", self.field) };
        Loc { field, line: line.or(self.line) }
    }
    pub(super) fn index(&self, index: usize, line: Option<usize>) -> Loc {
        Loc { field: format!("{}[{index}]", self.field), line: line.or(self.line) }
    }
}

/// Where a value used by a cross-field rule came from, so the message can point at both ends.
#[derive(Debug, Clone)]
pub(super) enum Source {
    Default,
    File(Loc),
    Flag(&'static str),
}

impl Source {
    /// Where in the file the value was set, if it was.
    pub(super) fn loc(&self) -> Option<&Loc> {
        match self {
            Source::File(l) => Some(l),
            _ => None,
        }
    }

    pub(super) fn describe(&self) -> String {
        match self {
            Source::Default => "the default".to_owned(),
            Source::File(Loc { line: Some(line), .. }) => format!("set at line {line}"),
            Source::File(loc) => format!("set in {}", loc.field),
            Source::Flag(flag) => format!("set by {flag}"),
        }
    }
}

/// Reads one document: knows its line starts, collects problems, and knows the runtimes.
pub(super) struct Reader<'c> {
    pub(super) line_starts: Vec<usize>,
    pub(super) problems: Vec<Problem>,
    pub(super) catalog: &'c dyn RuntimeCatalog,
}

/// A short rendering of a TOML value for "got …" in messages.
pub(super) fn describe(item: &Item) -> String {
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

impl<'c> Reader<'c> {
    pub(super) fn new(text: &str, catalog: &'c dyn RuntimeCatalog) -> Reader<'c> {
        let line_starts = std::iter::once(0).chain(text.match_indices('\n').map(|(i, _)| i + 1)).collect();
        Reader { line_starts, problems: Vec::new(), catalog }
    }

    pub(super) fn line(&self, span: Option<Range<usize>>) -> Option<usize> {
        let start = span?.start;
        Some(self.line_starts.partition_point(|&s| s <= start))
    }

    pub(super) fn push(&mut self, loc: &Loc, message: impl Into<String>) {
        self.problems.push(Problem { line: loc.line, field: loc.field.clone(), message: message.into() });
    }

    /// The scenario if nothing was wrong, else every problem, earliest line first (problems
    /// without a line, i.e. CLI flags, last).
    pub(super) fn finish(mut self, scenario: Scenario) -> Result<Scenario, Vec<Problem>> {
        if self.problems.is_empty() {
            return Ok(scenario);
        }
        self.problems.sort_by_key(|p| p.line.unwrap_or(usize::MAX));
        Err(self.problems)
    }

    pub(super) fn syntax_problem(&self, text: &str, e: &TomlError) -> Problem {
        let line = self.line(e.span());
        let message: Vec<&str> = e.message().lines().map(str::trim).filter(|l| !l.is_empty()).collect();
        Problem {
            line,
            field: line.map(|l| guess_field(text, l)).unwrap_or_default(),
            message: format!("TOML syntax error: {}", message.join("; ")),
        }
    }

    // ---- tables -------------------------------------------------------------------------

    pub(super) fn entry<'t>(&self, table: &'t dyn TableLike, loc: &Loc, key: &str) -> Option<(&'t Item, Loc)> {
        let (k, item) = table.get_key_value(key)?;
        let line = self.line(k.span()).or_else(|| self.line(item.span()));
        Some((item, loc.key(key, line)))
    }

    /// Like [`Self::entry`] on an optional table (none when the group comes from the CLI).
    pub(super) fn get<'t>(&self, table: Option<&'t dyn TableLike>, loc: &Loc, key: &str) -> Option<(&'t Item, Loc)> {
        table.and_then(|t| self.entry(t, loc, key))
    }

    pub(super) fn required<'t>(
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

    pub(super) fn deny_unknown(&mut self, table: &dyn TableLike, loc: &Loc, allowed: &[&str], place: &str) {
        let unknown: Vec<String> =
            table.iter().map(|(k, _)| k.to_owned()).filter(|k| !allowed.contains(&k.as_str())).collect();
        for key in unknown {
            if let Some((_, kloc)) = self.entry(table, loc, &key) {
                self.push(&kloc, format!("unknown field `{key}`; allowed {place}: {}", allowed.join(", ")));
            }
        }
    }

    /// The item as a table, located at its own line when it has one.
    pub(super) fn table_at<'t>(&self, item: &'t Item, loc: &Loc) -> Option<(&'t dyn TableLike, Loc)> {
        let table = item.as_table_like()?;
        Some((table, Loc { field: loc.field.clone(), line: self.line(item.span()).or(loc.line) }))
    }

    pub(super) fn table<'t>(&mut self, item: &'t Item, loc: &Loc, how: &str) -> Option<(&'t dyn TableLike, Loc)> {
        self.table_or(item, loc, &format!("a table ({how})"))
    }

    /// The item as a table, or a problem saying what was `expected` in its place (for values
    /// that may be a string or a table).
    pub(super) fn table_or<'t>(
        &mut self,
        item: &'t Item,
        loc: &Loc,
        expected: &str,
    ) -> Option<(&'t dyn TableLike, Loc)> {
        let found = self.table_at(item, loc);
        if found.is_none() {
            self.push(loc, format!("expected {expected}, got {}", describe(item)));
        }
        found
    }

    /// `[[x]]` tables or an inline array of `{ … }` tables.
    pub(super) fn table_array<'t>(&mut self, item: &'t Item, loc: &Loc, how: &str) -> Vec<(&'t dyn TableLike, Loc)> {
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
                            format!("expected a table ({how}), got {} {}", value.type_name(), value.to_string().trim()),
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

    /// A string of at most [`MAX_STRING_BYTES`].
    pub(super) fn string<'t>(&mut self, item: &'t Item, loc: &Loc) -> Option<&'t str> {
        let Some(s) = item.as_str() else {
            self.push(loc, format!("expected a string, got {}", describe(item)));
            return None;
        };
        if s.len() > MAX_STRING_BYTES {
            self.push(loc, format!("must be at most {MAX_STRING_BYTES} bytes long, got {}", s.len()));
            return None;
        }
        Some(s)
    }

    pub(super) fn non_empty_string(&mut self, item: &Item, loc: &Loc) -> Option<String> {
        let s = self.string(item, loc)?;
        if s.trim().is_empty() {
            self.push(loc, "must not be empty");
            return None;
        }
        Some(s.to_owned())
    }

    pub(super) fn integer(&mut self, item: &Item, loc: &Loc, min: i64, max: i64) -> Option<i64> {
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
    pub(super) fn count(&mut self, item: &Item, loc: &Loc) -> Option<u32> {
        self.count_at_most(item, loc, u32::MAX, "")
    }

    /// A count from 1 to `max`; `why` (", …") says what the limit protects.
    pub(super) fn count_at_most(&mut self, item: &Item, loc: &Loc, max: u32, why: &str) -> Option<u32> {
        let v = self.integer(item, loc, 1, i64::MAX)?;
        if v > i64::from(max) {
            self.push(loc, format!("must be at most {max}{why}, got {v}"));
            return None;
        }
        Some(v as u32)
    }

    pub(super) fn boolean(&mut self, item: &Item, loc: &Loc) -> Option<bool> {
        let b = item.as_bool();
        if b.is_none() {
            self.push(loc, format!("expected true or false, got {}", describe(item)));
        }
        b
    }

    pub(super) fn duration(&mut self, item: &Item, loc: &Loc) -> Option<Duration> {
        let Some(s) = item.as_str() else {
            self.push(loc, format!("expected a duration string, {DURATION_SYNTAX}; got {}", describe(item)));
            return None;
        };
        parse_duration(s).map_err(|e| self.push(loc, e)).ok()
    }

    /// Timeouts, inter-arrival times, means: a zero would stall or spin the run.
    pub(super) fn positive_duration(&mut self, item: &Item, loc: &Loc) -> Option<Duration> {
        let d = self.duration(item, loc)?;
        if d.is_zero() {
            self.push(loc, format!("must be greater than 0, got \"{}\"", item.as_str().unwrap_or_default()));
            return None;
        }
        Some(d)
    }

    pub(super) fn keyword<T: Clone>(&mut self, item: &Item, loc: &Loc, choices: &[(&str, T)]) -> Option<T> {
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

    pub(super) fn payload_bytes(&mut self, item: &Item, loc: &Loc) -> Option<u32> {
        let v = self.integer(item, loc, 0, i64::MAX)?;
        if v > i64::from(MAX_PAYLOAD) {
            self.push(loc, format!("must be at most 16 MiB ({MAX_PAYLOAD} bytes), got {v}"));
            return None;
        }
        Some(v as u32)
    }
}

/// Best guess at the field a syntax error is in, from the table headers above it and the key
/// on its line; the parser itself only gives a position.
pub(super) fn guess_field(text: &str, line: usize) -> String {
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
pub(super) fn header_path(name: &str, counts: &HashMap<String, usize>) -> String {
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

/// A runtime's option table (`docker = { … }`), handed to that runtime's crate to read.
///
/// Every read reports its problem at the key's own line and field, like the rest of the file;
/// a key that is absent reads as `None` (the runtime keeps its default). Problems are merged
/// into the scenario's when the runtime is done.
pub struct OptionsTable<'a> {
    reader: Reader<'a>,
    table: &'a dyn TableLike,
    loc: Loc,
}

impl<'a> OptionsTable<'a> {
    pub(super) fn new(parent: &Reader<'a>, table: &'a dyn TableLike, loc: Loc) -> Self {
        let reader = Reader { line_starts: parent.line_starts.clone(), problems: Vec::new(), catalog: parent.catalog };
        OptionsTable { reader, table, loc }
    }

    pub(super) fn into_problems(self) -> Vec<Problem> {
        self.reader.problems
    }

    /// Refuse every key not in `allowed` (call once, first).
    pub fn allow(&mut self, allowed: &[&str]) {
        let place = format!("in {}", self.loc.field.rsplit('.').next().unwrap_or_default());
        self.reader.deny_unknown(self.table, &self.loc, allowed, &place);
    }

    pub fn has(&self, key: &str) -> bool {
        self.table.contains_key(key)
    }

    fn entry(&self, key: &str) -> Option<(&'a Item, Loc)> {
        self.reader.entry(self.table, &self.loc, key)
    }

    /// Report a problem with `key` (at its line, or the table's when it is absent).
    pub fn problem(&mut self, key: &str, message: impl Into<String>) {
        let loc = self.entry(key).map_or_else(|| self.loc.key(key, None), |(_, l)| l);
        self.reader.push(&loc, message);
    }

    /// One of `choices`, by its name.
    pub fn keyword<T: Clone>(&mut self, key: &str, choices: &[(&str, T)]) -> Option<T> {
        let (item, loc) = self.entry(key)?;
        self.reader.keyword(item, &loc, choices)
    }

    pub fn integer(&mut self, key: &str, min: i64, max: i64) -> Option<i64> {
        let (item, loc) = self.entry(key)?;
        self.reader.integer(item, &loc, min, max)
    }

    /// A finite number (integer or float) `> above`.
    pub fn number_above(&mut self, key: &str, above: f64) -> Option<f64> {
        let (item, loc) = self.entry(key)?;
        let value = item.as_float().or_else(|| item.as_integer().map(|i| i as f64));
        match value {
            None => self.reader.push(&loc, format!("expected a number, got {}", describe(item))),
            Some(v) if !(v.is_finite() && v > above) => {
                self.reader.push(&loc, format!("must be a finite number greater than {above}, got {v}"))
            }
            Some(v) => return Some(v),
        }
        None
    }

    pub fn string(&mut self, key: &str) -> Option<String> {
        let (item, loc) = self.entry(key)?;
        self.reader.non_empty_string(item, &loc)
    }

    pub fn boolean(&mut self, key: &str) -> Option<bool> {
        let (item, loc) = self.entry(key)?;
        self.reader.boolean(item, &loc)
    }

    pub fn duration(&mut self, key: &str) -> Option<Duration> {
        let (item, loc) = self.entry(key)?;
        self.reader.duration(item, &loc)
    }

    /// A list of strings, e.g. `["node.role==manager"]`; `example` shows the form in messages.
    pub fn string_list(&mut self, key: &str, example: &str) -> Option<Vec<String>> {
        let (item, loc) = self.entry(key)?;
        let Some(array) = item.as_array() else {
            self.reader.push(&loc, format!("expected a list such as {example}, got {}", describe(item)));
            return None;
        };
        if array.len() > MAX_OPTION_ENTRIES {
            self.reader.push(&loc, format!("must have at most {MAX_OPTION_ENTRIES} entries, got {}", array.len()));
            return None;
        }
        let mut out = Vec::new();
        for (i, value) in array.iter().enumerate() {
            match value.as_str() {
                Some(s) if s.len() > MAX_STRING_BYTES => self.reader.push(
                    &loc.index(i, None),
                    format!("must be at most {MAX_STRING_BYTES} bytes long, got {}", s.len()),
                ),
                Some(s) => out.push(s.to_owned()),
                None => self.reader.push(
                    &loc.index(i, None),
                    format!("expected a string, got {} {}", value.type_name(), value.to_string().trim()),
                ),
            }
        }
        (out.len() == array.len()).then_some(out)
    }

    /// A table of string values, e.g. `{ disktype = "ssd" }`.
    pub fn string_map(&mut self, key: &str) -> Option<BTreeMap<String, String>> {
        let (item, loc) = self.entry(key)?;
        let (table, loc) = self.reader.table(item, &loc, "a table of strings such as { disktype = \"ssd\" }")?;
        if table.len() > MAX_OPTION_ENTRIES {
            self.reader.push(&loc, format!("must have at most {MAX_OPTION_ENTRIES} entries, got {}", table.len()));
            return None;
        }
        let mut out = BTreeMap::new();
        for (k, v) in table.iter() {
            match v.as_str() {
                Some(s) if s.len() > MAX_STRING_BYTES || k.len() > MAX_STRING_BYTES => self
                    .reader
                    .push(&loc.key(k, None), format!("keys and values must be at most {MAX_STRING_BYTES} bytes long")),
                Some(s) => {
                    out.insert(k.to_owned(), s.to_owned());
                }
                None => self.reader.push(&loc.key(k, None), format!("expected a string, got {}", describe(v))),
            }
        }
        Some(out)
    }
}
