//! The reader's work on records: polling the rings into chunks as far as
//! the sinks have room, holding a ring's records back for the order rule
//! (see "A thread's order across a replacement" in `mod.rs`), handing
//! chunks to every sink's queue, formatting ahead while idle, and committing
//! what every sink is done with (see "Commit rule").

use std::sync::Arc;
use std::time::{Duration, Instant};

use logbus_ring::LEVELS;

use super::source::{skip_done, Held, Leaving};
use super::Collector;
use crate::chunk::{Chunk, Counted};
use crate::config::Format;
use crate::queue::{Job, Mark, Room};

/// Most records claimed per poll: a chunk's records.
const CHUNK_RECORDS: usize = 2048;

/// Bytes of record bodies after which a poll reads no further block: a
/// chunk holds at most this plus one block's records (`Consumer::poll_within`).
const CHUNK_BYTES: usize = 256 << 10;

/// Fewest records worth a poll when the sinks are nearly full.
const MIN_POLL: usize = 64;

/// Chunks the reader keeps for reuse, with their buffers: a window of full
/// chunks (six: `queue::WINDOW_BYTES`), one being filled and one on its way
/// back. The reader makes a chunk only when none is free, that is while the
/// sinks hold every other one (it commits what they are done with before it
/// polls), so at full throughput, chunks being full, no more than this many
/// are alive. Chunks beyond (small ones of a reader that keeps pace, at most
/// a window's bytes; or held by a sink that lags behind the others, within
/// its bounded backlog: `max_backlog` in the ring, then `queue` records in at
/// most 4 MiB of chunks) are freed once done with.
pub const CHUNKS: usize = 8;

/// How long the older rings of a path may yield nothing, without settling,
/// before a newer ring's held records are handed out anyway: a writer
/// stopped in the middle of a record (see "A thread's order across a
/// replacement"). Counted from their last record read, so that a slow drain
/// (a loaded machine, a full old ring) keeps the order.
pub(super) const ORDER_WAIT: Duration = Duration::from_secs(2);

/// Longest a ring's records wait for the older rings of its path however
/// they progress: a writer that never follows the path keeps the old ring
/// busy, and must not starve the new one.
pub(super) const ORDER_CAP: Duration = Duration::from_secs(30);

/// A chunk handed to the sinks, not yet committed.
pub(super) struct Pending {
    pub(super) chunk: Arc<Chunk>,
}

impl Collector {
    /// Polls each ring once (in turn, the first one changing every time) and
    /// hands what it read to the sinks. Returns the records polled.
    ///
    /// Reads no more than the roomiest sink queue can take: when every sink is
    /// behind, records stay in the rings (whose own overflow policy then
    /// applies, protecting WARN and above) instead of being copied out only to
    /// be dropped. A sink slower than the others still drops (and counts) its
    /// own records, so that it delays no other sink.
    ///
    /// A lossless ring (`wait_ms`: its producers wait for room rather than
    /// drop) is read no faster than the slowest sink that is writing can take,
    /// and no further ahead of it than its window (`queue::WINDOW_BYTES`:
    /// what bounds the collector's memory at full throughput):
    /// a slow sink then holds records in the ring, and the producers wait,
    /// instead of shedding them. A sink whose writes fail is still isolated
    /// (its backlog, then its own shedding), so that a broken output never
    /// stops the others.
    /// `None` when no ring may be read for want of room.
    pub(super) fn poll_once(&mut self) -> Option<usize> {
        let (mut room_any, mut room_up) = (Room::NONE, Room::UNLIMITED);
        for s in &self.sinks {
            let r = s.queue.room();
            room_any = room_any.most(r);
            // Relaxed: a hint; a sink that just failed is seen at the next poll.
            if s.queue.stats.is_up() {
                room_up = room_up.least(r);
            }
        }
        if self.sinks.is_empty() {
            room_any = Room::UNLIMITED;
        }
        room_up = room_up.least(room_any);
        if room_any.records < MIN_POLL {
            return None;
        }
        let n = self.sources.len();
        self.turn = self.turn.wrapping_add(1);
        let (mut total, mut blocked) = (0, 0);
        // Rings being left first: their records go out before those of the
        // rings that replaced them (see "A thread's order across a
        // replacement").
        let leaving_first = (0..n)
            .map(|k| (self.turn + k) % n)
            .filter(|&i| self.sources[i].leaving.is_some())
            .chain(
                (0..n)
                    .map(|k| (self.turn + k) % n)
                    .filter(|&i| self.sources[i].leaving.is_none()),
            )
            .collect::<Vec<_>>();
        for i in leaving_first {
            let lossless = self.sources[i].ring.header().wait_ms > 0;
            // A drop-mode ring: as far as the roomiest queue takes records,
            // its window aside (the ring drops what is not read in time).
            let room = if lossless {
                room_up.for_chunk()
            } else {
                room_any.records
            };
            if room < MIN_POLL {
                blocked += 1;
                continue;
            }
            let (got, bytes) = self.poll_source(i, CHUNK_RECORDS.min(room));
            total += got;
            room_any = room_any.after(got, bytes);
            room_up = room_up.after(got, bytes);
        }
        if n > 0 && blocked == n {
            return None;
        }
        Some(total)
    }

