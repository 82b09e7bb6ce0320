//! Property tests over the whole parameter space of the scenario model: whatever a scenario
//! file or the CLI flags say, validation either refuses it with problems to show, or accepts it
//! and then nothing the tiers compute from it panics or overflows — the schedule of an action
//! (work durations, arrival offsets), its ideal duration, the clock readings it is added to,
//! the start-rate gaps, the run's totals.
//!
//! The generators mix ordinary values with the extremes of each key (0, 1, the limits and one
//! past them, u32::MAX, i64::MAX, negative, NaN, infinity, durations of centuries), weighted
//! so that a good share of the scenarios is accepted and goes on to schedule generation.

use std::time::{Duration, Instant};

use proptest::prelude::*;
use stampede_core::scenario::limits::*;
use stampede_core::scenario::*;
use stampede_core::schedule::{arrival_offsets, draw_duration, draw_iat, plan_action, rng_for, MAX_DRAW};


/// Requests planned per accepted group: a schedule of 2^24 requests takes half a GiB and
/// seconds to draw, too much for hundreds of cases. Past this many, each request's draw is
/// the same function as for the first ones, and the offsets only grow (bounded by MAX_DRAW,
/// checked on its own below).
const PLAN_CAP: u32 = 2_000;

// ---- generators of TOML values ---------------------------------------------------------

/// A key that is there a third of the time: with every key present, nearly every scenario
/// would have one bad value and few would reach schedule generation.
fn maybe<S: Strategy>(s: S) -> impl Strategy<Value = Option<S::Value>> {
    prop::option::weighted(0.35, s)
}

fn count() -> impl Strategy<Value = String> {
    prop_oneof![
        30 => (1i64..=8).prop_map(|v| v.to_string()),
        10 => (1i64..=5_000).prop_map(|v| v.to_string()),
        2 => prop::sample::select(vec![
            0i64,
            -1,
            i64::from(MAX_REQUESTS),
            i64::from(MAX_REQUESTS) + 1,
            1 << 26,
            MAX_INSTANCES as i64,
            i64::from(u32::MAX),
            i64::from(u32::MAX) + 1,
            i64::MAX,
            i64::MIN,
        ])
        .prop_map(|v| v.to_string()),
        1 => any::<i64>().prop_map(|v| v.to_string()),
    ]
}

fn duration() -> impl Strategy<Value = String> {
    let unit = prop::sample::select(vec!["us", "ms", "s", "m", "h"]);
    prop_oneof![
        30 => (0u64..=500, prop::sample::select(vec!["us", "ms"])).prop_map(|(v, u)| format!("\"{v}{u}\"")),
        5 => (0u64..=500, unit.clone()).prop_map(|(v, u)| format!("\"{v}{u}\"")),
        // Long but valid: with a large N or many bursts, they cross the derived limits.
        3 => prop::sample::select(vec!["\"8760h\"", "\"8759h\"", "\"1000h\"", "\"525600m\"", "\"100h\""])
            .prop_map(str::to_owned),
        1 => (0u64..=u64::MAX, unit).prop_map(|(v, u)| format!("\"{v}{u}\"")),
        1 => prop::sample::select(vec![
            "\"0s\"", "\"1us\"", "\"8761h\"", "\"99999999999999h\"", "\"1.5s\"", "\"-1s\"", "\"0.0000001s\"",
            "\"10\"", "5", "\"\"",
        ])
        .prop_map(str::to_owned),
    ]
}

/// A float as TOML writes it (`nan` and `inf`, not Rust's `NaN`).
fn toml_float(v: f64) -> String {
    if v.is_nan() {
        "nan".to_owned()
    } else if v.is_infinite() {
        if v > 0.0 { "inf" } else { "-inf" }.to_owned()
    } else {
        format!("{v:?}")
    }
}

