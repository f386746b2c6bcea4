//! One ring read, a *source* (see "Rings" in `mod.rs`): its consumer
//! role, resolver and commit cursor, each sink's place in it, the records
//! held back for the order rule, and the lines about its repaired shared
//! state.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use logbus_ring::{Consumer, Ring, SinkMarks, SinkResume, SinkSlot, LEVELS};

use crate::chunk::Chunk;
use crate::notice::{Notice, Notify};
use crate::resolver::Resolver;

/// At most one line about a ring's repaired shared state this often.
const REPAIR_REPORT_EVERY: Duration = Duration::from_secs(10);

/// At most one line per [`REPAIR_REPORT_EVERY`] per ring about impossible
/// shared state its consumer set right: the first repair since the last
/// line, and how many more there were.
pub(super) fn report_repairs(src: &mut Source, notify: &Notify, now: Instant) {
    let repairs = src.consumer.take_repairs();
    let Some(first) = repairs.first() else {
        return;
    };
    if src
        .repairs_said
        .1
        .is_some_and(|at| now.duration_since(at) < REPAIR_REPORT_EVERY)
    {
        return;
    }
    let total = src.consumer.repaired_total();
    let more = total.saturating_sub(src.repairs_said.0).saturating_sub(1);
    src.repairs_said = (total, Some(now));
    notify(Notice::RingRepaired {
        path: src.ring.path().to_path_buf(),
        repair: first.to_string(),
        more,
    });
}

/// For a sink that finished some records before a restart: which records of
/// `chunk` to skip (a bitmap and its counts per level), if any.
pub(super) fn skip_done(
    chunk: &Chunk,
    resume: &SinkResume,
) -> Option<Arc<(Vec<u64>, [u32; LEVELS])>> {
    let mut bits = Vec::new();
    let mut counts = [0u32; LEVELS];
    for (i, r) in chunk.batch.iter().enumerate() {
        if resume.done(r.pos()) {
            if bits.is_empty() {
                bits = vec![0u64; chunk.batch.len().div_ceil(64)];
            }
            bits[i / 64] |= 1 << (i % 64);
            counts[r.level() as usize] += 1;
        }
    }
    (!bits.is_empty()).then(|| Arc::new((bits, counts)))
}

/// A sink's place in one ring.
pub(super) struct SinkPlace {
    /// Where it marks its progress.
    pub(super) slot: SinkSlot,
    /// What it finished before the collector started (records to skip for it
    /// when they are read again); emptied once they are past.
    pub(super) resume: Option<SinkResume>,
}

/// Why a ring is being let go.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Leaving {
    /// Its path names another file, or none: read it until it is drained and
    /// no process has a writer of it, then let go.
    Replaced,
    /// Shrunk under us: nothing more can be read.
    Truncated,
}

/// Records read from a ring and held back until the older rings of its path
/// settle (see "A thread's order across a replacement").
pub(super) struct Held {
    pub(super) chunk: Chunk,
    /// Records in it.
    pub(super) n: usize,
    /// When it was read, or an older ring of its path last handed out
    /// records (it waits at most [`ORDER_WAIT`](super::reader::ORDER_WAIT)
    /// from then).
    pub(super) since: Instant,
}

/// One ring read (see "Rings" above).
pub(super) struct Source {
    /// Unique for the collector's lifetime ([`Chunk::source`]); a ring found
    /// later has a greater key.
    pub(super) key: u32,
    pub(super) ring: Ring,
    /// The path the ring was found at: rings found at one path, one after
    /// another, keep each thread's order between them.
    pub(super) origin: PathBuf,
    /// Its order among the rings of `origin`: greater is newer. A pinned ring
    /// a killed collector left (`pin.rs`) is older than every other.
    pub(super) age: u32,
    /// Its pin (a collector of one ring), removed when the ring is let go.
    pub(super) pin: Option<PathBuf>,
    /// Records read and not yet handed out (at most one chunk).
    pub(super) held: Option<Held>,
    pub(super) consumer: Consumer,
    pub(super) resolver: Resolver,
    /// What to commit once its pending chunks are done: the greatest end seen.
    pub(super) commit_end: u64,
    /// `commit_end` moved since the last commit.
    pub(super) dirty: bool,
    /// Per sink name: its slot in this ring (none beyond the ring's slots).
    pub(super) places: HashMap<String, SinkPlace>,
    pub(super) leaving: Option<Leaving>,
    /// Repairs of impossible shared state said so far (see
    /// [`Consumer::take_repairs`]), and when the last line was.
    pub(super) repairs_said: (u64, Option<Instant>),
}

impl Source {
    /// Gives each sink of `names` its slot in the ring, keeping the places of
    /// sinks it had.
    pub(super) fn place_sinks(&mut self, names: &[&str]) {
        if names.is_empty() {
            // Sinks not started yet: `SinkMarks::assign` would free every slot, and
            // with them what each sink had finished before a restart.
            return;
        }
        let slots = SinkMarks::assign(&mut self.consumer, names);
        let mut places = HashMap::new();
        for (name, slot) in names.iter().zip(slots) {
            let place = match (self.places.remove(*name), slot) {
                (Some(p), _) => p,
                (None, Some((slot, resume))) => SinkPlace {
                    slot,
                    resume: (!resume.is_empty()).then_some(resume),
                },
                (None, None) => continue,
            };
            places.insert(name.to_string(), place);
        }
        self.places = places;
    }
}
