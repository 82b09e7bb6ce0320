//! The action role: the function under test.
//!
//! Connects to its parent, says `hello` then `ready`, and answers each request by sleeping or
//! busy-spinning for the requested duration and echoing the payload. Like a FaaS instance with
//! a concurrency of one, it serves one request at a time: requests that arrive while it is busy
//! (open-loop arrivals can overlap) wait in order, and that wait shows in their latency. The
//! service time is measured here, on the action's own clock, and reported with the response.
//! `stop` or a closed connection ends it.

use std::time::{Duration, Instant};
use tokio::sync::mpsc;

use stampede_core::measure::{wall_us, Clock, Role};
use stampede_core::scenario::WorkKind;
use stampede_protocol::{connect, echo_payload, Message, RecvError, PROTOCOL_VERSION};
use stampede_runtime::env;

use crate::identity::{identity, required_env};

#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    #[error("{0}")]
    Config(String),
    #[error(transparent)]
    Connect(#[from] stampede_protocol::ConnectError),
    #[error("talking to the parent failed: {0}")]
    Send(#[from] stampede_protocol::conn::SendError),
    #[error("parent sent a malformed message: {0}")]
    Protocol(String),
}

/// Run the action role until told to stop or the parent goes away.
pub async fn run() -> Result<(), ActionError> {
    let callback = required_env(env::CALLBACK).map_err(ActionError::Config)?;
    let token = required_env(env::TOKEN).map_err(ActionError::Config)?;
    let instance_id = required_env(env::INSTANCE_ID).map_err(ActionError::Config)?;
    let clock = Clock::start();

    let conn = connect(&callback, &token, crate::limits::from_env()).await?;
    let (tx, mut rx) = conn.split();
    tx.send(&Message::Hello { version: PROTOCOL_VERSION, identity: identity(&instance_id, Role::Action, clock.anchor_us(), false) })
        .await?;
    tx.send(&Message::Ready { self_ready_unix_us: wall_us() }).await?;
    // Start-up is over: what it touched of the binary need not stay resident (see `trim`).
    let dropped = crate::trim::drop_startup_pages();
    tracing::debug!(mappings = dropped.mappings, resident_bytes = dropped.resident_bytes, "dropped start-up pages");

    // One writer task owns the sink; request handlers hand it their responses.
    let (out_tx, mut out_rx) = mpsc::unbounded_channel::<Message>();
    let writer = tokio::spawn(async move {
        while let Some(m) = out_rx.recv().await {
            if tx.send(&m).await.is_err() {
                return;
            }
        }
        tx.finish().await;
    });

    // One worker serves requests in arrival order; the reader stays free to see `stop`.
    let (work_tx, mut work_rx) = mpsc::unbounded_channel::<(u64, WorkKind, u64, String, u32)>();
    let worker = {
        let out = out_tx.clone();
        tokio::spawn(async move {
            // "Cold" = the first request this process serves; decided here, where it is true.
            let mut served_before = false;
            while let Some((id, work, duration_us, payload, response_size)) = work_rx.recv().await {
                let cold = !served_before;
                served_before = true;
                let service = do_work(work, Duration::from_micros(duration_us)).await;
                let _ = out.send(Message::Response {
                    id,
                    service_time_us: u64::try_from(service.as_micros()).unwrap_or(u64::MAX),
                    cold,
                    payload: echo_payload(&payload, response_size),
                });
            }
        })
    };
    let result = loop {
        match rx.recv().await {
            Ok(Message::Request { id, work, duration_us, payload, response_size }) => {
                let _ = work_tx.send((id, work, duration_us, payload, response_size));
            }
            Ok(Message::Stop) | Err(RecvError::Closed) => break Ok(()),
            Ok(other) => break Err(ActionError::Protocol(format!("unexpected `{}` message", other.kind()))),
            Err(RecvError::Malformed(m)) => break Err(ActionError::Protocol(m)),
            Err(e @ RecvError::TooLarge(_)) => break Err(ActionError::Protocol(e.to_string())),
            // The parent stopped (frozen, SIGSTOP) or is cut off: it will count us lost.
            Err(RecvError::Stalled(_)) => break Ok(()),
            // The parent vanished: nothing left to serve.
            Err(RecvError::Transport(_)) => break Ok(()),
        }
    };
    // Stop means stop: requests still queued are dropped (the parent counts them).
    drop(work_tx);
    worker.abort();
    drop(out_tx);
    let _ = tokio::time::timeout(Duration::from_secs(2), writer).await;
    result
}

/// Do the work and return how long it really took.
pub async fn do_work(kind: WorkKind, d: Duration) -> Duration {
    let t0 = Instant::now();
    // No work is no work: a hop to a blocking thread and back would be overhead measured as
    // service time (a "0ms" work measures the request path alone).
    if d.is_zero() {
        return t0.elapsed();
    }
    match kind {
        // tokio's timer has millisecond granularity and rounds up, which would add up to 1 ms
        // to every "10 ms" of work; a thread sleep is idle too and accurate to tens of µs.
        WorkKind::Sleep => {
            let _ = tokio::task::spawn_blocking(move || std::thread::sleep(d)).await;
        }
        WorkKind::Spin => {
            // Spinning must not block the runtime's other tasks (the connection reader):
            // burn the CPU on a blocking thread.
            let _ = tokio::task::spawn_blocking(move || {
                let start = Instant::now();
                while start.elapsed() < d {
                    std::hint::spin_loop();
                }
            })
            .await;
        }
    }
    t0.elapsed()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn spin_and_sleep_take_about_their_duration() {
        for kind in [WorkKind::Sleep, WorkKind::Spin] {
            let took = do_work(kind, Duration::from_millis(20)).await;
            assert!(took >= Duration::from_millis(20), "{kind:?} took {took:?}");
            assert!(took < Duration::from_millis(500), "{kind:?} took {took:?}");
        }
    }
}
