//! The opt-in SIGBUS guard, for real: a ring file truncated under a mapping
//! this process reads and writes. Without the guard each access below would
//! kill the test process; with it they read zeros and the ring is flagged.
//! (Its own test binary: the handler is process-wide.)

use logbus_ring::{Batch, Event, Peeker, Ring, RingOptions};

#[test]
fn a_truncated_ring_reads_as_zeros_and_is_flagged_instead_of_killing() {
    logbus_ring::sigbus::install().unwrap();
    let dir = std::env::temp_dir().join(format!(
        "logbus-sigbus-{}-{}",
        std::process::id(),
        logbus_ring::now_ns()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("ring");
    let ring = Ring::create(
        &path,
        &RingOptions {
            size: 256 << 10,
            block_size: 4096,
            ..Default::default()
        },
    )
    .unwrap();
    let reader = Ring::open_read_only(&path).unwrap();
    let mut w = ring.writer().unwrap();
    for i in 0..100 {
        w.emit(&Event::new(9, &format!("record {i}"))).unwrap();
    }
    assert!(!ring.faulted() && !reader.faulted());

    // Another process would do this; the effect on our mappings is the same.
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(0)
        .unwrap();

    // Read-only mapping: the peeker touches the vanished pages.
    let mut batch = Batch::new();
    let n = Peeker::new(&reader).poll(&mut batch, 1000);
    assert!(reader.faulted(), "the read faulted and was caught");
    assert!(n <= 100);
    assert!(reader.check_size().is_err());
    // Writable mapping: counters read as zeros, a write lands in private zeros.
    let _ = ring.stats();
    let _ = w.emit(&Event::new(9, "into the void"));
    assert!(ring.faulted());
    drop(w);
    drop((ring, reader));
    std::fs::remove_dir_all(&dir).unwrap();
}
