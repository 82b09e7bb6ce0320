//! Who this process is: the identity every child sends in its `hello`.

use std::sync::OnceLock;

use stampede_core::measure::{wall_us, Role};
use stampede_protocol::Identity;

static PROCESS_ENTRY_UNIX_US: OnceLock<i64> = OnceLock::new();

/// Call first thing in `main`: the child's own clock at process entry is part of the boot phase.
pub fn mark_process_entry() {
    let _ = PROCESS_ENTRY_UNIX_US.set(wall_us());
}

pub fn process_entry_unix_us() -> i64 {
    *PROCESS_ENTRY_UNIX_US.get_or_init(wall_us)
}

pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "unknown".into())
}

pub fn boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "unknown".into())
}

pub fn identity(instance_id: &str, role: Role, clock_anchor_unix_us: i64, served_before: bool) -> Identity {
    Identity {
        instance_id: instance_id.to_owned(),
        role,
        hostname: hostname(),
        boot_id: boot_id(),
        pid: std::process::id(),
        process_entry_unix_us: process_entry_unix_us(),
        clock_anchor_unix_us,
        served_before,
    }
}

/// Read a required environment variable of the child protocol.
pub fn required_env(name: &str) -> Result<String, String> {
    std::env::var(name).map_err(|_| {
        format!("{name} is not set: this subcommand is started by a stampede parent, not by hand (see `stampede run --help`)")
    })
}
