//! The collector's memory is a bounded number of chunks, whatever the
//! throughput: a producer floods a lossless ring while the collector writes
//! it to two JSON files (lines shared) and a text file; every record reaches
//! every sink, no sink's queue ever held more than its window of chunks
//! (`WINDOW_BYTES`, its `held_most` counter), and so few chunks were ever
//! alive at once (counted by the collector's `ChunkGauge`).

use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use logbus_collector::config::{Format, SinkConfig, SinkKind};
use logbus_collector::{Collector, Config, Control, CHUNKS, MIN_CHARGE, WINDOW_BYTES};
use logbus_ring::{Event, Ring, RingOptions};
use logbus_testkit::TempDir;

const RECORDS: u64 = 200_000;

fn file(dir: &Path, name: &str, format: Format) -> SinkConfig {
    SinkConfig::new(
        name,
        SinkKind::File {
            path: dir.join(name),
            format,
            max_bytes: None,
            keep: 0,
        },
    )
}

#[test]
fn a_flood_through_three_sinks_holds_no_more_than_a_window_of_chunks() {
    let tmp = TempDir::new("memory");
    let dir = tmp.dir();
    // A default lossless ring (16 MiB): the producer outruns the sinks (and
    // waits for room rather than dropping); the ring could hold many times
    // the chunks the collector may.
    let ring = Ring::create(
        dir.join("ring"),
        &RingOptions {
            wait_ms: 5000,
            ..RingOptions::default()
        },
    )
    .unwrap();
    let config = Config {
        ring_path: None,
        ring_dir: None,
        shutdown_timeout: Duration::from_secs(60),
        sinks: vec![
            file(dir, "a.json", Format::Json),
            file(dir, "b.json", Format::Json),
            file(dir, "c.txt", Format::Text),
        ],
    };
    let mut collector = Collector::new(&ring, config, None, |n| eprintln!("{n}")).unwrap();
    let registry = collector.registry();
    let control = Arc::new(Control::new());
    let producer = {
        let ring = ring.clone();
        let control = Arc::clone(&control);
        let registry = Arc::clone(&registry);
        std::thread::spawn(move || {
            let mut w = ring.writer().unwrap();
            let pad = "m".repeat(100);
            for i in 0..RECORDS {
                w.emit(&Event::new(9, &format!("record {i} {pad}")))
                    .unwrap();
            }
            // Every sink has every record (or the test times out).
            let done = |s: &logbus_collector::stats::SinkStats| {
                s.delivered.load(Ordering::Relaxed) + s.dropped_total() >= RECORDS
            };
            while !registry.sinks().iter().all(|s| done(s)) {
                std::thread::sleep(Duration::from_millis(5));
            }
            control.request_shutdown();
        })
    };
    let summary = collector.run(&control);
    producer.join().unwrap();
    assert!(summary.unflushed.is_empty());
    for s in registry.sinks() {
        assert_eq!(s.delivered.load(Ordering::Relaxed), RECORDS, "{}", s.name);
        assert_eq!(s.dropped_total(), 0, "{}", s.name);
    }
    let lines = |name: &str| {
        std::fs::read(dir.join(name))
            .unwrap()
            .iter()
            .filter(|&&b| b == b'\n')
            .count() as u64
    };
    assert_eq!(lines("a.json"), RECORDS);
    assert_eq!(lines("c.txt"), RECORDS);
    let t = ring.stats().total();
    assert_eq!((t.emitted, t.delivered), (RECORDS, RECORDS), "{t:?}");
    // Each sink's queue held at most a window and the chunk that filled it
    // (at most 256 KiB of records and a block).
    for s in registry.sinks() {
        let held = s.held_most.load(Ordering::Relaxed);
        assert!(
            held > 0 && held <= WINDOW_BYTES + (256 + 32) * 1024,
            "{}: {held} bytes held at once (the window is {WINDOW_BYTES})",
            s.name
        );
    }
    // So few chunks were ever alive: a window of full ones, or of at most
    // WINDOW_BYTES / MIN_CHARGE small ones.
    let most = registry.chunks().most();
    assert!(
        (1..=WINDOW_BYTES / MIN_CHARGE + CHUNKS).contains(&most),
        "{most} chunks alive at once"
    );
    eprintln!("most chunks alive at once: {most}");
    drop(tmp);
}
