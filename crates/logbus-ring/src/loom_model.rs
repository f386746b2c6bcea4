//! A loom model of one lane's protocol: a producer that publishes and, when the
//! lane is full, evicts; a consumer that claims and commits. Run with
//! `RUSTFLAGS="--cfg loom" cargo test -p logbus-ring --release --lib loom`.
//!
//! The model keeps the real [`Cursor`] word (head and read packed, one CAS
//! arbitrating claims and evictions) and the real orderings; records are one
//! slot each (three slots a lane) and carry `value << 8 | severity`. Slots are atomics, as the real
//! consumer copies with atomic loads: loom then checks the *logic* (every
//! record delivered, evicted or dropped exactly once, delivered in order, no
//! torn copy accepted) in every interleaving, not merely the absence of races.
#![cfg(all(test, loom))]

use loom::sync::atomic::{AtomicU64, Ordering};
use loom::sync::Arc;
use loom::thread;

use crate::cursor::Cursor;

const SLOTS: u64 = 3;
const PROTECT: u64 = 13;

struct Lane {
    tail: AtomicU64,
    cursor: AtomicU64,
    slots: [AtomicU64; SLOTS as usize],
}

#[derive(Default, Debug)]
struct ProducerLog {
    written: Vec<u64>,
    dropped: Vec<u64>,
    evicted: Vec<u64>,
}

fn produce(lane: &Lane, records: &[(u64, u64)]) -> ProducerLog {
    let mut log = ProducerLog::default();
    let mut pos = 0u64;
    'next: for &(value, sev) in records {
        loop {
            let word = lane.cursor.load(Ordering::Acquire);
            let c = Cursor::unpack(word, pos, SLOTS).expect("well-formed cursor");
            if pos + 1 - c.head <= SLOTS {
                break;
            }
            if sev < PROTECT || c.read != c.head || c.evicting {
                log.dropped.push(value);
                continue 'next;
            }
            // The oldest record below the protection level, behind a protected run.
            let Some(victim) = (c.head..pos).find(|p| {
                lane.slots[(p % SLOTS) as usize].load(Ordering::Relaxed) & 0xff < PROTECT
            }) else {
                log.dropped.push(value);
                continue 'next;
            };
            let gone = lane.slots[(victim % SLOTS) as usize].load(Ordering::Relaxed) >> 8;
            if victim == c.head {
                let next = Cursor::at(c.head + 1, c.head + 1).pack();
                if lane
                    .cursor
                    .compare_exchange(word, next, Ordering::AcqRel, Ordering::Relaxed)
                    .is_ok()
                {
                    log.evicted.push(gone);
                }
                continue;
            }
            // Flag [head, victim], move the run up over the victim, unflag.
            let flagged = Cursor {
                head: c.head,
                read: victim + 1,
                evicting: true,
            }
            .pack();
            if lane
                .cursor
                .compare_exchange(word, flagged, Ordering::AcqRel, Ordering::Relaxed)
                .is_err()
            {
                continue;
            }
            for p in (c.head..victim).rev() {
                let v = lane.slots[(p % SLOTS) as usize].load(Ordering::Relaxed);
                lane.slots[((p + 1) % SLOTS) as usize].store(v, Ordering::Relaxed);
            }
            let done = Cursor::at(c.head + 1, c.head + 1).pack();
            lane.cursor
                .compare_exchange(flagged, done, Ordering::Release, Ordering::Relaxed)
                .expect("nobody else touches a flagged cursor");
            log.evicted.push(gone);
        }
        lane.slots[(pos % SLOTS) as usize].store(value << 8 | sev, Ordering::Relaxed);
        pos += 1;
        lane.tail.store(pos, Ordering::Release);
        log.written.push(value);
    }
    log
}

fn consume(lane: &Lane, rounds: usize) -> Vec<u64> {
    let mut delivered = vec![];
    for _ in 0..rounds {
        let tail = lane.tail.load(Ordering::Acquire);
        let word = lane.cursor.load(Ordering::Acquire);
        let Some(c) = Cursor::unpack(word, tail, SLOTS) else {
            continue; // an eviction raced our two loads; look again
        };
        if c.evicting || c.read >= tail {
            thread::yield_now();
            continue;
        }
        let copies: Vec<u64> = (c.read..tail)
            .map(|p| lane.slots[(p % SLOTS) as usize].load(Ordering::Relaxed))
            .collect();
        let claim = Cursor::at(c.head, tail).pack();
        if lane
            .cursor
            .compare_exchange(word, claim, Ordering::AcqRel, Ordering::Relaxed)
            .is_err()
        {
            continue; // the producer evicted meanwhile: copies may be torn
        }
        delivered.extend(copies.iter().map(|v| v >> 8));
        // Commit: give the slots back.
        loop {
            let t = lane.tail.load(Ordering::Acquire);
            let w = lane.cursor.load(Ordering::Acquire);
            let Some(now) = Cursor::unpack(w, t, SLOTS) else {
                continue;
            };
            let done = Cursor::at(tail, now.read).pack();
            if lane
                .cursor
                .compare_exchange(w, done, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
            {
                break;
            }
        }
    }
    delivered
}

fn check(records: &'static [(u64, u64)], rounds: usize) {
    loom::model(move || {
        let lane = Arc::new(Lane {
            tail: AtomicU64::new(0),
            cursor: AtomicU64::new(0),
            slots: [AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)],
        });
        let l2 = lane.clone();
        let consumer = thread::spawn(move || consume(&l2, rounds));
        let log = produce(&lane, records);
        let delivered = consumer.join().unwrap();
        // What is still unread at the end.
        let tail = lane.tail.load(Ordering::Acquire);
        let c = Cursor::unpack(lane.cursor.load(Ordering::Acquire), tail, SLOTS).unwrap();
        assert!(!c.evicting);
        let unread: Vec<u64> = (c.read..tail)
            .map(|p| lane.slots[(p % SLOTS) as usize].load(Ordering::Relaxed) >> 8)
            .collect();
        assert!(
            delivered.windows(2).all(|w| w[0] < w[1]),
            "in order: {delivered:?}"
        );
        let mut all: Vec<u64> = delivered
            .iter()
            .chain(&log.evicted)
            .chain(&log.dropped)
            .chain(&unread)
            .copied()
            .collect();
        all.sort();
        let emitted: Vec<u64> = records.iter().map(|r| r.0).collect();
        assert_eq!(
            all, emitted,
            "each record exactly once: {delivered:?} {log:?} {unread:?}"
        );
        for e in &log.evicted {
            let sev = records.iter().find(|r| r.0 == *e).unwrap().1;
            assert!(sev < PROTECT, "only low-severity records are evicted");
        }
    });
}

#[test]
fn loom_claims_and_evictions_never_overlap() {
    // Two INFO fill the lane; two ERRORs must evict them unless the consumer
    // takes them first.
    check(&[(1, 9), (2, 9), (3, 9), (4, 17), (5, 17)], 2);
}

#[test]
fn loom_a_protected_run_moves_over_its_victim_in_order() {
    // ERROR, INFO, INFO fill the lane; the next ERROR moves the first one over
    // the first INFO, unless the consumer takes them first; the second INFO
    // must not be delivered before the moved ERROR.
    check(&[(1, 17), (2, 9), (3, 9), (4, 17)], 2);
}

#[test]
fn loom_only_protected_records_left_means_drop() {
    check(&[(1, 17), (2, 13), (3, 17), (4, 17)], 1);
}
