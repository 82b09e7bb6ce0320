//! Records the real HTTP exchanges of the replay tests' script against a real API server.
//!
//! ```sh
//! KUBECONFIG=… cargo run -p stampede-kubernetes --example record -- tests/recordings
//! ```
//!
//! Needs a cluster whose node has the image `stampede:k8s` loaded (run with
//! `image_pull_policy = Never`) and less than 1000 CPUs. It starts a proxy on 127.0.0.1 that
//! forwards every request through a kube-rs client built from your kubeconfig (TLS and
//! credentials stay in the proxy), runs `support::script` against the proxy, and writes
//! `script.json`; then the same for `bad-credentials.json` with a bogus bearer token. Commit the
//! files: `tests/replay.rs` replays them.

#[path = "../tests/support/mod.rs"]
mod support;

use stampede_runtime::Runtime as _;
use support::{Recorder, Recording};

async fn version(client: &kube::Client) -> String {
    client.apiserver_version().await.map(|v| v.git_version).unwrap_or_else(|e| format!("unknown ({e})"))
}

fn write(dir: &std::path::Path, name: &str, rec: &Recording) {
    let path = dir.join(name);
    std::fs::write(&path, serde_json::to_string_pretty(rec).expect("json") + "\n").expect("write the recording");
    println!("wrote {} ({} exchanges)", path.display(), rec.exchanges.len());
}

#[tokio::main]
async fn main() {
    let dir = std::path::PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| "tests/recordings".into()));
    let config = kube::Config::infer().await.expect("a kubeconfig");
    let client = kube::Client::try_from(config.clone()).expect("a client");
    let kubernetes_version = version(&client).await;

    let proxy = Recorder::start(client).await;
    let seen = support::script(&proxy.url).await.expect("the script runs against the real server");
    println!("{seen:#?}");
    let exchanges = proxy.exchanges.lock().unwrap().clone();
    let note = "support::script against a real single-node control plane (hostNetwork pods, image loaded, pulled never)".into();
    write(&dir, "script.json", &Recording { kubernetes_version: kubernetes_version.clone(), note, exchanges });

    let mut bad = config;
    bad.auth_info = kube::config::AuthInfo { token: Some("not-a-valid-token".to_owned().into()), ..Default::default() };
    let proxy = Recorder::start(kube::Client::try_from(bad).expect("a client")).await;
    let err = support::runtime(&proxy.url, support::options()).preflight(support::IMAGE).await.expect_err("bad credentials");
    println!("bad credentials: {}", err.chain());
    let exchanges = proxy.exchanges.lock().unwrap().clone();
    let note = "preflight with a bearer token the server does not know".into();
    write(&dir, "bad-credentials.json", &Recording { kubernetes_version, note, exchanges });
}
