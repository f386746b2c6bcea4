//! Counters: per sink and the ring's own, as a status file
//! (`<ring path>.collector.json`, read by `logbus stat`) and as Prometheus text
//! (served by [`serve_metrics`]).
//!
//! Status file:
//! ```json
//! {"pid": 1234, "updated_ns": 1700000000000000000,
//!  "sinks": [{"name": "console", "type": "stdout", "delivered": 10,
//!             "dropped": {"TRACE": 0, "DEBUG": 0, "INFO": 3, "WARN": 0, "ERROR": 0, "FATAL": 0},
//!             "errors": 0, "queue_depth": 0}]}
//! ```

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use logbus_format::write_json_str;
use logbus_ring::{Level, Ring, LEVELS};

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

    /// Prometheus text exposition of the sinks' and the ring's counters.
    pub fn prometheus(&self, ring: &Ring) -> String {
        use std::fmt::Write as _;
        let mut o = String::with_capacity(4096);
        let sinks = self.sinks();
        let label = |s: &SinkStats| {
            format!(
                "sink=\"{}\",type=\"{}\"",
                s.name.replace('\\', "\\\\").replace('"', "\\\""),
                s.kind
            )
        };
        let _ = writeln!(
            o,
            "# HELP logbus_sink_delivered_total Records a sink finished writing."
        );
        let _ = writeln!(o, "# TYPE logbus_sink_delivered_total counter");
        for s in &sinks {
            // Relaxed loads: statistics.
            let _ = writeln!(
                o,
                "logbus_sink_delivered_total{{{}}} {}",
                label(s),
                s.delivered.load(Ordering::Relaxed)
            );
        }
        let _ = writeln!(
            o,
            "# HELP logbus_sink_dropped_total Records a sink shed (its memory bound reached)."
        );
        let _ = writeln!(o, "# TYPE logbus_sink_dropped_total counter");
        for s in &sinks {
            for (l, level) in Level::ALL.iter().enumerate() {
                let _ = writeln!(
                    o,
                    "logbus_sink_dropped_total{{{},level=\"{}\"}} {}",
                    label(s),
                    level.name(),
                    s.dropped[l].load(Ordering::Relaxed)
                );
            }
        }
        let _ = writeln!(
            o,
            "# HELP logbus_sink_rejected_total Records a sink's destination refused for good."
        );
        let _ = writeln!(o, "# TYPE logbus_sink_rejected_total counter");
        for s in &sinks {
            for (l, level) in Level::ALL.iter().enumerate() {
                let _ = writeln!(
                    o,
                    "logbus_sink_rejected_total{{{},level=\"{}\"}} {}",
                    label(s),
                    level.name(),
                    s.rejected[l].load(Ordering::Relaxed)
                );
            }
        }
        let _ = writeln!(
            o,
            "# HELP logbus_sink_retries_total Writes tried again after a failure."
        );
        let _ = writeln!(o, "# TYPE logbus_sink_retries_total counter");
        for s in &sinks {
            let _ = writeln!(
                o,
                "logbus_sink_retries_total{{{}}} {}",
                label(s),
                s.retries.load(Ordering::Relaxed)
            );
        }
        let _ = writeln!(
            o,
            "# HELP logbus_sink_up Whether the sink's last write succeeded."
        );
        let _ = writeln!(o, "# TYPE logbus_sink_up gauge");
        for s in &sinks {
            let _ = writeln!(
                o,
                "logbus_sink_up{{{}}} {}",
                label(s),
                s.up.load(Ordering::Relaxed) as u8
            );
        }
        let _ = writeln!(
            o,
            "# HELP logbus_sink_backlog Records a sink has not finished (queued or in flight)."
        );
        let _ = writeln!(o, "# TYPE logbus_sink_backlog gauge");
        for s in &sinks {
            let _ = writeln!(
                o,
                "logbus_sink_backlog{{{}}} {}",
                label(s),
                s.depth.load(Ordering::Relaxed)
            );
        }
        let _ = writeln!(o, "# HELP logbus_sink_errors_total Failed write attempts.");
        let _ = writeln!(o, "# TYPE logbus_sink_errors_total counter");
        for s in &sinks {
            let _ = writeln!(
                o,
                "logbus_sink_errors_total{{{}}} {}",
                label(s),
                s.errors.load(Ordering::Relaxed)
            );
        }
        let _ = writeln!(
            o,
            "# HELP logbus_sink_queue_depth Records queued or in flight."
        );
        let _ = writeln!(o, "# TYPE logbus_sink_queue_depth gauge");
        for s in &sinks {
            let _ = writeln!(
                o,
                "logbus_sink_queue_depth{{{}}} {}",
                label(s),
                s.depth.load(Ordering::Relaxed)
            );
        }
        let st = ring.stats();
        let counters: [(&str, &str, CountOf); 6] = [
            ("emitted", "Records producers emitted.", |c| c.emitted),
            ("published", "Records written into the ring.", |c| {
                c.published
            }),
            (
                "dropped",
                "Records the ring's overflow policy refused.",
                |c| c.dropped,
            ),
            ("evicted", "Records pushed out by protected records.", |c| {
                c.evicted
            }),
            (
                "torn",
                "Records whose producer died while writing them.",
                |c| c.torn,
            ),
            ("delivered", "Records the collector committed.", |c| {
                c.delivered
            }),
        ];
        for (name, help, get) in counters {
            let _ = writeln!(o, "# HELP logbus_ring_{name}_total {help}");
            let _ = writeln!(o, "# TYPE logbus_ring_{name}_total counter");
            for (l, level) in Level::ALL.iter().enumerate() {
                let _ = writeln!(
                    o,
                    "logbus_ring_{name}_total{{level=\"{}\"}} {}",
                    level.name(),
                    get(&st.levels[l])
                );
            }
        }
        let _ = writeln!(
            o,
            "# HELP logbus_ring_unread Records in the ring not yet committed."
        );
        let _ = writeln!(o, "# TYPE logbus_ring_unread gauge");
        for (l, level) in Level::ALL.iter().enumerate() {
            let _ = writeln!(
                o,
                "logbus_ring_unread{{level=\"{}\"}} {}",
                level.name(),
                st.levels[l].unread
            );
        }
        let _ = writeln!(
            o,
            "# HELP logbus_ring_invalid_total Garbage records skipped."
        );
        let _ = writeln!(o, "# TYPE logbus_ring_invalid_total counter");
        let _ = writeln!(o, "logbus_ring_invalid_total {}", st.invalid);
        let _ = writeln!(
            o,
            "# HELP logbus_ring_blocks_in_use Blocks claimed by producers and not yet freed."
        );
        let _ = writeln!(o, "# TYPE logbus_ring_blocks_in_use gauge");
        let _ = writeln!(o, "logbus_ring_blocks_in_use {}", st.blocks_in_use);
        o
    }
}

