//! Eviction: how a protected record makes room in a full ring.
//!
//! Space is freed in sequence order only (`head` moves forward), so room
//! always comes from the oldest block, `h`:
//! * **whole block**: when nothing the consumer has not taken from `h` is
//!   protected, its unread records are evicted (counted per level) and `head`
//!   moves past it;
//! * **compaction**: otherwise, for the smallest `k` (up to `MAX_SPAN`) such
//!   that the protected records of blocks `h ..= h + k` fit into fewer blocks
//!   than that, the protected records are rewritten, in order, into the last
//!   blocks of the span (after what the consumer already took from each), the
//!   others are evicted, and `head` moves past the blocks left empty (the
//!   more, the better: one compaction then serves several claims). Every
//!   writer's order is kept: the span is read in the same order as before,
//!   minus the evicted records. A block left shorter than it was has its
//!   words past the new end wiped (`set_end`): the old records there are
//!   stamped for this use of the block, and a writer adopting it reserves
//!   there. `MAX_SPAN` (511) covers the whole default
//!   ring, however many blocks of protected records compactions have packed
//!   at its head; in a ring of more blocks, a record below the protection
//!   level more than `MAX_SPAN` blocks behind the head is out of reach: a
//!   protected record that finds only such ones is dropped (and counted).
//!   The most leading blocks the span's free room allows are tried first,
//!   a few counts at most (`PACK_TRIES`), so that a long span costs linear
//!   time; and a writer whose search found nothing does not search again
//!   until the ring changes (`Writer::evict`).
//!
//! Both need the consumer to have nothing in flight in those blocks
//! (`claim == done`, and no sink of it has marked records past `done`: a dead
//! collector's sinks wrote them, its successor reads them again), and every
//! record in them complete; both flag the blocks'
//! `claim` words with one CAS each, which the consumer's claim CAS cannot also
//! win. While a block is flagged EVICTING readers keep off it and off every
//! later block. Letting go of a flagged block bumps the claim word's rewrite
//! epoch, so that a consumer that loaded the word before the flag, and copied
//! records while the block was rewritten, fails its claim CAS and drops the
//! copies (the word does not come back to the value it loaded: no ABA).
//!
//! # One evictor at a time, and its death
//! The role is the `evict_owner` word (`pid << 32 | phase`), taken by CAS.
//! Before each step that changes shared state, the holder writes a note (which
//! blocks, the counter values it will reach) and then the phase:
//!
//! | phase | what may be half done | how the next holder completes it |
//! |---|---|---|
//! | `HELD` | nothing | nothing |
//! | `NOTED` | whole-block eviction of `h` | if `h`'s claim says EVICTED: counters to their targets, `head` past `h` |
//! | `FLAGGED` | compaction: flags set, nothing moved | clear the flags |
//! | `MOVING` | compaction: the span partly rewritten | cut its blocks back to what the consumer took, count the moved records lost, evict `h` |
//! | `MOVED` | compaction: the span rewritten | set its blocks' ends, evict `h` |
//!
//! Every completion is idempotent (CASes that find the work done fail,
//! counters are stored as targets), so a holder that dies while completing
//! leaves the same phase for the next one. A dead holder is one whose
//! process lock (`crate::lock::process`) is free; writers that need room and
//! the consumer (finding a block flagged for long) both check.

use std::sync::atomic::Ordering;

use crate::block::{done_end, stamp, Claim, Reserve};
use crate::layout::{placed, MAX_SPAN, RECORD_HEADER};
use crate::level::{Level, LEVELS};
use crate::lock;
use crate::read::{ready_record, space_freed};
use crate::record::copy_shared;
use crate::ring::Ring;

pub(crate) const HELD: u64 = 1;
/// Placements tried per span, from the most leading blocks freed that the
/// bytes allow down (a span of many blocks would cost quadratic time if every
/// count were tried).
const PACK_TRIES: usize = 4;
const NOTED: u64 = 2;
const FLAGGED: u64 = 3;
const MOVING: u64 = 4;
const MOVED: u64 = 5;
const PHASE_MASK: u64 = 7;

/// The eviction role, held until dropped.
pub(crate) struct Role<'r> {
    ring: &'r Ring,
    me: u64,
}

