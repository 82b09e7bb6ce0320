//! [`MesosRuntime`]: instances as Mesos tasks of this tier's framework.
//!
//! - `preflight`: the master's `/version`, its allocation interval (`/master/flags`, recorded
//!   with the version) and at least one agent (`/master/slaves`); each failure is exit 3;
//! - `begin_run` (the driver) subscribes the driver's framework: a refused framework (role,
//!   authentication) is exit 3 before anything is launched; a scenario subscribes its own at its
//!   first launch;
//! - `launch`: a task info from the spec, queued for the next offer that fits; returns when the
//!   agent reports it running (created = our ACCEPT returned, started = TASK_STARTING came). Its native states: the offer's arrival, the accept, then the status
//!   updates' own timestamps (`TASK_STAGING` … `TASK_RUNNING`), with our receive times beside;
//! - `wait_failed` resolves when the task ends TASK_FAILED / ERROR / LOST / DROPPED /
//!   UNREACHABLE …, with the status's message, reason and source;
//! - `kill`: KILL with no grace period, returned at the terminal status; `remove`: the same;
//! - `remove_run`: TEARDOWN of this framework, then of every framework named after the run
//!   (`POST /master/teardown`), waited for until the master no longer lists them.

use async_trait::async_trait;
use bytes::Bytes;
use http_body_util::Full;
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use stampede_core::measure::Role;
use stampede_runtime::{env, Handle, LaunchSpec, Launched, NativeTimes, Runtime, RuntimeError};

use crate::framework::{self, Framework, HttpClient};
use crate::options::{Containerizer, MesosOptions};
use crate::{MesosError, MESOS, RECEIVED_SOURCE, STATUS_SOURCE};

pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// How long `remove_run` waits for torn-down frameworks to leave the master's list.
const GONE_TIMEOUT: Duration = Duration::from_secs(60);
/// How long `why_lost` waits for the master's verdict on a task whose connection dropped (an
/// agent is declared unreachable some pings after it went).
const VERDICT_WAIT: Duration = Duration::from_secs(90);
/// How long `native_times` waits for a status update still on its way.
const STATUS_WAIT: Duration = Duration::from_secs(10);

pub struct MesosRuntime {
    http: HttpClient,
    options: MesosOptions,
    /// This tier's framework, made when first needed (its name needs the run id).
    framework: Mutex<Option<Arc<Framework>>>,
}

impl std::fmt::Debug for MesosRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MesosRuntime").field("options", &self.options).finish()
    }
}

/// `stampede-<instance id>`: the instance id already holds the run, group, scenario, action
/// and incarnation, so task ids are unique on the master and say what they are.
pub fn task_id(spec: &LaunchSpec) -> String {
    format!("stampede-{}", spec.instance_id)
}

/// The prefix of every framework name of run `run_id` (of every run when `None`).
pub fn framework_prefix(run_id: Option<&str>) -> String {
    match run_id {
        Some(r) => format!("stampede-{r}-"),
        None => "stampede-".to_owned(),
    }
}

/// The framework name of the tier this process plays: a scenario by its instance id (its env),
/// the driver by the run.
fn framework_name(run_id: &str) -> String {
    match std::env::var(env::INSTANCE_ID) {
        Ok(me) if !me.is_empty() => format!("stampede-{me}"),
        _ => format!("stampede-{run_id}-driver"),
    }
}

/// `TASK_STAGING` → `staging`.
fn state_name(s: &str) -> String {
    s.trim_start_matches("TASK_").to_ascii_lowercase()
}

impl MesosRuntime {
    pub fn new(options: MesosOptions) -> Self {
        MesosRuntime { http: framework::http_client(), options, framework: Mutex::new(None) }
    }

    pub fn options(&self) -> &MesosOptions {
        &self.options
    }

    /// This tier's framework for run `run_id` (made on first use).
    pub fn framework_for(&self, run_id: &str) -> Arc<Framework> {
        let mut f = self.framework.lock().expect("framework lock");
        f.get_or_insert_with(|| Framework::new(self.http.clone(), self.options.clone(), framework_name(run_id))).clone()
    }

    fn framework(&self) -> Option<Arc<Framework>> {
        self.framework.lock().expect("framework lock").clone()
    }

