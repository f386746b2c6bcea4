//! Loom models of the block protocol's races, on the real packed words
//! ([`Reserve`], [`Claim`]) and the real orderings. Run with
//! `RUSTFLAGS="--cfg loom" cargo test -p logbus-ring --release --lib loom`.
//!
//! * reserve vs close: a writer reserving records while the consumer closes
//!   its block; every record the writer thinks it has lies below the end the
//!   closer got, and nothing else does;
//! * claim vs evict: the consumer's claim CAS and an evicting producer's CAS
//!   on one `claim` word; every record is delivered or evicted, never both;
//! * sleep vs write: the Dekker pair behind "Waking the consumer": a consumer
//!   that goes to sleep always either sees the new reservation or is seen
//!   sleeping by its writer. Loom treats SeqCst loads, stores and RMWs as
//!   AcqRel (its documented limit), under which no Dekker pair holds; the
//!   model adds the SeqCst fences that give the C++ single total order loom
//!   does not model. (With SeqCst operations on both sides the real code is
//!   correct by that total order; on x86 the CAS and the store are locked
//!   instructions, full barriers already.)
//! * adopt vs seal: a new writer reopening a closed block while the consumer
//!   seals it to free it: never both (a record in a freed block).
//! * copy vs rewrite: the consumer copying a block while a compaction flags
//!   it, rewrites it and lets go of it: the consumer keeps its copies only if
//!   they are of the block as it was (the rewrite epoch: no ABA);
//! * order across blocks: a compaction flagging two blocks while the consumer
//!   reads them: a writer's records (one in each block) are delivered once
//!   each and in order, whether the compaction gives up or moves the first
//!   record into the second block.
//! * adopt vs judge: a reservation in an adopted block is judged (torn or
//!   in flight) by the liveness of its adopter, never of the claimer;
//! * marks vs evict: a consumer restarted after its predecessor's sink wrote
//!   records it never committed takes the claims back, while a producer
//!   looks for room: the producer never evicts the records the sink marked
//!   written before the consumer has read them again and committed them.
#![cfg(all(test, loom))]

use loom::sync::atomic::{fence, AtomicU32, AtomicU64, Ordering};
use loom::sync::Arc;
use loom::thread;

use crate::block::{done_end, done_word, Claim, Reserve};

/// Record ids in the order-across-blocks model: one writer's older record
/// (in block 0) and newer one (in block 1).
const OLDER: u64 = 1;
const NEWER: u64 = 2;

#[test]
fn loom_reserve_against_close() {
    loom::model(|| {
        let word = Arc::new(AtomicU64::new(Reserve::open(7).pack()));
        let w = word.clone();
        let writer = thread::spawn(move || {
            let mut mine = Reserve::open(7);
            let mut written = 0;
            for _ in 0..2 {
                let next = Reserve {
                    end: mine.end + 64,
                    ..mine
                };
                if w.compare_exchange(
                    mine.pack(),
                    next.pack(),
                    Ordering::SeqCst,
                    Ordering::Relaxed,
                )
                .is_err()
                {
                    break; // closed: the writer moves to another block
                }
                mine = next;
                written += 1;
            }
            written
        });
        let c = word.clone();
        let closer = thread::spawn(move || loop {
            let r = Reserve::unpack(c.load(Ordering::Acquire));
            if c.compare_exchange(
                r.pack(),
                r.closed().pack(),
                Ordering::AcqRel,
                Ordering::Relaxed,
            )
            .is_ok()
            {
                return r.end;
            }
        });
        let written = writer.join().unwrap();
        let end = closer.join().unwrap();
        assert_eq!(
            end,
            written * 64,
            "the closed end covers exactly the writer's records"
        );
        let last = Reserve::unpack(word.load(Ordering::Relaxed));
        assert!(last.closed && last.end == end);
    });
}

#[test]
fn loom_claim_against_evict() {
    loom::model(|| {
        // Two records of 64 bytes, nothing claimed yet.
        let word = Arc::new(AtomicU64::new(Claim::at(3, 0).pack()));
        let c = word.clone();
        let consumer = thread::spawn(move || {
            let cur = c.load(Ordering::Acquire);
            let seen = Claim::unpack(cur);
            if seen.evicted || seen.evicting {
                return 0;
            }
            // Copies the records, then claims them.
            let next = Claim::at(3, 128);
            match c.compare_exchange(cur, next.pack(), Ordering::AcqRel, Ordering::Relaxed) {
                Ok(_) => 2,
                Err(_) => 0, // evicted meanwhile: the copies are dropped
            }
        });
        let e = word.clone();
        let evictor = thread::spawn(move || {
            let cur = e.load(Ordering::Acquire);
            let c = Claim::unpack(cur);
            if c.claimed != 0 {
                return 0; // the consumer has records of it: no eviction
            }
            let flagged = Claim { evicted: true, ..c };
            match e.compare_exchange(cur, flagged.pack(), Ordering::AcqRel, Ordering::Relaxed) {
                Ok(_) => 2,
                Err(_) => 0,
            }
        });
        let delivered = consumer.join().unwrap();
        let evicted = evictor.join().unwrap();
        assert_eq!(delivered + evicted, 2, "each record exactly once");
    });
}

