//! `stampede sweep`: one workload over a matrix of settings, each point repeated, as curves.
//!
//! The pipeline: plan (axes × points, `crate::sweep_plan`) → every point's scenario validated
//! with the real registry (a bad axis exits 2 before anything runs) → the sweep folder with
//! each point's scenario file → the runs, interleaved (repeat 0 of every point, then repeat 1,
//! …, so drift on a shared machine spreads over all points) → after every run, `sweep.json`,
//! `sweep.csv` and `sweep.html` rewritten, so an aborted sweep keeps what it measured.
//!
//! Each run is a child `stampede run <point file> --out <run folder> --quiet` in its own
//! process group: the sweep knows nothing of the driver's internals, and a Ctrl-C reaches the
//! run exactly once, forwarded by the sweep, which then waits for the run to write its
//! results and clean up. An interrupted run is dropped (its folder removed) and runs again on
//! `--resume`; a run that fails is recorded as failed and the sweep goes on.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Instant;

use stampede_core::scenario::{self, Overrides};
use stampede_report::sweep::{names, Figures, Point, Run, RunStatus, Sweep, SweepStatus, SWEEP_SCHEMA_VERSION};
use stampede_tiers::exit;

use super::with_code;
use crate::cli::SweepArgs;
use stampede::sweep_plan::{parse_set, Plan};

const DEFAULT_REPEAT: u32 = 3;

pub fn run(args: SweepArgs) -> anyhow::Result<i32> {
    let exe = std::env::current_exe()?;
    let (dir, sweep) = match &args.resume {
        Some(dir) => resume(dir, &args)?,
        None => plan(&args, &exe)?,
    };
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    rt.block_on(execute(exe, dir, sweep, args))
}

fn invalid(e: impl Into<anyhow::Error>) -> anyhow::Error {
    with_code(e, exit::INVALID_INPUT)
}

/// A new sweep: plan, validate every point, then create the folder.
fn plan(args: &SweepArgs, exe: &Path) -> anyhow::Result<(PathBuf, Sweep)> {
    let file =
        args.scenario.clone().ok_or_else(|| invalid(anyhow::anyhow!("give a scenario file, or --resume DIR")))?;
    let text =
        std::fs::read_to_string(&file).map_err(|e| invalid(anyhow::anyhow!("cannot read {}: {e}", file.display())))?;
    let sets = args.set.iter().map(|s| parse_set(s)).collect::<Result<Vec<_>, _>>().map_err(invalid)?;
    let plan =
        Plan::new(&text, &sets, args.x.as_deref()).map_err(|e| invalid(anyhow::anyhow!("{}: {e}", file.display())))?;
    let repeat = args.repeat.or(plan.repeat).unwrap_or(DEFAULT_REPEAT);
    if repeat == 0 {
        return Err(invalid(anyhow::anyhow!("--repeat must be at least 1")));
    }

    // Validate every point as `stampede run` will read it, before anything is created.
    let registry = stampede::registry::registry(exe.to_owned());
    let name = file.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "sweep".into());
    let mut texts = Vec::new();
    for i in 0..plan.points.len() {
        let text = plan.point_text(i).map_err(|e| invalid(anyhow::anyhow!("{}: {e}", file.display())))?;
        let label = plan.points[i].iter().map(|(k, v)| format!("{k}={}", v.display)).collect::<Vec<_>>().join(" ");
        let point_file = file.with_file_name(format!("{name}.p{i:02}.toml"));
        let scenario = scenario::from_str(&text, Some(&point_file), &Overrides::default(), &registry)
            .map_err(|e| invalid(anyhow::anyhow!("point {i} ({label}) of the sweep is not a valid scenario: {e}")))?;
        texts.push((text, scenario.name));
    }

    let dir = args.out.clone().unwrap_or_else(|| {
        PathBuf::from("results").join(format!("sweep-{}-{name}", chrono::Local::now().format("%Y%m%d-%H%M%S")))
    });
    if dir.join(names::SWEEP_JSON).exists() {
        return Err(invalid(anyhow::anyhow!(
            "{} already holds a sweep: continue it with --resume {0}, or choose another --out",
            dir.display()
        )));
    }
    std::fs::create_dir_all(dir.join(names::POINTS_DIR))?;
    std::fs::create_dir_all(dir.join(names::RUNS_DIR))?;
    let mut points = Vec::new();
    for (i, (text, _)) in texts.iter().enumerate() {
        let rel = Path::new(names::POINTS_DIR).join(format!("p{i:02}.toml"));
        std::fs::write(dir.join(&rel), text)?;
        points.push(Point {
            index: i as u32,
            settings: plan.points[i].iter().map(|(k, v)| (k.clone(), v.display.clone())).collect(),
            file: rel,
        });
    }
    let mut runs = Vec::new();
    for r in 0..repeat {
        for p in &points {
            runs.push(Run {
                point: p.index,
                repeat: r,
                dir: Path::new(names::RUNS_DIR).join(format!("p{:02}-r{r}", p.index)),
                status: RunStatus::Pending,
                exit_code: None,
                run_id: None,
                wall_s: None,
                figures: None,
                error: None,
            });
        }
    }
    let mut run_args = Vec::new();
    if let Some(image) = &args.image {
        run_args.extend(["--image".to_owned(), image.clone()]);
    }
    let sweep = Sweep {
        schema_version: SWEEP_SCHEMA_VERSION,
        name: texts.first().map(|t| t.1.clone()).unwrap_or(name),
        scenario_file: std::fs::canonicalize(&file).unwrap_or(file),
        axes: plan.axes_record(),
        x_axis: plan.x_axis.clone(),
        repeat,
        run_args,
        points,
        runs,
        status: SweepStatus::Running,
        command_line: std::env::args().collect(),
    };
    sweep.write_all(&dir)?;
    Ok((dir, sweep))
}

