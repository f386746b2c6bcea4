//! The metrics endpoint's text: the sinks' and the ring's counters in the
//! Prometheus text exposition format ([`Registry::prometheus`]), encoded by
//! the `prometheus-client` crate.
//!
//! Nothing is counted for the metrics: on each scrape a [`Snapshot`] reads
//! the counters the collector keeps anyway (the sinks' [`SinkStats`](crate::stats::SinkStats), each
//! ring's shared counters) and is handed to the crate's encoder as a
//! [`Collector`]. The records pay nothing for it.
//!
//! The HTTP server that serves it (`metrics_http.rs`, re-exported here:
//! [`serve_metrics`], [`Source`]) is hyper on a small tokio runtime of its
//! own, bounding what clients can hold: at most [`MAX_CONNECTIONS`]
//! connections at once (more are closed on accept), a request's headers must
//! arrive within [`HEADER_TIMEOUT`], and no connection lives longer than
//! [`CONNECTION_TIMEOUT`]. Idle clients therefore cost a task each, never the
//! answer to the next one.

use std::fmt;
use std::sync::atomic::Ordering;

use logbus_ring::{Level, LevelCounts, Ring, LEVELS};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, NoLabelSet};
use prometheus_client::metrics::MetricType;

use crate::stats::Registry;

pub use crate::metrics_http::{
    serve_metrics, Rings, Source, CONNECTION_TIMEOUT, HEADER_TIMEOUT, MAX_CONNECTIONS,
};

impl Registry {
    /// Prometheus text exposition of the sinks' and the rings' counters; with
    /// `labelled`, each ring's series carry `ring` (its path) and `uid` (its
    /// owner) labels.
    pub fn prometheus(&self, rings: &[Ring], labelled: bool) -> String {
        let mut registry = prometheus_client::registry::Registry::default();
        registry.register_collector(Box::new(Snapshot::take(self, rings, labelled)));
        let mut out = String::with_capacity(4096);
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::prometheus_text::encode(&mut out, &registry);
        out
    }
}

