//! The consumer side: the single consuming reader and its batches.
//!
//! Exactly one [`Consumer`] may exist per ring at a time, across all processes:
//! the role is the OFD lock on the consumer byte, so a consumer that dies gives
//! it up at once. A consumer reads blocks in sequence order (see
//! `crate::block`), copies complete records out into a [`Batch`], numbers them
//! (its serial numbers, [`crate::RecordRef::end`]) and frees a block only once
//! every record of it is committed with [`Consumer::commit`]. A consumer that
//! restarts resumes at each block's committed end (`done`), so records claimed
//! but not committed by a dead consumer are delivered again.
//!
//! Blocks still being written are read as far as they are complete, every
//! poll: a writer that logs slowly never delays the others. The oldest block
//! is closed by the consumer when it holds up freeing (the ring is an eighth
//! full, or producers wait for space), and a record reserved by a writer that
//! died is counted torn and skipped.
//!
//! # Impossible shared state
//! Any process that may write the ring can overwrite its shared words (see
//! `SECURITY.md`). The consumer knows, in its own memory, where it is
//! (`front`: every block before it was freed by it or an evictor; and the
//! blocks it has seen claimed), so it can tell cursors that cannot be a
//! ring's and set them back:
//! * `head` behind `front` (it never moves back), `alloc` behind the blocks
//!   the consumer has seen claimed (it never moves back either), or the two
//!   not a ring's at all (`alloc` behind `head`, more than the ring's blocks
//!   apart, past `MAX_SEQ`): `head` goes back to `front` (or stays where it
//!   is, if that is between `front` and the blocks seen), and `alloc` to just
//!   past the last block after it whose descriptor is tagged with its own
//!   sequence number (an initialised claim). Writers stop claiming while the
//!   words are not a ring's (`Ring::live`), so nothing races the repair but
//!   another scribble; a claimer between its two CASes whose block falls past
//!   the new `alloc` loses its `init` CAS to the next claimer of that number,
//!   as it would to a take-over, and claims again.
//! * a block flagged EVICTING for [`ABANDON_NS`] while no live process holds
//!   the eviction role (a dead holder's work is completed first): the flag is
//!   cleared (with the next rewrite epoch), so that reading goes on.
//!
//! Each repair is kept for the consumer's owner to report
//! ([`Consumer::take_repairs`]): what was read before it and lost with the
//! overwritten state is not known, and said so.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::block::{done_end, done_word, retag, skipped_stamp, Claim, Owner, Reserve};
use crate::clock::monotonic_ns;
use crate::error::ConsumerError;
use crate::futex;
use crate::layout::*;
use crate::level::{Level, LEVELS};
use crate::lock;
use crate::read::{copy_block, ready_record, space_freed, Batch, Copied};
use crate::ring::{Cursors, Ring};

/// The consumer's view of one block between `head` and `alloc`.
struct BlockState {
    seq: u64,
    /// Everything before this is claimed by us (or skipped).
    claimed: u32,
    /// Everything before this is committed.
    committed: u32,
    /// Records claimed and not yet committed.
    inflight: u32,
    /// Closed, and everything in it claimed or skipped; or evicted.
    read_all: bool,
    /// Since when (monotonic ns) the block has looked stuck: not initialised
    /// by its claimer, or an unstamped record at `claimed`. 0: not stuck.
    stuck_since: u64,
}

/// A claimed record not yet committed.
struct Inflight {
    serial: u64,
    seq: u64,
    end: u32,
    level: u8,
}

/// How long a block may look stuck before the consumer checks whether its
/// writer died (or, for a claim never initialised, takes it over).
const STUCK_NS: u64 = 10_000_000;
/// How long a record of a live writer (or garbage that looks like one) may
/// stay unstamped before it is skipped as invalid: a bound on what a writer
/// stopped for good (SIGSTOP) or a garbage writer can hold up.
const ABANDON_NS: u64 = 2_000_000_000;

/// Longest sleep while a reserved record is not yet stamped: its writer
/// looked for a sleeping consumer before we slept, so it will not wake us.
pub(crate) const IN_FLIGHT_WAIT: Duration = Duration::from_millis(1);

/// Impossible shared state the consumer found and set right (see "Impossible
/// shared state" above). `Display` is one line for an operator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Repair {
    /// `head` and `alloc` were as found, which no ring can have; they are now
    /// as set.
    Cursors {
        /// `head` as found.
        head: u64,
        /// `alloc` as found.
        alloc: u64,
        /// `head` as set.
        now_head: u64,
        /// `alloc` as set.
        now_alloc: u64,
    },
    /// Block `seq` stayed flagged by an evictor that does not exist.
    Flag {
        /// The block's sequence number.
        seq: u64,
    },
}

