//! Where a child must dial to reach a websocket server in *this* process.
//!
//! The answer depends on two things: where this process runs, and where the child is placed.
//! Servers listen on `0.0.0.0`, so any address of this process's network namespace works as
//! long as the child has a route to it and Docker's isolation rules let the packets through.
//!
//! | this process \ child          | `Host`         | `Bridge`                  | `PerScenario`                     |
//! |-------------------------------|----------------|---------------------------|-----------------------------------|
//! | host, or host-networked container | `127.0.0.1` | default bridge gateway   | default bridge gateway (see below) |
//! | container on the default bridge   | own bridge IP | own bridge IP            | error: bridges are isolated        |
//! | scenario container on its network | own IP there  | own bridge IP if attached, else error | own IP on its `stampede-…` network |
//!
//! Why the default bridge gateway serves `PerScenario` children of a host process: a packet
//! from a user-defined bridge to *any* address of the host itself is delivered locally (iptables
//! INPUT), not forwarded, so Docker's inter-bridge isolation (FORWARD chain) does not apply.
//! `docker0`'s address is the one host address every bridged container can rely on, which spares
//! the trait a per-scenario variant of `callback_host`. When the daemon runs without a default
//! bridge, the gateway of a network `prepare` created is used instead (same reasoning).
//!
//! Addresses are returned as IPs, never names, so that a static binary in a `FROM scratch`
//! image needs no resolver to dial back.

use std::collections::BTreeMap;

use crate::options::DockerNetwork;

/// Where this process runs, as far as children reaching it is concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SelfLocation {
    /// On the host, or in a container sharing the host's network namespace (compose with
    /// `network_mode: host`): the host's addresses are ours.
    Host,
    /// In a container with its own network namespace: its IPv4 address on each network.
    Container { name: String, ips: BTreeMap<String, String> },
}

/// The id of the container this process runs in, if any.
///
/// Docker bind-mounts `/etc/hostname` from `/var/lib/docker/containers/<id>/`, which shows in
/// our mountinfo whatever the cgroup setup (cgroup v2 namespaces hide the id from
/// `/proc/self/cgroup`). The hostname is the fallback: it is the short id unless overridden.
pub fn own_container_id() -> Option<String> {
    if let Ok(mountinfo) = std::fs::read_to_string("/proc/self/mountinfo") {
        if let Some(id) = container_id_from_mountinfo(&mountinfo) {
            return Some(id);
        }
    }
    if std::path::Path::new("/.dockerenv").exists() {
        return std::fs::read_to_string("/etc/hostname").ok().map(|h| h.trim().to_owned()).filter(|h| !h.is_empty());
    }
    None
}

fn container_id_from_mountinfo(mountinfo: &str) -> Option<String> {
    mountinfo.lines().find_map(|line| {
        let (_, rest) = line.split_once("/containers/")?;
        let id: String = rest.chars().take_while(|c| c.is_ascii_hexdigit()).collect();
        let mount_point_is_ours =
            line.contains(" /etc/hostname ") || line.contains(" /etc/hosts ") || line.contains(" /etc/resolv.conf ");
        (id.len() == 64 && mount_point_is_ours).then_some(id)
    })
}

/// The host a child placed on `network` dials; `bridge_gateway` is only consulted when this
/// process is on the host. `Err` explains why no address can work.
pub fn resolve(
    location: &SelfLocation,
    network: DockerNetwork,
    bridge_gateway: Option<&str>,
) -> Result<String, String> {
    match (location, network) {
        (SelfLocation::Host, DockerNetwork::Host) => Ok("127.0.0.1".to_owned()),
        (SelfLocation::Host, DockerNetwork::Bridge | DockerNetwork::PerScenario) => bridge_gateway
            .map(str::to_owned)
            .ok_or_else(|| "no Docker bridge gateway is known on this host (does the daemon run with `bridge: none`?); use host networking".to_owned()),
        (SelfLocation::Container { name, ips }, DockerNetwork::Host) => {
            // The host routes to every bridge, so any of our addresses works; prefer the default one.
            ips.get("bridge")
                .or_else(|| ips.values().next())
                .cloned()
                .ok_or_else(|| format!("container {name} has no IPv4 address a host-networked child could dial"))
        }
        (SelfLocation::Container { name, ips }, DockerNetwork::Bridge) => ips.get("bridge").cloned().ok_or_else(|| {
            format!("container {name} is not on Docker's default bridge, so children there cannot reach it (bridges are isolated); run it with host networking")
        }),
        (SelfLocation::Container { name, ips }, DockerNetwork::PerScenario) => {
            let mut per_scenario = ips.iter().filter(|(net, _)| net.starts_with("stampede-"));
            match (per_scenario.next(), per_scenario.next()) {
                (Some((_, ip)), None) => Ok(ip.clone()),
                (None, _) => Err(format!(
                    "container {name} is on no per-scenario `stampede-…` network, so children on one cannot reach it (bridges are isolated); run it with host networking"
                )),
                (Some(_), Some(_)) => Err(format!("container {name} is on several `stampede-…` networks; cannot tell which one its children join")),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn container(nets: &[(&str, &str)]) -> SelfLocation {
        SelfLocation::Container {
            name: "c".into(),
            ips: nets.iter().map(|(n, ip)| ((*n).to_owned(), (*ip).to_owned())).collect(),
        }
    }

    #[test]
    fn host_process() {
        let gw = Some("172.17.0.1");
        assert_eq!(resolve(&SelfLocation::Host, DockerNetwork::Host, gw).unwrap(), "127.0.0.1");
        assert_eq!(resolve(&SelfLocation::Host, DockerNetwork::Bridge, gw).unwrap(), "172.17.0.1");
        assert_eq!(resolve(&SelfLocation::Host, DockerNetwork::PerScenario, gw).unwrap(), "172.17.0.1");
        assert!(resolve(&SelfLocation::Host, DockerNetwork::Bridge, None).is_err());
    }

    #[test]
    fn scenario_container_on_its_network() {
        let me = container(&[("stampede-r-g0-s1", "172.20.0.2")]);
        assert_eq!(resolve(&me, DockerNetwork::PerScenario, None).unwrap(), "172.20.0.2");
        assert_eq!(resolve(&me, DockerNetwork::Host, None).unwrap(), "172.20.0.2");
        assert!(resolve(&me, DockerNetwork::Bridge, None).unwrap_err().contains("not on Docker's default bridge"));
    }

    #[test]
    fn scenario_container_on_default_bridge() {
        let me = container(&[("bridge", "172.17.0.5")]);
        assert_eq!(resolve(&me, DockerNetwork::Bridge, None).unwrap(), "172.17.0.5");
        assert_eq!(resolve(&me, DockerNetwork::Host, None).unwrap(), "172.17.0.5");
        assert!(resolve(&me, DockerNetwork::PerScenario, None).is_err());
    }

    #[test]
    fn mountinfo_yields_the_container_id() {
        let id = "a".repeat(64);
        let line = format!(
            "1234 1200 254:1 /var/lib/docker/containers/{id}/hostname /etc/hostname rw,relatime - ext4 /dev/vda1 rw"
        );
        assert_eq!(container_id_from_mountinfo(&line), Some(id));
        assert_eq!(container_id_from_mountinfo("22 1 0:21 / /proc rw - proc proc rw"), None);
    }
}
