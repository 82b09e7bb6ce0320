//! Scenario files: good fixtures parse to the expected model, bad fixtures name the line and
//! field to fix, every example in `scenarios/` validates, and CLI overrides behave.
//!
//! Each file in `fixtures/bad/` states what it must produce in its leading comments:
//! `# expect-line: N`, `# expect-field: F`, `# expect-message: text the message contains`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use stampede_core::scenario::*;

/// The binary's own catalog: scenario files name its runtimes and their option tables.
fn catalog() -> stampede_runtime::Registry {
    stampede::registry::registry(PathBuf::from("stampede"))
}

fn fixtures(kind: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures").join(kind);
    toml_files(&dir)
}

fn toml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no .toml files in {}", dir.display());
    files
}

fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

fn load(path: &Path) -> Scenario {
    load_file(path, &Overrides::default(), &catalog()).unwrap_or_else(|e| panic!("{e}"))
}

fn good(name: &str) -> Scenario {
    load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/good").join(name))
}

fn invalid(text: &str, ov: &Overrides) -> ScenarioError {
    match from_str(text, Some(Path::new("t.toml")), ov, &catalog()) {
        Ok(s) => panic!("expected an error, got {s:#?}"),
        Err(e) => e,
    }
}

#[test]
fn every_example_scenario_validates() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scenarios");
    for path in toml_files(&dir) {
        let scenario = load(&path);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with('#'), "{} must start with a comment saying what it shows", path.display());
        // Small enough to run in seconds on the process runtime.
        let instances: u32 = scenario.groups.iter().map(|g| g.scenarios + g.scenarios * action_instances(g)).sum();
        assert!(instances <= 60, "{}: {instances} instances", path.display());
    }
}

/// Action instances one scenario of `g` starts: one per slot, times the churn cycles, times the
/// requests (closed loop) or bursts (open loop) for one-shot. Churn by duration counts once.
fn action_instances(g: &Group) -> u32 {
    let per_cycle = match (&g.lifecycle, &g.arrivals) {
        (Lifecycle::OneShot, Arrivals::Closed) => g.requests,
        (Lifecycle::OneShot, Arrivals::Open { burst, .. }) => g.requests.div_ceil(*burst),
        _ => 1,
    };
    let cycles = g.churn.and_then(|c| c.cycles).unwrap_or(1);
    g.actions * per_cycle * cycles
}

#[test]
fn minimal_file_gets_every_default() {
    let s = good("minimal.toml");
    assert_eq!(s.name, "minimal");
    assert_eq!(s.seed, None);
    assert_eq!(s.groups_mode, GroupsMode::Sequence);
    assert_eq!(s.run_timeout, Duration::from_secs(30 * 60));
    let g = &s.groups[0];
    assert_eq!(g.name, "group-0");
    assert_eq!(g.runtime, "process");
    assert_eq!((g.action_runtime.as_deref(), g.image.as_deref()), (None, None));
    assert_eq!((g.scenarios, g.actions, g.requests), (1, 1, 10));
    assert_eq!(g.work, "sleep:10ms".parse().unwrap());
    assert_eq!(g.payload, Payload { request: 64, response: 64 });
    assert_eq!(g.arrivals, Arrivals::Closed);
    assert_eq!(g.lifecycle, Lifecycle::KeepWarm);
    assert_eq!((g.start_delay, g.start_concurrency, g.warmup), (Duration::ZERO, None, false));
    assert_eq!(g.timeouts, Timeouts { ready: Duration::from_secs(60), request: Duration::from_secs(30) });
    assert!(g.steps.is_empty());
    assert_eq!((g.churn, g.start_rate, g.image_filler_mb), (None, None, 0));
    assert_eq!(s.start_rate, None);
    // Only the runtime used gets options, and the process runtime has none.
    assert_eq!(g.runtime_options, [("process".to_owned(), serde_json::Value::Null)].into());
}