impl std::fmt::Display for Repair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Repair::Cursors {
                head,
                alloc,
                now_head,
                now_alloc,
            } => write!(
                f,
                "the ring's shared state was overwritten (head {head}, alloc {alloc}: no ring \
                 can have them); set back to head {now_head}, alloc {now_alloc} from the \
                 blocks the consumer can validate (records in overwritten blocks may be lost, \
                 and counters may be wrong)"
            ),
            Repair::Flag { seq } => write!(
                f,
                "block {seq} stayed flagged by an evictor that does not exist (the ring's \
                 shared state was overwritten); flag cleared, reading goes on"
            ),
        }
    }
}

/// Repairs kept for [`Consumer::take_repairs`] at most (the others are only
/// counted).
const REPAIRS_KEPT: usize = 16;

/// The ring's single consuming reader.
///
/// ```
/// # let dir = std::env::temp_dir().join(format!("logbus-doc-c-{}", std::process::id()));
/// # std::fs::create_dir_all(&dir).unwrap();
/// use logbus_ring::{Batch, Consumer, Event, Ring};
/// let ring = Ring::open(dir.join("ring")).unwrap();
/// ring.writer().unwrap().emit(&Event::new(9, "hi")).unwrap();
/// let mut consumer = Consumer::acquire(&ring).unwrap();
/// let mut batch = Batch::new();
/// consumer.poll(&mut batch, 100);
/// assert_eq!(batch.get(0).unwrap().message(), "hi");
/// consumer.commit_all();
/// # std::fs::remove_dir_all(&dir).unwrap();
/// ```
pub struct Consumer {
    ring: Ring,
    fd: i32,
    /// Sequence number of `blocks[0]`.
    front: u64,
    blocks: VecDeque<BlockState>,
    inflight: VecDeque<Inflight>,
    next_serial: u64,
    delivered: [u64; LEVELS],
    /// Impossible state set right and not yet taken (at most [`REPAIRS_KEPT`]),
    /// and how many there were in all.
    repairs: Vec<Repair>,
    repaired: u64,
    /// Garbage records skipped (the ring's `invalid`, of which this consumer
    /// is the only writer).
    invalid: u64,
}

impl Consumer {
    /// Takes the consumer role of `ring`.
    ///
    /// # Errors
    /// [`ConsumerError::Busy`] with the holder's pid while another live process
    /// (or another `Consumer` of this process) holds the role.
    pub fn acquire(ring: &Ring) -> Result<Consumer, ConsumerError> {
        let fd = ring.fd().ok_or(ConsumerError::Forked)?;
        if !ring.is_writable() {
            return Err(ConsumerError::Io(std::io::Error::new(
                std::io::ErrorKind::PermissionDenied,
                "the ring was opened read-only",
            )));
        }
        if !lock::try_lock(fd, LOCK_CONSUMER).map_err(ConsumerError::Io)? {
            return Err(ConsumerError::Busy {
                path: ring.path().to_path_buf(),
                // Relaxed: the pid is only for the message.
                pid: ring.consumer_pid_word().load(Ordering::Relaxed),
            });
        }
        // Handles opened separately have separate descriptions, which the OFD
        // lock excludes; clones of one handle share its description, and this flag.
        // Acquire: pairs with the Release in `Consumer::drop` of a previous
        // consumer of this handle.
        if ring.inner.consumer_taken.swap(true, Ordering::Acquire) {
            return Err(ConsumerError::Busy {
                path: ring.path().to_path_buf(),
                pid: std::process::id(),
            });
        }
        // Relaxed: informational only; the lock is what excludes.
        ring.consumer_pid_word()
            .store(std::process::id(), Ordering::Relaxed);
        let w = ring.words();
        // Acquire: pairs with the previous consumer's (and evictors') Release.
        let front = w.head.load(Ordering::Acquire);
        // Relaxed: counters with one writer (the consumer role, handed over by the lock).
        let delivered = std::array::from_fn(|l| w.delivered[l].load(Ordering::Relaxed));
        Ok(Consumer {
            ring: ring.clone(),
            fd,
            front,
            blocks: VecDeque::new(),
            inflight: VecDeque::new(),
            next_serial: 0,
            delivered,
            repairs: Vec::new(),
            repaired: 0,
            // Relaxed: as `delivered`.
            invalid: w.invalid.load(Ordering::Relaxed),
        })
    }

    /// The ring consumed.
    pub fn ring(&self) -> &Ring {
        &self.ring
    }