impl<'r> Role<'r> {
    /// Takes the role, completing the work of a dead holder first. `None`
    /// when a live process holds it (it is making room right now).
    pub(crate) fn take(ring: &'r Ring, fd: i32) -> Option<Role<'r>> {
        let w = ring.words();
        let pid = std::process::id();
        let me = (pid as u64) << 32;
        loop {
            // AcqRel: taking the role orders our reads of the note after the
            // previous holder's writes (its Release stores of note and phase).
            match w
                .evict_owner
                .compare_exchange(0, me | HELD, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return Some(Role { ring, me }),
                Err(holder) => {
                    let hp = (holder >> 32) as u32;
                    if hp == pid || lock::process::alive(fd, hp) {
                        return None;
                    }
                    // Dead: take over in the same phase, then complete it.
                    let phase = holder & PHASE_MASK;
                    if w.evict_owner
                        .compare_exchange(holder, me | phase, Ordering::AcqRel, Ordering::Acquire)
                        .is_ok()
                    {
                        let role = Role { ring, me };
                        role.complete(phase);
                        role.set(HELD);
                        return Some(role);
                    }
                }
            }
        }
    }

    fn set(&self, phase: u64) {
        // Release: the note written before is visible to whoever reads this phase.
        self.ring
            .words()
            .evict_owner
            .store(self.me | phase, Ordering::Release);
    }

    /// Completes a half-done eviction in `phase` (see the table above).
    fn complete(&self, phase: u64) {
        let ring = self.ring;
        let w = ring.words();
        // Relaxed (note words): ordered by the role's Acquire/Release.
        let h = w.evict_block.load(Ordering::Relaxed);
        if h > crate::block::MAX_SEQ {
            return; // an overwritten note: nothing it says can be done
        }
        match phase {
            NOTED => {
                let c = Claim::unpack(ring.desc(h).claim.load(Ordering::Acquire));
                if c.is(h) && c.evicted {
                    self.finish(h, 1);
                } else {
                    // Flagged (maybe) but not evicted: give it back.
                    unflag(ring, h, None);
                }
            }
            FLAGGED => {
                let span = (w.evict_span.load(Ordering::Relaxed) as usize).min(MAX_SPAN) as u64;
                for seq in h..=h + span {
                    unflag(ring, seq, None);
                }
            }
            MOVING | MOVED => {
                let span = (w.evict_span.load(Ordering::Relaxed) as usize).min(MAX_SPAN);
                let freed = (w.evict_freed.load(Ordering::Relaxed) as usize).clamp(1, span);
                for t in freed..=span {
                    let seq = h + t as u64;
                    let keep = Claim::unpack(ring.desc(seq).claim.load(Ordering::Acquire));
                    if !keep.is(seq) {
                        continue;
                    }
                    let end = if phase == MOVED {
                        w.evict_ends[t - 1].load(Ordering::Relaxed)
                    } else {
                        keep.claimed
                    };
                    set_end(ring, seq, end);
                }
                if phase == MOVING {
                    for l in 0..LEVELS {
                        raise(&w.lost[l], w.evict_lost[l].load(Ordering::Relaxed));
                    }
                }
                for t in 0..freed {
                    mark_evicted(ring, h + t as u64);
                }
                for t in freed..=span {
                    unflag(ring, h + t as u64, None);
                }
                self.finish(h, freed as u64);
            }
            _ => {}
        }
    }

    /// Counters to their targets, `head` past the `n` blocks from `h`.
    fn finish(&self, h: u64, n: u64) {
        let w = self.ring.words();
        for l in 0..LEVELS {
            raise(&w.evicted[l], w.evict_victims[l].load(Ordering::Relaxed));
        }
        // SeqCst (includes Release, SYNC POINT B): the block is free for
        // claimers; ordered before the `waiters` load in `space_freed`.
        if w.head
            .compare_exchange(h, h + n, Ordering::SeqCst, Ordering::Relaxed)
            .is_ok()
        {
            space_freed(self.ring);
        }
    }

    /// Frees the oldest block by evicting it, or by merging it into the next
    /// one. Returns the records evicted, or `None` when nothing can go.
    pub(crate) fn make_room(&self, protect: u8, scratch: &mut Vec<u8>) -> Option<u32> {
        let ring = self.ring;
        let (h, a) = ring.live().filter(|(h, a)| h < a)?;
        let b0 = Inspected::of(ring, h, protect)?;
        if b0.protected == 0 {
            self.note(h, &b0.victims, None);
            self.set(NOTED);
            // Flag it first (readers keep off, adopters back off), check that
            // nobody reopened it since we looked, then evict it.
            if !flag(ring, h, b0.claim) {
                self.set(HELD);
                return None;
            }
            if !unchanged(ring, h, &b0) {
                unflag(ring, h, None);
                self.set(HELD);
                return None;
            }
            mark_evicted(ring, h);
            self.finish(h, 1);
            self.set(HELD);
            return Some(b0.victims.iter().sum::<u64>() as u32);
        }
        let mut span = vec![b0];
        for k in 1..=MAX_SPAN as u64 {
            if h + k >= a {
                return None;
            }
            span.push(Inspected::of(ring, h + k, protect)?);
            if span.iter().all(|b| b.victims.iter().sum::<u64>() == 0) {
                continue;
            }
            let block = ring.geometry().block_size as usize;
            // Free as many leading blocks as the kept records allow: the room
            // left in the last blocks bounds how many (records do not split,
            // so a few more blocks may be needed than the bytes say).
            let kept: usize = span.iter().map(|b| b.kept_bytes).sum();
            let mut room = 0;
            let mut most = 0;
            for f in (1..=k as usize).rev() {
                room += block.saturating_sub(span[f].claim.claimed as usize);
                if room >= kept {
                    most = f;
                    break;
                }
            }
            if let Some(plan) = (most.saturating_sub(PACK_TRIES - 1).max(1)..=most)
                .rev()
                .find_map(|f| pack(&span, f, block, protect))
            {
                return self.compact(h, &span, &plan, protect, scratch);
            }
        }
        None
    }

    /// Rewrites the protected records of `span` (blocks `h ..= h + k`) into
    /// its blocks after the first, as `plan` places them; evicts the rest.
    fn compact(
        &self,
        h: u64,
        span: &[Inspected],
        plan: &Plan,
        protect: u8,
        scratch: &mut Vec<u8>,
    ) -> Option<u32> {
        let ring = self.ring;
        let k = span.len() - 1;
        let mut victims = [0u64; LEVELS];
        let mut moved = [0u64; LEVELS];
        for b in span {
            for l in 0..LEVELS {
                victims[l] += b.victims[l];
                moved[l] += b.moved[l];
            }
        }
        self.note(h, &victims, Some((k, plan.freed, &plan.ends, &moved)));
        self.set(FLAGGED);
        for (i, b) in span.iter().enumerate() {
            if !flag(ring, h + i as u64, b.claim) {
                self.complete(FLAGGED);
                self.set(HELD);
                return None;
            }
        }
        // With every block flagged, none can be reopened any more; one that
        // was reopened (adopted) since we looked makes us give up.
        if !span
            .iter()
            .enumerate()
            .all(|(i, b)| unchanged(ring, h + i as u64, b))
        {
            self.complete(FLAGGED);
            self.set(HELD);
            return None;
        }
        // Copy the protected records out, in order, each stamped for the
        // block it goes to; `plan.dest` says which, in the same order.
        scratch.clear();
        let mut at_of = Vec::with_capacity(plan.dest.len());
        let mut i = 0;
        for (j, b) in span.iter().enumerate() {
            let data = ring.block_data(h + j as u64);
            for &(off, len, sev) in &b.records {
                if sev < protect {
                    continue;
                }
                let (t, _) = plan.dest[i];
                i += 1;
                let at = scratch.len();
                // SAFETY: the record lies inside its block (checked by
                // `ready_record` in `Inspected::of`); the block is flagged, so
                // nobody following the protocol writes it.
                unsafe { copy_shared(data.add(off), placed(len), scratch) };
                scratch[at..at + 8].copy_from_slice(&stamp(h + t as u64, len as u32).to_le_bytes());
                at_of.push(at);
            }
        }
        self.set(MOVING);
        for (i, &(t, dst_off)) in plan.dest.iter().enumerate() {
            let at = at_of[i];
            let n = if i + 1 < at_of.len() {
                at_of[i + 1]
            } else {
                scratch.len()
            } - at;
            let dst = ring.block_data(h + t as u64);
            // SAFETY: `pack` placed the record inside block h + t
            // (`dst_off + n <= block_size`), which is ours while flagged;
            // every record was copied to `scratch` before any is written, so
            // none is read after being overwritten.
            unsafe { std::ptr::copy_nonoverlapping(scratch.as_ptr().add(at), dst.add(dst_off), n) };
        }
        self.set(MOVED);
        self.complete(MOVED);
        self.set(HELD);
        Some(victims.iter().sum::<u64>() as u32)
    }

    /// Writes the note of an eviction of `h` (and, for a merge, where the
    /// kept records go and how many of each level are moved).
    fn note(
        &self,
        h: u64,
        victims: &[u64; LEVELS],
        merge: Option<(usize, usize, &[u32], &[u64; LEVELS])>,
    ) {
        let w = self.ring.words();
        // Relaxed below: published by the Release store of the phase next.
        w.evict_block.store(h, Ordering::Relaxed);
        for (l, v) in victims.iter().enumerate() {
            let now = w.evicted[l].load(Ordering::Relaxed);
            w.evict_victims[l].store(now.wrapping_add(*v), Ordering::Relaxed);
        }
        if let Some((span, freed, ends, moved)) = merge {
            w.evict_span.store(span as u64, Ordering::Relaxed);
            w.evict_freed.store(freed as u64, Ordering::Relaxed);
            for (t, e) in ends.iter().enumerate().take(MAX_SPAN) {
                w.evict_ends[t].store(*e, Ordering::Relaxed);
            }
            for (l, m) in moved.iter().enumerate() {
                let now = w.lost[l].load(Ordering::Relaxed);
                w.evict_lost[l].store(now.wrapping_add(*m), Ordering::Relaxed);
            }
        }
    }
}

impl Drop for Role<'_> {
    fn drop(&mut self) {
        // Release: our note and counters before the next holder reads them.
        self.ring.words().evict_owner.store(0, Ordering::Release);
    }
}