#[test]
fn loom_copies_of_a_block_rewritten_under_the_consumer_are_dropped() {
    loom::model(|| {
        // A block of two records (one word stands for each), its reserved
        // end (in records) and its claim word, nothing claimed yet. A
        // compaction rewrites it to one record (moved in) and a shorter end;
        // the old second record stays behind in memory, stale.
        let cells = Arc::new([AtomicU64::new(1), AtomicU64::new(1)]);
        let end = Arc::new(AtomicU64::new(2));
        let word = Arc::new(AtomicU64::new(Claim::at(5, 0).pack()));
        let (r, n, c) = (cells.clone(), end.clone(), word.clone());
        let consumer = thread::spawn(move || {
            // `Consumer::poll`: the claim word, then the end, then the copies.
            let cur = c.load(Ordering::Acquire);
            if Claim::unpack(cur).evicting {
                return None;
            }
            let upto = n.load(Ordering::Acquire) as usize;
            let copied: Vec<u64> = r[..upto]
                .iter()
                .map(|x| x.load(Ordering::Relaxed))
                .collect();
            let next = Claim::at(5, 64);
            c.compare_exchange(cur, next.pack(), Ordering::AcqRel, Ordering::Relaxed)
                .ok()
                .map(|_| copied)
        });
        let (r, n, e) = (cells.clone(), end.clone(), word.clone());
        let evictor = thread::spawn(move || {
            let cur = e.load(Ordering::Acquire);
            let c = Claim::unpack(cur);
            if c.claimed != 0 || c.evicting {
                return;
            }
            let flagged = Claim {
                evicting: true,
                ..c
            };
            if e.compare_exchange(cur, flagged.pack(), Ordering::AcqRel, Ordering::Relaxed)
                .is_err()
            {
                return;
            }
            // `compact`: a record moved in, then `set_end` (Release), then
            // `evict::unflag`: the same claimed end, the next epoch (Release).
            r[0].store(2, Ordering::Relaxed);
            n.store(1, Ordering::Release);
            let unflagged = Claim {
                epoch: c.next_epoch(),
                ..Claim::at(5, c.claimed)
            };
            e.store(unflagged.pack(), Ordering::Release);
        });
        let kept = consumer.join().unwrap();
        evictor.join().unwrap();
        // Copies kept by a successful claim are the block as it is now (no
        // rewrite after the claim can happen: the evictor backs off a claimed
        // block): never a mix, never the stale record behind a shorter end.
        if let Some(copied) = kept {
            let upto = end.load(Ordering::Relaxed) as usize;
            let now: Vec<u64> = cells[..upto]
                .iter()
                .map(|x| x.load(Ordering::Relaxed))
                .collect();
            assert_eq!(
                copied, now,
                "copies of a block rewritten under the consumer were kept"
            );
        }
    });
}

#[test]
fn loom_a_sleeping_consumer_is_never_missed() {
    loom::model(|| {
        let reserve = Arc::new(AtomicU64::new(Reserve::open(1).pack()));
        let sleeping = Arc::new(AtomicU32::new(0));
        let (r, s) = (reserve.clone(), sleeping.clone());
        let writer = thread::spawn(move || {
            let cur = Reserve::open(1);
            let next = Reserve { end: 64, ..cur };
            r.compare_exchange(cur.pack(), next.pack(), Ordering::SeqCst, Ordering::Relaxed)
                .unwrap();
            fence(Ordering::SeqCst);
            // After stamping, wake if the consumer announced its sleep.
            s.load(Ordering::SeqCst) == 1
        });
        let (r, s) = (reserve.clone(), sleeping.clone());
        let consumer = thread::spawn(move || {
            s.store(1, Ordering::SeqCst);
            fence(Ordering::SeqCst);
            Reserve::unpack(r.load(Ordering::SeqCst)).end > 0
        });
        let writer_wakes = writer.join().unwrap();
        let consumer_sees = consumer.join().unwrap();
        assert!(
            writer_wakes || consumer_sees,
            "a record left behind a sleeping consumer"
        );
    });
}

