//! `stampede`: one binary, every role. Parse, install tracing, run, exit with a meaningful code.

mod cli;
mod cmd;
mod metrics_http;


use clap::Parser;

fn main() {
    // The child's own clock at process entry is part of the boot phase: take it first.
    stampede_tiers::identity::mark_process_entry();
    let cli = cli::Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
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
