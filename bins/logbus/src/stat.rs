//! `logbus stat`: geometry, counters, the consuming reader and, while a
//! collector runs, its per-sink counters.

use std::fmt::Write as _;
use std::io::Write;
use std::path::Path;

use anyhow::Result;
use logbus_collector::status::{status_path, SinkStatus, Status};
use logbus_ring::{Level, LevelCounts, Ring, Stats};
use serde_json::{json, Map, Value};

use crate::cli::ReadArgs;
use crate::create::human_bytes;
use crate::read::{check_alive, open_read_only};

/// Prints the ring's statistics as a table or one JSON object.
pub fn run(args: &ReadArgs) -> Result<()> {
    let ring = open_read_only(args.ring.as_deref())?;
    let stats = ring.stats();
    check_alive(&ring)?;
    let collector = collector_report(ring.path(), stats.consumer);
    let text = if args.json {
        let mut s = serde_json::to_string(&to_json(&ring, &stats, collector.as_ref()))?;
        s.push('\n');
        s
    } else {
        to_text(&ring, &stats, collector.as_ref())
    };
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()?;
    Ok(())
}

/// What the collector last wrote to `<ring>.collector.json`.
#[derive(Debug, Clone, PartialEq)]
pub struct CollectorReport {
    /// The collector's pid (equal to the live consumer's).
    pub pid: u32,
    /// When it wrote the file, ns since the Unix epoch (0 if not said).
    pub updated_ns: u64,
    /// One entry per sink, as the collector wrote it.
    pub sinks: Vec<SinkStatus>,
}

/// Reads the collector's counters, but only when they come from the live
/// consumer of the ring: a file left by a dead collector, or by one that is
/// not this ring's consumer, is ignored. Unreadable or malformed files are
/// ignored too (the collector replaces the file atomically, so that means
/// something else wrote it).
pub fn collector_report(ring: &Path, consumer: Option<(u32, bool)>) -> Option<CollectorReport> {
    let (pid, true) = consumer? else {
        return None;
    };
    // Next to the ring, or (a collector of the ring's whole directory) in
    // the directory.
    let dir_file = ring.parent().map(logbus_collector::status::dir_status_path);
    let doc = [Some(status_path(ring)), dir_file]
        .into_iter()
        .flatten()
        .filter_map(|p| read_status(&p))
        .filter_map(|bytes| serde_json::from_slice::<Status>(&bytes).ok())
        .find(|doc| doc.pid == pid)?;
    Some(CollectorReport {
        pid,
        updated_ns: doc.updated_ns,
        sinks: doc.sinks,
    })
}

/// Reads the status file without following a symlink and without waiting on
/// a FIFO (`O_NONBLOCK`, then only a regular file not writable by others is
/// read), at most 1 MiB of it.
fn read_status(path: &Path) -> Option<Vec<u8>> {
    use std::io::Read;
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_CLOEXEC | libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .ok()?;
    let meta = file.metadata().ok()?;
    if !meta.is_file() || meta.mode() & 0o022 != 0 {
        return None;
    }
    let mut bytes = Vec::new();
    file.take(1 << 20).read_to_end(&mut bytes).ok()?;
    Some(bytes)
}

fn rfc3339(ns: u64) -> String {
    let mut b = Vec::with_capacity(32);
    logbus_format::write_rfc3339(&mut b, ns);
    String::from_utf8_lossy(&b).into_owned()
}

/// A counter's value, or null when it is impossible (see `Stats::impossible`).
fn counter(stats: &Stats, name: &str, v: u64) -> Value {
    if stats.is_impossible(name) {
        Value::Null
    } else {
        v.into()
    }
}

/// A counter's value for the text, or `?` when it is impossible.
fn shown(stats: &Stats, name: &str, v: u64) -> String {
    if stats.is_impossible(name) {
        "?".into()
    } else {
        v.to_string()
    }
}

fn counts_json(stats: &Stats, c: &LevelCounts) -> Value {
    json!({
        "emitted": counter(stats, "emitted", c.emitted),
        "published": counter(stats, "emitted", c.published),
        "dropped": counter(stats, "dropped", c.dropped),
        "evicted": counter(stats, "evicted", c.evicted),
        "delivered": counter(stats, "delivered", c.delivered),
        "torn": counter(stats, "torn", c.torn),
        "lost": counter(stats, "lost", c.lost),
        "unread": c.unread,
    })
}