#[test]
fn loom_an_adopted_block_is_never_freed_under_its_writer() {
    loom::model(|| {
        let closed = Reserve::open(4).closed();
        let reserve = Arc::new(AtomicU64::new(closed.pack()));
        let claim = Arc::new(AtomicU64::new(Claim::at(4, 0).pack()));
        let (r, c) = (reserve.clone(), claim.clone());
        let adopter = thread::spawn(move || {
            let open = Reserve {
                closed: false,
                ..closed
            };
            if r.compare_exchange(
                closed.pack(),
                open.pack(),
                Ordering::SeqCst,
                Ordering::Relaxed,
            )
            .is_err()
            {
                return false;
            }
            fence(Ordering::SeqCst);
            let seen = Claim::unpack(c.load(Ordering::SeqCst));
            if seen.evicted {
                // Being freed: close it again, write nothing.
                let _ = r.compare_exchange(
                    open.pack(),
                    closed.pack(),
                    Ordering::AcqRel,
                    Ordering::Relaxed,
                );
                return false;
            }
            true // writes its record here
        });
        let (r, c) = (reserve.clone(), claim.clone());
        let consumer = thread::spawn(move || {
            let unsealed = Claim::at(4, 0);
            let sealed = Claim {
                evicted: true,
                ..unsealed
            };
            c.compare_exchange(
                unsealed.pack(),
                sealed.pack(),
                Ordering::SeqCst,
                Ordering::Relaxed,
            )
            .unwrap();
            fence(Ordering::SeqCst);
            let now = Reserve::unpack(r.load(Ordering::SeqCst));
            if !now.closed {
                // Reopened meanwhile: unseal, do not free.
                c.store(unsealed.pack(), Ordering::Release);
                return false;
            }
            true // frees the block
        });
        let wrote = adopter.join().unwrap();
        let freed = consumer.join().unwrap();
        assert!(!(wrote && freed), "a record written into a freed block");
    });
}

/// One `Consumer::poll` over blocks 0 and 1, as the real one decides: a
/// flagged block stops the poll; an evicted one is skipped; copies are kept
/// only if the claim CAS wins, and a lost CAS stops the poll too (the
/// evictor flagged the block after our look). `moved` says whether block 1
/// was rewritten to hold both records (read after its claim word, Acquire).
fn poll_two(words: &[Arc<AtomicU64>; 2], moved: &AtomicU64, out: &mut Vec<u64>) {
    for (seq, word) in words.iter().enumerate() {
        let cur = word.load(Ordering::Acquire);
        let c = Claim::unpack(cur);
        if c.evicting {
            return;
        }
        if c.evicted || c.claimed > 0 {
            continue;
        }
        let copied = if seq == 0 {
            vec![OLDER]
        } else if moved.load(Ordering::Acquire) == 1 {
            vec![OLDER, NEWER]
        } else {
            vec![NEWER]
        };
        let next = Claim::at(seq as u64, 64);
        if word
            .compare_exchange(cur, next.pack(), Ordering::AcqRel, Ordering::Relaxed)
            .is_err()
        {
            return;
        }
        out.extend(copied);
    }
}

#[test]
fn loom_a_writers_records_stay_in_order_across_a_compaction() {
    loom::model(|| {
        let words = [
            Arc::new(AtomicU64::new(Claim::at(0, 0).pack())),
            Arc::new(AtomicU64::new(Claim::at(1, 0).pack())),
        ];
        let moved = Arc::new(AtomicU64::new(0));
        let (ws, m) = (words.clone(), moved.clone());
        let consumer = thread::spawn(move || {
            let mut out = Vec::new();
            poll_two(&ws, &m, &mut out);
            out
        });
        let (ws, m) = (words.clone(), moved.clone());
        let evictor = thread::spawn(move || {
            // `Inspected::of` both, then flag them in order (`evict::flag`).
            let seen: Vec<u64> = ws.iter().map(|w| w.load(Ordering::Acquire)).collect();
            if seen.iter().any(|&x| Claim::unpack(x).claimed != 0) {
                return;
            }
            let flag = |i: usize| {
                let f = Claim {
                    evicting: true,
                    ..Claim::unpack(seen[i])
                };
                ws[i]
                    .compare_exchange(seen[i], f.pack(), Ordering::SeqCst, Ordering::Relaxed)
                    .is_ok()
                    .then_some(f)
            };
            let unflag = |i: usize, f: Claim| {
                let next = Claim {
                    epoch: f.next_epoch(),
                    ..Claim::at(i as u64, f.claimed)
                };
                ws[i].store(next.pack(), Ordering::Release);
            };
            let Some(f0) = flag(0) else { return };
            let Some(f1) = flag(1) else {
                // The consumer claimed in block 1: give up (`complete(FLAGGED)`).
                unflag(0, f0);
                return;
            };
            // `compact`: the older record moved into block 1, before the
            // newer one; block 0 evicted; block 1 let go (Release).
            m.store(1, Ordering::Relaxed);
            let evicted = Claim {
                evicting: false,
                evicted: true,
                ..f0
            };
            ws[0].store(evicted.pack(), Ordering::Release);
            unflag(1, f1);
        });
        let mut out = consumer.join().unwrap();
        evictor.join().unwrap();
        // The consumer's next poll, with nobody racing it, reads the rest.
        poll_two(&words, &moved, &mut out);
        assert_eq!(
            out,
            vec![OLDER, NEWER],
            "a writer's records delivered once each, in order"
        );
    });
}

