//! Single-process behaviour of the ring: what goes in comes out, whole or
//! visibly truncated, and the consumer role and cursor behave.

mod common;
use common::TempDir;
use logbus_ring::*;

fn small() -> RingOptions {
    RingOptions {
        slots: 1024,
        slot_size: 128,
        lanes: 4,
        ..RingOptions::default()
    }
}

fn drain(c: &mut Consumer) -> Vec<(u8, String, u64)> {
    let mut out = vec![];
    let mut b = Batch::new();
    while c.poll(&mut b, 1000) > 0 {
        for r in b.iter() {
            out.push((r.severity(), r.message().to_string(), r.seq()));
        }
        c.commit_all();
    }
    out
}

#[test]
fn a_record_comes_back_with_every_field() {
    let dir = TempDir::new("rt");
    let ring = Ring::open_with(dir.path("r"), &small()).unwrap();
    let mut w = ring.writer().unwrap();
    let ev = Event {
        severity: 18,
        time_ns: 1_700_000_000_123_456_789,
        target: "app::db",
        message: "query done ✓",
        fields: &[
            Field {
                key: "rows",
                value: Value::U64(3),
            },
            Field {
                key: "delta",
                value: Value::I64(-7),
            },
            Field {
                key: "ratio",
                value: Value::F64(0.5),
            },
            Field {
                key: "ok",
                value: Value::Bool(true),
            },
            Field {
                key: "who",
                value: Value::Str("ann"),
            },
        ],
        trace_id: Some([0xab; 16]),
        span_id: Some([0xcd; 8]),
        trace_flags: 1,
    };
    assert_eq!(w.emit(&ev), Ok(Emitted::Written { evicted: 0 }));
    let mut c = Consumer::acquire(&ring).unwrap();
    let mut b = Batch::new();
    assert_eq!(c.poll(&mut b, 10), 1);
    let r = b.get(0).unwrap();
    assert_eq!(r.severity(), 18);
    assert_eq!(r.level(), Level::Error);
    assert_eq!(r.time_ns(), 1_700_000_000_123_456_789);
    assert_eq!(r.target(), "app::db");
    assert_eq!(r.message(), "query done ✓");
    assert_eq!(r.pid(), std::process::id());
    assert_eq!(r.trace_id(), Some([0xab; 16]));
    assert_eq!(r.span_id(), Some([0xcd; 8]));
    assert_eq!(r.trace_flags(), 1);
    assert!(!r.truncated());
    let fields: Vec<_> = r.fields().collect();
    assert_eq!(
        fields,
        ev.fields
            .iter()
            .map(|f| (f.key, f.value))
            .collect::<Vec<_>>()
    );
}

#[test]
fn absent_trace_context_stays_absent() {
    let dir = TempDir::new("notrace");
    let ring = Ring::open_with(dir.path("r"), &small()).unwrap();
    ring.writer().unwrap().emit(&Event::new(9, "x")).unwrap();
    let mut c = Consumer::acquire(&ring).unwrap();
    let mut b = Batch::new();
    c.poll(&mut b, 10);
    assert_eq!(b.get(0).unwrap().trace_id(), None);
    assert_eq!(b.get(0).unwrap().span_id(), None);
}

#[test]
fn a_16_kib_message_arrives_intact_and_longer_ones_are_marked_truncated() {
    let dir = TempDir::new("big");
    // Default geometry: 512 KiB lanes, 16 KiB max message.
    let ring = Ring::open(dir.path("r")).unwrap();
    let mut w = ring.writer().unwrap();
    let exact: String = "é".repeat(8 * 1024); // 16 KiB of two-byte chars
    let long: String = "x".repeat(20_000);
    w.emit(&Event::new(9, &exact)).unwrap();
    w.emit(&Event::new(9, &long)).unwrap();
    let mut c = Consumer::acquire(&ring).unwrap();
    let mut b = Batch::new();
    assert_eq!(c.poll(&mut b, 10), 2);
    let r0 = b.get(0).unwrap();
    assert_eq!(r0.message(), exact);
    assert!(!r0.truncated());
    let r1 = b.get(1).unwrap();
    assert_eq!(r1.message().len(), 16 * 1024);
    assert!(r1.truncated());
}

