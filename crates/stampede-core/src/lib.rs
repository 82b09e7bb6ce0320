//! stampede's I/O-free core.
//!
//! What lives where:
//! - [`scenario`]: the scenario file format (TOML), its validation with file/line/field errors,
//!   CLI overrides, and the validated model the tiers run ([`scenario::model`]).
//! - [`schedule`]: seeded, reproducible draws of arrival times and work durations.
//! - [`measure`]: per-instance and per-request measurement records, named as in DESIGN §4.
//! - [`stats`]: HdrHistogram-backed metrics, merged up the tiers, and their summaries.
//! - [`results`]: the `results.json` schema (versioned) and the accounting that must balance.
//!
//! Nothing here does I/O beyond reading a scenario file, and nothing needs tokio.

pub mod scenario;
pub mod schedule;
pub mod measure;
pub mod stats;
pub mod results;
