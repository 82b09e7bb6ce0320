//! One name for every metric, column and warning: each name stampede writes is documented in
//! docs/results.md and allowed by schema/results.schema.json.
//!
//! Two directions: the code's tables (`Metric`, `WarningKind`) against the docs and schema, and
//! the names a real run wrote (results.json keys, CSV headers) against the docs — so a name
//! added to the code, or written by a path the tables miss, cannot go undocumented.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use stampede_core::measure::{Metric, NATIVE_PHASE_PREFIX};
use stampede_core::results::WarningKind;

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").join(path)
}

fn docs() -> String {
    std::fs::read_to_string(repo("docs/results.md")).expect("docs/results.md")
}

fn schema() -> String {
    std::fs::read_to_string(repo("schema/results.schema.json")).expect("schema/results.schema.json")
}

/// Whether the docs name `name` as code: `name` (or `name[]`) in backticks (a family like
/// `native_phase_<state>` covers its members).
fn documented(docs: &str, name: &str) -> bool {
    if name.starts_with(NATIVE_PHASE_PREFIX) {
        return docs.contains(&format!("`{NATIVE_PHASE_PREFIX}<state>`"));
    }
    // Arrays are documented as `name[]`.
    docs.contains(&format!("`{name}`")) || docs.contains(&format!("`{name}[]`"))
}

/// Whether the docs have a table row for `name`: `| \`name\` |` (metrics and warnings each
/// have one, so a name mentioned only in passing does not count as documented).
fn has_row(docs: &str, name: &str) -> bool {
    let name = if name.starts_with(NATIVE_PHASE_PREFIX) { format!("{NATIVE_PHASE_PREFIX}<state>") } else { name.to_owned() };
    docs.contains(&format!("| `{name}` |"))
}

fn missing<'a>(names: impl IntoIterator<Item = &'a str>, known: impl Fn(&str) -> bool) -> Vec<String> {
    names.into_iter().filter(|n| !known(n)).map(str::to_owned).collect()
}

#[test]
fn every_metric_and_warning_of_the_tables_is_documented_and_in_the_schema() {
    let (docs, schema) = (docs(), schema());
    let metrics = Metric::ALL.map(|m| m.name());
    assert_eq!(missing(metrics, |n| has_row(&docs, n)), Vec::<String>::new(), "metrics missing from docs/results.md");
    assert_eq!(missing(metrics, |n| schema.contains(&format!("\"{n}\""))), Vec::<String>::new(), "metrics missing from the schema");
    let warnings = WarningKind::ALL.map(|w| w.name());
    assert_eq!(missing(warnings, |n| has_row(&docs, n)), Vec::<String>::new(), "warnings missing from docs/results.md");
    assert_eq!(missing(warnings, |n| schema.contains(&format!("\"{n}\""))), Vec::<String>::new(), "warnings missing from the schema");
}

fn header(path: &Path) -> Vec<String> {
    common::csv_rows(path).into_iter().next().unwrap_or_else(|| panic!("{} has no header", path.display()))
}

#[test]
fn every_name_a_real_run_writes_is_documented() {
    let dir = common::tempdir();
    // A run that measures much: pause and kill steps, cold and warm requests, raw output.
    let scenario = dir.path().join("names.toml");
    std::fs::write(
        &scenario,
        "[[group]]\nscenarios = 1\nactions = 3\nrequests = 4\nwork = \"sleep:1ms\"\n\
         [[group.steps]]\nkind = \"pause\"\nafter_requests = 1\nduration = \"10ms\"\nactions = [0]\n\
         [[group.steps]]\nkind = \"kill\"\nafter_requests = 2\nactions = [1]\n",
    )
    .unwrap();
    let out = dir.path().join("out");
    let o = common::run(
        &["run", scenario.to_str().unwrap(), "--raw", "--quiet", "--out", out.to_str().unwrap()],
        Duration::from_secs(60),
    );
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let r = common::results(&out);
    let docs = docs();

    let mut metrics_and_warnings = BTreeSet::new();
    for section in ["metrics", "scenario_metrics", "histograms"] {
        metrics_and_warnings.extend(r[section].as_object().expect(section).keys().cloned());
    }
    for w in r["warnings"].as_array().unwrap() {
        metrics_and_warnings.insert(w["kind"].as_str().unwrap().to_owned());
    }
    let undocumented = missing(metrics_and_warnings.iter().map(String::as_str), |n| has_row(&docs, n));
    assert_eq!(undocumented, Vec::<String>::new(), "metrics or warnings written by a real run but missing from docs/results.md");
    let mut written = metrics_and_warnings;
    for csv in ["instances.csv", "requests.csv", "native_states.csv"] {
        written.extend(header(&out.join(csv)));
    }
    for key in r.as_object().unwrap().keys() {
        written.insert(key.clone());
    }
    assert!(written.contains("pause_latency") && written.contains("kill_latency"), "{written:?}");
    let undocumented = missing(written.iter().map(String::as_str), |n| documented(&docs, n));
    assert_eq!(undocumented, Vec::<String>::new(), "names written by a real run but missing from docs/results.md");
}
