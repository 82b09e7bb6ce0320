//! The kubernetes runtime against recorded exchanges of a real API server (v1.28.7), replayed
//! by a server on 127.0.0.1 (tests/support). Each test fails when a request of ours differs
//! from what the real server was asked, or a recorded request is never made: a drift in what
//! we send is seen here, without a cluster. Re-record with examples/record.rs.

mod support;

use stampede_runtime::{Runtime, RuntimeError};
use support::{Recording, Replay};

fn load(name: &str) -> Recording {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/recordings").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let rec: Recording = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(rec.kubernetes_version, "v1.28.7", "recorded against the version the README names");
    rec
}

fn assert_replayed_exactly(replay: &Replay) {
    let (mismatched, unused) = replay.problems();
    assert!(mismatched.is_empty(), "requests that differ from every recorded one:\n{}", mismatched.join("\n"));
    assert!(unused.is_empty(), "recorded requests we no longer make:\n{}", unused.join("\n"));
}

#[tokio::test]
async fn a_run_replays_request_for_request() {
    let replay = Replay::start(load("script.json")).await;
    let seen = match support::script(&replay.url).await {
        Ok(seen) => seen,
        Err(e) => panic!("the script against the replay: {}; replay: {:?}", e.chain(), replay.problems()),
    };
    assert_replayed_exactly(&replay);
    assert!(seen.version.contains("v1.28.7"), "{}", seen.version);
    // Our watch saw the pod's transitions in order, and the API's condition times beside them.
    assert_eq!(seen.running_states, ["scheduled", "initialized", "running", "containers_ready"]);
    assert!(seen.condition_states.contains(&"scheduled".to_owned()), "{:?}", seen.condition_states);
    assert!(seen.missing_image.starts_with("ErrImageNeverPull"), "{}", seen.missing_image);
    assert!(seen.unschedulable.starts_with("Unschedulable: 0/1 nodes are available"), "{}", seen.unschedulable);
    assert_eq!(seen.removed_namespaces, 1);
}

#[tokio::test]
async fn bad_credentials_are_unavailable_with_the_servers_message() {
    let replay = Replay::start(load("bad-credentials.json")).await;
    let err = support::runtime(&replay.url, support::options()).preflight(support::IMAGE).await.expect_err("refused");
    assert_replayed_exactly(&replay);
    assert!(matches!(err, RuntimeError::Unavailable { .. }), "{err:?}");
    let text = err.chain();
    assert!(text.contains("Unauthorized") && text.contains("credentials"), "{text}");
}

#[tokio::test]
async fn an_unreachable_api_server_is_unavailable() {
    // Nothing listens on a port we bound and closed again.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let err = support::runtime(&format!("http://127.0.0.1:{port}"), support::options()).preflight(support::IMAGE).await;
    let err = err.expect_err("nothing listens");
    assert!(matches!(err, RuntimeError::Unavailable { .. }), "{err:?}");
    assert!(err.chain().contains("kubeconfig"), "says what to check: {}", err.chain());
}
