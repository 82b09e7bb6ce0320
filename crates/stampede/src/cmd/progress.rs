//! Live progress on a terminal (indicatif): one bar of requests done, with the instance
//! counts beside it. `run` decides whether to show it at all (never with --quiet/--json or
//! when stdout/stderr is not a terminal); this file only draws what the driver's
//! [`LiveProgress`] counters say — it never measures anything itself.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use stampede_tiers::driver::LiveProgress;

/// The bar, drawn on stderr so stdout stays the summary (or JSON) alone.
pub fn bar() -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr_with_hz(4));
    let style = ProgressStyle::with_template(
        "{spinner} {elapsed_precise} [{bar:24}] {pos}/{len} requests · ETA {eta} · {msg}",
    )
    .expect("static progress template is valid")
    .progress_chars("=> ");
    bar.set_style(style);
    bar
}

/// Refresh the bar from the live counters until aborted.
pub async fn show(p: Arc<LiveProgress>, bar: ProgressBar) {
    let mut iv = tokio::time::interval(Duration::from_millis(250));
    loop {
        iv.tick().await;
        let t = p.totals();
        bar.set_length(p.requests_planned.load(Ordering::Relaxed).max(1));
        bar.set_position(t.requests_done);
        bar.set_message(format!(
            "scenarios {}/{} ready · actions {} launched {} ready {} failed",
            p.scenarios_ready.load(Ordering::Relaxed),
            p.scenarios_launched.load(Ordering::Relaxed),
            t.actions_launched,
            t.actions_ready,
            t.actions_failed + p.scenarios_failed.load(Ordering::Relaxed),
        ));
    }
}
