//! The `stampede` package's library side: the one list of runtimes ([`registry`]), shared by
//! the binary and by the tests that need the real catalog (scenario files name runtimes); and
//! a sweep's plan ([`sweep_plan`]: axes, points, each point's scenario text).

pub mod registry;
pub mod sweep_plan;
