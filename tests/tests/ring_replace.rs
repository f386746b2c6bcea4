//! A ring replaced under a running collector and its producers (deleted and
//! created again): each thread's records stay in order across the two rings,
//! and a collector killed before the old ring is drained leaves it to the
//! next. Real `logbus-collector` and `test-producer` processes, real signals;
//! every wait is on a condition (ring counters, lines, stderr lines).
//!
//! Run with `cargo build --workspace --bins && cargo test -p logbus-tests --test ring_replace`.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use logbus_tests::collector::*;
use logbus_tests::{logbus_ok, wait_for, TempDir};
use serde_json::Value as Json;

/// More records than the producer writes before it follows the new ring.
const N: u64 = 150_000;

/// The ring's counters from `logbus stat --json`.
fn ring_stat(ring: &Path) -> Json {
    let o = logbus_ok(&["stat", "--json", ring.to_str().unwrap()]);
    serde_json::from_slice(&o.stdout).unwrap()
}

fn counter(ring: &Path, key: &str) -> u64 {
    ring_stat(ring)[key].as_u64().unwrap_or(0)
}

/// With the collector stopped (SIGSTOP), lets `unread` records pile up in
/// the ring, deletes it and creates it again, and waits until the producer
/// writes into the new one: the old ring then holds records a thread wrote
/// before those in the new one.
fn replace_behind_a_stopped_collector(c: &Collector, ring: &Path, unread: u64) {
    c.signal(libc::SIGSTOP);
    wait_for("records piling up in the old ring", LONG, || {
        (counter(ring, "unread") >= unread).then_some(())
    });
    std::fs::remove_file(ring).unwrap();
    // The producer may create it first (it reopens the path).
    match logbus_ring::Ring::create(ring, &logbus_ring::RingOptions::default()) {
        Ok(_) => {}
        Err(logbus_ring::OpenError::Io { source, .. })
            if source.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => panic!("{e}"),
    }
    wait_for("the producer writing into the new ring", LONG, || {
        (counter(ring, "emitted") >= 1_000).then_some(())
    });
}

/// A default ring (the one a user gets) in `dir`, a collector reading it
/// into one JSON file sink, `out.log`, and its configuration file.
struct Setup {
    ring: PathBuf,
    out: PathBuf,
    cfg: PathBuf,
}

fn setup(dir: &TempDir) -> Setup {
    let s = Setup {
        ring: dir.path("ring"),
        out: dir.path("out.log"),
        cfg: dir.path("c.toml"),
    };
    write_config(&s.cfg, &file_sink("f", &s.out, ""));
    logbus_ring::Ring::create(&s.ring, &logbus_ring::RingOptions::default()).unwrap();
    s
}

/// The pins (`.ring.held-DEV-INO`) in `dir`.
fn pins(dir: &TempDir) -> Vec<String> {
    std::fs::read_dir(dir.path("."))
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .filter(|n| n.starts_with(".ring.held-"))
        .collect()
}

// Issue 20 (found by logbus-chaos, drop mode, seed 2): the collector read the
// old and the new ring side by side, so a thread's last records in the old
// ring could be written after its first ones in the new ring. Here the old
// ring holds tens of thousands of records when the collector finds the new
// one: before the fix, records of the new ring came out among them.
#[test]
fn a_threads_records_stay_in_order_across_a_ring_replacement() {
    let dir = TempDir::new("replace-order");
    let Setup { ring, out, cfg } = setup(&dir);
    let mut c = Collector::start(&dir, "c", &ring_and_config(&ring, &cfg));
    // One thread, through `logbus::Producer`, which follows the path.
    let p = producer(&ring, "p", N, &["--producer"]);
    wait_lines(&out, 1_000);
    replace_behind_a_stopped_collector(&c, &ring, 40_000);
    c.signal(libc::SIGCONT);
    finish(p);
    let got = numbers(&wait_lines(&out, N as usize));
    assert_exactly_once(&got, &all("p", 0..N));
    let disorder: Vec<(u64, u64)> = got
        .windows(2)
        .filter(|w| w[1].1 < w[0].1)
        .map(|w| (w[0].1, w[1].1))
        .take(5)
        .collect();
    assert!(
        disorder.is_empty(),
        "records out of order (a later one, then an earlier one): {disorder:?}"
    );
    c.wait_stderr(
        "the old ring let go",
        "no process writes it any more; let go",
    );
    assert!(c.stop().success(), "{}", c.stderr_text());
}

