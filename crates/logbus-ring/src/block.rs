//! Blocks: how any number of writers share one ring.
//!
//! # Why blocks
//! One shared tail cursor costs ~255 ns a record when two processes write at
//! once (its cache line bounces between cores), and a fixed part of the ring per
//! thread would cap every writer at that share. So the ring's data is cut into
//! `blocks` blocks of `block_size` bytes, handed out on demand (the shape of
//! BBQ, "A Block-based Bounded Queue", USENIX ATC 2022): a writer claims a whole
//! block with one CAS on the shared `alloc` word and fills it alone, so the
//! per-record path touches only the block's own descriptor line and its data.
//! Free blocks are shared by everyone: one writer may fill the whole ring up to
//! its level's watermark. A writer holds at most one open block; a thread that
//! exits closes it, and the consumer closes the block of a writer that went
//! quiet when that block is the oldest one left.
//!
//! # Sequence numbers
//! Blocks are claimed in sequence: the `s`-th claim ever gets sequence number
//! `s` and physical block `s % blocks`. `head` (shared) is the oldest sequence
//! number not yet free; `alloc` (shared) the next one to hand out. Invariant:
//! `head <= alloc <= head + blocks`. The consumer reads blocks in sequence
//! order and frees them in that order (moving `head`), so a writer's records,
//! which go to blocks of increasing sequence numbers, are delivered in order.
//!
//! # Who writes what (one descriptor per block, all words tagged with the
//! block's sequence number so that a late actor of an earlier use fails its CAS)
//! | word | writers | meaning |
//! |---|---|---|
//! | `reserve` ([`Reserve`]) | the claimer (init), the owner (reserve), anyone (close), the consumer (take-over), an adopter (reopen) | bytes handed out, CLOSED, openings, level of the last reservation |
//! | `claim` ([`Claim`]) | the claimer (init), the consumer (claim), an evicting producer (flags) | bytes the consumer copied out, EVICTING, EVICTED |
//! | `done` | the claimer (init), the consumer | bytes the consumer committed: where the next consumer resumes |
//! | `owner` ([`Owner`]) | the claimer (init), the consumer (take-over), an adopter (before it reopens) | the process writing the block in which opening |
//! | record `stamp` | the owner, last, Release; the consumer over a record it skipped ([`skipped_stamp`]) | `seq << 32 | len`: the record is complete |
//!
//! # A block's life (sequence number `s`)
//! 1. **Claim.** A writer loads `alloc` = `s` and `head` (Acquire, pairs with
//!    the consumer's Release when it frees: the consumer is done reading the
//!    physical block before anybody reuses it, SYNC POINT B), checks the
//!    level's watermark `s - head < limit`, and CASes `alloc` from `s` to `s+1`.
//!    It moves `owner`, `claim` and `done` to `s`, each by a CAS from a word
//!    of the block's previous use ([`retag`]; never a plain store: a claimer
//!    that stalls here while the block is taken over, freed and claimed
//!    again must not write into the next use's words), then CASes `reserve`
//!    from the previous use's value (always CLOSED) to `{s, open, end 0}`
//!    with Release: whoever sees `reserve` tagged `s` sees the other words too.
//!    A writer killed between the CASes leaves `reserve` untagged: the
//!    consumer takes the block over (`{s, CLOSED, 0}`, same CAS) once it has
//!    waited for it a while; a slow but live claimer then loses its CAS and
//!    claims again.
//! 2. **Reserve, write, commit.** Per record the owner CASes `reserve` from the
//!    value it last stored to `end + placed(len)` (SeqCst: see "Waking the
//!    consumer"). The CAS fails only if somebody closed the block; the owner
//!    then claims another. It writes the record's bytes, then stores the
//!    record's `stamp` with Release (SYNC POINT A); a reader that loads the
//!    stamp with Acquire and finds `seq << 32 | len` sees the whole record.
//!    Only the last reservation of a block can be in flight (a block has one
//!    owner), so its length is `reserve.end - (end of the records before it)`
//!    and its level is in `reserve` even if the owner dies before writing a
//!    byte.
//! 3. **Close.** The owner closes its block when the next record does not fit
//!    or the writer is dropped; the consumer closes the oldest block when it
//!    holds up freeing; an evicting producer closes the block it evicts.
//!    Closing is a CAS setting CLOSED, so it and a reservation never both win.
//! 4. **Read.** The consumer copies ready records out of `[claim, reserve.end)`
//!    and then CASes `claim` forward (AcqRel). The CAS fails only if an
//!    evicting producer flagged the block meanwhile; the copies are dropped
//!    and the poll stops there, as it does at a block it finds flagged:
//!    reading later blocks past unread records of a flagged block could
//!    deliver a writer's newer records before its older ones.
//! 5. **Free.** Once a block is closed, everything in it is claimed (or torn)
//!    and committed, the consumer stores `done` and moves `head` past it (CAS,
//!    Release: SYNC POINT B).
//!
//! # Waking the consumer
//! A consumer that finds nothing to do stores `sleeping = 1` (SeqCst), looks
//! once more at `alloc` and at every open block's `reserve` (SeqCst loads), and
//! only then waits on the futex. A writer loads `sleeping` (SeqCst) right after
//! its reservation CAS (SeqCst). In the single total order of SeqCst operations
//! either the consumer's second look sees the reservation, or the writer sees
//! `sleeping == 1`, and then, after storing the stamp, CASes it to 0 and wakes
//! the futex. On x86 the load is a plain `mov` next to the `lock cmpxchg` the
//! reservation costs anyway: the check is free on the emit path. The consumer
//! sleeps with a short timeout only while it can see a reserved record that is
//! not yet stamped (its writer will not wake it, having looked too early).
//!
//! # Dead writers
//! A writing process holds an OFD lock on byte `LOCK_PROCESS_BASE + pid` of the
//! ring for as long as it lives (`crate::lock`). A block's owner ([`Owner`])
//! is its claimer, or the writer that adopted it since: an adopter first
//! moves the owner word from the current opening's to the next one, naming
//! itself, then reopens the block as that opening (`reserve`'s `opens`), so a
//! record in flight is judged by the writer of the opening it was reserved
//! in, never by an adopter whose opening was closed under it before it
//! reserved anything. A record reserved but not stamped, whose owner's lock
//! is free, was torn by its writer's death: the consumer closes the block,
//! counts the record torn (at the level kept in `reserve`), marks it skipped
//! in its place ([`skipped_stamp`], so that a consumer starting again before
//! it does not count it twice) and skips it. A record of a live writer is
//! waited for (a writer preempted mid-record delays only its own block,
//! never the other writers').
//!
//! # Eviction
//! See `crate::writer` ("Overflow"): a protected record that finds no room
//! evicts the oldest block when every record in it that the consumer has not
//! taken is below the protection level, flagging its `claim` EVICTED with one
//! CAS that the consumer's claim CAS cannot also win.