fn float() -> impl Strategy<Value = String> {
    prop_oneof![
        40 => (0.01f64..3.0).prop_map(toml_float),
        8 => (3.0f64..60.0).prop_map(toml_float),
        1 => prop::sample::select(vec![0.0, -1.0, 1e-300, 1e-19, 1e-9, 1e9, 1e308, f64::INFINITY, f64::NAN])
            .prop_map(toml_float),
        1 => any::<f64>().prop_map(toml_float),
    ]
}

fn work_dist() -> impl Strategy<Value = String> {
    prop_oneof![
        duration(),
        duration().prop_map(|v| format!("{{ dist = \"fixed\", value = {v} }}")),
        (duration(), duration()).prop_map(|(a, b)| format!("{{ dist = \"uniform\", min = {a}, max = {b} }}")),
        duration().prop_map(|m| format!("{{ dist = \"exponential\", mean = {m} }}")),
        (duration(), float()).prop_map(|(m, s)| format!("{{ dist = \"lognormal\", median = {m}, sigma = {s} }}")),
    ]
}

fn work() -> impl Strategy<Value = String> {
    let kind = prop::sample::select(vec!["sleep", "spin"]);
    prop_oneof![
        (kind.clone(), 0u64..=500).prop_map(|(k, v)| format!("\"{k}:{v}ms\"")),
        (kind, work_dist()).prop_map(|(k, d)| format!("{{ kind = \"{k}\", duration = {d} }}")),
    ]
}

fn payload_bytes() -> impl Strategy<Value = String> {
    prop_oneof![
        20 => (0i64..=4096).prop_map(|v| v.to_string()),
        1 => prop::sample::select(vec![
            -1i64,
            i64::from(MAX_PAYLOAD),
            i64::from(MAX_PAYLOAD) + 1,
            i64::from(u32::MAX),
            i64::MAX,
        ])
        .prop_map(|v| v.to_string()),
    ]
}

fn payload() -> impl Strategy<Value = String> {
    prop_oneof![
        payload_bytes(),
        (payload_bytes(), payload_bytes()).prop_map(|(a, b)| format!("{{ request = {a}, response = {b} }}")),
    ]
}

fn iat() -> impl Strategy<Value = String> {
    prop_oneof![
        duration(),
        duration().prop_map(|v| format!("{{ dist = \"fixed\", value = {v} }}")),
        duration().prop_map(|m| format!("{{ dist = \"exponential\", mean = {m} }}")),
        (duration(), duration())
            .prop_map(|(s, m)| format!("{{ dist = \"shifted_exponential\", shift = {s}, mean = {m} }}")),
    ]
}

fn arrivals() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("\"closed\"".to_owned()),
        (iat(), count()).prop_map(|(i, b)| format!("{{ mode = \"open\", iat = {i}, burst = {b} }}")),
        iat().prop_map(|i| format!("{{ mode = \"open\", iat = {i} }}")),
    ]
}

fn lifecycle() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => Just("\"keep_warm\"".to_owned()),
        1 => Just("\"one_shot\"".to_owned()),
        1 => Just("\"pause_between_bursts\"".to_owned()),
        1 => duration().prop_map(|d| format!("{{ mode = \"eviction_probe\", idle = {d} }}")),
    ]
}

fn churn() -> impl Strategy<Value = String> {
    prop_oneof![
        count().prop_map(|c| format!("{{ cycles = {c} }}")),
        duration().prop_map(|d| format!("{{ duration = {d} }}")),
        (count(), duration()).prop_map(|(c, d)| format!("{{ cycles = {c}, duration = {d} }}")),
    ]
}

fn start_rate() -> impl Strategy<Value = String> {
    (float(), maybe(count())).prop_map(|(q, b)| match b {
        Some(b) => format!("{{ qps = {q}, burst = {b} }}"),
        None => format!("{{ qps = {q} }}"),
    })
}

fn action_list() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("\"all\"".to_owned()),
        prop::collection::vec(prop_oneof![20 => 0i64..3, 1 => any::<i64>()], 0..3)
            .prop_map(|v| format!("[{}]", v.iter().map(i64::to_string).collect::<Vec<_>>().join(", "))),
    ]
}

