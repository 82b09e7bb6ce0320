//! The signals that end a run or a sweep: SIGINT (Ctrl-C), SIGTERM, SIGHUP (the terminal went
//! away) and SIGQUIT (Ctrl-\). Each of them must end a run properly — results written,
//! everything of the run removed — never by the default action, which would kill the driver
//! while its containers live on.

use std::io::Write as _;
use std::task::Poll;

use tokio::signal::unix::{signal, Signal, SignalKind};

use stampede_tiers::driver::Interrupt;

/// Every ending signal, each with its number.
pub struct EndingSignals {
    streams: Vec<(i32, Signal)>,
}

impl EndingSignals {
    /// Take over all four signals (from now on none of them ends the process by itself).
    pub fn install() -> std::io::Result<Self> {
        let kinds = [
            (libc::SIGINT, SignalKind::interrupt()),
            (libc::SIGTERM, SignalKind::terminate()),
            (libc::SIGHUP, SignalKind::hangup()),
            (libc::SIGQUIT, SignalKind::quit()),
        ];
        let streams = kinds.into_iter().map(|(n, k)| Ok((n, signal(k)?))).collect::<std::io::Result<_>>()?;
        Ok(EndingSignals { streams })
    }

    /// The number of the next ending signal to arrive.
    pub async fn next(&mut self) -> i32 {
        std::future::poll_fn(|cx| {
            for (n, s) in &mut self.streams {
                if let Poll::Ready(Some(())) = s.poll_recv(cx) {
                    return Poll::Ready(*n);
                }
            }
            Poll::Pending
        })
        .await
    }
}

/// The run's signal task. First ending signal: stop, drain, report, clean up, and exit with
/// 128 + its number. Second: clean up now.
pub async fn watch(interrupt: Interrupt) {
    let mut signals = match EndingSignals::install() {
        Ok(s) => s,
        Err(e) => {
            tracing::error!("cannot watch for Ctrl-C and termination signals: {e}");
            return;
        }
    };
    let sig = signals.next().await;
    // Stop before saying so: after SIGHUP the terminal may be gone and stderr may fail.
    interrupt.stop_by(sig);
    let _ = writeln!(
        std::io::stderr(),
        "\nstopping ({}): collecting reports and cleaning up (Ctrl-C again to clean up now)",
        name(sig)
    );
    signals.next().await;
    interrupt.now.cancel();
    let _ = writeln!(std::io::stderr(), "\ncleaning up now");
}

fn name(sig: i32) -> &'static str {
    match sig {
        libc::SIGINT => "SIGINT",
        libc::SIGTERM => "SIGTERM",
        libc::SIGHUP => "SIGHUP",
        libc::SIGQUIT => "SIGQUIT",
        _ => "signal",
    }
}
