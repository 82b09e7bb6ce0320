//! One watch per launching tier: every pod's transitions, timed with our own receive time.
//!
//! ClusterLoader2 and kube-burner time pods from the API's condition `lastTransitionTime`,
//! which has one-second resolution. We keep those too (as a reference series), but time each
//! transition by when the watch event carrying it reached us (µs, wall clock), so phases of a
//! few milliseconds are seen. One watch stream per label selector serves every pod a tier
//! launches — never a poll per pod.
//!
//! The same stream says at once when a pod can never start (unschedulable, image missing,
//! container not creatable): [`PodTrack::failed`] holds the reason, and waiters wake.

use futures_util::StreamExt as _;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams, WatchEvent, WatchParams};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::watch as signal;

/// Our state names, in the order a pod reaches them (`native_phase_<state>`).
pub const STATES: &[&str] = &["scheduled", "initialized", "running", "containers_ready"];
/// `source` of our receive-time series in native_states.csv.
pub const WATCH_SOURCE: &str = "kubernetes_watch";
/// `source` of the API's own condition times (`lastTransitionTime`, 1 s resolution).
pub const CONDITION_SOURCE: &str = "kubernetes_condition";

/// Container waiting reasons after which a pod never starts by itself.
const FATAL_WAITING: &[&str] = &[
    "ErrImageNeverPull",
    "ImagePullBackOff",
    "ErrImagePull",
    "InvalidImageName",
    "CreateContainerError",
    "CreateContainerConfigError",
    "RunContainerError",
];

/// What the watch saw of one pod.
#[derive(Debug, Clone, Default)]
pub struct PodTrack {
    /// Our receive time (wall µs) of each state, first seen, in the order seen.
    pub seen: Vec<(String, i64)>,
    /// The API's own times of the same states (condition `lastTransitionTime`, container
    /// `startedAt`): whole seconds.
    pub api: Vec<(String, i64)>,
    /// Why the pod can never start, once the platform said so.
    pub failed: Option<String>,
    /// Its container ended, or the pod reached `Succeeded`/`Failed`.
    pub ended: bool,
    /// The watch reported it deleted.
    pub gone: bool,
}

impl PodTrack {
    fn saw(&mut self, state: &str, now_us: i64) {
        if !self.seen.iter().any(|(s, _)| s == state) {
            self.seen.push((state.to_owned(), now_us));
        }
    }

    fn api_time(&mut self, state: &str, t: &k8s_openapi::apimachinery::pkg::apis::meta::v1::Time) {
        if !self.api.iter().any(|(s, _)| s == state) {
            self.api.push((state.to_owned(), t.0.as_microsecond()));
        }
    }

    /// Fold one observed version of the pod into the track, received at `now_us`.
    pub fn observe(&mut self, pod: &Pod, now_us: i64) {
        let Some(status) = &pod.status else { return };
        // States first reached in this event are recorded in STATES order (one event often
        // brings phase Running and ContainersReady together).
        let mut reached: Vec<&str> = Vec::new();
        for c in status.conditions.iter().flatten() {
            let state = match c.type_.as_str() {
                "PodScheduled" => "scheduled",
                "Initialized" => "initialized",
                "ContainersReady" => "containers_ready",
                _ => continue,
            };
            if c.status == "True" {
                reached.push(state);
                if let Some(t) = &c.last_transition_time {
                    self.api_time(state, t);
                }
            } else if c.type_ == "PodScheduled" && c.reason.as_deref() == Some("Unschedulable") && self.failed.is_none() {
                self.failed = Some(format!("Unschedulable: {}", c.message.as_deref().unwrap_or("(no message)")));
            }
        }
        if status.phase.as_deref() == Some("Running") {
            reached.push("running");
        }
        for state in STATES.iter().filter(|s| reached.contains(s)) {
            self.saw(state, now_us);
        }
        if matches!(status.phase.as_deref(), Some("Succeeded" | "Failed")) {
            self.ended = true;
        }
        for cs in status.container_statuses.iter().flatten() {
            let Some(state) = &cs.state else { continue };
            if let Some(r) = &state.running {
                if let Some(t) = &r.started_at {
                    self.api_time("running", t);
                }
            }
            if state.terminated.is_some() {
                self.ended = true;
            }
            if let Some(w) = &state.waiting {
                let reason = w.reason.as_deref().unwrap_or_default();
                if FATAL_WAITING.contains(&reason) && self.failed.is_none() {
                    self.failed = Some(format!("{reason}: {}", w.message.as_deref().unwrap_or("(no message)")));
                }
            }
        }
    }
}

/// Wall clock now, µs since the epoch (the receive time of an event).
pub fn now_unix_us() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