fn to_json(ring: &Ring, stats: &Stats, collector: Option<&CollectorReport>) -> Value {
    let g = ring.geometry();
    let h = ring.header();
    let total = stats.total();
    let mut levels = Map::new();
    let mut watermarks = Map::new();
    for level in Level::ALL {
        levels.insert(level.name().into(), counts_json(stats, stats.level(level)));
        watermarks.insert(level.name().into(), h.watermarks[level as usize].into());
    }
    let mut v = json!({
        "path": ring.path().to_string_lossy(),
        "blocks": g.blocks,
        "block_size": g.block_size,
        "data_bytes": g.data_bytes(),
        "file_size": g.file_size(),
        "wait_ms": h.wait_ms,
        "mode": if h.wait_ms > 0 { "lossless" } else { "lossy" },
        "max_message": h.max_message,
        "protect_severity": h.protect_severity,
        "watermarks": watermarks,
        "created": rfc3339(h.created_ns),
        "blocks_in_use": stats.blocks_in_use,
        "waits": counter(stats, "waits", stats.waits),
        "wait_timeouts": counter(stats, "wait_timeouts", stats.wait_timeouts),
        "wakeups": counter(stats, "wakeups", stats.wakeups),
        "emitted": counter(stats, "emitted", total.emitted),
        "published": counter(stats, "emitted", total.published),
        "dropped": counter(stats, "dropped", total.dropped),
        "evicted": counter(stats, "evicted", total.evicted),
        "delivered": counter(stats, "delivered", total.delivered),
        "torn": counter(stats, "torn", total.torn),
        "lost": counter(stats, "lost", total.lost),
        "unread": total.unread,
        "invalid": counter(stats, "invalid", stats.invalid),
        "impossible": stats.impossible,
        "levels": levels,
        "consumer": stats.consumer.map(|(pid, alive)| json!({"pid": pid, "alive": alive})),
    });
    if let (Some(c), Some(obj)) = (collector, v.as_object_mut()) {
        obj.insert(
            "sinks".into(),
            serde_json::to_value(&c.sinks).unwrap_or(Value::Null),
        );
    }
    v
}

/// `logbus stat`'s report: the ring's header and books, the per-level
/// table, then (with a live collector) its sinks.
fn to_text(ring: &Ring, stats: &Stats, collector: Option<&CollectorReport>) -> String {
    let mut s = String::new();
    ring_summary(&mut s, ring, stats);
    let _ = writeln!(s);
    level_table(&mut s, stats, collector.is_some());
    if let Some(c) = collector {
        sink_table(&mut s, c);
    }
    s
}

/// The ring's lines: path, geometry, mode, policy, creation, blocks,
/// consumer and the counters outside the level table. (`write!` into a
/// String cannot fail.)
fn ring_summary(s: &mut String, ring: &Ring, stats: &Stats) {
    let g = ring.geometry();
    let h = ring.header();
    let total = stats.total();
    let _ = writeln!(s, "ring       {}", ring.path().display());
    if !stats.impossible.is_empty() {
        let _ = writeln!(
            s,
            "BOOKS      impossible: {} (the ring's shared words were overwritten by a process \
             that may write it; shown as ?)",
            stats.impossible.join(", ")
        );
    }
    let _ = writeln!(
        s,
        "geometry   {} blocks x {} = {} of records (file {})",
        g.blocks,
        human_bytes(u64::from(g.block_size)),
        human_bytes(g.data_bytes()),
        human_bytes(g.file_size())
    );
    let mode = match h.wait_ms {
        0 => "lossy: producers never wait".to_string(),
        ms => format!("lossless: producers wait up to {ms} ms for room"),
    };
    let _ = writeln!(
        s,
        "mode       {mode}; {} waits, {} ran out",
        shown(stats, "waits", stats.waits),
        shown(stats, "wait_timeouts", stats.wait_timeouts)
    );
    let protect = Level::from_severity(h.protect_severity).map_or("?", Level::name);
    let fill: Vec<String> = Level::ALL
        .iter()
        .map(|l| format!("{} {}%", l.name(), h.watermarks[*l as usize]))
        .collect();
    let _ = writeln!(
        s,
        "policy     severity {} ({protect}) and above protected; fill limits {}",
        h.protect_severity,
        fill.join(", ")
    );
    let _ = writeln!(s, "created    {}", rfc3339(h.created_ns));
    let _ = writeln!(
        s,
        "blocks     {} of {} in use; consumer woken {} times",
        stats.blocks_in_use,
        g.blocks,
        shown(stats, "wakeups", stats.wakeups)
    );
    let consumer = match stats.consumer {
        None => "none".to_string(),
        Some((pid, true)) => format!("pid {pid}, alive"),
        Some((pid, false)) => format!("pid {pid}, gone (what it had not committed is read again)"),
    };
    let _ = writeln!(s, "consumer   {consumer}");
    let _ = writeln!(s, "unread     {}", total.unread);
    let _ = writeln!(s, "torn       {}", shown(stats, "torn", total.torn));
    let _ = writeln!(s, "invalid    {}", shown(stats, "invalid", stats.invalid));
}

