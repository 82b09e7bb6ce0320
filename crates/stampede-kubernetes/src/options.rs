//! The `kubernetes = { … }` table of a scenario group: its type, its defaults, and how it is
//! read (through the parser's [`OptionsTable`], so a mistake is reported with file, line and
//! field like any other).
//!
//! ```toml
//! kubernetes = {
//!   namespace = "",                     # "" (default): a namespace of its own per run, deleted
//!                                       # at the end; a name: use that existing namespace, and
//!                                       # remove only what the run labelled there
//!   image_pull_policy = "IfNotPresent", # IfNotPresent (default) | Never (images loaded on the
//!                                       # nodes) | Always
//!   host_network = true,                # true (default): hostNetwork pods; false: the pod network
//!   callback = "auto",                  # where children dial their parent: auto (default) |
//!                                       # loopback | node_ip | pod_ip (see below)
//!   api_host_override = "auto",         # KUBERNETES_SERVICE_HOST:PORT for scenario pods: auto
//!                                       # (default) | none | "host:port" (see below)
//!   cpu_request = "", cpu_limit = "",   # quantities, e.g. "100m"; "" (default) sets none
//!   memory_request = "", memory_limit = "",  # e.g. "32Mi"
//!   node_selector = { },                # e.g. { "kubernetes.io/hostname" = "vm" }
//!   tolerations = [],                   # kubectl taint syntax: "key=value:NoSchedule",
//!                                       # "key:NoExecute", "key" (any effect)
//!   qps = 20, burst = 20,               # client-side pacing of API calls (kube-burner's defaults)
//! }
//! ```
//!
//! `callback = "auto"`: with host networking and an API server on a loopback address (a
//! one-node cluster on this machine) children dial `127.0.0.1`; with host networking otherwise,
//! the node's address (downward API `status.hostIP`); on the pod network, the parent pod's IP
//! (`status.podIP`). A driver outside the cluster that is not on loopback needs `--advertise`.
//!
//! `api_host_override = "auto"`: scenario pods talk to the API themselves (they start the
//! actions). In a cluster with kube-proxy the in-cluster service address just works, and auto
//! sets nothing — unless the pods use host networking and the driver's own API server address
//! is an IP literal on loopback (a cluster on this machine without kube-proxy): then scenario
//! pods get `KUBERNETES_SERVICE_HOST`/`PORT` set to it.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use stampede_core::scenario::OptionsTable;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum PullPolicy {
    #[default]
    IfNotPresent,
    Never,
    Always,
}

