//! Launch one child and wait until it is ready: the start-latency path, timestamped.
//!
//! Used by the driver (for scenarios) and by scenarios (for actions), so both tiers measure
//! `queued → requested → created → started → connected → ready` the same way:
//! - `queued` is when the launch was wanted; it then waits in stampede's own queue, for a
//!   start-rate token (the experiment's pacing) and a launch slot (`start_concurrency`);
//! - `requested` is when the runtime call began: `phase_queue` = requested − queued is our
//!   queue, and start latency and the ready timeout count from `requested`, so a big run never
//!   fails, or looks slow, because of its own queue;
//! - the slot (a semaphore permit) is held only for the runtime's create+start calls, which is
//!   what the limit is about; `in_flight_at_request` counts launches past the queue and not
//!   yet ready — the ones truly at the engine — so the contention curve shows the runtime;
//! - `connected` is when the token-checked handshake was accepted, `ready` when `ready` arrived.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use stampede_core::measure::{names, Clock, InstanceRecord, Outcome};
use stampede_core::stats::Metrics;
use stampede_protocol::{Conn, Message};
use stampede_runtime::{Handle, LaunchSpec, Runtime};

use crate::server::Server;

/// What the launching tier shares between its concurrent launches.
pub struct Launcher {
    pub runtime: Arc<dyn Runtime>,
    pub server: Arc<Server>,
    pub clock: Clock,
    /// Create+start calls in flight at once.
    pub limiter: Arc<Semaphore>,
    /// Launches requested and not yet ready or failed (the contention measure).
    pub in_flight: Arc<AtomicU32>,
    /// Launch pacing (`start_rate`), if any.
    pub rate: Option<Arc<crate::rate::RateLimiter>>,
}

/// A child that became ready, with its connection.
pub struct ReadyChild {
    pub handle: Handle,
    pub conn: Conn<TcpStream>,
    /// The child's clock anchor (wall µs at its monotonic zero), to align its timestamps.
    pub anchor_unix_us: i64,
}

/// Decrements the in-flight count however the launch ends.
struct InFlight(Arc<AtomicU32>);
impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Launcher {
    /// Launch `spec` and wait for `hello` (then send `after_hello`, if any) and `ready`.
    ///
    /// Fills `rec`'s timestamps as they happen. On failure the record says why and the handle,
    /// if the runtime got that far, is returned so the caller can remove the instance.
    pub async fn launch(
        &self,
        spec: &LaunchSpec,
        rec: &mut InstanceRecord,
        ready_timeout: Duration,
        after_hello: Option<Message>,
        cancel: &CancellationToken,
    ) -> Result<ReadyChild, Option<Handle>> {
        let fail = |rec: &mut InstanceRecord, why: String, handle: Option<Handle>| {
            self.server.forget(&spec.instance_id);
            rec.outcome = Outcome::Failed;
            rec.error = Some(why);
            Err(handle)
        };

        // Where it is told to dial us: what the results say each tier used.
        rec.callback = spec.env.iter().find(|(k, _)| k == stampede_runtime::env::CALLBACK).map(|(_, v)| v.clone());
        // Our own queue: pacing, then a launch slot. Neither is the runtime's latency.
        rec.queued_us = Some(self.clock.now_us());
        if let Some(rate) = &self.rate {
            tokio::select! {
                _ = rate.acquire() => {}
                _ = cancel.cancelled() => return fail(rec, "interrupted before launch".into(), None),
            }
        }
        let permit = tokio::select! {
            p = self.limiter.acquire() => p.expect("launch semaphore is never closed"),
            _ = cancel.cancelled() => return fail(rec, "interrupted before launch".into(), None),
        };
        let t_req = Instant::now();
        let deadline = tokio::time::Instant::from_std(t_req + ready_timeout);
        rec.requested_us = Some(self.clock.us_at(t_req));
        rec.in_flight_at_request = self.in_flight.fetch_add(1, Ordering::SeqCst);
        let _in_flight = InFlight(self.in_flight.clone());
        let arrival_rx = self.server.expect(&spec.instance_id);

        let launched = async {
            self.runtime.prepare(spec).await?;
            self.runtime.launch(spec).await
        };
        let launched = tokio::select! {
            r = launched => r,
            _ = tokio::time::sleep_until(deadline) => return fail(rec, "runtime launch call timed out".into(), None),
        };
        drop(permit);
        let launched = match launched {
            Ok(l) => l,
            Err(e) => return fail(rec, e.chain(), None),
        };
        rec.runtime_id = Some(launched.handle.id.clone());
        rec.created_us = launched.created.map(|t| self.clock.us_at(t));
        rec.started_us = Some(self.clock.us_at(launched.started));
        let handle = launched.handle;

        // 2. Its connection and hello — unless the platform says first that it can never start.
        let arrival = tokio::select! {
            a = arrival_rx => a.ok(),
            why = self.runtime.wait_failed(&handle) => return fail(rec, why, Some(handle)),
            _ = tokio::time::sleep_until(deadline) => None,
            _ = cancel.cancelled() => return fail(rec, "interrupted before it connected".into(), Some(handle)),
        };
        let Some(arrival) = arrival else {
            let why = if self.runtime.is_running(&handle).await {
                format!("did not connect within {ready_timeout:?}")
            } else {
                "exited before it connected".to_owned()
            };
            return fail(rec, why, Some(handle));
        };
        rec.connected_us = Some(self.clock.us_at(arrival.connected_at));
        rec.hostname = Some(arrival.identity.hostname.clone());
        rec.pid = Some(arrival.identity.pid);
        rec.boot_id = Some(arrival.identity.boot_id.clone());
        rec.process_entry_us = Some(self.clock.from_wall(arrival.identity.process_entry_unix_us));
        let anchor_unix_us = arrival.identity.clock_anchor_unix_us;
        let mut conn = arrival.conn;

        if let Some(m) = after_hello {
            if let Err(e) = conn.send(&m).await {
                return fail(rec, e.to_string(), Some(handle));
            }
        }

        // 3. Ready.
        let msg = tokio::select! {
            m = conn.recv() => m,
            _ = tokio::time::sleep_until(deadline) => return fail(rec, format!("connected but not ready within {ready_timeout:?}"), Some(handle)),
            _ = cancel.cancelled() => return fail(rec, "interrupted before it was ready".into(), Some(handle)),
        };
        match msg {
            Ok(Message::Ready { self_ready_unix_us }) => {
                rec.ready_us = Some(self.clock.now_us());
                rec.self_ready_us = Some(self.clock.from_wall(self_ready_unix_us));
                Ok(ReadyChild { handle, conn, anchor_unix_us })
            }
            Ok(other) => {
                self.server.protocol_error();
                let why = format!("expected ready, got `{}`", other.kind());
                conn.close(&why).await;
                fail(rec, why, Some(handle))
            }
            Err(e) => {
                if matches!(e, stampede_protocol::RecvError::Malformed(_)) {
                    self.server.protocol_error();
                }
                fail(rec, format!("lost before ready: {e}"), Some(handle))
            }
        }
    }
}

