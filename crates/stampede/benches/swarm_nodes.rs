//! Swarm starts per second on 1, 2 and 3 nodes of this machine, in one run.
//!
//!     cargo bench -p stampede --bench swarm_nodes             # 30 actions per node, as root
//!     STAMPEDE_BENCH_A=50 cargo bench -p stampede --bench swarm_nodes
//!
//! The nodes are `scripts/swarm-cluster`'s (network namespaces, one dockerd each; brought up
//! here and taken down again if it was not up before). Each point runs one scenario per node
//! with A actions each (`hold = "all_ready"`, so no teardown competes with the starts), placed
//! on the first k nodes by a node label, with the static binary in `$STAMPEDE_BIN` (default:
//! the release build) and the image `stampede:latest` copied onto every node.
//!
//! All nodes share this machine's cores, so more nodes cannot start more containers per second
//! in total; what the figures show is whether stampede serialises anything per run: with k
//! nodes each node should start about 1/k of the one-node rate (its engine gets 1/k of the
//! CPU), and the total should stay near the one-node rate. A total falling well below it would
//! mean a queue in stampede (one driver, one manager API) rather than in the engines.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let per_node: u32 = std::env::var("STAMPEDE_BENCH_A").ok().and_then(|v| v.parse().ok()).unwrap_or(30);
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let script = root.join("scripts/swarm-cluster");
    let bin = std::env::var_os("STAMPEDE_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target/x86_64-unknown-linux-gnu/release/stampede"));
    let was_up = Command::new(&script).arg("status").output().is_ok_and(|o| o.status.success());
    let env = cluster_env(&script);
    must(Command::new(&script).args(["load", "stampede:latest"]));
    let manager = format!("unix://{}", env["MANAGER_SOCK"]);

    println!("swarm_nodes: one scenario per node, {per_node} actions each, host networking, held until all are ready");
    println!("  nodes   actions   total starts/s   per node starts/s        total vs 1 node");
    let mut base = None;
    for k in 1..=3u32 {
        for n in 1..=3u32 {
            let on = if n <= k { "on" } else { "off" };
            let id = &env[&format!("NODE{n}_ID")];
            must(Command::new("docker").args(["-H", &manager, "node", "update", "--label-add", &format!("stampede.bench={on}"), id]));
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("bench.toml");
        std::fs::write(
            &file,
            format!(
                "name = \"swarm-nodes-{k}\"\n[[group]]\nname = \"g\"\nruntime = \"swarm\"\nscenarios = {k}\nactions = {per_node}\n\
                 requests = 1\nwork = \"sleep:1ms\"\nhold = \"all_ready\"\n\
                 swarm = {{ placement = [\"node.labels.stampede.bench==on\"] }}\n"
            ),
        )
        .expect("write the scenario");
        let out = dir.path().join("r");
        let o = Command::new(&bin)
            .args(["run", file.to_str().unwrap(), "--advertise", &env["HOST_ADDR"], "--out", out.to_str().unwrap()])
            .env("DOCKER_HOST", format!("unix://{}", env["ENGINE_SOCK"]))
            .output()
            .expect("run stampede");
        assert!(o.status.success(), "the {k}-node run failed:\n{}", String::from_utf8_lossy(&o.stderr));
        let (total, nodes) = action_rates(&out.join("instances.csv"));
        let base = *base.get_or_insert(total);
        let per: Vec<String> = nodes.iter().map(|(n, r)| format!("{n} {r:.1}")).collect();
        println!("  {k:>5}   {:>7}   {total:>14.1}   {:<24} {:>6.2}", k * per_node, per.join(", "), total / base);
    }
    for n in 1..=3u32 {
        let id = &env[&format!("NODE{n}_ID")];
        let _ = Command::new("docker").args(["-H", &manager, "node", "update", "--label-rm", "stampede.bench", id]).output();
    }
    if !was_up {
        must(Command::new(&script).arg("down"));
    }
}

fn must(c: &mut Command) -> std::process::Output {
    let o = c.output().unwrap_or_else(|e| panic!("{c:?}: {e}"));
    assert!(o.status.success(), "{c:?} failed (as root?):\n{}", String::from_utf8_lossy(&o.stderr));
    o
}

/// `swarm-cluster up`'s KEY=VALUE lines.
fn cluster_env(script: &Path) -> BTreeMap<String, String> {
    let o = must(Command::new(script).arg("up"));
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// Actions ready per second over the run's start span (first launch call to last ready), and
/// the same per node over that node's own span.
fn action_rates(csv: &Path) -> (f64, BTreeMap<String, f64>) {
    let text = std::fs::read_to_string(csv).expect("instances.csv");
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().expect("a header").split(',').collect();
    let col = |name: &str| header.iter().position(|c| *c == name).unwrap_or_else(|| panic!("no column {name}"));
    let (role, node, req, ready) = (col("role"), col("node"), col("requested_us"), col("ready_us"));
    let mut spans: BTreeMap<String, (i64, i64, u32)> = BTreeMap::new();
    let mut all = (i64::MAX, i64::MIN, 0u32);
    for l in lines {
        let f: Vec<&str> = l.split(',').collect();
        let (Ok(a), Ok(b)) = (f[req].parse::<i64>(), f[ready].parse::<i64>()) else { continue };
        if f[role] != "action" {
            continue;
        }
        let e = spans.entry(f[node].to_owned()).or_insert((i64::MAX, i64::MIN, 0));
        for s in [e, &mut all] {
            s.0 = s.0.min(a);
            s.1 = s.1.max(b);
            s.2 += 1;
        }
    }
    let rate = |(a, b, n): (i64, i64, u32)| f64::from(n) / ((b - a) as f64 / 1e6);
    (rate(all), spans.into_iter().map(|(k, v)| (k, rate(v))).collect())
}
