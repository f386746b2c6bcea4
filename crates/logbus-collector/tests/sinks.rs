//! One compliance test that every sink kind passes: the collector drains a
//! ring with records of every level into the sink (filtered to INFO and up),
//! and the sink must deliver exactly the matching records, count them, drop
//! nothing, report no error, and let every record (matching or not) be
//! committed.

use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::Duration;

use logbus_collector::config::{Format, OtlpProtocol, SinkConfig, SinkKind};
use logbus_collector::{Collector, Config, Control};
use logbus_ring::{Event, Field, Level, Resource, Ring, Value};
use logbus_testkit::otlp_receiver::Receiver;
use logbus_testkit::TempDir;

const PER_LEVEL: u64 = 50;

fn fill(ring: &Ring) {
    let tag = ring
        .register_resource(&Resource {
            pid: std::process::id(),
            service: "compliance".into(),
            ..Resource::default()
        })
        .unwrap();
    let mut w = ring.writer().unwrap();
    w.set_resource(tag);
    for i in 0..PER_LEVEL {
        for level in Level::ALL {
            let msg = format!("{}-{i}", level.name());
            let fields = [
                Field {
                    key: "i",
                    value: Value::U64(i),
                },
                Field {
                    key: "s",
                    value: Value::Str("x\"y"),
                },
            ];
            w.emit(&Event {
                target: "compliance",
                fields: &fields,
                trace_id: Some([7; 16]),
                ..Event::new(level.severity(), &msg)
            })
            .unwrap();
        }
    }
}

/// Runs the collector with one sink until it has drained the ring; returns
/// what the sink's counters say.
fn run_sink(dir: &Path, kind: SinkKind) -> (u64, u64, u64) {
    let ring = Ring::open(dir.join("ring")).unwrap();
    fill(&ring);
    let mut sink = SinkConfig::new("s", kind);
    sink.min_level = Level::Info;
    let config = Config {
        ring_path: None,
        ring_dir: None,
        shutdown_timeout: Duration::from_secs(30),
        sinks: vec![sink],
    };
    let mut collector = Collector::new(&ring, config, None, |n| eprintln!("{n}")).unwrap();
    let registry = collector.registry();
    let control = Control::new();
    control.request_shutdown();
    let summary = collector.run(&control);
    assert!(summary.unflushed.is_empty());
    let s = registry.sinks()[0].clone();
    let stats = ring.stats();
    assert_eq!(
        stats.total().delivered,
        PER_LEVEL * 6,
        "every record committed"
    );
    assert_eq!(stats.total().unread, 0);
    (
        s.delivered.load(Ordering::Relaxed),
        s.dropped_total(),
        s.errors.load(Ordering::Relaxed),
    )
}

const MATCHING: u64 = PER_LEVEL * 4; // INFO, WARN, ERROR, FATAL

fn check_counts(counts: (u64, u64, u64)) {
    assert_eq!(counts, (MATCHING, 0, 0), "(delivered, dropped, errors)");
}

#[test]
fn every_sink_kind_complies() {
    // file, JSON
    let d = TempDir::new("sinks-json");
    let out = d.path("out.json");
    check_counts(run_sink(
        d.dir(),
        SinkKind::File {
            path: out.clone(),
            format: Format::Json,
            max_bytes: None,
            keep: 0,
        },
    ));
    let text = std::fs::read_to_string(&out).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len() as u64, MATCHING);
    assert!(lines.iter().all(|v| v["service"] == "compliance"
        && v["fields"]["s"] == "x\"y"
        && v["trace_id"] == "07070707070707070707070707070707"
        && !matches!(v["level"].as_str(), Some("TRACE" | "DEBUG"))));

    // file, text
    let d = TempDir::new("sinks-text");
    let out = d.path("out.txt");
    check_counts(run_sink(
        d.dir(),
        SinkKind::File {
            path: out.clone(),
            format: Format::Text,
            max_bytes: Some(4096),
            keep: 100,
        },
    ));
    let mut n = 0;
    for entry in std::fs::read_dir(d.dir()).unwrap() {
        let p = entry.unwrap().path();
        if p.file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("out.txt")
        {
            let t = std::fs::read_to_string(&p).unwrap();
            assert!(t.len() <= 4096);
            n += t
                .lines()
                .filter(|l| l.contains("[compliance] compliance: "))
                .count() as u64;
        }
    }
    assert_eq!(n, MATCHING);

    // null
    let d = TempDir::new("sinks-null");
    check_counts(run_sink(d.dir(), SinkKind::Null));

    // otlp, both transports
    for (receiver, protocol) in [
        (Receiver::start(), OtlpProtocol::Grpc),
        (Receiver::start_http(), OtlpProtocol::Http),
    ] {
        let d = TempDir::new("sinks-otlp");
        check_counts(run_sink(
            d.dir(),
            SinkKind::Otlp {
                endpoint: Some(receiver.endpoint()),
                protocol: Some(protocol),
                timeout: Some(Duration::from_secs(10)),
                headers: vec![("x-test".into(), "1".into())],
                batch: 64,
            },
        ));
        assert_eq!(receiver.records().len() as u64, MATCHING);
        assert!(receiver
            .received()
            .iter()
            .all(|r| r.headers.iter().any(|(k, v)| k == "x-test" && v == "1")));
    }
}
