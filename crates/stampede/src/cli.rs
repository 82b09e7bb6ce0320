//! The command line, as clap derives it. `--help` is the user's manual: keep it teaching.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;


#[derive(Debug, Parser)]
#[command(
    name = "stampede",
    version,
    about = "Load generator for container runtimes: start thousands of short-lived containers and measure how the runtime copes",
    long_about = "stampede starts S scenario instances through a runtime (local processes, Docker, Swarm); each \
starts A action instances; every action gets N requests (sleep or spin M ms). It reports how long instances \
took to start and why (create, start, boot, ready), request latency under contention, and how far the run \
was from the ideal N·M.\n\nQuick start:\n  stampede run -S 4 -A 25 -N 20 --work sleep:10ms\n  stampede run scenarios/hello.toml\n  \
stampede image build && stampede run --runtime docker -S 2 -A 10 -N 10"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a scenario (from a file, flags, or both) and write a results folder.
    Run(RunArgs),
    /// Remove everything stampede created (containers, services, networks) by label.
    Clean(CleanArgs),
    /// Build the `FROM scratch` stampede image through the Docker API (`stampede image build`).
    #[command(subcommand)]
    Image(ImageCommand),
    /// Re-render a results folder's report.html and print its summary.
    Report(ReportArgs),
    /// Run one scenario over a matrix of settings (`--set FIELD=V1,V2,…`), each point K times,
    /// and draw the curves: sweep.json, sweep.csv, sweep.html and every run's folder.
    Sweep(SweepArgs),
    /// Put results folders side by side: the same metrics per run, ratios to the first, and
    /// compare.html with overlaid distributions.
    Compare(CompareArgs),
    /// List the runtimes this binary can run on and what each can do (pause, kill, images, native states).
    Runtimes,
    /// Internal: the scenario tier (started by a driver, configured through STAMPEDE_* variables).
    #[command(hide = true)]
    Scenario,
    /// Internal: the action tier (started by a scenario, configured through STAMPEDE_* variables).
    #[command(hide = true)]
    Action,
}

#[derive(Debug, Args)]
#[command(after_help = "Exit codes: 0 all work done and accounted for; 1 the run finished but something failed \
(see `accounting` in results.json); 2 invalid input; 3 the runtime could not be used; 130 interrupted \
by Ctrl-C, 128 + the signal for SIGTERM, SIGHUP or SIGQUIT (results still written, everything cleaned up).\n\n\
Ctrl-C (or SIGTERM, SIGHUP, SIGQUIT) once: stop sending, collect reports, write results, clean up. Twice: clean \
up now.")]
pub struct RunArgs {
    /// Scenario file (TOML, see scenarios/). Without one, the flags define a single group;
    /// with one, they override its first group.
    pub scenario: Option<PathBuf>,
    /// Runtime that starts instances [default: process]; `stampede runtimes` lists them
    /// (process, docker, swarm) with what each can do. Also the runtime of every later group
    /// of a file that does not set its own.
    #[arg(long)]
    pub runtime: Option<String>,
    /// S: scenario instances.
    #[arg(short = 'S', long = "scenarios")]
    pub scenarios: Option<u32>,
    /// A: action instances per scenario.
    #[arg(short = 'A', long = "actions")]
    pub actions: Option<u32>,
    /// N: requests per action (sent one after the other).
    #[arg(short = 'N', long = "requests")]
    pub requests: Option<u32>,
    /// Work per request: sleep:DURATION (idle) or spin:DURATION (busy CPU), e.g. sleep:10ms.
    #[arg(long)]
    pub work: Option<String>,
    /// Payload bytes per request, echoed back by the action.
    #[arg(long)]
    pub payload: Option<u32>,
    /// Results folder [default: results/<timestamp>-<scenario name>].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Seed of every random draw (recorded in results.json; chosen at random when absent).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Also write requests.csv with every request (memory grows with N·S·A).
    #[arg(long)]
    pub raw: bool,
    /// Image for container runtimes (tag or ID) [default: stampede:latest]. Also the image of
    /// every later group of a file that does not set its own.
    #[arg(long)]
    pub image: Option<String>,
    /// Address the driver's websocket server binds [default: 127.0.0.1:0, or 0.0.0.0:0 when
    /// containers on a bridge must reach it].
    #[arg(long)]
    pub listen: Option<std::net::SocketAddr>,
    /// Host scenarios dial to reach the driver (when the driver runs in a container).
    #[arg(long, env = "STAMPEDE_ADVERTISE")]
    pub advertise: Option<String>,
    /// Run even when the host preflight says the run will not fit (pid_max, threads-max, open
    /// files, memory); the findings are printed as warnings.
    #[arg(long)]
    pub force: bool,
    /// No summary on stdout (results are still written).
    #[arg(long, short = 'q')]
    pub quiet: bool,
    /// Print the results as JSON on stdout instead of the summary (for scripts).
    #[arg(long)]
    pub json: bool,
    /// Serve live Prometheus metrics at http://ADDR/metrics during the run (e.g.
    /// 127.0.0.1:9464; port 0 picks a free one) [default: none].
    #[arg(long, value_name = "ADDR")]
    pub metrics_addr: Option<std::net::SocketAddr>,
    /// Keep serving the final metrics this long after the run (so a scraper sees the end);
    /// Ctrl-C ends it early. E.g. 30s.
    #[arg(long, value_name = "DURATION", requires = "metrics_addr")]
    pub metrics_linger: Option<String>,
    /// Internal (sweeps): write the metrics endpoint's bound address into this file.
    #[arg(long, hide = true, requires = "metrics_addr")]
    pub metrics_addr_file: Option<PathBuf>,
}

