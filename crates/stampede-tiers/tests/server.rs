//! The callback server's security and robustness, in-process on 127.0.0.1:0:
//! no token → refused before any message is read; malformed frames close that one
//! connection and are counted; other connections carry on unharmed; a flood of idle sockets
//! is shed and timed out while a real child still gets through; an oversized message closes
//! its link; every loss is counted by its cause.

use futures_util::SinkExt;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message as Ws;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use stampede_core::measure::Role;
use stampede_protocol::{connect, ConnectError, Message, RecvError, DEFAULT_MAX_MESSAGE_BYTES, PROTOCOL_VERSION, TOKEN_HEADER};
use stampede_tiers::identity::identity;
use stampede_tiers::server::Server;

const TOKEN: &str = "0123456789abcdef";

/// The cap the test server puts on one message.
const CAP: usize = 64 << 10;

async fn server() -> (Server, String, CancellationToken) {
    let cancel = CancellationToken::new();
    let s = Server::bind("127.0.0.1:0".parse().unwrap(), TOKEN.into(), CAP, cancel.clone(), &TaskTracker::new()).await.unwrap();
    let url = format!("ws://127.0.0.1:{}/", s.port());
    (s, url, cancel)
}

async fn eventually(f: impl Fn() -> bool) {
    for _ in 0..200 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("condition not reached within 2 s");
}

#[tokio::test]
async fn a_connection_without_the_token_is_refused_in_the_handshake() {
    let (s, url, _c) = server().await;
    // No token header at all: a plain websocket client.
    let err = tokio_tungstenite::connect_async(url.as_str()).await.expect_err("must be refused");
    match err {
        tokio_tungstenite::tungstenite::Error::Http(resp) => assert_eq!(resp.status(), 401),
        other => panic!("expected HTTP 401, got {other}"),
    }
    // A wrong token.
    assert!(matches!(connect(&url, "not-the-token", DEFAULT_MAX_MESSAGE_BYTES).await, Err(ConnectError::Refused { .. })));
    // The right token beside a wrong one: which one counts would be up to whoever reads first.
    use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
    let mut req = url.as_str().into_client_request().unwrap();
    req.headers_mut().append(stampede_protocol::TOKEN_HEADER, TOKEN.parse().unwrap());
    req.headers_mut().append(stampede_protocol::TOKEN_HEADER, "not-the-token".parse().unwrap());
    match tokio_tungstenite::connect_async(req).await.expect_err("two tokens must be refused") {
        tokio_tungstenite::tungstenite::Error::Http(resp) => assert_eq!(resp.status(), 401),
        other => panic!("expected HTTP 401, got {other}"),
    }
    eventually(|| s.counters.connections_refused.load(Ordering::Relaxed) == 3).await;
    assert_eq!(s.counters.protocol_errors.load(Ordering::Relaxed), 0);
}

