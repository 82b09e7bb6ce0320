//! Errors of loading a scenario: where (file, line, field) and what is allowed.

use std::fmt;
use std::path::{Path, PathBuf};

/// One thing wrong with a scenario, pointing at the line and field to fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// 1-based line in the scenario file; `None` for CLI flags and defaults.
    pub line: Option<usize>,
    /// Where the value lives: `group[0].actions`, `group[1].steps[0].after_requests`, or for a
    /// CLI flag the flag itself (`--actions`). Groups and steps are counted from 0, like action
    /// indices.
    pub field: String,
    /// What is wrong and what is allowed.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.field.is_empty() {
            write!(f, "{}: ", self.field)?;
        }
        f.write_str(&self.message)
    }
}

/// Loading a scenario failed. An invalid scenario lists every problem found, earliest line
/// first, one per line of the `Display` output:
/// `scenarios/bad.toml:7: group[1].actions: must be at least 1, got 0`.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("{}: cannot read scenario file: {source}", file.display())]
    Read {
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}", render(file.as_deref(), problems))]
    Invalid { file: Option<PathBuf>, problems: Vec<Problem> },
}

impl ScenarioError {
    pub fn file(&self) -> Option<&Path> {
        match self {
            ScenarioError::Read { file, .. } => Some(file),
            ScenarioError::Invalid { file, .. } => file.as_deref(),
        }
    }

    /// Every problem found (empty when the file could not be read).
    pub fn problems(&self) -> &[Problem] {
        match self {
            ScenarioError::Read { .. } => &[],
            ScenarioError::Invalid { problems, .. } => problems,
        }
    }

    /// Line of the first problem.
    pub fn line(&self) -> Option<usize> {
        self.problems().first().and_then(|p| p.line)
    }

    /// Field of the first problem.
    pub fn field(&self) -> Option<&str> {
        self.problems().first().map(|p| p.field.as_str())
    }
}

fn render(file: Option<&Path>, problems: &[Problem]) -> String {
    let lines: Vec<String> = problems
        .iter()
        .map(|p| match (file, p.line) {
            (Some(file), Some(line)) => format!("{}:{line}: {p}", file.display()),
            (Some(file), None) => format!("{}: {p}", file.display()),
            (None, Some(line)) => format!("line {line}: {p}"),
            (None, None) => p.to_string(),
        })
        .collect();
    lines.join("\n")
}
