//! The mesos runtime against recorded exchanges of a real master (Mesos 1.12.0), replayed by a
//! server on 127.0.0.1 (tests/support). Each test fails when a call of ours differs from what
//! the real master was sent, or a recorded call is never made. Re-record with
//! examples/record.rs.

mod support;

use stampede_mesos::MesosRuntime;
use stampede_runtime::{Runtime, RuntimeError};
use support::{Recording, Replay};

fn load(name: &str) -> Recording {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/recordings").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let rec: Recording = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(rec.mesos_version, "Mesos 1.12.0", "recorded against the version the README names");
    rec
}

fn assert_replayed_exactly(replay: &Replay) {
    let (mismatched, unused) = replay.problems();
    assert!(mismatched.is_empty(), "calls that differ from every recorded one:\n{}", mismatched.join("\n"));
    assert!(unused.is_empty(), "recorded calls we no longer make:\n{}", unused.join("\n"));
}

#[tokio::test]
async fn a_run_replays_call_for_call() {
    let replay = Replay::start(load("script.json")).await;
    let seen = match support::script(&replay.master, || {}).await {
        Ok(seen) => seen,
        Err(e) => panic!("the script against the replay: {}; replay: {:?}", e.chain(), replay.problems()),
    };
    assert_replayed_exactly(&replay);
    assert!(seen.version.starts_with("Mesos 1.12.0 (allocation_interval 1secs, 1 agent)"), "{}", seen.version);
    // The offer, our accept, then the task states from the updates' own timestamps.
    assert_eq!(&seen.running_states[..2], ["offer_wait", "accepted"], "{:?}", seen.running_states);
    assert!(seen.running_states.ends_with(&["starting".to_owned(), "running".to_owned()]), "{:?}", seen.running_states);
    assert!(seen.received_states.contains(&"running".to_owned()), "{:?}", seen.received_states);
    assert_eq!(seen.subscriptions, 2, "the cut stream was taken up again");
    assert!(seen.missing_image.contains("TASK_FAILED: Failed to launch container"), "{}", seen.missing_image);
    assert!(seen.declined >= 1);
}

#[tokio::test]
async fn a_refused_framework_is_unavailable_with_the_masters_message() {
    let replay = Replay::start(load("refused.json")).await;
    let rt = MesosRuntime::new(stampede_mesos::options::MesosOptions {
        role: "no/such role".into(),
        ..support::options(&replay.master)
    });
    let err = rt.begin_run(support::RUN_ID).await.expect_err("refused");
    assert_replayed_exactly(&replay);
    assert!(matches!(err, RuntimeError::Unavailable { .. }), "{err:?}");
    assert!(err.chain().contains("refused the framework") && err.chain().contains("invalid role"), "{}", err.chain());
}

#[tokio::test]
async fn an_unreachable_master_is_unavailable() {
    // Nothing listens on a port we bound and closed again.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let rt = MesosRuntime::new(support::options(&format!("127.0.0.1:{port}")));
    let err = rt.preflight(support::IMAGE).await.expect_err("nothing listens");
    assert!(matches!(err, RuntimeError::Unavailable { .. }), "{err:?}");
    assert!(err.chain().contains("mesos = { master"), "says what to check: {}", err.chain());
}
