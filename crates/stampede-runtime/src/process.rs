//! The `process` runtime: every instance is a child process of the same `stampede` binary.
//!
//! It is the embedded default and the zero-container baseline: what is left of a start latency
//! here is fork/exec, the process's own boot and the websocket handshake.
//!
//! - pause/resume are SIGSTOP/SIGCONT (the process analogue of the cgroup freezer);
//! - kill is SIGKILL; remove reaps the child;
//! - children get their own process group, so a Ctrl-C at the terminal reaches only the driver,
//!   which then stops them in order, and `PR_SET_PDEATHSIG`, so that a driver or scenario that
//!   dies hard takes its children with it: nothing is ever left running.

use async_trait::async_trait;
use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Mutex;
use std::time::Instant;
use tokio::process::{Child, Command};

use stampede_core::scenario::{Capabilities, OptionsTable, RuntimeInfo};

use crate::{Handle, LaunchSpec, Launched, Runtime, RuntimeError, RuntimeProvider};

/// The catalog name of this runtime.
pub const NAME: &str = "process";

#[derive(Debug)]
pub struct ProcessRuntime {
    exe: PathBuf,
    children: Mutex<HashMap<String, Child>>,
}

impl ProcessRuntime {
    /// `exe` is the `stampede` binary children run (normally `std::env::current_exe()`).
    pub fn new(exe: PathBuf) -> Self {
        Self { exe, children: Mutex::new(HashMap::new()) }
    }

    fn pid(h: &Handle) -> Result<libc::pid_t, RuntimeError> {
        h.id.parse().map_err(|_| RuntimeError::Control { op: "signal", id: h.id.clone(), source: "not a pid".into() })
    }

    /// Signal a child we launched. Refuses pids that are not ours, so a stale handle can never
    /// signal an unrelated process that reused the pid.
    fn signal(&self, h: &Handle, op: &'static str, sig: libc::c_int) -> Result<(), RuntimeError> {
        let pid = Self::pid(h)?;
        let mut children = self.children.lock().expect("children lock");
        let child = children
            .get_mut(&h.id)
            .ok_or_else(|| RuntimeError::Control { op, id: h.id.clone(), source: "not a child of this runtime".into() })?;
        if let Ok(Some(status)) = child.try_wait() {
            return Err(RuntimeError::Control { op, id: h.id.clone(), source: format!("already exited ({status})").into() });
        }
        send_signal(pid, sig).map_err(|e| RuntimeError::Control { op, id: h.id.clone(), source: e.into() })
    }
}

/// The process runtime as the registry offers it: no options, everything but images.
#[derive(Debug, Clone)]
pub struct ProcessProvider {
    exe: PathBuf,
}

impl ProcessProvider {
    /// `exe` is the `stampede` binary children run (normally `std::env::current_exe()`).
    pub fn new(exe: PathBuf) -> Self {
        Self { exe }
    }
}

impl RuntimeInfo for ProcessProvider {
    fn name(&self) -> &'static str {
        NAME
    }
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            pause_resume: true,
            kill: true,
            image: false,
            image_filler: false,
            // fork/exec is cheap and local: many at once measure the processes, not a queue.
            default_start_concurrency: 64,
            // Each scenario forks its own children: nothing shared to protect.
            run_start_concurrency: u32::MAX,
            native_states: &[],
            // An action is a current-thread tokio process; a scenario has a few worker threads
            // and serves A connections. Measured with `ps -L` on a held run.
            threads_per_instance: 2,
            memory_per_instance_kib: 4096,
        }
    }
    fn read_options(&self, table: &mut OptionsTable<'_>) -> serde_json::Value {
        table.allow(&[]);
        serde_json::Value::Null
    }
    fn default_options(&self) -> serde_json::Value {
        serde_json::Value::Null
    }
}

#[async_trait]
impl RuntimeProvider for ProcessProvider {
    async fn connect(&self, _options: &serde_json::Value) -> Result<std::sync::Arc<dyn Runtime>, RuntimeError> {
        Ok(std::sync::Arc::new(ProcessRuntime::new(self.exe.clone())))
    }
    /// Children die with their parent (`PR_SET_PDEATHSIG`): nothing can be left to clean.
    async fn clean(&self, _run_id: Option<&str>) -> Result<Option<usize>, RuntimeError> {
        Ok(None)
    }
}

