//! A consumer's sinks' ledger, kept in the ring: per sink slot and level,
//! the records the consumer committed while that sink still held them in
//! memory only, so that a consumer killed with them is followed by one that
//! counts them (`lost_in_crash`) instead of nobody.
//!
//! A collector's sink that is far behind keeps its oldest records in memory
//! and lets the ring commit them (they are *released*; see the collector's
//! `queue.rs`): they are no longer in the ring's books as unread, and not
//! yet in the sink. A clean exit counts them dropped; a SIGKILL used to lose
//! them with no counter. The ledger word `SharedWords::ledger[slot][level]`
//! holds how many there are now:
//!
//! | step | who | what |
//! |---|---|---|
//! | release | the reader thread, before it commits them | [`SinkSlot::ledger_add`] |
//! | written, rejected, shed, given up, counted lost at exit | the sink's thread or the reader | [`SinkSlot::ledger_sub`] |
//! | take-over (a consumer starts) | the new consumer, holding the role | [`SinkMarks::lost`] reads every slot's words; once it has counted and published them, [`LostInCrash::settle`] takes them off |
//!
//! # Orderings
//! Adds and subtracts are read-modify-writes of one word (a total order per
//! word), Relaxed: no other memory is published through the ledger. What
//! must hold is that an add is in the shared mapping before the records it
//! counts can be overwritten; the reader adds before it commits them, and
//! the commit (`done`, `head`) is a Release store later in the same
//! thread's order, so whoever acquires that commit to reuse the blocks has
//! the add before it. A killed process's stores stay in the shared page
//! (`MAP_SHARED`), and the next consumer reads the words only after taking
//! the consumer lock, which the kernel hands over once the killed process
//! is gone (a syscall on both sides).
//!
//! # Why a take-over subtracts, and late
//! A new consumer does not zero the words when it finds them: it counts
//! them in its sinks' counters, and subtracts what it found only once those
//! counters are published (the collector's status file). Killed before
//! that, it leaves them for the next one, which counts them again: the
//! counters of a killed process are lost with it, the ledger is not.
//! Meanwhile its own sinks add and subtract in the same words, which is why
//! it subtracts rather than stores 0.
//!
//! # What the count may say too much (never too little)
//! * A sink subtracts a group only after its write returned: a consumer
//!   killed during (or just after) a write counts that group lost although
//!   some or all of it reached the sink. At most one group per sink per kill
//!   (the collector's groups: 4,096 records, or one chunk of a poll taken
//!   whole, at most 16,384).
//! * The reader adds at release, before the commit of the same records; a
//!   kill between the two counts them lost, and the next consumer reads them
//!   again (they were not committed) and delivers them: what the reader
//!   released in its last step before the kill, and the newer part of a
//!   group in flight released whole (by its oldest record) while another
//!   sink still held that part in the ring.
//!
//! Either way every record is delivered or counted, and `distinct + shed +
//! rejected + lost_in_crash >= committed` per sink and level.
//!
//! # Untrusted words
//! The words are in shared memory: a garbage value must not panic or wrap.
//! Adds and subtracts saturate; a take-over reports what it finds (saturated
//! sums), whatever it is, and subtracts it (to zero, saturating).

use std::sync::atomic::{AtomicU64, Ordering};

use crate::consumer::Consumer;
use crate::level::LEVELS;
use crate::ring::Ring;
use crate::sink_marks::{name_hash, SinkMarks, SinkSlot};

/// Records of one sink a killed consumer held in memory only, found by the
/// next consumer ([`SinkMarks::lost`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LostInCrash {
    /// The slot.
    slot: SinkSlot,
    /// The slot's sink, as its name's hash (0: the slot was free).
    sink_hash: u64,
    /// Per level.
    counts: [u64; LEVELS],
}

impl LostInCrash {
    /// Whether these were the records of the sink named `name`.
    pub fn is_for(&self, name: &str) -> bool {
        self.sink_hash != 0 && self.sink_hash == name_hash(name)
    }

    /// The sink's name's hash, for a message when no configured sink has it.
    pub fn sink_hash(&self) -> u64 {
        self.sink_hash
    }

    /// Records per level.
    pub fn counts(&self) -> [u64; LEVELS] {
        self.counts
    }

    /// Records over the levels (saturating).
    pub fn total(&self) -> u64 {
        self.counts.iter().fold(0u64, |a, n| a.saturating_add(*n))
    }