impl PullPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            PullPolicy::IfNotPresent => "IfNotPresent",
            PullPolicy::Never => "Never",
            PullPolicy::Always => "Always",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Callback {
    /// Loopback, node IP or pod IP, from where the API server is and the network mode.
    #[default]
    Auto,
    /// Every pod on the parent's machine, host networking: `127.0.0.1`.
    Loopback,
    /// The node's address (downward API `status.hostIP`), host networking.
    NodeIp,
    /// The parent pod's own IP (downward API `status.podIP`), pod network.
    PodIp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ApiHostOverride {
    #[default]
    Auto,
    None,
    /// `host:port` given to scenario pods as KUBERNETES_SERVICE_HOST / _PORT.
    Address(String),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct KubernetesOptions {
    /// Existing namespace to use; empty: one of its own per run.
    pub namespace: String,
    pub image_pull_policy: PullPolicy,
    pub host_network: bool,
    pub callback: Callback,
    pub api_host_override: ApiHostOverride,
    pub cpu_request: String,
    pub cpu_limit: String,
    pub memory_request: String,
    pub memory_limit: String,
    pub node_selector: BTreeMap<String, String>,
    /// kubectl taint syntax, see the module docs.
    pub tolerations: Vec<String>,
    /// API calls per second and burst of this client (kube-burner's defaults: 20 and 20).
    pub qps: f64,
    pub burst: u32,
}

impl Default for KubernetesOptions {
    fn default() -> Self {
        KubernetesOptions {
            namespace: String::new(),
            image_pull_policy: PullPolicy::IfNotPresent,
            host_network: true,
            callback: Callback::Auto,
            api_host_override: ApiHostOverride::Auto,
            cpu_request: String::new(),
            cpu_limit: String::new(),
            memory_request: String::new(),
            memory_limit: String::new(),
            node_selector: BTreeMap::new(),
            tolerations: Vec::new(),
            qps: 20.0,
            burst: 20,
        }
    }
}

/// A toleration in kubectl's taint syntax: `key[=value][:effect]`.
pub fn parse_toleration(s: &str) -> Result<(String, Option<String>, Option<String>), String> {
    let (kv, effect) = match s.split_once(':') {
        Some((kv, e)) => (kv, Some(e)),
        None => (s, None),
    };
    if let Some(e) = effect {
        if !["NoSchedule", "PreferNoSchedule", "NoExecute"].contains(&e) {
            return Err(format!("effect `{e}` is not NoSchedule, PreferNoSchedule or NoExecute"));
        }
    }
    let (key, value) = match kv.split_once('=') {
        Some((k, v)) => (k, Some(v.to_owned())),
        None => (kv, None),
    };
    if key.is_empty() {
        return Err("the key is empty".into());
    }
    Ok((key.to_owned(), value, effect.map(str::to_owned)))
}

/// A Kubernetes quantity as the API accepts it (`100m`, `1.5`, `64Mi`, `1G`).
fn valid_quantity(s: &str) -> bool {
    let digits = s.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let suffix = &s[digits.len()..];
    !digits.is_empty()
        && digits.parse::<f64>().is_ok_and(|v| v >= 0.0)
        && ["", "m", "k", "M", "G", "T", "P", "E", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"].contains(&suffix)
}

pub(crate) fn read(t: &mut OptionsTable<'_>) -> KubernetesOptions {
    t.allow(&[
        "namespace",
        "image_pull_policy",
        "host_network",
        "callback",
        "api_host_override",
        "cpu_request",
        "cpu_limit",
        "memory_request",
        "memory_limit",
        "node_selector",
        "tolerations",
        "qps",
        "burst",
    ]);
    let mut o = KubernetesOptions::default();
    if let Some(n) = t.string("namespace") {
        o.namespace = n;
    }
    let policies = [("IfNotPresent", PullPolicy::IfNotPresent), ("Never", PullPolicy::Never), ("Always", PullPolicy::Always)];
    if let Some(p) = t.keyword("image_pull_policy", &policies) {
        o.image_pull_policy = p;
    }
    if let Some(h) = t.boolean("host_network") {
        o.host_network = h;
    }
    let callbacks =
        [("auto", Callback::Auto), ("loopback", Callback::Loopback), ("node_ip", Callback::NodeIp), ("pod_ip", Callback::PodIp)];
    if let Some(c) = t.keyword("callback", &callbacks) {
        o.callback = c;
    }
    if let Some(a) = t.string("api_host_override") {
        o.api_host_override = match a.as_str() {
            "auto" => ApiHostOverride::Auto,
            "none" => ApiHostOverride::None,
            addr => match addr.rsplit_once(':') {
                Some((h, p)) if !h.is_empty() && p.parse::<u16>().is_ok() => ApiHostOverride::Address(addr.to_owned()),
                _ => {
                    t.problem("api_host_override", format!("expected \"auto\", \"none\" or \"host:port\", got \"{addr}\""));
                    ApiHostOverride::Auto
                }
            },
        };
    }
    for (key, slot) in [
        ("cpu_request", &mut o.cpu_request),
        ("cpu_limit", &mut o.cpu_limit),
        ("memory_request", &mut o.memory_request),
        ("memory_limit", &mut o.memory_limit),
    ] {
        if let Some(q) = t.string(key) {
            if valid_quantity(&q) {
                *slot = q;
            } else {
                t.problem(key, format!("expected a Kubernetes quantity such as \"100m\" or \"64Mi\", got \"{q}\""));
            }
        }
    }
    if let Some(m) = t.string_map("node_selector") {
        o.node_selector = m;
    }
    if let Some(list) = t.string_list("tolerations", "[\"dedicated=bench:NoSchedule\"]") {
        for s in &list {
            if let Err(e) = parse_toleration(s) {
                t.problem("tolerations", format!("toleration \"{s}\": {e}; expected key[=value][:effect]"));
            }
        }
        o.tolerations = list;
    }
    if let Some(q) = t.number_above("qps", 0.0) {
        o.qps = q;
    }
    if let Some(b) = t.integer("burst", 1, i64::from(u32::MAX)) {
        o.burst = b as u32;
    }
    o
}

/// Options as the registry hands them to `connect` (validated JSON, or null for defaults).
pub(crate) fn decode(v: &serde_json::Value) -> KubernetesOptions {
    // The JSON came from `read` above (or an older results file): a shape it cannot have is a
    // bug, and the defaults are the safe answer.
    serde_json::from_value(v.clone()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tolerations_read_as_kubectl_writes_taints() {
        assert_eq!(parse_toleration("a=b:NoSchedule").unwrap(), ("a".into(), Some("b".into()), Some("NoSchedule".into())));
        assert_eq!(parse_toleration("a:NoExecute").unwrap(), ("a".into(), None, Some("NoExecute".into())));
        assert_eq!(parse_toleration("a").unwrap(), ("a".into(), None, None));
        assert!(parse_toleration("a:Sometimes").is_err());
        assert!(parse_toleration("=b").is_err());
    }

    #[test]
    fn quantities_as_the_api_takes_them() {
        for q in ["100m", "1", "1.5", "64Mi", "1G"] {
            assert!(valid_quantity(q), "{q}");
        }
        for q in ["", "m", "1 core", "-1", "5Qi"] {
            assert!(!valid_quantity(q), "{q}");
        }
    }

    #[test]
    fn defaults_round_trip_through_json() {
        let o = KubernetesOptions::default();
        assert_eq!(decode(&serde_json::to_value(&o).unwrap()), o);
        assert_eq!(decode(&serde_json::Value::Null), o);
    }
}