    /// A fresh state for block `seq`: resume at its committed end, taking back
    /// whatever a dead consumer had claimed beyond it.
    fn state_for(&self, seq: u64) -> BlockState {
        let d = self.ring.desc(seq);
        // Acquire: pairs with the claimer's Release and a previous consumer's stores.
        let done = done_end(d.done.load(Ordering::Acquire), seq)
            // Overwritten (no committed end is misaligned or past the block):
            // read the block from its start.
            .filter(|&e| (e as usize).is_multiple_of(ALIGN) && e <= self.ring.geometry().block_size)
            .unwrap_or(0);
        let word = d.claim.load(Ordering::Acquire);
        let c = Claim::unpack(word);
        if c.is(seq) && !c.evicting && !c.evicted && c.claimed != done {
            // AcqRel: as every CAS of `claim`; losing to an evictor is fine.
            let _ = d.claim.compare_exchange(
                word,
                Claim::at(seq, done).pack(),
                Ordering::AcqRel,
                Ordering::Relaxed,
            );
        }
        BlockState {
            seq,
            claimed: done,
            committed: done,
            inflight: 0,
            read_all: false,
            stuck_since: 0,
        }
    }

    /// Claims up to `max` complete records into `batch` (cleared first), in
    /// block order. Returns how many. Never blocks.
    pub fn poll(&mut self, batch: &mut Batch, max: usize) -> usize {
        self.poll_within(batch, max, usize::MAX)
    }

    /// As [`poll`](Self::poll), but starts no further block once `batch`
    /// holds `max_bytes` bytes of record bodies or more: a batch holds at
    /// most `max_bytes` plus one block's worth ([`Batch::bytes`]), so that a
    /// reader can bound its memory whatever the records' sizes.
    pub fn poll_within(&mut self, batch: &mut Batch, max: usize, max_bytes: usize) -> usize {
        batch.clear();
        let Some(a) = self.follow_cursors() else {
            return 0;
        };
        let mut now = 0;
        for i in 0..self.blocks.len() {
            if batch.len() >= max || batch.bytes() >= max_bytes {
                break;
            }
            if self.blocks[i].read_all && !self.grew(i) {
                continue;
            }
            if !self.read_block(i, batch, max, &mut now) {
                break;
            }
        }
        self.close_front_if_pinning(a);
        // Blocks finished with nothing in flight (all garbage, all torn, or
        // emptied by commits before they were closed) need no commit.
        self.free_finished();
        batch.len()
    }

    /// Brings this consumer's blocks in line with the ring's cursors: drops
    /// the blocks an evictor freed, adds those claimed since. Returns the
    /// snapshot of `alloc` it used; `None` when the cursors were overwritten
    /// and could not be repaired now.
    fn follow_cursors(&mut self) -> Option<u64> {
        // A snapshot of `alloc` (see `Ring::live` for why its order keeps
        // every writer's order); `head` may have been moved by an evictor.
        let known = self.front.saturating_add(self.blocks.len() as u64);
        let (h, a) = match self.ring.cursors() {
            // `head` never moves back past us, nor `alloc` behind what we saw.
            Cursors::Live(h, a) if h >= self.front && a >= known => (h, a),
            // Still moving after many looks: next poll.
            Cursors::Moving => return None,
            // `None`: overwritten again meanwhile; next poll.
            _ => self.repair_cursors()?,
        };
        // Blocks an evicting producer freed: nothing of ours was in flight
        // there (eviction requires it). (Not one by one: `head` may have been
        // overwritten with a plausible value far ahead.)
        if self.front < h {
            let gone = (h - self.front).min(self.blocks.len() as u64) as usize;
            self.blocks.drain(..gone);
            self.front = h;
        }
        while self.front + (self.blocks.len() as u64) < a {
            let seq = self.front + self.blocks.len() as u64;
            let st = self.state_for(seq);
            self.blocks.push_back(st);
        }
        Some(a)
    }

    /// Reads block `i`'s complete records into `batch` (up to `max` in all),
    /// claims them, and deals with a block that looks stuck. Returns whether
    /// the poll may go on to later blocks (not past a block flagged by an
    /// evictor, nor after losing a claim CAS to one: see step 4 of
    /// `crate::block`).
    fn read_block(&mut self, i: usize, batch: &mut Batch, max: usize, now: &mut u64) -> bool {
        let seq = self.blocks[i].seq;
        let d = self.ring.desc(seq);
        // Acquire: pairs with the claimer's Release (the words it
        // initialised) and with closing CASes.
        let mut r = self.in_block(Reserve::unpack(d.reserve.load(Ordering::Acquire)));
        if !r.is(seq) {
            if self.stuck(i, now) {
                self.take_over(seq);
            }
            return true;
        }
        // Acquire: pairs with an evicting producer's CAS.
        let word = d.claim.load(Ordering::Acquire);
        let c = Claim::unpack(word);
        if c.is(seq) && c.evicting {
            // Later blocks wait, so that no writer's order breaks.
            self.flagged(i, word, now);
            return false;
        }
        if c.is(seq) && c.evicted {
            let st = &mut self.blocks[i];
            st.read_all = true;
            st.claimed = st.committed;
            return true;
        }
        // The end to copy up to, read again after the claim word: a
        // compaction that flagged, rewrote (maybe shortening the block)
        // and let go of the block after our first look set the end before
        // letting go (Release), so this Acquire load, after the claim
        // load that saw it let go, sees the new end; the stale records
        // behind it are never copied. One that lets go after our claim
        // load changes the word's epoch, and our claim CAS below fails.
        r = self.in_block(Reserve::unpack(d.reserve.load(Ordering::Acquire)));
        if !r.is(seq) {
            return true;
        }
        let st = &self.blocks[i];
        if !c.is(seq) || c.claimed != st.claimed {
            // Somebody who does not follow the protocol wrote it: put our
            // view back (AcqRel, as every claim CAS).
            let _ = d.claim.compare_exchange(
                word,
                Claim::at(seq, st.claimed).pack(),
                Ordering::AcqRel,
                Ordering::Relaxed,
            );
            return true;
        }
        let Some(got) = self.copy_and_claim(i, word, r.end, batch, max) else {
            return false;
        };
        if got.blocked && batch.len() < max {
            if self.stuck(i, now) {
                r = self.skip_stuck(i, r, now);
            }
        } else {
            self.blocks[i].stuck_since = 0;
        }
        let st = &mut self.blocks[i];
        if r.closed && st.claimed >= r.end {
            st.read_all = true;
        }
        true
    }