    /// Whether every older ring of source `i`'s path is settled: read to its
    /// end, nothing reserved in it but incomplete, nothing of it held back.
    fn older_settled(&self, i: usize) -> bool {
        let me = &self.sources[i];
        self.sources.iter().all(|o| {
            o.age >= me.age
                || o.origin != me.origin
                || o.leaving != Some(Leaving::Replaced)
                || (o.held.is_none() && o.consumer.is_drained())
        })
    }

    /// How long since an older ring of source `i`'s path that is not settled
    /// yielded a record (`None`: they are all settled).
    fn older_idle_for(&self, i: usize) -> Option<Duration> {
        let me = &self.sources[i];
        self.sources
            .iter()
            .filter(|o| {
                o.age < me.age
                    && o.origin == me.origin
                    && o.leaving == Some(Leaving::Replaced)
                    && !(o.held.is_none() && o.consumer.is_drained())
            })
            .map(|o| o.read_at.elapsed())
            .min()
    }

    /// Polls at most `max` records of source `i` and hands them to the sinks,
    /// or holds them back until the older rings of its path settle. Returns
    /// the records polled or handed out, and their bytes ([`Chunk::bytes`]).
    fn poll_source(&mut self, i: usize, max: usize) -> (usize, usize) {
        let src = &self.sources[i];
        if src.leaving == Some(Leaving::Truncated) || src.ring.faulted() {
            // The file was shrunk under us: what is left reads as zeros.
            return (0, 0);
        }
        if let Some(held) = self.sources[i].held.take() {
            // Read before the older rings were last seen unsettled: handed out
            // once they are (or once they yielded nothing for ORDER_WAIT, or
            // after ORDER_CAP), and only then is this ring read on.
            let give_up = held.since.elapsed() >= ORDER_CAP
                || self
                    .older_idle_for(i)
                    .is_some_and(|idle| idle >= ORDER_WAIT);
            if give_up || self.older_settled(i) {
                let bytes = held.chunk.bytes();
                self.hand_out(i, held.chunk);
                return (held.n, bytes);
            }
            self.sources[i].held = Some(held);
            return (0, 0);
        }
        let mut chunk = self.reuse_chunk();
        let src = &mut self.sources[i];
        let n = src.consumer.poll_within(&mut chunk.batch, max, CHUNK_BYTES);
        if n == 0 {
            self.pool.push(chunk);
            return (0, 0);
        }
        src.read_at = Instant::now();
        // Looked at *after* the poll: settled now means that every record a
        // thread completed in an older ring before one of these was read (and
        // handed out) already.
        if !self.older_settled(i) {
            self.sources[i].held = Some(Held {
                chunk,
                n,
                since: Instant::now(),
            });
            return (0, 0);
        }
        let bytes = chunk.bytes();
        self.hand_out(i, chunk);
        (n, bytes)
    }

    /// Hands the records of `chunk`, read from source `i`, to the sinks.
    fn hand_out(&mut self, i: usize, mut chunk: Chunk) {
        let src = &mut self.sources[i];
        let id = self.next_id;
        self.next_id += 1;
        chunk.resolve(id, &mut src.resolver);
        chunk.line_sinks = [0; 2];
        for s in &self.sinks {
            if let Some(format) = s.config.kind.line_format() {
                let n = &mut chunk.line_sinks[format as usize];
                *n = n.saturating_add(1);
            }
        }
        let chunk = Arc::new(chunk);
        let blocks = src.ring.geometry().blocks as u64;
        for s in &self.sinks {
            let mut job = Job::new(chunk.clone(), s.mask);
            // `max_backlog` (a percentage of the ring) in blocks.
            job.backlog = (blocks * s.config.max_backlog as u64 / 100).max(1);
            if let Some(place) = src.places.get_mut(&s.config.name) {
                job.mark = Some(Mark {
                    ring: src.ring.clone(),
                    slot: place.slot,
                });
                if let Some(resume) = &place.resume {
                    job.skip = skip_done(&chunk, resume);
                    if chunk
                        .block_ends
                        .first()
                        .is_some_and(|p| p.seq > resume.max_seq())
                    {
                        place.resume = None; // read past everything it had finished
                    }
                }
            }
            s.queue.push(job);
        }
        self.pending.push_back(Pending { chunk });
    }