/// Record the start-latency metric and its phases for one instance that became ready.
pub fn record_start_metrics(m: &mut Metrics, r: &InstanceRecord) {
    let (Some(req), Some(ready)) = (r.requested_us, r.ready_us) else { return };
    // Runtimes with one launch call (no separate create) start from the request.
    let created = Some(r.created_us.unwrap_or(req));
    // Each phase runs from one moment to another, and is recorded when both are known.
    let phases = [
        (names::START_LATENCY, Some(req), Some(ready)),
        (names::PHASE_QUEUE, r.queued_us, Some(req)),
        (names::PHASE_CREATE, Some(req), r.created_us),
        (names::PHASE_START, created, r.started_us),
        (names::PHASE_BOOT, r.started_us, r.connected_us),
        (names::PHASE_ENTRY, r.started_us, r.process_entry_us),
        // Docker's start call returns only after the process is up (often after it connected),
        // so started → connected can be ~0; the runtime's own start time shows the real boot.
        (names::PHASE_RUNTIME_BOOT, r.runtime_started_us, r.connected_us),
        // The child's own clock splits the start at the moment its process ran, whatever the
        // runtime's API calls returned when: the runtime's share before, ours after.
        (names::PHASE_TO_ENTRY, created, r.process_entry_us),
        (names::PHASE_ENTRY_TO_CONNECT, r.process_entry_us, r.connected_us),
        (names::PHASE_INIT, r.connected_us, Some(ready)),
    ];
    for (metric, from, to) in phases {
        if let (Some(from), Some(to)) = (from, to) {
            m.record(metric, to - from);
        }
    }
    // Not a phase: how far our `started` is from the runtime's own start time, either way.
    if let (Some(s), Some(n)) = (r.started_us, r.runtime_started_us) {
        m.record(names::RUNTIME_START_SKEW, (n - s).abs());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recorded(r: &InstanceRecord) -> Vec<(String, u64)> {
        let mut m = Metrics::new();
        record_start_metrics(&mut m, r);
        m.names().map(|n| (n.to_owned(), m.get(n).unwrap().max())).collect()
    }

    /// Each phase is the time between its two moments; without a create call the start phase
    /// begins at the request, and a moment never seen drops only the phases that need it.
    #[test]
    fn start_phases_are_the_times_between_their_moments() {
        let full = InstanceRecord {
            queued_us: Some(40),
            requested_us: Some(100),
            created_us: Some(150),
            started_us: Some(300),
            runtime_started_us: Some(280),
            process_entry_us: Some(320),
            connected_us: Some(400),
            ready_us: Some(450),
            ..Default::default()
        };
        let one_call = InstanceRecord { created_us: None, process_entry_us: None, runtime_started_us: None, ..full.clone() };
        // Each metric: (recorded for `full`, for `one_call`).
        let want = [
            (names::PHASE_BOOT, 100, Some(100)),
            (names::PHASE_CREATE, 50, None),
            (names::PHASE_ENTRY, 20, None),
            (names::PHASE_ENTRY_TO_CONNECT, 80, None),
            (names::PHASE_INIT, 50, Some(50)),
            (names::PHASE_QUEUE, 60, Some(60)),
            (names::PHASE_RUNTIME_BOOT, 120, None),
            (names::PHASE_START, 150, Some(200)),
            (names::PHASE_TO_ENTRY, 170, None),
            (names::RUNTIME_START_SKEW, 20, None),
            (names::START_LATENCY, 350, Some(350)),
        ];
        assert_eq!(recorded(&full), want.iter().map(|&(n, v, _)| (n.to_owned(), v)).collect::<Vec<_>>());
        assert_eq!(recorded(&one_call), want.iter().filter_map(|&(n, _, v)| Some((n.to_owned(), v?))).collect::<Vec<_>>());

        let not_ready = InstanceRecord { ready_us: None, ..full };
        assert!(recorded(&not_ready).is_empty());
    }
}