type CountOf = fn(&logbus_ring::LevelCounts) -> u64;

/// Where the status file of the collector of `ring` lives.
pub fn status_path(ring: &Path) -> PathBuf {
    let mut p = ring.as_os_str().to_owned();
    p.push(".collector.json");
    PathBuf::from(p)
}

/// Writes `bytes` to `path` atomically (a temporary file, then rename).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".tmp.{}", std::process::id()));
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

/// Serves `GET /metrics` (Prometheus text) on `listener`, one connection at a
/// time, until the process exits. Other paths get 404.
pub fn serve_metrics(listener: TcpListener, registry: Arc<Registry>, ring: Ring) {
    for conn in listener.incoming() {
        let Ok(conn) = conn else { continue };
        let _ = answer(conn, &registry, &ring);
    }
}

fn answer(conn: TcpStream, registry: &Registry, ring: &Ring) -> std::io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(5)))?;
    conn.set_write_timeout(Some(Duration::from_secs(5)))?;
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut request = String::new();
    reader.read_line(&mut request)?;
    // Skip the headers (up to the blank line).
    let mut line = String::new();
    while reader.read_line(&mut line)? > 2 {
        line.clear();
    }
    let mut parts = request.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let path = target.split('?').next().unwrap_or("");
    let (status, ctype, body) = match (method, path) {
        ("GET", "/metrics") => (
            "200 OK",
            "text/plain; version=0.0.4; charset=utf-8",
            registry.prometheus(ring),
        ),
        ("GET", _) => (
            "404 Not Found",
            "text/plain",
            "not found; try /metrics\n".into(),
        ),
        _ => ("405 Method Not Allowed", "text/plain", "only GET\n".into()),
    };
    let mut w = conn;
    write!(
        w,
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    w.flush()
}