#[test]
fn full_file_sets_every_field() {
    let s = good("full.toml");
    assert_eq!(s.name, "everything");
    assert_eq!(s.seed, Some(1234));
    assert_eq!(s.groups_mode, GroupsMode::Parallel);
    assert_eq!(s.run_timeout, Duration::from_secs(300));
    assert_eq!(s.groups.len(), 3);

    let g = &s.groups[0];
    assert_eq!(g.name, "docker-open");
    assert_eq!((g.runtime.as_str(), g.effective_action_runtime()), ("docker", "process"));
    assert_eq!(g.image.as_deref(), Some("sha256:0123abcd"));
    assert_eq!((g.scenarios, g.actions, g.requests), (3, 4, 20));
    assert_eq!(
        g.work,
        Work { kind: WorkKind::Spin, duration: DurationDist::Lognormal { median: ms(10), sigma: 0.5 } }
    );
    assert_eq!(g.payload, Payload { request: 128, response: 4096 });
    assert_eq!((g.start_delay, g.start_concurrency, g.warmup), (ms(1500), Some(8), true));
    assert_eq!(
        g.arrivals,
        Arrivals::Open { iat: Iat::ShiftedExponential { shift: ms(50), mean: ms(50) }, burst: 4 }
    );
    assert_eq!(g.lifecycle, Lifecycle::KeepWarm);
    assert_eq!(g.timeouts, Timeouts { ready: Duration::from_secs(90), request: Duration::from_secs(5) });
    assert_eq!(g.options_of("docker"), serde_json::json!({ "network": "per_scenario" }));
    assert_eq!(
        g.steps,
        vec![
            Step::Pause { actions: ActionSelector::All, after_requests: 5, duration: ms(200) },
            Step::Kill { actions: ActionSelector::Indices(vec![1, 3]), after_requests: 10 },
        ]
    );

    let g = &s.groups[1];
    assert_eq!(g.name, "group-1");
    assert_eq!(g.runtime, "swarm");
    assert_eq!(g.work, Work { kind: WorkKind::Sleep, duration: DurationDist::fixed(Duration::ZERO) });
    assert_eq!(g.payload, Payload { request: 0, response: 0 });
    assert_eq!(g.arrivals, Arrivals::Open { iat: Iat::Fixed { value: ms(100) }, burst: 1 });
    assert_eq!(g.lifecycle, Lifecycle::OneShot);
    assert_eq!(
        g.options_of("swarm"),
        serde_json::json!({
            "network": "overlay",
            "mapping": "service_per_action",
            "restart_condition": "on-failure",
            "update_parallelism": 2,
            "placement": ["node.role==manager"],
            "actions": "spread",
            "action_placement": ["node.labels.zone==a"],
        })
    );

    let g = &s.groups[2];
    assert_eq!(g.work.duration, DurationDist::Uniform { min: ms(5), max: ms(15) });
    assert_eq!(g.arrivals, Arrivals::Open { iat: Iat::Exponential { mean: ms(20) }, burst: 1 });
    assert_eq!(g.steps, vec![Step::Kill { actions: ActionSelector::Indices(vec![0]), after_requests: 0 }]);
}

#[test]
fn workload_file_sets_every_workload_field() {
    let s = good("workload.toml");
    assert_eq!(s.start_rate, Some(StartRate { qps: 20.0, burst: 5 }));
    let g: Vec<&Group> = s.groups.iter().collect();

    assert_eq!(g[0].churn, Some(Churn { cycles: Some(5), duration: None }));
    assert_eq!(g[0].start_rate, Some(StartRate { qps: 10.0, burst: 2 }));
    assert_eq!(g[0].image_filler_mb, 50);
    assert_eq!(g[0].lifecycle, Lifecycle::KeepWarm);

    assert_eq!(g[1].lifecycle, Lifecycle::KeepWarm);
    assert_eq!(g[1].churn, Some(Churn { cycles: None, duration: Some(Duration::from_secs(30)) }));
    // burst defaults to 1; qps may be fractional.
    assert_eq!(g[1].start_rate, Some(StartRate { qps: 0.5, burst: 1 }));
    assert_eq!(g[1].image_filler_mb, 0);

    assert_eq!(g[2].churn, Some(Churn { cycles: Some(3), duration: Some(Duration::from_secs(60)) }));
    assert_eq!(g[2].start_rate, None);

    assert_eq!(g[3].lifecycle, Lifecycle::PauseBetweenBursts);
    assert_eq!(g[3].arrivals, Arrivals::Open { iat: Iat::Fixed { value: ms(100) }, burst: 5 });
    assert_eq!(g[3].steps, vec![Step::Kill { actions: ActionSelector::Indices(vec![0]), after_requests: 5 }]);

    assert_eq!(g[4].lifecycle, Lifecycle::EvictionProbe { idle: Duration::from_secs(30) });
    assert_eq!(g[4].steps.len(), 1);

    assert_eq!(g[5].lifecycle, Lifecycle::OneShot);
    assert_eq!(g[5].start_rate, Some(StartRate { qps: 100.0, burst: 10 }));

    // Accepted on the process runtime: the driver warns and ignores it there.
    assert_eq!((g[6].runtime.as_str(), g[6].image_filler_mb), ("process", MAX_IMAGE_FILLER_MB));
}