    /// Hands out every held chunk, oldest ring first (at shutdown: the order
    /// rule gives way to the deadline).
    pub(super) fn release_held(&mut self) {
        let mut order: Vec<usize> = (0..self.sources.len())
            .filter(|&i| self.sources[i].held.is_some())
            .collect();
        order.sort_by_key(|&i| self.sources[i].key);
        for i in order {
            if let Some(h) = self.sources[i].held.take() {
                self.hand_out(i, h.chunk);
            }
        }
    }

    /// A chunk from the pool, else one taken back from the sinks, else a new
    /// one: reusing a chunk's buffers saves allocating, growing and
    /// faulting in a few MiB a poll.
    fn reuse_chunk(&mut self) -> Chunk {
        if let Some(c) = self.pool.pop() {
            return c;
        }
        let mut k = 0;
        while k < self.returning.len() {
            // One owner left (this one): no sink can take a new reference,
            // as only the reader hands chunks out.
            if Arc::strong_count(&self.returning[k]) == 1 {
                if let Ok(c) = Arc::try_unwrap(self.returning.swap_remove(k)) {
                    return c;
                }
                continue;
            }
            k += 1;
        }
        Chunk {
            counted: Some(Counted::new(self.registry.chunks().clone())),
            ..Chunk::default()
        }
    }

    /// Whether a chunk done with is kept for reuse: while at most
    /// [`CHUNKS`] are alive (itself included).
    fn keep(&self) -> bool {
        self.registry.chunks().alive() <= CHUNKS
    }

    /// With nothing to read (the rings are empty, or the sinks are behind):
    /// formats the lines of the newest handed-out chunk whose formatting no
    /// sink has taken on, so that its sinks only write them, and formatting
    /// and writing run on two cores. Only for formats whose sinks take every
    /// record of the chunk (a filtered sink formats only what it takes).
    /// Returns whether it formatted a chunk.
    pub(super) fn format_ahead(&self) -> bool {
        for p in self.pending.iter().rev() {
            let c = &p.chunk;
            for format in [Format::Json, Format::Text] {
                if c.line_sinks[format as usize] == 0 || c.formatting_claimed(format) {
                    continue;
                }
                let all_taken = self
                    .sinks
                    .iter()
                    .filter(|s| s.config.kind.line_format() == Some(format))
                    .all(|s| (0..LEVELS).all(|l| s.mask & (1 << l) != 0 || c.counts[l] == 0));
                if all_taken && c.claim_formatting(format) {
                    c.lines(format);
                    return true;
                }
            }
        }
        false
    }

    /// The oldest chunk some sink still holds.
    fn pin(&self) -> Option<u64> {
        self.sinks
            .iter()
            .chain(&self.retiring)
            .filter_map(|s| s.queue.pin())
            .min()
    }

    /// Commits the chunks every sink is done with, each in its ring.
    pub(super) fn commit_finished(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let pin = self.pin();
        while let Some(p) = self.pending.front() {
            if pin.is_some_and(|pin| p.chunk.id >= pin) {
                break;
            }
            let Some(p) = self.pending.pop_front() else {
                break;
            };
            if let Some(src) = self.sources.iter_mut().find(|s| s.key == p.chunk.source) {
                src.commit_end = src.commit_end.max(p.chunk.end);
                src.dirty = true;
            }
            match Arc::try_unwrap(p.chunk) {
                Ok(c) if self.keep() => self.pool.push(c),
                Ok(_) => {}
                Err(shared) => {
                    if self.returning.len() >= CHUNKS {
                        // A sink holds on to it long (stuck): let it go.
                        self.returning.remove(0);
                    }
                    self.returning.push(shared);
                }
            }
        }
        for src in &mut self.sources {
            if std::mem::take(&mut src.dirty) && src.leaving != Some(Leaving::Truncated) {
                src.consumer.commit(src.commit_end);
            }
        }
    }
}
