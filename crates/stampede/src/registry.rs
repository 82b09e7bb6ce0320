//! The one list of runtimes this binary offers. Adding a runtime is one line here (and its
//! crate in Cargo.toml); nothing else in the workspace names a platform.

use stampede_runtime::process::ProcessProvider;
use stampede_runtime::Registry;

/// Every runtime, in the order `stampede runtimes` lists them. `exe` is the binary the process
/// runtime starts (this one).
pub fn registry(exe: std::path::PathBuf) -> Registry {
    Registry::new()
        .with(ProcessProvider::new(exe))
        .with(stampede_docker::DockerProvider)
        .with(stampede_docker::SwarmProvider)
        .with(stampede_kubernetes::KubernetesProvider)
        .with(stampede_mesos::MesosProvider)
}

/// The registry of this very binary.
pub fn this_binary() -> anyhow::Result<Registry> {
    use anyhow::Context as _;
    Ok(registry(std::env::current_exe().context("cannot find the stampede binary itself")?))
}