#[test]
fn the_model_round_trips_through_json() {
    for path in fixtures("good") {
        let s = load(&path);
        let json = serde_json::to_string(&s).unwrap();
        assert_eq!(serde_json::from_str::<Scenario>(&json).unwrap(), s, "{}", path.display());
    }
    // The JSON names of the new fields, as results.json records them.
    let s = good("workload.toml");
    let v: serde_json::Value = serde_json::to_value(&s).unwrap();
    assert_eq!(v["start_rate"], serde_json::json!({ "qps": 20.0, "burst": 5 }));
    assert_eq!(v["groups"][0]["churn"], serde_json::json!({ "cycles": 5, "duration_us": null }));
    assert_eq!(v["groups"][1]["churn"], serde_json::json!({ "cycles": null, "duration_us": 30_000_000 }));
    assert_eq!(v["groups"][0]["image_filler_mb"], 50);
    assert_eq!(v["groups"][3]["lifecycle"], serde_json::json!({ "mode": "pause_between_bursts" }));
    assert_eq!(v["groups"][4]["lifecycle"], serde_json::json!({ "mode": "eviction_probe", "idle_us": 30_000_000 }));
    assert_eq!(v["groups"][6]["start_rate"], serde_json::Value::Null);
}

#[test]
fn every_lifecycle_has_a_string_and_a_table_form() {
    for (text, want) in [
        ("\"keep_warm\"", Lifecycle::KeepWarm),
        ("{ mode = \"keep_warm\" }", Lifecycle::KeepWarm),
        ("\"one_shot\"", Lifecycle::OneShot),
        ("{ mode = \"one_shot\" }", Lifecycle::OneShot),
        ("\"pause_between_bursts\"", Lifecycle::PauseBetweenBursts),
        ("{ mode = \"pause_between_bursts\" }", Lifecycle::PauseBetweenBursts),
        ("{ mode = \"eviction_probe\", idle = \"1.5s\" }", Lifecycle::EvictionProbe { idle: ms(1500) }),
    ] {
        let file = format!(
            "[[group]]\nrequests = 4\narrivals = {{ mode = \"open\", iat = \"10ms\", burst = 2 }}\nlifecycle = {text}\n"
        );
        let s = from_str(&file, None, &Overrides::default(), &catalog()).unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(s.groups[0].lifecycle, want, "{text}");
    }
}

#[test]
fn bad_start_rates_are_refused() {
    for (value, message) in [
        ("{ qps = -1 }", "must be a finite number greater than 0, got -1"),
        ("{ qps = inf }", "must be a finite number greater than 0, got inf"),
        ("{ qps = 1e-300 }", "is too small"),
        ("{ burst = 2 }", "missing; expected launches per second"),
        ("{ qps = 1, burst = 1.5 }", "expected an integer"),
    ] {
        let err = invalid(&format!("start_rate = {value}\n[[group]]\n"), &Overrides::default());
        assert_eq!(err.line(), Some(1), "{value}: {err}");
        assert!(err.problems()[0].message.contains(message), "{value}: {err}");
    }
}

#[test]
fn pause_between_bursts_checks_the_requests_flag() {
    // The file's N has room for two bursts; --requests 2 leaves one.
    let text = "[[group]]\nrequests = 4\nlifecycle = \"pause_between_bursts\"\narrivals = { mode = \"open\", iat = \"10ms\", burst = 2 }\n";
    assert!(from_str(text, None, &Overrides::default(), &catalog()).is_ok());
    let err = invalid(text, &Overrides { requests: Some(2), ..Default::default() });
    assert_eq!(
        err.to_string(),
        "t.toml:3: group[0].lifecycle: \"pause_between_bursts\" needs more than one burst: burst (2, set at line 4) equals requests (2, set by --requests), so there is no idle gap to pause in"
    );
}

