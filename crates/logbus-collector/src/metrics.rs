//! The metrics endpoint's text: the sinks' and the ring's counters in the
//! Prometheus text exposition format ([`Registry::prometheus`]).
//!
//! The HTTP server that serves it (`metrics_http.rs`, re-exported here:
//! [`serve_metrics`], [`Source`]) is hyper on a small tokio runtime of its
//! own, bounding what clients can hold: at most [`MAX_CONNECTIONS`]
//! connections at once (more are closed on accept), a request's headers must
//! arrive within [`HEADER_TIMEOUT`], and no connection lives longer than
//! [`CONNECTION_TIMEOUT`]. Idle clients therefore cost a task each, never the
//! answer to the next one.

use std::sync::atomic::Ordering;

use logbus_ring::{Level, Ring};

use crate::stats::{Registry, SinkStats};

pub use crate::metrics_http::{
    serve_metrics, Rings, Source, CONNECTION_TIMEOUT, HEADER_TIMEOUT, MAX_CONNECTIONS,
};

impl Registry {
    /// Prometheus text exposition of the sinks' and the rings' counters; with
    /// `labelled`, each ring's series carry `ring` (its path) and `uid` (its
    /// owner) labels.
    pub fn prometheus(&self, rings: &[Ring], labelled: bool) -> String {
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
            "# HELP logbus_sink_partially_rejected_total Records an endpoint took but rejected (OTLP partial success)."
        );
        let _ = writeln!(o, "# TYPE logbus_sink_partially_rejected_total counter");
        for s in &sinks {
            let _ = writeln!(
                o,
                "logbus_sink_partially_rejected_total{{{}}} {}",
                label(s),
                s.partially_rejected.load(Ordering::Relaxed)
            );
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
            "# HELP logbus_sink_up Whether the sink is writing: its last write succeeded and none has been blocked for {} s.",
            crate::stats::STUCK_AFTER.as_secs()
        );
        let _ = writeln!(o, "# TYPE logbus_sink_up gauge");
        for s in &sinks {
            let _ = writeln!(o, "logbus_sink_up{{{}}} {}", label(s), s.is_up() as u8);
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
        let stats: Vec<(String, logbus_ring::Stats)> = rings
            .iter()
            .map(|r| {
                let l = if labelled {
                    format!(
                        "ring=\"{}\",uid=\"{}\"",
                        escape_label(&r.path().display().to_string()),
                        r.owner()
                    )
                } else {
                    String::new()
                };
                (l, r.stats())
            })
            .collect();
        // `{level="INFO",ring="...",uid="..."}`, or without the ring's labels.
        let with = |ring: &str, level: Option<Level>| {
            let mut parts: Vec<String> = Vec::new();
            if let Some(l) = level {
                parts.push(format!("level=\"{}\"", l.name()));
            }
            if !ring.is_empty() {
                parts.push(ring.to_string());
            }
            if parts.is_empty() {
                String::new()
            } else {
                format!("{{{}}}", parts.join(","))
            }
        };
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
            // A value no ring can have (its shared words were overwritten)
            // is left out: absent, not a false number.
            let which = if name == "published" { "emitted" } else { name };
            for (ring, st) in stats.iter().filter(|(_, st)| !st.is_impossible(which)) {
                for (l, level) in Level::ALL.iter().enumerate() {
                    let _ = writeln!(
                        o,
                        "logbus_ring_{name}_total{} {}",
                        with(ring, Some(*level)),
                        get(&st.levels[l])
                    );
                }
            }
        }
        let _ = writeln!(
            o,
            "# HELP logbus_ring_unread Records in the ring not yet committed."
        );
        let _ = writeln!(o, "# TYPE logbus_ring_unread gauge");
        for (ring, st) in &stats {
            for (l, level) in Level::ALL.iter().enumerate() {
                let _ = writeln!(
                    o,
                    "logbus_ring_unread{} {}",
                    with(ring, Some(*level)),
                    st.levels[l].unread
                );
            }
        }
        let _ = writeln!(
            o,
            "# HELP logbus_ring_invalid_total Garbage records skipped."
        );
        let _ = writeln!(o, "# TYPE logbus_ring_invalid_total counter");
        for (ring, st) in stats.iter().filter(|(_, st)| !st.is_impossible("invalid")) {
            let _ = writeln!(
                o,
                "logbus_ring_invalid_total{} {}",
                with(ring, None),
                st.invalid
            );
        }
        let _ = writeln!(
            o,
            "# HELP logbus_ring_impossible_counters Counters left out above because no ring can \
             have their values (the ring's shared words were overwritten); see logbus stat."
        );
        let _ = writeln!(o, "# TYPE logbus_ring_impossible_counters gauge");
        for (ring, st) in &stats {
            let _ = writeln!(
                o,
                "logbus_ring_impossible_counters{} {}",
                with(ring, None),
                st.impossible.len()
            );
        }
        let _ = writeln!(
            o,
            "# HELP logbus_ring_blocks_in_use Blocks claimed by producers and not yet freed."
        );
        let _ = writeln!(o, "# TYPE logbus_ring_blocks_in_use gauge");
        for (ring, st) in &stats {
            let _ = writeln!(
                o,
                "logbus_ring_blocks_in_use{} {}",
                with(ring, None),
                st.blocks_in_use
            );
        }
        o
    }
}

type CountOf = fn(&logbus_ring::LevelCounts) -> u64;

/// A Prometheus label value: backslash, quote and newline escaped.
fn escape_label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
