//! A silent master is noticed: a master that answers SUBSCRIBE, says it will send a heartbeat
//! every 50 ms and then sends nothing is subscribed to again, with the framework's id, well
//! before any launch could hang on it. The server is ours (a real master cannot be made to go
//! quiet on cue); the exchange it speaks is the recorded one's shape.

mod support;

use bytes::Bytes;
use http_body_util::BodyExt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use stampede_mesos::framework::Framework;
use stampede_mesos::recordio::encode;

#[tokio::test]
async fn a_master_that_goes_quiet_is_subscribed_to_again() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let master = listener.local_addr().unwrap().to_string();
    let subscribes: Arc<Mutex<Vec<serde_json::Value>>> = Arc::default();
    let seen = subscribes.clone();
    tokio::spawn(support::serve(listener, move |req: hyper::Request<hyper::body::Incoming>| {
        let seen = seen.clone();
        async move {
            let body: serde_json::Value =
                serde_json::from_slice(&req.into_body().collect().await.unwrap().to_bytes()).unwrap();
            seen.lock().unwrap().push(body);
            let (tx, rx) = tokio::sync::mpsc::channel(4);
            let subscribed = serde_json::json!({
                "type": "SUBSCRIBED",
                "subscribed": {"framework_id": {"value": "fw-1"}, "heartbeat_interval_seconds": 0.05}
            });
            tx.send(Bytes::from(encode(subscribed.to_string().as_bytes()))).await.unwrap();
            // Then nothing: the stream stays open and silent until the client gives up on it.
            tokio::spawn(async move { tx.closed().await });
            support::streamed("stream-1", rx)
        }
    }));
    let fw = Framework::new(
        stampede_mesos::framework::http_client(),
        support::options(&master),
        "stampede-hb-driver".into(),
    );
    fw.start().await.expect("subscribed");
    assert_eq!(fw.framework_id().as_deref(), Some("fw-1"));
    // Three silent heartbeat intervals (150 ms) and it subscribes again; 5 s is only a bound.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while subscribes.lock().unwrap().len() < 2 {
        assert!(tokio::time::Instant::now() < deadline, "no second SUBSCRIBE after the master went quiet");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let again = subscribes.lock().unwrap()[1].clone();
    assert_eq!(again["framework_id"]["value"], "fw-1", "subscribes again as the same framework: {again}");
    assert_eq!(again["subscribe"]["framework_info"]["id"]["value"], "fw-1", "{again}");
    assert!(fw.subscriptions() >= 2);
}