// Issue 20 (found by logbus-chaos, wait mode, seed 2, no producer kills): a
// collector killed while an old ring still had records in it left them where
// the next collector could not find them (the old file was reachable only
// through its writers' descriptors). Now the collector keeps every ring it
// reads reachable under a second name, and the next one reads it.
#[test]
fn a_collector_killed_before_a_replaced_ring_is_drained_leaves_it_to_the_next() {
    let dir = TempDir::new("replace-killed");
    let Setup { ring, out, cfg } = setup(&dir);
    let mut first = Collector::start(&dir, "c1", &ring_and_config(&ring, &cfg));
    assert_eq!(pins(&dir).len(), 1, "the ring read is pinned");
    let p = producer(&ring, "p", N, &["--producer"]);
    wait_lines(&out, 1_000);
    replace_behind_a_stopped_collector(&first, &ring, 20_000);
    first.signal(libc::SIGKILL);
    first.wait_exit();
    let mut next = Collector::start(&dir, "c2", &ring_and_config(&ring, &cfg));
    finish(p);
    // Every record, at least once (the killed collector's last chunks may
    // come again).
    let expect: HashSet<u64> = (0..N).collect();
    wait_for("every record in the file", LONG, || {
        let lines = lines(&out);
        if lines.len() < N as usize {
            return None;
        }
        let got: HashSet<u64> = numbers(&lines).into_iter().map(|(_, n)| n).collect();
        (got == expect).then_some(())
    });
    next.wait_stderr(
        "the pinned old ring read",
        "a replaced ring a previous collector did not finish",
    );
    next.wait_stderr(
        "the old ring let go",
        "no process writes it any more; let go",
    );
    wait_for("the old ring's pin removed", LONG, || {
        (pins(&dir).len() == 1).then_some(())
    });
    assert!(next.stop().success(), "{}", next.stderr_text());
    assert!(pins(&dir).is_empty(), "pins left: {:?}", pins(&dir));
    let st = ring_stat(&ring);
    assert_eq!(st["unread"].as_u64(), Some(0), "{st}");
}

// Issue 20 (found by logbus-chaos, drop mode with a replacement, seed 101): a
// producer that opened the ring just before it was replaced made its
// writers only after the collector had drained the old ring and let it go,
// and its records (74) stayed unread in the old file, counted nowhere a user
// looks. Now a collector leaving a replaced ring retires it: a writer made
// from a handle opened before is refused (`WriterError::Retired`; before the
// fix it was made, and wrote into the void), and `logbus::Producer` then
// opens the path again, so its record is delivered from the new ring.
#[test]
fn a_writer_made_from_an_old_handle_after_the_ring_was_let_go_writes_into_the_new_ring() {
    let dir = TempDir::new("replace-late-writer");
    let Setup { ring, out, cfg } = setup(&dir);
    let mut c = Collector::start(&dir, "c", &ring_and_config(&ring, &cfg));
    // Handles opened before the replacement, no writer made yet.
    let old = logbus_ring::Ring::open_existing(&ring).unwrap();
    let producer = logbus::Producer::open(&ring).unwrap();
    std::fs::remove_file(&ring).unwrap();
    logbus_ring::Ring::create(&ring, &logbus_ring::RingOptions::default()).unwrap();
    c.wait_stderr(
        "the old ring let go",
        "no process writes it any more; let go",
    );
    match old.writer() {
        Err(logbus_ring::WriterError::Retired) => {}
        Err(e) => panic!("refused, but not as retired: {e}"),
        Ok(_) => panic!("a writer was made in a ring its collector let go"),
    }
    assert!(old.is_retired());
    assert_eq!(
        producer.emit(&logbus::Event::new(9, "late-0")),
        logbus::Outcome::Written { evicted: 0 }
    );
    assert_eq!(numbers(&wait_lines(&out, 1)), all("late", 0..1));
    assert_eq!(
        old.stats().total().emitted,
        0,
        "nothing written into the old ring"
    );
    assert!(c.stop().success(), "{}", c.stderr_text());
}
