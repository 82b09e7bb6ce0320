//! One file per subcommand; [`run`] dispatches.

mod clean;
mod compare;
mod image;
mod progress;
mod report;
mod run;
mod runtimes;
mod signals;
mod sweep;

use crate::cli::{Cli, Command};

/// An error that carries the process exit code it should produce.
#[derive(Debug)]
pub struct ExitCode(pub i32);

impl std::fmt::Display for ExitCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "exit code {}", self.0)
    }
}
impl std::error::Error for ExitCode {}

/// Attach an exit code to an error (shown as the error's outermost context).
pub fn with_code(e: impl Into<anyhow::Error>, code: i32) -> anyhow::Error {
    let e: anyhow::Error = e.into();
    // The message is the whole chain, each cause once: many library errors already print
    // their source in their own message, and repeating it helps nobody.
    let mut message = e.to_string();
    for cause in e.chain().skip(1).map(ToString::to_string) {
        if !message.contains(&cause) {
            message = format!("{message}: {cause}");
        }
    }
    anyhow::Error::new(ExitCode(code)).context(message)
}

/// Print to stdout. A reader that went away (`stampede compare … | head`) ends the output
/// quietly instead of panicking; the command's work (and its exit code) is unaffected.
pub fn out(text: impl AsRef<str>) {
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(text.as_ref().as_bytes()).and_then(|()| stdout.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => eprintln!("cannot write to stdout: {e}"),
        _ => {}
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread().enable_all().build()?)
}

pub fn run(cli: Cli) -> anyhow::Result<i32> {
    match cli.command {
        Command::Run(args) => run::run(args),
        Command::Clean(args) => clean::run(args),
        Command::Image(c) => image::run(c),
        Command::Report(args) => report::run(args),
        Command::Compare(args) => compare::run(args),
        Command::Sweep(args) => sweep::run(args),
        Command::Runtimes => runtimes::run(),
        Command::Scenario => {
            let registry = std::sync::Arc::new(stampede::registry::this_binary()?);
            runtime()?.block_on(stampede_tiers::scenario::run(registry))?;
            Ok(0)
        }
        Command::Action => Ok(action()),
    }
}

/// The action role, with its exit code. An action is tiny: one thread keeps its footprint (and
/// its start) small.
pub fn action() -> i32 {
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("Error: cannot start the action's runtime: {e}");
            return 1;
        }
    };
    match rt.block_on(stampede_tiers::action::run()) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("Error: {e}");
            1
        }
    }
}