    /// They are counted and the counts published: takes them off the
    /// ledger (see "Why a take-over subtracts, and late").
    pub fn settle(&self, consumer: &mut Consumer) {
        self.slot.ledger_sub(consumer.ring(), &self.counts);
    }
}

fn add(word: &AtomicU64, n: u64) {
    if n == 0 {
        return;
    }
    // Relaxed: see "Orderings" in the module docs. The closure never
    // returns None, so the update cannot fail.
    let _ = word.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| {
        Some(v.saturating_add(n))
    });
}

fn sub(word: &AtomicU64, n: u64) {
    if n == 0 {
        return;
    }
    // Relaxed: as in `add`.
    let _ = word.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| {
        Some(v.saturating_sub(n))
    });
}

impl SinkSlot {
    /// This sink now holds `counts` records (per level) of `ring` in memory
    /// only: call it before they are committed (reader thread).
    pub fn ledger_add(self, ring: &Ring, counts: &[u64; LEVELS]) {
        let words = &ring.words().ledger[self.index()];
        for (w, &n) in words.iter().zip(counts) {
            add(w, n);
        }
    }

    /// `counts` records this sink held in memory only are done with:
    /// written, refused, shed or counted lost at exit (any thread of the
    /// consumer's process). Call it once the write has returned, never
    /// before (see the module docs).
    pub fn ledger_sub(self, ring: &Ring, counts: &[u64; LEVELS]) {
        let words = &ring.words().ledger[self.index()];
        for (w, &n) in words.iter().zip(counts) {
            sub(w, n);
        }
    }

    /// What this slot's ledger holds now, per level (for tests and `stat`).
    pub fn ledger(self, ring: &Ring) -> [u64; LEVELS] {
        let words = &ring.words().ledger[self.index()];
        // Relaxed: a snapshot of counters.
        std::array::from_fn(|l| words[l].load(Ordering::Relaxed))
    }
}

impl SinkMarks {
    /// At the start of a consumer, before its sinks touch the ledger: what
    /// every slot's ledger holds, the records an earlier consumer of the
    /// ring committed while its sinks held them in memory only. Those records
    /// were lost with that consumer; the caller counts them (per sink,
    /// `lost_in_crash`), names the sinks it no longer has, publishes its
    /// counts and then [`settle`](LostInCrash::settle)s each. Slots with
    /// nothing are left out. (A slot that holds records is not freed by
    /// [`SinkMarks::assign`] until then.)
    pub fn lost(consumer: &Consumer) -> Vec<LostInCrash> {
        let w = consumer.ring().words();
        let mut found = Vec::new();
        for (slot, words) in w.ledger.iter().enumerate() {
            // Relaxed: the role (and with it these words) was handed over by
            // the consumer lock; see "Orderings" in the module docs.
            let counts: [u64; LEVELS] = std::array::from_fn(|l| words[l].load(Ordering::Relaxed));
            if counts.iter().any(|&n| n > 0) {
                found.push(LostInCrash {
                    slot: SinkSlot::at(slot),
                    // Relaxed: slot words have one writer, the consumer role.
                    sink_hash: w.sinks[slot].load(Ordering::Relaxed),
                    counts,
                });
            }
        }
        found
    }

