//! Reading records out of blocks: the helpers every side of the protocol
//! (`crate::block`) shares, kept apart so that the consumer, the evictor and
//! the writer depend on this module and not on each other.
//!
//! * [`ready_header`] / [`ready_record`]: whether a complete (stamped) record
//!   starts at an offset of a block (SYNC POINT A, the reader's side): the
//!   consumer and peekers before copying, an evictor inspecting a block, a
//!   writer checking a block it would adopt;
//! * [`copy_block`]: copies a block's complete records into a [`Batch`],
//!   validating each (shared memory is untrusted input: garbage is counted
//!   and skipped, never trusted); [`copy_records`] is the same over a plain
//!   buffer, for fuzzing and Miri;
//! * [`space_freed`]: after `head` moved (the consumer freeing, an evictor
//!   evicting), wakes the writers waiting for room.

use std::sync::atomic::Ordering;

use crate::block::{skipped_len, stamp};
use crate::futex;
use crate::layout::*;
use crate::record::{copy_shared, read_header, validate_copied, BlockPos, RecordRef};
use crate::ring::Ring;

/// Records copied out of the ring. Reused across polls, so that a steady-state
/// consumer allocates nothing.
#[derive(Default)]
pub struct Batch {
    pub(crate) buf: Vec<u8>,
    pub(crate) entries: Vec<Entry>,
}

#[derive(Clone, Copy)]
pub(crate) struct Entry {
    pub(crate) hdr: RecordHeader,
    pub(crate) off: usize,
    pub(crate) len: usize,
    pub(crate) serial: u64,
    /// The record's block (sequence number).
    pub(crate) seq: u64,
    /// Offset just past the record in its block.
    pub(crate) end: u32,
}

impl Batch {
    /// An empty batch.
    pub fn new() -> Batch {
        Batch::default()
    }

    /// Number of records.
    #[inline]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Bytes of the records' bodies held (their headers are kept apart, one
    /// entry per record).
    #[inline]
    pub fn bytes(&self) -> usize {
        self.buf.len()
    }

    /// Forgets all records (keeps the memory).
    pub fn clear(&mut self) {
        self.buf.clear();
        self.entries.clear();
    }

    /// The `i`-th record.
    #[inline]
    pub fn get(&self, i: usize) -> Option<RecordRef<'_>> {
        let e = self.entries.get(i)?;
        Some(RecordRef {
            hdr: &e.hdr,
            body: &self.buf[e.off..e.off + e.len],
            serial: e.serial,
            pos: BlockPos {
                seq: e.seq,
                end: e.end,
            },
        })
    }

    /// The records, in the order they were read (each producer thread's in
    /// emit order).
    pub fn iter(&self) -> impl Iterator<Item = RecordRef<'_>> + '_ {
        (0..self.entries.len()).filter_map(move |i| self.get(i))
    }

    /// Sorts the records by time, keeping each producer thread's records in
    /// emit order even if its clock stepped back.
    pub fn sort_by_time(&mut self) {
        // Make the key monotone per thread (the running maximum of its
        // times), then sort stably on it.
        let mut running: Vec<((u32, u32), u64)> = Vec::new();
        let mut keys: Vec<(u64, usize)> = Vec::with_capacity(self.entries.len());
        for (i, e) in self.entries.iter().enumerate() {
            let who = (e.hdr.pid, e.hdr.tid);
            let k = match running.iter_mut().find(|(w, _)| *w == who) {
                Some((_, t)) => {
                    *t = (*t).max(e.hdr.time_ns);
                    *t
                }
                None => {
                    running.push((who, e.hdr.time_ns));
                    e.hdr.time_ns
                }
            };
            keys.push((k, i));
        }
        keys.sort_by_key(|&(k, _)| k);
        self.entries = keys.into_iter().map(|(_, i)| self.entries[i]).collect();
    }

    pub(crate) fn mark(&self) -> (usize, usize) {
        (self.buf.len(), self.entries.len())
    }

    pub(crate) fn rollback(&mut self, mark: (usize, usize)) {
        self.buf.truncate(mark.0);
        self.entries.truncate(mark.1);
    }
}

/// What [`copy_block`] found.
pub(crate) struct Copied {
    /// Offset after the last record looked at (copied or skipped as garbage).
    pub reached: u32,
    /// Garbage records skipped.
    pub invalid: u64,
    /// A reserved record at `reached` is not complete yet.
    pub blocked: bool,
}

/// Copies the complete records of block `seq` in `[from, end)` into `batch`
/// (at most `max`), numbering them from `*serial`. Stops at the first record
/// that is not stamped (still being written, or garbage).
pub(crate) fn copy_block(
    ring: &Ring,
    seq: u64,
    from: u32,
    end: u32,
    max: usize,
    batch: &mut Batch,
    serial: &mut u64,
) -> Copied {
    let data = ring.block_data(seq);
    let block_size = ring.geometry().block_size;
    // SAFETY: `block_data` is block `seq`'s start in the ring's live mapping,
    // `block_size` bytes long.
    unsafe { copy_records(data, block_size, seq, from, end, max, batch, serial) }
}

