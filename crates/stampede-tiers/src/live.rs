//! Live metrics of a run, for the `--metrics-addr` endpoint: plain numbers per group, read at
//! scrape time. The driver feeds this where it already counts progress (a scenario launched,
//! ready, failed, its progress messages, its report); the binary turns a [`LiveSnapshot`]
//! into Prometheus text. Nothing here measures anything new.
//!
//! Counters are live at the granularity the driver sees: scenario launches as they happen,
//! action counts from each scenario's progress message (every 0.5 s), requests by outcome and
//! the start-latency and RTT histograms when a scenario reports (its actions' histograms are
//! merged there, exactly as for results.json). So once the run is over, every counter equals
//! its `accounting` field in results.json and every histogram's count its metric's count.

use std::collections::BTreeMap;
use std::sync::Mutex;

use stampede_core::measure::names;
use stampede_core::results::Accounting;
use stampede_core::stats::Metrics;
use stampede_protocol::Progress;

/// Upper bounds (seconds) of the exported latency histograms' buckets.
pub const LATENCY_BUCKETS_S: [f64; 16] =
    [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0];

#[derive(Debug, Default)]
pub struct LiveMetrics {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    run_id: String,
    finished: bool,
    groups: Vec<GroupLive>,
    /// Scenario instance id → (group, scenario), for progress messages, which carry the id.
    ids: std::collections::HashMap<String, (u32, u32)>,
}

#[derive(Debug, Default)]
struct GroupLive {
    name: String,
    runtime: String,
    scenarios: BTreeMap<u32, ScenarioLive>,
    /// The actions' histograms of every scenario that reported.
    metrics: Metrics,
}

#[derive(Debug, Clone, Copy)]
enum ScenarioLive {
    Launching,
    Working(Progress),
    Reported(Accounting),
    Failed,
}

