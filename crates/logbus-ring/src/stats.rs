//! A snapshot of a ring's books: where every record emitted into it ended.

use std::sync::atomic::Ordering;

use crate::layout::{LOCK_CONSUMER, RECORD_HEADER};
use crate::level::{Level, LEVELS};
use crate::lock;
use crate::peeker::Peeker;
use crate::read::Batch;
use crate::ring::Ring;

/// Per-level counters of a ring.
///
/// Every record a producer emitted ends in exactly one of `delivered`,
/// `dropped`, `evicted`, `torn` or `unread`, so `emitted` is their sum; a test
/// or a user who knows how many records were emitted compares with it
/// ([`Stats::unaccounted`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LevelCounts {
    /// `delivered + dropped + evicted + torn + unread`.
    pub emitted: u64,
    /// Records completed in the ring: `delivered + evicted + unread`.
    pub published: u64,
    /// Records refused by the overflow policy.
    pub dropped: u64,
    /// Records pushed out by protected records.
    pub evicted: u64,
    /// Records whose producer died while writing them (or while moving them
    /// during an eviction: those are also in `lost`).
    pub torn: u64,
    /// Of `torn`: protected records a producer was moving (compacting the
    /// oldest blocks to make room) when it died. The move rewrites blocks in
    /// place, so what it held is gone.
    pub lost: u64,
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
    /// Blocks claimed and not yet freed, and blocks in the ring.
    pub blocks_in_use: u64,
    /// Blocks in the ring.
    pub blocks: u64,
    /// Lossless mode: how long producers wait for room, in ms (0: never).
    pub wait_ms: u32,
    /// Records whose producer waited for room (lossless mode), and those of
    /// them whose wait ran out.
    pub waits: u64,
    /// See [`Stats::waits`].
    pub wait_timeouts: u64,
    /// Times a producer woke the sleeping consumer.
    pub wakeups: u64,
    /// The counters (named as in `logbus stat`: `delivered`, `evicted`,
    /// `torn`, `lost`, `invalid`, `dropped`, `waits`, `wait_timeouts`,
    /// `wakeups`, and `emitted` when one it sums is) whose values no ring can
    /// have, and `cursors` when `head` and `alloc` cannot be a ring's: its
    /// shared words were overwritten by a process that may write it. Their
    /// values are not to be trusted, nor is any sum of them. A counter of
    /// records that were in blocks is impossible above what every block
    /// claimed so far could have held (`alloc` uses of a block, each holding
    /// at most `block_size / 64` records, plus one skipped); the others above
    /// 2^60 (a billion a second for 36 years).
    pub impossible: Vec<&'static str>,
}

/// Above this, a counter of events that need no block (drops, waits,
/// wake-ups) is impossible.
const MAX_PLAUSIBLE: u64 = 1 << 60;

impl Stats {
    /// Whether the counter `name` (see [`Stats::impossible`]) has a value no
    /// ring can have.
    pub fn is_impossible(&self, name: &str) -> bool {
        self.impossible.contains(&name)
    }

    /// The counts of one level.
    pub fn level(&self, level: Level) -> &LevelCounts {
        &self.levels[level as usize]
    }

    /// The first level whose books do not account for `emitted[level]`
    /// records (what the producers know they emitted), with the counts found.
    /// `None` when every record is delivered, dropped, evicted, torn or unread.
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("logbus-doc-b-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir).unwrap();
    /// let ring = logbus_ring::Ring::open(dir.join("ring")).unwrap();
    /// ring.writer().unwrap().emit(&logbus_ring::Event::new(9, "x")).unwrap();
    /// assert_eq!(ring.stats().unaccounted(&[0, 0, 1, 0, 0, 0]), None);
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// ```
    pub fn unaccounted(&self, emitted: &[u64; LEVELS]) -> Option<(Level, LevelCounts)> {
        Level::ALL
            .into_iter()
            .map(|l| (l, self.levels[l as usize]))
            .find(|(l, c)| c.emitted != emitted[*l as usize])
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
            t.lost = t.lost.wrapping_add(l.lost);
            t.delivered = t.delivered.wrapping_add(l.delivered);
            t.unread = t.unread.wrapping_add(l.unread);
        }
        t
    }
}

