//! `stampede`: one binary, every role. Parse, install tracing, run, exit with a meaningful code.

mod cli;
mod cmd;
mod metrics_http;


use clap::Parser;

/// Logs to stderr at `RUST_LOG` (default: warnings).
fn init_tracing() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
}

fn main() {
    // The child's own clock at process entry is part of the boot phase: take it first.
    stampede_tiers::identity::mark_process_entry();
    // Every role: a parent holds a connection per child, far beyond the default soft limit.
    stampede_tiers::preflight::raise_open_files();
    // The action, the function under test, starts thousands of times: it skips the argument
    // parser and the log filter (a regex engine) unless RUST_LOG asks for logs. What it never
    // runs it never pages in, and each container maps its own copy of the binary.
    if std::env::args_os().nth(1).is_some_and(|a| a == "action") && std::env::args_os().len() == 2 {
        if std::env::var_os("RUST_LOG").is_some() {
            init_tracing();
        }
        std::process::exit(cmd::action());
    }
    let cli = cli::Cli::parse();
    init_tracing();
    let code = match cmd::run(cli) {
        Ok(code) => code,
        Err(e) => match e.downcast_ref::<cmd::ExitCode>() {
            // `with_code` already folded the whole chain into its message.
            Some(code) => {
                eprintln!("Error: {e}");
                code.0
            }
            None => {
                eprintln!("Error: {e:#}");
                1
            }
        },
    };
    std::process::exit(code);
}