/// Positions above this are garbage (rejecting them keeps sums free of overflow).
pub(crate) const MAX_SEQ: u64 = 1 << 62;

const CLOSED: u64 = 1 << 31;
const OPENS_SHIFT: u32 = 25;
const OPENS_MASK: u64 = 63;
/// Ends reach `MAX_BLOCK` (1 << 24): bits 3-24.
const END_MASK: u64 = (1 << OPENS_SHIFT) - 1 - 7;
const _: () = assert!(crate::layout::MAX_BLOCK as u64 <= END_MASK);

/// The packed `reserve` word of a block descriptor.
///
/// ```text
/// bits 63-32    bit 31    bits 30-25       bits 24-3               bits 2-0
/// seq (low 32)  CLOSED    opens (0-63)     end (bytes handed out)  level of the last reservation
/// ```
///
/// `opens` counts the times the block was reopened by an adopting writer
/// (`Writer::adopt`), mod 64: each opening of a block is a word no earlier
/// opening had, so that a writer whose block was closed under it and
/// reopened by another cannot reserve in the other's opening (an ABA), and
/// the owner word ([`Owner`]) names the writer of one opening.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Reserve {
    pub seq: u32,
    pub closed: bool,
    /// Openings of the block so far (mod 64): 0 for its claimer's.
    pub opens: u8,
    /// Bytes handed out, a multiple of 8.
    pub end: u32,
    /// Level of the last reservation (the one that may be in flight).
    pub level: u8,
}