fn step() -> impl Strategy<Value = String> {
    prop_oneof![
        (count(), duration(), action_list()).prop_map(|(after, d, a)| format!(
            "[[group.steps]]\nkind = \"pause\"\nafter_requests = {after}\nduration = {d}\nactions = {a}\n"
        )),
        (count(), action_list()).prop_map(|(after, a)| format!(
            "[[group.steps]]\nkind = \"kill\"\nafter_requests = {after}\nactions = {a}\n"
        )),
        // after_requests = 0 is allowed and the generic count() rarely gives it.
        Just("[[group.steps]]\nkind = \"kill\"\nafter_requests = 0\n".to_owned()),
    ]
}

/// One `[[group]]` with any subset of its keys.
fn group() -> impl Strategy<Value = String> {
    let keys = (
        (
            maybe(count()),
            maybe(count()),
            maybe(count()),
            maybe(work()),
            maybe(payload()),
            maybe(duration()),
            maybe(count()),
        ),
        (
            maybe(arrivals()),
            maybe(lifecycle()),
            // Rarer: each rules out much of the rest (one_shot, steps).
            prop::option::weighted(0.1, churn()),
            maybe(start_rate()),
            prop::option::weighted(0.1, prop::sample::select(vec!["\"none\"", "\"all_ready\""])),
            maybe((duration(), duration())),
            prop::option::weighted(0.25, prop::collection::vec(step(), 1..3)),
        ),
    );
    keys.prop_map(|((s, a, n, work, payload, delay, conc), (arr, life, churn, rate, hold, timeouts, steps))| {
        let mut text = String::from("[[group]]\n");
        let mut key = |k: &str, v: Option<String>| {
            if let Some(v) = v {
                text.push_str(&format!("{k} = {v}\n"));
            }
        };
        key("scenarios", s);
        key("actions", a);
        key("requests", n);
        key("work", work);
        key("payload", payload);
        key("start_delay", delay);
        key("start_concurrency", conc);
        key("arrivals", arr);
        key("lifecycle", life);
        key("churn", churn);
        key("start_rate", rate);
        key("hold", hold.map(str::to_owned));
        key("timeouts", timeouts.map(|(r, q)| format!("{{ ready = {r}, request = {q} }}")));
        for s in steps.unwrap_or_default() {
            text.push_str(&s);
        }
        text
    })
}

fn scenario_text() -> impl Strategy<Value = String> {
    (
        maybe(prop::sample::select(vec!["\"sequence\"", "\"parallel\""])),
        maybe(duration()),
        maybe(start_rate()),
        maybe(prop_oneof![(0u64..100).prop_map(|v| v.to_string()), count()]),
        prop::collection::vec(group(), 1..3),
    )
        .prop_map(|(mode, timeout, rate, seed, groups)| {
            let mut text = String::new();
            for (k, v) in
                [("groups", mode.map(str::to_owned)), ("timeout", timeout), ("start_rate", rate), ("seed", seed)]
            {
                if let Some(v) = v {
                    text.push_str(&format!("{k} = {v}\n"));
                }
            }
            text.push_str(&groups.concat());
            text
        })
}

// ---- what must hold of an accepted scenario ---------------------------------------------

/// `d` can be added to a clock reading (the tiers do: `Instant::now() + d`).
fn fits_a_clock(d: Duration) -> bool {
    Instant::now().checked_add(d).is_some()
}

fn us(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).expect("a validated duration fits u64 µs")
}

