//! `stampede run`: flags + file → one validated scenario → the driver → results and a summary.

use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::sync::Arc;

use stampede_core::scenario::{self, Overrides, Work};
use stampede_tiers::driver::{self, DriverConfig, Interrupt, LiveProgress};
use stampede_tiers::{exit, preflight};

use super::with_code;
use crate::cli::RunArgs;

pub fn run(args: RunArgs) -> anyhow::Result<i32> {
    // Validate before any work: file + flags become one typed scenario, or exit 2.
    let work = args
        .work
        .as_deref()
        .map(|w| w.parse::<Work>().map_err(|e| with_code(anyhow::anyhow!("--work: {e}"), exit::INVALID_INPUT)))
        .transpose()?;
    let ov = Overrides {
        runtime: args.runtime,
        scenarios: args.scenarios,
        actions: args.actions,
        requests: args.requests,
        work,
        payload: args.payload,
        seed: args.seed,
        image: args.image.clone(),
    };
    let registry = Arc::new(stampede::registry::this_binary()?);
    let scenario = match &args.scenario {
        Some(path) => scenario::load_file(path, &ov, registry.as_ref()),
        None => scenario::from_cli(&ov, registry.as_ref()),
    }
    .map_err(|e| with_code(e, exit::INVALID_INPUT))?;

    if let Some(host) = &args.advertise {
        check_advertise(host).map_err(|e| with_code(anyhow::anyhow!("--advertise {host:?}: {e}"), exit::INVALID_INPUT))?;
    }

    // The host preflight: a run that cannot fit this machine is refused before anything starts.
    let findings = preflight::check(&preflight::Needs::of(&scenario, registry.as_ref()), &preflight::HostLimits::read());
    if !findings.is_empty() {
        let list: Vec<String> = findings.iter().map(|f| format!("  {f}")).collect();
        if !args.force {
            let msg = format!("this run does not fit this host:\n{}\n(--force runs it anyway)", list.join("\n"));
            return Err(with_code(anyhow::anyhow!(msg), exit::INVALID_INPUT));
        }
        eprintln!("warning: running past this host's limits (--force):\n{}", list.join("\n"));
    }

    let out_dir = args.out.clone().unwrap_or_else(|| {
        PathBuf::from("results").join(format!("{}-{}", chrono::Local::now().format("%Y%m%d-%H%M%S"), scenario.name))
    });
    let progress = Arc::new(LiveProgress::default());
    let cfg = DriverConfig {
        scenario,
        out_dir: out_dir.clone(),
        raw: args.raw,
        registry,
        advertise: args.advertise.clone(),
        listen: args.listen,
        command_line: std::env::args().collect(),
        progress: progress.clone(),
    };

    // The machine-wide CPU reading the driver-saturation warning is judged against.
    stampede_report::warnings::mark_run_start();
    let linger = args
        .metrics_linger
        .as_deref()
        .map(|d| scenario::parse_duration(d).map_err(|e| with_code(anyhow::anyhow!("--metrics-linger: {e}"), exit::INVALID_INPUT)))
        .transpose()?;
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let outcome = rt.block_on(async {
        // The live endpoint is up before the run starts, so a scraper sees it from the first launch.
        if let Some(addr) = args.metrics_addr {
            let bound = crate::metrics_http::serve_run(addr, progress.clone()).await.map_err(|e| with_code(e, exit::INVALID_INPUT))?;
            if let Some(file) = &args.metrics_addr_file {
                std::fs::write(file, bound.to_string())?;
            } else if !args.quiet && !args.json {
                eprintln!("metrics on http://{bound}/metrics");
            }
        }
        let interrupt = Interrupt::default();
        // First ending signal: stop, drain, report, clean up. Second: clean up now.
        let signals = tokio::spawn(super::signals::watch(interrupt.clone()));
        // Progress is for a person watching: not for scripts (--json), not into a pipe or file.
        let show_progress = !args.quiet && !args.json && std::io::stderr().is_terminal() && std::io::stdout().is_terminal();
        let bar = show_progress.then(super::progress::bar);
        let ticker = bar.clone().map(|b| tokio::spawn(super::progress::show(progress.clone(), b)));
        let r = driver::run(cfg, interrupt.clone()).await;
        progress.live.finish();
        // Hold the final numbers for a scraper; a Ctrl-C (the signal task is still there) ends it.
        if let (Some(linger), Ok(_)) = (linger, &r) {
            if !interrupt.stop.is_cancelled() {
                tokio::select! { _ = tokio::time::sleep(linger) => {}, _ = interrupt.stop.cancelled() => {} }
            }
        }
        if let Some(t) = ticker {
            t.abort();
        }
        if let Some(b) = bar {
            b.finish_and_clear();
        }
        signals.abort();
        anyhow::Ok(r)
    })?;
    let outcome = match outcome {
        Ok(o) => o,
        Err(e) => {
            let code = e.exit_code();
            return Err(with_code(e, code));
        }
    };
    if args.json {
        super::out(serde_json::to_string_pretty(&outcome.results)? + "\n");
    } else if !args.quiet {
        super::out(stampede_report::summary_text(&outcome.results, Some(&out_dir)));
    }
    Ok(outcome.exit_code)
}

/// `--advertise` becomes the host of `ws://HOST:PORT/` in every scenario's callback: an IP
/// address or a DNS name, nothing else (no scheme, port or path), so a typo fails here, with
/// exit 2, and not as every scenario's connect timing out.
///
/// An IP address must be one of this machine's own (the server listens there): binding to it
/// fails otherwise. A name is taken as given: it may resolve elsewhere on purpose (a NAT, a
/// Kubernetes Service, `host.docker.internal`).
fn check_advertise(host: &str) -> Result<(), String> {
    if let Ok(ip) = host.parse::<std::net::IpAddr>() {
        if ip.is_unspecified() {
            return Err("an unspecified address is nowhere to dial: give one of this machine's addresses".into());
        }
        if !stampede_runtime::is_local_address(ip) {
            return Err(format!(
                "no interface of this machine has the address {ip}, so nothing could listen there for the scenarios; \
                 give one of this machine's addresses (`ip -brief address` lists them)"
            ));
        }
        return Ok(());
    }
    let label_ok = |l: &str| {
        !l.is_empty() && l.len() <= 63 && !l.starts_with('-') && !l.ends_with('-') && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    };
    if host.is_empty() || host.len() > 253 || !host.trim_end_matches('.').split('.').all(label_ok) {
        return Err("not an IP address or a host name (give the host alone: no scheme, port or path)".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::check_advertise;

    #[test]
    fn advertise_takes_an_ip_or_a_host_name_and_nothing_else() {
        for ok in ["127.0.0.1", "::1", "driver", "stampede-driver.default.svc.cluster.local", "host.docker.internal"] {
            assert!(check_advertise(ok).is_ok(), "{ok}");
        }
        for bad in ["192.0.2.1", "0.0.0.0", "", "ws://driver", "driver:8080", "driver/x", "-x", "a..b", "a b", &"x".repeat(300)] {
            assert!(check_advertise(bad).is_err(), "{bad}");
        }
    }
}
