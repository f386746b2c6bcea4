//! Sinks: where records go. Each sink runs on its own thread behind its own
//! [`SinkQueue`](crate::queue::SinkQueue), so a slow or stuck sink delays no other.
//!
//! A sink is an [`Output`]: it is handed groups of jobs (chunks plus the
//! sink's level mask) and returns once they are written; on error the thread
//! retries the same group, for as long as it takes, with backoff (100 ms
//! doubling to 5 s, each wait drawn at random between half and all of it, so
//! that sinks failing together do not retry in step), and reports the errors
//! on stderr, at most one line per sink per 10 s. Files are opened by the
//! sink's thread on its first write, so an open that never returns (a FIFO
//! nobody reads) holds up that sink alone. Meanwhile its records wait in its
//! queue (see `crate::queue`: in the ring, then in memory).
//!
//! One folder per sink, its configuration and its writer side by side:
//! * [`null`]: discards, formatting nothing.
//! * [`stdout`], [`file`]: the [`line_writer`] (format each record as a JSON
//!   or text line with [`logbus_format`]) over the sink's destination.
//! * [`otlp`]: convert to OTLP records, export, wait for the acknowledgement.
//!
//! Shared by them: [`rotating`] (the file sink's rotation), `thread` (the
//! sink thread's loop: retries, backoff, error reports).

pub mod file;
pub mod line_writer;
pub mod null;
pub mod otlp;
pub mod rotating;
pub mod stdout;
mod thread;

pub use thread::{spawn, Reader};

use crate::config::{SinkConfig, SinkKind};
use crate::queue::Job;
use logbus_ring::LEVELS;

/// Records a sink takes per write (byte sinks); bounds what a killed collector
/// delivers twice.
pub const GROUP_RECORDS: usize = 4096;

/// What became of a group of jobs handed to [`Output::write`].
#[derive(Debug, PartialEq, Eq)]
pub enum WriteOutcome {
    /// Every record the jobs select is written (or acknowledged).
    Written {
        /// Of those, records the destination took but rejected (OTLP
        /// partial success: it says how many, not which), counted apart.
        partially_rejected: u64,
    },
    /// Finished, but part of the group was refused for good (OTLP: a
    /// permanent status): those records are counted rejected, not delivered,
    /// and not sent again.
    Rejected {
        /// The refused records, per level.
        levels: [u64; LEVELS],
        /// The last refusal.
        last: String,
        /// As in [`Written`](Self::Written).
        partially_rejected: u64,
    },
    /// Not finished (the error): the same jobs are passed again later (the
    /// output resumes where it failed) or the group is
    /// [`discard`](Output::discard)ed.
    RetryLater(String),
    /// The destination is gone for good (stdout closed by its reader; the
    /// error): the collector shuts down.
    Closed(String),
}

/// Where a sink writes.
pub trait Output: Send {
    /// Writes the records the jobs select: see [`WriteOutcome`].
    fn write(&mut self, jobs: &[Job]) -> WriteOutcome;

    /// Reopens the destination (SIGHUP; log rotation by someone else).
    fn reopen(&mut self) -> Result<(), String> {
        Ok(())
    }

    /// Forgets a partly written group that is given up.
    fn discard(&mut self) {}

    /// Records to hand to one [`write`](Self::write).
    fn group_records(&self) -> usize {
        GROUP_RECORDS
    }
}

/// Why a sink could not be set up.
#[derive(Debug)]
pub struct SinkError {
    /// The sink.
    pub name: String,
    /// What went wrong.
    pub problem: String,
}

impl std::fmt::Display for SinkError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "sink \"{}\": {}", self.name, self.problem)
    }
}

impl std::error::Error for SinkError {}

/// Builds the output of a sink configuration (opens no file, connects nothing yet).
///
/// # Errors
/// A [`SinkError`] when a file cannot be opened or the exporter not made.
pub fn open_output(cfg: &SinkConfig) -> Result<Box<dyn Output>, SinkError> {
    let err = |problem: String| SinkError {
        name: cfg.name.clone(),
        problem,
    };
    Ok(match &cfg.kind {
        SinkKind::Stdout { format } => Box::new(stdout::open(*format)),
        SinkKind::Null => Box::new(null::NullSink),
        SinkKind::File {
            path,
            format,
            max_bytes,
            keep,
        } => Box::new(file::open(path, *format, *max_bytes, *keep).map_err(err)?),
        SinkKind::Otlp { .. } => Box::new(otlp::OtlpSink::new(cfg).map_err(err)?),
    })
}
