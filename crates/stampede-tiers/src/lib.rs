//! The three roles one `stampede` binary plays.
//!
//! - [`driver`]: reads the validated scenario, launches S scenario instances per group through a
//!   runtime, collects their reports, merges histograms, writes results.
//! - [`scenario`]: given its assignment by the driver, launches A actions, sends each its
//!   requests, applies pause/kill steps, reports measurements up.
//! - [`action`]: the function under test: says ready, then sleeps or spins per request and
//!   echoes the payload.
//!
//! Shared plumbing: [`server`] (the token-checked websocket server every parent runs and the
//! routing of arriving children to the task that launched them), [`launch`] (launch a child and
//! wait for it to connect and say ready, with timestamps and timeouts), [`runtimes`] (start
//! concurrency and the runtime's own states as `native_phase_*`; no runtime is named here — the
//! binary hands the tiers a registry), [`identity`] (who this process is), [`limits`] (the message-size cap of every link), [`live`] (the run's
//! counters and histograms for the live metrics endpoint), [`trim`] (a ready action giving back
//! the binary's start-up pages).

pub mod action;
pub mod driver;
pub mod hold;
mod link;
pub mod preflight;
pub mod identity;
pub mod launch;
pub mod limits;
pub mod live;
pub mod rate;
pub mod runtimes;
pub mod scenario;
pub mod server;
pub mod trim;

/// Exit codes of `stampede run` (DESIGN §4).
pub mod exit {
    /// All requested work done, accounting balanced, nothing failed.
    pub const OK: i32 = 0;
    /// The run finished but something failed (counted in `accounting`).
    pub const FAILED: i32 = 1;
    /// Invalid input (scenario file, flags).
    pub const INVALID_INPUT: i32 = 2;
    /// The runtime could not be used (daemon unreachable, image missing, …).
    pub const RUNTIME_UNAVAILABLE: i32 = 3;
    /// Interrupted (results still written, everything still cleaned up).
    pub const INTERRUPTED: i32 = 130;
}
