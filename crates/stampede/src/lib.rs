//! The `stampede` package's library side: the one list of runtimes ([`registry`]), shared by
//! the binary and by the tests that need the real catalog (scenario files name runtimes).

pub mod registry;
