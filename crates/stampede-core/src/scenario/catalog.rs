//! What the scenario parser may know about runtimes: their names, what each can do, and how
//! each reads its own option table — without knowing any runtime.
//!
//! The binary builds the list (its registry); each runtime crate implements [`RuntimeInfo`]
//! for itself. The parser asks the catalog whether a name exists, hands a runtime its
//! `<name> = { … }` table through an [`OptionsTable`] (so its errors carry file, line and
//! field like every other), and refuses a scenario that asks a runtime for something its
//! [`Capabilities`] lack — before anything is started.

use super::OptionsTable;

/// What a runtime can do. Checked against the scenario before any runtime call.
#[derive(Debug, Clone, PartialEq)]
pub struct Capabilities {
    /// Freeze and thaw one instance (pause steps, `pause_between_bursts`).
    pub pause_resume: bool,
    /// Kill one instance on request (kill steps).
    pub kill: bool,
    /// Instances run an image (the group's `image` means something).
    pub image: bool,
    /// Can build and run a filler-padded image (`image_filler_mb`).
    pub image_filler: bool,
    /// Launches in flight per launching tier when the group does not say (`start_concurrency`).
    pub default_start_concurrency: u32,
    /// Launches in flight at the platform for the whole run, when the group does not say: S
    /// scenarios launching at once share it, so the platform's load does not grow with S.
    pub run_start_concurrency: u32,
    /// The platform's own state names this runtime reports per instance, in order; each
    /// becomes a `native_phase_<state>` metric.
    pub native_states: &'static [&'static str],
    /// What one running instance costs this host, for the host preflight: threads (each takes
    /// a pid, so `kernel.pid_max` counts them) and resident memory.
    pub threads_per_instance: u32,
    pub memory_per_instance_kib: u64,
}

/// One runtime as the parser sees it. Implemented by each runtime crate.
pub trait RuntimeInfo: Send + Sync {
    /// The name scenario files and `--runtime` use.
    fn name(&self) -> &'static str;
    fn capabilities(&self) -> Capabilities;
    /// What the runtime can do with these options (validated JSON from `read_options`): some
    /// options give up a capability (Swarm actions spread over nodes cannot be paused).
    fn capabilities_for(&self, _options: &serde_json::Value) -> Capabilities {
        self.capabilities()
    }
    /// Why `capabilities_for(options)` lacks something `capabilities()` has, and what to
    /// change: the second half of the refusal.
    fn limited_because(&self, _options: &serde_json::Value) -> Option<String> {
        None
    }
    /// Read and validate this runtime's option table; returns the options with defaults
    /// filled in, as JSON (the runtime deserialises them again when it connects). Problems go
    /// to `table`, which knows their lines.
    fn read_options(&self, table: &mut OptionsTable<'_>) -> serde_json::Value;
    /// The options when the file has no table for this runtime.
    fn default_options(&self) -> serde_json::Value;
    /// Limits of the platform itself that `scenarios` parents with `actions` children each would
    /// break with these options (one Linux bridge holds 1023 containers, …): each a sentence
    /// naming the limit and what to change. Checked by the parser, before anything starts.
    fn check_shape(&self, _options: &serde_json::Value, _scenarios: u32, _actions: u32) -> Vec<String> {
        Vec::new()
    }
}

/// The runtimes a binary offers.
pub trait RuntimeCatalog: Sync {
    fn find(&self, name: &str) -> Option<&dyn RuntimeInfo>;
    /// Every name, in the order to list them in messages.
    fn names(&self) -> Vec<&'static str>;
}

/// A catalog without runtimes, for tests of the core that need a scenario but no runtime
/// (the default runtime then goes unchecked and without options).
pub struct NoRuntimes;

impl RuntimeCatalog for NoRuntimes {
    fn find(&self, _name: &str) -> Option<&dyn RuntimeInfo> {
        None
    }
    fn names(&self) -> Vec<&'static str> {
        Vec::new()
    }
}
