//! Counters: per sink, and the registry of the current sinks' counters that
//! the status file ([`crate::status`], read by `logbus stat`) and the metrics
//! endpoint ([`crate::metrics`]) report.
//!
//! Status document:
//! ```json
//! {"pid": 1234, "updated_ns": 1700000000000000000,
//!  "sinks": [{"name": "console", "type": "stdout", "delivered": 10,
//!             "dropped": {"TRACE": 0, "DEBUG": 0, "INFO": 3, "WARN": 0, "ERROR": 0, "FATAL": 0},
//!             "lost_in_crash": {"TRACE": 0, "DEBUG": 0, "INFO": 0, "WARN": 0, "ERROR": 0, "FATAL": 0},
//!             "errors": 0, "queue_depth": 0}]}
//! ```

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use logbus_ring::{Level, LEVELS};

// The status file's helpers lived here; the reader loop still names them so.
pub use crate::status::{status_path, write_atomic};
use crate::status::{SinkStatus, Status};

/// A write blocked this long makes its sink count as down: in `logbus stat`
/// and `/metrics`, and for a lossless ring, which then stops waiting for it.
pub const STUCK_AFTER: Duration = Duration::from_secs(2);

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
    /// Records a SIGKILLed (or otherwise crashed) earlier collector held for
    /// this sink in memory only and lost, per level: found in the rings'
    /// ledgers when this collector started (see `ledger.rs`). May count a
    /// group the crashed collector was writing (at most one per sink per
    /// crash) although some of it reached the destination.
    pub lost_in_crash: [AtomicU64; LEVELS],
    /// Records the destination took in a request but rejected (OTLP partial
    /// success: it says how many, not which, so no level).
    pub partially_rejected: AtomicU64,
    /// Failed write attempts.
    pub errors: AtomicU64,
    /// Writes tried again after a failure.
    pub retries: AtomicU64,
    /// Whether the last write attempt succeeded (true until one fails).
    pub up: AtomicBool,
    /// When (`logbus_ring::monotonic_ns`) the write in progress started; 0: none. A write
    /// that does not return (a reader that stopped reading, an endpoint that
    /// never answers) makes the sink count as down (see [`SinkStats::is_up`]).
    pub writing_since_ns: AtomicU64,
    /// Records queued or in flight: the sink's backlog.
    pub depth: AtomicU64,
    /// The most its queue held at once, in what its chunks count for in its
    /// window (record bytes, each chunk at least `queue::MIN_CHARGE`).
    pub held_most: std::sync::atomic::AtomicUsize,
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
            lost_in_crash: Default::default(),
            partially_rejected: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            retries: AtomicU64::new(0),
            up: AtomicBool::new(true),
            writing_since_ns: AtomicU64::new(0),
            depth: AtomicU64::new(0),
            held_most: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    /// The sink thread starts a write.
    pub fn write_starts(&self) {
        // Relaxed: a statistic. (`max(1)`: 0 means no write.)
        self.writing_since_ns
            .store(logbus_ring::monotonic_ns().max(1), Ordering::Relaxed);
    }

    /// The sink thread's write returned.
    pub fn write_ended(&self) {
        // Relaxed: a statistic.
        self.writing_since_ns.store(0, Ordering::Relaxed);
    }

    /// How long the write in progress has taken so far (`None`: no write in
    /// progress).
    pub fn writing_for(&self) -> Option<Duration> {
        // Relaxed: a statistic.
        let since = self.writing_since_ns.load(Ordering::Relaxed);
        (since != 0)
            .then(|| Duration::from_nanos(logbus_ring::monotonic_ns().saturating_sub(since)))
    }

    /// Whether the sink is writing: its last write succeeded and the one in
    /// progress, if any, has not been blocked for [`STUCK_AFTER`].
    pub fn is_up(&self) -> bool {
        // Relaxed: a statistic.
        self.up.load(Ordering::Relaxed) && self.writing_for().is_none_or(|d| d < STUCK_AFTER)
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
    chunks: Arc<crate::chunk::ChunkGauge>,
}

impl Registry {
    /// The collector's chunks alive, and the most at once.
    pub fn chunks(&self) -> &Arc<crate::chunk::ChunkGauge> {
        &self.chunks
    }

    /// Replaces the list (after start or a reload).
    pub fn set(&self, sinks: Vec<Arc<SinkStats>>) {
        *self.sinks.lock().unwrap_or_else(|p| p.into_inner()) = sinks;
    }

    /// The current list.
    pub fn sinks(&self) -> Vec<Arc<SinkStats>> {
        self.sinks.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The status document (one JSON object and a newline); its schema is
    /// [`crate::status::Status`], which `logbus stat` reads.
    pub fn status_json(&self, pid: u32, now_ns: u64) -> Vec<u8> {
        let per_level = |counters: &[AtomicU64; LEVELS]| {
            Level::ALL
                .iter()
                .enumerate()
                // Relaxed loads: statistics.
                .map(|(l, level)| {
                    (
                        level.name().to_string(),
                        counters[l].load(Ordering::Relaxed),
                    )
                })
                .collect()
        };
        let doc = Status {
            pid,
            updated_ns: now_ns,
            sinks: self
                .sinks()
                .iter()
                .map(|s| SinkStatus {
                    name: s.name.clone(),
                    kind: s.kind.to_string(),
                    // Relaxed loads: statistics.
                    delivered: s.delivered.load(Ordering::Relaxed),
                    dropped: per_level(&s.dropped),
                    rejected: per_level(&s.rejected),
                    lost_in_crash: per_level(&s.lost_in_crash),
                    partially_rejected: s.partially_rejected.load(Ordering::Relaxed),
                    errors: s.errors.load(Ordering::Relaxed),
                    retries: Some(s.retries.load(Ordering::Relaxed)),
                    up: Some(s.is_up()),
                    writing_for_ms: s
                        .writing_for()
                        .filter(|d| *d >= STUCK_AFTER)
                        .map(|d| d.as_millis() as u64),
                    backlog: s.depth.load(Ordering::Relaxed),
                    queue_depth: s.depth.load(Ordering::Relaxed),
                })
                .collect(),
        };
        let mut out = serde_json::to_vec(&doc).unwrap_or_default();
        out.push(b'\n');
        out
    }
}
