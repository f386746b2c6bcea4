//! `logbus`: create, write, inspect and drain a logbus shared-memory ring.
//!
//! Every failure is one line on standard error, `logbus: <message>`, and exit
//! code 1 (2 for usage errors); a closed standard output (`logbus dump | head`)
//! ends the program quietly with code 0.

mod cli;
mod create;
mod docs;
mod emit;
mod output;
mod query;
mod read;
mod stat;
mod top;

use std::io;
use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command};

fn main() -> ExitCode {
    // Nothing here is meant to panic; if something does: one line, exit 1.
    logbus_collector::panic_hook::install("logbus", 1);
    // A ring another process truncates under us must end the command with a
    // line, not kill it with SIGBUS (see logbus_ring::sigbus).
    if let Err(e) = logbus_ring::sigbus::install() {
        eprintln!("logbus: cannot install the SIGBUS guard: {e}");
        return ExitCode::from(1);
    }
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(e),
    };
    let result = match &cli.command {
        Command::Create(a) => create::run(a),
        Command::Emit(a) => emit::run(a),
        Command::Dump(a) => read::dump(a),
        Command::Drain(a) => read::drain(a),
        Command::Stat(a) => stat::run(a),
        Command::Tail(a) => read::tail(a),
        Command::Completions(a) => docs::completions(a),
        Command::Man(a) => docs::man(a),
        Command::Top(a) => top::run(a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("logbus: {}", one_line(&e));
            ExitCode::from(1)
        }
    }
}

/// Help and version go out as clap writes them; a usage error becomes one line.
fn usage_error(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    match e.kind() {
        ErrorKind::DisplayHelp
        | ErrorKind::DisplayVersion
        | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = e.print();
            ExitCode::from(e.exit_code().clamp(0, 255) as u8)
        }
        _ => {
            let text = e.to_string();
            let first = text.lines().next().unwrap_or("bad usage");
            let first = first.strip_prefix("error: ").unwrap_or(first);
            eprintln!("logbus: {first} (see 'logbus --help')");
            ExitCode::from(2)
        }
    }
}

/// The error and those of its causes that its message does not already
/// include (the ring's errors name their cause themselves), on one line.
fn one_line(e: &anyhow::Error) -> String {
    let mut text = e.to_string();
    for cause in e.chain().skip(1) {
        let c = cause.to_string();
        if !text.contains(&c) {
            text.push_str(": ");
            text.push_str(&c);
        }
    }
    text.replace('\n', " ")
}

/// Whether the error comes from writing to a reader that went away.
fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        cause
            .downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
    })
}