#[tokio::test]
async fn malformed_frames_close_only_their_connection_and_are_counted() {
    let (s, url, _c) = server().await;
    let expected = s.expect("good-1");

    // Three bad clients: garbage text, a binary frame, a wrong protocol version.
    for bad in [
        Ws::text("{ this is not json"),
        Ws::binary(vec![1u8, 2, 3]),
        Ws::text(
            serde_json::to_string(&Message::Hello { version: PROTOCOL_VERSION + 1, identity: identity("good-1", Role::Action, 0, false) })
                .unwrap(),
        ),
    ] {
        let mut req = url.as_str().into_client_request().unwrap();
        req.headers_mut().insert(TOKEN_HEADER, TOKEN.parse().unwrap());
        let (mut ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
        ws.send(bad).await.unwrap();
        // The server answers with a close frame (or drops the connection).
        use futures_util::StreamExt;
        let next = tokio::time::timeout(Duration::from_secs(5), ws.next()).await.expect("server closes promptly");
        assert!(matches!(next, None | Some(Ok(Ws::Close(_))) | Some(Err(_))), "got {next:?}");
    }
    eventually(|| s.counters.protocol_errors.load(Ordering::Relaxed) == 2).await;
    eventually(|| s.counters.version_mismatches.load(Ordering::Relaxed) == 1).await;

    // A well-behaved child still gets through and is handed to whoever expects it.
    let mut good = connect(&url, TOKEN, DEFAULT_MAX_MESSAGE_BYTES).await.unwrap();
    good.send(&Message::Hello { version: PROTOCOL_VERSION, identity: identity("good-1", Role::Action, 0, false) }).await.unwrap();
    let arrival = tokio::time::timeout(Duration::from_secs(5), expected).await.unwrap().unwrap();
    assert_eq!(arrival.identity.instance_id, "good-1");
    let mut conn = arrival.conn;
    good.send(&Message::Ready { self_ready_unix_us: 1 }).await.unwrap();
    assert_eq!(conn.recv().await.unwrap(), Message::Ready { self_ready_unix_us: 1 });

    // The child going away is seen as a closed connection, not an error of the server.
    drop(good);
    assert!(matches!(conn.recv().await, Err(RecvError::Closed)));
}

#[tokio::test]
async fn an_unknown_instance_is_refused_after_hello() {
    let (s, url, _c) = server().await;
    let mut c = connect(&url, TOKEN, DEFAULT_MAX_MESSAGE_BYTES).await.unwrap();
    c.send(&Message::Hello { version: PROTOCOL_VERSION, identity: identity("nobody", Role::Action, 0, false) }).await.unwrap();
    assert!(c.recv().await.is_err(), "closed with a reason");
    eventually(|| s.counters.protocol_errors.load(Ordering::Relaxed) == 1).await;
}

#[tokio::test]
async fn an_oversized_message_closes_its_link_and_is_counted_as_too_large() {
    let (s, url, _c) = server().await;
    let expected = s.expect("big");
    // A token holder whose hello is larger than anything the scenario can legitimately send.
    let mut c = connect(&url, TOKEN, DEFAULT_MAX_MESSAGE_BYTES).await.unwrap();
    let mut who = identity("big", Role::Action, 0, false);
    who.hostname = "x".repeat(CAP * 2);
    c.send(&Message::Hello { version: PROTOCOL_VERSION, identity: who }).await.unwrap();
    assert!(tokio::time::timeout(Duration::from_secs(5), c.recv()).await.expect("closed promptly").is_err());
    eventually(|| s.counters.messages_too_large.load(Ordering::Relaxed) == 1).await;
    assert_eq!(s.counters.protocol_errors.load(Ordering::Relaxed), 0);
    // It was never handed over.
    assert!(tokio::time::timeout(Duration::from_millis(100), expected).await.is_err());
}

#[tokio::test]
async fn a_flood_of_idle_connections_is_shed_and_timed_out_while_a_real_child_gets_through() {
    use stampede_tiers::server::{HANDSHAKE_TIMEOUT, MAX_AUTHENTICATING};
    let (s, url, _c) = server().await;
    let addr = url.trim_start_matches("ws://").trim_end_matches('/').to_owned();
    // Twice as many idle sockets as may authenticate at once, none saying a word.
    let flood = 2 * MAX_AUTHENTICATING + 100;
    let mut idle = Vec::new();
    for _ in 0..flood {
        idle.push(tokio::net::TcpStream::connect(&addr).await.expect("the listener keeps accepting"));
    }
    eventually(|| s.counters.connections_shed.load(Ordering::Relaxed) >= (flood - MAX_AUTHENTICATING) as u64).await;

    // A real child, arriving last, is the newest: it gets through at once.
    let expected = s.expect("real-1");
    let t0 = std::time::Instant::now();
    let mut good = connect(&url, TOKEN, DEFAULT_MAX_MESSAGE_BYTES).await.unwrap();
    good.send(&Message::Hello { version: PROTOCOL_VERSION, identity: identity("real-1", Role::Action, 0, false) }).await.unwrap();
    let arrival = tokio::time::timeout(Duration::from_secs(5), expected).await.expect("handed over").unwrap();
    assert_eq!(arrival.identity.instance_id, "real-1");
    assert!(t0.elapsed() < HANDSHAKE_TIMEOUT, "not held up by the flood: {:?}", t0.elapsed());

    // The idle ones still authenticating are dropped at the handshake deadline.
    tokio::time::sleep(HANDSHAKE_TIMEOUT + Duration::from_secs(1)).await;
    let timed_out = s.counters.handshake_timeouts.load(Ordering::Relaxed);
    let shed = s.counters.connections_shed.load(Ordering::Relaxed);
    assert!(timed_out >= 1, "no handshake timed out");
    // One more for the real child's place in the queue, which pushed out one more idle socket.
    assert_eq!(timed_out + shed, flood as u64, "every idle socket is accounted for once");
    drop(idle);
}

/// A real child caught in the middle of a flood: it has upgraded but not yet said hello when
/// twice the cap of silent sockets arrive after it. The silent ones are shed first, so it is
/// still there to say hello and be handed over.
#[tokio::test]
async fn a_child_that_spoke_before_a_flood_is_not_shed_by_it() {
    use stampede_tiers::server::MAX_AUTHENTICATING;
    let (s, url, _c) = server().await;
    let addr = url.trim_start_matches("ws://").trim_end_matches('/').to_owned();
    let expected = s.expect("real-early");
    let mut early = connect(&url, TOKEN, DEFAULT_MAX_MESSAGE_BYTES).await.unwrap();
    let flood = 2 * MAX_AUTHENTICATING;
    let mut idle = Vec::new();
    for _ in 0..flood {
        idle.push(tokio::net::TcpStream::connect(&addr).await.expect("the listener keeps accepting"));
    }
    eventually(|| s.counters.connections_shed.load(Ordering::Relaxed) >= (flood - MAX_AUTHENTICATING + 1) as u64).await;
    early.send(&Message::Hello { version: PROTOCOL_VERSION, identity: identity("real-early", Role::Action, 0, false) }).await.unwrap();
    let arrival = tokio::time::timeout(Duration::from_secs(5), expected).await.expect("handed over").unwrap();
    assert_eq!(arrival.identity.instance_id, "real-early");
    drop(idle);
}