    async fn get_json(&self, path: &str) -> Result<Value, MesosError> {
        let req = http::Request::get(format!("http://{}{path}", self.options.master))
            .header(http::header::ACCEPT, "application/json")
            .body(Full::new(Bytes::new()))
            .expect("a well-formed request");
        let what = format!("GET {path}");
        let (status, body) = framework::exchange(&self.http, req, &what).await?;
        if !status.is_success() {
            return Err(framework::refused(what, status, &body));
        }
        serde_json::from_slice(&body)
            .map_err(|e| MesosError::Protocol(format!("GET {path} answered what is not JSON: {e}")))
    }

    async fn post_form(&self, path: &str, form: String) -> Result<(), MesosError> {
        let req = http::Request::post(format!("http://{}{path}", self.options.master))
            .header(http::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Full::new(Bytes::from(form)))
            .expect("a well-formed request");
        let what = format!("POST {path}");
        let (status, body) = framework::exchange(&self.http, req, &what).await?;
        if status.is_success() {
            Ok(())
        } else {
            Err(framework::refused(what, status, &body))
        }
    }

    /// `Mesos <version>` of the master.
    pub async fn version(&self) -> Result<String, MesosError> {
        let v = self.get_json("/version").await?;
        Ok(format!("Mesos {}", v["version"].as_str().unwrap_or("?")))
    }

    /// The task info for `spec`, but for the agent and resources (set from the offer).
    pub fn task_template(&self, spec: &LaunchSpec) -> Value {
        let mut vars: Vec<Value> = spec.env.iter().map(|(k, v)| json!({"name": k, "value": v})).collect();
        vars.push(json!({"name": "STAMPEDE_MESOS_TASK", "value": task_id(spec)}));
        let labels: Vec<Value> = spec.labels().into_iter().map(|(k, v)| json!({"key": k, "value": v})).collect();
        let (command, container) = match self.options.containerizer {
            // `docker run IMAGE ARGS…`: the image's entrypoint is the binary.
            Containerizer::Docker => (
                json!({"shell": false, "arguments": spec.args, "environment": {"variables": vars}}),
                json!({"type": "DOCKER", "docker": {"image": spec.image, "network": "HOST", "force_pull_image": false}}),
            ),
            // The Mesos containerizer runs the command itself: the binary, argv[0] first.
            Containerizer::Mesos => {
                let mut argv = vec![json!("/stampede")];
                argv.extend(spec.args.iter().map(|a| json!(a)));
                (
                    json!({"shell": false, "value": "/stampede", "arguments": argv, "environment": {"variables": vars}}),
                    json!({"type": "MESOS", "mesos": {"image": {"type": "DOCKER", "docker": {"name": spec.image}, "cached": true}}}),
                )
            }
        };
        json!({
            "name": spec.instance_id,
            "task_id": {"value": task_id(spec)},
            "command": command,
            "container": container,
            "labels": {"labels": labels},
            "kill_policy": {"grace_period": {"nanoseconds": 0}},
        })
    }

    /// Frameworks the master lists whose name starts with `prefix`: (id, name, live tasks).
    async fn frameworks(&self, prefix: &str) -> Result<Vec<(String, String, usize)>, MesosError> {
        let v = self.get_json("/master/frameworks").await?;
        Ok(v["frameworks"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|f| f["name"].as_str().is_some_and(|n| n.starts_with(prefix)))
            .map(|f| {
                let tasks = f["tasks"].as_array().map_or(0, |t| t.len());
                (
                    f["id"].as_str().unwrap_or_default().to_owned(),
                    f["name"].as_str().unwrap_or_default().to_owned(),
                    tasks,
                )
            })
            .collect())
    }