/// What an eviction may do with one block.
struct Inspected {
    claim: Claim,
    /// The block's `reserve` word as inspected (closed): a writer that
    /// reopened it since (an adopter) makes the eviction give it up.
    reserve: u64,
    /// Records the consumer has not taken: (offset, len, severity).
    records: Vec<(usize, usize, u8)>,
    protected: usize,
    kept_bytes: usize,
    victims: [u64; LEVELS],
    moved: [u64; LEVELS],
}

impl Inspected {
    /// `None` unless the consumer has nothing in flight in block `seq` and
    /// every record in it is complete (the block is closed first if open).
    fn of(ring: &Ring, seq: u64, protect: u8) -> Option<Inspected> {
        let d = ring.desc(seq);
        // Acquire (all): pair with the Releases of the claimer and the consumer.
        let claim = Claim::unpack(d.claim.load(Ordering::Acquire));
        let done = done_end(d.done.load(Ordering::Acquire), seq)?;
        if !claim.is(seq) || claim.evicting || claim.evicted || claim.claimed != done {
            return None;
        }
        if crate::sink_marks::SinkMarks::marked_past(d, seq, done) {
            return None;
        }
        let mut r = Reserve::unpack(d.reserve.load(Ordering::Acquire));
        if !r.is(seq) {
            return None;
        }
        if !r.closed {
            // Its owner will claim another.
            d.close(r);
            r = Reserve::unpack(d.reserve.load(Ordering::Acquire));
            if !r.is(seq) || !r.closed {
                return None;
            }
        }
        let data = ring.block_data(seq);
        let mut out = Inspected {
            claim,
            reserve: r.pack(),
            records: Vec::new(),
            protected: 0,
            kept_bytes: 0,
            victims: [0; LEVELS],
            moved: [0; LEVELS],
        };
        let mut off = claim.claimed as usize;
        let end = (r.end as usize).min(ring.geometry().block_size as usize);
        if !off.is_multiple_of(crate::layout::ALIGN) {
            return None; // an overwritten claim word: nothing to trust here
        }
        while off < end {
            // SAFETY: `data` is block `seq`, `off` a multiple of 8 below `end`,
            // which is at most the block size.
            let (len, sev) = unsafe { ready_record(data, off, end, seq)? };
            if len < RECORD_HEADER {
                return None;
            }
            let l = Level::index(sev);
            if sev >= protect {
                out.protected += 1;
                out.kept_bytes += placed(len);
                out.moved[l] += 1;
            } else {
                out.victims[l] += 1;
            }
            out.records.push((off, len, sev));
            off += placed(len);
        }
        Some(out)
    }
}

