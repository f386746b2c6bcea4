//! A sink's queue: its backlog, in the ring and then in memory, and its
//! severity-aware shedding.
//!
//! # Who does what
//! * The reader thread [`SinkQueue::push`]es jobs (a chunk and the sink's level
//!   mask) and asks for the sink's [`SinkQueue::pin`] before committing.
//! * The sink's thread [`SinkQueue::take`]s jobs (they become *in flight*),
//!   writes them, and reports [`SinkQueue::finish`] (or
//!   [`SinkQueue::abandon`] when its output is gone for good).
//!
//! Everything is under one mutex per sink; the reader touches it once per chunk
//! and once per commit check, the sink once per group of jobs.
//!
//! # Backlog: the ring first, then memory
//! A sink that cannot write (disk full, endpoint down, a reader not reading)
//! keeps its records. Those within `max_backlog` blocks of the newest block
//! read from their ring (each job says its ring, [`Chunk::source`], and its
//! limit, [`Job::backlog`]: a collector may read several rings) *pin* the ring: the reader does not commit them, so they survive a
//! collector crash and are delivered by the next collector. Older ones are
//! *released*: they stay queued in memory for the sink but no longer hold the
//! ring's commit, so a stalled sink never holds more than that share of the
//! ring, and never fills it for the others. (Counted in blocks, not records:
//! what a backlog costs the ring is the blocks it keeps from being reused.) There is no time
//! limit on a write: a sink retries until it gets through.
//!
//! Released records are counted in their ring's ledger (shared memory, per
//! sink slot and level) until they are written or counted, so that a
//! collector SIGKILLed with them is followed by one that counts them
//! `lost_in_crash` (`ledger.rs` has the hooks and when each one runs).
//!
//! # Memory: a window of chunks, released bytes bounded
//! A queue takes every job pushed to it (the reader is never blocked), but
//! says it has no [`room`](SinkQueue::room) once the chunks it holds (queued
//! or in flight) carry [`WINDOW_BYTES`] of records, each chunk counted as at
//! least [`MIN_CHARGE`] (so that a window is full chunks at full throughput,
//! and many small ones, a small ring's worth, when the reader keeps pace):
//! the reader reads a lossless ring no further ahead
//! than the slowest sink that is writing has room for, so at full
//! throughput the collector holds a few chunks, not a queue's worth of
//! records. (A drop-mode ring is read as far as the roomiest queue takes
//! records, up to `capacity`: there, reading late loses records.) Jobs
//! pushed beyond that (a sink slower than another, or not
//! writing) pin the ring, then are released and shed as below: what a
//! lagging sink holds in memory is bounded by its `max_backlog` share of
//! the ring and by `capacity` records and [`RELEASED_BYTES`] bytes.
//!
//! # Shedding
//! Records that pin the ring are never shed: they are in the ring, and
//! shedding one there would not stop the next collector from delivering it.
//! Of the released ones (in memory only) the queue holds at most `capacity`,
//! in chunks of at most [`RELEASED_BYTES`] (in flight ones not included;
//! a job costs its whole chunk's [`Chunk::bytes`] until its last record
//! goes). When a push takes it past either, released
//! records are shed, oldest first, lowest level first: TRACE records of the
//! oldest jobs, then of newer ones, then DEBUG, INFO and WARN, and ERROR and
//! FATAL only when nothing lower is left. Every shed record is counted per
//! sink and level (`dropped`). The reader is never blocked.
//!
//! # Exit
//! Released records not written when the collector exits are lost with it:
//! [`SinkQueue::count_lost_at_exit`] counts them `dropped` per level, and the
//! collector names them in its last line. Pinned ones stay in the ring.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use logbus_ring::LEVELS;

use crate::chunk::Chunk;
use crate::ledger::{self, Debt};
use crate::stats::SinkStats;

/// Bytes of records ([`Chunk::bytes`]) in the chunks a queue holds (queued
/// or in flight) before it says it has no room: how far the reader may read
/// ahead of a sink. Six full chunks.
pub const WINDOW_BYTES: usize = 6 * (256 << 10);

/// The least a chunk counts for in a window, however few its records: at
/// most 96 chunks make a window.
pub const MIN_CHARGE: usize = 16 << 10;

/// What a job's chunk counts for in its queue's window.
fn charge(job: &Job) -> usize {
    job.chunk.bytes().max(MIN_CHARGE)
}

/// Bytes of chunks (see [`Chunk::bytes`]) a queue keeps for its released
/// jobs (in memory only) before it sheds records, whatever their number.
pub const RELEASED_BYTES: usize = 4 << 20;

/// A chunk as one sink sees it: the records of the levels in `mask`, less
/// those in `skip` (records this sink finished before a collector restart).
#[derive(Clone)]
pub struct Job {
    /// The shared chunk.
    pub chunk: Arc<Chunk>,
    /// Levels selected (bit `Level as usize`); narrowed when records are shed.
    pub mask: u8,
    /// Records of the chunk this sink already delivered (bit `i` of word
    /// `i / 64`), and their count per level; `None` nearly always.
    pub skip: Option<Arc<(Vec<u64>, [u32; LEVELS])>>,
    /// How many blocks behind its ring's newest block read the job may start
    /// and still pin the ring (`u64::MAX`: always).
    pub backlog: u64,
    /// Where the sink marks the job's blocks done in the ring, if it has a slot.
    pub mark: Option<Mark>,
}