/// Everything the tiers compute from an accepted scenario stays within bounds.
fn check_accepted(s: &Scenario) -> Result<(), TestCaseError> {
    let seed = s.seed.unwrap_or(7);
    prop_assert!(s.run_timeout <= MAX_DURATION && fits_a_clock(s.run_timeout));
    // The driver sums start_delay + ideal duration of every group in µs.
    let mut ideal_total = 0u64;
    let (mut instances, mut requests, mut scenarios) = (0u64, 0u64, 0u64);
    for (gi, g) in s.groups.iter().enumerate() {
        let mean = g.work.duration.mean();
        let ideal = g.ideal_duration();
        prop_assert!(mean <= MAX_DURATION, "mean {mean:?} of {:?}", g.work.duration);
        prop_assert!(ideal <= MAX_DURATION, "ideal {ideal:?}");
        ideal_total = ideal_total.checked_add(us(g.start_delay) + us(ideal)).expect("ideal total overflows");
        for d in [g.start_delay, g.timeouts.ready, g.timeouts.request] {
            prop_assert!(d <= MAX_DURATION && fits_a_clock(d));
        }
        if let Lifecycle::EvictionProbe { idle } = g.lifecycle {
            prop_assert!(fits_a_clock(idle));
        }
        if let Some(d) = g.churn.and_then(|c| c.duration) {
            prop_assert!(fits_a_clock(d));
        }
        for step in &g.steps {
            if let Step::Pause { duration, .. } = step {
                prop_assert!(fits_a_clock(*duration));
            }
            prop_assert!(step.after_requests() < g.requests);
        }
        // planned_requests: N + 1 with an eviction probe.
        prop_assert!(g.requests.checked_add(1).is_some());
        prop_assert!(g.requests <= MAX_REQUESTS);
        if let Some(rate) = g.start_rate {
            prop_assert!(Duration::try_from_secs_f64(1.0 / rate.qps).is_ok_and(|d| d <= MAX_DURATION));
        }
        if let Arrivals::Open { iat, burst } = &g.arrivals {
            prop_assert!(*burst >= 1 && *burst <= g.requests);
            prop_assert!(iat.mean() <= MAX_DURATION * 2);
        }
        let (sc, a, n) = (u64::from(g.scenarios), u64::from(g.actions), u64::from(g.requests));
        prop_assert!(a * n <= MAX_SCENARIO_REQUESTS);
        scenarios += sc;
        instances = instances.saturating_add(sc + sc.saturating_mul(a));
        requests = requests.saturating_add(sc.saturating_mul(a).saturating_mul(n));

        // The schedule of a few of its actions, as the scenario tier draws it.
        let mut planned = g.clone();
        planned.requests = g.requests.min(PLAN_CAP);
        for (scenario, action) in [(0, 0), (g.scenarios - 1, g.actions - 1)] {
            let plan = plan_action(&planned, seed, gi as u32, scenario, action);
            prop_assert_eq!(plan.work_durations.len(), planned.requests as usize);
            for d in &plan.work_durations {
                prop_assert!(*d <= MAX_DRAW && fits_a_clock(*d), "work draw {d:?}");
            }
            match (&g.arrivals, &plan.arrival_offsets) {
                (Arrivals::Closed, None) => {}
                (Arrivals::Open { .. }, Some(offsets)) => {
                    prop_assert_eq!(offsets.len(), planned.requests as usize);
                    prop_assert_eq!(offsets[0], Duration::ZERO);
                    prop_assert!(offsets.windows(2).all(|w| w[0] <= w[1]));
                    let last = *offsets.last().unwrap();
                    prop_assert!(last <= MAX_DRAW && fits_a_clock(last));
                }
                (arrivals, offsets) => prop_assert!(false, "{arrivals:?} gave {offsets:?}"),
            }
        }
    }
    prop_assert!(instances <= MAX_INSTANCES);
    prop_assert!(requests <= MAX_RUN_REQUESTS);
    // The run's start rate, split among every scenario instance.
    if let Some(rate) = s.start_rate {
        let per_scenario = rate.qps / scenarios.max(1) as f64;
        prop_assert!(Duration::try_from_secs_f64(1.0 / per_scenario).is_ok_and(|d| d <= MAX_DURATION));
    }
    Ok(())
}