/// Where compaction puts the protected records of a span.
struct Plan {
    /// Leading blocks of the span left empty (freed).
    freed: usize,
    /// Per protected record, in order: (block index in the span, offset).
    dest: Vec<(usize, usize)>,
    /// Per block `1..=k` of the span: its end once rewritten (for blocks
    /// below `freed`, unused).
    ends: Vec<u32>,
}

/// Places the protected records of `span` into its blocks `freed..=k` (each
/// after what the consumer took from it), in order. `None` when they do not
/// fit.
fn pack(span: &[Inspected], freed: usize, block_size: usize, protect: u8) -> Option<Plan> {
    let k = span.len() - 1;
    let mut t = freed;
    let mut cursor = span[t].claim.claimed as usize;
    let mut plan = Plan {
        freed,
        dest: Vec::new(),
        ends: span[1..].iter().map(|b| b.claim.claimed).collect(),
    };
    for b in span {
        for &(_, len, sev) in &b.records {
            if sev < protect {
                continue;
            }
            let p = placed(len);
            while cursor + p > block_size {
                t += 1;
                if t > k {
                    return None;
                }
                cursor = span[t].claim.claimed as usize;
            }
            plan.dest.push((t, cursor));
            cursor += p;
            plan.ends[t - 1] = cursor as u32;
        }
    }
    Some(plan)
}

