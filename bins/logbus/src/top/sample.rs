//! What `logbus top` reads each interval, and the rates it derives from two
//! readings: per ring (its counters), per sink (the collector's status file)
//! and per producer process (the ring's resource table).
//!
//! A reading opens each ring read-only anew (so a ring deleted, replaced or
//! truncated is noticed at the next interval), copies its counters and drops
//! the mapping. Rates are differences of two readings of the same file (same
//! creation time) divided by the time between them; a ring seen for the first
//! time, or replaced, has counts but no rates yet.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use logbus_collector::status::SinkStatus;
use logbus_ring::{Level, ProcessCounts, Ring, Stats, LEVELS};
use serde_json::{json, Value};

use crate::stat::{collector_report, CollectorReport};

/// Which rings to watch.
#[derive(Debug, Clone)]
pub enum Target {
    /// One ring file.
    Ring(PathBuf),
    /// Every ring of a directory (regular files not starting with `.`).
    Dir(PathBuf),
}

/// One reading of every watched ring.
pub struct Reading {
    at: Instant,
    rings: Vec<(PathBuf, Result<RingReading, String>)>,
    /// A problem with the target itself (an unreadable directory).
    problem: Option<String>,
}

struct RingReading {
    created_ns: u64,
    stats: Stats,
    processes: Vec<ProcessCounts>,
    collector: Option<CollectorReport>,
}

impl Reading {
    /// Reads every ring of `target` now.
    pub fn take(target: &Target) -> Reading {
        let at = Instant::now();
        let (paths, problem) = match target {
            Target::Ring(p) => (vec![p.clone()], None),
            Target::Dir(d) => match list_dir(d) {
                Ok(p) => (p, None),
                Err(e) => (vec![], Some(format!("{}: {e}", d.display()))),
            },
        };
        let rings = paths
            .into_iter()
            .map(|p| {
                let r = read_ring(&p);
                (p, r)
            })
            .collect();
        Reading { at, rings, problem }
    }
}

/// Per second, from a count now and the same count `secs` earlier (none
/// without an earlier reading).
fn rate(secs: Option<f64>, cur: u64, old: Option<u64>) -> Rate {
    Some(cur.saturating_sub(old?) as f64 / secs?)
}

/// A ring's row: its blocks, mode, rates in and out per level, losses and
/// consumer.
fn ring_row(name: &str, r: &RingReading, p: Option<&RingReading>, secs: Option<f64>) -> RingRow {
    let level = |get: fn(&logbus_ring::LevelCounts) -> u64| -> [Rate; LEVELS] {
        std::array::from_fn(|l| {
            rate(
                secs,
                get(&r.stats.levels[l]),
                p.map(|p| get(&p.stats.levels[l])),
            )
        })
    };
    let total = r.stats.total();
    let ptotal = p.map(|p| p.stats.total());
    RingRow {
        path: name.to_string(),
        blocks: r.stats.blocks,
        blocks_in_use: r.stats.blocks_in_use,
        lossless: r.stats.wait_ms > 0,
        in_per_s: level(|c| c.emitted),
        out_per_s: level(|c| c.delivered),
        dropped_per_s: rate(secs, total.dropped, ptotal.map(|t| t.dropped)),
        evicted_per_s: rate(secs, total.evicted, ptotal.map(|t| t.evicted)),
        torn_per_s: rate(secs, total.torn, ptotal.map(|t| t.torn)),
        waits_per_s: rate(secs, r.stats.waits, p.map(|p| p.stats.waits)),
        consumer_pid: r
            .stats
            .consumer
            .and_then(|(pid, alive)| alive.then_some(pid)),
    }
}

/// A sink's row, from its status now and (same name) in the last reading.
fn sink_row(ring: &str, s: &SinkStatus, before: Option<&SinkStatus>, secs: Option<f64>) -> SinkRow {
    SinkRow {
        ring: ring.to_string(),
        name: s.name.clone(),
        kind: s.kind.clone(),
        up: s.up,
        backlog: s.backlog,
        written_per_s: rate(secs, s.delivered, before.map(|b| b.delivered)),
        dropped: s.dropped.values().sum(),
        lost_in_crash: s.lost_in_crash.values().sum(),
        retries: s.retries,
        writing_for_ms: s.writing_for_ms,
    }
}