#[allow(unsafe_code)]
fn send_signal(pid: libc::pid_t, sig: libc::c_int) -> std::io::Result<()> {
    // SAFETY: kill(2) has no memory-safety preconditions; the pid is a live child we own
    // (checked by the caller under the children lock, and it cannot be reaped meanwhile).
    if unsafe { libc::kill(pid, sig) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[allow(unsafe_code)]
fn die_with_parent(cmd: &mut Command) {
    // SAFETY: the closure runs between fork and exec and only calls prctl(2), which is
    // async-signal-safe, and allocates nothing.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

#[async_trait]
impl Runtime for ProcessRuntime {
    fn name(&self) -> &'static str {
        NAME
    }

    fn children_dial_loopback(&self) -> bool {
        true
    }

    async fn preflight(&self, _image: &str) -> Result<String, RuntimeError> {
        if !self.exe.is_file() {
            return Err(RuntimeError::Unavailable {
                runtime: NAME.to_owned(),
                source: format!("the stampede binary {} does not exist", self.exe.display()).into(),
            });
        }
        Ok(format!("stampede {} (processes)", env!("CARGO_PKG_VERSION")))
    }

    async fn callback_host(&self) -> Result<String, RuntimeError> {
        Ok("127.0.0.1".to_owned())
    }

    async fn launch(&self, spec: &LaunchSpec) -> Result<Launched, RuntimeError> {
        let mut cmd = Command::new(&self.exe);
        cmd.args(&spec.args)
            .envs(spec.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            // Children log to stderr (RUST_LOG); let it through so failures are visible.
            .stderr(Stdio::inherit())
            .process_group(0)
            .kill_on_drop(true);
        die_with_parent(&mut cmd);
        let child = cmd
            .spawn()
            .map_err(|e| RuntimeError::Launch { instance: spec.instance_id.clone(), source: format!("spawn {}: {e}", self.exe.display()).into() })?;
        let started = Instant::now();
        let id = child.id().map(|p| p.to_string()).unwrap_or_default();
        self.children.lock().expect("children lock").insert(id.clone(), child);
        Ok(Launched { handle: Handle { id, detail: None }, created: None, started })
    }

    async fn pause(&self, h: &Handle) -> Result<(), RuntimeError> {
        self.signal(h, "pause", libc::SIGSTOP)
    }

    async fn resume(&self, h: &Handle) -> Result<(), RuntimeError> {
        self.signal(h, "resume", libc::SIGCONT)
    }

    async fn kill(&self, h: &Handle) -> Result<(), RuntimeError> {
        self.signal(h, "kill", libc::SIGKILL)
    }

    async fn remove(&self, h: &Handle) -> Result<(), RuntimeError> {
        let child = self.children.lock().expect("children lock").remove(&h.id);
        let Some(mut child) = child else { return Ok(()) };
        // A paused child would never exit on its own: kill whatever is still there, then reap.
        if matches!(child.try_wait(), Ok(None)) {
            let _ = child.start_kill();
        }
        child
            .wait()
            .await
            .map(|_| ())
            .map_err(|e| RuntimeError::Control { op: "remove", id: h.id.clone(), source: e.into() })
    }

    /// A child that exits before it connected (a bad binary, a crash at start) fails its launch
    /// at once: polled, because tokio's `wait` needs the `Child` that stays in the map.
    async fn wait_failed(&self, h: &Handle) -> String {
        let mut every = tokio::time::interval(std::time::Duration::from_millis(20));
        loop {
            every.tick().await;
            let polled = self.children.lock().expect("children lock").get_mut(&h.id).map(|c| c.try_wait());
            match polled {
                Some(Ok(Some(status))) => return format!("the process exited before it connected ({status})"),
                Some(Err(e)) => return format!("the process cannot be waited for: {e}"),
                Some(Ok(None)) => {}
                // Removed by someone else: not ours to report.
                None => return std::future::pending().await,
            }
        }
    }

    async fn is_running(&self, h: &Handle) -> bool {
        let mut children = self.children.lock().expect("children lock");
        children.get_mut(&h.id).is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    async fn remove_run(&self, _run_id: Option<&str>) -> Result<usize, RuntimeError> {
        // A process runtime only ever owns its own children (and PDEATHSIG covers the rest).
        let handles: Vec<Handle> = self
            .children
            .lock()
            .expect("children lock")
            .keys()
            .map(|id| Handle { id: id.clone(), detail: None })
            .collect();
        for h in &handles {
            self.remove(h).await?;
        }
        Ok(handles.len())
    }
}