    async fn teardown_run(&self, run_id: Option<&str>) -> Result<usize, MesosError> {
        let prefix = framework_prefix(run_id);
        let mut removed = 0;
        if let Some(fw) = self.framework() {
            if let Err(e) = fw.teardown().await {
                tracing::warn!("TEARDOWN of {}: {e}", fw.name());
            }
        }
        // The scenarios' frameworks (and ours, if our own TEARDOWN did not get through).
        for (id, name, tasks) in self.frameworks(&prefix).await? {
            tracing::debug!(framework = %name, tasks, "tearing down");
            match self.post_form("/master/teardown", format!("frameworkId={id}")).await {
                Ok(()) => removed += tasks,
                // Gone meanwhile (its scheduler tore it down itself).
                Err(MesosError::Refused { status: 400, .. }) => {}
                Err(e) => return Err(e),
            }
        }
        let deadline = Instant::now() + GONE_TIMEOUT;
        loop {
            let left = self.frameworks(&prefix).await?;
            match left.first() {
                None => return Ok(removed),
                Some((_, name, _)) if Instant::now() >= deadline => {
                    return Err(MesosError::NotGone { name: name.clone(), after: GONE_TIMEOUT })
                }
                Some(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
    }
}

#[async_trait]
impl Runtime for MesosRuntime {
    fn name(&self) -> &'static str {
        MESOS
    }

    async fn preflight(&self, _image: &str) -> Result<String, RuntimeError> {
        let version = self.version().await.map_err(MesosError::unavailable)?;
        let flags = self.get_json("/master/flags").await.map_err(MesosError::unavailable)?;
        let interval = flags["flags"]["allocation_interval"].as_str().unwrap_or("?").to_owned();
        let agents = self.get_json("/master/slaves").await.map_err(MesosError::unavailable)?;
        let active = agents["slaves"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|a| a["active"].as_bool().unwrap_or(false))
            .count();
        if active == 0 {
            return Err(MesosError::NoAgents.unavailable());
        }
        // The image is the agents' business (their Docker, or their image store): a missing one
        // fails each task at once with the agent's message.
        Ok(format!("{version} (allocation_interval {interval}, {active} agent{})", if active == 1 { "" } else { "s" }))
    }

    async fn begin_run(&self, run_id: &str) -> Result<(), RuntimeError> {
        self.framework_for(run_id).start().await.map_err(MesosError::unavailable)
    }

    async fn callback_host(&self) -> Result<String, RuntimeError> {
        if self.options.callback_is_loopback() {
            return Ok("127.0.0.1".to_owned());
        }
        Err(MesosError::NoCallbackHost(
            "children on the agents cannot reach this process by a known address: run the driver with --advertise HOST \
             (an address the agents reach), or mesos = { callback = \"loopback\" } with master and agents on this machine"
                .into(),
        )
        .unavailable())
    }

    fn children_dial_loopback(&self) -> bool {
        self.options.callback_is_loopback()
    }

    async fn launch(&self, spec: &LaunchSpec) -> Result<Launched, RuntimeError> {
        let fw = self.framework_for(&spec.run_id);
        let id = task_id(spec);
        // A scenario on another machine tells its actions the agent's address.
        let advertise = (spec.role == Role::Scenario && !self.options.callback_is_loopback()).then_some(env::ADVERTISE);
        let placed = fw
            .launch(id.clone(), self.task_template(spec), advertise)
            .await
            .map_err(|e| e.into_launch(&spec.instance_id))?;
        // The launch holds its slot until the task runs (with the Docker executor: its
        // container is up), so start concurrency bounds what the agents are starting at once,
        // as it bounds the engine's creates and starts on Docker; `started` is when the agent
        // said it was starting. A task that fails first fails its launch with the reason.
        let started = fw
            .wait_for(&id, |t| {
                if let Some(why) = t.failed() {
                    return Some(Err(why));
                }
                let running = t.states.iter().any(|(s, _)| s == "TASK_RUNNING");
                (running || t.terminal.is_some()).then(|| Ok(t.starting_at.unwrap_or_else(Instant::now)))
            })
            .await
            .and_then(|r| r)
            .map_err(|why| MesosError::Down(why).into_launch(&spec.instance_id))?;
        Ok(Launched { handle: Handle { id, detail: Some(placed.hostname) }, created: Some(placed.accepted), started })
    }

    async fn wait_failed(&self, h: &Handle) -> String {
        let Some(fw) = self.framework() else { return std::future::pending().await };
        match fw.wait_for(&h.id, |t| t.failed()).await {
            Ok(why) => why,
            Err(why) => why,
        }
    }

    async fn kill(&self, h: &Handle) -> Result<(), RuntimeError> {
        let Some(fw) = self.framework() else { return Ok(()) };
        fw.kill(&h.id).await.map_err(|e| e.into_control("kill", &h.id))
    }

    async fn remove(&self, h: &Handle) -> Result<(), RuntimeError> {
        let Some(fw) = self.framework() else { return Ok(()) };
        fw.kill(&h.id).await.map_err(|e| e.into_control("remove", &h.id))?;
        fw.forget(&h.id);
        Ok(())
    }

    async fn native_times(&self, h: &Handle) -> NativeTimes {
        let Some(fw) = self.framework() else { return NativeTimes::default() };
        // TASK_RUNNING may still be on its way when the instance is already done with (the
        // Docker executor reports it after its own inspect): wait for it, or for the end.
        let reached = |t: &framework::Task| {
            (t.terminal.is_some() || t.states.iter().any(|(s, _)| s == "TASK_RUNNING")).then_some(())
        };
        let _ = tokio::time::timeout(STATUS_WAIT, fw.wait_for(&h.id, reached)).await;
        let Some(t) = fw.task(&h.id) else { return NativeTimes::default() };
        let keep = |rows: &[(String, i64)]| -> Vec<(String, i64)> {
            rows.iter()
                .map(|(s, at)| (state_name(s), *at))
                .filter(|(s, _)| crate::STATES.contains(&s.as_str()))
                .collect()
        };
        let mut states = Vec::new();
        if t.offered_us > 0 {
            states.push(("offer_wait".to_owned(), t.offered_us));
        }
        if t.accepted_us > 0 {
            states.push(("accepted".to_owned(), t.accepted_us));
        }
        states.extend(keep(&t.states));
        NativeTimes {
            started_unix_us: None,
            states,
            source: STATUS_SOURCE,
            reference: keep(&t.received),
            reference_source: RECEIVED_SOURCE,
            node: (!t.hostname.is_empty()).then_some(t.hostname),
        }
    }

    async fn is_running(&self, h: &Handle) -> bool {
        self.framework().and_then(|fw| fw.task(&h.id)).is_some_and(|t| t.terminal.is_none())
    }

    async fn why_lost(&self, h: &Handle) -> Option<String> {
        let fw = self.framework()?;
        match tokio::time::timeout(VERDICT_WAIT, fw.wait_for(&h.id, |t| t.terminal.clone())).await {
            Ok(Ok((state, why))) => Some(format!("{state}: {why}")),
            _ => None,
        }
    }

    async fn remove_run(&self, run_id: Option<&str>) -> Result<usize, RuntimeError> {
        self.teardown_run(run_id)
            .await
            .map_err(|e| RuntimeError::Cleanup { run_id: run_id.unwrap_or("*").to_owned(), source: Box::new(e) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(role: Role) -> LaunchSpec {
        LaunchSpec {
            run_id: "r1".into(),
            role,
            instance_id: "r1-g0-s1-a2".into(),
            group: 0,
            scenario: 1,
            action: Some(2),
            image: "stampede:latest".into(),
            args: vec!["action".into()],
            env: vec![("STAMPEDE_TOKEN".into(), "t".into())],
        }
    }

    #[test]
    fn docker_tasks_run_the_image_entrypoint_with_host_networking() {
        let rt = MesosRuntime::new(MesosOptions::default());
        let t = rt.task_template(&spec(Role::Action));
        assert_eq!(t["task_id"]["value"], "stampede-r1-g0-s1-a2");
        assert_eq!(t["container"]["docker"]["network"], "HOST");
        assert_eq!(t["command"]["shell"], false);
        assert_eq!(t["command"]["arguments"], json!(["action"]));
        assert!(t["command"].get("value").is_none(), "docker run keeps the image's entrypoint");
        assert_eq!(t["kill_policy"]["grace_period"]["nanoseconds"], 0);
        let labels = t["labels"]["labels"].as_array().unwrap();
        assert!(labels.contains(&json!({"key": "stampede.run", "value": "r1"})), "{labels:?}");
    }

    #[test]
    fn mesos_containerizer_tasks_name_the_binary() {
        let rt = MesosRuntime::new(MesosOptions { containerizer: Containerizer::Mesos, ..Default::default() });
        let t = rt.task_template(&spec(Role::Action));
        assert_eq!(t["command"]["value"], "/stampede");
        assert_eq!(t["command"]["arguments"], json!(["/stampede", "action"]));
        assert_eq!(t["container"]["mesos"]["image"]["docker"]["name"], "stampede:latest");
    }

    #[test]
    fn state_names_drop_the_prefix() {
        assert_eq!(state_name("TASK_STAGING"), "staging");
        assert_eq!(framework_prefix(Some("r1")), "stampede-r1-");
    }
}