/// A sink's slot in a ring, where it keeps its progress per block (see
/// `logbus_ring::SinkMarks`).
#[derive(Clone)]
pub struct Mark {
    /// The ring.
    pub ring: logbus_ring::Ring,
    /// This sink's slot in it.
    pub slot: logbus_ring::SinkSlot,
}

impl Job {
    /// A job of the records of `chunk` whose level is in `mask`.
    pub fn new(chunk: Arc<Chunk>, mask: u8) -> Job {
        Job {
            chunk,
            mask,
            skip: None,
            backlog: u64::MAX,
            mark: None,
        }
    }

    /// Records of level `l` selected.
    pub fn level_count(&self, l: usize) -> u32 {
        if self.mask & (1 << l) == 0 {
            return 0;
        }
        let skipped = self.skip.as_ref().map_or(0, |s| s.1[l]);
        self.chunk.counts[l].saturating_sub(skipped)
    }

    /// Records selected.
    pub fn count(&self) -> u32 {
        (0..LEVELS).map(|l| self.level_count(l)).sum()
    }

    /// Whether the job selects every record of its chunk.
    #[inline]
    pub fn takes_all(&self) -> bool {
        self.skip.is_none()
            && (0..LEVELS).all(|l| self.mask & (1 << l) != 0 || self.chunk.counts[l] == 0)
    }

    /// Whether record `i` of the chunk, of level `level`, is for this sink.
    #[inline]
    pub fn wants(&self, i: usize, level: u8) -> bool {
        self.mask & (1 << level) != 0
            && self
                .skip
                .as_ref()
                .is_none_or(|s| s.0.get(i / 64).is_none_or(|w| w & (1 << (i % 64)) == 0))
    }
}

struct Queued {
    job: Job,
    /// No longer pins the ring (beyond `max_backlog`).
    released: bool,
}

struct Inflight {
    /// The first chunk id of the group that still pins the ring, if any.
    first_pinned: Option<u64>,
    /// Per ring its pinning records come from: the ring (`Chunk::source`),
    /// the oldest block, and the least backlog allowed.
    first_blocks: Vec<(u32, u64, u64)>,
    counts: [u64; LEVELS],
    records: u64,
    /// What the group's chunks count for in the window ([`charge`]).
    bytes: usize,
    /// Records of the group that pin the ring.
    pinned: u64,
    /// The same, per level.
    pinned_counts: [u64; LEVELS],
    /// What the group owes its rings' ledgers.
    ledger: ledger::Group,
}

struct State {
    items: VecDeque<Queued>,
    /// Records selected by `items`.
    queued: usize,
    /// Records selected by the released `items` (in memory only).
    released: usize,
    /// The chunks' bytes of the released `items` ([`Chunk::bytes`]).
    released_bytes: usize,
    /// What the chunks of `items` and of the in-flight group count for in
    /// the window ([`charge`]).
    held: usize,
    /// Whether `count_lost_at_exit` has counted them.
    exit_counted: bool,
    /// Ledger entries of records counted but not yet published.
    debt: Debt,
    /// Records (queued or in flight) that pin the ring.
    pinned: usize,
    /// Per ring (`Chunk::source`): the newest block sequence number a job
    /// has come from.
    newest: Vec<(u32, u64)>,
    inflight: Option<Inflight>,
    closed: bool,
    finished: bool,
    reopen: bool,
    /// The output is gone for good (see `WriteOutcome::Closed`).
    broken: bool,
}

/// What a queue (or the sinks together) can take: see [`SinkQueue::room`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Room {
    /// Records, before the queue sheds.
    pub records: usize,
    /// Bytes of chunks ([`charge`]), before its window is full.
    pub bytes: usize,
}

impl Room {
    /// No limit (no sink, or a closed queue).
    pub const UNLIMITED: Room = Room {
        records: usize::MAX,
        bytes: usize::MAX,
    };

    /// No room at all.
    pub const NONE: Room = Room {
        records: 0,
        bytes: 0,
    };

    /// Records one more chunk may hold: none once the window is full.
    pub fn for_chunk(self) -> usize {
        if self.bytes == 0 {
            0
        } else {
            self.records
        }
    }

    /// The most of each: what the roomiest queue takes.
    pub fn most(self, other: Room) -> Room {
        Room {
            records: self.records.max(other.records),
            bytes: self.bytes.max(other.bytes),
        }
    }

    /// What both can take.
    pub fn least(self, other: Room) -> Room {
        Room {
            records: self.records.min(other.records),
            bytes: self.bytes.min(other.bytes),
        }
    }

    /// What is left after a chunk of `records` records in `bytes` (none:
    /// no chunk).
    pub fn after(self, records: usize, bytes: usize) -> Room {
        if records == 0 {
            return self;
        }
        Room {
            records: self.records.saturating_sub(records),
            bytes: self.bytes.saturating_sub(bytes.max(MIN_CHARGE)),
        }
    }
}

