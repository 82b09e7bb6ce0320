//! Each limit of `scenario::limits`: the value at the limit is accepted, one past it is refused
//! at the line and field to change, with a message naming the limit. And each scenario that
//! used to pass validation and then panic a tier, refused now.

use std::path::Path;
use std::time::Duration;

use stampede_core::scenario::limits::*;
use stampede_core::scenario::*;
use stampede_core::schedule::{draw_duration, rng_for, MAX_DRAW};


fn parse(text: &str, ov: &Overrides) -> Result<Scenario, ScenarioError> {
    from_str(text, Some(Path::new("t.toml")), ov, &NoRuntimes)
}

fn accepted(text: &str) -> Scenario {
    parse(text, &Overrides::default()).unwrap_or_else(|e| panic!("{text}\nwas refused: {e}"))
}

/// The first problem is at `line` and `field` and says `message`.
fn refused(text: &str, line: Option<usize>, field: &str, message: &str) {
    refused_with(text, &Overrides::default(), line, field, message)
}

fn refused_with(text: &str, ov: &Overrides, line: Option<usize>, field: &str, message: &str) {
    let e = match parse(text, ov) {
        Ok(_) => panic!("{text}\nwas accepted; expected: {message}"),
        Err(e) => e,
    };
    let p = &e.problems()[0];
    assert!(
        p.line == line && p.field == field && p.message.contains(message),
        "{text}\nwant line {line:?}, field {field}, message containing {message:?}\ngot  {e}"
    );
}

// ---- what used to panic after validation ------------------------------------------------

#[test]
fn a_lognormal_whose_mean_overflows_is_refused_at_sigma() {
    // Accepted before; the driver's ideal_duration() then panicked in Duration::mul_f64.
    let text =
        "[[group]]\nwork = { kind = \"sleep\", duration = { dist = \"lognormal\", median = \"10ms\", sigma = 40 } }\n";
    refused(text, Some(2), "group[0].work.duration.sigma", "more than the limit of 8760h (365 days)");
    // The largest sigma a 10ms median allows: e^(σ²/2) ≤ 365 days / 10 ms.
    let sigma = (2.0 * (MAX_DURATION.as_secs_f64() / 0.010).ln()).sqrt() - 1e-9;
    accepted(&format!(
        "[[group]]\nrequests = 1\nwork = {{ kind = \"sleep\", duration = {{ dist = \"lognormal\", median = \"10ms\", sigma = {sigma} }} }}\n"
    ));
}

#[test]
fn n_times_a_long_work_duration_is_refused() {
    // Accepted before (4e9 × 5e6 h); the driver's ideal_duration() panicked.
    refused_with(
        "[[group]]\nwork = \"sleep:1000h\"\n",
        &Overrides { requests: Some(9), ..Default::default() },
        Some(2),
        "group[0].work",
        "requests × mean work duration = 9 × ",
    );
    let s = accepted("[[group]]\nrequests = 8760\nwork = \"sleep:1h\"\n");
    assert_eq!(s.groups[0].ideal_duration(), MAX_DURATION);
}

#[test]
fn the_runs_start_rate_split_among_its_scenarios_must_stay_a_duration() {
    // Accepted before: qps 1e-19 passed (1/qps fits a Duration), and qps / S in the tiers' rate
    // limiter did not (Duration::from_secs_f64 panicked).
    refused("start_rate = { qps = 1e-19 }\n[[group]]\n", Some(1), "start_rate.qps", "is too small");
    // Each of 4 scenarios gets a launch per 4e7 s, over 365 days.
    refused(
        "start_rate = { qps = 1e-7 }\n[[group]]\nscenarios = 4\n",
        Some(1),
        "start_rate",
        "split evenly among the run's 4 scenario instances",
    );
    accepted("start_rate = { qps = 1e-7 }\n[[group]]\nscenarios = 3\n");
}

#[test]
fn a_huge_request_count_is_refused_before_its_schedule_is_allocated() {
    // Accepted before: u32::MAX requests aborted on allocating the action's schedule.
    refused("[[group]]\nrequests = 4294967295\n", Some(2), "group[0].requests", "must be at most 16777216");
    refused_with(
        "[[group]]\n",
        &Overrides { requests: Some(MAX_REQUESTS + 1), ..Default::default() },
        None,
        "--requests",
        "must be at most 16777216",
    );
    let text = format!("[[group]]\nrequests = {MAX_REQUESTS}\n");
    assert_eq!(accepted(&text).groups[0].requests, MAX_REQUESTS);
}

#[test]
fn draws_are_cut_at_max_draw_even_for_an_unvalidated_model() {
    // A lognormal tail saturated at Duration::MAX, and Instant + Duration::MAX panics.
    let dist = DurationDist::Lognormal { median: Duration::from_secs(3600), sigma: 30.0 };
    let mut rng = rng_for(1, 0, 0, 0);
    let max = (0..1000).map(|_| draw_duration(&dist, &mut rng)).max().unwrap();
    assert_eq!(max, MAX_DRAW);
    assert!(std::time::Instant::now().checked_add(max).is_some());
    // And the mean saturates instead of panicking.
    assert_eq!(dist.mean(), Duration::MAX);
}