/// Whether block `seq`'s `reserve` word is still as inspected (closed, same
/// end): an adopter that reopened it before our flag would write into it.
fn unchanged(ring: &Ring, seq: u64, b: &Inspected) -> bool {
    // SeqCst: the Dekker pair with an adopter (it CASes `reserve`, then
    // looks at the claim word; we CAS the claim word, then look here).
    ring.desc(seq).reserve.load(Ordering::SeqCst) == b.reserve
}

/// Flags block `seq`'s claim word EVICTING, if it is still `c`.
fn flag(ring: &Ring, seq: u64, c: Claim) -> bool {
    let flagged = Claim {
        evicting: true,
        ..c
    };
    // SeqCst (includes AcqRel, as every claim CAS): Acquire orders our later
    // reads and writes of the block after the consumer's last reads of it;
    // SeqCst for the pair with an adopter (see `unchanged`).
    ring.desc(seq)
        .claim
        .compare_exchange(
            c.pack(),
            flagged.pack(),
            Ordering::SeqCst,
            Ordering::Relaxed,
        )
        .is_ok()
}

/// Clears block `seq`'s EVICTING flag (and sets its claimed end to `claimed`,
/// if given), with the next rewrite epoch: a reader that loaded the word
/// before the flag must not find it unchanged (see `Claim` in `crate::block`).
fn unflag(ring: &Ring, seq: u64, claimed: Option<u32>) {
    let d = ring.desc(seq);
    // Acquire: as every load of a claim word.
    let word = d.claim.load(Ordering::Acquire);
    let c = Claim::unpack(word);
    if !c.is(seq) || !c.evicting {
        return;
    }
    let next = Claim {
        epoch: c.next_epoch(),
        ..Claim::at(seq, claimed.unwrap_or(c.claimed))
    };
    // Release: the rewritten block before a reader sees the flag gone.
    let _ = d
        .claim
        .compare_exchange(word, next.pack(), Ordering::Release, Ordering::Relaxed);
}

/// Marks block `seq` (flagged by us) EVICTED.
fn mark_evicted(ring: &Ring, seq: u64) {
    let d = ring.desc(seq);
    // Acquire: as every load of a claim word.
    let word = d.claim.load(Ordering::Acquire);
    let c = Claim::unpack(word);
    if !c.is(seq) || c.evicted {
        return;
    }
    let next = Claim {
        evicting: false,
        evicted: true,
        ..c
    };
    // AcqRel: as every claim CAS.
    let _ = d
        .claim
        .compare_exchange(word, next.pack(), Ordering::AcqRel, Ordering::Relaxed);
}

