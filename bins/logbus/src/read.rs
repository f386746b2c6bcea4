//! `dump`, `drain` and `tail`: the commands that print records.

use std::path::Path;
use std::time::Duration;

use anyhow::Result;
use logbus_ring::{ring_path, Batch, Consumer, Peeker, Ring};

use crate::cli::{wants_json, DumpArgs, ReadArgs, TailArgs};
use crate::output::{colour_wanted, Printer};
use crate::query::Query;

/// How long `tail` sleeps when it finds nothing new.
const IDLE_PAUSE: Duration = Duration::from_millis(25);
/// Records per poll of `tail` (it prints and flushes after each poll).
const TAIL_BATCH: usize = 4096;

/// Opens an existing ring for writing (never creates one).
pub fn open_existing(explicit: Option<&Path>) -> Result<Ring> {
    Ok(Ring::open_existing(ring_path(explicit))?)
}

/// Opens an existing ring read-only: read access to the file is enough.
pub fn open_read_only(explicit: Option<&Path>) -> Result<Ring> {
    Ok(Ring::open_read_only(ring_path(explicit))?)
}

/// Fails with one line when the ring was shrunk under its mapping (the
/// SIGBUS guard installed in `main` turned the fault into zeros).
pub fn check_alive(ring: &Ring) -> Result<()> {
    if ring.faulted() {
        anyhow::bail!(
            "{}: the ring file was truncated while being read; stopping",
            ring.path().display()
        );
    }
    Ok(())
}

/// One ring's worth of records: the most a single snapshot can hold, and the
/// bound that makes `dump` and `drain` finish while producers keep writing.
fn ring_worth(ring: &Ring) -> usize {
    usize::try_from(ring.geometry().data_bytes() / 64).unwrap_or(usize::MAX)
}

/// A printer for `args`' format and query, coloured on a terminal.
fn printer_for(read: &ReadArgs, query: &crate::query::QueryArgs) -> Printer {
    Printer::new(wants_json(read, query), colour_wanted(), Query::new(query))
}

/// `logbus dump`: prints the unread records the query selects, sorted by
/// time, consuming nothing.
///
/// The first poll takes every unread record at once, so the output is one
/// sorted snapshot (one trace, `--trace-id`, comes out in time order across
/// every process that wrote it); records a producer overwrote during the
/// copy are read again by a later poll (printed after, each poll sorted in
/// itself). With `-n N` only the last N selected are printed.
pub fn dump(args: &DumpArgs) -> Result<()> {
    let ring = open_read_only(args.read.ring.as_deref())?;
    let mut peeker = Peeker::new(&ring);
    let mut batch = Batch::new();
    let mut printer = printer_for(&args.read, &args.query);
    if let Some(n) = args.query.lines {
        printer.keep_last(n);
    }
    let worth = ring_worth(&ring);
    let mut budget = worth;
    while budget > 0 && peeker.poll(&mut batch, worth) > 0 {
        check_alive(&ring)?;
        budget = budget.saturating_sub(batch.len());
        batch.sort_by_time();
        printer.batch(&ring, &batch)?;
    }
    check_alive(&ring)?;
    printer.release()?;
    printer.flush()?;
    Ok(())
}

/// `logbus drain`: consumes the unread records, printing each poll sorted by
/// time and committing it only once it has been written to standard output.
/// Output that cannot be written is not committed: the next reader gets it.
pub fn drain(args: &ReadArgs) -> Result<()> {
    let ring = open_existing(args.ring.as_deref())?;
    let mut consumer = Consumer::acquire(&ring)?;
    let mut batch = Batch::new();
    let mut printer = Printer::new(args.json, colour_wanted(), Query::default());
    let worth = ring_worth(&ring);
    let mut budget = worth;
    while budget > 0 && consumer.poll(&mut batch, worth) > 0 {
        check_alive(&ring)?;
        budget = budget.saturating_sub(batch.len());
        batch.sort_by_time();
        printer.batch(&ring, &batch)?;
        printer.flush()?;
        consumer.commit_all();
    }
    // Trailing padding claimed by an empty poll is committed too.
    consumer.commit_all();
    Ok(())
}

/// `logbus tail`: follows the new records the query selects, without
/// consuming them, until interrupted (SIGINT keeps its default action: the
/// process ends at once, and everything polled so far has already been
/// flushed) or until its standard output is closed. With `--unread`, or
/// `-n N` (the last N of them), the unread records it selects come first.
pub fn tail(args: &TailArgs) -> Result<()> {
    let ring = open_read_only(args.read.ring.as_deref())?;
    // A follower sees new records even when a collector consumes them at once.
    let mut peeker = Peeker::follow(&ring);
    let mut batch = Batch::new();
    let mut printer = printer_for(&args.read, &args.query);
    if let Some(n) = args.query.lines {
        printer.keep_last(n);
    }
    if args.unread || args.query.lines.is_some() {
        // The backlog first (bounded, in case producers outrun us). A record
        // published between the follower's start and this read shows twice.
        let mut backlog = Peeker::new(&ring);
        let mut budget = ring_worth(&ring);
        while budget > 0 && backlog.poll(&mut batch, TAIL_BATCH) > 0 {
            check_alive(&ring)?;
            budget = budget.saturating_sub(batch.len());
            batch.sort_by_time();
            printer.batch(&ring, &batch)?;
        }
        printer.release()?;
        printer.flush()?;
    }
    loop {
        if peeker.poll(&mut batch, TAIL_BATCH) > 0 {
            check_alive(&ring)?;
            batch.sort_by_time();
            printer.batch(&ring, &batch)?;
            printer.flush()?;
            continue;
        }
        if stdout_closed() {
            return Ok(());
        }
        // A ring shrunk under us would make the next read fault: stop instead.
        ring.check_size()?;
        std::thread::sleep(IDLE_PAUSE);
    }
}

/// Whether standard output is a pipe or terminal whose other end is gone.
/// Checked while idle, so that `tail` does not outlive its reader until the
/// next record arrives.
fn stdout_closed() -> bool {
    let mut fd = libc::pollfd {
        fd: libc::STDOUT_FILENO,
        events: 0,
        revents: 0,
    };
    // SAFETY: `fd` is one valid, initialised pollfd and we pass a count of 1;
    // a zero timeout makes the call return at once. No memory is shared.
    let rc = unsafe { libc::poll(&mut fd, 1, 0) };
    rc == 1 && fd.revents & (libc::POLLERR | libc::POLLHUP | libc::POLLNVAL) != 0
}
