//! Names of what the docker runtime creates, derived from a launch spec.
//!
//! Names are deterministic so that a human can tell from `docker ps` which group, scenario and
//! action a container belongs to, and so that `prepare` of a scenario is idempotent (the network
//! name is known before the network exists). Uniqueness within the engine comes from the run id.

use stampede_runtime::LaunchSpec;

/// Env variable a parent sets when it relaunches an instance (one-shot, churn): the names of
/// earlier incarnations may still exist (they are removed later, and timed), so each gets its own.
pub const INCARNATION_ENV: &str = stampede_runtime::env::INCARNATION;

/// `stampede-<run>-g<g>-s<s>`: the scenario's container and its per-scenario network.
pub fn scenario_name(run_id: &str, group: u32, scenario: u32) -> String {
    format!("stampede-{run_id}-g{group}-s{scenario}")
}

/// The network a `PerScenario` spec joins: the one of its scenario, for the scenario itself and
/// for its actions alike.
pub fn network_name(spec: &LaunchSpec) -> String {
    scenario_name(&spec.run_id, spec.group, spec.scenario)
}

/// `stampede-<run>-g<g>-s<s>` for scenarios, `…-a<a>` for actions, `…-i<n>` for incarnations.
pub fn container_name(spec: &LaunchSpec) -> String {
    let mut name = scenario_name(&spec.run_id, spec.group, spec.scenario);
    if let Some(a) = spec.action {
        name.push_str(&format!("-a{a}"));
    }
    if let Some((_, n)) = spec.env.iter().find(|(k, _)| k == INCARNATION_ENV) {
        name.push_str(&format!("-i{n}"));
    }
    name
}

/// `STAMPEDE_SELF=<runtime>:<name>` for an instance's environment (see
/// [`stampede_runtime::env::SELF`]): how it finds itself to remove when its parent is gone.
pub fn self_env(runtime: &str, name: &str) -> String {
    format!("{}={runtime}:{name}", stampede_runtime::env::SELF)
}

#[cfg(test)]
mod tests {
    use super::*;
    use stampede_core::measure::Role;

    fn spec(action: Option<u32>, env: Vec<(String, String)>) -> LaunchSpec {
        LaunchSpec {
            run_id: "r1".into(),
            role: if action.is_some() { Role::Action } else { Role::Scenario },
            instance_id: "x".into(),
            group: 2,
            scenario: 7,
            action,
            image: "stampede:latest".into(),
            args: vec![],
            env,
        }
    }

    #[test]
    fn names_follow_group_scenario_action_incarnation() {
        assert_eq!(container_name(&spec(None, vec![])), "stampede-r1-g2-s7");
        assert_eq!(container_name(&spec(Some(3), vec![])), "stampede-r1-g2-s7-a3");
        let env = vec![("A".into(), "b".into()), (INCARNATION_ENV.into(), "4".into())];
        assert_eq!(container_name(&spec(Some(3), env)), "stampede-r1-g2-s7-a3-i4");
        // Actions join their scenario's network.
        assert_eq!(network_name(&spec(Some(3), vec![])), "stampede-r1-g2-s7");
    }
}
