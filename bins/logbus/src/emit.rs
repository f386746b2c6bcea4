//! `logbus emit`: one record from the command line, or one per line of
//! standard input as each line arrives (like `logger(1)`).

use std::io::{self, BufRead};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use logbus_ring::{ring_path, Emitted, Event, Field, Resource, Ring, Writer, WriterError};

use crate::cli::EmitArgs;

/// Writes the record(s); records refused by the overflow policy are reported
/// on standard error but are not an error.
pub fn run(args: &EmitArgs) -> Result<()> {
    let (ring_arg, words) = args.ring_and_message();
    let path = ring_path(ring_arg.as_deref());
    // Never creates a ring: a missing one is an error naming the path (a ring
    // made here would have this command's owner and mode, and a typo would
    // silently log into a new file nobody reads).
    let mut emitter = Emitter::open(&path, args.service.as_deref())?;
    let fields: Vec<Field<'_>> = args.fields.iter().map(|f| f.as_field()).collect();
    let (trace_id, span_id, trace_flags) = match args.traceparent {
        Some(tp) => (Some(tp.trace_id), Some(tp.span_id), tp.flags),
        None => (args.trace_id, args.span_id, 0),
    };
    let base = Event {
        target: &args.target,
        fields: &fields,
        trace_id,
        span_id,
        trace_flags,
        ..Event::new(args.level, "")
    };
    if words.is_empty() {
        let mut input = io::stdin().lock();
        let mut line = Vec::with_capacity(1024);
        loop {
            line.clear();
            // `read_until` returns as soon as a whole line is in: each line is
            // written when it arrives, not at end of input.
            let n = input
                .read_until(b'\n', &mut line)
                .context("cannot read standard input")?;
            if n == 0 {
                break;
            }
            if line.last() == Some(&b'\n') {
                line.pop();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
            }
            if line.is_empty() && args.skip_empty {
                continue;
            }
            let message = String::from_utf8_lossy(&line);
            emitter.emit(&Event {
                message: &message,
                ..base
            })?;
        }
    } else {
        let message = words.join(" ");
        emitter.emit(&Event {
            message: &message,
            ..base
        })?;
    }
    emitter.report();
    Ok(())
}

/// Registers this process under `service`: its resource tag, or, when the
/// table has no room (a warning), the resource its records carry themselves.
fn register(ring: &Ring, path: &Path, service: &str) -> Option<Result<u8, Resource>> {
    let resource = Resource {
        pid: std::process::id(),
        service: service.to_string(),
        version: String::new(),
        host: std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_default(),
        command: std::env::args().collect::<Vec<_>>().join(" "),
    };
    match ring.register_resource(&resource) {
        Ok(tag) => Some(Ok(tag)),
        Err(e @ WriterError::TableFull { .. }) => {
            eprintln!(
                "logbus: {}: {e}; records of service `{service}` carry its name themselves",
                path.display()
            );
            Some(Err(resource))
        }
        Err(e) => {
            eprintln!(
                "logbus: {}: cannot register service `{service}` ({e}); records carry none",
                path.display()
            );
            None
        }
    }
}

/// Opens the ring at `path`, which must exist: a missing one is an error
/// naming the path (a ring made here would have this command's owner and
/// mode, and a typo would silently log into a new file nobody reads).
fn open_existing(path: &Path) -> Result<Ring> {
    Ring::open_existing(path).map_err(|e| match e {
        logbus_ring::OpenError::Io { ref source, .. }
            if source.kind() == io::ErrorKind::NotFound =>
        {
            anyhow::anyhow!(
                "{}: no such ring (create it with `logbus create`)",
                path.display()
            )
        }
        e => e.into(),
    })
}

/// Makes its writer lazily and counts what was not written.
struct Emitter {
    path: PathBuf,
    service: Option<String>,
    ring: Ring,
    writer: Option<Writer>,
    resource: Option<Result<u8, Resource>>,
    total: u64,
    /// Refused by the overflow policy (already counted in the ring).
    refused: u64,
}

impl Emitter {
    fn open(path: &Path, service: Option<&str>) -> Result<Emitter> {
        let ring = open_existing(path)?;
        let resource = service.and_then(|name| register(&ring, path, name));
        Ok(Emitter {
            path: path.to_path_buf(),
            service: service.map(str::to_string),
            ring,
            writer: None,
            resource,
            total: 0,
            refused: 0,
        })
    }

    /// A writer of the ring; once more from the path when the ring opened
    /// was replaced there and its collector is letting go of it.
    fn make_writer(&mut self) -> Result<Writer> {
        let mut w = match self.ring.writer() {
            Err(WriterError::Retired) => {
                let again = Emitter::open(&self.path, self.service.as_deref())?;
                (self.ring, self.resource) = (again.ring, again.resource);
                self.ring.writer()
            }
            other => other,
        }
        .with_context(|| format!("{}: cannot write", self.ring.path().display()))?;
        match &self.resource {
            Some(Ok(tag)) => w.set_resource(*tag),
            Some(Err(carried)) => w.carry_resource(carried),
            None => {}
        }
        Ok(w)
    }

    fn emit(&mut self, event: &Event<'_>) -> Result<()> {
        self.total += 1;
        if self.writer.is_none() {
            self.writer = Some(self.make_writer()?);
        }
        let Some(writer) = self.writer.as_mut() else {
            return Ok(());
        };
        match writer.emit(event) {
            Ok(Emitted::Written { .. }) => {}
            Ok(Emitted::Dropped) => self.refused += 1,
            Err(e) => {
                return Err(e)
                    .with_context(|| format!("{}: cannot write", self.ring.path().display()))
            }
        }
        Ok(())
    }

    /// One line on standard error when anything was dropped.
    fn report(&self) {
        if self.refused == 0 {
            return;
        }
        eprintln!(
            "logbus: {}: dropped {} of {} records: refused by the overflow policy (the ring is full at that level)",
            self.ring.path().display(),
            self.refused,
            self.total,
        );
    }
}
