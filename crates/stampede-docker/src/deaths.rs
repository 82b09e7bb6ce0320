//! [`Deaths`]: the engine's `die` events of stampede's containers, from one event stream per
//! runtime, so that a container that exits before it connects fails its launch at once (with
//! its exit code) instead of at the ready timeout.
//!
//! One `GET /events` for the whole runtime, not one `wait` call per container: a thousand
//! launches must not hold a thousand connections to the daemon. The stream starts with the
//! first launch, filtered to what this runtime launches (the run and role, and for actions their
//! scenario, so that S scenarios do not each hear of all S·A deaths), and asks for events
//! `since` the runtime was created, so a container that died before anyone waited for it is
//! still seen. (A later launch outside that filter would fail at its ready timeout instead;
//! the tiers never make one: a scenario launches only its own actions.) A death nobody waits for yet is kept until its
//! container is removed ([`Deaths::forget`]). A broken stream (the daemon restarted) is
//! reopened from the last event it delivered.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use bollard::query_parameters::EventsOptionsBuilder;
use bollard::Docker;
use futures_util::StreamExt;
use std::sync::OnceLock;
use tokio::sync::oneshot;

use stampede_runtime::{labels, LaunchSpec};

/// Deaths kept for containers nobody waits for, at most: a run removes its containers, and each
/// removal forgets; the cap only bounds a runtime whose containers are removed by others.
const MAX_KEPT: usize = 100_000;

#[derive(Debug)]
pub(crate) struct Deaths {
    /// Unix time (seconds, fractional) the runtime was created: the stream's `since`.
    since: f64,
    started: OnceLock<()>,
    inner: Arc<Mutex<Inner>>,
}

#[derive(Debug, Default)]
struct Inner {
    /// Container ID → why it ended, for deaths seen before anyone waited.
    dead: HashMap<String, String>,
    waiting: HashMap<String, Vec<oneshot::Sender<String>>>,
}

impl Deaths {
    pub(crate) fn new() -> Self {
        let since = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or_default();
        // A second's slack: the daemon's clock and ours are the same machine's, but its
        // timestamps are compared whole.
        Self { since: since - 1.0, started: OnceLock::new(), inner: Arc::default() }
    }

    /// Start following deaths of instances like `spec` (once; before its container exists).
    pub(crate) fn follow(&self, docker: &Docker, spec: &LaunchSpec) {
        self.started.get_or_init(|| {
            let mut filters = vec![
                format!("{}={}", labels::RUN, spec.run_id),
                format!("{}={}", labels::ROLE, spec.role.as_str()),
            ];
            if spec.action.is_some() {
                filters.push(format!("{}={}", labels::GROUP, spec.group));
                filters.push(format!("{}={}", labels::SCENARIO, spec.scenario));
            }
            tokio::spawn(watch(docker.clone(), self.since, filters, Arc::downgrade(&self.inner)));
        });
    }

    /// Resolves with the reason once container `id` dies; pending for ever if it never does.
    pub(crate) async fn wait(&self, id: &str) -> String {
        if self.started.get().is_none() {
            // Nothing launched through this runtime: nothing of ours to die.
            return std::future::pending().await;
        }
        let rx = {
            let mut inner = self.inner.lock().expect("deaths lock");
            if let Some(why) = inner.dead.get(id) {
                return why.clone();
            }
            let (tx, rx) = oneshot::channel();
            inner.waiting.entry(id.to_owned()).or_default().push(tx);
            rx
        };
        match rx.await {
            Ok(why) => why,
            Err(_) => std::future::pending().await,
        }
    }

    /// The container is removed: its death (and any waiter) is of no more use.
    pub(crate) fn forget(&self, id: &str) {
        let mut inner = self.inner.lock().expect("deaths lock");
        inner.dead.remove(id);
        inner.waiting.remove(id);
    }
}

/// Follow `die` events of stampede's containers until the runtime is dropped.
async fn watch(docker: Docker, mut since: f64, labels: Vec<String>, inner: Weak<Mutex<Inner>>) {
    let filters = HashMap::from([
        ("type", vec!["container".to_owned()]),
        ("event", vec!["die".to_owned()]),
        // Several `label` filters must all match.
        ("label", labels),
    ]);
    loop {
        let options = EventsOptionsBuilder::new().since(&format!("{since:.3}")).filters(&filters).build();
        let mut events = docker.events(Some(options));
        while let Some(event) = events.next().await {
            let Some(inner) = inner.upgrade() else { return };
            let event = match event {
                Ok(e) => e,
                Err(e) => {
                    tracing::debug!("docker event stream: {e}");
                    break;
                }
            };
            if let Some(nanos) = event.time_nano {
                since = since.max(nanos as f64 / 1e9);
            }
            let Some(actor) = event.actor else { continue };
            let Some(id) = actor.id else { continue };
            let code = actor.attributes.as_ref().and_then(|a| a.get("exitCode")).map_or("unknown", |c| c.as_str());
            let why = format!("the container exited before it connected (exit code {code})");
            let mut inner = inner.lock().expect("deaths lock");
            match inner.waiting.remove(&id) {
                Some(waiters) => waiters.into_iter().for_each(|w| drop(w.send(why.clone()))),
                None if inner.dead.len() < MAX_KEPT => drop(inner.dead.insert(id, why)),
                None => {}
            }
        }
        if inner.strong_count() == 0 {
            return;
        }
        // Ended or broke (the daemon restarting): reopen from the last event seen.
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
