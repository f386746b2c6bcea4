//! A collector's sinks' progress, kept in the ring, so that a collector
//! restarted after a crash does not write again what a sink had written.
//!
//! The consumer commits a record only when every sink has it; a sink that
//! finished records the others have not marks, per block, how far it got
//! (`BlockDesc::marks`, one word per slot: `seq << 32 | end`). A sink's slot
//! is found by a hash of its name (`SharedWords::sinks`, 0 for a free slot);
//! the ring keeps [`SINK_SLOTS`] of them. Who writes what:
//!
//! | word | writers | readers |
//! |---|---|---|
//! | `sinks[i]` | the consumer ([`SinkMarks::assign`]) | the consumer |
//! | `marks[i]` of a block | the sink's thread ([`SinkSlot::mark`]), the claimer (zeroes them), the consumer (zeroes a fresh slot's) | the next consumer ([`SinkMarks::assign`]), evictors ([`SinkMarks::marked_past`]) |
//! | `ledger[i][level]` | the reader ([`SinkSlot::ledger_add`], at release), the sink's thread or the reader ([`SinkSlot::ledger_sub`]), the next consumer (subtracts what it found, once counted: [`crate::LostInCrash::settle`]) | the next consumer; [`SinkMarks::assign`] (a slot holding records is not freed) |
//!
//! The ledger counts, per slot and level, the records the consumer committed
//! while that sink held them in memory only (see `crate::sink_ledger`).
//!
//! Records a sink marked past a block's committed end (`done`) were written
//! by it and not committed: the next consumer reads them again, and its sink
//! skips them ([`SinkResume::done`]). Until they are committed again no
//! eviction may take them or move records into their places (see
//! `crate::evict`).

use std::sync::atomic::Ordering;

use crate::block::{done_end, done_word};
use crate::consumer::Consumer;
use crate::layout::{BlockDesc, SINK_SLOTS};
use crate::record::BlockPos;
use crate::ring::Ring;

/// A sink's slot in one ring, where its progress is kept per block (given by
/// [`SinkMarks::assign`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SinkSlot(u8);

impl SinkSlot {
    /// Its index in the ring's slots.
    pub(crate) fn index(self) -> usize {
        self.0 as usize % SINK_SLOTS
    }

    /// Slot `index` (below [`SINK_SLOTS`]).
    pub(crate) fn at(index: usize) -> SinkSlot {
        debug_assert!(index < SINK_SLOTS);
        SinkSlot((index % SINK_SLOTS) as u8)
    }
}

impl SinkSlot {
    /// Records that this sink has finished every record of block `pos.seq`
    /// up to `pos.end` (call it for the last record of each block a finished
    /// group held). Only for records not yet committed: a committed block may
    /// be reused, and a late mark would then land in its new life (tagged
    /// with the old sequence number, it is ignored there).
    pub fn mark(self, ring: &Ring, pos: BlockPos) {
        let m = &ring.desc(pos.seq).marks[self.0 as usize % SINK_SLOTS];
        // Release: pairs with the Acquire in `SinkMarks::assign` (and in
        // evictors: `SinkMarks::marked_past`). Single
        // writer per slot (its sink's thread), so a load-compare-store is enough.
        if done_end(m.load(Ordering::Relaxed), pos.seq).is_none_or(|e| e < pos.end) {
            m.store(done_word(pos.seq, pos.end), Ordering::Release);
        }
    }
}

/// What a sink had finished, per block, when the consumer started: records at
/// or before these positions were delivered to it by an earlier consumer.
#[derive(Clone, Debug, Default)]
pub struct SinkResume {
    marks: Vec<(u64, u32)>,
}

impl SinkResume {
    /// Whether the record at `pos` was finished by this sink before.
    pub fn done(&self, pos: BlockPos) -> bool {
        self.marks
            .iter()
            .any(|&(seq, end)| seq == pos.seq && pos.end <= end)
    }

    /// Whether there is nothing to skip.
    pub fn is_empty(&self) -> bool {
        self.marks.is_empty()
    }