/// Sets block `seq`'s (closed) reserved end to `end`. A block cut shorter
/// (its records moved out, or a dead evictor's rewrite cut back) keeps old
/// records past its new end, stamped for this very use of the block: they
/// are wiped first, so that a writer adopting the block and reserving there
/// cannot have them read as its own records before it writes them (a
/// reader trusts a stamp at the offset it reads, and these would be
/// records read twice, and its own lost).
fn set_end(ring: &Ring, seq: u64, end: u32) {
    let d = ring.desc(seq);
    let block = ring.geometry().block_size;
    loop {
        // Acquire: as every load of `reserve`.
        let word = d.reserve.load(Ordering::Acquire);
        let r = Reserve::unpack(word);
        if !r.is(seq) || r.end == end {
            return;
        }
        if r.end > end {
            wipe(ring, seq, end, r.end.min(block));
        }
        let next = Reserve {
            end,
            closed: true,
            ..r
        };
        // Release: the rewritten records (and the wiped words) before the
        // end that covers them.
        if d.reserve
            .compare_exchange(word, next.pack(), Ordering::Release, Ordering::Relaxed)
            .is_ok()
        {
            return;
        }
    }
}

/// Zeroes the words of block `seq` in `[from, to)` (every offset a record
/// could start at, so every stamp there). The block is flagged by us: nobody
/// following the protocol reads or writes there (a reader that loaded an
/// older end before the flag may read these words, with atomic loads, and
/// then drops what it read: its claim CAS fails on the rewrite epoch).
fn wipe(ring: &Ring, seq: u64, from: u32, to: u32) {
    let data = ring.block_data(seq);
    let mut off = (from as usize).next_multiple_of(crate::layout::ALIGN);
    while off + 8 <= to as usize {
        // SAFETY: `off + 8 <= to <= block_size`: inside block `seq` of the
        // live mapping; `off` is a multiple of 8 in a page-aligned block.
        // Relaxed: published by the caller's Release CAS of `reserve`.
        unsafe {
            (*(data.add(off) as *const std::sync::atomic::AtomicU64)).store(0, Ordering::Relaxed)
        };
        off += 8;
    }
}

/// Stores `target` into a counter only the role holder writes, unless it is
/// there already.
fn raise(counter: &std::sync::atomic::AtomicU64, target: u64) {
    // Relaxed: single writer (the role holder), ordered by the role.
    if counter.load(Ordering::Relaxed) != target {
        counter.store(target, Ordering::Relaxed);
    }
}

/// Whether a live process holds the eviction role (the consumer asks before
/// it clears a flag nobody holds; see "Impossible shared state" in
/// `crate::consumer`).
pub(crate) fn role_held(ring: &Ring) -> bool {
    // Acquire: as in `Role::take`.
    let holder = ring.words().evict_owner.load(Ordering::Acquire);
    let Some(fd) = ring.fd() else {
        return true;
    };
    holder != 0 && lock::process::alive(fd, (holder >> 32) as u32)
}

/// Clears block `seq`'s EVICTING flag if its claim word is still `word`
/// (the consumer, for a flag that no evictor holds). Returns whether it did.
pub(crate) fn clear_flag(ring: &Ring, seq: u64, word: u64) -> bool {
    let c = Claim::unpack(word);
    if !c.is(seq) || !c.evicting {
        return false;
    }
    let next = Claim {
        epoch: c.next_epoch(),
        ..Claim::at(seq, c.claimed)
    };
    // AcqRel: as every claim CAS.
    ring.desc(seq)
        .claim
        .compare_exchange(word, next.pack(), Ordering::AcqRel, Ordering::Relaxed)
        .is_ok()
}