#[test]
fn an_invalid_lifecycle_or_arrivals_does_not_cascade() {
    // arrivals is invalid, so pause_between_bursts is not also reported as "closed loop".
    let text = "[[group]]\nlifecycle = \"pause_between_bursts\"\narrivals = { mode = \"open\", iat = \"0s\" }\n";
    let err = invalid(text, &Overrides::default());
    assert_eq!(err.problems().len(), 1, "{err}");
    assert_eq!(err.field(), Some("group[0].arrivals.iat"));
    // lifecycle is invalid, so churn is not checked against it.
    let text = "[[group]]\nlifecycle = \"once\"\nchurn = { cycles = 2 }\nsteps = [{ kind = \"pause\", after_requests = 1, duration = \"1ms\" }]\n";
    let err = invalid(text, &Overrides::default());
    assert_eq!(err.problems().len(), 1, "{err}");
}

/// The `# expect-…:` comments of a bad fixture.
struct Expect {
    line: Option<usize>,
    field: String,
    message: String,
}

fn expectations(path: &Path) -> Expect {
    let text = std::fs::read_to_string(path).unwrap();
    let value = |key: &str| {
        text.lines().find_map(|l| l.strip_prefix(&format!("# expect-{key}: ")).map(str::to_owned))
    };
    Expect {
        line: value("line").map(|l| l.parse().unwrap()),
        field: value("field").unwrap_or_else(|| panic!("{}: no # expect-field", path.display())),
        message: value("message").unwrap_or_else(|| panic!("{}: no # expect-message", path.display())),
    }
}

