//! What both launching tiers do with a runtime beyond launching: its start concurrency, and
//! turning the platform's own states into records and `native_phase_<state>` metrics. Generic:
//! no runtime is named here.

use stampede_core::measure::{native_phase, Clock, InstanceRecord, NativeStateRecord};
use stampede_core::scenario::{Group, RuntimeCatalog};
use stampede_core::stats::Metrics;
use stampede_runtime::NativeTimes;

/// Launches in flight per launching tier, when `launchers` tiers of the group launch on
/// `runtime` at once (1 for the driver, S for the scenarios): the group's `start_concurrency`,
/// else the runtime's default per tier, within its run-wide cap shared by all of them (its
/// capabilities say; 1 for a name the catalog lacks, which validation prevents).
pub fn start_concurrency(group: &Group, runtime: &str, launchers: u32, catalog: &dyn RuntimeCatalog) -> u32 {
    group.start_concurrency.unwrap_or_else(|| {
        catalog.find(runtime).map_or(1, |r| {
            let c = r.capabilities();
            c.default_start_concurrency.min((c.run_start_concurrency / launchers.max(1)).max(1))
        })
    })
}

/// Put the runtime's own timestamps on `clock`'s timeline: its start time into the record, its
/// states (then its reference series, if any) as native_states.csv rows.
pub fn apply_native(rec: &mut InstanceRecord, native: &NativeTimes, clock: &Clock) -> Vec<NativeStateRecord> {
    rec.runtime_started_us = native.started_unix_us.map(|t| clock.from_wall(t));
    rec.node = native.node.clone();
    let rows = |states: &[(String, i64)], source: &str| -> Vec<NativeStateRecord> {
        states
            .iter()
            .map(|(state, t)| NativeStateRecord {
                instance_id: rec.instance_id.clone(),
                state: state.clone(),
                time_us: clock.from_wall(*t),
                source: source.to_owned(),
            })
            .collect()
    };
    let mut out = rows(&native.states, native.source);
    out.extend(rows(&native.reference, native.reference_source));
    out
}

/// `native_phase_<state>`: the time to reach each state from the previous one seen (from
/// `requested` for the first), for the rows of the runtime's main series (`source`; a
/// reference series is only kept as rows). A platform may skip reporting short states;
/// measuring from the last one seen keeps the phases summing to the whole.
pub fn record_native_phases(m: &mut Metrics, rec: &InstanceRecord, states: &[NativeStateRecord], source: &str) {
    let Some(mut prev) = rec.requested_us else { return };
    for s in states.iter().filter(|s| s.source == source) {
        m.record(&native_phase(&s.state), s.time_us - prev);
        prev = s.time_us;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn native_phases_run_from_the_previous_state_seen() {
        let rec = InstanceRecord { instance_id: "i".into(), requested_us: Some(0), ..Default::default() };
        let row = |state: &str, t| NativeStateRecord {
            instance_id: "i".into(),
            state: state.into(),
            time_us: t,
            source: if state == "ref" { "coarse" } else { "x" }.into(),
        };
        let mut m = Metrics::new();
        record_native_phases(&mut m, &rec, &[row("new", 10), row("pending", 30), row("running", 100), row("ref", 5)], "x");
        let s = m.summaries();
        assert_eq!(s["native_phase_new"].max_us, 10);
        assert_eq!(s["native_phase_pending"].max_us, 20);
        assert_eq!(s["native_phase_running"].max_us, 70);
        assert!(!s.contains_key("native_phase_ref"), "a reference series is not phased");
    }
}