/// Completes the work of a dead evictor, if there is one (the consumer calls
/// this when a block stays flagged).
pub(crate) fn reap_if_dead(ring: &Ring, fd: i32) {
    // Taking the role completes a dead holder's work; then give it back.
    drop(Role::take(ring, fd));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Batch, Consumer, Emitted, Event, SinkMarks};

    /// A pid that is certainly dead: a child we started and reaped.
    fn dead_pid() -> u32 {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        pid
    }

    fn ring(name: &str) -> (logbus_testkit::TempDir, Ring) {
        crate::small_test_ring(name)
    }

    /// A collector killed after its sink wrote records it had not committed
    /// leaves that sink's marks in the blocks; the next consumer starts from
    /// the committed ends, and until it has read those records again no
    /// eviction may take or rewrite them: an evicted record would be both
    /// written (by the old collector's sink) and counted evicted, and a
    /// record compacted into a marked place would be skipped by the sink as
    /// written before, and counted delivered unwritten.
    #[test]
    #[cfg_attr(miri, ignore = "needs a mapped ring")]
    fn records_a_sink_finished_before_a_restart_are_not_evicted_under_it() {
        let (dir, ring) = ring("marks");
        let mut w = ring.writer().unwrap();
        // INFO records up to INFO's watermark (3 of the 4 blocks).
        let mut info = 0;
        while w.emit(&Event::new(9, &format!("info {info:060}"))).unwrap() != Emitted::Dropped {
            info += 1;
        }
        // The first collector's sink writes them all and marks every block,
        // then the collector dies before committing (no commit, no free).
        let mut first = Consumer::acquire(&ring).unwrap();
        let slot = SinkMarks::assign(&mut first, &["stdout"])[0]
            .clone()
            .unwrap()
            .0;
        let mut b = Batch::new();
        let mut written = Vec::new();
        while first.poll(&mut b, 1000) > 0 {
            for r in b.iter() {
                written.push(r.message().to_string());
                slot.mark(&ring, r.pos());
            }
        }
        assert_eq!(written.len(), info);
        drop(first);
        // The next collector takes its sinks' marks and starts polling: its
        // first poll sees every block (and takes back the dead one's claims)
        // but reads nothing yet.
        let mut second = Consumer::acquire(&ring).unwrap();
        let resume = SinkMarks::assign(&mut second, &["stdout"])[0]
            .clone()
            .unwrap()
            .1;
        assert_eq!(second.poll(&mut b, 0), 0);
        // Protected records now need room.
        // (Block 3 takes a few dozen; the rest need room.)
        for i in 0..100 {
            let _ = w.emit(&Event::new(17, &format!("error {i:060}"))).unwrap();
        }
        // Every record the sink finished before is read again, in its
        // place, and skipped there as finished; nothing the sink did not
        // write sits in a place it marked.
        let mut again = Vec::new();
        while second.poll(&mut b, 1000) > 0 {
            for r in b.iter() {
                if resume.done(r.pos()) {
                    again.push(r.message().to_string());
                }
            }
            second.commit_all();
        }
        assert_eq!(
            again, written,
            "records in the places the sink had finished"
        );
        assert_eq!(ring.stats().total().evicted, 0);
        drop(dir);
    }

    /// An evictor killed in the middle of rewriting a span (phase MOVING):
    /// the next one to need room completes its work. The moved records are
    /// counted lost (as torn), the victims evicted, the head block freed, and
    /// the books balance.
    #[test]
    #[cfg_attr(miri, ignore = "needs a mapped ring")]
    fn an_evictor_killed_while_moving_is_completed_by_the_next() {
        let (dir, ring) = ring("moving");
        let mut w = ring.writer().unwrap();
        // Block 0: ERROR, INFO, ERROR; block 1 gets the rest.
        let mut emitted = [0u64; LEVELS];
        for (i, sev) in [17u8, 9, 17].iter().cycle().take(100).enumerate() {
            let msg = format!("{i:040}");
            if w.emit(&Event::new(*sev, &msg)).unwrap() != Emitted::Dropped {
                emitted[Level::index(*sev)] += 1;
            }
        }
        drop(w);
        let fd = ring.fd().unwrap();
        // What a compaction of blocks 0 and 1 into block 1 writes before it
        // starts moving bytes: its note, the flags, the phase ...
        let b0 = Inspected::of(&ring, 0, 13).unwrap();
        let b1 = Inspected::of(&ring, 1, 13).unwrap();
        let plan = pack(&[b0, b1], 1, 4096, 13);
        let span = [
            Inspected::of(&ring, 0, 13).unwrap(),
            Inspected::of(&ring, 1, 13).unwrap(),
        ];
        let (victims, moved): ([u64; LEVELS], [u64; LEVELS]) = (
            std::array::from_fn(|l| span[0].victims[l] + span[1].victims[l]),
            std::array::from_fn(|l| span[0].moved[l] + span[1].moved[l]),
        );
        let role = Role::take(&ring, fd).unwrap();
        let ends = plan.map_or(vec![4096], |p| p.ends);
        role.note(0, &victims, Some((1, 1, &ends, &moved)));
        assert!(flag(&ring, 0, span[0].claim) && flag(&ring, 1, span[1].claim));
        // ... then it dies in phase MOVING, with block 1 half overwritten.
        let w = ring.words();
        std::mem::forget(role);
        w.evict_owner
            .store((dead_pid() as u64) << 32 | MOVING, Ordering::Release);
        // SAFETY: block 1 is flagged; nobody else writes it.
        unsafe { std::ptr::write_bytes(ring.block_data(1).add(200), 0xAB, 300) };
        // A reader keeps off the flagged blocks ...
        let mut c = Consumer::acquire(&ring).unwrap();
        let mut b = Batch::new();
        assert_eq!(c.poll(&mut b, 100), 0);
        // ... and the next evictor (or the consumer) completes the work.
        drop(Role::take(&ring, fd).unwrap());
        assert_eq!(w.evict_owner.load(Ordering::Relaxed), 0);
        assert_eq!(w.head.load(Ordering::Relaxed), 1, "block 0 is free");
        let s = ring.stats();
        assert_eq!(s.level(Level::Error).torn, moved[Level::Error as usize]);
        assert_eq!(s.level(Level::Info).evicted, victims[Level::Info as usize]);
        assert_eq!(s.unaccounted(&emitted), None, "{s:?}");
        assert_eq!(s.invalid, 0);
        let mut total = 0;
        while c.poll(&mut b, 100) > 0 {
            total += b.len();
            c.commit_all();
        }
        assert_eq!(total as u64, s.total().unread);
        drop(dir);
    }

    /// A compaction that leaves a block shorter than it was keeps the old
    /// records past its new end in memory, stamped for this use of the
    /// block. A new thread's writer adopting the block reserves there: until
    /// it has written its record, the consumer must see nothing complete at
    /// that offset (before the wipe it read the stale record there: a record
    /// delivered twice, or one evicted delivered anyway).
    #[test]
    #[cfg_attr(miri, ignore = "needs a mapped ring")]
    fn a_block_cut_shorter_keeps_no_old_record_past_its_end() {
        let (dir, ring) = ring("cut");
        let mut w = ring.writer().unwrap();
        // One ERROR in four, all records the same size, filling blocks 1
        // and 2 (block 0 of a new ring is never claimed: it starts as an
        // empty block of its own).
        let mut emitted = [0u64; LEVELS];
        let mut per_block = [0usize; 4];
        let mut i = 0;
        loop {
            let sev = if i % 4 == 0 { 17 } else { 9 };
            assert!(matches!(
                w.emit(&Event::new(sev, &format!("{i:060}"))),
                Ok(Emitted::Written { .. })
            ));
            emitted[Level::index(sev)] += 1;
            i += 1;
            let a = ring.live().unwrap().1 as usize;
            per_block[a - 1] += 1;
            if a == 3 && per_block[2] == per_block[1] {
                break;
            }
        }
        drop(w);
        let before = Reserve::unpack(ring.desc(2).reserve.load(Ordering::Acquire));
        // Evict the empty block 0, then compact blocks 1 and 2 into block 2:
        // their ERROR records only.
        let role = Role::take(&ring, ring.fd().unwrap()).unwrap();
        assert_eq!(role.make_room(13, &mut Vec::new()), Some(0));
        assert!(role.make_room(13, &mut Vec::new()).unwrap() > 0);
        drop(role);
        let d = ring.desc(2);
        let word = d.reserve.load(Ordering::Acquire);
        let cut = Reserve::unpack(word);
        assert!(cut.closed && cut.end < before.end, "{cut:?} {before:?}");
        // An adopter reserves one record's room at the new end, and has not
        // written it yet (every record is the same size: block 2's end over
        // its records).
        let size = before.end / per_block[2] as u32;
        let open = Reserve {
            end: cut.end + size,
            ..cut.reopened()
        };
        d.reserve
            .compare_exchange(word, open.pack(), Ordering::SeqCst, Ordering::Relaxed)
            .unwrap();
        let mut c = Consumer::acquire(&ring).unwrap();
        let mut b = Batch::new();
        let mut seen = std::collections::HashSet::new();
        while c.poll(&mut b, 1000) > 0 {
            for r in b.iter() {
                assert!(
                    seen.insert(r.message().to_string()),
                    "{} twice",
                    r.message()
                );
            }
            c.commit_all();
        }
        let s = ring.stats();
        assert_eq!(
            seen.len() as u64 + s.total().evicted,
            emitted.iter().sum::<u64>(),
            "read {} and evicted {} of {emitted:?}",
            seen.len(),
            s.total().evicted
        );
        drop(dir);
    }
}
