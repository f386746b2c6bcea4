//! The resource table's per-process counters (what `logbus top` ranks
//! producers by): records written are published once per block and when a
//! writer goes, records dropped at once; a record that carries its resource
//! (no room in the table) resolves to its service.

mod common;
use common::TempDir;
use logbus_ring::*;

fn me(service: &str) -> Resource {
    Resource {
        pid: std::process::id(),
        service: service.into(),
        ..Resource::default()
    }
}

#[test]
fn written_and_dropped_balance_per_level_on_the_default_ring() {
    let dir = TempDir::new("pc");
    let ring = Ring::open(dir.path("r")).unwrap();
    let tag = ring.register_resource(&me("counted")).unwrap();
    let mut w = ring.writer().unwrap();
    w.set_resource(tag);
    let msg = "x".repeat(400);
    // INFO fills 75 % of the default ring; DEBUG only 50 %: after the ring
    // holds more than half its blocks, DEBUG records are dropped.
    let (mut info, mut debug_written, mut debug_dropped) = (0u64, 0u64, 0u64);
    for i in 0..40_000u64 {
        let debug = i % 2 == 0;
        let out = w
            .emit(&Event::new(if debug { 5 } else { 9 }, &msg))
            .unwrap();
        match (debug, out) {
            (false, Emitted::Written { .. }) => info += 1,
            (true, Emitted::Written { .. }) => debug_written += 1,
            (true, Emitted::Dropped) => debug_dropped += 1,
            (false, Emitted::Dropped) => {}
        }
    }
    assert!(debug_dropped > 0, "the test must reach the DEBUG watermark");
    // Before the writer goes: everything but its open block is published.
    let mid = &ring.process_counts()[0];
    let published: u64 = mid.written.iter().sum();
    assert!(published > 0 && published <= info + debug_written);
    assert!(info + debug_written - published < (32 << 10) / 400);
    drop(w);
    let all = ring.process_counts();
    assert_eq!(all.len(), 1);
    let p = &all[0];
    assert_eq!((p.tag, p.resource.service.as_str()), (tag, "counted"));
    assert_eq!(p.uid, unsafe { libc::getuid() });
    assert!(p.alive, "this process holds its entry");
    let stats = ring.stats();
    assert_eq!(p.written[Level::Debug as usize], debug_written);
    assert_eq!(p.written[Level::Info as usize], info);
    assert_eq!(p.dropped[Level::Debug as usize], debug_dropped);
    for (k, level) in stats.levels.iter().enumerate() {
        assert_eq!(p.dropped[k], level.dropped, "level {k}");
        assert_eq!(p.written[k], level.published, "level {k}");
    }
}

#[test]
fn a_record_without_an_entry_carries_its_service() {
    let dir = TempDir::new("pc-carry");
    let ring = Ring::open(dir.path("r")).unwrap();
    let mut w = ring.writer().unwrap();
    w.carry_resource(&Resource {
        version: "9".into(),
        ..me("carried")
    });
    let fields = [Field {
        key: "k",
        value: Value::U64(7),
    }];
    w.emit(&Event {
        fields: &fields,
        ..Event::new(9, "hi")
    })
    .unwrap();
    let mut c = Consumer::acquire(&ring).unwrap();
    let mut b = Batch::new();
    assert_eq!(c.poll(&mut b, 10), 1);
    let r = b.get(0).unwrap();
    assert_eq!(r.resource(), 0);
    assert_eq!(carried_service(&r), Some("carried"));
    let keys: Vec<_> = r.fields().map(|(k, _)| k.to_string()).collect();
    assert_eq!(keys, ["service.name", "service.version", "k"]);
}