impl Reserve {
    #[inline]
    pub fn open(seq: u64) -> Reserve {
        Reserve {
            seq: seq as u32,
            closed: false,
            opens: 0,
            end: 0,
            level: 0,
        }
    }

    #[inline]
    pub fn pack(self) -> u64 {
        (self.seq as u64) << 32
            | (self.closed as u64) << 31
            | (self.opens as u64 & OPENS_MASK) << OPENS_SHIFT
            | (self.end as u64 & END_MASK)
            | (self.level as u64 & 7)
    }

    #[inline]
    pub fn unpack(w: u64) -> Reserve {
        Reserve {
            seq: (w >> 32) as u32,
            closed: w & CLOSED != 0,
            opens: ((w >> OPENS_SHIFT) & OPENS_MASK) as u8,
            end: (w & END_MASK) as u32,
            level: (w & 7) as u8,
        }
    }

    /// Whether this word belongs to sequence number `seq`.
    #[inline]
    pub fn is(self, seq: u64) -> bool {
        self.seq == seq as u32
    }

    /// The same word, closed.
    #[inline]
    pub fn closed(self) -> Reserve {
        Reserve {
            closed: true,
            ..self
        }
    }

    /// The same (closed) word reopened by an adopter: open, the next opening.
    #[inline]
    pub fn reopened(self) -> Reserve {
        Reserve {
            closed: false,
            opens: (self.opens + 1) & OPENS_MASK as u8,
            ..self
        }
    }
}

const PID_MASK: u64 = (1 << 26) - 1;

/// The packed `owner` word of a block descriptor: which process writes the
/// block in which opening, so that a record reserved and never stamped can
/// be judged torn (its writer dead) or not.
///
/// ```text
/// bits 63-32    bits 31-26                bits 25-0
/// seq (low 32)  opening (`Reserve::opens`) pid
/// ```
///
/// Written only by CAS, by the claimer (from a word of the block's previous
/// use), by the consumer taking a claim over, and by an adopter (from the
/// word of the opening it reopens): a writer that stalled and woke after the
/// block moved on finds a word it does not expect and writes nothing. The
/// owner of a record in flight is the one whose opening is the `reserve`
/// word's; while the two differ an adoption is under way, and nobody judges.
/// (Linux pids are below `1 << 22`.)
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Owner {
    pub seq: u32,
    pub opens: u8,
    pub pid: u32,
}

impl Owner {
    #[inline]
    pub fn pack(self) -> u64 {
        (self.seq as u64) << 32
            | (self.opens as u64 & OPENS_MASK) << 26
            | (self.pid as u64 & PID_MASK)
    }

    #[inline]
    pub fn unpack(w: u64) -> Owner {
        Owner {
            seq: (w >> 32) as u32,
            opens: ((w >> 26) & OPENS_MASK) as u8,
            pid: (w & PID_MASK) as u32,
        }
    }

    /// The writer of the opening `r` is in, if this word names it.
    #[inline]
    pub fn of(self, r: Reserve) -> Option<u32> {
        (self.seq == r.seq && self.opens == r.opens).then_some(self.pid)
    }
}

/// The tag (low 32 bits of the sequence number) the words of block `seq`'s
/// descriptor carry before its claimer initialises them: those of the
/// block's previous use, `seq - blocks`, or 0 in a new ring (whose
/// descriptors are zero).
#[inline]
pub(crate) fn previous_tag(seq: u64, blocks: u64) -> u32 {
    seq.saturating_sub(blocks) as u32
}