// ---- every limit ------------------------------------------------------------------------

#[test]
fn durations_are_at_most_365_days() {
    accepted("timeout = \"8760h\"\n[[group]]\n");
    refused("timeout = \"8761h\"\n[[group]]\n", Some(1), "timeout", "the limit is 8760h (365 days)");
    refused("[[group]]\nstart_delay = \"525601m\"\n", Some(2), "group[0].start_delay", "the limit is 8760h");
    assert!("sleep:8761h".parse::<Work>().unwrap_err().contains("the limit is 8760h"));
}

#[test]
fn an_open_loop_schedule_spans_at_most_365_days() {
    // 8761 bursts of one request, an hour apart: 8760 h.
    accepted("[[group]]\nrequests = 8761\narrivals = { mode = \"open\", iat = \"1h\" }\n");
    refused(
        "[[group]]\nrequests = 8762\narrivals = { mode = \"open\", iat = \"1h\" }\n",
        Some(3),
        "group[0].arrivals",
        "the open-loop schedule of one action spans 8761 inter-arrival times",
    );
    // Bursts share a time: the same requests in bursts of 2 span half as long.
    accepted("[[group]]\nrequests = 8762\narrivals = { mode = \"open\", iat = \"1h\", burst = 2 }\n");
}

#[test]
fn requests_per_scenario_instance_are_at_most_2_pow_24() {
    accepted("[[group]]\nactions = 4\nrequests = 4194304\nwork = \"sleep:0ms\"\n");
    refused(
        "[[group]]\nactions = 5\nrequests = 4194304\nwork = \"sleep:0ms\"\n",
        Some(3),
        "group[0].requests",
        "actions × requests = 5 × 4194304 = 20971520 requests for each scenario instance, more than the limit of 16777216",
    );
    // The eviction probe is one more request per action.
    refused(
        &format!(
            "[[group]]\nactions = 1\nrequests = {MAX_REQUESTS}\nwork = \"sleep:0ms\"\nlifecycle = {{ mode = \"eviction_probe\", idle = \"1s\" }}\n"
        ),
        Some(3),
        "group[0].requests",
        "+ 1 (the probe)",
    );
}

#[test]
fn requests_of_a_run_are_at_most_2_pow_32() {
    let group = |s: u32| format!("[[group]]\nscenarios = {s}\nrequests = {MAX_REQUESTS}\nwork = \"sleep:0ms\"\n");
    accepted(&[group(200), group(56)].concat());
    let text = [group(200), group(57)].concat();
    refused(&text, Some(7), "group[1].requests", "the run sends 4311744512 requests up to this group");
    // Churn cycles multiply them.
    refused(
        "[[group]]\nscenarios = 2\nrequests = 16777216\nwork = \"sleep:0ms\"\nchurn = { cycles = 129 }\n",
        Some(3),
        "group[0].requests",
        "more than the limit of 4294967296",
    );
}

#[test]
fn instances_of_a_run_are_at_most_2_pow_24() {
    // 4096 + 4096 × 4095 = 2^24.
    accepted("[[group]]\nscenarios = 4096\nactions = 4095\nrequests = 1\n");
    refused(
        "[[group]]\nscenarios = 4096\nactions = 4096\nrequests = 1\n",
        Some(2),
        "group[0].scenarios",
        "the run starts 16781312 instances up to this group",
    );
    // One-shot: an instance per request.
    refused(
        "[[group]]\nactions = 2\nrequests = 8388608\nlifecycle = \"one_shot\"\nwork = \"sleep:0ms\"\n",
        Some(2),
        "group[0].actions",
        "more than the limit of 16777216",
    );
    refused_with(
        "[[group]]\n",
        &Overrides { scenarios: Some(u32::MAX), ..Default::default() },
        None,
        "--scenarios",
        "the run starts",
    );
    refused("[[group]]\nstart_concurrency = 16777217\n", Some(2), "group[0].start_concurrency", "at most 16777216");
    refused(
        "[[group]]\nstart_rate = { qps = 1, burst = 16777217 }\n",
        Some(2),
        "group[0].start_rate.burst",
        "at most 16777216",
    );
}

#[test]
fn payload_in_flight_is_at_most_4_gib() {
    // 128 actions × 32 MiB = 4 GiB.
    accepted(&format!("[[group]]\nactions = 128\npayload = {MAX_PAYLOAD}\n"));
    refused(
        &format!("[[group]]\nactions = 129\npayload = {MAX_PAYLOAD}\n"),
        Some(3),
        "group[0].payload",
        "= 4328521728 bytes in flight in one scenario instance, more than the limit of 4294967296 (4 GiB)",
    );
    refused(
        &format!(
            "[[group]]\nrequests = 300\npayload = {{ request = {MAX_PAYLOAD}, response = 0 }}\narrivals = {{ mode = \"open\", iat = \"1s\", burst = 257 }}\n"
        ),
        Some(3),
        "group[0].payload",
        "1 × 257 × 16777216",
    );
}

