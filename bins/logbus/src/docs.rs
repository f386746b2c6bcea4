//! `completions` and `man`: shell completions and man pages generated from
//! the clap definitions in `cli.rs`, so that they follow the grammar.

use std::io::Write;

use anyhow::{Context, Result};
use clap::CommandFactory;

use crate::cli::{Cli, CompletionsArgs, ManArgs};

/// `logbus completions SHELL`: the completion script on standard output.
pub fn completions(args: &CompletionsArgs) -> Result<()> {
    let mut out = Vec::new();
    clap_complete::generate(args.shell, &mut Cli::command(), "logbus", &mut out);
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(&out)?;
    stdout.flush()?;
    Ok(())
}

/// `logbus man --dir DIR`: `logbus.1` and `logbus-SUBCOMMAND.1` in DIR.
pub fn man(args: &ManArgs) -> Result<()> {
    std::fs::create_dir_all(&args.dir)
        .with_context(|| format!("{}: cannot create the directory", args.dir.display()))?;
    clap_mangen::generate_to(Cli::command(), &args.dir)
        .with_context(|| format!("{}: cannot write the man pages", args.dir.display()))?;
    let mut pages: Vec<String> = std::fs::read_dir(&args.dir)?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("logbus") && n.ends_with(".1"))
        .collect();
    pages.sort();
    println!("{}: {}", args.dir.display(), pages.join(" "));
    Ok(())
}
