//! The consumer side: the single consuming reader, batches, and peeking readers.
//!
//! Exactly one [`Consumer`] may exist per ring at a time, across all processes:
//! the role is the OFD lock on the consumer byte, so a consumer that dies gives
//! it up at once. A consumer claims records lane by lane (see `src/lane.rs`
//! for the protocol), hands them out in a [`Batch`], and moves each lane's
//! committed `head` only when told with [`Consumer::commit`]: a consumer that
//! restarts resumes at the committed heads, so records claimed but not committed
//! by a dead consumer are delivered again.
//!
//! A [`Peeker`] reads the unread records without claiming anything; any number
//! may run next to the consumer.

use std::collections::VecDeque;
use std::sync::atomic::{fence, Ordering};

use crate::cursor::Cursor;
use crate::error::ConsumerError;
use crate::lane::{reap, LaneWords};
use crate::layout::*;
use crate::level::{Level, LEVELS};
use crate::lock;
use crate::record::{copy_shared, plausible, read_header, validate, RecordRef};
use crate::ring::Ring;

/// Records copied out of the ring. Reused across polls, so that a steady-state
/// consumer allocates nothing.
#[derive(Default)]
pub struct Batch {
    buf: Vec<u8>,
    entries: Vec<Entry>,
    lanes: u32,
    /// Where each body is copied and validated before it joins `buf` (see
    /// `copy_lane`).
    scratch: Vec<u8>,
}

#[derive(Clone, Copy)]
struct Entry {
    hdr: RecordHeader,
    off: usize,
    len: usize,
    lane: u16,
    end: u64,
}

impl Batch {
    /// An empty batch.
    pub fn new() -> Batch {
        Batch::default()
    }

    /// Number of records.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Forgets all records (keeps the memory).
    pub fn clear(&mut self) {
        self.buf.clear();
        self.entries.clear();
    }

    /// The `i`-th record.
    pub fn get(&self, i: usize) -> Option<RecordRef<'_>> {
        let e = self.entries.get(i)?;
        Some(RecordRef {
            hdr: &e.hdr,
            body: &self.buf[e.off..e.off + e.len],
            lane: e.lane,
            lanes: self.lanes,
            end: e.end,
        })
    }

    /// The records, lane by lane, each lane in emit order.
    pub fn iter(&self) -> impl Iterator<Item = RecordRef<'_>> + '_ {
        (0..self.entries.len()).filter_map(move |i| self.get(i))
    }

    /// Sorts the records by time, keeping each lane's records in emit order even
    /// if its clock stepped back (a merge of the per-lane sequences).
    pub fn sort_by_time(&mut self) {
        // Per-lane runs are contiguous and in order; a stable sort on a key that
        // is monotone inside each run would be enough, but clocks step, so make
        // the key monotone per lane first: the running maximum of its times.
        let mut keys: Vec<(u64, usize)> = Vec::with_capacity(self.entries.len());
        let mut last_lane = u16::MAX;
        let mut running = 0u64;
        for (i, e) in self.entries.iter().enumerate() {
            if e.lane != last_lane {
                last_lane = e.lane;
                running = 0;
            }
            running = running.max(e.hdr.time_ns);
            keys.push((running, i));
        }
        keys.sort_by_key(|&(k, _)| k);
        self.entries = keys.into_iter().map(|(_, i)| self.entries[i]).collect();
    }

    fn mark(&self) -> (usize, usize) {
        (self.buf.len(), self.entries.len())
    }

    fn rollback(&mut self, mark: (usize, usize)) {
        self.buf.truncate(mark.0);
        self.entries.truncate(mark.1);
    }
}

/// How one lane looked to a reader.
struct LaneView {
    tail: u64,
    word: u64,
    cursor: Cursor,
}

/// (Orderings below: the delivered counters are loaded Relaxed because this
/// consumer is their only writer; a previous consumer's last stores were
/// ordered before ours by the consumer lock hand-over.)
fn view(ring: &Ring, w: &LaneWords<'_>) -> Option<LaneView> {
    // Acquire pairs with the producer's Release store of the tail (SYNC POINT A).
    let tail = w.tail.load(Ordering::Acquire);
    // Acquire pairs with the CASes of the consumer and of an evicting producer.
    let word = w.cursor.load(Ordering::Acquire);
    let cursor = Cursor::unpack(word, tail, ring.geometry().slots_per_lane as u64)?;
    Some(LaneView { tail, word, cursor })
}