/// One row per level and a total: emitted, delivered, dropped, evicted, torn
/// and unread, with what "delivered" means.
fn level_table(s: &mut String, stats: &Stats, with_sinks: bool) {
    let head = [
        "emitted",
        "delivered",
        "dropped",
        "evicted",
        "torn",
        "unread",
    ];
    let _ = write!(s, "{:<6}", "level");
    for h in head {
        let _ = write!(s, " {h:>10}");
    }
    let _ = writeln!(s);
    let row = |s: &mut String, name: &str, c: &LevelCounts| {
        let _ = write!(s, "{name:<6}");
        for (h, n) in head.iter().zip([
            c.emitted,
            c.delivered,
            c.dropped,
            c.evicted,
            c.torn,
            c.unread,
        ]) {
            let _ = write!(s, " {:>10}", shown(stats, h, n));
        }
        let _ = writeln!(s);
    };
    for level in Level::ALL {
        row(s, level.name(), stats.level(level));
    }
    row(s, "total", &stats.total());
    let _ = writeln!(
        s,
        "(the ring's books: delivered = committed by the collector, once every \
         sink has written it or let it go{})",
        if with_sinks {
            "; what each sink wrote is below"
        } else {
            ""
        }
    );
}

/// The collector's sinks, one row each, then what a row cannot show: shed
/// records per level and a write that does not return.
fn sink_table(s: &mut String, c: &CollectorReport) {
    let age = logbus_ring::now_ns().saturating_sub(c.updated_ns) as f64 / 1e9;
    let _ = writeln!(s);
    if c.updated_ns == 0 {
        let _ = writeln!(s, "sinks of collector pid {}", c.pid);
    } else {
        let _ = writeln!(
            s,
            "sinks of collector pid {} (updated {age:.1} s ago)",
            c.pid
        );
    }
    let _ = writeln!(
        s,
        "{:<16} {:<10} {:>10} {:>10} {:>8} {:>8} {:>4} {:>8}",
        "name", "type", "delivered", "dropped", "errors", "backlog", "up", "retries"
    );
    for sink in &c.sinks {
        let up = match sink.up {
            Some(true) => "yes",
            Some(false) => "no",
            None => "-",
        };
        let retries = sink.retries.map_or("-".to_string(), |n| n.to_string());
        let _ = writeln!(
            s,
            "{:<16} {:<10} {:>10} {:>10} {:>8} {:>8} {:>4} {:>8}",
            sink.name,
            sink.kind,
            sink.delivered,
            sink.dropped.values().sum::<u64>(),
            sink.errors,
            sink.backlog.max(sink.queue_depth),
            up,
            retries
        );
    }
    // What the table sums or cannot show: shed records per level, and
    // writes that do not return.
    for sink in &c.sinks {
        let shed: Vec<String> = sink
            .dropped
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(level, n)| format!("{n} {level}"))
            .collect();
        if !shed.is_empty() {
            let _ = writeln!(s, "  {}: dropped {}", sink.name, shed.join(", "));
        }
        let lost: Vec<String> = sink
            .lost_in_crash
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(level, n)| format!("{n} {level}"))
            .collect();
        if !lost.is_empty() {
            let _ = writeln!(
                s,
                "  {}: lost_in_crash {} (held in memory only by an earlier collector that died)",
                sink.name,
                lost.join(", ")
            );
        }
        if let Some(ms) = sink.writing_for_ms {
            let _ = writeln!(
                s,
                "  {}: a write blocked for {:.1} s",
                sink.name,
                ms as f64 / 1000.0
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use logbus_testkit::TempDir;
    use std::path::PathBuf;

    const REPORT: &str = r#"{"pid": 4242, "updated_ns": 17, "sinks": [
        {"name": "console", "type": "stdout", "delivered": 10,
         "dropped": {"INFO": 2, "DEBUG": 3}, "errors": 0, "queue_depth": 1,
         "lost_in_crash": {"ERROR": 7, "INFO": 0},
         "up": false, "retries": 4, "writing_for_ms": 8000}]}"#;

    #[test]
    fn status_path_appends_to_the_ring_file_name() {
        assert_eq!(
            status_path(Path::new("/dev/shm/logbus")),
            PathBuf::from("/dev/shm/logbus.collector.json")
        );
    }

    #[test]
    fn collector_counters_are_read_for_the_live_consumer_only() {
        let d = TempDir::new("cli-stat-collector");
        let ring = d.ring();
        std::fs::write(status_path(&ring), REPORT).unwrap();
        let r = collector_report(&ring, Some((4242, true))).expect("report of the live consumer");
        assert_eq!((r.pid, r.updated_ns, r.sinks.len()), (4242, 17, 1));
        assert_eq!(r.sinks[0].name, "console");
        assert_eq!(r.sinks[0].dropped["DEBUG"], 3);
        // Another consumer, a dead one, or none: the file is stale.
        assert_eq!(collector_report(&ring, Some((4243, true))), None);
        assert_eq!(collector_report(&ring, Some((4242, false))), None);
        assert_eq!(collector_report(&ring, None), None);
    }

    #[test]
    fn missing_or_malformed_collector_files_are_ignored() {
        let d = TempDir::new("cli-stat-malformed");
        let ring = d.ring();
        assert_eq!(collector_report(&ring, Some((1, true))), None);
        for bad in [
            "",
            "{",
            "[]",
            r#"{"pid": 1}"#,
            r#"{"pid": "1", "sinks": []}"#,
            r#"{"pid": 1, "sinks": {}}"#,
        ] {
            std::fs::write(status_path(&ring), bad).unwrap();
            assert_eq!(collector_report(&ring, Some((1, true))), None, "{bad}");
        }
        std::fs::write(status_path(&ring), r#"{"pid": 1, "sinks": []}"#).unwrap();
        assert_eq!(
            collector_report(&ring, Some((1, true))),
            Some(CollectorReport {
                pid: 1,
                updated_ns: 0,
                sinks: vec![]
            })
        );
    }

    #[test]
    fn text_and_json_show_the_sinks_table() {
        let d = TempDir::new("cli-stat-table");
        let ring_path = d.ring();
        let ring = Ring::create(
            &ring_path,
            &logbus_ring::RingOptions {
                size: 128 << 10,
                block_size: 4096,
                ..Default::default()
            },
        )
        .unwrap();
        ring.writer()
            .unwrap()
            .emit(&logbus_ring::Event::new(9, "one"))
            .unwrap();
        let stats = ring.stats();
        let report = CollectorReport {
            pid: 4242,
            updated_ns: 0,
            sinks: serde_json::from_str::<Status>(REPORT).unwrap().sinks,
        };
        let text = to_text(&ring, &stats, Some(&report));
        let line = text
            .lines()
            .find(|l| l.starts_with("console"))
            .expect(&text);
        let cols: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(cols, ["console", "stdout", "10", "5", "0", "1", "no", "4"]);
        assert!(
            text.contains("  console: dropped 3 DEBUG, 2 INFO\n"),
            "{text}"
        );
        assert!(
            text.contains("  console: a write blocked for 8.0 s\n"),
            "{text}"
        );
        assert!(
            text.contains("  console: lost_in_crash 7 ERROR (held in memory only by an earlier collector that died)\n"),
            "{text}"
        );
        let info = text.lines().find(|l| l.starts_with("INFO")).unwrap();
        assert_eq!(
            info.split_whitespace().collect::<Vec<_>>(),
            ["INFO", "1", "0", "0", "0", "0", "1"]
        );
        let v = to_json(&ring, &stats, Some(&report));
        assert_eq!(v["sinks"][0]["delivered"], 10);
        assert_eq!(v["levels"]["INFO"]["unread"], 1);
        assert!(to_json(&ring, &stats, None).get("sinks").is_none());
    }
}
