//! `stampede runtimes`: what this binary can run on, and what each runtime can do.

use std::fmt::Write as _;

use stampede_core::scenario::RuntimeCatalog as _;

pub fn run() -> anyhow::Result<i32> {
    let registry = stampede::registry::this_binary()?;
    let mut out = format!("{:<10} {:<12} {:<6} {:<7} {:<13} {}\n", "runtime", "pause/resume", "kill", "images", "concurrency", "native states");
    for name in registry.names() {
        let Some(info) = registry.find(name) else { continue };
        let c = info.capabilities();
        let yes = |b: bool| if b { "yes" } else { "no" };
        let image = if c.image_filler { "filler" } else { yes(c.image) };
        let states = if c.native_states.is_empty() { "-".to_owned() } else { c.native_states.join(" → ") };
        let concurrency = match c.run_start_concurrency {
            u32::MAX => c.default_start_concurrency.to_string(),
            run => format!("{} ({run}/run)", c.default_start_concurrency),
        };
        let _ = writeln!(out, "{name:<10} {:<12} {:<6} {image:<7} {concurrency:<13} {states}", yes(c.pause_resume), yes(c.kill));
    }
    out.push_str(
        "\nconcurrency: launches in flight per launching tier unless a group sets start_concurrency; (N/run): at most N\n\
         at the platform for the whole run, shared by the S scenarios that launch at once.\n",
    );
    super::out(out);
    Ok(0)
}