/// Copies the records of `[from, to)` of `lane` into `batch`. Returns the
/// position reached (where to claim up to) and the count of garbage records.
/// Each record copied is validated; garbage is skipped (to the next plausible
/// record start, or to `to` when its length is not trustworthy).
fn copy_lane(
    ring: &Ring,
    lane: u32,
    from: u64,
    to: u64,
    max: usize,
    batch: &mut Batch,
) -> (u64, u64) {
    let geo = ring.geometry();
    let slots = geo.slots_per_lane as u64;
    let slot = geo.slot_size as usize;
    let data = ring.lane_data(lane);
    let mut pos = from;
    let mut invalid = 0;
    let mut taken = 0;
    while pos < to && taken < max {
        let index = pos & (slots - 1);
        // SAFETY: slot `index` is inside lane `lane` of the mapping and 64-aligned
        // (slot sizes are multiples of 64); a header is 64 bytes.
        let hdr = unsafe { read_header(data.add(index as usize * slot)) };
        let room = (to - pos).min(slots - index);
        if !plausible(&hdr, pos, slot, room) {
            invalid += 1;
            pos = to;
            break;
        }
        let n = slots_for(hdr.len as usize, slot);
        if hdr.flags & flags::PAD != 0 && hdr.severity == 0 {
            pos += n;
            continue;
        }
        let body = hdr.len as usize - RECORD_HEADER;
        // The body goes to the batch's scratch buffer first, is validated
        // there, then appended. Validating in place was a third of the
        // reader's time: validation reads at unaligned offsets just after the
        // copy's 8-byte stores (no store forwarding), and the batch's lines,
        // last read by a sink thread on another core, take long to own again.
        // The scratch buffer (one record) stays in this core's cache.
        batch.scratch.clear();
        // SAFETY: the record's `n` slots lie inside the lane (`index + n <= slots`,
        // checked by `plausible` through `room`), so its body does too, and
        // `RECORD_HEADER` keeps the body 8-aligned.
        unsafe {
            copy_shared(
                data.add(index as usize * slot + RECORD_HEADER),
                body,
                &mut batch.scratch,
            )
        };
        if validate(&hdr, &batch.scratch) {
            let off = batch.buf.len();
            batch.buf.extend_from_slice(&batch.scratch);
            batch.entries.push(Entry {
                hdr,
                off,
                len: body,
                lane: lane as u16,
                end: pos + n,
            });
            taken += 1;
        } else {
            invalid += 1;
        }
        pos += n;
    }
    (pos, invalid)
}

struct LaneState {
    /// Claimed records not yet committed: (end position, level).
    inflight: VecDeque<(u64, u8)>,
    /// Everything before this is claimed by us.
    claimed: u64,
    /// Everything before this is committed.
    committed: u64,
    delivered: [u64; LEVELS],
    /// Consecutive polls that found the lane flagged EVICTING.
    flagged_polls: u32,
}

/// Polls of a lane still flagged EVICTING after which the consumer checks
/// whether its producer died mid-move.
const STUCK_POLLS: u32 = 4096;

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
    lanes: Vec<LaneState>,
    next_lane: usize,
    /// Lanes that used their whole share in a poll's first pass (reused).
    busy: Vec<u32>,
}

