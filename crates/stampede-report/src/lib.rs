//! What stampede writes and shows. Reporters are pure functions of plain data
//! ([`Results`](stampede_core::results::Results), instance and request records); nothing here measures or talks to a runtime.
//!
//! - [`files`]: `results.json`, `instances.csv`, `requests.csv` — the stable contracts.
//! - [`summary`]: the terminal summary a person takes in at a glance.
//! - [`html`]: `report.html`, one self-contained page per results folder; [`plot`] draws its
//!   charts (plotters, SVG).
//! - [`compare`]: several folders side by side (terminal table and `compare.html`).
//! - [`sweep`]: a sweep's `sweep.json`, `sweep.csv` and `sweep.html` (curves over the swept axis).
//! - [`warnings`]: what the user should do about a run (CPU saturation, failures, clock skew,
//!   thin percentiles), computed once and stored in `results.warnings`.

pub mod compare;
pub mod files;
pub mod html;
pub mod plot;
pub mod summary;
pub mod sweep;
pub mod warnings;

pub use compare::{compare_text, render_compare_html, write_compare_html, ComparedRun};
pub use files::{
    load_instances, load_native_states, load_results, write_instances_csv, write_native_states_csv, write_requests_csv,
    write_results_json, overwrite_results_json, ReportError,
};
pub use html::{render_report_html, write_report_html};
pub use summary::summary_text;
pub use warnings::run_warnings;

/// File names inside a results folder.
pub mod names {
    pub const RESULTS_JSON: &str = "results.json";
    pub const INSTANCES_CSV: &str = "instances.csv";
    pub const REQUESTS_CSV: &str = "requests.csv";
    pub const NATIVE_STATES_CSV: &str = "native_states.csv";
    pub const REPORT_HTML: &str = "report.html";
}