fn resume(dir: &Path, args: &SweepArgs) -> anyhow::Result<(PathBuf, Sweep)> {
    if args.scenario.is_some()
        || !args.set.is_empty()
        || args.repeat.is_some()
        || args.x.is_some()
        || args.image.is_some()
    {
        return Err(invalid(anyhow::anyhow!(
            "--resume continues the sweep as planned: give no scenario file, --set, --repeat, --x or --image"
        )));
    }
    let mut sweep = Sweep::load(dir).map_err(invalid)?;
    sweep.status = SweepStatus::Running;
    Ok((dir.to_owned(), sweep))
}

/// Count of ending signals (Ctrl-C, SIGTERM, SIGHUP, SIGQUIT), shared between the signal task and the run loop.
#[derive(Default)]
struct Interrupts {
    count: std::sync::atomic::AtomicU32,
    notify: tokio::sync::Notify,
}

async fn execute(exe: PathBuf, dir: PathBuf, mut sweep: Sweep, args: SweepArgs) -> anyhow::Result<i32> {
    let interrupts = Arc::new(Interrupts::default());
    let signals = {
        let i = interrupts.clone();
        let mut ending = super::signals::EndingSignals::install()?;
        tokio::spawn(async move {
            loop {
                ending.next().await;
                i.count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                i.notify.notify_waiters();
            }
        })
    };
    let metrics = match args.metrics_addr {
        Some(addr) => Some(crate::metrics_http::SweepMetrics::serve(addr, sweep.runs.len()).await.map_err(invalid)?),
        None => None,
    };
    let say = |s: String| {
        if !args.quiet {
            // Progress goes to stderr; a reader that went away must not stop the sweep.
            let _ = writeln!(std::io::stderr(), "{s}");
        }
    };
    let total = sweep.runs.len();
    let t0 = Instant::now();
    let mut walls: Vec<f64> = sweep.runs.iter().filter_map(|r| r.wall_s).collect();
    let mut interrupted = false;
    for idx in 0..total {
        if sweep.runs[idx].status != RunStatus::Pending {
            continue;
        }
        if interrupts.count.load(std::sync::atomic::Ordering::SeqCst) > 0 {
            interrupted = true;
            break;
        }
        let (point, repeat) = (sweep.runs[idx].point, sweep.runs[idx].repeat);
        let label = sweep.points[point as usize].label();
        let remaining = sweep.runs.iter().filter(|r| r.status == RunStatus::Pending).count();
        let eta = if walls.is_empty() {
            "ETA after the first run".to_owned()
        } else {
            format!("ETA {}", fmt_secs(walls.iter().sum::<f64>() / walls.len() as f64 * remaining as f64))
        };
        say(format!(
            "sweep {}: point {}/{} ({label}) · repeat {}/{} · run {}/{total} · {eta}",
            sweep.name,
            point + 1,
            sweep.points.len(),
            repeat + 1,
            sweep.repeat,
            idx + 1
        ));
        if let Some(m) = &metrics {
            m.set_position(idx as u64, (total - remaining) as u64);
        }
        let started = Instant::now();
        let (code, run_interrupted) = run_one(&exe, &dir, &sweep, idx, &interrupts, metrics.as_ref()).await?;
        let wall = started.elapsed().as_secs_f64();
        let run_dir = dir.join(&sweep.runs[idx].dir);
        if run_interrupted && code == Some(exit::INTERRUPTED) {
            // Its runtime resources are gone (the run cleaned up); its partial folder must not
            // count as a repeat: drop it, and run it again on --resume.
            let _ = std::fs::remove_dir_all(&run_dir);
            interrupted = true;
            say(format!(
                "  interrupted: run {} will run again on `stampede sweep --resume {}`",
                idx + 1,
                dir.display()
            ));
            break;
        }
        let log = Path::new(&sweep.runs[idx].dir).join("stampede.log");
        let run = &mut sweep.runs[idx];
        run.exit_code = code;
        run.wall_s = Some(wall);
        walls.push(wall);
        match code {
            Some(c) if c == exit::OK || c == exit::FAILED => match figures(&run_dir) {
                Ok((id, f)) => {
                    run.status = if c == exit::OK { RunStatus::Ok } else { RunStatus::Failed };
                    run.run_id = Some(id);
                    run.figures = Some(f);
                }
                Err(e) => {
                    run.status = RunStatus::Error;
                    run.error = Some(format!("{e:#}"));
                }
            },
            other => {
                run.status = RunStatus::Error;
                run.error = Some(format!(
                    "stampede run exited {}: see {}",
                    other.map(|c| c.to_string()).unwrap_or_else(|| "by a signal".into()),
                    log.display()
                ));
            }
        }
        let run = &sweep.runs[idx];
        match (&run.figures, &run.error) {
            (Some(f), _) => say(format!(
                "  {:?} in {}: start p50 {:.1} ms, p99 {:.1} ms · {:.1} starts/s · efficiency {:.2} · failure rate {:.3}",
                run.status,
                fmt_secs(wall),
                f.start_latency_p50_ms,
                f.start_latency_p99_ms,
                f.starts_per_second,
                f.efficiency,
                f.failure_rate
            )),
            (None, Some(e)) => say(format!("  failed: {e}")),
            _ => {}
        }
        sweep.write_all(&dir)?;
        if run_interrupted {
            interrupted = true;
            break;
        }
    }
    signals.abort();
    let pending = sweep.runs.iter().filter(|r| r.status == RunStatus::Pending).count();
    sweep.status = if interrupted || pending > 0 { SweepStatus::Interrupted } else { SweepStatus::Complete };
    sweep.write_all(&dir)?;
    if let Some(m) = &metrics {
        m.set_position(total as u64, (total - pending) as u64);
    }
    let html = dir.join(names::SWEEP_HTML);
    if interrupted {
        say(format!(
            "sweep interrupted after {}: {} of {total} runs done, kept in {}; continue with `stampede sweep --resume {}`",
            fmt_secs(t0.elapsed().as_secs_f64()),
            total - pending,
            dir.display(),
            dir.display()
        ));
        return Ok(exit::INTERRUPTED);
    }
    let bad = sweep.runs.iter().filter(|r| r.status != RunStatus::Ok).count();
    if !args.quiet {
        super::out(format!(
            "sweep {} complete in {}: {total} runs, {bad} not ok\n  {}\n  {}\n",
            sweep.name,
            fmt_secs(t0.elapsed().as_secs_f64()),
            dir.join(names::SWEEP_CSV).display(),
            html.display()
        ));
    }
    Ok(if bad == 0 { exit::OK } else { exit::FAILED })
}