/// Moves a tagged descriptor word (`claim`, `done`, `owner`: tag in the high
/// 32 bits) of block `seq` to `new`, by CAS, from a word of the previous use
/// (tag `prev`; `None`: any tag but `seq`'s, for the consumer, which is never
/// late). Leaves a word already tagged `seq` as it is when `keep_current`
/// (somebody initialised it for this use first). Returns false when the
/// word is tagged neither (the block has moved on to a later use: the
/// caller stalled and must write nothing), or tagged `seq` and not
/// `keep_current`.
///
/// AcqRel: as every CAS of the descriptor's words; the Acquire orders the
/// caller's later writes after those of whoever tagged the word before.
pub(crate) fn retag(
    word: &impl Word,
    seq: u64,
    prev: Option<u32>,
    new: u64,
    keep_current: bool,
) -> bool {
    use std::sync::atomic::Ordering;
    let mut cur = word.load(Ordering::Acquire);
    loop {
        let tag = (cur >> 32) as u32;
        if tag == seq as u32 {
            return keep_current;
        }
        if prev.is_some_and(|p| p != tag) {
            return false;
        }
        match word.compare_exchange(cur, new, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => return true,
            Err(now) => cur = now,
        }
    }
}

/// A shared 64-bit word [`retag`] works on: a descriptor's atomics, and
/// loom's in the models (`crate::loom_model`), which so run this very code.
pub(crate) trait Word {
    fn load(&self, order: std::sync::atomic::Ordering) -> u64;
    fn compare_exchange(
        &self,
        current: u64,
        new: u64,
        success: std::sync::atomic::Ordering,
        failure: std::sync::atomic::Ordering,
    ) -> Result<u64, u64>;
}

impl Word for std::sync::atomic::AtomicU64 {
    #[inline]
    fn load(&self, order: std::sync::atomic::Ordering) -> u64 {
        std::sync::atomic::AtomicU64::load(self, order)
    }

    #[inline]
    fn compare_exchange(
        &self,
        current: u64,
        new: u64,
        success: std::sync::atomic::Ordering,
        failure: std::sync::atomic::Ordering,
    ) -> Result<u64, u64> {
        std::sync::atomic::AtomicU64::compare_exchange(self, current, new, success, failure)
    }
}

const EVICTING: u64 = 1 << 31;
const EVICTED: u64 = 1 << 30;
const EPOCH_SHIFT: u32 = 25;
const EPOCH_MASK: u64 = 31;
/// Claimed ends reach `MAX_BLOCK` (1 << 24): 25 bits.
const CLAIM_MASK: u64 = (1 << EPOCH_SHIFT) - 1;
const _: () = assert!(crate::layout::MAX_BLOCK as u64 <= CLAIM_MASK);

/// The packed `claim` word of a block descriptor.
///
/// ```text
/// bits 63-32    bit 31      bit 30     bits 29-25          bits 24-0
/// seq (low 32)  EVICTING    EVICTED    rewrite epoch (0-31) claimed end (bytes)
/// ```
///
/// The epoch changes each time an evictor lets go of a block it flagged
/// (`evict::unflag`), so that the word never comes back to a value a reader
/// loaded before the block was rewritten: the consumer's claim CAS, which
/// keeps the records it copied only if the word is still what it loaded,
/// fails after a flag-rewrite-unflag that happened during its copy (without
/// the epoch the word would be the same again, an ABA, and the consumer
/// would keep copies of a block rewritten under it: records moved there, then
/// stale ones behind them). 32 rewrites of one block during one copy would
/// be needed to fool it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Claim {
    pub seq: u32,
    /// A producer is rewriting the block; readers keep off (and off every
    /// later block, so that no writer's order is broken).
    pub evicting: bool,
    /// The block's unclaimed records were evicted; it holds nothing to read.
    pub evicted: bool,
    /// Bumped (mod 32) whenever an evictor lets go of the block (see above).
    pub epoch: u8,
    pub claimed: u32,
}

impl Claim {
    #[inline]
    pub fn at(seq: u64, claimed: u32) -> Claim {
        Claim {
            seq: seq as u32,
            evicting: false,
            evicted: false,
            epoch: 0,
            claimed,
        }
    }

