//! `logbus-collector [--ring PATH | --ring-dir DIR] [--config FILE] [--metrics 127.0.0.1:PORT] [--check]`
//!
//! Drains a logbus ring, or every ring of a directory (`--ring-dir`, each
//! ring owned by the user whose processes write it), into the configured
//! sinks (default: every record to stdout as JSON lines). SIGTERM/SIGINT: drain, flush, commit, exit 0.
//! SIGHUP: reload the configuration and reopen files. Messages go to stderr,
//! one line each.
//!
//! The ring file is watched (by the collector library): when its path names
//! another file (deleted and created again, renamed over), the collector
//! reads the new ring and drains the old one until no process writes it any
//! more; when it is truncated under us (the SIGBUS guard turns the fault into
//! zero pages), it says so in one line, drops it and waits for a new ring at
//! the path. The sinks stay open throughout.
//!
//! `--check` validates the configuration and prints the effective one
//! without opening a ring (`check.rs`). Under a service manager
//! (`$NOTIFY_SOCKET`, systemd's `Type=notify`) the collector reports
//! `READY=1` once it holds its ring(s), and reloads and shutdown
//! (`notify.rs`).

mod check;
mod notify;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use logbus_collector::metrics::Source;
use logbus_collector::{config, Collector, Config, Control};
use logbus_ring::{ring_path, Ring};
use nix::sys::signal::{SigSet, Signal};

/// Drains a logbus ring into the configured sinks.
#[derive(Parser)]
#[command(name = "logbus-collector", version = logbus_ring::layout::version_line(env!("CARGO_PKG_VERSION")), about)]
struct Args {
    /// The ring file (default: the config's [ring] path, else $LOGBUS_RING, else /dev/shm/logbus).
    #[arg(long, value_name = "PATH", conflicts_with = "ring_dir")]
    ring: Option<PathBuf>,
    /// Read every ring of this directory, those there now and those created
    /// later, each owned by the user whose processes write it; records carry
    /// that owner as `uid` (default: the config's [ring] dir).
    #[arg(long, value_name = "DIR")]
    ring_dir: Option<PathBuf>,
    /// TOML configuration (default: one stdout sink, JSON lines).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Serve Prometheus metrics at http://ADDR/metrics.
    #[arg(long, value_name = "ADDR")]
    metrics: Option<String>,
    /// Validate the configuration, print the effective one (defaults filled
    /// in) and exit: 0 when it is usable, 1 with one line naming the file,
    /// line and key when not. Opens no ring.
    #[arg(long)]
    check: bool,
    /// Write the man page, logbus-collector.1, into DIR and exit.
    #[arg(long, value_name = "DIR", hide = true)]
    man: Option<PathBuf>,
}

/// `--man DIR`.
fn write_man(dir: &Path) -> ExitCode {
    use clap::CommandFactory;
    let written = std::fs::create_dir_all(dir)
        .and_then(|()| clap_mangen::Man::new(Args::command()).generate_to(dir));
    match written {
        Ok(path) => {
            println!("{}", path.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!(
                "logbus-collector: {}: cannot write the man page: {e}",
                dir.display()
            );
            ExitCode::FAILURE
        }
    }
}

fn main() -> ExitCode {
    // One line, no backtrace, and the process goes down (EX_SOFTWARE): a
    // half-dead collector would stall; a restarted one resumes without loss.
    logbus_collector::panic_hook::install("logbus-collector", 70);
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
    if let Some(dir) = &args.man {
        return write_man(dir);
    }
    if args.check {
        return run_check(&args);
    }
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
    // A ring truncated under us must cost that ring, not the process: the
    // guard turns the SIGBUS into zero pages and a flag we check.
    logbus_ring::sigbus::install().context("cannot install the SIGBUS guard")?;

    let config = match &args.config {
        Some(path) => config::load(path)?,
        None => Config::default(),
    };
    let path = match ring_source(&args, &config) {
        RingSource::Dir(dir) => return run_dir(&dir, config, &args, signals),
        RingSource::Ring(path) => path,
    };
    // The error's line already names its cause: keep it, not its source chain.
    let ring = Ring::open(&path).map_err(|e| anyhow::anyhow!("{e}"))?;
    // The collector follows the path itself: a ring replaced there is
    // drained until no process writes it any more, while the new one is read.
    let mut collector = Collector::new(&ring, config.clone(), args.config.clone(), print_notice)?;

    let metrics = Arc::new(Source::new(collector.registry(), collector.rings(), false));
    serve_metrics(&args, &metrics)?;

    let control = handle_signals(signals)?;

    eprintln!(
        "logbus-collector: pid {} consuming {} ({} blocks of {} KiB); sinks: {}",
        std::process::id(),
        ring.path().display(),
        ring.geometry().blocks,
        ring.geometry().block_size / 1024,
        sink_list(&config)
    );
    // The consumer role is held (Collector::new acquired it) and the
    // signals are handled: the service is up.
    notify::ready(&format!("consuming {}", ring.path().display()));
    drop(ring);
    let summary = collector.run(&control);
    report(&summary, true);
    Ok(())
}

/// Where the records come from.
enum RingSource {
    /// One ring file.
    Ring(PathBuf),
    /// Every ring of a directory.
    Dir(PathBuf),
}

/// `--ring`/`--ring-dir` win over the file's `[ring]`, which wins over
/// `$LOGBUS_RING`, then `/dev/shm/logbus`.
fn ring_source(args: &Args, config: &Config) -> RingSource {
    match (&args.ring, &args.ring_dir, &config.ring_dir) {
        (None, Some(d), _) | (None, None, Some(d)) => return RingSource::Dir(d.clone()),
        _ => {}
    }
    RingSource::Ring(match (&args.ring, &config.ring_path) {
        (Some(p), _) | (None, Some(p)) => p.clone(),
        (None, None) => ring_path(None),
    })
}

/// `--check`: validate, print the effective configuration, exit 0 or 1.
/// Touches no ring, file sink or port.
fn run_check(args: &Args) -> ExitCode {
    let config = match &args.config {
        Some(path) => match config::load(path) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("logbus-collector: {e}");
                return ExitCode::FAILURE;
            }
        },
        None => Config::default(),
    };
    let source = ring_source(args, &config);
    let source = match &source {
        RingSource::Ring(p) => check::Source::Ring(p),
        RingSource::Dir(d) => check::Source::Dir(d),
    };
    match check::effective(&config, source, args.metrics.as_deref()) {
        Ok(text) => {
            let from = match &args.config {
                Some(p) => format!("{}: valid", p.display()),
                None => "no --config: the built-in default".to_string(),
            };
            print!("# {from}; the effective configuration (defaults filled in):\n{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            let file = args
                .config
                .as_ref()
                .map_or(String::new(), |p| format!("{}: ", p.display()));
            eprintln!("logbus-collector: {file}{e}");
            ExitCode::FAILURE
        }
    }
}

