//! The websocket server every parent runs, and the routing of arriving children.
//!
//! A parent registers the instance id it is about to launch ([`Server::expect`]) and gets a
//! receiver; when a connection arrives, proves the run token (in the handshake) and says
//! `hello` with that id, it is handed over. Everything else is refused and counted:
//! - no or wrong token → HTTP 401 before any message is read (`connections_refused`);
//! - a first message that is not a well-formed `hello` of our protocol version, or names an
//!   instance nobody expects → closed with a reason (`protocol_errors`, `version_mismatches`);
//! - no upgrade and hello within [`HANDSHAKE_TIMEOUT`] → dropped (`handshake_timeouts`); not a
//!   websocket at all → dropped (`handshake_failures`);
//! - more than [`MAX_AUTHENTICATING`] connections still in their handshake → the oldest that
//!   has sent nothing yet is dropped, else the oldest (`connections_shed`), so a flood of idle
//!   sockets costs bounded memory and file descriptors, and a real child — which sends its
//!   upgrade at once and says hello within milliseconds — still gets through, even when it
//!   arrived in the middle of the flood and is no longer the newest.
//!
//! Each connection is handled in its own task, so a bad one never stalls the others.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use stampede_protocol::{accept, AcceptError, Conn, Identity, Message, RecvError, PROTOCOL_VERSION};

/// How long a connection may take from accept to its `hello` (websocket upgrade included).
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections at once between accept and `hello`. Real children finish this in milliseconds,
/// so it is far above what a launch burst needs, and far below the open-file limit.
pub const MAX_AUTHENTICATING: usize = 512;

/// A child that connected and said hello.
pub struct Arrival {
    pub conn: Conn<TcpStream>,
    /// When the handshake (with its token) was accepted.
    pub connected_at: Instant,
    pub identity: Identity,
}

/// Every connection this server lost or refused, by cause (see the module docs).
#[derive(Debug, Default)]
pub struct Counters {
    pub connections_refused: AtomicU64,
    pub protocol_errors: AtomicU64,
    pub handshake_timeouts: AtomicU64,
    pub handshake_failures: AtomicU64,
    pub connections_shed: AtomicU64,
    pub version_mismatches: AtomicU64,
    pub messages_too_large: AtomicU64,
    pub links_stalled: AtomicU64,
    /// Per-connection warnings, throttled: they come in floods.
    said: Throttle,
}

/// At most one warning a second per listener, the next one saying how many were held back. A
/// flood of bad connections must not become a flood of log lines: stderr may be a pipe nobody
/// drains fast (a terminal paused, `| less`), and a blocked write there stalls the tier that
/// writes it, pings and all.
#[derive(Debug, Default)]
struct Throttle {
    state: Mutex<(Option<Instant>, u64)>,
}

impl Throttle {
    fn warn(&self, message: impl FnOnce() -> String) {
        let held_back = {
            let mut s = self.state.lock().expect("throttle lock");
            let now = Instant::now();
            if s.0.is_some_and(|last| now.duration_since(last) < Duration::from_secs(1)) {
                s.1 += 1;
                return;
            }
            s.0 = Some(now);
            std::mem::take(&mut s.1)
        };
        match held_back {
            0 => tracing::warn!("{}", message()),
            n => tracing::warn!("{} (and {n} more such connection problems in the last second)", message()),
        }
    }
}

impl Counters {
    /// Into a results accounting (the rest of it is the caller's).
    pub fn fill(&self, a: &mut stampede_core::results::Accounting) {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        a.connections_refused = get(&self.connections_refused);
        a.protocol_errors = get(&self.protocol_errors);
        a.handshake_timeouts = get(&self.handshake_timeouts);
        a.handshake_failures = get(&self.handshake_failures);
        a.connections_shed = get(&self.connections_shed);
        a.version_mismatches = get(&self.version_mismatches);
        a.messages_too_large = get(&self.messages_too_large);
        a.links_stalled = get(&self.links_stalled);
    }

    /// Count how an established link ended, when that is a loss.
    pub fn link_error(&self, e: &RecvError) {
        let c = match e {
            RecvError::Malformed(_) => &self.protocol_errors,
            RecvError::TooLarge(_) => &self.messages_too_large,
            RecvError::Stalled(_) => &self.links_stalled,
            RecvError::Closed | RecvError::Transport(_) => return,
        };
        c.fetch_add(1, Ordering::Relaxed);
    }
}

type Registry = Arc<Mutex<HashMap<String, oneshot::Sender<Arrival>>>>;

/// Connections between accept and hello, oldest first, each with the token that drops it and
/// whether it has sent anything yet.
#[derive(Default)]
struct Pending {
    next: u64,
    queue: std::collections::VecDeque<(u64, CancellationToken, Arc<AtomicBool>)>,
}
type Authenticating = Arc<Mutex<Pending>>;