#[test]
fn records_wrap_around_the_lane_many_times_in_order() {
    let dir = TempDir::new("wrap");
    let ring = Ring::open_with(dir.path("r"), &small()).unwrap();
    let mut w = ring.writer().unwrap();
    let mut c = Consumer::acquire(&ring).unwrap();
    let mut got = vec![];
    for i in 0..5000u32 {
        // sizes vary so records straddle the lane end and need padding
        let msg = "m".repeat((i % 300) as usize) + &i.to_string();
        assert!(matches!(
            w.emit(&Event::new(9, &msg)).unwrap(),
            Emitted::Written { .. }
        ));
        if i % 7 == 0 {
            got.extend(drain(&mut c));
        }
    }
    got.extend(drain(&mut c));
    assert_eq!(got.len(), 5000);
    for (i, (_, m, _)) in got.iter().enumerate() {
        assert!(m.ends_with(&i.to_string()), "record {i}: {m}");
    }
    assert!(got.windows(2).all(|p| p[0].2 < p[1].2), "seq increases");
}

#[test]
fn a_second_consumer_is_refused_with_the_holders_pid_and_a_dropped_one_hands_over() {
    let dir = TempDir::new("role");
    let ring = Ring::open_with(dir.path("r"), &small()).unwrap();
    let other = Ring::open_existing(dir.path("r")).unwrap();
    let c = Consumer::acquire(&ring).unwrap();
    match Consumer::acquire(&other) {
        Err(ConsumerError::Busy { pid, .. }) => assert_eq!(pid, std::process::id()),
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("second consumer accepted"),
    }
    assert!(matches!(
        Consumer::acquire(&ring),
        Err(ConsumerError::Busy { .. })
    ));
    drop(c);
    Consumer::acquire(&other).unwrap();
}

#[test]
fn uncommitted_records_are_read_again_by_the_next_consumer() {
    let dir = TempDir::new("resume");
    let ring = Ring::open_with(dir.path("r"), &small()).unwrap();
    let mut w = ring.writer().unwrap();
    for i in 0..10 {
        w.emit(&Event::new(9, &format!("r{i}"))).unwrap();
    }
    let mut b = Batch::new();
    {
        let mut c = Consumer::acquire(&ring).unwrap();
        assert_eq!(c.poll(&mut b, 100), 10);
        let fourth = b.get(3).unwrap();
        c.commit(fourth.lane(), fourth.end());
    }
    let mut c = Consumer::acquire(&ring).unwrap();
    let rest = drain(&mut c);
    assert_eq!(
        rest.iter().map(|r| r.1.as_str()).collect::<Vec<_>>(),
        ["r4", "r5", "r6", "r7", "r8", "r9"]
    );
    let s = ring.stats();
    assert_eq!(s.level(Level::Info).delivered, 10);
    assert_eq!(s.level(Level::Info).emitted, 10);
}

#[test]
fn peeking_consumes_nothing() {
    let dir = TempDir::new("peek");
    let ring = Ring::open_with(dir.path("r"), &small()).unwrap();
    let mut w = ring.writer().unwrap();
    for i in 0..3 {
        w.emit(&Event::new(9, &format!("p{i}"))).unwrap();
    }
    let mut b = Batch::new();
    assert_eq!(Peeker::new(&ring).poll(&mut b, 100), 3);
    assert_eq!(Peeker::new(&ring).poll(&mut b, 100), 3);
    assert_eq!(ring.stats().level(Level::Info).unread, 3);
    let mut c = Consumer::acquire(&ring).unwrap();
    assert_eq!(drain(&mut c).len(), 3);
    assert_eq!(Peeker::new(&ring).poll(&mut b, 100), 0);
}

#[test]
fn a_poll_splits_its_budget_between_busy_lanes_and_gives_quiet_lanes_share_to_busy_ones() {
    let dir = TempDir::new("fair");
    let ring = Ring::open_with(dir.path("r"), &small()).unwrap();
    let mut a = ring.writer().unwrap();
    let mut b = ring.writer().unwrap();
    for _ in 0..100 {
        a.emit(&Event::new(9, "a")).unwrap();
    }
    let mut c = Consumer::acquire(&ring).unwrap();
    let mut batch = Batch::new();
    // One busy lane of four: it gets the whole budget, not a quarter of it.
    assert_eq!(c.poll(&mut batch, 40), 40);
    c.commit_all();
    for _ in 0..100 {
        b.emit(&Event::new(9, "b")).unwrap();
    }
    // Two busy lanes: each gets its share (a quarter each), then what the
    // two quiet lanes left is shared out too; both lanes are served.
    assert_eq!(c.poll(&mut batch, 40), 40);
    let from_a = batch.iter().filter(|r| r.message() == "a").count();
    assert!((10..=30).contains(&from_a), "{from_a} of 40 from lane a");
    c.commit_all();
}

