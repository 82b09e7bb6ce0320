//! The link to one ready action: one writer, and one reader task that routes each response to
//! the request waiting for it by id. A request is sent, then waited for within its timeout —
//! one deadline for both, so a peer that stopped reading (its socket buffer full of a large
//! payload) times the request out too; a lost or stalled connection fails every request still
//! waiting, and only them. While the scenario pauses the action on purpose, [`Link::quiet`]
//! holds the liveness deadline off.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use stampede_core::measure::RequestOutcome;
use stampede_protocol::conn::{Liveness, QuietGuard, Sender};
use stampede_protocol::{echo_is_intact, request_payload, Message, RecvError};

use crate::server::Server;

pub(crate) struct PlannedRequest {
    pub(crate) id: u64,
    pub(crate) work: stampede_core::scenario::WorkKind,
    pub(crate) duration: Duration,
    pub(crate) payload: u32,
    pub(crate) response_size: u32,
    /// Latency counts from here (the schedule, for open loop), not from when it was sent.
    pub(crate) scheduled: Instant,
    pub(crate) timeout: Duration,
}

pub(crate) struct ReqResult {
    pub(crate) id: u64,
    pub(crate) scheduled: Instant,
    pub(crate) sent_at: Instant,
    pub(crate) received_at: Option<Instant>,
    pub(crate) service_time_us: u64,
    pub(crate) cold: bool,
    pub(crate) outcome: RequestOutcome,
    pub(crate) error: Option<String>,
}

pub(crate) struct Response {
    pub(crate) service_time_us: u64,
    pub(crate) cold: bool,
    pub(crate) payload: String,
    pub(crate) at: Instant,
}

pub(crate) type Pending = Arc<std::sync::Mutex<std::collections::HashMap<u64, oneshot::Sender<Response>>>>;

/// A ready action's connection: one writer, one reader task routing responses by id.
#[derive(Clone)]
pub(crate) struct Link {
    pub(crate) tx: Sender<TcpStream>,
    pub(crate) pending: Pending,
    /// Cancelled when the connection is gone.
    pub(crate) gone: CancellationToken,
    pub(crate) reader: Arc<tokio::task::JoinHandle<()>>,
    /// Requests completed (any outcome), for live progress ...
    pub(crate) done: Arc<AtomicU64>,
    /// ... and of those, answered intact.
    pub(crate) ok: Arc<AtomicU64>,
    liveness: Liveness,
}

impl Link {
    pub(crate) fn new(conn: stampede_protocol::Conn<TcpStream>, server: Arc<Server>, done: Arc<AtomicU64>, ok: Arc<AtomicU64>) -> Self {
        let (tx, mut rx) = conn.split();
        let liveness = rx.liveness();
        let pending: Pending = Arc::default();
        let gone = CancellationToken::new();
        let (p, g) = (pending.clone(), gone.clone());
        let txr = tx.clone();
        let reader = tokio::spawn(async move {
            loop {
                match rx.recv().await {
                    Ok(Message::Response { id, service_time_us, cold, payload }) => {
                        let at = Instant::now();
                        if let Some(waiter) = p.lock().expect("pending lock").remove(&id) {
                            let _ = waiter.send(Response { service_time_us, cold, payload, at });
                        }
                    }
                    Ok(other) => {
                        server.protocol_error();
                        txr.close(&format!("unexpected `{}` message", other.kind())).await;
                        break;
                    }
                    Err(e) => {
                        server.counters.link_error(&e);
                        if matches!(e, RecvError::Malformed(_) | RecvError::TooLarge(_)) {
                            txr.close(&e.to_string()).await;
                        }
                        break;
                    }
                }
            }
            // Dropping the waiters wakes every pending request with "connection lost".
            p.lock().expect("pending lock").clear();
            g.cancel();
        });
        Link { tx, pending, gone, reader: Arc::new(reader), done, ok, liveness }
    }

    /// Gone, or a send on it failed or timed out (the peer stopped reading).
    pub(crate) fn lost(&self) -> bool {
        self.gone.is_cancelled() || self.tx.is_broken()
    }

    /// The action is silent on purpose (paused) while the guard lives.
    pub(crate) fn quiet(&self) -> QuietGuard {
        self.liveness.hold()
    }

    pub(crate) async fn closed(&self) {
        self.gone.cancelled().await;
    }

    pub(crate) async fn stop(&self) {
        let _ = self.tx.send(&Message::Stop).await;
    }

    pub(crate) fn shutdown(&self) {
        self.reader.abort();
    }

    pub(crate) async fn request(&self, r: PlannedRequest) -> ReqResult {
        let res = self.exchange(r).await;
        if res.outcome == RequestOutcome::Ok {
            self.ok.fetch_add(1, Ordering::Relaxed);
        }
        self.done.fetch_add(1, Ordering::Relaxed);
        res
    }

    pub(crate) async fn exchange(&self, r: PlannedRequest) -> ReqResult {
        let payload = request_payload(r.id, r.payload);
        let (wtx, wrx) = oneshot::channel();
        self.pending.lock().expect("pending lock").insert(r.id, wtx);
        let sent_at = Instant::now();
        let mut res = ReqResult {
            id: r.id,
            scheduled: r.scheduled,
            sent_at,
            received_at: None,
            service_time_us: 0,
            cold: false,
            outcome: RequestOutcome::Failed,
            error: None,
        };
        let msg = Message::Request {
            id: r.id,
            work: r.work,
            duration_us: u64::try_from(r.duration.as_micros()).unwrap_or(u64::MAX),
            payload: payload.clone(),
            response_size: r.response_size,
        };
        if self.lost() {
            res.error = Some("connection lost".into());
            return res;
        }
        // The request's one deadline covers the send: a peer that stopped reading cannot hold
        // it in a full socket buffer past its timeout.
        let deadline = tokio::time::Instant::from_std(r.scheduled + r.timeout);
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        if left.is_zero() {
            // Late past its whole timeout before it could go (an overloaded open loop).
            self.pending.lock().expect("pending lock").remove(&r.id);
            res.outcome = RequestOutcome::TimedOut;
            res.error = Some(format!("its {:?} timeout passed before it could be sent", r.timeout));
            return res;
        }
        if let Err(e) = self.tx.send_within(&msg, left).await {
            self.pending.lock().expect("pending lock").remove(&r.id);
            if tokio::time::Instant::now() >= deadline {
                res.outcome = RequestOutcome::TimedOut;
            }
            res.error = Some(e.to_string());
            return res;
        }
        match tokio::time::timeout_at(deadline, wrx).await {
            Ok(Ok(resp)) => {
                res.received_at = Some(resp.at);
                res.service_time_us = resp.service_time_us;
                res.cold = resp.cold;
                if echo_is_intact(&payload, &resp.payload, r.response_size) {
                    res.outcome = RequestOutcome::Ok;
                } else {
                    res.error = Some("response payload is not the intact echo of the request".into());
                }
            }
            Ok(Err(_)) => res.error = Some("connection lost".into()),
            Err(_) => {
                self.pending.lock().expect("pending lock").remove(&r.id);
                res.outcome = RequestOutcome::TimedOut;
                res.error = Some(format!("no response within {:?}", r.timeout));
            }
        }
        res
    }
}