    /// Block `i` is flagged by an evictor (its claim word is `word`). A flag
    /// that stays means its evictor may have died: complete its work; and
    /// clear a flag nobody holds (overwritten state).
    fn flagged(&mut self, i: usize, word: u64, now: &mut u64) {
        if !self.stuck(i, now) {
            return;
        }
        let seq = self.blocks[i].seq;
        crate::evict::reap_if_dead(&self.ring, self.fd);
        if *now - self.blocks[i].stuck_since >= ABANDON_NS
            && !crate::evict::role_held(&self.ring)
            && crate::evict::clear_flag(&self.ring, seq, word)
        {
            self.blocks[i].stuck_since = 0;
            self.repaired(Repair::Flag { seq });
        }
    }

    /// Copies block `i`'s complete records up to `end` into `batch` and
    /// claims them with a CAS of its claim word from `word` (step 4 of
    /// `crate::block`). `None` when the CAS lost to an evictor: the copies
    /// are dropped and the poll stops.
    fn copy_and_claim(
        &mut self,
        i: usize,
        word: u64,
        end: u32,
        batch: &mut Batch,
        max: usize,
    ) -> Option<Copied> {
        let d = self.ring.desc(self.blocks[i].seq);
        let mark = batch.mark();
        let mut serial = self.next_serial;
        let seq = self.blocks[i].seq;
        let st = &self.blocks[i];
        let got = copy_block(
            &self.ring,
            seq,
            st.claimed,
            end,
            max - batch.len(),
            batch,
            &mut serial,
        );
        if got.reached > st.claimed {
            let next = Claim::at(seq, got.reached);
            // AcqRel: Release keeps our copies before the claim becomes
            // visible; the CAS fails if an evicting producer flagged the
            // block meanwhile, and then the copies may be torn: drop them.
            // And stop this poll, as for a block found flagged: reading
            // later blocks now could deliver a writer's newer records
            // before its older ones still unread here, which the evictor
            // may then move into a block after them.
            if d.claim
                .compare_exchange(word, next.pack(), Ordering::AcqRel, Ordering::Relaxed)
                .is_err()
            {
                batch.rollback(mark);
                return None;
            }
            self.next_serial = serial;
            let st = &mut self.blocks[i];
            for e in &batch.entries[mark.1..] {
                self.inflight.push_back(Inflight {
                    serial: e.serial,
                    seq,
                    end: e.end,
                    level: Level::index(e.hdr.severity) as u8,
                });
                st.inflight += 1;
            }
            st.claimed = got.reached;
            if got.invalid > 0 {
                self.count_invalid(got.invalid);
            }
        }
        Some(got)
    }