impl Ring {
    /// The counters of `s` no ring can have (see [`Stats::impossible`]).
    fn impossible_counters(&self, s: &Stats) -> Vec<&'static str> {
        let mut out = Vec::new();
        let geo = self.geometry();
        let live = self.live();
        if live.is_none() {
            out.push("cursors");
        }
        // Records that were in blocks: at most what every block use so far
        // could hold (records are at least a header long), plus one record
        // skipped as stuck per block use.
        let per_block = (geo.block_size as usize / RECORD_HEADER) as u64 + 1;
        let bound = live.map(|(_, a)| {
            a.saturating_add(geo.blocks as u64)
                .saturating_mul(per_block)
        });
        let sum =
            |f: fn(&LevelCounts) -> u64| s.levels.iter().fold(0u64, |t, c| t.saturating_add(f(c)));
        let in_blocks = [
            ("delivered", sum(|c| c.delivered)),
            ("evicted", sum(|c| c.evicted)),
            ("torn", sum(|c| c.torn)),
            ("lost", sum(|c| c.lost)),
            ("invalid", s.invalid),
        ];
        for (name, v) in in_blocks {
            if bound.is_none_or(|b| v > b) {
                out.push(name);
            }
        }
        for (name, v) in [
            ("dropped", sum(|c| c.dropped)),
            ("waits", s.waits),
            ("wait_timeouts", s.wait_timeouts),
            ("wakeups", s.wakeups),
        ] {
            if v >= MAX_PLAUSIBLE {
                out.push(name);
            }
        }
        if ["delivered", "evicted", "torn", "dropped"]
            .iter()
            .any(|n| out.contains(n))
        {
            out.push("emitted");
        }
        out
    }

    /// Reads every counter and counts the unread records per level (with a
    /// [`Peeker`]). Exact when nobody writes or consumes meanwhile.
    pub fn stats(&self) -> Stats {
        let mut s = Stats::default();
        let w = self.words();
        // Relaxed loads below: statistics; a snapshot may be a moment old.
        for (l, c) in s.levels.iter_mut().enumerate() {
            c.dropped = w.dropped[l].load(Ordering::Relaxed);
            c.evicted = w.evicted[l].load(Ordering::Relaxed);
            // Protected records a dying evictor was moving count as torn.
            c.lost = w.lost[l].load(Ordering::Relaxed);
            c.torn = w.torn[l].load(Ordering::Relaxed).wrapping_add(c.lost);
            c.delivered = w.delivered[l].load(Ordering::Relaxed);
        }
        s.invalid = w.invalid.load(Ordering::Relaxed);
        s.waits = w.waits.load(Ordering::Relaxed);
        s.wait_timeouts = w.wait_timeouts.load(Ordering::Relaxed);
        s.wakeups = w.wakeups.load(Ordering::Relaxed);
        s.blocks = self.geometry().blocks as u64;
        s.wait_ms = self.header().wait_ms;
        let a = w.alloc.load(Ordering::Relaxed);
        let h = w.head.load(Ordering::Relaxed);
        s.blocks_in_use = a.saturating_sub(h).min(s.blocks);
        let mut peek = Peeker::new(self);
        let mut batch = Batch::new();
        // Bounded: with producers still writing, stop after about one ring's worth.
        let mut budget = self.geometry().data_bytes() / 64;
        while budget > 0 && peek.poll(&mut batch, 4096) > 0 {
            budget = budget.saturating_sub(batch.len() as u64);
            for r in batch.iter() {
                let u = &mut s.levels[r.level() as usize].unread;
                *u = u.wrapping_add(1);
            }
        }
        for c in &mut s.levels {
            // Wrapping: counters a garbage writer set near the top must not
            // panic a reader.
            c.published = c.delivered.wrapping_add(c.evicted).wrapping_add(c.unread);
            c.emitted = c.published.wrapping_add(c.dropped).wrapping_add(c.torn);
        }
        s.impossible = self.impossible_counters(&s);
        // Relaxed: informational, as above.
        let pid = self.consumer_pid_word().load(Ordering::Relaxed);
        let alive = self
            .fd()
            .is_some_and(|fd| lock::held_by_other(fd, LOCK_CONSUMER).unwrap_or(false))
            || self.inner.consumer_taken.load(Ordering::Relaxed);
        if pid != 0 || alive {
            s.consumer = Some((pid, alive));
        }
        s
    }
}
