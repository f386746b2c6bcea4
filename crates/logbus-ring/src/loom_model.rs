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
//!   in flight) by the liveness of its adopter, never of the claimer nor of
//!   another adopter whose opening was closed under it (the owner word names
//!   an opening: `Owner`);
//! * late claimer vs take-over: a claimer that stalls after taking its
//!   sequence number, while the consumer takes the block over, frees it and
//!   the next claimer of that block initialises it, writes nothing into the
//!   later use's descriptor;
//! * a look at the cursors: `head` and `alloc` loaded one after the other
//!   while blocks are claimed and freed are judged a ring's, never "no ring
//!   can have them" (`Ring::cursors` loads `alloc` again);
//! * marks vs evict: a consumer restarted after its predecessor's sink wrote
//!   records it never committed takes the claims back, while a producer
//!   looks for room: the producer never evicts the records the sink marked
//!   written before the consumer has read them again and committed them.
#![cfg(all(test, loom))]

use loom::sync::atomic::{fence, AtomicU32, AtomicU64, Ordering};
use loom::sync::Arc;
use loom::thread;

use crate::block::{done_end, done_word, retag, Claim, Owner, Reserve};

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

/// `Writer::adopt` and its first reservation, as process `pid`: become the
/// owner of the next opening, reopen, reserve 64 bytes (and die before
/// stamping them). Returns whether the reservation was made.
fn adopt_and_reserve(reserve: &AtomicU64, owner: &AtomicU64, pid: u32) -> bool {
    let word = reserve.load(Ordering::Acquire);
    let r = Reserve::unpack(word);
    if !r.closed || r.end != 64 {
        return false;
    }
    let was = owner.load(Ordering::Acquire);
    let open = r.reopened();
    let mine = Owner {
        seq: 5,
        opens: open.opens,
        pid,
    }
    .pack();
    if Owner::unpack(was).of(r).is_none()
        || owner
            .compare_exchange(was, mine, Ordering::AcqRel, Ordering::Relaxed)
            .is_err()
    {
        return false;
    }
    if reserve
        .compare_exchange(word, open.pack(), Ordering::SeqCst, Ordering::Relaxed)
        .is_err()
    {
        let _ = owner.compare_exchange(mine, was, Ordering::AcqRel, Ordering::Relaxed);
        return false;
    }
    let next = Reserve { end: 128, ..open };
    reserve
        .compare_exchange(
            open.pack(),
            next.pack(),
            Ordering::SeqCst,
            Ordering::Relaxed,
        )
        .is_ok()
}

#[test]
fn loom_a_record_in_an_adopted_block_is_judged_by_its_adopter() {
    // Four threads: bounded preemptions (the interleaving that mattered needs
    // two: the first adopter stalled after its reopening, the consumer
    // closing, the other adopter running through).
    let mut model = loom::model::Builder::new();
    model.preemption_bound = Some(3);
    model.check(|| {
        // A closed block claimed by process 1, with room left; processes 2
        // and 3 start writing and both adopt it, while the consumer closes
        // an opening nothing was reserved in yet (`close_front_if_pinning`):
        // the adopter that stalled between its reopening and its first
        // reservation must not be named the owner of the other's record.
        let closed = Reserve {
            end: 64,
            ..Reserve::open(5).closed()
        };
        let reserve = Arc::new(AtomicU64::new(closed.pack()));
        let owner = Arc::new(AtomicU64::new(
            Owner {
                seq: 5,
                opens: 0,
                pid: 1,
            }
            .pack(),
        ));
        let (r2, o2) = (reserve.clone(), owner.clone());
        let two = thread::spawn(move || adopt_and_reserve(&r2, &o2, 2));
        let (r3, o3) = (reserve.clone(), owner.clone());
        let three = thread::spawn(move || adopt_and_reserve(&r3, &o3, 3));
        // The consumer: close an opening with nothing reserved, then judge
        // a reservation past what it read by the owner it then loads
        // (`Consumer::skip_stuck`).
        let (rc, oc) = (reserve.clone(), owner.clone());
        let consumer = thread::spawn(move || {
            let word = rc.load(Ordering::Acquire);
            let r = Reserve::unpack(word);
            if !r.closed && r.end == 64 {
                let _ = rc.compare_exchange(
                    word,
                    r.closed().pack(),
                    Ordering::AcqRel,
                    Ordering::Relaxed,
                );
            }
            let seen = Reserve::unpack(rc.load(Ordering::Acquire));
            (seen, Owner::unpack(oc.load(Ordering::Acquire)).of(seen))
        });
        let (by2, by3) = (two.join().unwrap(), three.join().unwrap());
        let (seen, judged) = consumer.join().unwrap();
        assert!(!(by2 && by3), "two reservations at one offset");
        if seen.end > 64 {
            let writer = if by2 { 2 } else { 3 };
            assert!(
                judged.is_none_or(|pid| pid == writer),
                "the record of {writer} judged by {judged:?}"
            );
        }
        let last = Reserve::unpack(reserve.load(Ordering::Acquire));
        if by2 || by3 {
            let writer = if by2 { 2 } else { 3 };
            assert_eq!(
                Owner::unpack(owner.load(Ordering::Acquire)).of(last),
                Some(writer),
                "the owner of the record in flight, once everyone is done"
            );
        }
    });
}

impl crate::block::Word for AtomicU64 {
    fn load(&self, order: Ordering) -> u64 {
        AtomicU64::load(self, order)
    }