/// A producer process's row, from its counts now and (same tag and
/// generation) in the last reading.
fn producer_row(
    ring: &str,
    pc: &ProcessCounts,
    old: Option<&ProcessCounts>,
    secs: Option<f64>,
) -> ProducerRow {
    let written: u64 = pc.written.iter().sum();
    let dropped: u64 = pc.dropped.iter().sum();
    let old_dropped: u64 = old.map_or(0, |o| o.dropped.iter().sum());
    ProducerRow {
        ring: ring.to_string(),
        pid: pc.resource.pid,
        service: pc.resource.service.clone(),
        uid: pc.uid,
        alive: pc.alive,
        written,
        records_per_s: match (secs, old) {
            (Some(_), Some(o)) => rate(secs, written, Some(o.written.iter().sum())),
            // New since the last reading: all it wrote is this interval's.
            (Some(s), None) => Some(written as f64 / s),
            (None, _) => None,
        },
        dropped_last: dropped.saturating_sub(old_dropped),
    }
}

/// The candidate ring files of a directory, sorted.
fn list_dir(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let hidden = entry.file_name().to_string_lossy().starts_with('.');
        // A status file of a collector of one ring: `<ring>.collector.json`.
        let status = entry
            .file_name()
            .to_string_lossy()
            .ends_with(logbus_collector::status::STATUS_SUFFIX);
        if !hidden && !status && entry.file_type().is_ok_and(|t| t.is_file()) {
            out.push(entry.path());
        }
    }
    out.sort();
    Ok(out)
}

fn read_ring(path: &Path) -> Result<RingReading, String> {
    // The ring's own errors name the file and the problem in one line.
    let ring = Ring::open_read_only(path).map_err(|e| e.to_string())?;
    let stats = ring.stats();
    let processes = ring.process_counts();
    if ring.faulted() {
        return Err(format!(
            "{}: the ring file was truncated while being read",
            path.display()
        ));
    }
    let collector = collector_report(path, stats.consumer);
    Ok(RingReading {
        created_ns: ring.header().created_ns,
        stats,
        processes,
        collector,
    })
}

/// A rate over the interval, or `None` without an earlier reading.
pub type Rate = Option<f64>;

/// One ring's line.
#[derive(Debug, Clone, PartialEq)]
pub struct RingRow {
    pub path: String,
    pub blocks: u64,
    pub blocks_in_use: u64,
    pub lossless: bool,
    /// Records per second emitted into the ring, per level.
    pub in_per_s: [Rate; LEVELS],
    /// Records per second delivered by the consumer, per level.
    pub out_per_s: [Rate; LEVELS],
    pub dropped_per_s: Rate,
    pub evicted_per_s: Rate,
    pub torn_per_s: Rate,
    pub waits_per_s: Rate,
    /// The live consumer's pid.
    pub consumer_pid: Option<u32>,
}

/// One sink's line (from the collector's status file).
#[derive(Debug, Clone, PartialEq)]
pub struct SinkRow {
    pub ring: String,
    pub name: String,
    pub kind: String,
    pub up: Option<bool>,
    pub backlog: u64,
    pub written_per_s: Rate,
    /// Records shed, every level.
    pub dropped: u64,
    /// Records an earlier, crashed collector lost for it, every level.
    pub lost_in_crash: u64,
    pub retries: Option<u64>,
    pub writing_for_ms: Option<u64>,
}

/// One producer process's line.
#[derive(Debug, Clone, PartialEq)]
pub struct ProducerRow {
    pub ring: String,
    pub pid: u32,
    pub service: String,
    pub uid: u32,
    pub alive: bool,
    pub written: u64,
    pub records_per_s: Rate,
    /// Records dropped in the last interval (all of them when there is no
    /// earlier reading).
    pub dropped_last: u64,
}

/// What one refresh shows.
#[derive(Debug, Clone, Default)]
pub struct Frame {
    pub interval_ms: Option<u64>,
    pub rings: Vec<RingRow>,
    pub sinks: Vec<SinkRow>,
    /// Sorted by rate, then records written: the top talkers first.
    pub producers: Vec<ProducerRow>,
    /// One line per ring that could not be read (vanished, not a ring).
    pub problems: Vec<String>,
}