#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  stampede sweep scenarios/sweeps/docker-concurrency.toml\n  \
stampede sweep scenarios/hello.toml --set start_concurrency=1,2,4,8 --set runtime=process,docker --repeat 3 --out results/sw\n  \
stampede sweep --resume results/sw\n\nFields: any key of the file's first [[group]], dotted for tables (docker.network, \
swarm.network, start_rate.qps); `run.` addresses the file's top level (run.start_rate.qps); seed and timeout are top-level. \
A [sweep] table in the file may give repeat, x, set = { FIELD = [values] } and points = [{ FIELD = value, … }].\n\n\
Exit codes: 0 every run ok; 1 some run failed (recorded, the sweep went on); 2 invalid input (checked for every point \
before anything runs); 130 interrupted (runs done are kept, the current run cleaned up; continue with --resume).")]
pub struct SweepArgs {
    /// Scenario file the points are made from (its first group is what --set changes).
    #[arg(required_unless_present = "resume")]
    pub scenario: Option<PathBuf>,
    /// An axis: FIELD=V1,V2,… (repeatable; the points are the cross product of all axes).
    #[arg(long = "set", value_name = "FIELD=V1,V2,…")]
    pub set: Vec<String>,
    /// Runs per point [default: the file's [sweep] repeat, else 3].
    #[arg(long)]
    pub repeat: Option<u32>,
    /// The axis plotted along x [default: the first numeric axis]; the others make series.
    #[arg(long)]
    pub x: Option<String>,
    /// Sweep folder [default: results/sweep-<time>-<scenario>].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Continue an interrupted sweep in DIR (runs done are kept).
    #[arg(long, value_name = "DIR")]
    pub resume: Option<PathBuf>,
    /// Image for container runtimes, passed to every run (e.g. an image ID).
    #[arg(long)]
    pub image: Option<String>,
    /// Serve live Prometheus metrics at http://ADDR/metrics: the sweep's progress and the
    /// current run's metrics [default: none].
    #[arg(long, value_name = "ADDR")]
    pub metrics_addr: Option<std::net::SocketAddr>,
    /// No progress lines (sweep.json still records everything).
    #[arg(long, short = 'q')]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct CleanArgs {
    /// Only this run's leftovers [default: every stampede run's].
    #[arg(long)]
    pub run: Option<String>,
    /// Only this runtime's leftovers [default: every runtime that is reachable].
    #[arg(long)]
    pub runtime: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum ImageCommand {
    /// Build the image from the statically linked stampede binary (no Dockerfile, no registry).
    Build(ImageBuildArgs),
}

#[derive(Debug, Args)]
pub struct ImageBuildArgs {
    /// Image tag.
    #[arg(long, default_value = "stampede:latest")]
    pub tag: String,
    /// Statically linked stampede binary [default: this binary if static, else
    /// target/x86_64-unknown-linux-gnu/release/stampede].
    #[arg(long)]
    pub binary: Option<PathBuf>,
    /// Pad the image with a filler file of this many MiB (to see what image size does to starts).
    #[arg(long, default_value_t = 0)]
    pub filler_mb: u32,
    /// Also load the built image onto this Docker Engine (repeat for each node of a multi-node
    /// swarm; with no registry, every node needs it): a unix socket path or `unix://…` URL,
    /// or `tcp://host:port`. The image keeps its ID there, which is what Swarm runs.
    #[arg(long = "node-host", value_name = "ENGINE")]
    pub node_hosts: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// A results folder written by `stampede run`.
    pub dir: PathBuf,
}

#[derive(Debug, Args)]
#[command(after_help = "Example: stampede compare results/process-run results/docker-run --out process-vs-docker.html")]
pub struct CompareArgs {
    /// Results folders written by `stampede run`; the first is the baseline of every ratio.
    #[arg(required = true, num_args = 2..)]
    pub dirs: Vec<PathBuf>,
    /// Where to write the HTML comparison.
    #[arg(long, default_value = "compare.html")]
    pub out: PathBuf,
}