    /// Whether slot `index`'s ledger holds records (a sink still holds them:
    /// its slot must not be freed or given to another sink).
    pub(crate) fn ledger_busy(ring: &Ring, index: usize) -> bool {
        ring.words().ledger[index % crate::layout::SINK_SLOTS]
            .iter()
            // Relaxed: a count of this process's own sinks.
            .any(|w| w.load(Ordering::Relaxed) != 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring(name: &str) -> (logbus_testkit::TempDir, Ring) {
        crate::small_test_ring(name)
    }

    fn slot(c: &mut Consumer, names: &[&str], i: usize) -> SinkSlot {
        SinkMarks::assign(c, names)[i].clone().unwrap().0
    }

    /// What a consumer's sinks still hold when it goes is found, per sink
    /// and level, by the next one, once; what they finished is not.
    #[test]
    #[cfg_attr(miri, ignore = "needs a mapped ring")]
    fn the_next_consumer_takes_what_a_dead_one_held_in_memory() {
        let (_dir, ring) = ring("ledger");
        let mut first = Consumer::acquire(&ring).unwrap();
        assert!(SinkMarks::lost(&first).is_empty(), "a new ring");
        let out = slot(&mut first, &["stdout", "file"], 0);
        let file = slot(&mut first, &["stdout", "file"], 1);
        out.ledger_add(&ring, &[0, 0, 10, 0, 3, 0]);
        out.ledger_sub(&ring, &[0, 0, 4, 0, 3, 0]);
        file.ledger_add(&ring, &[1, 0, 0, 0, 0, 0]);
        file.ledger_sub(&ring, &[1, 0, 0, 0, 0, 0]);
        assert_eq!(out.ledger(&ring), [0, 0, 6, 0, 0, 0]);
        drop(first);
        let mut second = Consumer::acquire(&ring).unwrap();
        let lost = SinkMarks::lost(&second);
        assert_eq!(lost.len(), 1, "{lost:?}");
        assert!(lost[0].is_for("stdout") && !lost[0].is_for("file"));
        assert_eq!(lost[0].counts(), [0, 0, 6, 0, 0, 0]);
        assert_eq!(lost[0].total(), 6);
        // Its slot is kept for it even if no sink is named so any more.
        let again = slot(&mut second, &["file"], 0);
        assert_ne!(again, out);
        // Killed before it published its counts: the next one finds them too.
        drop(second);
        let mut third = Consumer::acquire(&ring).unwrap();
        assert_eq!(SinkMarks::lost(&third), lost);
        // Its own sink adds meanwhile; settling takes off what it found only.
        out.ledger_add(&ring, &[0, 0, 1, 0, 0, 0]);
        lost[0].settle(&mut third);
        assert_eq!(out.ledger(&ring), [0, 0, 1, 0, 0, 0]);
    }

    /// A slot whose sink is still finishing records it holds is not freed by
    /// a reload that no longer names it (its count would go to another
    /// sink); once it holds nothing it is.
    #[test]
    #[cfg_attr(miri, ignore = "needs a mapped ring")]
    fn a_slot_with_records_held_is_not_given_away() {
        let (_dir, ring) = ring("ledger-keep");
        let mut c = Consumer::acquire(&ring).unwrap();
        let old = slot(&mut c, &["old"], 0);
        old.ledger_add(&ring, &[0, 0, 2, 0, 0, 0]);
        let new = slot(&mut c, &["new"], 0);
        assert_ne!(new, old, "the retiring sink keeps its slot");
        old.ledger_sub(&ring, &[0, 0, 2, 0, 0, 0]);
        let _ = slot(&mut c, &["new"], 0);
        drop(c);
        // Had it been freed with records held, the next consumer could not
        // name it; it is named (a hash) when it is left behind.
        let mut c = Consumer::acquire(&ring).unwrap();
        let again = slot(&mut c, &["new", "old"], 1);
        again.ledger_add(&ring, &[5, 0, 0, 0, 0, 0]);
        drop(c);
        let c = Consumer::acquire(&ring).unwrap();
        let lost = SinkMarks::lost(&c);
        assert!(lost[0].is_for("old"));
        assert_eq!(lost[0].sink_hash(), name_hash("old"));
    }

    /// Garbage in the words (shared memory is untrusted) saturates: no
    /// panic, no wrap, and the take-over reports it as it is.
    #[test]
    #[cfg_attr(miri, ignore = "needs a mapped ring")]
    fn garbage_saturates() {
        let (_dir, ring) = ring("ledger-garbage");
        let mut c = Consumer::acquire(&ring).unwrap();
        let s = slot(&mut c, &["stdout"], 0);
        ring.words().ledger[0][2].store(u64::MAX - 1, Ordering::Relaxed);
        ring.words().ledger[0][3].store(u64::MAX, Ordering::Relaxed);
        s.ledger_add(&ring, &[0, 0, 5, 0, 0, 0]);
        s.ledger_sub(&ring, &[0, 0, 0, 0, 0, 7]);
        assert_eq!(s.ledger(&ring), [0, 0, u64::MAX, u64::MAX, 0, 0]);
        drop(c);
        let mut c = Consumer::acquire(&ring).unwrap();
        let lost = SinkMarks::lost(&c);
        assert_eq!(lost[0].total(), u64::MAX);
        lost[0].settle(&mut c);
        assert!(SinkMarks::lost(&c).is_empty());
    }
}