    /// `head` and `alloc` cannot be the ring's (see "Impossible shared state"):
    /// sets them back from what this consumer knows and the descriptors it
    /// can validate. Returns `(head, alloc)` as set, or `None` when they were
    /// overwritten again meanwhile.
    #[cold]
    fn repair_cursors(&mut self) -> Option<(u64, u64)> {
        let w = self.ring.words();
        let n = self.ring.geometry().blocks as u64;
        // Acquire: as in `Ring::live`.
        let found = (
            w.head.load(Ordering::Acquire),
            w.alloc.load(Ordering::Acquire),
        );
        if self.front > crate::block::MAX_SEQ - n {
            // Our own start was taken from an overwritten `head`: start
            // again from 0 (blocks of the old numbering are then foreign).
            self.front = 0;
            self.blocks.clear();
        }
        let known = self.front + self.blocks.len() as u64;
        let head = if (self.front..=known).contains(&found.0) {
            found.0
        } else {
            self.front
        };
        // The blocks claimed after those we know, as their descriptors say:
        // one is tagged with its sequence number once its claimer initialised it.
        let mut alloc = known.max(head);
        while alloc < head + n
            // Acquire: as every load of `reserve`.
            && Reserve::unpack(self.ring.desc(alloc).reserve.load(Ordering::Acquire)).is(alloc)
        {
            alloc += 1;
        }
        // SeqCst: as every other change of these words (claimers' CAS of
        // `alloc`, SYNC POINT B on `head`). CAS from the values found, so
        // that a change made since (another overwrite) is not hidden.
        let _ = w
            .head
            .compare_exchange(found.0, head, Ordering::SeqCst, Ordering::Relaxed);
        let _ = w
            .alloc
            .compare_exchange(found.1, alloc, Ordering::SeqCst, Ordering::Relaxed);
        let live = self
            .ring
            .live()
            .filter(|&(h, a)| h >= self.front && a >= known)?;
        // Relaxed: informational (see `acquire`); overwritten with the rest.
        self.ring
            .consumer_pid_word()
            .store(std::process::id(), Ordering::Relaxed);
        self.repaired(Repair::Cursors {
            head: found.0,
            alloc: found.1,
            now_head: live.0,
            now_alloc: live.1,
        });
        Some(live)
    }

    /// Counts garbage records skipped. The consumer keeps its own copy and
    /// stores it (as for `delivered`), so that an overwritten counter is set
    /// right by the next count.
    fn count_invalid(&mut self, n: u64) {
        self.invalid = self.invalid.wrapping_add(n);
        // Relaxed: a counter with one writer (the consumer).
        self.ring
            .words()
            .invalid
            .store(self.invalid, Ordering::Relaxed);
    }

    /// `r` with its end inside the block: an overwritten word may say more,
    /// and a block's reading must end at the block's end (where a block
    /// "read to its end" is freed).
    #[inline]
    fn in_block(&self, mut r: Reserve) -> Reserve {
        r.end = r.end.min(self.ring.geometry().block_size);
        r
    }

    fn repaired(&mut self, repair: Repair) {
        self.repaired += 1;
        if self.repairs.len() < REPAIRS_KEPT {
            self.repairs.push(repair);
        }
    }

    /// The impossible shared state this consumer found and set right since
    /// the last call (at most 16; [`Consumer::repaired`] counts them all).
    /// A collector reports each in one line.
    pub fn take_repairs(&mut self) -> Vec<Repair> {
        std::mem::take(&mut self.repairs)
    }

    /// How many repairs this consumer has made in all.
    pub fn repaired_total(&self) -> u64 {
        self.repaired
    }

    /// For a block read to its end: whether an evicting producer has since
    /// moved kept records into it (its end grew), so it must be read again.
    fn grew(&mut self, i: usize) -> bool {
        let st = &self.blocks[i];
        let d = self.ring.desc(st.seq);
        // Acquire (both): pair with the evictor's Releases (flag gone, end set).
        let c = Claim::unpack(d.claim.load(Ordering::Acquire));
        if !c.is(st.seq) || c.evicted {
            return false;
        }
        let r = self.in_block(Reserve::unpack(d.reserve.load(Ordering::Acquire)));
        // Reopened by an adopting writer, or records moved in by an evictor.
        let grew = c.evicting || (r.is(st.seq) && (r.end > st.claimed || !r.closed));
        if grew {
            self.blocks[i].read_all = false;
        }
        grew
    }

    /// Whether block `i` has looked stuck for [`STUCK_NS`] (starting the
    /// clock if it just started to).
    fn stuck(&mut self, i: usize, now: &mut u64) -> bool {
        if *now == 0 {
            *now = monotonic_ns();
        }
        let st = &mut self.blocks[i];
        if st.stuck_since == 0 {
            st.stuck_since = *now;
            return false;
        }
        *now - st.stuck_since >= STUCK_NS
    }

    /// A block claimed (its sequence number handed out) but never initialised:
    /// its claimer died between its CASes, or is very slow. Take it over
    /// as a closed, empty block; a live claimer then loses its CAS.
    fn take_over(&mut self, seq: u64) {
        let d = self.ring.desc(seq);
        // Acquire: as in `poll`.
        let cur = d.reserve.load(Ordering::Acquire);
        if Reserve::unpack(cur).is(seq) {
            return;
        }
        // Each word by CAS, keeping what the claimer may have initialised
        // already (its owner word names it: nothing of it is in flight in
        // a closed, empty block). From any other tag: the words of a
        // scribbled descriptor are set right too. Published by the Release
        // of the CAS of `reserve` below.
        let _ = retag(
            &d.owner,
            seq,
            None,
            Owner {
                seq: seq as u32,
                opens: 0,
                pid: 0,
            }
            .pack(),
            true,
        );
        let _ = retag(&d.claim, seq, None, Claim::at(seq, 0).pack(), true);
        let _ = retag(&d.done, seq, None, done_word(seq, 0), true);
        let closed = Reserve::open(seq).closed();
        // AcqRel: arbitrates with the claimer's own initialising CAS.
        let _ = d
            .reserve
            .compare_exchange(cur, closed.pack(), Ordering::AcqRel, Ordering::Relaxed);
    }

