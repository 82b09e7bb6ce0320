//! The host preflight: before anything starts, what the run needs against what this machine
//! allows, and which limit would break, with the setting to change.
//!
//! [`Needs::of`] is a pure function of the scenario and the runtimes' capabilities;
//! [`HostLimits::read`] is the only I/O (`/proc`, `getrlimit`); [`check`] compares them. The
//! limits of a platform itself (one bridge holds 1023 containers) are the parser's business,
//! through each runtime's `check_shape`.

use stampede_core::scenario::{Capabilities, GroupsMode, RuntimeCatalog, Scenario};

/// What a run needs from the host at its peak.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Needs {
    /// Instances (scenarios and actions) that may be alive at once.
    pub instances: u64,
    /// Threads those instances run (each takes a pid).
    pub threads: u64,
    pub memory_kib: u64,
    /// Open files of the driver: a connection and a child handle per scenario, plus its own.
    pub driver_files: u64,
    /// Open files of the busiest scenario: a connection and a child handle per action.
    pub scenario_files: u64,
}

/// Files a tier needs besides its connections: listeners, logs, the runtime client, libraries.
const BASE_FILES: u64 = 64;

impl Needs {
    /// Peak needs: every instance of a group alive at once (true under `hold = "all_ready"`,
    /// and nearly so for keep-warm actions, which all start together); groups in sequence
    /// peak one at a time, parallel groups together.
    pub fn of(scenario: &Scenario, catalog: &dyn RuntimeCatalog) -> Needs {
        let per_group: Vec<Needs> = scenario
            .groups
            .iter()
            .map(|g| {
                let caps = |name: &str| catalog.find(name).map(|r| r.capabilities());
                let (s, a) = (u64::from(g.scenarios), u64::from(g.actions));
                let (sc, ac) = (caps(&g.runtime), caps(g.effective_action_runtime()));
                let thr = |c: &Option<Capabilities>| c.as_ref().map_or(1, |c| u64::from(c.threads_per_instance));
                let mem = |c: &Option<Capabilities>| c.as_ref().map_or(0, |c| c.memory_per_instance_kib);
                Needs {
                    instances: s + s * a,
                    threads: s * thr(&sc) + s * a * thr(&ac),
                    memory_kib: s * mem(&sc) + s * a * mem(&ac),
                    driver_files: 2 * s,
                    scenario_files: 2 * a,
                }
            })
            .collect();
        let mut total = Needs::default();
        for n in per_group {
            match scenario.groups_mode {
                GroupsMode::Parallel => {
                    total.instances += n.instances;
                    total.threads += n.threads;
                    total.memory_kib += n.memory_kib;
                    total.driver_files += n.driver_files;
                }
                GroupsMode::Sequence => {
                    total.instances = total.instances.max(n.instances);
                    total.threads = total.threads.max(n.threads);
                    total.memory_kib = total.memory_kib.max(n.memory_kib);
                    total.driver_files = total.driver_files.max(n.driver_files);
                }
            }
            total.scenario_files = total.scenario_files.max(n.scenario_files);
        }
        total.driver_files += BASE_FILES;
        total.scenario_files += BASE_FILES;
        total
    }
}

/// This host's limits, as read at the start of the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostLimits {
    pub pid_max: u64,
    pub threads_max: u64,
    /// Threads already running on the host (all processes).
    pub threads_in_use: u64,
    /// The open-file limit this process (and the children it starts) has, after raising the
    /// soft limit to the hard one.
    pub open_files: u64,
    pub mem_available_kib: u64,
}