impl Frame {
    /// The frame of `now`, with rates against `before` when given.
    pub fn new(before: Option<&Reading>, now: &Reading) -> Frame {
        let secs = before.map(|b| now.at.duration_since(b.at).as_secs_f64().max(1e-3));
        let prev: HashMap<&Path, &RingReading> = before
            .map(|b| {
                b.rings
                    .iter()
                    .filter_map(|(p, r)| Some((p.as_path(), r.as_ref().ok()?)))
                    .collect()
            })
            .unwrap_or_default();
        let mut f = Frame {
            interval_ms: secs.map(|s| (s * 1000.0).round() as u64),
            problems: now.problem.iter().cloned().collect(),
            ..Frame::default()
        };
        for (path, r) in &now.rings {
            match r {
                Ok(r) => {
                    // Rates only against a reading of the same file.
                    let p = prev
                        .get(path.as_path())
                        .copied()
                        .filter(|p| p.created_ns == r.created_ns);
                    f.add_ring(&path.display().to_string(), r, p, secs);
                }
                Err(e) => f.problems.push(e.clone()),
            }
        }
        f.producers.sort_by(|a, b| {
            let ra = a.records_per_s.unwrap_or(0.0);
            let rb = b.records_per_s.unwrap_or(0.0);
            rb.total_cmp(&ra)
                .then(b.written.cmp(&a.written))
                .then(a.pid.cmp(&b.pid))
        });
        f
    }

    /// The rows of one ring `r` (its previous reading `p`, taken `secs`
    /// before): the ring's own, its collector's sinks', its producers'.
    fn add_ring(
        &mut self,
        name: &str,
        r: &RingReading,
        p: Option<&RingReading>,
        secs: Option<f64>,
    ) {
        self.rings.push(ring_row(name, r, p, secs));
        if let Some(c) = &r.collector {
            let old = p.and_then(|p| p.collector.as_ref());
            for s in &c.sinks {
                let before = old.and_then(|o| o.sinks.iter().find(|x| x.name == s.name));
                self.sinks.push(sink_row(name, s, before, secs));
            }
        }
        for pc in &r.processes {
            let old = p.and_then(|p| {
                p.processes
                    .iter()
                    .find(|o| o.tag == pc.tag && o.generation == pc.generation)
            });
            self.producers.push(producer_row(name, pc, old, secs));
        }
    }

    /// The frame as one JSON object (`logbus top --json`).
    pub fn to_json(&self) -> Value {
        let levels = |r: &[Rate; LEVELS]| -> Value {
            Level::ALL
                .iter()
                .map(|l| (l.name().to_string(), json!(r[*l as usize])))
                .collect::<serde_json::Map<_, _>>()
                .into()
        };
        json!({
            "interval_ms": self.interval_ms,
            "rings": self.rings.iter().map(|r| json!({
                "path": r.path,
                "blocks": r.blocks,
                "blocks_in_use": r.blocks_in_use,
                "mode": if r.lossless { "lossless" } else { "lossy" },
                "in_per_s": levels(&r.in_per_s),
                "out_per_s": levels(&r.out_per_s),
                "dropped_per_s": r.dropped_per_s,
                "evicted_per_s": r.evicted_per_s,
                "torn_per_s": r.torn_per_s,
                "waits_per_s": r.waits_per_s,
                "consumer_pid": r.consumer_pid,
            })).collect::<Vec<_>>(),
            "sinks": self.sinks.iter().map(|s| json!({
                "ring": s.ring,
                "name": s.name,
                "type": s.kind,
                "up": s.up,
                "backlog": s.backlog,
                "written_per_s": s.written_per_s,
                "dropped": s.dropped,
                "lost_in_crash": s.lost_in_crash,
                "retries": s.retries,
                "writing_for_ms": s.writing_for_ms,
            })).collect::<Vec<_>>(),
            "producers": self.producers.iter().map(|p| json!({
                "ring": p.ring,
                "pid": p.pid,
                "service": p.service,
                "uid": p.uid,
                "alive": p.alive,
                "written": p.written,
                "records_per_s": p.records_per_s,
                "dropped_last_interval": p.dropped_last,
            })).collect::<Vec<_>>(),
            "problems": self.problems,
        })
    }
}
