//! Counters: per sink, and the registry of the current sinks' counters that
//! the status file ([`crate::status`], read by `logbus stat`) and the metrics
//! endpoint ([`crate::metrics`]) report.
//!
//! Status document:
//! ```json
//! {"pid": 1234, "updated_ns": 1700000000000000000,
//!  "sinks": [{"name": "console", "type": "stdout", "delivered": 10,
//!             "dropped": {"TRACE": 0, "DEBUG": 0, "INFO": 3, "WARN": 0, "ERROR": 0, "FATAL": 0},
//!             "errors": 0, "queue_depth": 0}]}
//! ```

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use logbus_format::write_json_str;
use logbus_ring::{Level, LEVELS};

// The status file's helpers lived here; the reader loop still names them so.
pub use crate::status::{status_path, write_atomic};

/// One sink's counters. Shared by a sink and its replacement of the same name
/// across reloads, so that they keep counting.
#[derive(Debug)]
pub struct SinkStats {
    /// The sink's name.
    pub name: String,
    /// The sink's type (`stdout`, `file`, `otlp`, `null`).
    pub kind: &'static str,
    /// Records written (stdout/file: the write returned; otlp: acknowledged).
    ///
    /// All counters here are statistics: written and read with Relaxed
    /// ordering everywhere, since no other memory is published through them
    /// and a report may be a moment old.
    pub delivered: AtomicU64,
    /// Records shed by the sink's queue (its memory bound), per level.
    pub dropped: [AtomicU64; LEVELS],
    /// Records its destination refused for good (OTLP: a permanent
    /// rejection, or the rejected part of a partial success), per level.
    pub rejected: [AtomicU64; LEVELS],
    /// Failed write attempts.
    pub errors: AtomicU64,
    /// Writes tried again after a failure.
    pub retries: AtomicU64,
    /// Whether the last write attempt succeeded (true until one fails).
    pub up: AtomicBool,
    /// Records queued or in flight: the sink's backlog.
    pub depth: AtomicU64,
}

impl SinkStats {
    /// Zeroed counters.
    pub fn new(name: &str, kind: &'static str) -> SinkStats {
        SinkStats {
            name: name.to_string(),
            kind,
            delivered: AtomicU64::new(0),
            dropped: Default::default(),
            rejected: Default::default(),
            errors: AtomicU64::new(0),
            retries: AtomicU64::new(0),
            up: AtomicBool::new(true),
            depth: AtomicU64::new(0),
        }
    }

    /// Total dropped over levels.
    pub fn dropped_total(&self) -> u64 {
        // Relaxed: statistics.
        self.dropped.iter().map(|d| d.load(Ordering::Relaxed)).sum()
    }
}

/// The current sinks' counters, for the status file and the metrics endpoint.
#[derive(Default)]
pub struct Registry {
    sinks: Mutex<Vec<Arc<SinkStats>>>,
}

impl Registry {
    /// Replaces the list (after start or a reload).
    pub fn set(&self, sinks: Vec<Arc<SinkStats>>) {
        *self.sinks.lock().unwrap_or_else(|p| p.into_inner()) = sinks;
    }

    /// The current list.
    pub fn sinks(&self) -> Vec<Arc<SinkStats>> {
        self.sinks.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The status document (one JSON object and a newline).
    pub fn status_json(&self, pid: u32, now_ns: u64) -> Vec<u8> {
        let mut out = Vec::with_capacity(512);
        out.extend_from_slice(
            format!("{{\"pid\":{pid},\"updated_ns\":{now_ns},\"sinks\":[").as_bytes(),
        );
        for (i, s) in self.sinks().iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(b"{\"name\":");
            write_json_str(&mut out, &s.name);
            out.extend_from_slice(b",\"type\":");
            write_json_str(&mut out, s.kind);
            // Relaxed loads: statistics.
            out.extend_from_slice(
                format!(
                    ",\"delivered\":{},\"dropped\":{{",
                    s.delivered.load(Ordering::Relaxed)
                )
                .as_bytes(),
            );
            for (l, level) in Level::ALL.iter().enumerate() {
                if l > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(
                    format!(
                        "\"{}\":{}",
                        level.name(),
                        s.dropped[l].load(Ordering::Relaxed)
                    )
                    .as_bytes(),
                );
            }
            out.extend_from_slice(b"},\"rejected\":{");
            for (l, level) in Level::ALL.iter().enumerate() {
                if l > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(
                    format!(
                        "\"{}\":{}",
                        level.name(),
                        s.rejected[l].load(Ordering::Relaxed)
                    )
                    .as_bytes(),
                );
            }
            out.extend_from_slice(
                format!(
                    "}},\"errors\":{},\"retries\":{},\"up\":{},\"backlog\":{},\"queue_depth\":{}}}",
                    s.errors.load(Ordering::Relaxed),
                    s.retries.load(Ordering::Relaxed),
                    s.up.load(Ordering::Relaxed),
                    s.depth.load(Ordering::Relaxed),
                    s.depth.load(Ordering::Relaxed)
                )
                .as_bytes(),
            );
        }
        out.extend_from_slice(b"]}\n");
        out
    }
}
