//! What stampede writes and shows. Reporters are pure functions of plain data
//! ([`Results`], instance and request records); nothing here measures or talks to a runtime.
//!
//! - [`files`]: `results.json`, `instances.csv`, `requests.csv` — the stable contracts.
//! - [`summary`]: the terminal summary a person takes in at a glance.

pub mod files;
pub mod summary;

pub use files::{load_results, write_instances_csv, write_requests_csv, write_results_json, ReportError};
pub use summary::summary_text;

use stampede_core::results::Results;

/// File names inside a results folder.
pub mod names {
    pub const RESULTS_JSON: &str = "results.json";
    pub const INSTANCES_CSV: &str = "instances.csv";
    pub const REQUESTS_CSV: &str = "requests.csv";
    pub const REPORT_HTML: &str = "report.html";
}

/// Re-export for callers that only hold this crate.
pub type RunResults = Results;
