//! Names and label selectors of what the kubernetes runtime creates, derived from a launch
//! spec (pure functions). Names are deterministic so that `kubectl get pods` tells which group,
//! scenario and action a pod is, and unique within a namespace through the run id.

use stampede_core::measure::Role;
use stampede_runtime::{labels, LaunchSpec};

/// The run's own namespace: `stampede-<run>`.
pub fn namespace(run_id: &str) -> String {
    dns_label(&format!("stampede-{run_id}"))
}

/// `<run>-g<g>-s<s>` for scenarios, `…-a<a>` for actions, `…-i<n>` for incarnations.
pub fn pod_name(spec: &LaunchSpec) -> String {
    let mut name = format!("{}-g{}-s{}", spec.run_id, spec.group, spec.scenario);
    if let Some(a) = spec.action {
        name.push_str(&format!("-a{a}"));
    }
    if let Some((_, n)) = spec.env.iter().find(|(k, _)| k == stampede_runtime::env::INCARNATION) {
        name.push_str(&format!("-i{n}"));
    }
    dns_label(&name)
}

/// The pods one launching tier starts: the driver's scenarios of a run, or one scenario's
/// actions. One watch follows each selector.
pub fn selector(spec: &LaunchSpec) -> String {
    let mut s = format!("{}={},{}={}", labels::RUN, spec.run_id, labels::ROLE, spec.role.as_str());
    if spec.role == Role::Action {
        s.push_str(&format!(",{}={},{}={}", labels::GROUP, spec.group, labels::SCENARIO, spec.scenario));
    }
    s
}

/// A DNS-1123 label: lower-case alphanumerics and `-`, at most 63, alphanumeric at both ends.
fn dns_label(s: &str) -> String {
    let mut out: String =
        s.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' }).take(63).collect();
    while out.ends_with('-') {
        out.pop();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(role: Role, action: Option<u32>) -> LaunchSpec {
        LaunchSpec {
            run_id: "Ab12".into(),
            role,
            instance_id: "x".into(),
            group: 0,
            scenario: 1,
            action,
            image: "i".into(),
            args: vec![],
            env: vec![(stampede_runtime::env::INCARNATION.into(), "2".into())],
        }
    }

    #[test]
    fn names_are_dns_labels_and_say_what_the_pod_is() {
        assert_eq!(pod_name(&spec(Role::Action, Some(3))), "ab12-g0-s1-a3-i2");
        assert_eq!(namespace("Ab_12"), "stampede-ab-12");
        assert!(dns_label(&"x".repeat(80)).len() <= 63);
    }

    #[test]
    fn one_selector_per_launching_tier() {
        assert_eq!(selector(&spec(Role::Scenario, None)), "stampede.run=Ab12,stampede.role=scenario");
        assert_eq!(
            selector(&spec(Role::Action, Some(3))),
            "stampede.run=Ab12,stampede.role=action,stampede.group=0,stampede.scenario=1"
        );
    }
}