    #[inline]
    pub fn pack(self) -> u64 {
        (self.seq as u64) << 32
            | (self.evicting as u64) << 31
            | (self.evicted as u64) << 30
            | (self.epoch as u64 & EPOCH_MASK) << EPOCH_SHIFT
            | (self.claimed as u64 & CLAIM_MASK)
    }

    #[inline]
    pub fn unpack(w: u64) -> Claim {
        Claim {
            seq: (w >> 32) as u32,
            evicting: w & EVICTING != 0,
            evicted: w & EVICTED != 0,
            epoch: ((w >> EPOCH_SHIFT) & EPOCH_MASK) as u8,
            claimed: (w & CLAIM_MASK) as u32,
        }
    }

    /// The next rewrite epoch (mod 32).
    #[inline]
    pub fn next_epoch(self) -> u8 {
        (self.epoch + 1) & EPOCH_MASK as u8
    }

    #[inline]
    pub fn is(self, seq: u64) -> bool {
        self.seq == seq as u32
    }
}

/// The `done` word: `seq << 32 | committed end`.
#[inline]
pub(crate) fn done_word(seq: u64, end: u32) -> u64 {
    (seq as u32 as u64) << 32 | end as u64
}

/// The committed end in a `done` word, if it belongs to `seq`.
#[inline]
pub(crate) fn done_end(w: u64, seq: u64) -> Option<u32> {
    ((w >> 32) as u32 == seq as u32).then_some(w as u32)
}

/// A record's commit word.
#[inline]
pub(crate) fn stamp(seq: u64, len: u32) -> u64 {
    (seq as u32 as u64) << 32 | len as u64
}

/// Set in a stamp word by the consumer over a record it skipped and counted
/// (torn or invalid): lengths stay below `1 << 25`, so no commit word has it.
const SKIPPED: u64 = 1 << 31;

/// The word the consumer leaves at the start of a record it skipped and
/// counted (torn by its writer's death, or garbage), `placed` bytes long: a
/// consumer that starts again at the block's committed end (`done`), before
/// the record, skips it without counting it a second time.
#[inline]
pub(crate) fn skipped_stamp(seq: u64, placed: u32) -> u64 {
    stamp(seq, placed) | SKIPPED
}

/// The bytes a record marked skipped ([`skipped_stamp`]) spans, if `w` is
/// such a word of block `seq`.
#[inline]
pub(crate) fn skipped_len(w: u64, seq: u64) -> Option<u32> {
    (w & SKIPPED != 0 && (w >> 32) as u32 == seq as u32).then_some((w & !SKIPPED) as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_round_trip() {
        for seq in [0u64, 5, u32::MAX as u64, (1 << 40) + 7] {
            for end in [0u32, 8, 4096, (1 << 24) - 8] {
                for closed in [false, true] {
                    for level in 0..6 {
                        let r = Reserve {
                            seq: seq as u32,
                            closed,
                            opens: level * 10,
                            end,
                            level,
                        };
                        assert_eq!(Reserve::unpack(r.pack()), r);
                        assert!(Reserve::unpack(r.pack()).is(seq));
                    }
                }
                for (evicting, evicted, epoch) in
                    [(false, false, 0), (true, false, 31), (false, true, 7)]
                {
                    let c = Claim {
                        seq: seq as u32,
                        evicting,
                        evicted,
                        epoch,
                        claimed: end,
                    };
                    assert_eq!(Claim::unpack(c.pack()), c);
                }
                assert_eq!(done_end(done_word(seq, end), seq), Some(end));
                assert_eq!(done_end(done_word(seq, end), seq + 1), None);
            }
        }
    }

    #[test]
    fn a_word_of_another_use_of_the_block_is_told_apart() {
        let old = Reserve::open(3).closed();
        assert!(!old.is(3 + 512));
        assert_ne!(stamp(3, 100), stamp(3 + 512, 100));
    }
}