    /// Block `i` has had an unstamped record at `claimed` for a while. If its
    /// writer is dead (or it has been far too long) close the block and skip
    /// the record: counted torn (dead writer) or invalid (anything else).
    /// Returns the block's `reserve` as it is afterwards.
    fn skip_stuck(&mut self, i: usize, r: Reserve, now: &mut u64) -> Reserve {
        let seq = self.blocks[i].seq;
        let d = self.ring.desc(seq);
        // The writer of the opening the record was reserved in. Acquire: the
        // owner word was set before that opening (claim or reopening) was
        // published, and `r` was loaded with Acquire. A word naming another
        // opening: an adoption under way (the record's writer is still the
        // owner we cannot see yet, or the block is being reopened after
        // it): judge at the next poll.
        let owner = Owner::unpack(d.owner.load(Ordering::Acquire)).of(r);
        let dead = owner.is_some_and(|pid| !lock::process::alive(self.fd, pid));
        let abandoned = *now - self.blocks[i].stuck_since >= ABANDON_NS;
        if !dead && !abandoned {
            return r;
        }
        if !r.closed {
            // The owner cannot reserve more. (The word as it is: `r` may have
            // had its end brought into the block.) Acquire: as in `poll`.
            let raw = d.reserve.load(Ordering::Acquire);
            let was = Reserve::unpack(raw);
            if was.is(seq) && !was.closed {
                // The word itself, not `was.pack()`: an overwritten word may
                // have bits no `Reserve` keeps, and would never be closed.
                // AcqRel: as every CAS of `reserve` (see `BlockDesc::close`).
                let _ = d.reserve.compare_exchange(
                    raw,
                    was.closed().pack(),
                    Ordering::AcqRel,
                    Ordering::Relaxed,
                );
            }
        }
        // Acquire: as in `poll`.
        let r = self.in_block(Reserve::unpack(d.reserve.load(Ordering::Acquire)));
        let st = &self.blocks[i];
        if !r.is(seq) || !r.closed || r.end <= st.claimed {
            return r;
        }
        // Look once more: the record may have been stamped just now.
        let data = self.ring.block_data(seq);
        // A garbage `reserve` may hand out more than the block holds.
        let end = r.end.min(self.ring.geometry().block_size) as usize;
        // SAFETY: `data` is block `seq`, `end` at most the block size.
        if unsafe { ready_record(data, st.claimed as usize, end, seq) }.is_some() {
            return r;
        }
        // The word as it is (its rewrite epoch is whatever evictions left),
        // if it is still ours at `claimed`.
        // Acquire: as every load of a claim word.
        let word = d.claim.load(Ordering::Acquire);
        let c = Claim::unpack(word);
        if !c.is(seq) || c.evicting || c.evicted || c.claimed != st.claimed {
            return r;
        }
        // AcqRel: as every claim CAS; loses only to an evicting producer.
        if d.claim
            .compare_exchange(
                word,
                Claim::at(seq, r.end).pack(),
                Ordering::AcqRel,
                Ordering::Relaxed,
            )
            .is_err()
        {
            return r;
        }
        let at = st.claimed;
        let w = self.ring.words();
        if dead {
            // Only the last reservation of a block can be in flight, and its
            // level is in `reserve`. Relaxed: a statistics counter.
            w.torn[r.level as usize % LEVELS].fetch_add(1, Ordering::Relaxed);
        } else {
            self.count_invalid(1);
        }
        // Counted: say so in the record's place, so that a consumer starting
        // again before it (at `done`, after we die) skips it uncounted.
        // Counted first: a death between the two counts it twice, never
        // not at all.
        // SAFETY: `at` is a multiple of 8 (every claimed end is) and
        // `at + 8 <= r.end <= block_size`: inside block `seq`, 8-aligned.
        // The record's writer is dead (or gone for `ABANDON_NS`).
        // Release: pairs with the Acquire in `read::skipped_at`.
        unsafe {
            (*(data.add(at as usize) as *const std::sync::atomic::AtomicU64))
                .store(skipped_stamp(seq, r.end - at), Ordering::Release)
        };
        let st = &mut self.blocks[i];
        st.claimed = r.end;
        st.stuck_since = 0;
        r
    }

