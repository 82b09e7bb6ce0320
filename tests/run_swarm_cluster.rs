//! End-to-end runs on a real three-node swarm built on this machine by `scripts/swarm-cluster`
//! (one dockerd per network namespace, every node a manager; see that script's header).
//!
//! The tests bring the cluster up themselves (`swarm-cluster up` is idempotent and takes a few
//! seconds) and copy `stampede:latest` onto every node; they leave it up, for the next test and
//! for a look afterwards: `scripts/test` takes it down at its end, `scripts/swarm-cluster down`
//! does by hand. They are `#[ignore]`d by plain `cargo test` because they need root, and
//! `scripts/test` runs them; without root or the tools the cluster needs they fail, saying why.
//!
//! The driver runs on the host, outside the swarm: it talks to the manager through the
//! cluster's ENGINE_SOCK and advertises the host's address on the cluster bridge (HOST_ADDR).

mod common;

use common::*;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The cluster's KEY=VALUE description (`$STAMPEDE_SWARM_ROOT/env`).
struct Cluster {
    env: BTreeMap<String, String>,
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/swarm-cluster")
}

fn swarm_cluster(args: &[&str]) -> Output {
    let o = Command::new(script()).args(args).output().expect("run scripts/swarm-cluster");
    assert!(
        o.status.success(),
        "scripts/swarm-cluster {args:?} failed (it needs root, iproute2, iptables and dockerd):\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

/// The cluster, up, with the image on every node (once per test binary).
fn cluster() -> &'static Cluster {
    static CLUSTER: OnceLock<Cluster> = OnceLock::new();
    CLUSTER.get_or_init(|| {
        let up = swarm_cluster(&["up"]);
        let env = String::from_utf8_lossy(&up.stdout)
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        // The image of the host's engine (scripts/test builds it), saved and loaded on each node.
        swarm_cluster(&["load", IMAGE]);
        Cluster { env }
    })
}

impl Cluster {
    fn get(&self, key: &str) -> &str {
        self.env.get(key).unwrap_or_else(|| panic!("swarm-cluster up printed no {key}"))
    }

    /// `docker ARGS` against node `n`'s own engine.
    fn docker(&self, n: u32, args: &[&str]) -> String {
        let host = format!("unix://{}", self.get(&format!("NODE{n}_SOCK")));
        let o = Command::new("docker").arg("-H").arg(&host).args(args).output().expect("the docker CLI");
        assert!(o.status.success(), "docker -H {host} {args:?}: {}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    fn node_names(&self) -> BTreeSet<String> {
        (1..=3).map(|n| self.get(&format!("NODE{n}_NAME")).to_owned()).collect()
    }

    /// `stampede ARGS` as a driver on the host: the manager's API, the host's bridge address.
    fn stampede(&self, args: &[&str]) -> Command {
        let mut c = stampede(args);
        c.env("DOCKER_HOST", format!("unix://{}", self.get("ENGINE_SOCK")));
        c
    }

    /// Containers of run `run` on node `n` (any state).
    fn containers(&self, n: u32, run: &str) -> usize {
        self.docker(n, &["ps", "-aq", "--filter", &format!("label=stampede.run={run}")]).lines().count()
    }

    /// Within 30 s (each node's agent removes a deleted service's containers on its own), no
    /// container of the run on nodes `nodes`, and no service of it.
    fn assert_nothing_left(&self, run: &str, nodes: &[u32]) {
        for &n in nodes {
            wait_until(Duration::from_secs(30), &format!("no container of run {run} on node {n}"), || {
                (self.containers(n, run) == 0).then_some(())
            });
        }
        let services = self.docker(1, &["service", "ls", "-q", "--filter", &format!("label=stampede.run={run}")]);
        assert!(services.trim().is_empty(), "services of run {run} left: {services}");
    }
}

/// A scenario file of one swarm group, written to `dir`.
fn scenario_file(dir: &Path, [s, a, n]: [u32; 3], work: &str, swarm: &str) -> PathBuf {
    let path = dir.join("scenario.toml");
    let text = format!(
        "name = \"multi-node\"\n[[group]]\nname = \"g\"\nruntime = \"swarm\"\nscenarios = {s}\nactions = {a}\n\
         requests = {n}\nwork = \"{work}\"\nswarm = {swarm}\n"
    );
    std::fs::write(&path, text).expect("write the scenario file");
    path
}

/// instances.csv as maps of column → value.
fn instances(out: &Path) -> Vec<BTreeMap<String, String>> {
    let rows = csv_rows(&out.join("instances.csv"));
    rows[1..].iter().map(|r| rows[0].iter().cloned().zip(r.iter().cloned()).collect()).collect()
}

/// The node of each scenario, by scenario index.
fn scenario_nodes(rows: &[BTreeMap<String, String>]) -> BTreeMap<String, String> {
    rows.iter().filter(|r| r["role"] == "scenario").map(|r| (r["scenario"].clone(), r["node"].clone())).collect()
}

/// One run over three nodes, with `swarm` as the group's swarm table, checked for what every
/// multi-node run must show; returns how many actions ran on another node than their scenario.
fn run_over_three_nodes(swarm: &str) -> usize {
    let _serial = serial();
    let c = cluster();
    let dir = tempdir();
    let out = dir.path().join("r");
    let file = scenario_file(dir.path(), [3, 10, 10], "sleep:10ms", swarm);
    let args = ["run", file.to_str().unwrap(), "--advertise", c.get("HOST_ADDR"), "--out", out.to_str().unwrap()];
    let o = c.stampede(&args).output().expect("run stampede");
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "stderr:\n{stderr}");
    let r = results(&out);
    let acc = &r["accounting"];
    assert_balanced(acc);
    assert_eq!((acc["instances_requested"].as_u64(), acc["instances_ready"].as_u64()), (Some(33), Some(33)), "{acc}");
    assert_eq!((acc["requests_ok"].as_u64(), acc["requests_planned"].as_u64()), (Some(300), Some(300)), "{acc}");
    assert_eq!(r["environment"]["runtime_options"]["g"]["driver_address"], c.get("HOST_ADDR"));

    // The per-node breakdown: in results.json, the summary and the report.
    let per_node = r["nodes"].as_array().expect("results.nodes");
    assert_eq!(per_node.len(), 3, "{per_node:?}");
    assert_eq!(per_node.iter().map(|n| n["instances"].as_u64().unwrap()).sum::<u64>(), 33, "{per_node:?}");
    assert!(per_node.iter().all(|n| n["ready"] == n["instances"] && n["starts_per_second"].as_f64().unwrap() > 0.0));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.lines().any(|l| l.trim_start().starts_with("nodes ")), "summary has a nodes table:\n{stdout}");
    let html = std::fs::read_to_string(out.join("report.html")).expect("report.html");
    assert!(html.contains("Per node") && html.contains(c.get("NODE3_NAME")), "report has the per-node table");

    let rows = instances(&out);
    let nodes = c.node_names();
    for row in &rows {
        // Host networking: the child's own hostname is its node's, which the swarm named.
        assert!(nodes.contains(&row["node"]), "a node of this cluster: {row:?}");
        assert_eq!(row["hostname"], row["node"], "{row:?}");
    }
    // Each tier dialed where it should: scenarios the driver's advertised address, actions
    // their scenario's node address (host networking), wherever they ran themselves.
    let addr_of = |node: &str| (1..=3).find(|n| c.get(&format!("NODE{n}_NAME")) == node).map(|n| c.get(&format!("NODE{n}_ADDR")));
    let scenario_at = scenario_nodes(&rows);
    for row in &rows {
        let host = row["callback"].trim_start_matches("ws://").split(':').next().unwrap_or_default().to_owned();
        let want = match row["role"].as_str() {
            "scenario" => c.get("HOST_ADDR"),
            _ => addr_of(&scenario_at[&row["scenario"]]).expect("a node address"),
        };
        assert_eq!(host, want, "{row:?}");
    }
    // Spread by the scheduler, one scenario on each node.
    let on: BTreeSet<String> = scenario_nodes(&rows).into_values().collect();
    assert_eq!(on, nodes, "scenarios on every node");
    let run_id = r["run"]["id"].as_str().unwrap();
    c.assert_nothing_left(run_id, &[1, 2, 3]);
    rows.iter().filter(|r| r["role"] == "action" && r["node"] != scenario_at[&r["scenario"]]).count()
}

