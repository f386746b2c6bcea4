//! A sink's bounded queue: its overflow policy, its in-flight batch, and the
//! oldest chunk it still pins in the ring.
//!
//! # Who does what
//! * The reader thread [`SinkQueue::push`]es jobs (a chunk and the sink's level
//!   mask), asks for the sink's [`SinkQueue::pin`] before committing, and checks
//!   for stalls ([`SinkQueue::check_stall`]).
//! * The sink's thread [`SinkQueue::take`]s jobs (they become *in flight*),
//!   writes them, and reports [`SinkQueue::finish`] or [`SinkQueue::abandon`].
//!
//! Everything is under one mutex per sink; the reader touches it once per chunk
//! and once per commit check, the sink once per group of jobs.
//!
//! # Overflow policy
//! The queue holds at most `capacity` records (in flight ones not included).
//! When a new job does not fit, the lowest levels go first: for TRACE, then
//! DEBUG, INFO and WARN, that level's records are dropped from the new job, then
//! from the queued jobs newest first, until there is room. ERROR and FATAL are
//! never dropped to make room: the reader waits up to `block_timeout` for the
//! sink to take some, then drops what still does not fit. Every drop is counted
//! per sink and level.
//!
//! # Stalls
//! A sink whose in-flight batch has not finished for `stall_timeout` (a file
//! on a full disk, an endpoint that accepts but never answers) is *stalled*:
//! its in-flight and queued records are counted as dropped and no longer pin
//! the ring, and new records for it are dropped (counted) on arrival, until
//! its write finally succeeds. The sink keeps retrying that batch as its probe;
//! if it succeeds after all, its records move from `dropped` to `delivered`.
//! So a stalled sink holds the ring's commit back for at most `stall_timeout`,
//! once, and delays no other sink.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use logbus_ring::{Level, LEVELS};

use crate::chunk::{bit, Chunk};
use crate::stats::SinkStats;

/// A chunk as one sink sees it: the records of the levels in `mask`.
#[derive(Clone)]
pub struct Job {
    /// The shared chunk.
    pub chunk: Arc<Chunk>,
    /// Levels selected (bit `Level as usize`); narrowed when records are dropped.
    pub mask: u8,
}

impl Job {
    /// Records selected.
    pub fn count(&self) -> u32 {
        self.chunk.count(self.mask)
    }
}

struct Inflight {
    first_id: u64,
    since: Instant,
    counts: [u64; LEVELS],
    records: u64,
    /// Counted as dropped by a stall; no longer pins the ring.
    released: bool,
}

struct State {
    items: VecDeque<Job>,
    /// Records selected by `items`.
    queued: usize,
    inflight: Option<Inflight>,
    stalled: bool,
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
    /// Signalled when room appears or the sink finishes (the reader waits on it).
    has_room: Condvar,
    capacity: usize,
    stall_timeout: Duration,
    block_timeout: Duration,
    /// Counters (shared with a predecessor of the same name across reloads).
    pub stats: Arc<SinkStats>,
}

fn add_counts(into: &mut [u64; LEVELS], job: &Job) {
    for (l, c) in into.iter_mut().enumerate() {
        if job.mask & (1 << l) != 0 {
            *c += job.chunk.counts[l] as u64;
        }
    }
}

