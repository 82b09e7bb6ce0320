//! The websocket server every parent runs, and the routing of arriving children.
//!
//! A parent registers the instance id it is about to launch ([`Server::expect`]) and gets a
//! receiver; when a connection arrives, proves the run token (in the handshake) and says
//! `hello` with that id, it is handed over. Everything else is refused and counted:
//! - no or wrong token → HTTP 401 before any message is read (`connections_refused`);
//! - a first message that is not a well-formed `hello` of our protocol version, or names an
//!   instance nobody expects → closed with a reason (`protocol_errors`).
//!
//! Each connection is handled in its own task, so a bad one never stalls the others.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use stampede_protocol::{accept, AcceptError, Conn, Identity, Message, PROTOCOL_VERSION};

/// How long a connected child may take to send its `hello`.
const HELLO_TIMEOUT: Duration = Duration::from_secs(10);

/// A child that connected and said hello.
pub struct Arrival {
    pub conn: Conn<TcpStream>,
    /// When the handshake (with its token) was accepted.
    pub connected_at: Instant,
    pub identity: Identity,
}

#[derive(Debug, Default)]
pub struct Counters {
    pub connections_refused: AtomicU64,
    pub protocol_errors: AtomicU64,
}

type Registry = Arc<Mutex<HashMap<String, oneshot::Sender<Arrival>>>>;

pub struct Server {
    addr: SocketAddr,
    registry: Registry,
    pub counters: Arc<Counters>,
}

impl Server {
    /// Bind and start accepting until `cancel` fires. Connection tasks run on `tracker`.
    pub async fn bind(listen: SocketAddr, token: String, cancel: CancellationToken, tracker: &TaskTracker) -> std::io::Result<Self> {
        let listener = TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        let registry: Registry = Arc::default();
        let counters = Arc::new(Counters::default());
        let (reg, cnt, trk) = (registry.clone(), counters.clone(), tracker.clone());
        tracker.spawn(async move {
            loop {
                let (stream, _) = tokio::select! {
                    _ = cancel.cancelled() => break,
                    r = listener.accept() => match r {
                        Ok(x) => x,
                        Err(e) => {
                            // EMFILE and friends: back off instead of spinning.
                            tracing::warn!("accept failed: {e}");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                    },
                };
                let _ = stream.set_nodelay(true);
                let (reg, cnt, token) = (reg.clone(), cnt.clone(), token.clone());
                trk.spawn(async move { handle(stream, &token, &reg, &cnt).await });
            }
        });
        Ok(Self { addr, registry, counters })
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Register an instance about to be launched; its arrival comes through the receiver.
    pub fn expect(&self, instance_id: &str) -> oneshot::Receiver<Arrival> {
        let (tx, rx) = oneshot::channel();
        self.registry.lock().expect("registry lock").insert(instance_id.to_owned(), tx);
        rx
    }

    /// Stop expecting an instance (it failed or timed out); a late arrival is then refused.
    pub fn forget(&self, instance_id: &str) {
        self.registry.lock().expect("registry lock").remove(instance_id);
    }

    pub fn protocol_error(&self) {
        self.counters.protocol_errors.fetch_add(1, Ordering::Relaxed);
    }
}

async fn handle(stream: TcpStream, token: &str, registry: &Registry, counters: &Counters) {
    let peer = stream.peer_addr().map(|a| a.to_string()).unwrap_or_else(|_| "?".into());
    let mut conn = match accept(stream, &peer, token, stampede_protocol::DEFAULT_MAX_MESSAGE_BYTES).await {
        Ok(c) => c,
        Err(e @ AcceptError::BadToken { .. }) => {
            counters.connections_refused.fetch_add(1, Ordering::Relaxed);
            tracing::warn!("{e}");
            return;
        }
        Err(e) => {
            counters.protocol_errors.fetch_add(1, Ordering::Relaxed);
            tracing::warn!("{e}");
            return;
        }
    };
    let connected_at = Instant::now();
    let reason = match tokio::time::timeout(HELLO_TIMEOUT, conn.recv()).await {
        Err(_) => "no hello within 10 s".to_owned(),
        Ok(Err(e)) => format!("bad first message: {e}"),
        Ok(Ok(Message::Hello { version, .. })) if version != PROTOCOL_VERSION => {
            format!("protocol version {version} not supported (this is {PROTOCOL_VERSION})")
        }
        Ok(Ok(Message::Hello { identity, .. })) => {
            let slot = registry.lock().expect("registry lock").remove(&identity.instance_id);
            match slot {
                Some(tx) => {
                    let id = identity.instance_id.clone();
                    if let Err(arrival) = tx.send(Arrival { conn, connected_at, identity }) {
                        // The launcher gave up (timeout) just now.
                        arrival.conn.close("instance no longer expected").await;
                        tracing::debug!("{id} arrived after its launcher gave up");
                    }
                    return;
                }
                None => format!("unknown or duplicate instance `{}`", identity.instance_id),
            }
        }
        Ok(Ok(other)) => format!("first message must be hello, got `{}`", other.kind()),
    };
    counters.protocol_errors.fetch_add(1, Ordering::Relaxed);
    tracing::warn!("closing a connection: {reason}");
    conn.close(&reason).await;
}