pub struct Server {
    addr: SocketAddr,
    registry: Registry,
    pub counters: Arc<Counters>,
}

impl Server {
    /// Bind and start accepting until `cancel` fires. Connection tasks run on `tracker`. A
    /// message over `max_message_bytes` closes its connection (see `crate::limits`).
    pub async fn bind(
        listen: SocketAddr,
        token: String,
        max_message_bytes: usize,
        cancel: CancellationToken,
        tracker: &TaskTracker,
    ) -> std::io::Result<Self> {
        let listener = TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        let registry: Registry = Arc::default();
        let counters = Arc::new(Counters::default());
        let (reg, cnt, trk) = (registry.clone(), counters.clone(), tracker.clone());
        let authenticating: Authenticating = Arc::default();
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
                let (id, shed, spoke) = {
                    let mut a = authenticating.lock().expect("authenticating lock");
                    a.next += 1;
                    // Full of half-open connections: the oldest that has sent nothing goes, else
                    // the oldest (see the module docs).
                    let victim = if a.queue.len() >= MAX_AUTHENTICATING {
                        let silent = a.queue.iter().position(|(_, _, spoke)| !spoke.load(Ordering::Relaxed));
                        a.queue.remove(silent.unwrap_or(0))
                    } else {
                        None
                    };
                    let id = a.next;
                    let shed = CancellationToken::new();
                    let spoke = Arc::new(AtomicBool::new(false));
                    a.queue.push_back((id, shed.clone(), spoke.clone()));
                    if let Some((_, old, _)) = victim {
                        old.cancel();
                    }
                    (id, shed, spoke)
                };
                let _ = stream.set_nodelay(true);
                let (reg, cnt, token, auth) = (reg.clone(), cnt.clone(), token.clone(), authenticating.clone());
                trk.spawn(async move {
                    let handshake = async {
                        // Its first bytes (or its end) arrived: a real peer starting its upgrade,
                        // kept over sockets that never said anything.
                        // (`peek` waits for a byte; `readable` may wake spuriously at once.)
                        let _ = stream.peek(&mut [0u8; 1]).await;
                        spoke.store(true, Ordering::Relaxed);
                        handle(stream, &token, max_message_bytes, &reg, &cnt).await
                    };
                    tokio::select! {
                        r = tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake) => if r.is_err() {
                            cnt.handshake_timeouts.fetch_add(1, Ordering::Relaxed);
                            cnt.said.warn(|| format!("dropped a connection: no websocket upgrade and hello within {HANDSHAKE_TIMEOUT:?}"));
                        },
                        _ = shed.cancelled() => {
                            cnt.connections_shed.fetch_add(1, Ordering::Relaxed);
                            tracing::debug!("dropped a half-open connection: {MAX_AUTHENTICATING} were authenticating");
                        }
                    }
                    auth.lock().expect("authenticating lock").queue.retain(|(i, _, _)| *i != id);
                });
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

/// From accept to `hello` and the hand-over; bounded by [`HANDSHAKE_TIMEOUT`] by the caller.
async fn handle(stream: TcpStream, token: &str, max_message_bytes: usize, registry: &Registry, counters: &Counters) {
    let peer = stream.peer_addr().map(|a| a.to_string()).unwrap_or_else(|_| "?".into());
    let mut conn = match accept(stream, &peer, token, max_message_bytes).await {
        Ok(c) => c,
        Err(e @ AcceptError::BadToken { .. }) => {
            counters.connections_refused.fetch_add(1, Ordering::Relaxed);
            counters.said.warn(|| e.to_string());
            return;
        }
        Err(e) => {
            counters.handshake_failures.fetch_add(1, Ordering::Relaxed);
            counters.said.warn(|| e.to_string());
            return;
        }
    };
    let connected_at = Instant::now();
    let (counter, reason) = match conn.recv().await {
        Err(e @ RecvError::TooLarge(_)) => (&counters.messages_too_large, format!("bad first message: {e}")),
        Err(e) => (&counters.protocol_errors, format!("bad first message: {e}")),
        Ok(Message::Hello { version, .. }) if version != PROTOCOL_VERSION => {
            (&counters.version_mismatches, format!("protocol version {version} not supported (this is {PROTOCOL_VERSION})"))
        }
        Ok(Message::Hello { identity, .. }) => {
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
                None => (&counters.protocol_errors, format!("unknown or duplicate instance `{}`", identity.instance_id)),
            }
        }
        Ok(other) => (&counters.protocol_errors, format!("first message must be hello, got `{}`", other.kind())),
    };
    counter.fetch_add(1, Ordering::Relaxed);
    counters.said.warn(|| format!("closing a connection: {reason}"));
    conn.close(&reason).await;
}
