//! The `mesos = { … }` table of a scenario group: its type, its defaults (Mesos's own where
//! Mesos has one), and how it is read (through the parser's [`OptionsTable`], so a mistake is
//! reported with file, line and field like any other).
//!
//! ```toml
//! mesos = {
//!   master = "127.0.0.1:5050",    # host:port of the master (5050 is Mesos's port)
//!   refuse_seconds = 5.0,         # filters.refuse_seconds on every DECLINE and ACCEPT: how long
//!                                 # the allocator keeps what we left of an offer away from us
//!                                 # (5 s is Mesos's default; the seed's tip is 0.01)
//!   role = "*",                   # the role the frameworks subscribe with ("*": the default role)
//!   cpus = 0.1, mem = 32,         # resources of each task (cpus, MiB)
//!   containerizer = "docker",     # docker (default): the agent's Docker runs our image;
//!                                 # mesos: the Mesos containerizer runs it from its image store
//!   callback = "auto",            # where children dial their parent: auto | loopback | agent
//! }
//! ```
//!
//! `callback = "auto"`: with the master on a loopback address (master and agents on this
//! machine) children dial `127.0.0.1`; otherwise a scenario tells its actions the address of
//! the agent it runs on (the offer's hostname), and the driver needs `--advertise`.

use serde::{Deserialize, Serialize};

use stampede_core::scenario::OptionsTable;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Containerizer {
    #[default]
    Docker,
    Mesos,
}

impl Containerizer {
    pub fn as_str(self) -> &'static str {
        match self {
            Containerizer::Docker => "docker",
            Containerizer::Mesos => "mesos",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Callback {
    /// Loopback when the master is on loopback, else the agent's address.
    #[default]
    Auto,
    Loopback,
    /// The hostname of the agent the parent runs on, as its offer named it.
    Agent,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MesosOptions {
    /// `host:port` of the master.
    pub master: String,
    pub refuse_seconds: f64,
    pub role: String,
    pub cpus: f64,
    /// MiB.
    pub mem: f64,
    pub containerizer: Containerizer,
    pub callback: Callback,
}

impl Default for MesosOptions {
    fn default() -> Self {
        MesosOptions {
            master: "127.0.0.1:5050".into(),
            refuse_seconds: 5.0,
            role: "*".into(),
            cpus: 0.1,
            mem: 32.0,
            containerizer: Containerizer::Docker,
            callback: Callback::Auto,
        }
    }
}

impl MesosOptions {
    /// Whether the master is on this machine's loopback (so are its agents, then).
    pub fn master_is_loopback(&self) -> bool {
        let host = self.master.rsplit_once(':').map_or(self.master.as_str(), |(h, _)| h).trim_matches(['[', ']']);
        host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
    }

    pub fn callback_is_loopback(&self) -> bool {
        match self.callback {
            Callback::Auto => self.master_is_loopback(),
            Callback::Loopback => true,
            Callback::Agent => false,
        }
    }
}

fn valid_master(s: &str) -> bool {
    match s.rsplit_once(':') {
        Some((h, p)) => !h.is_empty() && !h.contains('/') && p.parse::<u16>().is_ok_and(|p| p > 0),
        None => false,
    }
}

pub(crate) fn read(t: &mut OptionsTable<'_>) -> MesosOptions {
    t.allow(&["master", "refuse_seconds", "role", "cpus", "mem", "containerizer", "callback"]);
    let mut o = MesosOptions::default();
    if let Some(m) = t.string("master") {
        if valid_master(&m) {
            o.master = m;
        } else {
            t.problem(
                "master",
                format!("expected \"host:port\" of the Mesos master, such as \"127.0.0.1:5050\", got \"{m}\""),
            );
        }
    }
    if let Some(r) = t.number_above("refuse_seconds", 0.0) {
        o.refuse_seconds = r;
    }
    if let Some(r) = t.string("role") {
        o.role = r;
    }
    if let Some(c) = t.number_above("cpus", 0.0) {
        o.cpus = c;
    }
    if let Some(m) = t.number_above("mem", 0.0) {
        o.mem = m;
    }
    if let Some(c) = t.keyword("containerizer", &[("docker", Containerizer::Docker), ("mesos", Containerizer::Mesos)]) {
        o.containerizer = c;
    }
    if let Some(c) =
        t.keyword("callback", &[("auto", Callback::Auto), ("loopback", Callback::Loopback), ("agent", Callback::Agent)])
    {
        o.callback = c;
    }
    o
}

/// Options as the registry hands them to `connect` (validated JSON, or null for defaults).
pub(crate) fn decode(v: &serde_json::Value) -> MesosOptions {
    // The JSON came from `read` above (or an older results file): a shape it cannot have is a
    // bug, and the defaults are the safe answer.
    serde_json::from_value(v.clone()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masters_are_host_and_port() {
        for m in ["127.0.0.1:5050", "mesos.example:5050", "[::1]:5050"] {
            assert!(valid_master(m), "{m}");
        }
        for m in ["127.0.0.1", "http://m:5050", ":5050", "m:0", "m:port"] {
            assert!(!valid_master(m), "{m}");
        }
    }

    #[test]
    fn loopback_masters_mean_loopback_callbacks() {
        let mut o = MesosOptions::default();
        assert!(o.callback_is_loopback());
        o.master = "[::1]:5050".into();
        assert!(o.master_is_loopback());
        o.master = "10.0.0.1:5050".into();
        assert!(!o.callback_is_loopback());
        o.callback = Callback::Loopback;
        assert!(o.callback_is_loopback());
    }

    #[test]
    fn defaults_round_trip_through_json() {
        let o = MesosOptions::default();
        assert_eq!(decode(&serde_json::to_value(&o).unwrap()), o);
        assert_eq!(decode(&serde_json::Value::Null), o);
    }
}