/// The tracks of every pod one watch sees, and a signal that fires on every change.
#[derive(Debug)]
pub struct PodWatch {
    pods: Mutex<HashMap<String, PodTrack>>,
    changed: signal::Sender<u64>,
    /// Why the watch itself ended for good (every waiter then gives up).
    broken: Mutex<Option<String>>,
    task: Mutex<Option<tokio::task::AbortHandle>>,
}

impl Drop for PodWatch {
    fn drop(&mut self) {
        if let Some(t) = self.task.lock().expect("watch lock").take() {
            t.abort();
        }
    }
}

impl PodWatch {
    /// Open the watch of pods matching `selector` in `api`'s namespace and follow it in a task.
    /// Returns once the server has accepted the watch, so no pod created after this is missed.
    pub async fn start(api: Api<Pod>, selector: String) -> Result<Arc<PodWatch>, kube::Error> {
        let list = api.list(&ListParams::default().labels(&selector).limit(1)).await?;
        let mut version = list.metadata.resource_version.unwrap_or_default();
        let params = WatchParams::default().labels(&selector).timeout(290);
        let first = api.watch(&params, &version).await?;
        let (tx, _) = signal::channel(0);
        let w = Arc::new(PodWatch {
            pods: Mutex::new(HashMap::new()),
            changed: tx,
            broken: Mutex::new(None),
            task: Mutex::new(None),
        });
        let weak = Arc::downgrade(&w);
        let task = tokio::spawn(async move {
            let mut stream = first.boxed();
            loop {
                while let Some(ev) = stream.next().await {
                    let Some(w) = weak.upgrade() else { return };
                    let now = now_unix_us();
                    match ev {
                        Ok(WatchEvent::Added(p)) | Ok(WatchEvent::Modified(p)) => {
                            version = p.metadata.resource_version.clone().unwrap_or(version);
                            w.update(&p, now, false);
                        }
                        Ok(WatchEvent::Deleted(p)) => {
                            version = p.metadata.resource_version.clone().unwrap_or(version);
                            w.update(&p, now, true);
                        }
                        Ok(WatchEvent::Bookmark(b)) => version = b.metadata.resource_version,
                        Ok(WatchEvent::Error(status)) => {
                            // 410 Gone: our resource version is too old; start from a new list.
                            tracing::debug!(code = status.code, message = %status.message, "pod watch error event");
                            version.clear();
                            break;
                        }
                        Err(e) => {
                            tracing::debug!(error = %e, "pod watch stream error");
                            break;
                        }
                    }
                }
                // The server ends a watch after its timeout: continue from where we were.
                let Some(w) = weak.upgrade() else { return };
                let reopened = async {
                    if version.is_empty() {
                        let list = api.list(&ListParams::default().labels(&selector)).await?;
                        let now = now_unix_us();
                        for p in &list.items {
                            w.update(p, now, false);
                        }
                        version = list.metadata.resource_version.unwrap_or_default();
                    }
                    api.watch(&params, &version).await
                };
                match reopened.await {
                    Ok(s) => stream = s.boxed(),
                    Err(e) => {
                        *w.broken.lock().expect("watch lock") = Some(format!("the pod watch ended: {e}"));
                        w.changed.send_modify(|n| *n += 1);
                        return;
                    }
                }
            }
        });
        *w.task.lock().expect("watch lock") = Some(task.abort_handle());
        Ok(w)
    }

    fn update(&self, pod: &Pod, now: i64, deleted: bool) {
        let Some(name) = pod.metadata.name.clone() else { return };
        {
            let mut pods = self.pods.lock().expect("watch lock");
            let track = pods.entry(name).or_default();
            track.observe(pod, now);
            if deleted {
                track.gone = true;
            }
        }
        self.changed.send_modify(|n| *n += 1);
    }

    /// What the watch has seen of `pod` so far.
    pub fn track(&self, pod: &str) -> PodTrack {
        self.pods.lock().expect("watch lock").get(pod).cloned().unwrap_or_default()
    }

    /// Stop tracking `pod` (it is gone and its times were read).
    pub fn forget(&self, pod: &str) {
        self.pods.lock().expect("watch lock").remove(pod);
    }

    /// Wait until `done` holds for `pod`'s track; `Err` with the reason when the watch broke.
    pub async fn wait_for<T>(&self, pod: &str, mut done: impl FnMut(&PodTrack) -> Option<T>) -> Result<T, String> {
        let mut rx = self.changed.subscribe();
        loop {
            if let Some(t) = self.pods.lock().expect("watch lock").get(pod).and_then(&mut done) {
                return Ok(t);
            }
            if let Some(why) = self.broken.lock().expect("watch lock").clone() {
                return Err(why);
            }
            if rx.changed().await.is_err() {
                return Err("the pod watch ended".into());
            }
        }
    }
}