/// `name (type), ...` for the start-up line.
fn sink_list(config: &Config) -> String {
    let sinks: Vec<String> = config
        .sinks
        .iter()
        .map(|s| format!("{} ({})", s.name, s.kind.type_name()))
        .collect();
    sinks.join(", ")
}

/// Serves `--metrics`, if asked, on its own thread.
fn serve_metrics(args: &Args, metrics: &Arc<Source>) -> anyhow::Result<()> {
    let Some(addr) = &args.metrics else {
        return Ok(());
    };
    let listener =
        TcpListener::bind(addr).with_context(|| format!("--metrics {addr}: cannot listen"))?;
    let local = listener.local_addr()?;
    let source = metrics.clone();
    std::thread::Builder::new()
        .name("metrics".into())
        .spawn(move || {
            if let Err(e) = logbus_collector::metrics::serve_metrics(listener, source) {
                eprintln!("logbus-collector: metrics endpoint stopped: {e}");
            }
        })?;
    eprintln!("logbus-collector: metrics at http://{local}/metrics");
    Ok(())
}

/// A thread that turns the blocked `signals` into requests to the returned
/// control: SIGHUP reloads, the others (SIGTERM, SIGINT) shut down; each
/// said to the service manager first.
fn handle_signals(signals: SigSet) -> std::io::Result<Arc<Control>> {
    let control = Arc::new(Control::new());
    let c = control.clone();
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || loop {
            match signals.wait() {
                Ok(Signal::SIGHUP) => {
                    notify::reloading();
                    c.request_reload();
                }
                Ok(_) => {
                    notify::stopping();
                    c.request_shutdown();
                }
                Err(_) => {}
            }
        })?;
    Ok(control)
}

/// `--ring-dir`: one collector for every ring of `dir`; it finds new rings,
/// and lets go of replaced or truncated ones, itself.
fn run_dir(dir: &Path, config: Config, args: &Args, signals: SigSet) -> anyhow::Result<()> {
    let mut collector = Collector::new_dir(dir, config.clone(), args.config.clone(), print_notice)?;
    let metrics = Arc::new(Source::new(collector.registry(), collector.rings(), true));
    serve_metrics(args, &metrics)?;
    let control = handle_signals(signals)?;
    eprintln!(
        "logbus-collector: pid {} consuming every ring of {} (at most {}); sinks: {}",
        std::process::id(),
        dir.display(),
        logbus_collector::MAX_RINGS,
        sink_list(&config)
    );
    notify::ready(&format!("consuming every ring of {}", dir.display()));
    let summary = collector.run(&control);
    report(&summary, true);
    Ok(())
}

/// The last line of a run.
fn report(summary: &logbus_collector::Summary, exiting: bool) {
    if summary.unflushed.is_empty() {
        if exiting {
            eprintln!("logbus-collector: drained, flushed and committed; exiting");
        }
    } else {
        let left: Vec<String> = summary
            .unflushed
            .iter()
            .map(|u| {
                let lost: u64 = u.lost.iter().sum();
                let mut line = format!(
                    "sink \"{}\" left {} records ({} in the ring for the next collector",
                    u.name,
                    u.in_ring + lost,
                    u.in_ring
                );
                if lost > 0 {
                    let by_level: Vec<String> = logbus_ring::Level::ALL
                        .iter()
                        .rev()
                        .filter(|l| u.lost[**l as usize] > 0)
                        .map(|l| format!("{} {}", u.lost[*l as usize], l.name()))
                        .collect();
                    line += &format!(
                        ", {lost} held in memory only and lost, counted dropped: {}",
                        by_level.join(", ")
                    );
                }
                line + ")"
            })
            .collect();
        eprintln!(
            "logbus-collector: shutdown timeout passed: {}",
            left.join("; ")
        );
    }
}

/// Where the collector library's notices go: one line each on stderr.
/// The end of a reload is also the end of the service manager's
/// `RELOADING=1`.
fn print_notice(notice: logbus_collector::Notice) {
    use logbus_collector::Notice;
    eprintln!("logbus-collector: {notice}");
    match notice {
        Notice::Reloaded { .. } => notify::ready("configuration reloaded"),
        Notice::ReloadFailed { .. } => {
            notify::ready("reload refused: the running configuration stays")
        }
        Notice::ReopenOnly => notify::ready("files reopened"),
        _ => {}
    }
}
