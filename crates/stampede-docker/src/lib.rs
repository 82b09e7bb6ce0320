//! The `docker` runtime and the image builder: Docker Engine API over the unix socket (bollard).
//!
//! What lives where:
//!
//! - [`runtime`]: [`DockerRuntime`], the `stampede_runtime::Runtime` implementation —
//!   launch (create + start, timed separately), pause/resume (cgroup freezer), kill, remove,
//!   per-scenario networks, label-based cleanup of a run.
//! - [`callback`]: where a child must dial to reach a server in *this* process, which depends on
//!   whether this process runs on the host, in a host-networked container or in a bridged one.
//! - [`names`]: container and network names derived from a launch spec (pure functions).
//! - [`image`]: [`build_image`] (a `FROM scratch` image holding only the static `stampede`
//!   binary, built through the API from an in-memory context) and [`default_binary`].
//! - [`swarm`]: [`SwarmRuntime`], the `swarm` runtime — one service per instance on the local
//!   swarm, image by ID, task-state timestamps, pause/resume/kill on the task's container.
//! - [`error`]: [`DockerError`] (one variant per Engine API operation) and [`ImageError`].
//!
//! The API version is negotiated on connect, so the same code drives Docker 20.10 (API 1.41)
//! and current engines.

pub mod callback;
pub mod error;
pub mod image;
pub mod names;
pub mod runtime;
pub mod swarm;

pub use error::{DockerError, ImageError};
pub use image::{build_filler_image, build_image, default_binary, is_static_elf, STATIC_BUILD_COMMAND};
pub use runtime::DockerRuntime;
pub use swarm::SwarmRuntime;