/// Labels of one series: (name, value) pairs.
type Labels = Vec<(&'static str, String)>;

/// The counters of one scrape.
struct Snapshot {
    sinks: Vec<SinkValues>,
    rings: Vec<RingValues>,
}

/// A sink's counters, read once.
struct SinkValues {
    /// `sink`, `type`.
    labels: [(&'static str, String); 2],
    delivered: u64,
    dropped: [u64; LEVELS],
    rejected: [u64; LEVELS],
    lost_in_crash: [u64; LEVELS],
    partially_rejected: u64,
    retries: u64,
    up: bool,
    depth: u64,
    errors: u64,
}

/// A ring's counters, read once.
struct RingValues {
    /// `ring`, `uid`, or none (one ring, unlabelled).
    labels: Labels,
    stats: logbus_ring::Stats,
}

impl fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Snapshot")
            .field("sinks", &self.sinks.len())
            .field("rings", &self.rings.len())
            .finish()
    }
}

impl Snapshot {
    fn take(registry: &Registry, rings: &[Ring], labelled: bool) -> Snapshot {
        // Relaxed loads: statistics.
        let load = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
        let sinks = registry
            .sinks()
            .iter()
            .map(|s| SinkValues {
                labels: [("sink", s.name.clone()), ("type", s.kind.to_string())],
                delivered: load(&s.delivered),
                dropped: std::array::from_fn(|l| load(&s.dropped[l])),
                rejected: std::array::from_fn(|l| load(&s.rejected[l])),
                lost_in_crash: std::array::from_fn(|l| load(&s.lost_in_crash[l])),
                partially_rejected: load(&s.partially_rejected),
                retries: load(&s.retries),
                up: s.is_up(),
                depth: load(&s.depth),
                errors: load(&s.errors),
            })
            .collect();
        let rings = rings
            .iter()
            .map(|r| RingValues {
                labels: if labelled {
                    vec![
                        ("ring", r.path().display().to_string()),
                        ("uid", r.owner().to_string()),
                    ]
                } else {
                    Vec::new()
                },
                stats: r.stats(),
            })
            .collect();
        Snapshot { sinks, rings }
    }

    /// One sample per sink: its labels and `get`'s value.
    fn per_sink(&self, get: fn(&SinkValues) -> u64) -> impl Iterator<Item = (Labels, u64)> + '_ {
        self.sinks.iter().map(move |s| (s.labels.to_vec(), get(s)))
    }

    /// One sample per sink and level.
    fn per_sink_level(
        &self,
        get: fn(&SinkValues) -> &[u64; LEVELS],
    ) -> impl Iterator<Item = (Labels, u64)> + '_ {
        self.sinks.iter().flat_map(move |s| {
            Level::ALL.iter().map(move |l| {
                let mut labels = s.labels.to_vec();
                labels.push(("level", l.name().to_string()));
                (labels, get(s)[*l as usize])
            })
        })
    }

    /// The sinks' series: what became of their records...
    fn encode_sink_counts(&self, enc: &mut DescriptorEncoder) -> fmt::Result {
        use MetricType::Counter;
        family(
            enc,
            "logbus_sink_delivered",
            "Records a sink finished writing.",
            Counter,
            self.per_sink(|s| s.delivered),
        )?;
        family(
            enc,
            "logbus_sink_dropped",
            "Records a sink shed (its memory bound reached).",
            Counter,
            self.per_sink_level(|s| &s.dropped),
        )?;
        family(
            enc,
            "logbus_sink_rejected",
            "Records a sink's destination refused for good.",
            Counter,
            self.per_sink_level(|s| &s.rejected),
        )?;
        family(
            enc,
            "logbus_sink_lost_in_crash",
            "Records a crashed earlier collector held for a sink in memory only and lost.",
            Counter,
            self.per_sink_level(|s| &s.lost_in_crash),
        )?;
        family(
            enc,
            "logbus_sink_partially_rejected",
            "Records an endpoint took but rejected (OTLP partial success).",
            Counter,
            self.per_sink(|s| s.partially_rejected),
        )?;
        family(
            enc,
            "logbus_sink_retries",
            "Writes tried again after a failure.",
            Counter,
            self.per_sink(|s| s.retries),
        )
    }

    /// ...and how they are doing.
    fn encode_sink_health(&self, enc: &mut DescriptorEncoder) -> fmt::Result {
        use MetricType::{Counter, Gauge};
        let up_help = format!(
            "Whether the sink is writing: its last write succeeded and none has been blocked for {} s.",
            crate::stats::STUCK_AFTER.as_secs()
        );
        family(
            enc,
            "logbus_sink_up",
            &up_help,
            Gauge,
            self.per_sink(|s| s.up as u64),
        )?;
        family(
            enc,
            "logbus_sink_backlog",
            "Records a sink has not finished (queued or in flight).",
            Gauge,
            self.per_sink(|s| s.depth),
        )?;
        family(
            enc,
            "logbus_sink_errors",
            "Failed write attempts.",
            Counter,
            self.per_sink(|s| s.errors),
        )?;
        family(
            enc,
            "logbus_sink_queue_depth",
            "Records queued or in flight.",
            Gauge,
            self.per_sink(|s| s.depth),
        )
    }

    /// The rings' series. A counter whose value no ring can have (its shared
    /// words were overwritten) is left out: absent, not a false number.
    fn encode_rings(&self, enc: &mut DescriptorEncoder) -> fmt::Result {
        use MetricType::{Counter, Gauge};
        let per_level = |which: &'static str, get: CountOf| {
            self.rings
                .iter()
                .filter(move |r| !r.stats.is_impossible(which))
                .flat_map(move |r| {
                    Level::ALL.iter().map(move |l| {
                        let mut labels = vec![("level", l.name().to_string())];
                        labels.extend(r.labels.iter().cloned());
                        (labels, get(&r.stats.levels[*l as usize]))
                    })
                })
        };
        let per_ring = |get: fn(&logbus_ring::Stats) -> u64| {
            self.rings
                .iter()
                .map(move |r| (r.labels.clone(), get(&r.stats)))
        };
        for (name, help, get) in RING_COUNTERS {
            // `published` is checked as `emitted` is.
            let which = if name == "published" { "emitted" } else { name };
            let name = format!("logbus_ring_{name}");
            family(enc, &name, help, Counter, per_level(which, get))?;
        }
        family(
            enc,
            "logbus_ring_unread",
            "Records in the ring not yet committed.",
            Gauge,
            per_level("", |c| c.unread),
        )?;
        family(
            enc,
            "logbus_ring_invalid",
            "Garbage records skipped.",
            Counter,
            self.rings
                .iter()
                .filter(|r| !r.stats.is_impossible("invalid"))
                .map(|r| (r.labels.clone(), r.stats.invalid)),
        )?;
        family(
            enc,
            "logbus_ring_impossible_counters",
            "Counters left out above because no ring can have their values (the ring's shared words were overwritten); see logbus stat.",
            Gauge,
            per_ring(|st| st.impossible.len() as u64),
        )?;
        family(
            enc,
            "logbus_ring_blocks_in_use",
            "Blocks claimed by producers and not yet freed.",
            Gauge,
            per_ring(|st| st.blocks_in_use),
        )
    }
}

