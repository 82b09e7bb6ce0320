//! Errors of this crate, named after the Engine API operation that failed and carrying the
//! container, network or image they were about, so a user can find it with `docker ps -a`.
//!
//! [`DockerError`] converts into the runtime-neutral `RuntimeError` the tiers see: which
//! variant it becomes decides the exit code (`Unavailable` = 3) and how the failure is counted.

use std::path::PathBuf;

use bollard::errors::Error as BollardError;
use stampede_runtime::RuntimeError;

#[derive(Debug, thiserror::Error)]
pub enum DockerError {
    #[error("cannot reach the Docker daemon at {socket}: {source}; is the Docker daemon running, and may this user use its socket (group `docker`)?")]
    Connect { socket: String, source: BollardError },
    #[error("creating container {name} failed: {source}")]
    CreateContainer { name: String, source: BollardError },
    #[error("starting container {name} failed: {source}")]
    StartContainer { name: String, source: BollardError },
    #[error("inspecting container {id} failed: {source}")]
    InspectContainer { id: String, source: BollardError },
    #[error("pausing container {id} failed: {source}")]
    PauseContainer { id: String, source: BollardError },
    #[error("unpausing container {id} failed: {source}")]
    UnpauseContainer { id: String, source: BollardError },
    #[error("killing container {id} failed: {source}")]
    KillContainer { id: String, source: BollardError },
    #[error("removing container {id} failed: {source}")]
    RemoveContainer { id: String, source: BollardError },
    #[error("listing containers labelled {filter} failed: {source}")]
    ListContainers { filter: String, source: BollardError },
    #[error("creating network {name} failed: {source}")]
    CreateNetwork { name: String, source: BollardError },
    #[error("inspecting network {name} failed: {source}")]
    InspectNetwork { name: String, source: BollardError },
    #[error("removing network {name} failed: {source}")]
    RemoveNetwork { name: String, source: BollardError },
    #[error("listing networks labelled {filter} failed: {source}")]
    ListNetworks { filter: String, source: BollardError },
    #[error("inspecting image {image} failed: {source}")]
    InspectImage { image: String, source: BollardError },
    #[error("creating service {name} failed: {source}")]
    CreateService { name: String, source: BollardError },
    #[error("listing the tasks of service {service} failed: {source}")]
    ListTasks { service: String, source: BollardError },
    #[error("service {service}: its task ended as `{state}` before running: {message}")]
    TaskEnded { service: String, state: String, message: String },
    #[error("service {service} has no task with a container yet")]
    NoTaskContainer { service: String },
    #[error("removing service {id} failed: {source}")]
    RemoveService { id: String, source: BollardError },
    #[error("listing services labelled {filter} failed: {source}")]
    ListServices { filter: String, source: BollardError },
    #[error("network {name} has no IPv4 gateway in its IPAM config")]
    NoGateway { name: String },
    #[error("{0}")]
    Unreachable(String),
}

impl DockerError {
    fn unavailable(self) -> RuntimeError {
        RuntimeError::Unavailable { runtime: crate::DOCKER.to_owned(), source: Box::new(self) }
    }

    /// As the error of launching `instance`.
    pub fn into_launch(self, instance: &str) -> RuntimeError {
        match self {
            e @ DockerError::Connect { .. } => e.unavailable(),
            e => RuntimeError::Launch { instance: instance.to_owned(), source: Box::new(e) },
        }
    }

    /// As the error of controlling `id` (`op` = pause, resume, kill, remove, …).
    pub fn into_control(self, op: &'static str, id: &str) -> RuntimeError {
        match self {
            e @ DockerError::Connect { .. } => e.unavailable(),
            e => RuntimeError::Control { op, id: id.to_owned(), source: Box::new(e) },
        }
    }

    /// As the error of cleaning up `run_id` (`*` = every run).
    pub fn into_cleanup(self, run_id: &str) -> RuntimeError {
        RuntimeError::Cleanup { run_id: run_id.to_owned(), source: Box::new(self) }
    }
}

impl From<DockerError> for RuntimeError {
    /// Errors without an instance to name (connect, callback host) make the runtime unusable.
    fn from(e: DockerError) -> Self {
        e.unavailable()
    }
}

/// The HTTP status of an Engine API error answer, if it was one.
pub(crate) fn status_of(e: &BollardError) -> Option<u16> {
    match e {
        BollardError::DockerResponseServerError { status_code, .. } => Some(*status_code),
        _ => None,
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("reading the stampede binary {path} failed: {source}")]
    ReadBinary { path: PathBuf, source: std::io::Error },
    #[error("{path} is not a statically linked x86-64 ELF executable, and a `FROM scratch` image has no dynamic loader to run it; build the static binary with:\n    {command}")]
    NotStatic { path: PathBuf, command: &'static str },
    #[error("no statically linked stampede binary found (this executable is dynamically linked and {candidate} does not exist); build it with:\n    {command}")]
    NoStaticBinary { candidate: PathBuf, command: &'static str },
    #[error("building image {tag} failed: {reason}")]
    Build { tag: String, reason: String },
    #[error("inspecting the freshly built image {tag} failed: {source}")]
    InspectImage { tag: String, source: BollardError },
    #[error("copying image {tag} to {to} failed: {reason}")]
    Copy { tag: String, to: String, reason: String },
}
