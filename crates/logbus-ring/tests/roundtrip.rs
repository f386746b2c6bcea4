//! Single-process behaviour of the ring: what goes in comes out, whole or
//! visibly truncated, and the consumer role and cursor behave.

mod common;
use common::TempDir;
use logbus_ring::*;

fn small() -> RingOptions {
    RingOptions {
        size: 128 << 10,
        block_size: 4096,
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
    // Default geometry: 32 KiB blocks (the largest record), 16 KiB max message.
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
fn records_wrap_around_the_ring_many_times_in_order() {
    let dir = TempDir::new("wrap");
    let ring = Ring::open_with(dir.path("r"), &small()).unwrap();
    let mut w = ring.writer().unwrap();
    let mut c = Consumer::acquire(&ring).unwrap();
    let mut got = vec![];
    for i in 0..5000u32 {
        // sizes vary so that blocks end with room no record fits
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
        c.commit(fourth.end());
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
fn writers_interleaved_are_each_read_in_order_and_share_the_whole_ring() {
    let dir = TempDir::new("share");
    let ring = Ring::open_with(dir.path("r"), &small()).unwrap();
    // Twenty writers (more than a fixed share per writer would allow), all writing at
    // once (interleaved), none refused while the ring has room.
    let mut ws: Vec<_> = (0..20).map(|_| ring.writer().unwrap()).collect();
    for i in 0..40 {
        for (k, w) in ws.iter_mut().enumerate() {
            let msg = format!("{k}:{i}");
            assert_eq!(
                w.emit(&Event::new(9, &msg)),
                Ok(Emitted::Written { evicted: 0 })
            );
        }
    }
    let mut c = Consumer::acquire(&ring).unwrap();
    let got = drain(&mut c);
    assert_eq!(got.len(), 800);
    for k in 0..20 {
        let mine: Vec<u32> = got
            .iter()
            .filter_map(|(_, m, _)| m.strip_prefix(&format!("{k}:")))
            .map(|i| i.parse().unwrap())
            .collect();
        assert_eq!(mine, (0..40).collect::<Vec<_>>(), "writer {k} in order");
    }
    // Writers that are gone closed their blocks: the next poll frees them.
    drop(ws);
    assert!(drain(&mut c).is_empty());
    assert_eq!(ring.stats().blocks_in_use, 0);
    drop(c);
    // One writer alone fills the ring up to the INFO watermark, not a share.
    let mut w = ring.writer().unwrap();
    let mut written = 0;
    while w
        .emit(&Event::new(9, "fill the ring with one writer"))
        .unwrap()
        != Emitted::Dropped
    {
        written += 1;
    }
    let s = ring.stats();
    assert_eq!(s.blocks_in_use, 24, "three quarters of 32 blocks");
    assert!(written > 900, "{written} records from one writer");
}

#[test]
fn a_full_ring_keeps_protected_records_by_evicting_the_oldest_lower_blocks() {
    let dir = TempDir::new("evict");
    let ring = Ring::open_with(dir.path("r"), &small()).unwrap();
    let mut info = ring.writer().unwrap();
    let mut n_info = 0u64;
    while info.emit(&Event::new(9, "low")).unwrap() != Emitted::Dropped {
        n_info += 1;
    }
    drop(info); // closes its block
    let mut warn = ring.writer().unwrap();
    let mut kept = 0u64;
    let mut evicted = 0u64;
    // WARN fills the last quarter, then evicts INFO blocks, oldest first,
    // until only WARN is left; then it is dropped.
    loop {
        let msg = format!("warn {kept}");
        match warn.emit(&Event::new(13, &msg)).unwrap() {
            Emitted::Written { evicted: e } => {
                kept += 1;
                evicted += e as u64;
            }
            Emitted::Dropped => break,
        }
    }
    assert_eq!(
        evicted, n_info,
        "every INFO record went before any WARN was refused"
    );
    let s = ring.stats();
    assert_eq!(s.level(Level::Info).evicted, n_info);
    assert_eq!(s.level(Level::Warn).unread, kept);
    assert_eq!(s.level(Level::Warn).dropped, 1);
    assert_eq!(s.unaccounted(&[0, 0, n_info + 1, kept + 1, 0, 0]), None);
    let mut c = Consumer::acquire(&ring).unwrap();
    let got = drain(&mut c);
    assert_eq!(got.len() as u64, kept);
    for (i, (_, m, _)) in got.iter().enumerate() {
        assert_eq!(m, &format!("warn {i}"));
    }
}

#[test]
fn an_interleaved_stream_keeps_every_error_while_any_lower_record_is_left() {
    // One writer alternating INFO and ERROR, so that every block holds both:
    // ERRORs are kept by compacting the oldest blocks (their INFO evicted),
    // and one is refused only once less than a block's worth of INFO is left
    // (space is freed a whole block at a time).
    let dir = TempDir::new("interleaved");
    let opts = RingOptions {
        size: 64 << 10,
        block_size: 4096,
        ..RingOptions::default()
    };
    let ring = Ring::open_with(dir.path("r"), &opts).unwrap();
    let mut w = ring.writer().unwrap();
    let (mut info, mut errors, mut evicted) = (0u64, 0u64, 0u64);
    let mut kept_errors = 0u64;
    loop {
        let i = info + errors;
        let sev = if i % 2 == 0 { 9 } else { 17 };
        let msg = format!("record {i}");
        let r = w.emit(&Event::new(sev, &msg)).unwrap();
        if sev == 9 {
            info += 1;
        } else {
            errors += 1;
        }
        match r {
            Emitted::Written { evicted: e } => {
                evicted += e as u64;
                kept_errors += (sev == 17) as u64;
            }
            Emitted::Dropped if sev == 17 => break,
            Emitted::Dropped => {}
        }
    }
    let s = ring.stats();
    let left = s.level(Level::Info).unread;
    assert!(
        left * 64 < 4096,
        "less than a block of INFO left when an ERROR is refused: {s:?}"
    );
    assert_eq!(s.level(Level::Error).unread, kept_errors);
    assert_eq!(s.level(Level::Error).dropped, 1);
    assert_eq!(s.level(Level::Info).evicted, evicted);
    assert!(
        kept_errors > 400,
        "the ring ends full of ERRORs ({kept_errors})"
    );
    assert_eq!(s.unaccounted(&[0, 0, info, 0, errors, 0]), None);
    // Delivered in emit order: the ERRORs that were kept, oldest first.
    let mut c = Consumer::acquire(&ring).unwrap();
    let got = drain(&mut c);
    assert_eq!(got.len() as u64, kept_errors + left);
    let nums: Vec<u64> = got
        .iter()
        .map(|(_, m, _)| m["record ".len()..].parse().unwrap())
        .collect();
    assert!(nums.windows(2).all(|p| p[0] < p[1]), "in order");
    let last_error = got
        .iter()
        .zip(&nums)
        .filter(|((sev, _, _), _)| *sev == 17)
        .map(|(_, n)| *n)
        .max();
    assert_eq!(
        last_error,
        Some(info + errors - 3),
        "the newest ERROR before the refused one is kept"
    );
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

/// A poll bounded in bytes starts no block once the batch holds that many
/// bytes of record bodies: a batch holds at most the bound plus one block,
/// whatever the number of records; the rest comes with the next polls, in
/// order.
#[test]
fn a_poll_bounded_in_bytes_reads_at_most_one_block_past_the_bound() {
    let dir = TempDir::new("rt-bytes");
    let ring = Ring::open_with(dir.path("r"), &small()).unwrap();
    let mut w = ring.writer().unwrap();
    let pad = "b".repeat(300);
    for i in 0..200 {
        w.emit(&Event::new(9, &format!("{i:04} {pad}"))).unwrap();
    }
    let mut c = Consumer::acquire(&ring).unwrap();
    let mut b = Batch::new();
    let mut seen = Vec::new();
    loop {
        let n = c.poll_within(&mut b, 1000, 6000);
        if n == 0 {
            break;
        }
        assert!(b.bytes() <= 6000 + 4096, "{} bytes", b.bytes());
        assert!(n < 200, "bounded by bytes, not by the 1000 records asked");
        seen.extend(b.iter().map(|r| r.message()[..4].to_string()));
        c.commit_all();
    }
    let expect: Vec<String> = (0..200).map(|i| format!("{i:04}")).collect();
    assert_eq!(seen, expect);
}