    fn compare_exchange(
        &self,
        current: u64,
        new: u64,
        success: Ordering,
        failure: Ordering,
    ) -> Result<u64, u64> {
        AtomicU64::compare_exchange(self, current, new, success, failure)
    }
}

/// One descriptor's words in the late-claimer model.
struct Desc {
    reserve: AtomicU64,
    owner: AtomicU64,
    claim: AtomicU64,
}

/// `Writer::init` of block `seq` (previous use tagged `prev`) by `pid`.
fn init(d: &Desc, seq: u64, prev: u32, pid: u32) -> bool {
    let cur = d.reserve.load(Ordering::Acquire);
    let r = Reserve::unpack(cur);
    if r.seq != prev || r.is(seq) {
        return false;
    }
    let owner = Owner {
        seq: seq as u32,
        opens: 0,
        pid,
    };
    if !retag(&d.owner, seq, Some(prev), owner.pack(), false)
        || !retag(&d.claim, seq, Some(prev), Claim::at(seq, 0).pack(), true)
    {
        return false;
    }
    d.reserve
        .compare_exchange(
            cur,
            Reserve::open(seq).pack(),
            Ordering::SeqCst,
            Ordering::Relaxed,
        )
        .is_ok()
}

/// `Consumer::take_over` of block `seq`.
fn take_over(d: &Desc, seq: u64) -> bool {
    let cur = d.reserve.load(Ordering::Acquire);
    if Reserve::unpack(cur).is(seq) {
        return false;
    }
    let nobody = Owner {
        seq: seq as u32,
        opens: 0,
        pid: 0,
    };
    let _ = retag(&d.owner, seq, None, nobody.pack(), true);
    let _ = retag(&d.claim, seq, None, Claim::at(seq, 0).pack(), true);
    d.reserve
        .compare_exchange(
            cur,
            Reserve::open(seq).closed().pack(),
            Ordering::AcqRel,
            Ordering::Relaxed,
        )
        .is_ok()
}

#[test]
fn loom_a_late_claimer_writes_nothing_into_the_next_use() {
    loom::model(|| {
        // A ring of 4 blocks: block 1's descriptor, last used as sequence
        // number 1 (freed). Claimer 1 took number 5 and stalls; the consumer
        // takes 5 over (empty, closed), frees it, and claimer 2 takes number
        // 9 for the same block.
        let d = Arc::new(Desc {
            reserve: AtomicU64::new(Reserve::open(1).closed().pack()),
            owner: AtomicU64::new(
                Owner {
                    seq: 1,
                    opens: 0,
                    pid: 7,
                }
                .pack(),
            ),
            claim: AtomicU64::new(Claim::at(1, 0).pack()),
        });
        let d1 = d.clone();
        let late = thread::spawn(move || init(&d1, 5, 1, 1));
        let took = take_over(&d, 5);
        let next = took && init(&d, 9, 5, 2);
        let first = late.join().unwrap();
        assert!(!(first && took), "claimed and taken over");
        let r = Reserve::unpack(d.reserve.load(Ordering::Acquire));
        let owner = Owner::unpack(d.owner.load(Ordering::Acquire));
        let claim = Claim::unpack(d.claim.load(Ordering::Acquire));
        if next {
            assert!(r.is(9) && !r.closed, "{r:?}");
            assert_eq!(owner.of(r), Some(2), "{owner:?}");
            assert_eq!(claim, Claim::at(9, 0));
        }
        if first {
            assert!(r.is(5) && !r.closed, "{r:?}");
            assert_eq!(owner.of(r), Some(1), "{owner:?}");
            assert_eq!(claim, Claim::at(5, 0));
        }
    });
}

/// `Ring::cursors` on loom's atomics (the same loads, fewer tries).
fn cursors(head: &AtomicU64, alloc: &AtomicU64, blocks: u64) -> Option<Option<(u64, u64)>> {
    let mut a = alloc.load(Ordering::Acquire);
    for _ in 0..4 {
        let h = head.load(Ordering::Acquire);
        let again = alloc.load(Ordering::Acquire);
        if again == a {
            return Some((a >= h && a - h <= blocks).then_some((h, a)));
        }
        a = again;
    }
    None
}

#[test]
fn loom_a_look_at_the_cursors_never_sees_a_ring_that_cannot_be() {
    loom::model(|| {
        // Two blocks, block 0 in use: a producer claims block 1, and blocks
        // 0 and 1 are freed (an evictor, or the consumer) while somebody
        // looks at `head` and `alloc`. Loaded one after the other, `alloc`
        // first, the look could see `head` past `alloc`, which the consumer
        // would take for overwritten state and "repair", moving `head` back.
        let head = Arc::new(AtomicU64::new(0));
        let alloc = Arc::new(AtomicU64::new(1));
        let (h, a) = (head.clone(), alloc.clone());
        let ring = thread::spawn(move || {
            a.compare_exchange(1, 2, Ordering::SeqCst, Ordering::Relaxed)
                .unwrap();
            h.compare_exchange(0, 1, Ordering::SeqCst, Ordering::Relaxed)
                .unwrap();
            h.compare_exchange(1, 2, Ordering::SeqCst, Ordering::Relaxed)
                .unwrap();
        });
        if let Some(look) = cursors(&head, &alloc, 2) {
            assert!(look.is_some(), "a healthy ring judged impossible");
        }
        ring.join().unwrap();
    });
}