impl Consumer {
    /// Takes the consumer role of `ring`.
    ///
    /// # Errors
    /// [`ConsumerError::Busy`] with the holder's pid while another live process
    /// (or another `Consumer` of this process) holds the role.
    pub fn acquire(ring: &Ring) -> Result<Consumer, ConsumerError> {
        let fd = ring.fd().ok_or(ConsumerError::Forked)?;
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
        let mut lanes = Vec::new();
        for lane in 0..ring.geometry().lanes {
            let w = LaneWords::new(ring, lane);
            // Resume at the committed head: whatever a dead consumer claimed but
            // did not commit is read again.
            let (head, delivered) = loop {
                match view(ring, &w) {
                    Some(v) if v.cursor.evicting => {
                        // The lane's producer is moving records; it (or the
                        // reaper, if it died) clears the flag. Start at head.
                        break (
                            v.cursor.head,
                            std::array::from_fn(|l| {
                                w.counter(LANE_DELIVERED, l).load(Ordering::Relaxed)
                            }),
                        );
                    }
                    Some(v) => {
                        let reset = Cursor::at(v.cursor.head, v.cursor.head);
                        // AcqRel: arbitrates with an evicting producer's CAS.
                        if w.cursor
                            .compare_exchange(
                                v.word,
                                reset.pack(),
                                Ordering::AcqRel,
                                Ordering::Relaxed,
                            )
                            .is_ok()
                        {
                            break (
                                v.cursor.head,
                                std::array::from_fn(|l| {
                                    w.counter(LANE_DELIVERED, l).load(Ordering::Relaxed)
                                }),
                            );
                        }
                    }
                    None => {
                        if let Some(t) = resync(ring, &w) {
                            break (
                                t,
                                std::array::from_fn(|l| {
                                    w.counter(LANE_DELIVERED, l).load(Ordering::Relaxed)
                                }),
                            );
                        }
                    }
                }
            };
            lanes.push(LaneState {
                inflight: VecDeque::new(),
                claimed: head,
                committed: head,
                delivered,
                flagged_polls: 0,
            });
        }
        Ok(Consumer {
            ring: ring.clone(),
            fd,
            lanes,
            next_lane: 0,
            busy: Vec::new(),
        })
    }

    /// The ring consumed.
    pub fn ring(&self) -> &Ring {
        &self.ring
    }

    /// Claims up to `max` published records (from all lanes, fairly) into `batch`
    /// (cleared first). Returns how many. Never blocks.
    pub fn poll(&mut self, batch: &mut Batch, max: usize) -> usize {
        batch.clear();
        batch.lanes = self.ring.geometry().lanes;
        let n = self.lanes.len();
        // Split the budget so that one busy lane cannot starve the others; what
        // quiet lanes leave goes to the busy ones in a second pass, so that a
        // single busy lane is not held to its share.
        let share = max.div_ceil(n).max(16);
        let mut busy = std::mem::take(&mut self.busy);
        busy.clear();
        for k in 0..n {
            if batch.len() >= max {
                break;
            }
            let lane = (self.next_lane + k) % n;
            let budget = share.min(max - batch.len());
            let before = batch.len();
            self.poll_lane(lane as u32, batch, budget);
            if batch.len() - before == budget {
                busy.push(lane as u32);
            }
        }
        for &lane in &busy {
            if batch.len() >= max {
                break;
            }
            self.poll_lane(lane, batch, max - batch.len());
        }
        self.busy = busy;
        self.next_lane = (self.next_lane + 1) % n;
        batch.len()
    }

