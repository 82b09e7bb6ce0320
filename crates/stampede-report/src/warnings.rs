//! Warnings that tell the user what to do, derived from a finished run.
//!
//! [`run_warnings`] is a pure function of the results, the instance records and a CPU reading;
//! it is the one place a finished run's warnings are raised (kinds: `WarningKind` in the
//! core): the driver calls it once before writing `results.json`, and the summary and report show
//! whatever ends up in `results.warnings`. The only I/O here is [`CpuUsage::of_this_process`]
//! (and [`mark_run_start`]), which read `/proc` so the driver does not have to.

use std::sync::OnceLock;

use stampede_core::measure::InstanceRecord;
use stampede_core::results::{Results, Warning, WarningKind};

/// Requests or instances failing above this fraction make the numbers describe failures.
pub const FAILURE_RATE_THRESHOLD: f64 = 0.01;
/// CPU busy fraction above which the load generator, not the runtime, may set the pace.
pub const CPU_SATURATED: f64 = 0.9;
/// p99 needs ~100 samples (p99.9 ~1000) to be more than "the maximum".
pub const MIN_SAMPLES_P99: u64 = 100;
pub const MIN_SAMPLES_P999: u64 = 1000;
/// Docker's own start time further than this from ours means the clocks disagree.
pub const RUNTIME_SKEW_LIMIT_US: u64 = 1_000_000;

/// How busy the driver (and the machine) was over the run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CpuUsage {
    /// User + system CPU time of the driver process.
    pub driver_cpu_us: u64,
    /// Wall time those were spent in.
    pub wall_us: u64,
    /// Fraction (0..1) of all cores busy since [`mark_run_start`], if it was called.
    pub machine_busy: Option<f64>,
}

/// Kernel ticks per second of `/proc` CPU times. USER_HZ is part of the kernel ABI and is 100
/// on every architecture Linux exposes it on; reading it via sysconf would need unsafe FFI.
const USER_HZ: u64 = 100;

static MACHINE_AT_START: OnceLock<(u64, u64)> = OnceLock::new();

/// (busy, total) jiffies over all cores, from the first line of `/proc/stat`.
fn machine_jiffies() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let v: Vec<u64> = stat.lines().next()?.split_whitespace().skip(1).filter_map(|x| x.parse().ok()).collect();
    let total: u64 = v.iter().take(8).sum(); // user nice system idle iowait irq softirq steal
    let idle = v.get(3)? + v.get(4).unwrap_or(&0);
    Some((total - idle, total))
}

/// Take the machine-wide CPU reading the run is measured against. Call once when the run
/// starts; without it only the driver's own CPU is checked.
pub fn mark_run_start() {
    if let Some(j) = machine_jiffies() {
        let _ = MACHINE_AT_START.set(j);
    }
}

impl CpuUsage {
    /// The driver process's CPU since it started (`/proc/self/stat`), and the machine's since
    /// [`mark_run_start`]. None where `/proc` is unavailable.
    pub fn of_this_process() -> Option<CpuUsage> {
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        // Fields after the parenthesised command (which may contain spaces): state is field 3.
        let rest: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
        let field = |n: usize| rest.get(n - 3).and_then(|x| x.parse::<u64>().ok());
        let (utime, stime, starttime) = (field(14)?, field(15)?, field(22)?);
        let uptime_s: f64 = std::fs::read_to_string("/proc/uptime").ok()?.split_whitespace().next()?.parse().ok()?;
        let wall_us = ((uptime_s - starttime as f64 / USER_HZ as f64) * 1e6).max(1.0) as u64;
        let machine_busy = MACHINE_AT_START.get().and_then(|(b0, t0)| {
            let (b1, t1) = machine_jiffies()?;
            (t1 > *t0).then(|| (b1 - b0) as f64 / (t1 - t0) as f64)
        });
        Some(CpuUsage { driver_cpu_us: (utime + stime) * 1_000_000 / USER_HZ, wall_us, machine_busy })
    }
}

fn w(kind: WarningKind, message: String) -> Warning {
    Warning::new(kind, message)
}