impl HostLimits {
    /// Read `/proc`; a value that cannot be read is taken as unlimited (the check then says
    /// nothing rather than something wrong).
    pub fn read() -> HostLimits {
        let num = |path: &str| std::fs::read_to_string(path).ok().and_then(|s| s.trim().parse::<u64>().ok()).unwrap_or(u64::MAX);
        // /proc/loadavg's fourth field is running/total scheduling entities (threads).
        let threads_in_use = std::fs::read_to_string("/proc/loadavg")
            .ok()
            .and_then(|s| s.split_whitespace().nth(3).and_then(|f| f.split('/').nth(1)).and_then(|t| t.parse().ok()))
            .unwrap_or(0);
        let mem_available_kib = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|m| {
                m.lines()
                    .find_map(|l| l.strip_prefix("MemAvailable:"))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            })
            .unwrap_or(u64::MAX);
        HostLimits {
            pid_max: num("/proc/sys/kernel/pid_max"),
            threads_max: num("/proc/sys/kernel/threads-max"),
            threads_in_use,
            open_files: rlimit::getrlimit(rlimit::Resource::NOFILE).map(|(soft, _)| soft).unwrap_or(u64::MAX),
            mem_available_kib,
        }
    }
}

/// Raise the soft open-file limit to the hard one: a parent holds a connection per child, and
/// the default soft limit (1024) is far below what thousands of children need. Every role calls
/// this at start; children inherit it.
pub fn raise_open_files() {
    if let Err(e) = rlimit::increase_nofile_limit(u64::MAX) {
        tracing::debug!("cannot raise the open-file limit: {e}");
    }
}

/// A limit the run would break.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub limit: &'static str,
    pub need: u64,
    pub have: u64,
    /// What to change, as a command or setting.
    pub fix: String,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: the run needs {}, this host allows {}; {}", self.limit, self.need, self.have, self.fix)
    }
}

/// Every limit `needs` would break on `host`.
pub fn check(needs: &Needs, host: &HostLimits) -> Vec<Finding> {
    let threads = host.threads_in_use.saturating_add(needs.threads);
    // Some headroom for what else starts meanwhile; a pid limit is hit as a failed fork.
    let want = threads.saturating_add(threads / 4);
    let files = needs.driver_files.max(needs.scenario_files);
    let limits = [
        Finding {
            limit: "kernel.pid_max",
            need: threads,
            have: host.pid_max,
            fix: format!("raise it: sysctl -w kernel.pid_max={}", want.min(4_194_304)),
        },
        Finding {
            limit: "kernel.threads-max",
            need: threads,
            have: host.threads_max,
            fix: format!("raise it: sysctl -w kernel.threads-max={want}"),
        },
        Finding {
            limit: "open files (RLIMIT_NOFILE)",
            need: files,
            have: host.open_files,
            fix: format!("raise the hard limit: ulimit -Hn {files} (or LimitNOFILE= for a service), then run again"),
        },
        Finding {
            limit: "memory (MemAvailable, KiB)",
            need: needs.memory_kib,
            have: host.mem_available_kib,
            fix: "use fewer instances at once (S, A, or groups in sequence) or a larger host".to_owned(),
        },
    ];
    limits.into_iter().filter(|f| f.need > f.have).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host() -> HostLimits {
        HostLimits { pid_max: 32_768, threads_max: 190_000, threads_in_use: 300, open_files: 524_288, mem_available_kib: 24 << 20 }
    }

    #[test]
    fn a_run_within_the_limits_has_no_findings() {
        let n = Needs { instances: 1004, threads: 12_048, memory_kib: 1004 * 4096, driver_files: 72, scenario_files: 564 };
        assert_eq!(check(&n, &host()), vec![]);
    }

    #[test]
    fn pid_max_and_files_name_the_setting_to_change() {
        // 2,504 containers of 12 threads each, beside 300 running: over the default pid_max.
        let n = Needs { instances: 2504, threads: 30_048, memory_kib: 0, driver_files: 72, scenario_files: 600_000 };
        let f = check(&n, &HostLimits { threads_in_use: 3_000, ..host() });
        assert_eq!(f.iter().map(|f| f.limit).collect::<Vec<_>>(), ["kernel.pid_max", "open files (RLIMIT_NOFILE)"]);
        assert_eq!((f[0].need, f[0].have), (33_048, 32_768));
        assert!(f[0].fix.starts_with("raise it: sysctl -w kernel.pid_max="), "{}", f[0].fix);
    }
}
