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
//! read *pin* the ring: the reader does not commit them, so they survive a
//! collector crash and are delivered by the next collector. Older ones are
//! *released*: they stay queued in memory for the sink but no longer hold the
//! ring's commit, so a stalled sink never holds more than that share of the
//! ring, and never fills it for the others. (Counted in blocks, not records:
//! what a backlog costs the ring is the blocks it keeps from being reused.) There is no time
//! limit on a write: a sink retries until it gets through.
//!
//! # Shedding
//! The queue holds at most `capacity` records (in flight ones not included).
//! When a push takes it past that, records are shed, oldest first, lowest level
//! first: TRACE records of the oldest jobs, then of newer ones, then DEBUG,
//! INFO and WARN, and ERROR and FATAL only when nothing lower is left. Every
//! shed record is counted per sink and level (`dropped`). The reader is never
//! blocked.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use logbus_ring::LEVELS;

use crate::chunk::Chunk;
use crate::stats::SinkStats;

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
}

impl Job {
    /// A job of the records of `chunk` whose level is in `mask`.
    pub fn new(chunk: Arc<Chunk>, mask: u8) -> Job {
        Job {
            chunk,
            mask,
            skip: None,
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
    /// The oldest block its records come from.
    first_block: u64,
    counts: [u64; LEVELS],
    records: u64,
    /// Records of the group that pin the ring.
    pinned: u64,
}

struct State {
    items: VecDeque<Queued>,
    /// Records selected by `items`.
    queued: usize,
    /// Records (queued or in flight) that pin the ring.
    pinned: usize,
    /// The newest block sequence number a job has come from.
    newest: u64,
    inflight: Option<Inflight>,
    closed: bool,
    finished: bool,
    reopen: bool,
    /// The output is gone for good (see `Output::closed`).
    broken: bool,
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
    max_backlog: usize,
    /// Counters (shared with a predecessor of the same name across reloads).
    pub stats: Arc<SinkStats>,
}

impl SinkQueue {
    /// An empty, open queue holding at most `capacity` records in memory, of
    /// which those from the newest `max_backlog` blocks pin the ring.
    pub fn new(capacity: usize, max_backlog: usize, stats: Arc<SinkStats>) -> SinkQueue {
        SinkQueue {
            state: Mutex::new(State {
                items: VecDeque::new(),
                queued: 0,
                pinned: 0,
                newest: 0,
                inflight: None,
                closed: false,
                finished: false,
                reopen: false,
                broken: false,
            }),
            has_items: Condvar::new(),
            progress: Condvar::new(),
            capacity: capacity.max(1),
            max_backlog,
            stats,
        }
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
            st.newest = st.newest.max(last.seq);
        }
        self.depth_add(need as u64);
        st.items.push_back(Queued {
            job,
            released: false,
        });
        self.release_beyond_backlog(&mut st);
        if st.queued > self.capacity {
            self.shed(&mut st);
        }
        drop(st);
        self.has_items.notify_one();
    }

    /// Releases the oldest pinning jobs until the oldest one left starts
    /// within `max_backlog` blocks of the newest block read.
    fn release_beyond_backlog(&self, st: &mut State) {
        let limit = st.newest.saturating_sub(self.max_backlog as u64);
        let first_block = |job: &Job| job.chunk.block_ends.first().map_or(u64::MAX, |p| p.seq);
        if let Some(inf) = st.inflight.as_mut() {
            if inf.pinned > 0 && inf.first_block < limit {
                st.pinned -= inf.pinned as usize;
                inf.pinned = 0;
                inf.first_pinned = None;
            }
        }
        for q in st.items.iter_mut() {
            if q.released {
                continue;
            }
            if first_block(&q.job) >= limit {
                break;
            }
            q.released = true;
            st.pinned -= q.job.count() as usize;
        }
    }

    /// Sheds records, oldest first and lowest level first, until the queue
    /// holds at most `capacity`.
    fn shed(&self, st: &mut State) {
        for l in 0..LEVELS {
            for q in st.items.iter_mut() {
                if st.queued <= self.capacity {
                    break;
                }
                let n = q.job.level_count(l) as usize;
                if n == 0 {
                    continue;
                }
                // Relaxed: a statistic.
                self.stats.dropped[l].fetch_add(n as u64, Ordering::Relaxed);
                q.job.mask &= !(1 << l);
                st.queued -= n;
                if !q.released {
                    st.pinned -= n;
                }
                self.depth_sub(n as u64);
            }
            if st.queued <= self.capacity {
                break;
            }
        }
        st.items.retain(|q| q.job.count() > 0);
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
            first_block: u64::MAX,
            counts: [0; LEVELS],
            records: 0,
            pinned: 0,
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
            for (l, c) in inf.counts.iter_mut().enumerate() {
                *c += q.job.level_count(l) as u64;
            }
            if !q.released {
                inf.pinned += n;
                inf.first_pinned.get_or_insert(q.job.chunk.id);
                if let Some(first) = q.job.chunk.block_ends.first() {
                    inf.first_block = inf.first_block.min(first.seq);
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
        let mut st = self.lock();
        let mut pinned = false;
        if let Some(inf) = st.inflight.take() {
            st.pinned -= inf.pinned as usize;
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

    /// The in-flight jobs were refused for good by the destination and counted
    /// as rejected (sink thread): they no longer pin the ring.
    pub fn finish_rejected(&self) {
        let mut st = self.lock();
        if let Some(inf) = st.inflight.take() {
            st.pinned -= inf.pinned as usize;
            self.depth_sub(inf.records);
        }
        drop(st);
        self.progress.notify_all();
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
            st.pinned -= inf.pinned as usize;
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

    /// Records the queue can still take without shedding any.
    pub fn room(&self) -> usize {
        let st = self.lock();
        if st.closed {
            usize::MAX
        } else {
            self.capacity.saturating_sub(st.queued)
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

    /// Records queued or in flight: the sink's backlog.
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

    fn chunk(id: u64, counts: [u32; LEVELS]) -> Arc<Chunk> {
        Arc::new(Chunk {
            id,
            counts,
            ..Chunk::default()
        })
    }

    fn queue(cap: usize, backlog: usize) -> SinkQueue {
        SinkQueue::new(cap, backlog, Arc::new(SinkStats::new("t", "null")))
    }

    fn dropped(q: &SinkQueue) -> [u64; LEVELS] {
        std::array::from_fn(|l| q.stats.dropped[l].load(Ordering::Relaxed))
    }

    #[test]
    fn the_oldest_lowest_levels_are_shed_first_and_errors_last() {
        let q = queue(10, 100);
        q.push(Job::new(chunk(1, [4, 0, 4, 0, 0, 0]), 0x3f));
        // 8 queued; 2 WARN + 2 ERROR make 12: the oldest TRACE go first (a
        // level of a job goes whole).
        q.push(Job::new(chunk(2, [0, 0, 0, 2, 2, 0]), 0x3f));
        assert_eq!(dropped(&q), [4, 0, 0, 0, 0, 0]);
        assert_eq!(q.depth(), 8);
        // 6 INFO more: the oldest INFO (job 1's) go, and that is enough.
        q.push(Job::new(chunk(3, [0, 0, 6, 0, 0, 0]), 0x3f));
        assert_eq!(dropped(&q), [4, 0, 4, 0, 0, 0]);
        assert_eq!(q.depth(), 10);
        // 6 ERROR: the newer INFO go too; WARN and the ERRORs stay.
        q.push(Job::new(chunk(4, [0, 0, 0, 0, 6, 0]), 0x3f));
        assert_eq!(dropped(&q), [4, 0, 10, 0, 0, 0]);
        assert_eq!(q.depth(), 10);
        // 3 FATAL more: the WARN go, then (nothing lower left) the oldest ERRORs.
        q.push(Job::new(chunk(5, [0, 0, 0, 0, 0, 3]), 0x3f));
        assert_eq!(dropped(&q), [4, 0, 10, 2, 2, 0]);
        assert_eq!(q.depth(), 9);
        let mut out = Vec::new();
        assert_eq!(q.take(&mut out, 1000), Take::Jobs);
        assert_eq!(out.iter().map(|j| j.count()).sum::<u32>(), 9);
        assert!(q.finish());
        assert_eq!(q.stats.delivered.load(Ordering::Relaxed), 9);
        assert_eq!(q.pin(), None);
        assert_eq!(q.depth(), 0);
    }

    /// A chunk of `info` INFO records from blocks `first..=last`.
    fn chunk_in(id: u64, info: u32, first: u64, last: u64) -> Arc<Chunk> {
        Arc::new(Chunk {
            id,
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
        let q = queue(1000, 10);
        q.push(Job::new(chunk_in(1, 6, 0, 3), 0x3f));
        let mut out = Vec::new();
        assert_eq!(q.take(&mut out, 1), Take::Jobs); // chunk 1 in flight, not finishing
        q.push(Job::new(chunk_in(2, 3, 4, 9), 0x3f));
        assert_eq!(q.pin(), Some(1));
        assert_eq!(q.pinned(), 9);
        // Block 12 read: chunk 1 (from block 0) is more than 10 blocks back.
        q.push(Job::new(chunk_in(3, 4, 10, 12), 0x3f));
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
}