    /// The newest block with something to skip (records of later blocks are
    /// never skipped).
    pub fn max_seq(&self) -> u64 {
        self.marks.iter().map(|m| m.0).max().unwrap_or(0)
    }
}

/// A 64-bit FNV-1a hash of a sink's name, never 0 (0 marks a free slot).
pub(crate) fn name_hash(name: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h.max(1)
}

/// The sinks' progress words of a ring (see the module docs): the only code
/// that reads or writes them.
pub struct SinkMarks;

impl SinkMarks {
    /// Gives each sink name a slot in `consumer`'s ring (keeping the slot a
    /// name had, freeing the slots of names not listed), with what that sink
    /// had finished per block. `None` for names beyond [`SINK_SLOTS`]: such a
    /// sink's progress is not kept (after a restart it gets everything not
    /// committed again), nor its ledger (`crate::sink_ledger`). A slot whose
    /// ledger holds records (a retiring sink of this consumer still has
    /// them) is not freed, so that its count stays its sink's.
    pub fn assign(consumer: &mut Consumer, names: &[&str]) -> Vec<Option<(SinkSlot, SinkResume)>> {
        let ring = consumer.ring();
        let w = ring.words();
        let hashes: Vec<u64> = names.iter().map(|n| name_hash(n)).collect();
        // Relaxed (slot words): written by the consumer only.
        for (i, slot) in w.sinks.iter().enumerate() {
            let h = slot.load(Ordering::Relaxed);
            if h != 0 && !hashes.contains(&h) && !SinkMarks::ledger_busy(ring, i) {
                slot.store(0, Ordering::Relaxed);
            }
        }
        let live = ring.live().map_or(0..0, |(h, a)| h..a);
        hashes
            .iter()
            .map(|&hash| {
                let found = w
                    .sinks
                    .iter()
                    .position(|s| s.load(Ordering::Relaxed) == hash);
                let (index, fresh) = match found {
                    Some(i) => (i, false),
                    None => {
                        let i = w
                            .sinks
                            .iter()
                            .position(|s| s.load(Ordering::Relaxed) == 0)?;
                        w.sinks[i].store(hash, Ordering::Relaxed);
                        (i, true)
                    }
                };
                let mut resume = SinkResume::default();
                for seq in live.clone() {
                    let m = &ring.desc(seq).marks[index];
                    if fresh {
                        // A slot new to this sink: nothing of it was delivered.
                        m.store(0, Ordering::Relaxed);
                        continue;
                    }
                    // Acquire: pairs with the Release in `SinkSlot::mark`.
                    if let Some(end) = done_end(m.load(Ordering::Acquire), seq) {
                        if end > 0 {
                            resume.marks.push((seq, end));
                        }
                    }
                }
                Some((SinkSlot(index as u8), resume))
            })
            .collect()
    }

    /// Whether a sink has marked records of block `seq` past its committed
    /// end `done`: records a collector's sink wrote and the collector did not
    /// commit before it died. The next consumer reads them again from `done`
    /// (its sinks skip them by their marks, then commit them); until then
    /// they count as in flight, as they did for the dead consumer: evicting
    /// them would count evicted records a sink has written, and compacting
    /// records into their places would make the sink skip those as written.
    ///
    /// A live consumer's sinks mark only records it has claimed (`claim`
    /// past `done`, which an evictor refuses anyway), so this matters after a
    /// restart. Acquire: pairs with the Release of [`SinkSlot::mark`]; a dead
    /// consumer's marks happen before the next consumer takes its role (the
    /// lock), and so before that consumer's claim CAS in `Consumer::poll`
    /// (taking the dead one's claims back), whose value the evictor's Acquire
    /// load of `claim` has seen.
    pub(crate) fn marked_past(d: &BlockDesc, seq: u64, done: u32) -> bool {
        d.marks
            .iter()
            .any(|m| done_end(m.load(Ordering::Acquire), seq).is_some_and(|end| end > done))
    }
}