type CountOf = fn(&LevelCounts) -> u64;

/// The per-level ring counters: name (after `logbus_ring_`), help, value.
const RING_COUNTERS: [(&str, &str, CountOf); 6] = [
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

impl Collector for Snapshot {
    fn encode(&self, mut enc: DescriptorEncoder) -> fmt::Result {
        self.encode_sink_counts(&mut enc)?;
        self.encode_sink_health(&mut enc)?;
        self.encode_rings(&mut enc)
    }
}

/// One metric: its HELP and TYPE lines, then a sample per label set.
/// `name` is without the `_total` the encoder appends to a counter's.
fn family<L: EncodeLabelSet>(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    kind: MetricType,
    samples: impl Iterator<Item = (L, u64)>,
) -> fmt::Result {
    let mut metric = enc.encode_descriptor(name, help, None, kind)?;
    for (labels, v) in samples {
        let mut sample = metric.encode_family(&labels)?;
        match kind {
            MetricType::Counter => sample.encode_counter::<NoLabelSet, _, u64>(&v, None)?,
            _ => sample.encode_gauge(&v)?,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;
    use std::sync::Arc;

    use logbus_ring::{Event, Ring};

    use crate::stats::{Registry, SinkStats};

    /// Every series in the exposition format: HELP and TYPE once per metric
    /// (a counter's name with `_total` on all three), labels escaped, a
    /// ring's series without labels when there is one ring, with `ring` and
    /// `uid` otherwise.
    #[test]
    fn sinks_and_rings_in_the_text_format() {
        let tmp = logbus_testkit::TempDir::new("prom-text");
        let ring = Ring::open(tmp.dir().join("ring")).unwrap();
        let mut w = ring.writer().unwrap();
        for _ in 0..5 {
            w.emit(&Event::new(9, "x")).unwrap();
        }
        let reg = Registry::default();
        let a = Arc::new(SinkStats::new("a\\b\"c", "file"));
        a.delivered.store(7, Ordering::Relaxed);
        a.dropped[2].store(3, Ordering::Relaxed);
        a.lost_in_crash[4].store(2, Ordering::Relaxed);
        reg.set(vec![a]);
        let rings = [ring];
        let text = reg.prometheus(&rings, false);
        for line in [
            "# HELP logbus_sink_delivered_total Records a sink finished writing.",
            "# TYPE logbus_sink_delivered_total counter",
            "logbus_sink_delivered_total{sink=\"a\\\\b\\\"c\",type=\"file\"} 7",
            "logbus_sink_dropped_total{sink=\"a\\\\b\\\"c\",type=\"file\",level=\"INFO\"} 3",
            "logbus_sink_lost_in_crash_total{sink=\"a\\\\b\\\"c\",type=\"file\",level=\"ERROR\"} 2",
            "# TYPE logbus_sink_up gauge",
            "logbus_ring_published_total{level=\"INFO\"} 5",
            "logbus_ring_unread{level=\"INFO\"} 5",
            "logbus_ring_invalid_total 0",
        ] {
            assert!(text.lines().any(|l| l == line), "{line:?} missing:\n{text}");
        }
        let types = text.lines().filter(|l| l.starts_with("# TYPE")).count();
        assert_eq!(types, 20, "{text}");
        let labelled = reg.prometheus(&rings, true);
        let path = rings[0].path().display().to_string();
        let series = format!(
            "logbus_ring_invalid_total{{ring=\"{path}\",uid=\"{}\"}} 0",
            rings[0].owner()
        );
        assert!(labelled.lines().any(|l| l == series), "{labelled}");
    }
}