#[test]
#[ignore = "needs root: builds a three-node swarm from network namespaces (scripts/test runs it)"]
fn actions_spread_over_three_nodes_reach_their_scenarios_on_other_nodes() {
    let away = run_over_three_nodes("{ actions = \"spread\" }");
    assert!(away > 0, "some actions ran on another node than their scenario");
}

#[test]
#[ignore = "needs root: builds a three-node swarm from network namespaces (scripts/test runs it)"]
fn actions_run_on_their_scenarios_node_by_default() {
    assert_eq!(run_over_three_nodes("{}"), 0, "every action on its scenario's node");
}

/// Starts node `n` again when dropped, so a failed assertion leaves the cluster whole.
struct NodeBack(u32);

impl Drop for NodeBack {
    fn drop(&mut self) {
        let _ = Command::new(script()).args(["start-node", &self.0.to_string()]).stdout(Stdio::null()).status();
    }
}

#[test]
#[ignore = "needs root: builds a three-node swarm from network namespaces (scripts/test runs it)"]
fn a_node_stopped_mid_run_fails_its_instances_as_node_lost_and_the_rest_completes() {
    case_node_lost("{}");
}

/// Actions spread: the lost node also held actions of scenarios that survive, which fail them
/// as "node lost" on their own rows.
#[test]
#[ignore = "needs root: builds a three-node swarm from network namespaces (scripts/test runs it)"]
fn a_node_stopped_mid_run_fails_other_nodes_scenarios_actions_on_it_as_node_lost() {
    case_node_lost("{ actions = \"spread\" }");
}