/// What [`SinkQueue::take`] hands the sink.
#[derive(Debug, PartialEq, Eq)]
pub enum Take {
    /// Jobs were moved into the vector: write them.
    Jobs,
    /// Reopen the output (SIGHUP), then take again.
    Reopen,
    /// Closed and empty: flush and exit.
    Closed,
}

/// One sink's queue (see the module docs).
pub struct SinkQueue {
    state: Mutex<State>,
    /// Signalled when jobs arrive or the queue closes (the sink waits on it).
    has_items: Condvar,
    /// Signalled when the sink finishes a group or exits.
    progress: Condvar,
    capacity: usize,
    /// Most bytes of chunks released jobs may hold (see [`RELEASED_BYTES`]).
    max_released_bytes: usize,
    /// Counters (shared with a predecessor of the same name across reloads).
    pub stats: Arc<SinkStats>,
}

impl SinkQueue {
    /// An empty, open queue holding at most `capacity` records in memory, of
    /// which those within their job's [`Job::backlog`] pin their ring.
    pub fn new(capacity: usize, stats: Arc<SinkStats>) -> SinkQueue {
        SinkQueue {
            state: Mutex::new(State {
                items: VecDeque::new(),
                queued: 0,
                released: 0,
                released_bytes: 0,
                held: 0,
                exit_counted: false,
                debt: Debt::default(),
                pinned: 0,
                newest: Vec::new(),
                inflight: None,
                closed: false,
                finished: false,
                reopen: false,
                broken: false,
            }),
            has_items: Condvar::new(),
            progress: Condvar::new(),
            capacity: capacity.max(1),
            max_released_bytes: RELEASED_BYTES,
            stats,
        }
    }

    /// The same queue keeping at most `bytes` of chunks for its released
    /// jobs (tests: [`RELEASED_BYTES`] by default).
    #[cfg(test)]
    pub fn with_released_bytes(mut self, bytes: usize) -> SinkQueue {
        self.max_released_bytes = bytes;
        self
    }

