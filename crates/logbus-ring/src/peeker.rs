//! Non-consuming readers: `logbus dump` (what is unread) and `logbus tail`
//! (what is new, consumed or not).

use std::collections::BTreeMap;
use std::sync::atomic::{fence, Ordering};

use crate::block::{done_end, Claim, Reserve};
use crate::read::{copy_block, Batch};
use crate::ring::Ring;

/// A non-consuming reader; any number may run next to the consumer.
///
/// [`Peeker::new`] reads what is unread (from each block's committed end) and
/// then what is written later and still unread when it looks. [`Peeker::follow`]
/// starts at the newest record and reads everything written from then on,
/// whether or not the consumer has taken it, as long as its block has not been
/// reused: a follower that falls a whole ring behind skips ahead and counts
/// the blocks it skipped ([`Peeker::missed`]).
pub struct Peeker {
    ring: Ring,
    /// Per block sequence number: the offset read up to.
    pos: BTreeMap<u64, u32>,
    /// Blocks from this sequence number on are read from their start (a
    /// follower's starting point; 0 for `new`).
    fresh_from: u64,
    follow: bool,
    missed: u64,
    serial: u64,
}

impl Peeker {
    /// A peeker starting at the oldest unread record.
    pub fn new(ring: &Ring) -> Peeker {
        Peeker {
            ring: ring.clone(),
            pos: BTreeMap::new(),
            fresh_from: 0,
            follow: false,
            missed: 0,
            serial: 0,
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
        let live = ring.live();
        let a = live.map_or(0, |(_, a)| a);
        let mut pos = BTreeMap::new();
        if let Some((h, a)) = live {
            for seq in h..a {
                // Acquire: as in `poll`.
                let r = Reserve::unpack(ring.desc(seq).reserve.load(Ordering::Acquire));
                pos.insert(seq, if r.is(seq) { r.end } else { 0 });
            }
        }
        Peeker {
            ring: ring.clone(),
            pos,
            fresh_from: a,
            follow: true,
            missed: 0,
            serial: 0,
        }
    }

    /// Blocks a follower skipped because they were reused before it read them
    /// (always 0 for [`Peeker::new`]).
    pub fn missed(&self) -> u64 {
        self.missed
    }

    /// Copies up to `max` records not yet seen by this peeker into `batch`
    /// (cleared first). Records whose block may have been reused or evicted
    /// while being copied are discarded.
    pub fn poll(&mut self, batch: &mut Batch, max: usize) -> usize {
        batch.clear();
        let Some((h, a)) = self.ring.live() else {
            return 0;
        };
        // Forget blocks that are free now; a follower that had not read them
        // to their end missed what was left (it can no longer tell how much).
        let gone: Vec<u64> = self.pos.range(..h).map(|(&s, _)| s).collect();
        for s in gone {
            self.pos.remove(&s);
        }
        if self.follow && self.fresh_from < h {
            self.missed += h - self.fresh_from;
            self.fresh_from = h;
        }
        for seq in h..a {
            if batch.len() >= max {
                break;
            }
            let d = self.ring.desc(seq);
            // Acquire (both): pair with the claimer's and the consumer's Releases.
            let r = Reserve::unpack(d.reserve.load(Ordering::Acquire));
            let c = Claim::unpack(d.claim.load(Ordering::Acquire));
            if !r.is(seq) {
                continue;
            }
            if c.is(seq) && c.evicting {
                break;
            }
            if c.is(seq) && c.evicted {
                continue;
            }
            let default = if self.follow && seq < self.fresh_from {
                r.end
            } else {
                0
            };
            let mut from = *self.pos.get(&seq).unwrap_or(&default);
            if !self.follow {
                // Acquire: pairs with the consumer's Release of `done`.
                let done = done_end(d.done.load(Ordering::Acquire), seq).unwrap_or(0);
                from = from.max(done);
            }
            if from >= r.end {
                self.pos.insert(seq, from);
                continue;
            }
            let mark = batch.mark();
            let mut serial = self.serial;
            let got = copy_block(
                &self.ring,
                seq,
                from,
                r.end,
                max - batch.len(),
                batch,
                &mut serial,
            );
            // Seqlock-style re-check. Acquire fence: our copies above are
            // ordered before the loads below; a writer of a reused block
            // changes `reserve` (its claim CAS) before writing any byte.
            fence(Ordering::Acquire);
            let r2 = Reserve::unpack(d.reserve.load(Ordering::Acquire));
            let c2 = Claim::unpack(d.claim.load(Ordering::Acquire));
            if !r2.is(seq) || (c2.is(seq) && (c2.evicting || c2.evicted)) {
                batch.rollback(mark);
                continue;
            }
            self.serial = serial;
            self.pos.insert(seq, got.reached);
        }
        batch.len()
    }
}