#[test]
fn threads_sharing_a_handle_get_separate_lanes() {
    let dir = TempDir::new("lanes");
    let ring = Ring::open_with(dir.path("r"), &small()).unwrap();
    let ws: Vec<_> = (0..4).map(|_| ring.writer().unwrap()).collect();
    let mut lanes: Vec<_> = ws.iter().map(|w| w.lane()).collect();
    lanes.sort();
    lanes.dedup();
    assert_eq!(lanes.len(), 4);
    assert!(matches!(
        ring.writer(),
        Err(LaneError::NoFreeLane { lanes: 4 })
    ));
    drop(ws);
    ring.writer().unwrap();
}

#[test]
fn a_full_lane_keeps_every_protected_record_and_evicts_every_lower_one_first() {
    let dir = TempDir::new("mixed");
    // One lane of 1024 slots of 128 bytes; INFO may fill three quarters.
    let ring = Ring::open_with(
        dir.path("r"),
        &RingOptions {
            slots: 1024,
            slot_size: 128,
            lanes: 1,
            ..RingOptions::default()
        },
    )
    .unwrap();
    let mut w = ring.writer().unwrap();
    // INFO, INFO, WARN, ...: protected records sit between the low ones, some
    // of them several slots long. 150 WARN (1 or 3 slots) and 300 INFO.
    let mut warn_slots = 0;
    for i in 0..450u32 {
        let (sev, msg) = if i % 3 == 2 {
            let long = i % 2 == 0;
            warn_slots += if long { 3 } else { 1 };
            (
                13,
                if long {
                    format!("w{i} {}", "x".repeat(300))
                } else {
                    format!("w{i}")
                },
            )
        } else {
            (9, format!("i{i}"))
        };
        assert_eq!(
            w.emit(&Event::new(sev, &msg)),
            Ok(Emitted::Written { evicted: 0 }),
            "{i}"
        );
    }
    let used = 300 + warn_slots;
    // ERRORs fill the rest, then each evicts one INFO, however many WARN stand
    // before it; when only protected records are left, ERRORs are dropped.
    let mut written = 0;
    let mut evicted = 0;
    let mut dropped = 0;
    for i in 0..2000u32 {
        match w.emit(&Event::new(17, &format!("e{i}"))).unwrap() {
            Emitted::Written { evicted: e } => {
                assert_eq!(dropped, 0, "no ERROR is written after one was dropped");
                written += 1;
                evicted += e;
            }
            Emitted::Dropped => dropped += 1,
        }
    }
    assert_eq!(evicted, 300, "every INFO went");
    assert_eq!(written, 1024 - used + 300);
    let s = ring.stats();
    assert_eq!(s.level(Level::Info).evicted, 300);
    assert_eq!(s.level(Level::Warn).evicted, 0);
    assert_eq!(s.level(Level::Error).dropped, dropped as u64);
    assert_eq!(s.imbalance(), None);
    // Every WARN, then every ERROR written, each in emit order.
    let mut c = Consumer::acquire(&ring).unwrap();
    let got: Vec<String> = drain(&mut c).into_iter().map(|r| r.1).collect();
    let mut want: Vec<String> = (0..450u32)
        .filter(|i| i % 3 == 2)
        .map(|i| {
            if i % 2 == 0 {
                format!("w{i} {}", "x".repeat(300))
            } else {
                format!("w{i}")
            }
        })
        .collect();
    want.extend((0..written).map(|i| format!("e{i}")));
    assert_eq!(got, want);
}

#[test]
fn resources_resolve_by_tag_and_pid_and_new_processes_take_unused_entries_first() {
    let dir = TempDir::new("res");
    let ring = Ring::open_with(dir.path("r"), &small()).unwrap();
    let me = Resource {
        service: "billing".into(),
        version: "1.2".into(),
        host: "h1".into(),
        command: "billing --serve".into(),
        ..Resource::default()
    };
    let tag = ring.register_resource(&me).unwrap();
    let got = ring.resource(tag, std::process::id()).unwrap();
    assert_eq!(
        (got.service.as_str(), got.command.as_str()),
        ("billing", "billing --serve")
    );
    assert_eq!(
        ring.resource(tag, std::process::id() + 1),
        None,
        "another pid's records never resolve"
    );
    assert_eq!(ring.resource(0, std::process::id()), None);
    // A second handle (as another process would) gets another entry, even
    // once the first is released: released entries are reused last.
    drop(ring);
    let ring = Ring::open_existing(dir.path("r")).unwrap();
    let tag2 = ring.register_resource(&me).unwrap();
    assert_ne!(tag2, tag);
    let all = ring.resources();
    assert_eq!(all.len(), 2);
    assert!(all.iter().any(|(t, r)| *t == tag && r.service == "billing"));
}