impl SinkQueue {
    /// An empty, open queue.
    pub fn new(
        capacity: usize,
        stall_timeout: Duration,
        block_timeout: Duration,
        stats: Arc<SinkStats>,
    ) -> SinkQueue {
        SinkQueue {
            state: Mutex::new(State {
                items: VecDeque::new(),
                queued: 0,
                inflight: None,
                stalled: false,
                closed: false,
                finished: false,
                reopen: false,
                broken: false,
            }),
            has_items: Condvar::new(),
            has_room: Condvar::new(),
            capacity: capacity.max(1),
            stall_timeout,
            block_timeout,
            stats,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A sink thread that panicked takes the process down (panic hook), so a
        // poisoned lock is never observed in practice; the data stays coherent
        // anyway (every update is a few plain stores).
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn count_dropped(&self, job: &Job, levels: u8) {
        for l in 0..LEVELS {
            if job.mask & levels & (1 << l) != 0 && job.chunk.counts[l] > 0 {
                // Relaxed: a statistic.
                self.stats.dropped[l].fetch_add(job.chunk.counts[l] as u64, Ordering::Relaxed);
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

    /// Queues `job` under the overflow policy (reader thread). Records that
    /// find no room are counted as dropped.
    pub fn push(&self, mut job: Job) {
        let need = job.count() as usize;
        if need == 0 {
            return;
        }
        let mut st = self.lock();
        if st.stalled || st.closed {
            self.count_dropped(&job, job.mask);
            return;
        }
        if st.queued + need > self.capacity {
            self.make_room(&mut st, &mut job);
        }
        let mut need = job.count() as usize;
        if need > 0 && st.queued + need > self.capacity {
            // Only ERROR and above left: wait for the sink, a bounded while.
            let deadline = Instant::now() + self.block_timeout;
            while st.queued + need > self.capacity && !st.stalled {
                let now = Instant::now();
                if now >= deadline {
                    break;
                }
                st = self
                    .has_room
                    .wait_timeout(st, deadline - now)
                    .unwrap_or_else(|p| p.into_inner())
                    .0;
            }
            if st.stalled || st.queued + need > self.capacity {
                self.count_dropped(&job, job.mask);
                return;
            }
            need = job.count() as usize;
        }
        if need == 0 {
            return;
        }
        st.queued += need;
        self.depth_add(need as u64);
        st.items.push_back(job);
        drop(st);
        self.has_items.notify_one();
    }

    /// Drops levels TRACE..WARN, lowest first, from `job` then from the queued
    /// jobs (newest first), until `job` fits.
    fn make_room(&self, st: &mut State, job: &mut Job) {
        for level in [Level::Trace, Level::Debug, Level::Info, Level::Warn] {
            let b = bit(level);
            if job.mask & b != 0 {
                self.count_dropped(job, b);
                job.mask &= !b;
            }
            if st.queued + job.count() as usize <= self.capacity {
                return;
            }
            for i in (0..st.items.len()).rev() {
                let q = &mut st.items[i];
                if q.mask & b == 0 {
                    continue;
                }
                let n = q.chunk.counts[level as usize] as usize;
                self.count_dropped(q, b);
                q.mask &= !b;
                st.queued -= n;
                self.depth_sub(n as u64);
                if st.queued + job.count() as usize <= self.capacity {
                    break;
                }
            }
            st.items.retain(|q| q.count() > 0);
            if st.queued + job.count() as usize <= self.capacity {
                return;
            }
        }
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
        let mut counts = [0u64; LEVELS];
        let mut records = 0u64;
        let first_id = st.items.front().map_or(0, |j| j.chunk.id);
        while let Some(j) = st.items.front() {
            let n = j.count() as u64;
            if records > 0 && records + n > budget as u64 {
                break;
            }
            records += n;
            add_counts(&mut counts, j);
            if let Some(j) = st.items.pop_front() {
                out.push(j);
            }
        }
        st.queued -= records as usize;
        st.inflight = Some(Inflight {
            first_id,
            since: Instant::now(),
            counts,
            records,
            released: false,
        });
        drop(st);
        self.has_room.notify_all();
        Take::Jobs
    }

    /// The in-flight jobs were written (sink thread).
    pub fn finish(&self) {
        let mut st = self.lock();
        if let Some(inf) = st.inflight.take() {
            if inf.released {
                // Counted as dropped when the sink stalled; it got through after all.
                for (l, c) in inf.counts.iter().enumerate() {
                    // Relaxed: statistics.
                    self.stats.dropped[l].fetch_sub(*c, Ordering::Relaxed);
                }
            } else {
                self.depth_sub(inf.records);
            }
            // Relaxed: a statistic.
            self.stats
                .delivered
                .fetch_add(inf.records, Ordering::Relaxed);
        }
        st.stalled = false;
        drop(st);
        self.has_room.notify_all();
    }

    /// Whether the sink should stop retrying its in-flight jobs: the queue is
    /// closing and they were released by a stall, or the output is gone for
    /// good (sink thread).
    pub fn should_give_up(&self) -> bool {
        let st = self.lock();
        st.closed && (st.broken || st.inflight.as_ref().is_none_or(|i| i.released))
    }

    /// The sink gives up its in-flight jobs (after [`should_give_up`](Self::should_give_up)).
    pub fn abandon(&self) {
        let mut st = self.lock();
        if let Some(inf) = st.inflight.take() {
            if !inf.released {
                for (l, c) in inf.counts.iter().enumerate() {
                    // Relaxed: statistics.
                    self.stats.dropped[l].fetch_add(*c, Ordering::Relaxed);
                }
                self.depth_sub(inf.records);
            }
        }
        drop(st);
        self.has_room.notify_all();
    }

    /// The oldest chunk id this sink has not finished or dropped, if any
    /// (reader thread): chunks before it may be committed as far as this sink
    /// is concerned.
    pub fn pin(&self) -> Option<u64> {
        let st = self.lock();
        match &st.inflight {
            Some(i) if !i.released => Some(i.first_id),
            _ => st.items.front().map(|j| j.chunk.id),
        }
    }

    /// Marks the sink stalled if its in-flight batch is older than the stall
    /// timeout (reader thread). Returns the records dropped by doing so.
    pub fn check_stall(&self, now: Instant) -> Option<u64> {
        let mut st = self.lock();
        let st = &mut *st;
        let inf = st.inflight.as_mut()?;
        if inf.released || now.duration_since(inf.since) < self.stall_timeout {
            return None;
        }
        inf.released = true;
        st.stalled = true;
        let mut dropped = inf.records;
        for (l, c) in inf.counts.iter().enumerate() {
            // Relaxed: statistics.
            self.stats.dropped[l].fetch_add(*c, Ordering::Relaxed);
        }
        self.depth_sub(inf.records);
        for job in st.items.drain(..) {
            self.count_dropped(&job, job.mask);
            dropped += job.count() as u64;
        }
        self.depth_sub(st.queued as u64);
        st.queued = 0;
        self.has_room.notify_all();
        Some(dropped)
    }

    /// Records the queue can still take without dropping any (unbounded when
    /// stalled or closed: such a queue takes nothing but drops at once).
    pub fn room(&self) -> usize {
        let st = self.lock();
        if st.stalled || st.closed {
            usize::MAX
        } else {
            self.capacity.saturating_sub(st.queued)
        }
    }

    /// Whether the sink is stalled.
    pub fn is_stalled(&self) -> bool {
        self.lock().stalled
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
        self.has_room.notify_all();
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
                .has_room
                .wait_timeout(st, deadline - now)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        true
    }

    /// Records queued or in flight (not released).
    pub fn depth(&self) -> u64 {
        let st = self.lock();
        st.queued as u64
            + st.inflight
                .as_ref()
                .map_or(0, |i| if i.released { 0 } else { i.records })
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

    fn queue(cap: usize) -> SinkQueue {
        SinkQueue::new(
            cap,
            Duration::from_secs(3600),
            Duration::from_millis(1),
            Arc::new(SinkStats::new("t", "null")),
        )
    }

    fn dropped(q: &SinkQueue) -> [u64; LEVELS] {
        std::array::from_fn(|l| q.stats.dropped[l].load(Ordering::Relaxed))
    }

    #[test]
    fn lowest_levels_go_first() {
        let q = queue(10);
        q.push(Job {
            chunk: chunk(1, [4, 0, 4, 0, 0, 0]),
            mask: 0x3f,
        });
        // 8 queued; 2 WARN + 2 ERROR need 4: TRACE of the queued job goes.
        q.push(Job {
            chunk: chunk(2, [0, 0, 0, 2, 2, 0]),
            mask: 0x3f,
        });
        assert_eq!(dropped(&q), [4, 0, 0, 0, 0, 0]);
        assert_eq!(q.depth(), 8);
        // 6 more INFO: its own INFO go first (4 queued INFO stay).
        q.push(Job {
            chunk: chunk(3, [0, 0, 6, 0, 0, 0]),
            mask: 0x3f,
        });
        assert_eq!(dropped(&q), [4, 0, 6, 0, 0, 0]);
        // 6 ERROR: the queued INFO make room.
        q.push(Job {
            chunk: chunk(4, [0, 0, 0, 0, 6, 0]),
            mask: 0x3f,
        });
        assert_eq!(dropped(&q), [4, 0, 10, 0, 0, 0]);
        assert_eq!(q.depth(), 10);
        // 3 FATAL: dropping the queued WARN is not enough; after 1 ms they are dropped.
        q.push(Job {
            chunk: chunk(5, [0, 0, 0, 0, 0, 3]),
            mask: 0x3f,
        });
        assert_eq!(dropped(&q), [4, 0, 10, 2, 0, 3]);
        assert_eq!(q.pin(), Some(2));
        let mut out = Vec::new();
        assert_eq!(q.take(&mut out, 1000), Take::Jobs);
        assert_eq!(out.iter().map(|j| j.count()).sum::<u32>(), 8);
        q.finish();
        assert_eq!(q.stats.delivered.load(Ordering::Relaxed), 8);
        assert_eq!(q.pin(), None);
        assert_eq!(q.depth(), 0);
    }

    #[test]
    fn stall_releases_pin_and_recovery_moves_counts_back() {
        let q = SinkQueue::new(
            100,
            Duration::ZERO,
            Duration::ZERO,
            Arc::new(SinkStats::new("t", "null")),
        );
        q.push(Job {
            chunk: chunk(1, [0, 0, 5, 0, 0, 0]),
            mask: 0x3f,
        });
        let mut out = Vec::new();
        assert_eq!(q.take(&mut out, 1), Take::Jobs);
        q.push(Job {
            chunk: chunk(2, [0, 0, 3, 0, 0, 0]),
            mask: 0x3f,
        });
        assert_eq!(q.pin(), Some(1));
        assert_eq!(q.check_stall(Instant::now()), Some(8));
        assert_eq!(q.pin(), None);
        assert!(q.is_stalled());
        q.push(Job {
            chunk: chunk(3, [0, 0, 2, 0, 0, 0]),
            mask: 0x3f,
        });
        assert_eq!(dropped(&q)[2], 10);
        q.finish();
        assert!(!q.is_stalled());
        assert_eq!(dropped(&q)[2], 5);
        assert_eq!(q.stats.delivered.load(Ordering::Relaxed), 5);
        q.close();
        assert_eq!(q.take(&mut out, 1), Take::Closed);
    }
}