/// Every warning about a finished run (`timed_out`: it hit its whole-run timeout).
pub fn run_warnings(r: &Results, instances: &[InstanceRecord], cpu: Option<CpuUsage>, timed_out: bool) -> Vec<Warning> {
    let mut out = Vec::new();
    let a = r.accounting;
    for why in a.imbalances() {
        out.push(w(WarningKind::AccountingImbalance, format!("accounting does not balance: {why} (a bug: please report it with results.json)")));
    }
    if a.instances_failed > 0 {
        out.push(w(
            WarningKind::InstancesFailed,
            format!("{} instance(s) failed: the `error` column of instances.csv says why", a.instances_failed),
        ));
    }
    if a.connections_refused > 0 {
        out.push(w(
            WarningKind::ConnectionsRefused,
            format!("{} connection(s) without the run token were refused: something else is dialling the driver's port", a.connections_refused),
        ));
    }
    if timed_out {
        out.push(w(
            WarningKind::RunTimeout,
            format!(
                "the run hit its timeout of {} and was stopped: raise `timeout` in the scenario file",
                crate::summary::fmt_us(u64::try_from(r.scenario.run_timeout.as_micros()).unwrap_or(u64::MAX))
            ),
        ));
    }
    let sa: u64 = r.scenario.groups.iter().map(|g| u64::from(g.scenarios) * u64::from(g.actions)).sum();

    if let Some(c) = cpu {
        // Short runs are dominated by process start-up: only judge runs of a second or more.
        let cores = c.driver_cpu_us as f64 / c.wall_us.max(1) as f64;
        if c.wall_us >= 1_000_000 && cores > CPU_SATURATED {
            out.push(w(
                WarningKind::DriverCpuSaturated,
                format!(
                    "the driver used {:.0}% of a CPU core over the run: the numbers may measure the load generator rather than the runtime; \
lower S·A (now {sa}) or the request rate, or run the driver on its own machine",
                    cores * 100.0
                ),
            ));
        }
        if let Some(m) = c.machine_busy.filter(|m| *m > CPU_SATURATED && c.wall_us >= 1_000_000) {
            out.push(w(
                WarningKind::MachineCpuSaturated,
                format!(
                    "the machine's {} CPUs were {:.0}% busy over the run: starts and requests queued for CPU, so the numbers measure \
the load generator and the machine as much as the runtime; lower S·A (now {sa}), use sleep instead of spin work, or spread the run over machines",
                    r.environment.cpus,
                    m * 100.0
                ),
            ));
        }
    }

    let a = &r.accounting;
    let bad_requests = a.requests_failed + a.requests_timed_out;
    if a.requests_sent > 0 && bad_requests as f64 / a.requests_sent as f64 > FAILURE_RATE_THRESHOLD {
        out.push(w(
            WarningKind::FailureRate,
            format!(
                "{bad_requests} of {} requests ({:.1}%) failed or timed out: latency percentiles only describe the ones that succeeded; \
see the `error` column of requests.csv (run with --raw) and lower the load or raise `timeouts.request`",
                a.requests_sent,
                100.0 * bad_requests as f64 / a.requests_sent as f64
            ),
        ));
    }
    if a.instances_requested > 0 && a.instances_failed as f64 / a.instances_requested as f64 > FAILURE_RATE_THRESHOLD {
        out.push(w(
            WarningKind::FailureRate,
            format!(
                "{} of {} instances ({:.1}%) failed: start latency only describes the ones that started; the `error` column of \
instances.csv says why (often a start timeout or a resource limit: lower S·A or start concurrency)",
                a.instances_failed,
                a.instances_requested,
                100.0 * a.instances_failed as f64 / a.instances_requested as f64
            ),
        ));
    }

    // Percentiles shown (summary: p99; report: p99 and p99.9) from too few samples. Name the
    // thinnest few, not every metric: the advice is the same for all of them.
    let few = |need: u64| -> Vec<(u64, &str)> {
        let mut v: Vec<(u64, &str)> =
            r.metrics.iter().filter(|(_, s)| s.count > 0 && s.count < need).map(|(n, s)| (s.count, n.as_str())).collect();
        v.sort();
        v
    };
    let name_few = |v: &[(u64, &str)]| -> String {
        let shown: Vec<String> = v.iter().take(3).map(|(c, n)| format!("{n} ({c})")).collect();
        match v.len() {
            n if n > 3 => format!("{} and {} more", shown.join(", "), n - 3),
            _ => shown.join(", "),
        }
    };
    let (p99, p999) = (few(MIN_SAMPLES_P99), few(MIN_SAMPLES_P999));
    if !p99.is_empty() {
        out.push(w(
            WarningKind::FewSamples,
            format!(
                "p99 rests on fewer than {MIN_SAMPLES_P99} samples for {}: read it as the maximum; raise S·A (starts) or N (requests) for a stable tail",
                name_few(&p99)
            ),
        ));
    }
    let only_p999: Vec<(u64, &str)> = p999.into_iter().filter(|m| !p99.contains(m)).collect();
    if !only_p999.is_empty() {
        out.push(w(
            WarningKind::FewSamples,
            format!(
                "p99.9 rests on fewer than {MIN_SAMPLES_P999} samples for {}: read it as the maximum; raise S·A or N for a stable p99.9",
                name_few(&only_p999)
            ),
        ));
    }

    // A process cannot start before it was asked for: an entry well before `requested` means
    // the child's clock disagrees with ours.
    let early = instances.iter().filter(|r| r.process_entry_us.zip(r.requested_us).is_some_and(|(e, q)| e < q - 1_000_000)).count();
    if early > 0 {
        out.push(w(
            WarningKind::ClockSkew,
            format!("{early} instance(s) report process entry more than 1 s before they were requested: their clocks disagree with the driver's; sync clocks (chrony) before trusting boot phases"),
        ));
    }
    // Two clocks that saw the same moment, the process starting: the child's own (process
    // entry) and the runtime's (Docker State.StartedAt). Far apart means the clocks disagree.
    // (Our `started` is no such moment: Swarm has no start call, and Docker's returns late.)
    let skews: Vec<u64> = instances
        .iter()
        .filter_map(|i| Some(i.runtime_started_us?.abs_diff(i.process_entry_us?)))
        .filter(|d| *d > RUNTIME_SKEW_LIMIT_US)
        .collect();
    if !skews.is_empty() {
        out.push(w(
            WarningKind::ClockSkew,
            format!(
                "{} instance(s) report a process start more than 1 s away from the runtime's record of it (up to {}): the runtime's clock \
(daemon or VM) disagrees with the instance's; sync clocks (chrony) before comparing runtime-native phases",
                skews.len(),
                crate::summary::fmt_us(*skews.iter().max().unwrap_or(&0))
            ),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_has_a_cpu_reading() {
        mark_run_start();
        // Let some jiffies pass, so the machine reading has an interval to measure.
        let t = std::time::Instant::now();
        while t.elapsed() < std::time::Duration::from_millis(100) {
            std::hint::black_box(0u64);
        }
        let c = CpuUsage::of_this_process().expect("/proc is mounted in tests");
        assert!(c.wall_us > 0);
        assert!(c.machine_busy.is_some());
    }
}