#[test]
fn loom_records_a_sink_marked_are_not_evicted_before_they_are_committed() {
    loom::model(|| {
        // Two records of 64 bytes: a dead consumer claimed both (its claim
        // word says 128), its sink wrote both and marked them, nothing was
        // committed (`done` is 0).
        let claim = Arc::new(AtomicU64::new(Claim::at(7, 128).pack()));
        let done = Arc::new(AtomicU64::new(done_word(7, 0)));
        let mark = Arc::new(AtomicU64::new(done_word(7, 128)));
        let (c, d) = (claim.clone(), done.clone());
        let consumer = thread::spawn(move || {
            // `Consumer::state_for`: resume at the committed end.
            let cur = c.load(Ordering::Acquire);
            if Claim::unpack(cur).claimed != 0 {
                let _ = c.compare_exchange(
                    cur,
                    Claim::at(7, 0).pack(),
                    Ordering::AcqRel,
                    Ordering::Relaxed,
                );
            }
            // `poll`: copy both records, claim them (the sink skips them as
            // marked), then commit.
            let cur = c.load(Ordering::Acquire);
            let seen = Claim::unpack(cur);
            if seen.evicting || seen.evicted || seen.claimed != 0 {
                return;
            }
            if c.compare_exchange(
                cur,
                Claim::at(7, 128).pack(),
                Ordering::AcqRel,
                Ordering::Relaxed,
            )
            .is_ok()
            {
                d.store(done_word(7, 128), Ordering::Release);
            }
        });
        let (e, ed, m) = (claim.clone(), done.clone(), mark.clone());
        let evictor = thread::spawn(move || {
            // `Inspected::of`, then the flag CAS: how many of the two
            // records (from the claimed end on) it evicts.
            let cur = e.load(Ordering::Acquire);
            let c = Claim::unpack(cur);
            let Some(committed) = done_end(ed.load(Ordering::Acquire), 7) else {
                return 0;
            };
            if c.evicting || c.evicted || c.claimed != committed {
                return 0;
            }
            // `sink_marked_past`.
            if done_end(m.load(Ordering::Acquire), 7).is_some_and(|end| end > committed) {
                return 0;
            }
            let flagged = Claim { evicted: true, ..c };
            match e.compare_exchange(cur, flagged.pack(), Ordering::AcqRel, Ordering::Relaxed) {
                Ok(_) => (128 - c.claimed) / 64,
                Err(_) => 0,
            }
        });
        consumer.join().unwrap();
        let evicted = evictor.join().unwrap();
        assert_eq!(evicted, 0, "records the sink wrote were evicted");
    });
}

#[test]
fn loom_a_record_in_an_adopted_block_is_judged_by_its_adopter() {
    loom::model(|| {
        // A closed block claimed by process 1 (alive), adopted by process 2.
        let reserve = Arc::new(AtomicU64::new(
            Reserve {
                end: 64,
                ..Reserve::open(5).closed()
            }
            .pack(),
        ));
        let owner = Arc::new(AtomicU32::new(1));
        let (r, o) = (reserve.clone(), owner.clone());
        let adopter = thread::spawn(move || {
            // `Writer::adopt`: reopen, then say who owns the block.
            let closed = Reserve {
                end: 64,
                ..Reserve::open(5).closed()
            };
            let open = Reserve {
                closed: false,
                ..closed
            };
            if r.compare_exchange(
                closed.pack(),
                open.pack(),
                Ordering::SeqCst,
                Ordering::Relaxed,
            )
            .is_err()
            {
                return;
            }
            o.store(2, Ordering::Relaxed);
            // `Writer::emit`: reserve a record (and die before stamping it).
            let next = Reserve { end: 128, ..open };
            let _ = r.compare_exchange(
                open.pack(),
                next.pack(),
                Ordering::SeqCst,
                Ordering::Relaxed,
            );
        });
        // The consumer: a reservation past what it read is judged by the
        // owner it then loads (`Consumer::skip_stuck`).
        let seen = Reserve::unpack(reserve.load(Ordering::Acquire));
        if seen.end > 64 {
            assert_eq!(owner.load(Ordering::Relaxed), 2, "judged by the claimer");
        }
        adopter.join().unwrap();
    });
}