/// [`copy_block`] over the block of `block_size` bytes at `data` (in a mapping
/// or in a plain buffer: the record decoder on its own, for fuzzing and Miri).
///
/// # Safety
/// `data .. data + block_size` is readable for the whole call (other
/// processes may write it meanwhile: it is read with atomic loads only) and
/// `data` is 8-aligned.
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn copy_records(
    data: *const u8,
    block_size: u32,
    seq: u64,
    from: u32,
    end: u32,
    max: usize,
    batch: &mut Batch,
    serial: &mut u64,
) -> Copied {
    let end = end.min(block_size);
    let mut off = from as usize & !(ALIGN - 1);
    let mut invalid = 0;
    let mut taken = 0;
    let mut blocked = false;
    while off < end as usize && taken < max {
        // SAFETY: `data` is the block's start (caller's contract), `off` a
        // multiple of 8 below `end <= block_size`.
        let Some(hdr) = (unsafe { ready_header(data, off, end as usize, seq) }) else {
            // A record an earlier consumer skipped and counted (torn or
            // garbage): skip it again, uncounted.
            // SAFETY: as above.
            if let Some(n) = unsafe { skipped_at(data, off, end as usize, seq) } {
                off += n;
                continue;
            }
            blocked = true;
            break;
        };
        // `ready_header` checked `RECORD_HEADER <= len` and
        // `off + placed(len) <= end`, so the body lies inside the block.
        let len = hdr.len as usize;
        let body = len - RECORD_HEADER;
        // Copied once, to the end of the batch, validated there (still in
        // this core's L1), and dropped again if invalid.
        let boff = batch.buf.len();
        // SAFETY: as above; `copy_shared` may read up to 7 bytes past the body,
        // which stay inside `placed(len)`.
        let words_or = unsafe { copy_shared(data.add(off + RECORD_HEADER), body, &mut batch.buf) };
        if validate_copied(&hdr, &batch.buf[boff..], words_or) {
            batch.entries.push(Entry {
                hdr,
                off: boff,
                len: body,
                serial: *serial,
                seq,
                end: (off + placed(len)) as u32,
            });
            *serial += 1;
            taken += 1;
        } else {
            batch.buf.truncate(boff);
            invalid += 1;
        }
        off += placed(len);
    }
    Copied {
        reached: off as u32,
        invalid,
        blocked,
    }
}

/// After `head` moved: wakes producers waiting for space (lossless mode).
pub(crate) fn space_freed(ring: &Ring) {
    let w = ring.words();
    // SeqCst: the Dekker pair with `Writer::wait_for_space` (bump, then look
    // at `waiters`; they add to `waiters`, then look at `head`).
    w.space.fetch_add(1, Ordering::SeqCst);
    if w.waiters.load(Ordering::SeqCst) > 0 {
        futex::wake(&w.space, i32::MAX);
    }
}

/// The length and severity of the complete record at `off` of block `seq`,
/// or `None` when none is there (not stamped yet, or garbage).
///
/// # Safety
/// `data` is the start of the block of `seq` in a live mapping, 8-aligned,
/// and `end` at most the block size. (`off` may be anything: an offset that
/// is not a multiple of 8 holds no record.)
pub(crate) unsafe fn ready_record(
    data: *const u8,
    off: usize,
    end: usize,
    seq: u64,
) -> Option<(usize, u8)> {
    ready_header(data, off, end, seq).map(|hdr| (hdr.len as usize, hdr.severity))
}

/// [`ready_record`], returning the header read (once) after the stamp: its
/// `len` is checked (at least a header, the record inside `end`), nothing
/// else yet.
///
/// # Safety
/// As [`ready_record`].
#[inline]
pub(crate) unsafe fn ready_header(
    data: *const u8,
    off: usize,
    end: usize,
    seq: u64,
) -> Option<RecordHeader> {
    // An offset that is no record start (a garbage cursor of a scribbled
    // ring: records start at multiples of 8) holds no record; reading a word
    // there would be a misaligned atomic load.
    if !off.is_multiple_of(ALIGN) || off + RECORD_HEADER > end {
        return None;
    }
    // Acquire, SYNC POINT A: pairs with the writer's Release store of the stamp.
    let s = (*(data.add(off) as *const std::sync::atomic::AtomicU64)).load(Ordering::Acquire);
    let hdr = read_header(data.add(off));
    let len = hdr.len as usize;
    let ok = s == stamp(seq, hdr.len) && len >= RECORD_HEADER && off + placed(len) <= end;
    ok.then_some(hdr)
}

/// The bytes spanned by a record at `off` of block `seq` that a consumer
/// marked skipped ([`crate::block::skipped_stamp`]), if one is there and
/// lies inside `end`.
///
/// # Safety
/// As [`ready_record`].
pub(crate) unsafe fn skipped_at(
    data: *const u8,
    off: usize,
    end: usize,
    seq: u64,
) -> Option<usize> {
    if !off.is_multiple_of(ALIGN) || off + 8 > end {
        return None;
    }
    // Acquire: pairs with the consumer's Release store of the mark.
    let w = (*(data.add(off) as *const std::sync::atomic::AtomicU64)).load(Ordering::Acquire);
    let n = skipped_len(w, seq)? as usize;
    (n >= RECORD_HEADER && n.is_multiple_of(ALIGN) && off + n <= end).then_some(n)
}
