//! Records the real HTTP exchanges of the replay tests' script against a real Mesos master.
//!
//! ```sh
//! cargo run -p stampede-mesos --example record -- 127.0.0.1:5050 tests/recordings
//! ```
//!
//! Needs a master with one agent whose Docker has the image `stampede:latest` (and not
//! `stampede:not-on-this-agent`) and fewer than 1000 CPUs. It starts a proxy on 127.0.0.1 that
//! forwards every request to the master, runs `support::script` against the proxy (cutting the
//! event stream once, so the framework subscribes again), and writes `script.json`; then
//! `refused.json`: a framework whose role the master refuses. Commit the files:
//! `tests/replay.rs` replays them.

#[path = "../tests/support/mod.rs"]
mod support;

use stampede_mesos::options::MesosOptions;
use stampede_mesos::MesosRuntime;
use stampede_runtime::Runtime as _;
use support::{Recorder, Recording};

fn write(dir: &std::path::Path, name: &str, rec: &Recording) {
    let path = dir.join(name);
    std::fs::write(&path, serde_json::to_string_pretty(rec).expect("json") + "\n").expect("write the recording");
    println!("wrote {} ({} exchanges)", path.display(), rec.exchanges.len());
}

#[tokio::main]
async fn main() {
    let master = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:5050".into());
    let dir = std::path::PathBuf::from(std::env::args().nth(2).unwrap_or_else(|| "tests/recordings".into()));
    let mesos_version = MesosRuntime::new(MesosOptions { master: master.clone(), ..Default::default() })
        .version()
        .await
        .expect("the master answers /version");

    let proxy = Recorder::start(master.clone()).await;
    let cut = proxy.cut.clone();
    let seen =
        support::script(&proxy.master, || cut.notify_waiters()).await.expect("the script runs against the real master");
    println!("{seen:#?}");
    let exchanges = proxy.exchanges.lock().unwrap().clone();
    let note = "support::script against a real master and one agent on 127.0.0.1 (docker containerizer, allocation_interval 1secs)".into();
    write(&dir, "script.json", &Recording { mesos_version: mesos_version.clone(), note, exchanges });

    let proxy = Recorder::start(master).await;
    let rt = MesosRuntime::new(MesosOptions { role: "no/such role".into(), ..support::options(&proxy.master) });
    let err = rt.begin_run(support::RUN_ID).await.expect_err("the master refuses the role");
    println!("refused: {}", err.chain());
    let exchanges = proxy.exchanges.lock().unwrap().clone();
    let note = "SUBSCRIBE with a role the master refuses".into();
    write(&dir, "refused.json", &Recording { mesos_version, note, exchanges });
}