/// A 3×10×150 run (10 s of 100 ms requests per action) with `swarm` as its swarm table; node 3's
/// engine is stopped once 300 requests are answered.
fn case_node_lost(swarm: &str) {
    let _serial = serial();
    let c = cluster();
    let dir = tempdir();
    let file = scenario_file(dir.path(), [3, 10, 150], "sleep:100ms", swarm);
    let (mut child, out, run_id, addr) = start_live_with(
        dir.path(),
        &[file.to_str().unwrap(), "--advertise", c.get("HOST_ADDR")],
        &[("DOCKER_HOST", &format!("unix://{}", c.get("ENGINE_SOCK")))],
    );
    // Mid-work: every action has answered a few requests (30 actions × 10 ms each).
    wait_until(Duration::from_secs(120), "300 answered requests", || (requests_done(&addr)? >= 300.0).then_some(()));

    // Node 1 is where the driver's API is; lose node 3 (every node is a manager here, and two of
    // three keep the quorum).
    let lost = 3;
    let scenarios_there = c
        .docker(lost, &["ps", "-q", "--filter", &format!("label=stampede.run={run_id}"), "--filter", "label=stampede.role=scenario"])
        .lines()
        .count();
    assert!(scenarios_there > 0, "a scenario runs on node {lost}");
    let back = NodeBack(lost);
    let t_loss = Instant::now();
    swarm_cluster(&["stop-node", &lost.to_string()]);
    let status = wait_for(&mut child, Duration::from_secs(120));
    let ended_after = t_loss.elapsed();
    let o = child.wait_with_output().expect("output");
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(status.code(), Some(1), "stderr:\n{stderr}");
    assert!(ended_after < Duration::from_secs(60), "the run ended {ended_after:?} after the node was lost");

    let r = results(&out);
    let acc = &r["accounting"];
    assert_balanced(acc);
    let lost_name = c.get(&format!("NODE{lost}_NAME"));
    let node_lost = format!("node lost: {lost_name} is down");
    let rows = instances(&out);
    // What ran on the lost node failed with it; elsewhere scenarios reported and actions (those
    // of surviving scenarios: a lost scenario's have no rows) answered all 150.
    let (mut lost_scenarios, mut lost_actions) = (0usize, 0usize);
    for row in &rows {
        let scenario = row["role"] == "scenario";
        if row["node"] == lost_name {
            *(if scenario { &mut lost_scenarios } else { &mut lost_actions }) += 1;
            assert_eq!(row["outcome"], "failed", "{row:?}");
            assert!(row["error"].starts_with(&node_lost), "{row:?}");
        } else if scenario {
            assert_eq!(row["outcome"], "ready", "{row:?}");
        } else {
            assert_eq!((row["outcome"].as_str(), row["requests_ok"].as_str()), ("ready", "150"), "{row:?}");
        }
    }
    assert_eq!(lost_scenarios, scenarios_there);
    // A lost scenario takes its actions (wherever they ran) with it, without rows of their own.
    let n = |k: &str| acc[k].as_u64().unwrap();
    assert_eq!(n("instances_failed"), (lost_scenarios * 11 + lost_actions) as u64, "{acc}");
    assert!(n("requests_ok") > 0, "{acc}");
    c.assert_nothing_left(&run_id, &[1, 2]);

    // Back again, the lost node's leftovers go with `stampede clean`.
    drop(back);
    let o = c.stampede(&["clean", "--run", &run_id]).output().expect("stampede clean");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    c.assert_nothing_left(&run_id, &[lost]);
}