/// Run one repeat of one point as a child `stampede run`; returns its exit code and whether
/// the sweep was interrupted while it ran.
async fn run_one(
    exe: &Path,
    dir: &Path,
    sweep: &Sweep,
    idx: usize,
    interrupts: &Interrupts,
    metrics: Option<&crate::metrics_http::SweepMetrics>,
) -> anyhow::Result<(Option<i32>, bool)> {
    let run = &sweep.runs[idx];
    let run_dir = dir.join(&run.dir);
    // A folder left by a run that never finished (the sweep was killed) is not a repeat.
    if run_dir.exists() {
        std::fs::remove_dir_all(&run_dir)?;
    }
    std::fs::create_dir_all(&run_dir)?;
    let log = std::fs::File::create(run_dir.join("stampede.log"))?;
    let mut cmd = tokio::process::Command::new(exe);
    cmd.arg("run").arg(dir.join(&sweep.points[run.point as usize].file)).arg("--out").arg(&run_dir).arg("--quiet");
    cmd.args(&sweep.run_args);
    let addr_file = run_dir.join("metrics.addr");
    if metrics.is_some() {
        cmd.args(["--metrics-addr", "127.0.0.1:0", "--metrics-addr-file"]).arg(&addr_file);
    }
    cmd.stdin(Stdio::null()).stdout(log.try_clone()?).stderr(log);
    // Its own process group: a terminal's Ctrl-C reaches the sweep only, which forwards it once.
    cmd.process_group(0);
    interrupt_when_parent_dies(&mut cmd);
    let mut child = cmd.spawn()?;
    let pid = child.id().map(|p| p as i32);
    let mut seen = interrupts.count.load(std::sync::atomic::Ordering::SeqCst);
    let mut interrupted = seen > 0;
    if interrupted {
        if let Some(pid) = pid {
            interrupt(pid);
        }
    }
    loop {
        if let Some(m) = metrics {
            if let Ok(a) = std::fs::read_to_string(&addr_file) {
                m.set_child(a.trim().parse().ok());
            }
        }
        tokio::select! {
            status = child.wait() => {
                if let Some(m) = metrics { m.set_child(None); }
                return Ok((status?.code(), interrupted));
            }
            _ = interrupts.notify.notified() => {}
            _ = tokio::time::sleep(std::time::Duration::from_millis(200)) => {}
        }
        let now = interrupts.count.load(std::sync::atomic::Ordering::SeqCst);
        // Each Ctrl-C once: the first asks the run to stop and clean up, the second to clean up now.
        while seen < now {
            seen += 1;
            interrupted = true;
            if let Some(pid) = pid {
                interrupt(pid);
            }
            let _ = writeln!(
                std::io::stderr(),
                "\nsweep: {} the current run (Ctrl-C again to clean up now)",
                if seen == 1 { "stopping" } else { "cleaning up" }
            );
        }
    }
}

