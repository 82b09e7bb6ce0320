//! `hold = "all_ready"`: every instance of a group up before any request, and all kept until
//! the whole group's work is done, so `1 + S + S·A` are alive at once.
//!
//! Two lines are crossed, at two levels. In a scenario, each action slot crosses `held` once
//! its action is ready (or failed to start) and waits for `go`; it crosses `done` once its
//! requests are answered and waits for `release` before it stops its action. The scenario
//! tells the driver `held` / `work_done` when all its slots have crossed; the driver's group
//! crosses its own lines once per scenario and answers every scenario `go` / `release` when all
//! have. A [`Ticket`] crosses its line when dropped, so a slot or scenario that fails on any
//! path still counts and never leaves the others waiting.

use std::sync::Arc;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// `n` parties reach a line; [`Line::all`] resolves when every one has.
#[derive(Clone, Debug)]
pub struct Line {
    crossed: Arc<watch::Sender<u32>>,
    n: u32,
}

impl Line {
    pub fn new(n: u32) -> Self {
        Self { crossed: Arc::new(watch::Sender::new(0)), n }
    }

    /// One party's place at the line: it crosses on [`Ticket::cross`] or when dropped.
    pub fn ticket(&self) -> Ticket {
        Ticket { line: Some(self.clone()) }
    }

    pub async fn all(&self) {
        let mut rx = self.crossed.subscribe();
        // The sender lives in `self`, so the channel cannot close while we wait.
        let _ = rx.wait_for(|c| *c >= self.n).await;
    }
}

#[derive(Debug)]
pub struct Ticket {
    line: Option<Line>,
}

impl Ticket {
    pub fn cross(mut self) {
        self.take();
    }
    fn take(&mut self) {
        if let Some(line) = self.line.take() {
            line.crossed.send_modify(|c| *c += 1);
        }
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.take();
    }
}

/// Set once, waited for by many.
#[derive(Clone, Debug)]
pub struct Signal(Arc<watch::Sender<bool>>);

impl Default for Signal {
    fn default() -> Self {
        Self(Arc::new(watch::Sender::new(false)))
    }
}

impl Signal {
    pub fn set(&self) {
        self.0.send_replace(true);
    }

    /// Until set, or `cancel` (Ctrl-C, a lost parent): a hold never outlasts a stop.
    pub async fn wait_or(&self, cancel: &CancellationToken) {
        let mut rx = self.0.subscribe();
        tokio::select! {
            _ = rx.wait_for(|set| *set) => {}
            _ = cancel.cancelled() => {}
        }
    }
}

/// The two lines and the two answers of one holding party (a scenario's slots, or a group's
/// scenarios).
#[derive(Clone, Debug)]
pub struct Hold {
    pub held: Line,
    pub done: Line,
    pub go: Signal,
    pub release: Signal,
}

impl Hold {
    pub fn new(parties: u32) -> Self {
        Self { held: Line::new(parties), done: Line::new(parties), go: Signal::default(), release: Signal::default() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_line_opens_when_every_ticket_crossed_or_dropped() {
        let line = Line::new(3);
        let (a, b, c) = (line.ticket(), line.ticket(), line.ticket());
        a.cross();
        drop(b); // a party that failed still counts
        let waiting = tokio::spawn({
            let line = line.clone();
            async move { line.all().await }
        });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished());
        c.cross();
        waiting.await.unwrap();
    }

    #[tokio::test]
    async fn a_signal_wait_ends_on_set_or_cancel() {
        let s = Signal::default();
        let cancel = CancellationToken::new();
        cancel.cancel();
        s.wait_or(&cancel).await;
        let s2 = s.clone();
        s.set();
        s2.wait_or(&CancellationToken::new()).await;
    }
}