#[test]
#[ignore = "needs root: builds a three-node swarm from network namespaces (scripts/test runs it)"]
fn a_run_is_refused_before_it_starts_when_a_node_lacks_the_image() {
    let _serial = serial();
    let c = cluster();
    // An image of its own (so the others stay), built here and loaded onto nodes 1 and 2 only,
    // through `image build --node-host`.
    let tag = "stampede-test:on-two-nodes";
    let build = stampede(&[
        "image",
        "build",
        "--tag",
        tag,
        "--filler-mb",
        "1",
        "--node-host",
        c.get("NODE1_SOCK"),
        "--node-host",
        &format!("unix://{}", c.get("NODE2_SOCK")),
    ])
    .output()
    .expect("stampede image build");
    let said = String::from_utf8_lossy(&build.stdout);
    assert!(build.status.success(), "{said}{}", String::from_utf8_lossy(&build.stderr));
    assert_eq!(said.lines().filter(|l| l.starts_with("loaded ")).count(), 2, "{said}");
    let id = c.docker(2, &["image", "inspect", "--format", "{{.Id}}", tag]);
    assert_eq!(c.docker(1, &["image", "inspect", "--format", "{{.Id}}", tag]), id, "the same ID on every node");

    let dir = tempdir();
    let out = dir.path().join("r");
    let args = ["run", "--runtime", "swarm", "-S", "3", "-A", "2", "-N", "2", "--image", tag];
    let o = c.stampede(&[&args[..], &["--advertise", c.get("HOST_ADDR"), "--out", out.to_str().unwrap()]].concat()).output().unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains(&format!("is not on node(s) {}", c.get("NODE3_NAME"))), "{stderr}");
    // Nothing of a run, and no probe left behind.
    let services = c.docker(1, &["service", "ls", "-q"]);
    assert!(services.trim().is_empty(), "services left: {services}");
    for n in [1, 2] {
        c.docker(n, &["image", "rm", "-f", tag]);
    }
    docker(&["image", "rm", "-f", tag]);
}