    /// Whether released records are past `capacity` or their chunks past
    /// `max_released_bytes`.
    fn over(&self, st: &State) -> bool {
        st.released > self.capacity || st.released_bytes > self.max_released_bytes
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A sink thread that panicked takes the process down (panic hook), so a
        // poisoned lock is never observed in practice; the data stays coherent
        // anyway (every update is a few plain stores).
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn count_dropped(&self, job: &Job) {
        for l in 0..LEVELS {
            let n = job.level_count(l);
            if n > 0 {
                // Relaxed: a statistic.
                self.stats.dropped[l].fetch_add(n as u64, Ordering::Relaxed);
            }
        }
    }

    fn depth_add(&self, n: u64) {
        // Relaxed: a statistic (summed over the sinks sharing these counters).
        self.stats.depth.fetch_add(n, Ordering::Relaxed);
    }

    fn depth_sub(&self, n: u64) {
        // Relaxed: as in `depth_add`.
        self.stats.depth.fetch_sub(n, Ordering::Relaxed);
    }

    /// Queues `job` (reader thread): releases the oldest records from the
    /// ring beyond `max_backlog`, sheds beyond `capacity`. Never blocks.
    pub fn push(&self, job: Job) {
        let need = job.count() as usize;
        if need == 0 {
            return;
        }
        let mut st = self.lock();
        if st.closed {
            self.count_dropped(&job);
            return;
        }
        st.queued += need;
        st.pinned += need;
        if let Some(last) = job.chunk.block_ends.last() {
            let source = job.chunk.source;
            match st.newest.iter_mut().find(|(s, _)| *s == source) {
                Some((_, n)) => *n = (*n).max(last.seq),
                None => st.newest.push((source, last.seq)),
            }
            if st.newest.len() > 256 {
                // Rings come and go: forget those no queued job comes from
                // (their in-flight jobs, if any, just stop being released).
                let State { newest, items, .. } = &mut *st;
                newest.retain(|(s, _)| items.iter().any(|q| q.job.chunk.source == *s));
            }
        }
        self.depth_add(need as u64);
        st.held += charge(&job);
        if st.held > self.stats.held_most.load(Ordering::Relaxed) {
            // Relaxed: a statistic, written by the reader alone.
            self.stats.held_most.store(st.held, Ordering::Relaxed);
        }
        st.items.push_back(Queued {
            job,
            released: false,
        });
        self.release_beyond_backlog(&mut st);
        if self.over(&st) {
            self.shed(&mut st);
        }
        drop(st);
        self.has_items.notify_one();
    }

    /// Releases the oldest pinning jobs of each ring until the oldest one left
    /// starts within its backlog of the newest block read from that ring.
    fn release_beyond_backlog(&self, st: &mut State) {
        let newest = |st: &[(u32, u64)], source: u32| {
            st.iter().find(|(s, _)| *s == source).map_or(0, |(_, n)| *n)
        };
        let beyond = |newest: u64, first: u64, backlog: u64| first < newest.saturating_sub(backlog);
        if let Some(inf) = st.inflight.as_mut() {
            if inf.pinned > 0
                && inf
                    .first_blocks
                    .iter()
                    .any(|&(src, first, backlog)| beyond(newest(&st.newest, src), first, backlog))
            {
                st.pinned -= inf.pinned as usize;
                inf.pinned = 0;
                inf.pinned_counts = [0; LEVELS];
                inf.first_pinned = None;
                inf.ledger.release();
            }
        }
        // Per ring, jobs are in block order: the first one of a ring that stays
        // pinned ends that ring's scan (`held`, by ring key modulo 64; a
        // collision only stops a scan early, keeping a pin a little longer).
        let all: u64 = st.newest.iter().fold(0, |m, (s, _)| m | 1 << (s % 64));
        let mut held = 0u64;
        for q in st.items.iter_mut() {
            if held == all {
                break;
            }
            let src = q.job.chunk.source;
            if q.released || held & (1 << (src % 64)) != 0 {
                continue;
            }
            let first = q.job.chunk.block_ends.first().map_or(u64::MAX, |p| p.seq);
            if !beyond(newest(&st.newest, src), first, q.job.backlog) {
                held |= 1 << (src % 64);
                continue;
            }
            q.released = true;
            ledger::add(&q.job);
            st.pinned -= q.job.count() as usize;
            st.released += q.job.count() as usize;
            st.released_bytes += q.job.chunk.bytes();
        }
    }

    /// Sheds released records, oldest first and lowest level first, until
    /// at most `capacity` are left, in at most `max_released_bytes` of
    /// chunks (a job's chunk is let go with its last record).
    fn shed(&self, st: &mut State) {
        let State {
            items,
            released,
            released_bytes,
            queued,
            held,
            debt,
            ..
        } = st;
        let over = |r: usize, b: usize| r > self.capacity || b > self.max_released_bytes;
        for l in 0..LEVELS {
            for q in items.iter_mut() {
                if !over(*released, *released_bytes) {
                    break;
                }
                if !q.released {
                    continue;
                }
                let n = q.job.level_count(l) as usize;
                if n == 0 {
                    continue;
                }
                // Relaxed: a statistic.
                self.stats.dropped[l].fetch_add(n as u64, Ordering::Relaxed);
                debt.owe(&q.job, l, n as u64);
                q.job.mask &= !(1 << l);
                *queued -= n;
                *released -= n;
                self.depth_sub(n as u64);
                if q.job.count() == 0 {
                    *released_bytes -= q.job.chunk.bytes();
                    *held -= charge(&q.job);
                }
            }
            if !over(*released, *released_bytes) {
                break;
            }
        }
        items.retain(|q| q.job.count() > 0);
    }

    /// Waits for work (sink thread). Moves up to about `budget` records' worth of
    /// jobs (at least one job) into `out`, which become in flight until
    /// [`finish`](Self::finish) or [`abandon`](Self::abandon).
    pub fn take(&self, out: &mut Vec<Job>, budget: usize) -> Take {
        let mut st = self.lock();
        loop {
            if st.reopen {
                st.reopen = false;
                return Take::Reopen;
            }
            if !st.items.is_empty() {
                break;
            }
            if st.closed {
                return Take::Closed;
            }
            st = self.has_items.wait(st).unwrap_or_else(|p| p.into_inner());
        }
        let mut inf = Inflight {
            first_pinned: None,
            first_blocks: Vec::new(),
            counts: [0; LEVELS],
            records: 0,
            bytes: 0,
            pinned: 0,
            pinned_counts: [0; LEVELS],
            ledger: ledger::Group::default(),
        };
        while let Some(q) = st.items.front() {
            let n = q.job.count() as u64;
            if inf.records > 0 && inf.records + n > budget as u64 {
                break;
            }
            let Some(q) = st.items.pop_front() else {
                break;
            };
            inf.records += n;
            inf.ledger.push(&q.job, q.released);
            inf.bytes += charge(&q.job);
            for (l, c) in inf.counts.iter_mut().enumerate() {
                *c += q.job.level_count(l) as u64;
            }
            if q.released {
                st.released -= n as usize;
                st.released_bytes -= q.job.chunk.bytes();
            } else {
                inf.pinned += n;
                for (l, c) in inf.pinned_counts.iter_mut().enumerate() {
                    *c += q.job.level_count(l) as u64;
                }
                inf.first_pinned.get_or_insert(q.job.chunk.id);
                if let Some(first) = q.job.chunk.block_ends.first() {
                    let (src, backlog) = (q.job.chunk.source, q.job.backlog);
                    match inf.first_blocks.iter_mut().find(|(s, _, _)| *s == src) {
                        Some((_, f, b)) => (*f, *b) = ((*f).min(first.seq), (*b).min(backlog)),
                        None => inf.first_blocks.push((src, first.seq, backlog)),
                    }
                }
            }
            out.push(q.job);
        }
        st.queued -= inf.records as usize;
        st.inflight = Some(inf);
        Take::Jobs
    }

    /// The in-flight jobs were written (sink thread). Returns whether they
    /// still pinned the ring (and may be marked done in it).
    pub fn finish(&self) -> bool {
        self.finish_group(false)
    }

    /// As [`finish`](Self::finish), for a group the destination refused in
    /// part or whole (counted by the caller): its records leave the rings'
    /// ledgers only once the counters are published ([`pay_debt`](Self::pay_debt)).
    pub fn finish_refused(&self) -> bool {
        self.finish_group(true)
    }

    fn finish_group(&self, refused: bool) -> bool {
        let mut st = self.lock();
        let mut pinned = false;
        if let Some(inf) = st.inflight.take() {
            if !st.exit_counted {
                inf.ledger.settle(refused.then_some(&mut st.debt));
            }
            st.pinned -= inf.pinned as usize;
            st.held -= inf.bytes;
            pinned = inf.pinned > 0;
            self.depth_sub(inf.records);
            // Relaxed: a statistic.
            self.stats
                .delivered
                .fetch_add(inf.records, Ordering::Relaxed);
        }
        drop(st);
        self.progress.notify_all();
        pinned
    }

    /// Whether the sink should stop retrying its in-flight jobs: its output is
    /// gone for good and the queue is closing (sink thread).
    pub fn should_give_up(&self) -> bool {
        let st = self.lock();
        st.closed && st.broken
    }

    /// The sink gives up its in-flight jobs (after [`should_give_up`](Self::should_give_up)).
    pub fn abandon(&self) {
        let mut st = self.lock();
        if let Some(inf) = st.inflight.take() {
            if !st.exit_counted {
                inf.ledger.settle(Some(&mut st.debt));
            }
            st.pinned -= inf.pinned as usize;
            st.held -= inf.bytes;
            for (l, c) in inf.counts.iter().enumerate() {
                // Relaxed: statistics.
                self.stats.dropped[l].fetch_add(*c, Ordering::Relaxed);
            }
            self.depth_sub(inf.records);
        }
        drop(st);
        self.progress.notify_all();
    }

    /// The oldest chunk id this sink still pins in the ring, if any (reader
    /// thread): chunks before it may be committed as far as this sink is
    /// concerned.
    pub fn pin(&self) -> Option<u64> {
        let st = self.lock();
        let queued = st
            .items
            .iter()
            .find(|q| !q.released)
            .map(|q| q.job.chunk.id);
        match st.inflight.as_ref().and_then(|i| i.first_pinned) {
            Some(id) => Some(id),
            None => queued,
        }
    }

    /// What the queue can still take without shedding any records, or
    /// holding more than [`WINDOW_BYTES`] (queued or in flight: see the
    /// module docs). A closed queue takes anything (and sheds it).
    pub fn room(&self) -> Room {
        let st = self.lock();
        if st.closed {
            Room::UNLIMITED
        } else {
            Room {
                records: self.capacity.saturating_sub(st.queued),
                bytes: WINDOW_BYTES.saturating_sub(st.held),
            }
        }
    }

    /// No more jobs will come; the sink finishes what it has and exits.
    pub fn close(&self) {
        self.lock().closed = true;
        self.has_items.notify_all();
    }

    /// Asks the sink to reopen its output before its next write.
    pub fn request_reopen(&self) {
        self.lock().reopen = true;
        self.has_items.notify_all();
    }

    /// The sink's output is gone for good (sink thread).
    pub fn set_broken(&self) {
        self.lock().broken = true;
    }

    /// Whether the sink's output is gone for good.
    pub fn is_broken(&self) -> bool {
        self.lock().broken
    }

    /// The sink thread has exited.
    pub fn set_finished(&self) {
        self.lock().finished = true;
        self.progress.notify_all();
    }

    /// Whether the sink thread has exited.
    pub fn is_finished(&self) -> bool {
        self.lock().finished
    }

    /// Waits until the sink thread has exited, at most `timeout`. Returns
    /// whether it has.
    pub fn wait_finished(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut st = self.lock();
        while !st.finished {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            st = self
                .progress
                .wait_timeout(st, deadline - now)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        true
    }

    /// The collector is exiting with this sink unfinished: counts the records
    /// it holds in memory only (released, queued or in flight) as dropped,
    /// per level, once. Returns those counts and the records that still pin
    /// the ring (the next collector delivers them).
    pub fn count_lost_at_exit(&self) -> ([u64; LEVELS], u64) {
        let mut st = self.lock();
        let mut lost = [0u64; LEVELS];
        for q in st.items.iter().filter(|q| q.released) {
            for (l, n) in lost.iter_mut().enumerate() {
                *n += q.job.level_count(l) as u64;
            }
        }
        if let Some(inf) = &st.inflight {
            for (l, n) in lost.iter_mut().enumerate() {
                *n += inf.counts[l] - inf.pinned_counts[l];
            }
        }
        if !st.exit_counted {
            st.exit_counted = true;
            for (l, n) in lost.iter().enumerate() {
                // Relaxed: a statistic.
                self.stats.dropped[l].fetch_add(*n, Ordering::Relaxed);
            }
            // Counted dropped, and named in the collector's last line: off
            // the ledgers at once, with what is owed.
            st.items
                .iter()
                .filter(|q| q.released)
                .for_each(|q| ledger::sub(&q.job));
            if let Some(inf) = st.inflight.as_mut() {
                std::mem::take(&mut inf.ledger).forget();
            }
            st.debt.pay();
        }
        (lost, st.pinned as u64)
    }

    /// The sink's counters are published (the status file was written):
    /// records counted shed or refused leave their rings' ledgers (reader
    /// thread; see `ledger.rs`).
    pub fn pay_debt(&self) {
        self.lock().debt.pay();
    }

    /// Records queued or in flight: the sink's backlog.
    #[cfg(test)]
    pub fn depth(&self) -> u64 {
        let st = self.lock();
        st.queued as u64 + st.inflight.as_ref().map_or(0, |i| i.records)
    }

    /// Records that pin the ring (queued or in flight).
    #[cfg(test)]
    pub fn pinned(&self) -> u64 {
        self.lock().pinned as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queue(cap: usize) -> SinkQueue {
        SinkQueue::new(cap, Arc::new(SinkStats::new("t", "null")))
    }

    /// A job of every level that may pin its ring `backlog` blocks back.
    fn job(chunk: Arc<Chunk>, backlog: u64) -> Job {
        Job {
            backlog,
            ..Job::new(chunk, 0x3f)
        }
    }

    fn dropped(q: &SinkQueue) -> [u64; LEVELS] {
        std::array::from_fn(|l| q.stats.dropped[l].load(Ordering::Relaxed))
    }

    /// A job of every level from two blocks of its own (`2 * id` and the
    /// next), allowed no backlog: released from the ring as it is pushed.
    fn released(id: u64, counts: [u32; LEVELS]) -> Job {
        let at = |seq| logbus_ring::BlockPos { seq, end: 64 };
        let chunk = Arc::new(Chunk {
            id,
            counts,
            block_ends: vec![at(2 * id), at(2 * id + 1)],
            ..Chunk::default()
        });
        job(chunk, 0)
    }

    /// A job of chunk `id` from another ring (source 1), all levels taken,
    /// within its backlog: it pins that ring.
    fn pinning(id: u64, counts: [u32; LEVELS]) -> Job {
        let chunk = Arc::new(Chunk {
            id,
            source: 1,
            counts,
            ..Chunk::default()
        });
        Job::new(chunk, 0x3f)
    }

    #[test]
    fn the_oldest_lowest_levels_are_shed_first_and_errors_last() {
        let q = queue(10);
        q.push(released(1, [4, 0, 4, 0, 0, 0]));
        // 8 queued; 2 WARN + 2 ERROR make 12: the oldest TRACE go first (a
        // level of a job goes whole).
        q.push(released(2, [0, 0, 0, 2, 2, 0]));
        assert_eq!(dropped(&q), [4, 0, 0, 0, 0, 0]);
        assert_eq!(q.depth(), 8);
        // 6 INFO more: the oldest INFO (job 1's) go, and that is enough.
        q.push(released(3, [0, 0, 6, 0, 0, 0]));
        assert_eq!(dropped(&q), [4, 0, 4, 0, 0, 0]);
        assert_eq!(q.depth(), 10);
        // 6 ERROR: the newer INFO go too; WARN and the ERRORs stay.
        q.push(released(4, [0, 0, 0, 0, 6, 0]));
        assert_eq!(dropped(&q), [4, 0, 10, 0, 0, 0]);
        assert_eq!(q.depth(), 10);
        // 3 FATAL more: the WARN go, then (nothing lower left) the oldest ERRORs.
        q.push(released(5, [0, 0, 0, 0, 0, 3]));
        assert_eq!(dropped(&q), [4, 0, 10, 2, 2, 0]);
        assert_eq!(q.depth(), 9);
        let mut out = Vec::new();
        assert_eq!(q.take(&mut out, 1000), Take::Jobs);
        assert_eq!(out.iter().map(|j| j.count()).sum::<u32>(), 9);
        assert!(!q.finish(), "released jobs do not pin the ring");
        assert_eq!(q.stats.delivered.load(Ordering::Relaxed), 9);
        assert_eq!(q.pin(), None);
        assert_eq!(q.depth(), 0);
    }

    /// Records that pin the ring are never shed (they are in the ring: the
    /// next collector would deliver them anyway); only released ones count
    /// against the capacity.
    #[test]
    fn records_that_pin_the_ring_are_never_shed() {
        let q = queue(4);
        // Another ring's records, within their backlog.
        q.push(pinning(1, [0, 0, 10, 0, 0, 0]));
        assert_eq!(q.depth(), 10);
        assert_eq!(dropped(&q), [0; LEVELS]);
        // Released ones beyond the capacity go, lowest level first (a level
        // of a job goes whole).
        q.push(released(2, [0, 0, 3, 0, 3, 0]));
        assert_eq!(dropped(&q), [0, 0, 3, 0, 0, 0]);
        assert_eq!(q.depth(), 13);
        assert_eq!(q.pinned(), 10);
    }

    /// At exit, what a stuck sink holds in memory only (released, queued or
    /// in flight) is counted dropped per level, once; what pins the ring is
    /// left to the next collector.
    #[test]
    fn at_exit_the_records_held_in_memory_only_are_counted_dropped() {
        let q = queue(1000);
        q.push(released(1, [0, 0, 3, 0, 2, 0]));
        let mut out = Vec::new();
        assert_eq!(q.take(&mut out, 1), Take::Jobs); // in flight, stuck
        q.push(released(2, [0, 0, 1, 0, 0, 0]));
        q.push(pinning(3, [0, 0, 4, 0, 0, 0]));
        let expect = ([0, 0, 4, 0, 2, 0], 4);
        assert_eq!(q.count_lost_at_exit(), expect);
        assert_eq!(q.count_lost_at_exit(), expect);
        assert_eq!(dropped(&q), [0, 0, 4, 0, 2, 0], "counted once");
    }

    /// A chunk of `info` INFO records from blocks `first..=last` of ring `source`.
    fn chunk_in(id: u64, info: u32, first: u64, last: u64, source: u32) -> Arc<Chunk> {
        Arc::new(Chunk {
            id,
            source,
            counts: [0, 0, info, 0, 0, 0],
            block_ends: vec![
                logbus_ring::BlockPos {
                    seq: first,
                    end: 64,
                },
                logbus_ring::BlockPos { seq: last, end: 64 },
            ],
            ..Chunk::default()
        })
    }

    #[test]
    fn beyond_max_backlog_blocks_the_oldest_records_stop_pinning_the_ring_but_stay_queued() {
        let q = queue(1000);
        q.push(job(chunk_in(1, 6, 0, 3, 0), 10));
        let mut out = Vec::new();
        assert_eq!(q.take(&mut out, 1), Take::Jobs); // chunk 1 in flight, not finishing
        q.push(job(chunk_in(2, 3, 4, 9, 0), 10));
        assert_eq!(q.pin(), Some(1));
        assert_eq!(q.pinned(), 9);
        // Block 12 read: chunk 1 (from block 0) is more than 10 blocks back.
        q.push(job(chunk_in(3, 4, 10, 12, 0), 10));
        assert_eq!(q.pin(), Some(2));
        assert_eq!(q.pinned(), 7);
        assert_eq!(q.depth(), 13, "nothing dropped");
        assert_eq!(dropped(&q), [0; LEVELS]);
        // Its write gets through after all: delivered, nothing to mark in the ring.
        assert!(!q.finish());
        assert_eq!(q.stats.delivered.load(Ordering::Relaxed), 6);
        out.clear();
        assert_eq!(q.take(&mut out, 100), Take::Jobs);
        assert!(q.finish());
        assert_eq!(q.pin(), None);
        q.close();
        assert_eq!(q.take(&mut out, 1), Take::Closed);
    }

    #[test]
    fn each_ring_counts_its_backlog_in_its_own_blocks() {
        let q = queue(1000);
        // Ring 7 is at block 2, ring 9 far ahead at block 500: ring 7's jobs
        // are not 490 blocks behind anything of their own ring.
        q.push(job(chunk_in(1, 5, 0, 2, 7), 10));
        q.push(job(chunk_in(2, 5, 495, 500, 9), 10));
        q.push(job(chunk_in(3, 5, 3, 4, 7), 10));
        assert_eq!(q.pinned(), 15);
        assert_eq!(q.pin(), Some(1));
        // Ring 7 reaches block 20: its first job (block 0) is beyond, its
        // second (block 3) too; ring 9's job stays pinned.
        q.push(job(chunk_in(4, 5, 19, 20, 7), 10));
        assert_eq!(q.pinned(), 10);
        assert_eq!(q.pin(), Some(2));
        assert_eq!(q.depth(), 20, "nothing dropped");
    }

    /// A ring and a sink's slot in it, for jobs that keep a ledger.
    fn ledger_ring(name: &str) -> (logbus_testkit::TempDir, logbus_ring::Consumer, Mark) {
        let dir = logbus_testkit::TempDir::new(name);
        let ring = logbus_ring::Ring::open(dir.ring()).unwrap();
        let mut c = logbus_ring::Consumer::acquire(&ring).unwrap();
        let slot = logbus_ring::SinkMarks::assign(&mut c, &["s"])[0]
            .clone()
            .unwrap()
            .0;
        (dir, c, Mark { ring, slot })
    }

    fn marked(mut j: Job, m: &Mark) -> Job {
        j.mark = Some(m.clone());
        j
    }

    /// The ring's ledger holds exactly the records released and not yet
    /// finished: added at release (queued or in flight), taken off after a
    /// write, and for shed ones only once the counters are published (a
    /// kill before that leaves them for the next collector to count).
    #[test]
    fn the_ledger_counts_released_records_until_written_or_published() {
        let (_dir, _c, m) = ledger_ring("queue-ledger");
        let ledger = || m.slot.ledger(&m.ring);
        let q = queue(4);
        // In flight while pinned: not in the ledger ...
        q.push(marked(job(chunk_in(1, 3, 0, 1, 0), 10), &m));
        let mut out = Vec::new();
        assert_eq!(q.take(&mut out, 100), Take::Jobs);
        assert_eq!(ledger(), [0; LEVELS]);
        // ... until it is released in flight (block 20 read).
        q.push(marked(job(chunk_in(2, 2, 19, 20, 0), 10), &m));
        assert_eq!(ledger(), [0, 0, 3, 0, 0, 0]);
        q.push(marked(job(chunk_in(3, 5, 40, 41, 0), 10), &m));
        assert_eq!(ledger(), [0, 0, 5, 0, 0, 0]);
        // An ERROR record from blocks 60-61 releases chunk 3: 8 released
        // records, past the capacity; the INFO ones are shed.
        q.push(marked(released(30, [0, 0, 0, 0, 1, 0]), &m));
        assert_eq!(dropped(&q), [0, 0, 7, 0, 0, 0]);
        assert_eq!(ledger(), [0, 0, 10, 0, 1, 0], "shed, not yet published");
        q.pay_debt();
        assert_eq!(ledger(), [0, 0, 3, 0, 1, 0]);
        // The write returns: off the ledger.
        assert!(!q.finish());
        assert_eq!(ledger(), [0, 0, 0, 0, 1, 0]);
        // Exit: the rest is counted dropped, and taken off the ledger once.
        let (lost, _) = q.count_lost_at_exit();
        assert_eq!(lost, [0, 0, 0, 0, 1, 0]);
        assert_eq!(ledger(), [0; LEVELS]);
        m.slot.ledger_add(&m.ring, &[0, 0, 0, 0, 0, 1]);
        assert_eq!(q.take(&mut out, 100), Take::Jobs);
        q.finish();
        assert_eq!(ledger(), [0, 0, 0, 0, 0, 1], "not taken off twice");
    }

    /// A queue says it has no room once its chunks, queued or in flight,
    /// fill its window (a chunk with few records counts as `MIN_CHARGE`),
    /// whatever its record capacity; room comes back as its sink finishes
    /// them.
    #[test]
    fn a_queue_has_no_room_once_its_chunks_fill_its_window() {
        let q = queue(1_000_000);
        let fit = WINDOW_BYTES / MIN_CHARGE;
        for id in 0..fit as u64 - 1 {
            q.push(pinning(id, [0, 0, 1, 0, 0, 0]));
        }
        assert_eq!(q.room().bytes, MIN_CHARGE);
        let mut out = Vec::new();
        assert_eq!(q.take(&mut out, 2), Take::Jobs); // 2 chunks in flight
        q.push(pinning(fit as u64, [0, 0, 1, 0, 0, 0]));
        assert_eq!(q.room().for_chunk(), 0, "a window held, 2 chunks in flight");
        out.clear();
        assert!(q.finish());
        assert_eq!(q.room().bytes, 2 * MIN_CHARGE);
        assert_eq!(q.room().for_chunk(), 1_000_000 - (fit - 2));
        q.close();
        assert_eq!(q.room(), Room::UNLIMITED, "a closed queue takes anything");
    }

    /// A chunk of `records` real records (their bodies make
    /// [`Chunk::bytes`]) counted as `counts`, released as it is pushed.
    fn released_with_bytes(id: u64, records: usize, counts: [u32; LEVELS]) -> Job {
        let tmp = logbus_testkit::TempDir::new("queue-bytes");
        let ring =
            logbus_ring::Ring::create(tmp.dir().join("ring"), &logbus_ring::RingOptions::default())
                .unwrap();
        let mut w = ring.writer().unwrap();
        for i in 0..records {
            w.emit(&logbus_ring::Event::new(9, &format!("{i:0>200}")))
                .unwrap();
        }
        let mut consumer = logbus_ring::Consumer::acquire(&ring).unwrap();
        let mut c = released(id, counts).chunk;
        let chunk = Arc::get_mut(&mut c).unwrap();
        assert_eq!(consumer.poll(&mut chunk.batch, records), records);
        job(c, 0)
    }

    /// Released jobs hold whole chunks: past the byte limit records are
    /// shed, lowest level first over every job, then the oldest errors,
    /// until a job's last record goes and its chunk with it.
    #[test]
    fn released_records_are_shed_when_their_chunks_pass_the_byte_limit() {
        let first = released_with_bytes(1, 100, [0, 0, 4, 0, 1, 0]);
        let bytes = first.chunk.bytes();
        assert!(bytes >= 100 * 200);
        // Room for two such chunks and a half, and for any number of records.
        let q = queue(1_000_000).with_released_bytes(bytes * 5 / 2);
        q.push(first);
        q.push(released_with_bytes(2, 100, [0, 0, 4, 0, 1, 0]));
        assert_eq!(dropped(&q), [0; LEVELS]);
        q.push(released_with_bytes(3, 100, [0, 0, 4, 0, 1, 0]));
        // Every INFO goes, then the oldest ERROR, which lets its chunk go.
        assert_eq!(dropped(&q), [0, 0, 12, 0, 1, 0]);
        assert_eq!(q.depth(), 2);
        let mut out = Vec::new();
        assert_eq!(q.take(&mut out, 100), Take::Jobs);
        assert_eq!(out.iter().map(|j| j.chunk.id).collect::<Vec<_>>(), [2, 3]);
        assert!(!q.finish());
        assert_eq!(q.stats.delivered.load(Ordering::Relaxed), 2);
    }
}