#[test]
fn every_bad_fixture_names_line_and_field() {
    let mut failures = Vec::new();
    for path in fixtures("bad") {
        let want = expectations(&path);
        let err = match load_file(&path, &Overrides::default(), &catalog()) {
            Ok(_) => {
                failures.push(format!("{}: loaded without error", path.display()));
                continue;
            }
            Err(e) => e,
        };
        let first = &err.problems()[0];
        let shown = err.to_string();
        let first_line = shown.lines().next().unwrap();
        let prefix = match want.line {
            Some(line) => format!("{}:{line}: {}: ", path.display(), want.field),
            None => format!("{}: {}: ", path.display(), want.field),
        };
        let ok = first.line == want.line
            && first.field == want.field
            && first.message.contains(&want.message)
            && first_line.starts_with(&prefix);
        if !ok {
            failures.push(format!(
                "{}:\n  want line {:?}, field {}, message containing {:?}\n  got  {shown}",
                path.display(),
                want.line,
                want.field,
                want.message
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn all_problems_are_reported_at_once_earliest_first() {
    let text = r#"
[[group]]
requests = 4
arrivals = { mode = "open", iat = "10ms", burst = 5 }
colour = "blue"

[[group]]
actions = 0
timeouts = { ready = "0s" }
"#;
    let err = invalid(text, &Overrides::default());
    let got: Vec<(Option<usize>, &str)> = err.problems().iter().map(|p| (p.line, p.field.as_str())).collect();
    assert_eq!(
        got,
        vec![
            (Some(4), "group[0].arrivals.burst"),
            (Some(5), "group[0].colour"),
            (Some(8), "group[1].actions"),
            (Some(9), "group[1].timeouts.ready"),
        ]
    );
    assert_eq!(err.to_string().lines().count(), 4);
    assert_eq!(
        err.to_string().lines().nth(2).unwrap(),
        "t.toml:8: group[1].actions: must be at least 1, got 0"
    );
}

#[test]
fn a_bad_value_does_not_cascade_into_cross_field_errors() {
    // N is invalid, so the burst and the step are not checked against a made-up N.
    let text = r#"
[[group]]
requests = 0
arrivals = { mode = "open", iat = "10ms", burst = 50 }
steps = [{ kind = "kill", after_requests = 40 }]
"#;
    let err = invalid(text, &Overrides::default());
    assert_eq!(err.problems().len(), 1, "{err}");
    assert_eq!(err.field(), Some("group[0].requests"));
}

#[test]
fn without_a_file_errors_give_the_line() {
    let err = from_str("[[group]]\nactions = -1\n", None, &Overrides::default(), &catalog()).unwrap_err();
    assert_eq!(err.to_string(), "line 2: group[0].actions: must be at least 1, got -1");
    let s = from_str("[[group]]\n", None, &Overrides::default(), &catalog()).unwrap();
    assert_eq!(s.name, "scenario");
}

#[test]
fn unreadable_file_says_so() {
    let err = load_file(Path::new("/nonexistent/x.toml"), &Overrides::default(), &catalog()).unwrap_err();
    assert!(matches!(err, ScenarioError::Read { .. }));
    assert!(err.to_string().starts_with("/nonexistent/x.toml: cannot read scenario file"));
}

#[test]
fn overrides_apply_to_the_first_group_only() {
    let text = r#"
seed = 1
[[group]]
name = "a"
scenarios = 2
requests = 3
payload = { request = 1, response = 2 }
[[group]]
name = "b"
scenarios = 2
"#;
    let ov = Overrides {
        runtime: Some("docker".into()),
        scenarios: Some(7),
        actions: Some(8),
        requests: Some(9),
        work: Some("spin:1ms".parse().unwrap()),
        payload: Some(100),
        seed: Some(99),
        image: Some("img:test".into()),
    };
    let s = from_str(text, None, &ov, &catalog()).unwrap();
    assert_eq!(s.seed, Some(99));
    let (a, b) = (&s.groups[0], &s.groups[1]);
    assert_eq!(a.runtime, "docker");
    assert_eq!((a.scenarios, a.actions, a.requests), (7, 8, 9));
    assert_eq!(a.work, "spin:1ms".parse().unwrap());
    assert_eq!(a.payload, Payload { request: 100, response: 100 });
    assert_eq!(a.image.as_deref(), Some("img:test"));

    // Runtime and image flags are also the default of later groups that do not set their own
    // (so a whole file can be moved to Docker); the counts and work stay first-group only.
    assert_eq!(b.runtime, "docker");
    assert_eq!(b.image.as_deref(), Some("img:test"));
    assert_eq!((b.scenarios, b.actions, b.requests), (2, 1, 10));
    assert_eq!(b.work, "sleep:10ms".parse().unwrap());
}

#[test]
fn an_override_replaces_an_invalid_file_value() {
    let s =
        from_str("[[group]]\nscenarios = 0\n", None, &Overrides { scenarios: Some(2), ..Default::default() }, &catalog())
            .unwrap();
    assert_eq!(s.groups[0].scenarios, 2);
}

#[test]
fn an_invalid_override_names_the_flag() {
    let err = invalid("[[group]]\n", &Overrides { actions: Some(0), ..Default::default() });
    assert_eq!(err.to_string(), "t.toml: --actions: must be at least 1, got 0");

    let err =
        from_cli(&Overrides { scenarios: Some(0), payload: Some(MAX_PAYLOAD + 1), ..Default::default() }, &catalog())
            .unwrap_err();
    let fields: Vec<&str> = err.problems().iter().map(|p| p.field.as_str()).collect();
    assert_eq!(fields, vec![flags::SCENARIOS, flags::PAYLOAD]);
    assert!(err
        .to_string()
        .starts_with("--scenarios: must be at least 1, got 0\n--payload: must be at most 16 MiB"));
}

#[test]
fn an_override_is_checked_against_the_rest_of_the_file() {
    // --requests 3 makes the file's burst of 5 and its step at 4 impossible: both are reported
    // at their lines, and say the limit came from the flag.
    let text = r#"[[group]]
arrivals = { mode = "open", iat = "10ms", burst = 5 }
steps = [{ kind = "pause", after_requests = 4, duration = "1s" }]
"#;
    let err = invalid(text, &Overrides { requests: Some(3), ..Default::default() });
    let shown = err.to_string();
    assert_eq!(
        shown.lines().collect::<Vec<_>>(),
        vec![
            "t.toml:2: group[0].arrivals.burst: must be at most requests (3, set by --requests), got 5: a burst is part of one action's N requests",
            "t.toml:3: group[0].steps[0].after_requests: must be less than requests (3, set by --requests), got 4: a pause after the last response has no next response to measure resume_latency with",
        ]
    );
}

#[test]
fn from_cli_builds_one_group() {
    let s = from_cli(
        &Overrides { scenarios: Some(2), work: Some("spin:5ms".parse().unwrap()), seed: Some(3), ..Default::default() },
        &catalog(),
    )
    .unwrap();
    assert_eq!((s.name.as_str(), s.seed, s.groups.len()), ("cli", Some(3), 1));
    let g = &s.groups[0];
    assert_eq!((g.name.as_str(), g.scenarios, g.actions, g.requests), ("cli", 2, 1, 10));
    assert_eq!(g.work.to_string(), "spin:5ms");
}

#[test]
fn open_loop_with_one_shot_is_allowed() {
    let text =
        "[[group]]\nlifecycle = \"one_shot\"\narrivals = { mode = \"open\", iat = \"10ms\", burst = 2 }\n";
    let s = from_str(text, None, &Overrides::default(), &catalog()).unwrap();
    assert_eq!(s.groups[0].lifecycle, Lifecycle::OneShot);
}

#[test]
fn options_of_an_unused_runtime_are_accepted() {
    let text = "[[group]]\nruntime = \"process\"\nswarm = { network = \"overlay\" }\ndocker = { network = \"bridge\" }\n";
    assert!(from_str(text, None, &Overrides::default(), &catalog()).is_ok());
}

#[test]
fn the_replicated_swarm_mapping_is_refused_with_the_reason() {
    let text = "[[group]]\nruntime = \"swarm\"\nswarm = { mapping = \"replicated_service\" }\n";
    let e = from_str(text, None, &Overrides::default(), &catalog()).unwrap_err();
    assert_eq!(e.line(), Some(3));
    assert_eq!(e.field(), Some("group[0].swarm.mapping"));
    assert!(e.to_string().contains("service_per_action"), "{e}");
}

#[test]
fn lines_inside_multi_line_arrays_are_exact() {
    let text = r#"[[group]]
actions = 2
steps = [
  { kind = "kill", after_requests = 1, actions = [0] },
  { kind = "kill", after_requests = 2, actions = [1, 5] },
]
"#;
    let err = invalid(text, &Overrides::default());
    assert_eq!(err.line(), Some(5));
    assert_eq!(err.field(), Some("group[0].steps[1].actions[1]"));
}

#[test]
fn runtime_and_image_flags_become_the_default_of_later_groups_that_do_not_pin_them() {
    let text = "[[group]]\nname = \"a\"\n[[group]]\nname = \"b\"\n[[group]]\nname = \"c\"\nruntime = \"process\"\nimage = \"x:1\"\n";
    let ov = stampede_core::scenario::Overrides {
        runtime: Some("docker".into()),
        image: Some("stampede:test".into()),
        scenarios: Some(3),
        ..Default::default()
    };
    let sc = stampede_core::scenario::from_str(text, None, &ov, &catalog()).unwrap();
    let kinds: Vec<_> = sc.groups.iter().map(|g| g.runtime.as_str()).collect();
    assert_eq!(kinds, vec!["docker", "docker", "process"]);
    assert_eq!(sc.groups[1].image.as_deref(), Some("stampede:test"));
    assert_eq!(sc.groups[2].image.as_deref(), Some("x:1"));
    // Counts stay first-group only.
    assert_eq!(sc.groups.iter().map(|g| g.scenarios).collect::<Vec<_>>(), vec![3, 1, 1]);
}

#[test]
fn a_pause_step_on_a_runtime_that_cannot_pause_is_refused_at_its_line() {
    // A catalog whose docker runtime cannot pause (as Kubernetes and Mesos cannot): the check
    // is the parser's, from capabilities alone — no runtime is contacted.
    #[derive(Clone)]
    struct NoPause(stampede_docker::DockerProvider);
    impl RuntimeInfo for NoPause {
        fn name(&self) -> &'static str {
            "nopause"
        }
        fn capabilities(&self) -> Capabilities {
            Capabilities { pause_resume: false, kill: false, ..self.0.capabilities() }
        }
        fn read_options(&self, t: &mut OptionsTable<'_>) -> serde_json::Value {
            self.0.read_options(t)
        }
        fn default_options(&self) -> serde_json::Value {
            self.0.default_options()
        }
    }
    #[async_trait::async_trait]
    impl stampede_runtime::RuntimeProvider for NoPause {
        async fn connect(&self, _: &serde_json::Value) -> Result<std::sync::Arc<dyn stampede_runtime::Runtime>, stampede_runtime::RuntimeError> {
            unreachable!("the parser never connects")
        }
        async fn clean(&self, _: Option<&str>) -> Result<Option<usize>, stampede_runtime::RuntimeError> {
            Ok(None)
        }
    }
    let registry = catalog().with(NoPause(stampede_docker::DockerProvider));
    let text = "[[group]]\nruntime = \"nopause\"\nrequests = 4\n[[group.steps]]\nkind = \"pause\"\nafter_requests = 1\nduration = \"1s\"\n[[group.steps]]\nkind = \"kill\"\nafter_requests = 2\n";
    let err = from_str(text, Some(Path::new("t.toml")), &Overrides::default(), &registry).unwrap_err();
    let lines: Vec<String> = err.to_string().lines().map(str::to_owned).collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(lines[0].starts_with("t.toml:5: group[0].steps[0].kind: group \"group-0\" runs its actions on the nopause runtime (set at line 2), which cannot pause and resume instances"), "{}", lines[0]);
    assert!(lines[1].starts_with("t.toml:9: group[0].steps[1].kind:"), "{}", lines[1]);
    assert!(lines[1].contains("cannot kill one instance"), "{}", lines[1]);
}

#[test]
fn pause_and_kill_steps_are_refused_when_swarm_actions_spread_over_nodes() {
    let text = "[[group]]\nruntime = \"swarm\"\nrequests = 4\nswarm = { actions = \"spread\" }\n[[group.steps]]\nkind = \"pause\"\n\
                after_requests = 1\nduration = \"1s\"\n[[group.steps]]\nkind = \"kill\"\nafter_requests = 2\n";
    let err = from_str(text, Some(Path::new("t.toml")), &Overrides::default(), &catalog()).unwrap_err();
    let lines: Vec<String> = err.to_string().lines().map(str::to_owned).collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(lines[0].starts_with("t.toml:6: group[0].steps[0].kind: group \"group-0\" runs its actions on the swarm runtime"), "{}", lines[0]);
    for l in &lines {
        assert!(l.contains("actions = \"spread\"") && l.contains("with_scenario"), "names the option and the fix: {l}");
    }
    // The default placement keeps them.
    let kept = text.replace("swarm = { actions = \"spread\" }\n", "");
    assert!(from_str(&kept, None, &Overrides::default(), &catalog()).is_ok());
}

#[test]
fn an_unknown_runtime_lists_the_catalog() {
    let err = invalid("[[group]]\nruntime = \"nomad\"\n", &Overrides::default());
    assert_eq!(err.field(), Some("group[0].runtime"));
    assert!(err.to_string().contains(r#"must be one of "process", "docker", "swarm", "kubernetes", "mesos", got "nomad""#), "{err}");
    let err = invalid("[[group]]\n", &Overrides { runtime: Some("nomad".into()), ..Default::default() });
    assert!(err.to_string().contains("--runtime: unknown runtime \"nomad\"; allowed: process, docker, swarm, kubernetes, mesos"), "{err}");
}

#[test]
fn hold_all_ready_is_refused_with_one_shot_and_churn() {
    let err = invalid("[[group]]\nhold = \"all_ready\"\nlifecycle = \"one_shot\"\n", &Overrides::default());
    assert_eq!((err.line(), err.field()), (Some(2), Some("group[0].hold")));
    assert!(err.to_string().contains("one_shot"), "{err}");
    let err = invalid("[[group]]\nhold = \"all_ready\"\nchurn = { cycles = 2 }\n", &Overrides::default());
    assert!(err.to_string().contains("churn"), "{err}");
    let s = from_str("[[group]]\nhold = \"all_ready\"\n", None, &Overrides::default(), &catalog()).unwrap();
    assert_eq!(s.groups[0].hold, Hold::AllReady);
    let err = invalid("[[group]]\nhold = \"some\"\n", &Overrides::default());
    assert!(err.to_string().contains(r#"must be one of "none", "all_ready""#), "{err}");
}

#[test]
fn more_containers_than_one_bridge_holds_are_refused_with_the_fix() {
    let err = invalid("[[group]]\nruntime = \"docker\"\nscenarios = 2\nactions = 600\ndocker = { network = \"bridge\" }\n", &Overrides::default());
    assert_eq!((err.line(), err.field()), (Some(4), Some("group[0].actions")));
    assert!(err.to_string().contains("1202 containers on Docker's default bridge, which holds at most 1023"), "{err}");
    assert!(err.to_string().contains("per_scenario"), "{err}");
    // One bridge per scenario holds it; host networking has no bridge at all.
    let ok = "[[group]]\nruntime = \"docker\"\nscenarios = 2\nactions = 600\ndocker = { network = \"per_scenario\" }\n";
    assert!(from_str(ok, None, &Overrides::default(), &catalog()).is_ok());
    let err = invalid("[[group]]\nruntime = \"swarm\"\nscenarios = 2\nactions = 200\nswarm = { network = \"overlay\" }\n", &Overrides::default());
    assert!(err.to_string().contains("402 tasks on the run's overlay network"), "{err}");
}