    /// Closes the oldest block if it is all read but still open and holds up
    /// freeing while the ring fills (an eighth of its blocks in use) or
    /// producers wait for space. Its writer claims a new block next time.
    fn close_front_if_pinning(&mut self, alloc: u64) {
        let n = self.ring.geometry().blocks as u64;
        let Some(st) = self.blocks.front() else {
            return;
        };
        if st.read_all || alloc <= st.seq + 1 {
            return;
        }
        let w = self.ring.words();
        // Relaxed: a hint; a missed waiter is woken by the next free anyway.
        let waiting = w.waiters.load(Ordering::Relaxed) > 0;
        if (alloc - st.seq) * 8 < n && !waiting {
            return;
        }
        let d = self.ring.desc(st.seq);
        // Acquire: as in `poll`.
        let r = Reserve::unpack(d.reserve.load(Ordering::Acquire));
        if r.is(st.seq) && !r.closed && r.end == st.claimed {
            // Fails if the owner reserved meanwhile (we look again next poll).
            d.close(r);
        }
    }

    /// Commits every record claimed before `end` (a [`RecordRef::end`]): counts
    /// them delivered and frees the blocks they leave finished.
    pub fn commit(&mut self, end: u64) {
        let mut touched = false;
        while let Some(f) = self.inflight.front() {
            if f.serial >= end {
                break;
            }
            let f = self.inflight.pop_front().expect("front exists");
            let d = &mut self.delivered[f.level as usize];
            *d = d.wrapping_add(1);
            touched = true;
            if f.seq >= self.front {
                if let Some(st) = self.blocks.get_mut((f.seq - self.front) as usize) {
                    st.inflight = st.inflight.saturating_sub(1);
                    st.committed = st.committed.max(f.end);
                    if st.inflight == 0 {
                        // Garbage and torn records we skipped need nobody's approval.
                        st.committed = st.claimed;
                    }
                    let d = self.ring.desc(st.seq);
                    // Release: an evictor comparing `claim` with `done` (Acquire)
                    // sees our commits in order.
                    d.done
                        .store(done_word(st.seq, st.committed), Ordering::Release);
                }
            }
        }
        let w = self.ring.words();
        if touched {
            for l in 0..LEVELS {
                // Relaxed: counters with one writer (this consumer).
                w.delivered[l].store(self.delivered[l], Ordering::Relaxed);
            }
        }
        self.free_finished();
    }

    /// Moves `head` past every leading block that is read and committed.
    fn free_finished(&mut self) {
        let w = self.ring.words();
        let mut freed = false;
        while let Some(st) = self.blocks.front() {
            if !st.read_all || st.inflight > 0 {
                break;
            }
            let seq = st.seq;
            let claimed = st.claimed;
            let d = self.ring.desc(seq);
            // Release: as in `commit`.
            d.done.store(done_word(seq, claimed), Ordering::Release);
            // Seal it: its claim word says EVICTED (nothing left to read), so
            // that an evicting producer can no longer flag it and move kept
            // records into it between our look and the head CAS. Fails when
            // one did first: then it is not finished after all.
            // Acquire: as every load of a claim word.
            let word = d.claim.load(Ordering::Acquire);
            let c = Claim::unpack(word);
            if c.is(seq) && !c.evicted {
                let sealed = Claim {
                    evicted: true,
                    ..Claim::at(seq, claimed)
                };
                // SeqCst (includes AcqRel, as every claim CAS): see the
                // reserve load below.
                if c.evicting
                    || c.claimed != claimed
                    || d.claim
                        .compare_exchange(word, sealed.pack(), Ordering::SeqCst, Ordering::Relaxed)
                        .is_err()
                {
                    self.blocks[0].read_all = false;
                    break;
                }
                // An eviction that finished just before the seal may have
                // moved records in: then unseal (nobody else touches a sealed
                // word) and read them first. Acquire: pairs with its Release.
                // SeqCst: the other half of the Dekker pair with a writer
                // adopting the block (`Writer::adopt`), which reopens it.
                let r = self.in_block(Reserve::unpack(d.reserve.load(Ordering::SeqCst)));
                if r.is(seq) && (r.end > claimed || !r.closed) {
                    // AcqRel: as every claim CAS.
                    let _ = d.claim.compare_exchange(
                        sealed.pack(),
                        Claim::at(seq, claimed).pack(),
                        Ordering::AcqRel,
                        Ordering::Relaxed,
                    );
                    self.blocks[0].read_all = false;
                    break;
                }
            }
            // SeqCst (includes Release, SYNC POINT B): our reads of the block
            // happen before a claimer (Acquire load of `head`) reuses it; and
            // it precedes the `waiters` load in `space_freed`.
            let _ = w
                .head
                .compare_exchange(seq, seq + 1, Ordering::SeqCst, Ordering::Relaxed);
            self.blocks.pop_front();
            self.front += 1;
            freed = true;
        }
        if freed {
            space_freed(&self.ring);
        }
    }