fn check_refused(e: &ScenarioError) -> Result<(), TestCaseError> {
    prop_assert!(!e.problems().is_empty());
    for p in e.problems() {
        prop_assert!(!p.message.is_empty(), "{p:?}");
    }
    prop_assert!(!e.to_string().is_empty());
    Ok(())
}

proptest! {
    /// Any scenario file: refused with problems, or accepted and safe to run.
    #[test]
    fn any_scenario_file_is_refused_or_safe_to_run(text in scenario_text()) {
        match from_str(&text, None, &Overrides::default(), &NoRuntimes) {
            Ok(s) => check_accepted(&s)?,
            Err(e) => check_refused(&e)?,
        }
    }

    /// Any CLI flags, with or without a file: the same.
    #[test]
    fn any_flags_are_refused_or_safe_to_run(
        counts in prop::array::uniform3(prop_oneof![
            4 => 1u32..=64,
            1 => prop::sample::select(vec![0, MAX_REQUESTS, MAX_REQUESTS + 1, u32::MAX]),
            1 => any::<u32>(),
        ]),
        work in maybe(prop_oneof![
            (0u64..1000).prop_map(|v| format!("sleep:{v}ms")),
            (0u64..=u64::MAX).prop_map(|v| format!("spin:{v}us")),
            Just("sleep:8760h".to_owned()),
            Just("sleep:8761h".to_owned()),
        ]),
        payload in maybe(prop_oneof![0u32..4096, any::<u32>()]),
        file in maybe(group()),
    ) {
        let ov = Overrides {
            scenarios: Some(counts[0]),
            actions: Some(counts[1]),
            requests: Some(counts[2]),
            work: work.and_then(|w| w.parse().ok()),
            payload,
            ..Overrides::default()
        };
        let result = match &file {
            Some(text) => from_str(text, None, &ov, &NoRuntimes),
            None => from_cli(&ov, &NoRuntimes),
        };
        match result {
            Ok(s) => check_accepted(&s)?,
            Err(e) => check_refused(&e)?,
        }
    }

    /// The schedule functions themselves, on any parameters at all (not only validated ones:
    /// the model also comes back from results.json): no panic, every draw and offset at most
    /// MAX_DRAW, means and ideal durations saturate.
    #[test]
    fn draws_never_panic_on_any_parameters(
        a in any::<u64>(),
        b in any::<u64>(),
        nanos in 0u32..1_000_000_000,
        sigma in any::<f64>(),
        which in 0u8..7,
        burst in any::<u32>(),
        n in 0u32..64,
        requests in any::<u32>(),
    ) {
        let (x, y) = (Duration::new(a, nanos), Duration::new(b, nanos));
        let mut rng = rng_for(a, 0, 0, 0);
        let dist = match which % 4 {
            0 => DurationDist::Fixed { value: x },
            1 => DurationDist::Uniform { min: x.min(y), max: x.max(y) },
            2 => DurationDist::Exponential { mean: x },
            _ => DurationDist::Lognormal { median: x, sigma },
        };
        let iat = match which % 3 {
            0 => Iat::Fixed { value: x },
            1 => Iat::Exponential { mean: x },
            _ => Iat::ShiftedExponential { shift: x, mean: y },
        };
        for _ in 0..16 {
            prop_assert!(draw_duration(&dist, &mut rng) <= MAX_DRAW);
            prop_assert!(draw_iat(&iat, &mut rng) <= MAX_DRAW);
        }
        let _ = dist.mean();
        let _ = iat.mean();
        let group = Group { requests, work: Work { kind: WorkKind::Sleep, duration: dist }, ..from_cli(&Overrides::default(), &NoRuntimes).unwrap().groups.remove(0) };
        let _ = group.ideal_duration();
        let offsets = arrival_offsets(&Arrivals::Open { iat, burst }, n, &mut rng).unwrap();
        prop_assert!(offsets.windows(2).all(|w| w[0] <= w[1]));
        prop_assert!(offsets.iter().all(|d| *d <= MAX_DRAW && fits_a_clock(*d)));
    }
}