    fn poll_lane(&mut self, lane: u32, batch: &mut Batch, budget: usize) {
        let ring = &self.ring;
        let w = LaneWords::new(ring, lane);
        loop {
            let Some(v) = view(ring, &w) else {
                if let Some(t) = resync(ring, &w) {
                    let st = &mut self.lanes[lane as usize];
                    st.inflight.clear();
                    st.claimed = t;
                    st.committed = t;
                }
                return;
            };
            let st = &mut self.lanes[lane as usize];
            if v.cursor.evicting {
                // The producer is moving records in this lane; come back later.
                // A flag that stays means the producer died mid-move: reap the
                // lane (possible only once its lock is free).
                st.flagged_polls += 1;
                if st.flagged_polls.is_multiple_of(STUCK_POLLS) {
                    reap_one(ring, self.fd, lane);
                }
                return;
            }
            st.flagged_polls = 0;
            if v.cursor.read >= v.tail {
                return;
            }
            let mark = batch.mark();
            let (reached, invalid) = copy_lane(ring, lane, v.cursor.read, v.tail, budget, batch);
            let claim = Cursor::at(v.cursor.head, reached);
            // AcqRel: Release keeps our copies above before the claim becomes
            // visible (the owner may overwrite after a later commit); the CAS
            // fails if the owner evicted at `read` meanwhile, and then the copies
            // may be torn: drop them and read again.
            if w.cursor
                .compare_exchange(v.word, claim.pack(), Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
            {
                let st = &mut self.lanes[lane as usize];
                for e in &batch.entries[mark.1..] {
                    st.inflight.push_back((e.end, (e.hdr.severity - 1) / 4));
                }
                st.claimed = reached;
                st.committed = v.cursor.head;
                if invalid > 0 {
                    count_invalid(&w, invalid);
                }
                return;
            }
            batch.rollback(mark);
        }
    }

    /// Marks every record of `lane` that ends at or before `end` as finished:
    /// counts it delivered and lets producers reuse its slots.
    pub fn commit(&mut self, lane: u16, end: u64) {
        let ring = &self.ring;
        let Some(st) = self.lanes.get_mut(lane as usize) else {
            return;
        };
        let mut target = st.committed;
        while let Some(&(e, level)) = st.inflight.front() {
            if e > end {
                break;
            }
            st.inflight.pop_front();
            st.delivered[level as usize] = st.delivered[level as usize].wrapping_add(1);
            target = e;
        }
        if st.inflight.is_empty() {
            // Trailing padding and garbage we claimed need no one's approval.
            target = st.claimed;
        }
        if target <= st.committed {
            return;
        }
        let w = LaneWords::new(ring, lane as u32);
        for l in 0..LEVELS {
            // Relaxed: counters with one writer (this consumer).
            w.counter(LANE_DELIVERED, l)
                .store(st.delivered[l], Ordering::Relaxed);
        }
        let mut attempts = 0;
        loop {
            let Some(v) = view(ring, &w) else {
                // A view is inconsistent only while an evicting producer races
                // our two loads, or when the lane holds garbage (the next poll
                // resynchronises it): retry a bounded number of times.
                attempts += 1;
                if attempts > 1000 {
                    return;
                }
                continue;
            };
            if v.cursor.head >= target || v.cursor.read < target {
                break; // moved by someone else (resync); nothing of ours is left
            }
            let next = Cursor::at(target, v.cursor.read);
            // AcqRel, SYNC POINT B: Release orders our reads of these slots before
            // the producer (Acquire load of the cursor) overwrites them.
            if w.cursor
                .compare_exchange(v.word, next.pack(), Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
            {
                break;
            }
        }
        st.committed = target;
    }

    /// Commits everything claimed so far.
    pub fn commit_all(&mut self) {
        for lane in 0..self.lanes.len() {
            let claimed = self.lanes[lane].claimed;
            self.commit(lane as u16, claimed);
        }
    }

    /// Whether records are claimed but not committed.
    pub fn has_inflight(&self) -> bool {
        self.lanes.iter().any(|l| !l.inflight.is_empty())
    }

    /// Completes the accounting of lanes whose owner died (torn records, counts a
    /// killed producer had not stored). Costs a lock call per lane: call it when
    /// idle, not per poll. Returns the torn records found.
    pub fn reap_dead_lanes(&self) -> u64 {
        reap_dead(&self.ring, self.fd)
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

pub(crate) fn reap_dead(ring: &Ring, fd: i32) -> u64 {
    (0..ring.geometry().lanes)
        .map(|lane| reap_one(ring, fd, lane))
        .sum()
}

/// Reaps `lane` if nobody owns it (its lock is free); returns torn records found.
fn reap_one(ring: &Ring, fd: i32, lane: u32) -> u64 {
    let held = &ring.inner.lanes_held[lane as usize];
    // Acquire/Release: the in-process flag hands the lane between this handle's
    // users like a lock.
    if held
        .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
        .is_err()
    {
        return 0;
    }
    let mut torn = 0;
    if let Ok(true) = lock::try_lock(fd, LOCK_LANE_BASE + lane as i64) {
        torn = reap(ring, lane);
        lock::unlock(fd, LOCK_LANE_BASE + lane as i64);
    }
    held.store(false, Ordering::Release);
    torn
}

fn count_invalid(w: &LaneWords<'_>, n: u64) {
    // Relaxed: statistics written by the consumer only.
    let c = w.invalid();
    c.store(c.load(Ordering::Relaxed).wrapping_add(n), Ordering::Relaxed);
}

/// A lane whose cursor cannot belong to its tail was written by someone who
/// does not follow the protocol: give up its unread contents (counted as one
/// invalid record) and restart it at the tail. Returns the new position.
fn resync(ring: &Ring, w: &LaneWords<'_>) -> Option<u64> {
    // Acquire: as in `view`.
    let tail = w.tail.load(Ordering::Acquire);
    if tail > crate::cursor::MAX_POS {
        // Only the lane's owner writes the tail; a garbage tail cannot be
        // repaired from here. The lane stays unread (and no writer takes it).
        return Some(tail);
    }
    // Acquire: as in `view`.
    let word = w.cursor.load(Ordering::Acquire);
    if Cursor::unpack(word, tail, ring.geometry().slots_per_lane as u64).is_some() {
        return None; // it was fine after all (a racing update); retry normally
    }
    let fresh = Cursor::at(tail, tail);
    // AcqRel: as any other cursor CAS.
    w.cursor
        .compare_exchange(word, fresh.pack(), Ordering::AcqRel, Ordering::Relaxed)
        .ok()?;
    count_invalid(w, 1);
    Some(tail)
}

/// A non-consuming reader; any number may run next to the consumer.
///
/// [`Peeker::new`] reads what is unread (from each lane's committed head) and
/// then what is published later *and still unread when it looks*: a consumer
/// that commits quickly leaves it little. [`Peeker::follow`] starts at the
/// newest record of every lane and reads everything published from then on,
/// whether or not the consumer has taken it, as long as the producer cannot
/// have overwritten it: a follower that falls more than half a lane behind
/// skips ahead and counts what it skipped ([`Peeker::missed`]).
pub struct Peeker {
    ring: Ring,
    pos: Vec<Option<u64>>,
    follow: bool,
    missed: u64,
}

impl Peeker {
    /// A peeker starting at the oldest unread record of every lane.
    pub fn new(ring: &Ring) -> Peeker {
        Peeker {
            ring: ring.clone(),
            pos: vec![None; ring.geometry().lanes as usize],
            follow: false,
            missed: 0,
        }
    }

    /// A peeker that follows new records (like `tail -f`), consumed or not.
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("logbus-doc-f-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir).unwrap();
    /// use logbus_ring::{Batch, Consumer, Event, Peeker, Ring};
    /// let ring = Ring::open(dir.join("ring")).unwrap();
    /// let mut w = ring.writer().unwrap();
    /// w.emit(&Event::new(9, "old")).unwrap();
    /// let mut follower = Peeker::follow(&ring);
    /// w.emit(&Event::new(9, "new")).unwrap();
    /// let mut consumer = Consumer::acquire(&ring).unwrap();
    /// let mut batch = Batch::new();
    /// consumer.poll(&mut batch, 10);
    /// consumer.commit_all(); // the collector was faster
    /// assert_eq!(follower.poll(&mut batch, 10), 1);
    /// assert_eq!(batch.get(0).unwrap().message(), "new");
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// ```
    pub fn follow(ring: &Ring) -> Peeker {
        let pos = (0..ring.geometry().lanes)
            .map(|lane| {
                // Acquire: pairs with the producer's Release store of the tail.
                Some(LaneWords::new(ring, lane).tail.load(Ordering::Acquire))
            })
            .collect();
        Peeker {
            ring: ring.clone(),
            pos,
            follow: true,
            missed: 0,
        }
    }

    /// Records a follower skipped because it fell too far behind (always 0 for
    /// [`Peeker::new`], which never reads consumed records).
    pub fn missed(&self) -> u64 {
        self.missed
    }

    /// Copies up to `max` records not yet seen by this peeker into `batch`
    /// (cleared first). Records that may have been overwritten or moved while
    /// being copied are discarded (and read again next time, if still there).
    pub fn poll(&mut self, batch: &mut Batch, max: usize) -> usize {
        batch.clear();
        batch.lanes = self.ring.geometry().lanes;
        let slots = self.ring.geometry().slots_per_lane as u64;
        for lane in 0..self.pos.len() {
            if batch.len() >= max {
                break;
            }
            let w = LaneWords::new(&self.ring, lane as u32);
            let Some(v) = view(&self.ring, &w) else {
                continue;
            };
            if v.cursor.evicting {
                continue; // records are being moved; read them next time
            }
            let head = v.cursor.head;
            // A follower may read below head (consumed records) down to half a
            // lane behind the tail: a producer writes at most a quarter lane (a
            // record) plus less than that (padding) beyond its tail, so those
            // slots are not being reused.
            let safe = v.tail.saturating_sub(slots / 2);
            let from = match self.pos[lane] {
                None => head,
                Some(p) if !self.follow || p >= head => p.max(head),
                Some(p) if p >= safe => p,
                Some(p) => {
                    // Too far behind: the records between were consumed and may be
                    // overwritten. Resume at the head (a record boundary).
                    self.missed += 1 + (head - p) / 4; // an estimate: slots, not records
                    head
                }
            };
            if from >= v.tail {
                self.pos[lane] = Some(from);
                continue;
            }
            let mark = batch.mark();
            let (reached, _) = copy_lane(
                &self.ring,
                lane as u32,
                from,
                v.tail,
                max - batch.len(),
                batch,
            );
            // Seqlock-style re-check. SYNC POINT C: this Acquire fence pairs with
            // the Release fence a producer issues before writing slots: if we read
            // any byte it wrote, the loads below see the tail and cursor it had.
            fence(Ordering::Acquire);
            let Some(again) = view(&self.ring, &w) else {
                batch.rollback(mark);
                continue;
            };
            // Records that were unread when we started (position >= head) may have
            // been evicted or moved if the head moved or a move is under way;
            // consumed ones (below head) cannot be, but must still be out of the
            // producer's reach.
            let unread_intact = again.cursor.head == head && !again.cursor.evicting;
            let floor = again.tail.saturating_sub(slots / 2);
            let mut keep_to = reached;
            let mut cut = None;
            for (i, e) in batch.entries[mark.1..].iter().enumerate() {
                let p = e.hdr.stamp;
                let ok = if p >= head { unread_intact } else { p >= floor };
                if !ok {
                    cut = Some(mark.1 + i);
                    keep_to = p;
                    break;
                }
            }
            if let Some(i) = cut {
                let off = batch.entries[i].off;
                batch.buf.truncate(off);
                batch.entries.truncate(i);
            }
            if !self.follow && again.cursor.head > from {
                // Non-followers only report unread records.
                batch.rollback(mark);
                continue;
            }
            self.pos[lane] = Some(keep_to);
        }
        batch.len()
    }
}

/// Per-level counters of a ring, summed over lanes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LevelCounts {
    /// Records whose emit call returned or was under way: `published + dropped + torn`.
    pub emitted: u64,
    /// Records written into the ring.
    pub published: u64,
    /// Records refused by the overflow policy (or finding no lane).
    pub dropped: u64,
    /// Records pushed out by protected records.
    pub evicted: u64,
    /// Records whose producer died while writing them (or while moving them
    /// during an eviction).
    pub torn: u64,
    /// Records the consumer committed.
    pub delivered: u64,
    /// Records in the ring not yet committed.
    pub unread: u64,
}

/// A snapshot of a ring's counters.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    /// Per level, indexed by `Level as usize`.
    pub levels: [LevelCounts; LEVELS],
    /// Garbage records skipped by the consumer.
    pub invalid: u64,
    /// The consumer's pid and whether it is alive, if one was recorded.
    pub consumer: Option<(u32, bool)>,
    /// Lanes with a live owner.
    pub lanes_in_use: u32,
}

impl Stats {
    /// The counts of one level.
    pub fn level(&self, level: Level) -> &LevelCounts {
        &self.levels[level as usize]
    }
    /// The first level whose counts do not balance,
    /// `emitted == delivered + dropped + evicted + torn + unread`, if any.
    /// A snapshot taken while nobody writes or consumes always balances;
    /// anything else means a record was lost without being counted.
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("logbus-doc-b-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir).unwrap();
    /// let ring = logbus_ring::Ring::open(dir.join("ring")).unwrap();
    /// ring.writer().unwrap().emit(&logbus_ring::Event::new(9, "x")).unwrap();
    /// assert_eq!(ring.stats().imbalance(), None);
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// ```
    pub fn imbalance(&self) -> Option<(Level, LevelCounts)> {
        Level::ALL
            .into_iter()
            .map(|l| (l, self.levels[l as usize]))
            .find(|(_, c)| {
                c.emitted
                    != c.delivered
                        .wrapping_add(c.dropped)
                        .wrapping_add(c.evicted)
                        .wrapping_add(c.torn)
                        .wrapping_add(c.unread)
            })
    }

    /// Sum over levels.
    pub fn total(&self) -> LevelCounts {
        let mut t = LevelCounts::default();
        for l in &self.levels {
            t.emitted = t.emitted.wrapping_add(l.emitted);
            t.published = t.published.wrapping_add(l.published);
            t.dropped = t.dropped.wrapping_add(l.dropped);
            t.evicted = t.evicted.wrapping_add(l.evicted);
            t.torn = t.torn.wrapping_add(l.torn);
            t.delivered = t.delivered.wrapping_add(l.delivered);
            t.unread = t.unread.wrapping_add(l.unread);
        }
        t
    }
}

impl Ring {
    /// Reads every counter and counts the unread records per level.
    ///
    /// Also completes the accounting of lanes whose producer died (as
    /// [`Consumer::reap_dead_lanes`]), so that a snapshot taken when nobody
    /// writes balances exactly: for every level,
    /// `emitted == delivered + dropped + evicted + torn + unread`.
    pub fn stats(&self) -> Stats {
        let mut s = Stats::default();
        let Some(fd) = self.fd() else {
            return s;
        };
        reap_dead(self, fd);
        let mut lost = [0u64; LEVELS];
        // Relaxed loads below: statistics; each counter has one writer and a
        // snapshot may be a moment old (it is exact when nobody writes).
        for lane in 0..self.geometry().lanes {
            let w = LaneWords::new(self, lane);
            for (l, (c, lost)) in s.levels.iter_mut().zip(&mut lost).enumerate() {
                let get = |which| w.counter(which, l).load(Ordering::Relaxed);
                c.published = c.published.wrapping_add(get(LANE_PUBLISHED));
                c.dropped = c.dropped.wrapping_add(get(LANE_DROPPED));
                c.evicted = c.evicted.wrapping_add(get(LANE_EVICTED));
                c.torn = c.torn.wrapping_add(get(LANE_TORN));
                *lost = lost.wrapping_add(get(LANE_LOST));
                c.delivered = c.delivered.wrapping_add(get(LANE_DELIVERED));
            }
            s.invalid = s.invalid.wrapping_add(w.invalid().load(Ordering::Relaxed));
            if w.owner_pid().load(Ordering::Relaxed) != 0
                && lock::held_by_other(fd, LOCK_LANE_BASE + lane as i64).unwrap_or(false)
            {
                s.lanes_in_use += 1;
            }
        }
        for l in 0..LEVELS {
            // Relaxed: statistics.
            let shortage = self
                .u64_at(OFF_LANE_SHORTAGE + l * 8)
                .load(Ordering::Relaxed);
            s.levels[l].dropped = s.levels[l].dropped.wrapping_add(shortage);
        }
        let mut peek = Peeker::new(self);
        let mut batch = Batch::new();
        // Bounded: with producers still writing, stop after one ring's worth.
        let mut budget = self.geometry().slots();
        while budget > 0 && peek.poll(&mut batch, 4096) > 0 {
            budget = budget.saturating_sub(batch.len() as u64);
            for r in batch.iter() {
                s.levels[r.level() as usize].unread += 1;
            }
        }
        for (c, lost) in s.levels.iter_mut().zip(lost) {
            // Torn before publishing: part of emitted. Lost after publishing
            // (a producer killed while moving them): already in published.
            c.emitted = c.published.wrapping_add(c.dropped).wrapping_add(c.torn);
            c.torn = c.torn.wrapping_add(lost);
        }
        // Relaxed: informational, as above.
        let pid = self.consumer_pid_word().load(Ordering::Relaxed);
        let alive = lock::held_by_other(fd, LOCK_CONSUMER).unwrap_or(false)
            || self.inner.consumer_taken.load(Ordering::Relaxed);
        if pid != 0 || alive {
            s.consumer = Some((pid, alive));
        }
        s
    }
}