/// One group's numbers at one instant.
#[derive(Debug, Clone, Default)]
pub struct GroupSnapshot {
    pub name: String,
    pub runtime: String,
    pub instances_requested: u64,
    pub instances_ready: u64,
    pub instances_failed: u64,
    pub launches_in_flight: u64,
    /// Requests answered so far (live, from progress messages and reports).
    pub requests_done: u64,
    /// By outcome (`ok`, `failed`, `timed_out`, `not_sent`), from the reports.
    pub requests: [(&'static str, u64); 4],
    pub start_latency: HistogramSnapshot,
    pub request_rtt: HistogramSnapshot,
}

/// A histogram in seconds: (upper bound, count in that bucket only); the last bound is
/// `f64::MAX` (+Inf).
#[derive(Debug, Clone, Default)]
pub struct HistogramSnapshot {
    pub sum_s: f64,
    pub count: u64,
    pub buckets: Vec<(f64, u64)>,
}

#[derive(Debug, Clone, Default)]
pub struct LiveSnapshot {
    pub run_id: String,
    pub finished: bool,
    pub groups: Vec<GroupSnapshot>,
}

impl LiveMetrics {
    fn with<T>(&self, f: impl FnOnce(&mut Inner) -> T) -> T {
        f(&mut self.inner.lock().expect("live metrics lock"))
    }

    pub(crate) fn start(&self, run_id: &str, groups: impl Iterator<Item = (String, String)>) {
        self.with(|i| {
            i.run_id = run_id.to_owned();
            i.groups = groups.map(|(name, runtime)| GroupLive { name, runtime, ..Default::default() }).collect();
        });
    }

    fn set(&self, g: u32, s: u32, state: ScenarioLive) {
        self.with(|i| {
            if let Some(group) = i.groups.get_mut(g as usize) {
                group.scenarios.insert(s, state);
            }
        });
    }

    pub(crate) fn scenario_requested(&self, g: u32, s: u32, instance_id: &str) {
        self.with(|i| i.ids.insert(instance_id.to_owned(), (g, s)));
        self.set(g, s, ScenarioLive::Launching);
    }
    pub(crate) fn scenario_ready(&self, g: u32, s: u32) {
        self.set(g, s, ScenarioLive::Working(Progress::default()));
    }
    pub(crate) fn scenario_failed(&self, g: u32, s: u32) {
        self.set(g, s, ScenarioLive::Failed);
    }
    pub(crate) fn progress(&self, instance_id: &str, p: Progress) {
        if let Some((g, s)) = self.with(|i| i.ids.get(instance_id).copied()) {
            self.set(g, s, ScenarioLive::Working(p));
        }
    }
    /// A scenario's report: its actions' accounting and histograms, as merged into results.
    pub(crate) fn reported(&self, g: u32, s: u32, accounting: Accounting, metrics: &Metrics) {
        self.with(|i| {
            if let Some(group) = i.groups.get_mut(g as usize) {
                group.scenarios.insert(s, ScenarioLive::Reported(accounting));
                let _ = group.metrics.merge(metrics);
            }
        });
    }
    /// The run wrote its results: the numbers are final.
    pub fn finish(&self) {
        self.with(|i| i.finished = true);
    }

    pub fn snapshot(&self) -> LiveSnapshot {
        self.with(|i| LiveSnapshot {
            run_id: i.run_id.clone(),
            finished: i.finished,
            groups: i.groups.iter().map(GroupLive::snapshot).collect(),
        })
    }
}

impl GroupLive {
    fn snapshot(&self) -> GroupSnapshot {
        let mut s = GroupSnapshot { name: self.name.clone(), runtime: self.runtime.clone(), ..Default::default() };
        let (mut ok, mut failed, mut timed_out, mut not_sent) = (0, 0, 0, 0);
        for state in self.scenarios.values() {
            // The scenario itself, counted as the driver's accounting counts it.
            s.instances_requested += 1;
            match *state {
                ScenarioLive::Launching => s.launches_in_flight += 1,
                ScenarioLive::Working(p) => {
                    s.instances_ready += 1;
                    s.instances_requested += p.actions_launched;
                    s.instances_ready += p.actions_ready;
                    s.instances_failed += p.actions_failed;
                    s.launches_in_flight += p.actions_launched.saturating_sub(p.actions_ready + p.actions_failed);
                    s.requests_done += p.requests_done;
                }
                ScenarioLive::Reported(a) => {
                    s.instances_ready += 1;
                    s.instances_requested += a.instances_requested;
                    s.instances_ready += a.instances_ready;
                    s.instances_failed += a.instances_failed;
                    s.requests_done += a.requests_sent;
                    ok += a.requests_ok;
                    failed += a.requests_failed;
                    timed_out += a.requests_timed_out;
                    not_sent += a.requests_not_sent;
                }
                ScenarioLive::Failed => s.instances_failed += 1,
            }
        }
        s.requests = [("ok", ok), ("failed", failed), ("timed_out", timed_out), ("not_sent", not_sent)];
        s.start_latency = histogram(&self.metrics, names::START_LATENCY);
        s.request_rtt = histogram(&self.metrics, names::REQUEST_RTT);
        s
    }
}

fn histogram(m: &Metrics, name: &str) -> HistogramSnapshot {
    let mut buckets: Vec<(f64, u64)> = LATENCY_BUCKETS_S.iter().map(|b| (*b, 0)).chain([(f64::MAX, 0)]).collect();
    let mut out = HistogramSnapshot::default();
    if let Some(h) = m.get(name) {
        for v in h.iter_recorded() {
            let (value_s, n) = (v.value_iterated_to() as f64 / 1e6, v.count_at_value());
            out.sum_s += value_s * n as f64;
            out.count += n;
            let i = buckets.iter().position(|b| value_s <= b.0).unwrap_or(buckets.len() - 1);
            buckets[i].1 += n;
        }
    }
    out.buckets = buckets;
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_become_the_reports_accounting() {
        let live = LiveMetrics::default();
        live.start("r1", [("g".to_owned(), "process".to_owned())].into_iter());
        live.scenario_requested(0, 0, "r1-g0-s0");
        live.scenario_requested(0, 1, "r1-g0-s1");
        let s = &live.snapshot().groups[0];
        assert_eq!((s.instances_requested, s.launches_in_flight), (2, 2));
        live.scenario_ready(0, 0);
        live.progress(
            "r1-g0-s0",
            Progress {
                actions_launched: 3,
                actions_ready: 1,
                actions_failed: 0,
                requests_done: 4,
                requests_planned: 30,
                requests_ok: 4,
            },
        );
        live.scenario_failed(0, 1);
        let s = &live.snapshot().groups[0];
        assert_eq!((s.instances_requested, s.instances_ready, s.instances_failed, s.launches_in_flight), (5, 2, 1, 2));
        let mut m = Metrics::new();
        m.record(names::START_LATENCY, 3_000);
        m.record(names::START_LATENCY, 2_000_000);
        let a = Accounting {
            instances_requested: 3,
            instances_ready: 3,
            requests_sent: 30,
            requests_ok: 30,
            requests_planned: 30,
            ..Default::default()
        };
        live.reported(0, 0, a, &m);
        let s = &live.snapshot().groups[0];
        assert_eq!((s.instances_requested, s.instances_ready, s.instances_failed, s.launches_in_flight), (5, 4, 1, 0));
        assert_eq!(s.requests[0], ("ok", 30));
        assert_eq!(s.start_latency.count, 2);
        let in_bucket = |le: f64| s.start_latency.buckets.iter().find(|b| b.0 == le).unwrap().1;
        assert_eq!((in_bucket(0.005), in_bucket(2.5)), (1, 1));
    }
}