    /// Commits everything claimed so far.
    pub fn commit_all(&mut self) {
        let end = self.next_serial;
        self.commit(end);
    }

    /// Whether records are claimed but not committed.
    pub fn has_inflight(&self) -> bool {
        !self.inflight.is_empty()
    }

    /// Sleeps until a producer writes something new, or `timeout` passes
    /// (`None`: as long as it takes). Returns at once if there is already
    /// something to read. While a record it can see is reserved but not yet
    /// complete it sleeps at most a millisecond at a time (its writer may have
    /// looked before this consumer announced its sleep).
    pub fn wait(&mut self, timeout: Option<Duration>) {
        let (work, in_flight) = self.begin_sleep();
        if !work {
            let t = if in_flight {
                Some(timeout.map_or(IN_FLIGHT_WAIT, |t| t.min(IN_FLIGHT_WAIT)))
            } else {
                timeout
            };
            futex::wait(&self.ring.words().sleeping, 1, t);
        }
        self.end_sleep();
    }

    /// The first half of a sleep: says "asleep" in the ring, then looks once
    /// more. Returns (something to read, a reserved record not yet complete).
    /// Sleep on `sleeping` (expected 1) only when there is nothing to read;
    /// [`end_sleep`](Self::end_sleep) after, whatever happened.
    pub(crate) fn begin_sleep(&self) -> (bool, bool) {
        // SeqCst: the Dekker pair with writers (see "Waking the consumer" in
        // `crate::block`): store, then look.
        self.ring.words().sleeping.store(1, Ordering::SeqCst);
        self.look()
    }

    /// The second half of a sleep: awake again.
    pub(crate) fn end_sleep(&self) {
        // SeqCst: as every access to `sleeping`.
        self.ring.words().sleeping.store(0, Ordering::SeqCst);
    }

    /// Whether there is nothing left to read: nothing published and no record
    /// reserved but not yet complete (a writer still writing it, or one that
    /// died doing so: the next polls tell). A ring being left is drained until
    /// this holds.
    pub fn is_drained(&self) -> bool {
        self.look() == (false, false)
    }

    /// The futex word writers wake.
    pub(crate) fn sleep_word(&self) -> &std::sync::atomic::AtomicU32 {
        &self.ring.words().sleeping
    }

    /// (something new to read, a reserved record not yet complete)
    fn look(&self) -> (bool, bool) {
        let w = self.ring.words();
        // SeqCst: see `wait`.
        let a = w.alloc.load(Ordering::SeqCst);
        let known = self.front + self.blocks.len() as u64;
        if a > known {
            return (true, false);
        }
        // Cursors no ring can have (overwritten): a poll sets them right, so
        // do not sleep on them. SeqCst: as above.
        let h = w.head.load(Ordering::SeqCst);
        if a < known || h < self.front || a < h {
            return (true, false);
        }
        let mut in_flight = false;
        for st in &self.blocks {
            if st.read_all {
                continue;
            }
            // SeqCst: see `wait`. The end is kept inside the block (an
            // overwritten word may say more).
            let r = self.in_block(Reserve::unpack(
                self.ring.desc(st.seq).reserve.load(Ordering::SeqCst),
            ));
            if !r.is(st.seq) {
                in_flight = true;
                continue;
            }
            if r.end > st.claimed {
                let data = self.ring.block_data(st.seq);
                // A garbage `reserve` may hand out more than the block holds.
                let end = r.end.min(self.ring.geometry().block_size) as usize;
                // SAFETY: `data` is block `seq`, `end` at most the block size.
                if unsafe { ready_record(data, st.claimed as usize, end, st.seq) }.is_some() {
                    return (true, false);
                }
                in_flight = true;
            }
            if r.closed && r.end <= st.claimed {
                return (true, false); // can be finished and freed
            }
        }
        (false, in_flight)
    }
}

impl Ring {
    /// Wakes this ring's consumer if it sleeps in [`Consumer::wait`] (for a
    /// signal handler's thread, say). Producers do this by themselves.
    pub fn wake_consumer(&self) {
        let w = self.words();
        // SeqCst: as every access to `sleeping`.
        if w.sleeping
            .compare_exchange(1, 0, Ordering::SeqCst, Ordering::Relaxed)
            .is_ok()
        {
            futex::wake(&w.sleeping, i32::MAX);
        }
    }
}

impl Drop for Consumer {
    fn drop(&mut self) {
        if self.ring.fd() == Some(self.fd) {
            // Relaxed: informational; Release on the flag below hands the role
            // back inside this process, the unlock across processes.
            self.ring.consumer_pid_word().store(0, Ordering::Relaxed);
            self.ring
                .inner
                .consumer_taken
                .store(false, Ordering::Release);
            lock::unlock(self.fd, LOCK_CONSUMER);
        }
    }
}