/// The run id and figures of a finished run folder.
fn figures(run_dir: &Path) -> anyhow::Result<(String, Figures)> {
    let results = stampede_report::load_results(run_dir)?;
    let instances = stampede_report::load_instances(run_dir)?;
    Ok((results.run.id.clone(), Figures::of(&results, &instances)))
}

fn fmt_secs(s: f64) -> String {
    if s >= 3600.0 {
        format!("{}h{:02}m", (s / 3600.0) as u64, ((s % 3600.0) / 60.0) as u64)
    } else if s >= 60.0 {
        format!("{}m{:02}s", (s / 60.0) as u64, (s % 60.0) as u64)
    } else {
        format!("{s:.1} s")
    }
}

/// SIGINT to a run: what a terminal's Ctrl-C would have sent it.
#[allow(unsafe_code)]
fn interrupt(pid: i32) {
    // SAFETY: kill(2) has no memory-safety preconditions; the pid is our own unreaped child.
    unsafe {
        libc::kill(pid, libc::SIGINT);
    }
}

/// A run whose sweep dies (SIGKILL, a crash) gets a Ctrl-C, so it still cleans up after itself.
#[allow(unsafe_code)]
fn interrupt_when_parent_dies(cmd: &mut tokio::process::Command) {
    // SAFETY: the closure runs between fork and exec and only calls prctl(2), which is
    // async-signal-safe, and allocates nothing.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGINT) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}