#[test]
fn groups_steps_and_listed_actions_are_counted_before_they_are_read() {
    accepted(&"[[group]]\n".repeat(MAX_GROUPS));
    refused(&"[[group]]\n".repeat(MAX_GROUPS + 1), Some(1), "group", "at most 1000 groups, got 1001");

    let steps = |n: usize| {
        let step = "[[group.steps]]\nkind = \"pause\"\nafter_requests = 0\nduration = \"1ms\"\nactions = [0]\n";
        format!("[[group]]\nrequests = 2000\nactions = 1\n{}", step.repeat(n))
            .replace("after_requests = 0", "after_requests = N")
    };
    // Each pause its own after_requests, so the steps are valid together.
    let numbered = |n: usize| {
        let mut text = steps(n);
        for i in 0..n {
            text = text.replacen("after_requests = N", &format!("after_requests = {i}"), 1);
        }
        text
    };
    accepted(&numbered(MAX_STEPS));
    refused(&numbered(MAX_STEPS + 1), Some(4), "group[0].steps", "at most 1000 steps, got 1001");

    let list = |n: usize| (0..n).map(|i| i.to_string()).collect::<Vec<_>>().join(",");
    let one = |n: usize| {
        format!(
            "[[group]]\nactions = {n}\n[[group.steps]]\nkind = \"kill\"\nafter_requests = 1\nactions = [{}]\n",
            list(n)
        )
    };
    accepted(&one(MAX_STEP_INDICES));
    refused(
        &one(MAX_STEP_INDICES + 1),
        Some(6),
        "group[0].steps[0].actions",
        "at most 100000 action indices, got 100001",
    );
    // Together: two lists of 60,000.
    let two = format!(
        "[[group]]\nactions = 60000\n[[group.steps]]\nkind = \"pause\"\nafter_requests = 1\nduration = \"1ms\"\nactions = [{0}]\n[[group.steps]]\nkind = \"pause\"\nafter_requests = 2\nduration = \"1ms\"\nactions = [{0}]\n",
        list(60_000)
    );
    refused(&two, Some(3), "group[0].steps", "at most 100000 action indices in all, got 120000");
}

#[test]
fn two_long_disjoint_step_lists_are_checked_quickly() {
    // Compared pairwise, two lists of 50,000 were 2.5e9 comparisons.
    let (evens, odds): (Vec<u32>, Vec<u32>) = (0..100_000).partition(|i| i % 2 == 0);
    let text = |v: &[u32]| v.iter().map(u32::to_string).collect::<Vec<_>>().join(",");
    let file = format!(
        "[[group]]\nactions = 100000\nrequests = 10\n[[group.steps]]\nkind = \"kill\"\nafter_requests = 1\nactions = [{}]\n[[group.steps]]\nkind = \"kill\"\nafter_requests = 2\nactions = [{}]\n",
        text(&evens),
        text(&odds)
    );
    let t0 = std::time::Instant::now();
    accepted(&file);
    assert!(t0.elapsed() < Duration::from_secs(10), "{:?}", t0.elapsed());
}

#[test]
fn strings_are_at_most_4096_bytes() {
    accepted(&format!("[[group]]\nimage = \"{}\"\n", "a".repeat(MAX_STRING_BYTES)));
    refused(
        &format!("[[group]]\nimage = \"{}\"\n", "a".repeat(MAX_STRING_BYTES + 1)),
        Some(2),
        "group[0].image",
        "must be at most 4096 bytes long, got 4097",
    );
    refused_with(
        "[[group]]\n",
        &Overrides { image: Some("a".repeat(MAX_STRING_BYTES + 1)), ..Default::default() },
        None,
        "--image",
        "must be at most 4096 bytes long",
    );
}

#[test]
fn a_file_over_1_mib_is_refused_without_reading_it_whole() {
    let dir = std::env::temp_dir().join(format!("stampede-limits-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("big.toml");
    // Valid TOML to the end: only the size is wrong.
    let mut text = "[[group]]\n".to_owned();
    text.push_str(&"#".repeat(MAX_FILE_BYTES as usize - text.len()));
    std::fs::write(&path, &text).unwrap();
    load_file(&path, &Overrides::default(), &NoRuntimes).unwrap();
    text.push('#');
    std::fs::write(&path, &text).unwrap();
    let e = load_file(&path, &Overrides::default(), &NoRuntimes).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("{}: the file is larger than 1048576 bytes (1 MiB), the limit of a scenario file", path.display())
    );
    std::fs::remove_dir_all(&dir).unwrap();
    // An endless file ends the same way.
    if Path::new("/dev/zero").exists() {
        let e = load_file(Path::new("/dev/zero"), &Overrides::default(), &NoRuntimes).unwrap_err();
        assert!(e.to_string().contains("the file is larger than"), "{e}");
    }
}
