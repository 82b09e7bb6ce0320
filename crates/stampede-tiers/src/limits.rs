//! How large a message each link may carry: what the scenario can legitimately send on it,
//! plus a margin. A peer that sends more (buggy, hostile, or holding a stolen token) has that
//! one link closed with a reason and counted (`messages_too_large`); nothing buffers without
//! bound.
//!
//! | link (receiver ← sender) | cap                                                     |
//! |--------------------------|---------------------------------------------------------|
//! | driver ← scenario        | [`report_bound`]: instance records, histograms, raw rows |
//! | scenario ← driver        | its assignment's size + margin (passed in the env)        |
//! | scenario ← action        | the group's response payload + margin                    |
//! | action ← scenario        | the group's request payload + margin (passed in the env) |

use stampede_core::scenario::{Group, Lifecycle};
use stampede_protocol::DEFAULT_MAX_MESSAGE_BYTES;
use stampede_runtime::env;

/// Room for a message's envelope (type tag, ids, identity) around its payload.
const MARGIN: usize = 64 << 10;
/// One instance record with its native states, as JSON: about 2 KiB; four times that.
const PER_INSTANCE: usize = 8 << 10;
/// One raw request record as JSON: about 400 bytes.
const PER_RAW_REQUEST: usize = 1 << 10;
/// Every histogram of a report, base64: well under this however wide the values.
const HISTOGRAMS: usize = 4 << 20;

/// The largest report (or any other message) a scenario of `group` can legitimately send.
pub fn report_bound(group: &Group, raw: bool) -> usize {
    let actions = group.actions as usize;
    let requests = group.requests as usize + 1;
    // One-shot and churn start a fresh instance per request at most; a kill step one per step.
    let per_action = if matches!(group.lifecycle, Lifecycle::OneShot) || group.churn.is_some() {
        requests
    } else {
        1 + group.steps.len()
    };
    let instances = actions.saturating_mul(per_action);
    let raw_rows = if raw { actions.saturating_mul(requests).saturating_mul(PER_RAW_REQUEST) } else { 0 };
    HISTOGRAMS.saturating_add(instances.saturating_mul(PER_INSTANCE)).saturating_add(raw_rows).saturating_add(MARGIN)
}

/// The driver's cap: the largest report any group's scenarios can send.
pub fn driver_bound<'a>(groups: impl IntoIterator<Item = &'a Group>, raw: bool) -> usize {
    groups
        .into_iter()
        .map(|g| report_bound(g, raw))
        .max()
        .unwrap_or(DEFAULT_MAX_MESSAGE_BYTES)
        .max(DEFAULT_MAX_MESSAGE_BYTES)
}

/// A scenario's cap on what its actions send: a response of the group's size.
pub fn response_bound(group: &Group) -> usize {
    (group.payload.response as usize).saturating_add(MARGIN)
}

/// An action's cap on what its scenario sends: a request of the group's size.
pub fn request_bound(group: &Group) -> usize {
    (group.payload.request as usize).saturating_add(MARGIN)
}

/// A scenario's cap on what the driver sends: its assignment, whose JSON is `assignment_len`.
pub fn assignment_bound(assignment_len: usize) -> usize {
    assignment_len.saturating_add(MARGIN)
}

/// The cap a child was given by its parent ([`env::MAX_MESSAGE_BYTES`]), or the default.
pub fn from_env() -> usize {
    std::env::var(env::MAX_MESSAGE_BYTES).ok().and_then(|v| v.parse().ok()).unwrap_or(DEFAULT_MAX_MESSAGE_BYTES)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group() -> Group {
        let catalog =
            stampede_runtime::Registry::new().with(stampede_runtime::process::ProcessProvider::new("stampede".into()));
        let s = stampede_core::scenario::from_cli(&Default::default(), &catalog).expect("the default scenario");
        s.groups[0].clone()
    }

    #[test]
    fn caps_grow_with_what_the_scenario_sends_and_never_overflow() {
        let mut g = group();
        g.actions = 4;
        g.requests = 10;
        g.payload.request = 1 << 20;
        g.payload.response = 10;
        assert_eq!(request_bound(&g), (1 << 20) + MARGIN);
        assert_eq!(response_bound(&g), 10 + MARGIN);
        let plain = report_bound(&g, false);
        assert!(report_bound(&g, true) > plain);
        g.lifecycle = Lifecycle::OneShot;
        assert!(report_bound(&g, false) > plain);
        g.actions = u32::MAX;
        g.requests = u32::MAX;
        assert_eq!(report_bound(&g, true), usize::MAX);
        assert!(driver_bound([&group()], false) >= DEFAULT_MAX_MESSAGE_BYTES);
    }
}
