//! `logbus-flood`: one producer process that emits N records into a ring as
//! fast as it can, for multi-process tests and throughput harnesses.
//!
//! ```text
//! logbus-flood RING --records N [--severity S] [--msg-bytes B] [--start-fd FD]
//! ```
//!
//! Opens the existing ring RING and a writer, optionally waits for one byte on
//! the inherited descriptor FD (so that a harness can start many floods at
//! once), emits N records whose message is `"<pid> <i> "` (i from 0) padded with
//! `x` to B bytes, and prints one JSON line:
//! `{"pid":..,"written":..,"dropped":..,"ns_per_record":..}`. The time covers
//! formatting the message and the emit call. A record the ring's overflow
//! policy refuses is counted by the ring and reported dropped.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{anyhow, bail, Context};
use clap::Parser;
use logbus_ring::{Emitted, Event, Ring, Severity};

/// Emits N records into a logbus ring and reports what became of them as JSON.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// The ring file (it must exist).
    ring: PathBuf,
    /// Records to emit.
    #[arg(long)]
    records: u64,
    /// Severity: trace, debug, info, warn, error, fatal or 1-24.
    #[arg(long, default_value = "info")]
    severity: Severity,
    /// Message length in bytes (the "<pid> <i> " prefix is kept whole).
    #[arg(long, default_value_t = 100)]
    msg_bytes: usize,
    /// Wait for one byte on this inherited file descriptor before emitting.
    #[arg(long)]
    start_fd: Option<i32>,
}

fn wait_for_start(fd: i32) -> anyhow::Result<()> {
    let mut byte = 0u8;
    loop {
        // SAFETY: `byte` is valid for writes of 1 byte for the whole call; an fd
        // that is not open makes read fail with EBADF, which is reported.
        let n = unsafe { libc::read(fd, (&mut byte as *mut u8).cast(), 1) };
        match n {
            1 => return Ok(()),
            0 => bail!("start descriptor {fd} was closed before the start signal"),
            _ => {
                let e = std::io::Error::last_os_error();
                if e.kind() != std::io::ErrorKind::Interrupted {
                    return Err(e).with_context(|| format!("cannot read start descriptor {fd}"));
                }
            }
        }
    }
}

fn run(args: Args) -> anyhow::Result<()> {
    // OpenError's one line already names the file and the cause.
    let ring = Ring::open_existing(&args.ring).map_err(|e| anyhow!("{e}"))?;
    let severity = args.severity.0;
    let pid = std::process::id();
    let mut writer = Some(
        ring.writer()
            .with_context(|| format!("{}", args.ring.display()))?,
    );
    if let Some(fd) = args.start_fd {
        wait_for_start(fd)?;
    }

    let mut prefix = itoa::Buffer::new().format(pid).to_owned();
    prefix.push(' ');
    let padding = "x".repeat(args.msg_bytes);
    let mut message = String::with_capacity(args.msg_bytes.max(prefix.len() + 21));
    let mut num = itoa::Buffer::new();
    let (mut written, mut dropped) = (0u64, 0u64);

    let start = Instant::now();
    match writer.as_mut() {
        Some(w) => {
            for i in 0..args.records {
                message.clear();
                message.push_str(&prefix);
                message.push_str(num.format(i));
                message.push(' ');
                let pad = args.msg_bytes.saturating_sub(message.len());
                message.push_str(&padding[..pad]);
                match w.emit(&Event::new(severity, &message))? {
                    Emitted::Written { .. } => written += 1,
                    Emitted::Dropped => dropped += 1,
                }
            }
        }
        None => {
            dropped = args.records;
        }
    }
    let elapsed = start.elapsed();

    let ns_per_record = if args.records == 0 {
        0.0
    } else {
        elapsed.as_nanos() as f64 / args.records as f64
    };
    println!(
        "{{\"pid\":{pid},\"written\":{written},\"dropped\":{dropped},\"ns_per_record\":{ns_per_record:.1}}}"
    );
    Ok(())
}

fn main() {
    let args = Args::parse();
    if let Err(e) = run(args) {
        eprintln!("logbus-flood: {e:#}");
        std::process::exit(1);
    }
}
