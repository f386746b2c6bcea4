//! `logbus-collector [--ring PATH] [--config FILE] [--metrics 127.0.0.1:PORT]`
//!
//! Drains a logbus ring into the configured sinks (default: every record to
//! stdout as JSON lines). SIGTERM/SIGINT: drain, flush, commit, exit 0.
//! SIGHUP: reload the configuration and reopen files. Messages go to stderr,
//! one line each.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use logbus_collector::{config, Collector, Config, Control};
use logbus_ring::{ring_path, Ring};
use nix::sys::signal::{SigSet, Signal};

/// Drains a logbus ring into the configured sinks.
#[derive(Parser)]
#[command(name = "logbus-collector", version, about)]
struct Args {
    /// The ring file (default: the config's [ring] path, else $LOGBUS_RING, else /dev/shm/logbus).
    #[arg(long, value_name = "PATH")]
    ring: Option<PathBuf>,
    /// TOML configuration (default: one stdout sink, JSON lines).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Serve Prometheus metrics at http://ADDR/metrics.
    #[arg(long, value_name = "ADDR")]
    metrics: Option<String>,
}

fn main() -> ExitCode {
    // One line, no backtrace, and the process goes down: a half-dead collector
    // (a sink thread gone) would stall; a restarted one resumes without loss.
    std::panic::set_hook(Box::new(|info| {
        let msg = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_default();
        let at = info
            .location()
            .map(|l| format!(" ({}:{})", l.file(), l.line()))
            .unwrap_or_default();
        eprintln!("logbus-collector: internal error: {msg}{at}");
        std::process::exit(70);
    }));
    let args = match Args::try_parse() {
        Ok(a) => a,
        Err(e) if !e.use_stderr() => {
            // --help, --version.
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            // One line: clap's first line, without its usage block.
            let text = e.to_string();
            let first = text.lines().next().unwrap_or("bad arguments");
            let first = first.strip_prefix("error: ").unwrap_or(first);
            eprintln!("logbus-collector: {first} (see --help)");
            return ExitCode::from(2);
        }
    };
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("logbus-collector: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> anyhow::Result<()> {
    // Block the signals we handle in every thread (threads inherit the mask, so
    // do it first); one thread takes them with sigwait: no signal handler at all.
    let mut signals = SigSet::empty();
    for s in [Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP] {
        signals.add(s);
    }
    signals.thread_block().context("cannot block signals")?;

    let config = match &args.config {
        Some(path) => config::load(path)?,
        None => Config::default(),
    };
    let path = match (&args.ring, &config.ring_path) {
        (Some(p), _) | (None, Some(p)) => p.clone(),
        (None, None) => ring_path(None),
    };
    // The error's line already names its cause: keep it, not its source chain.
    let ring = Ring::open(&path).map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut collector = Collector::new(&ring, config.clone(), args.config.clone(), |notice| {
        eprintln!("logbus-collector: {notice}")
    })?;

    if let Some(addr) = &args.metrics {
        let listener =
            TcpListener::bind(addr).with_context(|| format!("--metrics {addr}: cannot listen"))?;
        let local = listener.local_addr()?;
        let (registry, ring) = (collector.registry(), ring.clone());
        std::thread::Builder::new()
            .name("metrics".into())
            .spawn(move || logbus_collector::stats::serve_metrics(listener, registry, ring))?;
        eprintln!("logbus-collector: metrics at http://{local}/metrics");
    }

    let control = Arc::new(Control::new());
    {
        let control = control.clone();
        std::thread::Builder::new()
            .name("signals".into())
            .spawn(move || loop {
                match signals.wait() {
                    Ok(Signal::SIGHUP) => control.request_reload(),
                    Ok(_) => control.request_shutdown(),
                    Err(_) => {}
                }
            })?;
    }

    let sinks: Vec<String> = config
        .sinks
        .iter()
        .map(|s| format!("{} ({})", s.name, s.kind.type_name()))
        .collect();
    eprintln!(
        "logbus-collector: pid {} consuming {} ({} blocks of {} KiB); sinks: {}",
        std::process::id(),
        ring.path().display(),
        ring.geometry().blocks,
        ring.geometry().block_size / 1024,
        sinks.join(", ")
    );
    let summary = collector.run(&control);
    if summary.unflushed.is_empty() {
        eprintln!("logbus-collector: drained, flushed and committed; exiting");
    } else {
        let left: Vec<String> = summary
            .unflushed
            .iter()
            .map(|(name, n)| format!("sink \"{name}\" left {n} records"))
            .collect();
        eprintln!(
            "logbus-collector: shutdown timeout passed: {}; those still in the ring \
             (up to each sink's max_backlog) go to the next collector",
            left.join(", ")
        );
    }
    Ok(())
}
