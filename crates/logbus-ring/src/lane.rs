//! Lanes and the producer side of the protocol.
//!
//! # Why lanes
//! One shared tail cursor costs ~255 ns a record when two processes write at
//! once, because its cache line bounces between cores. So the ring is split into
//! lanes, each a single-producer ring of slots with its own cursors, and every
//! producing thread holds a lane of its own. A producer then writes only cache
//! lines nobody else writes (its lane header's producer half and its slots); the
//! consumer merges the lanes. One file, one consumer, one overflow policy, one set
//! of counters (summed over lanes).
//!
//! # Ownership
//! A thread takes a lane by locking the lane's byte in the lock area
//! ([`crate::lock`]), with an in-process flag first so that threads sharing one
//! [`Ring`] handle (one open file description) exclude each other too. The lock
//! dies with its process, so a lane whose lock is free has no live owner.
//!
//! # Who writes what (lane header)
//! | word | writer | readers |
//! |---|---|---|
//! | `tail` | owner | consumer, peekers |
//! | `pending_pos`, `pending_info` | owner | whoever reaps the lane (holding its lock) |
//! | `published`, `dropped`, `evicted`, `torn` per level | owner (or reaper, holding the lock) | stat |
//! | `cursor` = head and read | consumer (claim, commit) and owner (evict), by CAS only | everyone |
//! | `delivered` per level, `invalid` | consumer | stat |
//! | `lost` per level | whoever reaps the lane (holding its lock) | stat |
//!
//! # Positions and slot states
//! Positions count slots from the lane's creation and never go back; slot `p`
//! lives at index `p % slots`. A slot is in one of these ranges:
//!
//! ```text
//!  finished      claimed (in flight)   published, unread     free
//! ----------|------------------------|---------------------|----------------|
//!          head                     read                  tail         head+slots
//! ```
//!
//! * free → published: the owner writes the record into `[tail, tail+n)` (a
//!   padding record first if it would cross the lane's end), then stores
//!   `tail += n` with **Release**. The consumer's **Acquire** load of `tail`
//!   makes the bytes visible (SYNC POINT A). Before writing, the owner checks
//!   `tail + n <= head + slots` with an **Acquire** load of the cursor, pairing
//!   with the consumer's Release commit (SYNC POINT B): the consumer has finished
//!   copying any slot it gave back before the owner overwrites it.
//! * published → claimed: the consumer copies records out of `[read, tail)`,
//!   then CASes `read` forward (AcqRel). The CAS fails only if the owner evicted
//!   meanwhile; the consumer then discards its copies and reads again.
//! * claimed → finished: the consumer CASes `head` forward to a position it
//!   claimed (AcqRel, SYNC POINT B), after its sinks are done.
//! * published → finished (eviction): see below. Every eviction starts with a
//!   CAS of the cursor from `(h, h)` (AcqRel), so it is only possible while the
//!   consumer has nothing in flight, and one CAS on one word decides between the
//!   consumer's claim and the owner's eviction.
//!
//! # Eviction
//! When the lane is full and the new record is protected, the owner looks for
//! the oldest unread record below the protection level, the victim `V`:
//! * `V` is at the head: CAS `(h, h)` → `(h+|V|, h+|V|)`; its slots are free.
//! * `V` follows a run `P` of protected records (at most 255): CAS `(h, h)` →
//!   `(h, end of V)` with the EVICTING flag. The consumer and peekers leave a
//!   flagged lane alone. The owner moves `P` up by `|V|` slots (over `V`),
//!   rewrites the moved stamps, then stores `(h+|V|, h+|V|)`, flag clear, with
//!   **Release** (the consumer's Acquire load of the cursor sees the moved bytes).
//!   Order is kept: `P` is still read before everything after `V`.
//! * no victim among the unread records (or the run crosses the lane's end, or
//!   the consumer has records in flight): the new record is dropped.
//!
//! # Accounting that survives SIGKILL
//! Each counter has one writer and is bumped with a plain (relaxed) store. An
//! operation that needs two steps (publish, then count; evict, then count)
//! first records itself in `pending_pos`/`pending_info` (kind, level, the
//! counter's value after the step). Whoever next holds the lane's lock (the next
//! owner, or the consumer reaping dead lanes) completes the count from that note:
//! a write that never published becomes `torn`, a publish or eviction whose count
//! was not yet stored gets it; an eviction whose CAS lost to the consumer
//! withdraws its note; a move interrupted by death (flag still set) has its run
//! counted as lost (per level, from the note) and the lane handed back past it. So for every level, at every quiescent moment:
//! `published + dropped + torn == emitted` and
//! `published == delivered + evicted + lost + unread` (records in `[head, tail)`).
//!
//! # What a killed producer leaves
//! Nothing a reader can see: the tail moves only after a record is complete, so
//! a half-written record is just free space that the next owner overwrites. The
//! consumer never waits for a lane; other lanes go on regardless.

use std::sync::atomic::{fence, AtomicU64, Ordering};

use crate::clock::now_ns;
use crate::cursor::Cursor;
use crate::error::{EmitError, LaneError};
use crate::fork;
use crate::layout::*;
use crate::level::{Level, LEVELS};
use crate::lock;
use crate::ring::Ring;

/// A field value, borrowed from the caller.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Value<'a> {
    /// A string.
    Str(&'a str),
    /// A signed integer.
    I64(i64),
    /// An unsigned integer.
    U64(u64),
    /// A float.
    F64(f64),
    /// A boolean.
    Bool(bool),
}

/// One structured key/value of an event.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Field<'a> {
    /// The key (cut to 255 bytes).
    pub key: &'a str,
    /// The value.
    pub value: Value<'a>,
}

/// What a producer emits; everything is borrowed, nothing is allocated.
#[derive(Clone, Copy, Debug)]
pub struct Event<'a> {
    /// OpenTelemetry severity number 1-24 (out-of-range values are clamped).
    pub severity: u8,
    /// ns since the Unix epoch; 0 means "now".
    pub time_ns: u64,
    /// The logger name / module path.
    pub target: &'a str,
    /// The message.
    pub message: &'a str,
    /// Structured fields, written in order.
    pub fields: &'a [Field<'a>],
    /// W3C trace id, if the event belongs to a trace.
    pub trace_id: Option<[u8; 16]>,
    /// W3C span id, if known.
    pub span_id: Option<[u8; 8]>,
    /// W3C trace flags.
    pub trace_flags: u8,
}

impl<'a> Event<'a> {
    /// An event with a severity and a message, now, no target, no fields, no trace.
    pub fn new(severity: u8, message: &'a str) -> Event<'a> {
        Event {
            severity,
            time_ns: 0,
            target: "",
            message,
            fields: &[],
            trace_id: None,
            span_id: None,
            trace_flags: 0,
        }
    }
}

/// What happened to an emitted record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Emitted {
    /// The record is in the ring; `evicted` older low-severity records made room.
    Written {
        /// Records evicted to make room.
        evicted: u32,
    },
    /// The overflow policy refused the record; it is counted as dropped.
    Dropped,
}

const PENDING_WRITE: u64 = 1;
const PENDING_EVICT: u64 = 2;
const PENDING_COMPACT: u64 = 3;
/// Most protected records moved over one evicted record: bounds the work of
/// one eviction and keeps the per-level counts of the run in one byte each.
const MAX_RUN: u64 = 255;
const TARGET_BITS: u32 = 40;
const TARGET_MASK: u64 = (1 << TARGET_BITS) - 1;
const MAX_TARGET: usize = 1024;

fn pending_info(kind: u64, level: usize, pos: u64, target: u64) -> u64 {
    (kind << 60) | ((level as u64) << 56) | ((pos & 0xFFFF) << TARGET_BITS) | (target & TARGET_MASK)
}

/// Typed views of one lane header's words.
pub(crate) struct LaneWords<'r> {
    pub tail: &'r AtomicU64,
    pub pending_pos: &'r AtomicU64,
    pub pending_info: &'r AtomicU64,
    pub cursor: &'r AtomicU64,
    pub pending_extra: &'r AtomicU64,
    pub base: usize,
    ring: &'r Ring,
}

impl<'r> LaneWords<'r> {
    pub fn new(ring: &'r Ring, lane: u32) -> Self {
        let base = ring.lane_header(lane);
        LaneWords {
            tail: ring.u64_at(base + LANE_TAIL),
            pending_pos: ring.u64_at(base + LANE_PENDING_POS),
            pending_info: ring.u64_at(base + LANE_PENDING_INFO),
            cursor: ring.u64_at(base + LANE_CURSOR),
            pending_extra: ring.u64_at(base + LANE_PENDING_EXTRA),
            base,
            ring,
        }
    }
    pub fn counter(&self, which: usize, level: usize) -> &'r AtomicU64 {
        debug_assert!(level < LEVELS);
        self.ring.u64_at(self.base + which + level * 8)
    }
    pub fn owner_pid(&self) -> &'r std::sync::atomic::AtomicU32 {
        self.ring.u32_at(self.base + LANE_OWNER_PID)
    }
    pub fn owner_tid(&self) -> &'r std::sync::atomic::AtomicU32 {
        self.ring.u32_at(self.base + LANE_OWNER_TID)
    }
    pub fn invalid(&self) -> &'r AtomicU64 {
        self.ring.u64_at(self.base + LANE_INVALID)
    }
}

/// Completes the accounting of an operation the lane's previous owner left
/// half done (see the module docs). The caller holds the lane's lock, so no
/// producer runs on this lane; the consumer may run concurrently but never
/// writes the words touched here. Returns the records found torn.
pub(crate) fn reap(ring: &Ring, lane: u32) -> u64 {
    let w = LaneWords::new(ring, lane);
    // Relaxed: the previous owner is dead or released the lock; lock hand-over
    // (a system call on both sides) orders its stores before our loads.
    let info = w.pending_info.load(Ordering::Relaxed);
    let pos = w.pending_pos.load(Ordering::Relaxed);
    let kind = info >> 60;
    let level = ((info >> 56) & 0xF) as usize;
    let target = info & TARGET_MASK;
    let mut torn = 0;
    if level < LEVELS && (info >> TARGET_BITS) & 0xFFFF == pos & 0xFFFF {
        // Acquire: pairs with the dead owner's last Release store of the tail.
        let tail = w.tail.load(Ordering::Acquire);
        // Relaxed counters here and below: we hold the lane lock, so we are
        // their only writer; readers (stat) tolerate a momentarily old value.
        let bump = |c: &AtomicU64| {
            let v = c.load(Ordering::Relaxed);
            if (v.wrapping_add(1) & TARGET_MASK) == target {
                c.store(v.wrapping_add(1), Ordering::Relaxed);
                true
            } else {
                false
            }
        };
        match kind {
            PENDING_WRITE if pos >= tail => {
                // Started, never published: the caller never saw it return.
                let published = w.counter(LANE_PUBLISHED, level).load(Ordering::Relaxed);
                if (published.wrapping_add(1) & TARGET_MASK) == target {
                    let t = w.counter(LANE_TORN, level);
                    t.store(t.load(Ordering::Relaxed).wrapping_add(1), Ordering::Relaxed);
                    torn = 1;
                }
            }
            PENDING_WRITE => {
                bump(w.counter(LANE_PUBLISHED, level));
            }
            PENDING_EVICT | PENDING_COMPACT => {
                // Acquire: pairs with the consumer's and the dead owner's CASes.
                let word = w.cursor.load(Ordering::Acquire);
                let slots = ring.geometry().slots_per_lane as u64;
                match Cursor::unpack(word, tail, slots) {
                    Some(c) if c.evicting && c.head == pos => {
                        // Killed while moving a protected run over its victim:
                        // the run's bytes are in an unknown state. The victim is
                        // gone (evicted); the run is lost, counted per level.
                        let extra = w.pending_extra.load(Ordering::Relaxed);
                        for l in 0..LEVELS {
                            let k = (extra >> (8 * l)) & 0xff;
                            let lost = w.counter(LANE_LOST, l);
                            lost.store(
                                lost.load(Ordering::Relaxed).wrapping_add(k),
                                Ordering::Relaxed,
                            );
                        }
                        bump(w.counter(LANE_EVICTED, level));
                        // Hand the lane back to readers past the damaged run.
                        // AcqRel: as every cursor CAS.
                        let _ = w.cursor.compare_exchange(
                            word,
                            Cursor::at(c.read, c.read).pack(),
                            Ordering::AcqRel,
                            Ordering::Relaxed,
                        );
                    }
                    Some(c) if !c.evicting && c.head > pos => {
                        bump(w.counter(LANE_EVICTED, level));
                    }
                    _ => {}
                }
            }
            _ => {}
        }
    }
    // Relaxed: only lock holders read the note; the lock hand-over orders it.
    w.pending_info.store(0, Ordering::Relaxed);
    torn
}

impl Ring {
    /// Takes a free lane for the calling thread and returns its writer.
    ///
    /// One writer per thread: a writer is `Send` but its `emit` takes `&mut self`.
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("logbus-doc-w-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir).unwrap();
    /// use logbus_ring::{Emitted, Event, Ring};
    /// let ring = Ring::open(dir.join("ring")).unwrap();
    /// let mut w = ring.writer().unwrap();
    /// assert_eq!(w.emit(&Event::new(9, "hello")), Ok(Emitted::Written { evicted: 0 }));
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// ```
    ///
    /// # Errors
    /// [`LaneError::NoFreeLane`] when every lane has a live owner,
    /// [`LaneError::Forked`] when this handle was opened before `fork()`.
    pub fn writer(&self) -> Result<LaneWriter, LaneError> {
        let fd = self.fd().ok_or(LaneError::Forked)?;
        let lanes = self.geometry().lanes;
        // Spread processes over the lanes so that they rarely probe held ones.
        let start = std::process::id().wrapping_mul(0x9E37_79B9) >> 8;
        for i in 0..lanes {
            let lane = (start.wrapping_add(i)) & (lanes - 1);
            let held = &self.inner.lanes_held[lane as usize];
            // Acquire pairs with the Release in `LaneWriter::drop` of a previous
            // writer of this handle: its last stores happen before ours.
            if held
                .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
                .is_err()
            {
                continue;
            }
            match lock::try_lock(fd, LOCK_LANE_BASE + lane as i64) {
                Ok(true) => match LaneWriter::take(self, lane) {
                    Some(w) => return Ok(w),
                    None => {
                        lock::unlock(fd, LOCK_LANE_BASE + lane as i64);
                        // Release: as in `LaneWriter::drop` (hands the flag back).
                        held.store(false, Ordering::Release);
                    }
                },
                Ok(false) => held.store(false, Ordering::Release),
                Err(e) => {
                    held.store(false, Ordering::Release);
                    return Err(LaneError::Io(e));
                }
            }
        }
        Err(LaneError::NoFreeLane { lanes })
    }

    /// Counts a record that found no lane at all (every lane held).
    pub fn count_lane_shortage(&self, severity: u8) {
        let level = Level::from_severity(severity.clamp(1, 24)).unwrap_or(Level::Info) as usize;
        // Relaxed: a statistics counter; contended only in this rare situation.
        self.u64_at(OFF_LANE_SHORTAGE + level * 8)
            .fetch_add(1, Ordering::Relaxed);
    }
}

/// Exclusive writer of one lane. Made by [`Ring::writer`]; gives the lane back on drop.
pub struct LaneWriter {
    ring: Ring,
    lane: u32,
    data: *mut u8,
    tail_word: *const AtomicU64,
    cursor_word: *const AtomicU64,
    pending_pos: *const AtomicU64,
    pending_info: *const AtomicU64,
    pending_extra: *const AtomicU64,
    counters: *const AtomicU64,
    /// Next position to write; equals the shared `tail` between calls.
    tail: u64,
    /// A possibly stale copy of `head`; re-read only when the lane looks full.
    head_cache: u64,
    slots: u64,
    slot_size: usize,
    max_record: usize,
    max_message: usize,
    protect: u8,
    /// Per level: the most slots that may be in use after writing such a record.
    limit: [u64; LEVELS],
    /// Local copies of this lane's counters (we are their only writer).
    published: [u64; LEVELS],
    dropped: [u64; LEVELS],
    evicted: [u64; LEVELS],
    pid: u32,
    tid: u32,
    resource: u8,
    generation: u64,
}

// SAFETY: the raw pointers point into the ring mapping, which `self.ring` keeps
// alive; the lane they designate is owned by this writer alone (lane lock plus
// in-process flag), so moving the writer to another thread moves the ownership.
unsafe impl Send for LaneWriter {}

impl LaneWriter {
    fn take(ring: &Ring, lane: u32) -> Option<LaneWriter> {
        reap(ring, lane);
        let geo = ring.geometry();
        let w = LaneWords::new(ring, lane);
        let slots = geo.slots_per_lane as u64;
        // Acquire pairs with the previous owner's Release store of the tail.
        let tail = w.tail.load(Ordering::Acquire);
        if tail > crate::cursor::MAX_POS {
            return None; // garbage tail: this lane is unusable
        }
        // A cursor that cannot belong to this tail means someone wrote garbage;
        // leave the lane to the consumer (it resynchronises it) and take another.
        let cursor = Cursor::unpack(w.cursor.load(Ordering::Acquire), tail, slots)?;
        let header = ring.header();
        let load = |which| std::array::from_fn(|l| w.counter(which, l).load(Ordering::Relaxed));
        let limit = std::array::from_fn(|l| slots * header.watermarks[l] as u64 / 100);
        w.owner_pid().store(std::process::id(), Ordering::Relaxed);
        // SAFETY: gettid has no preconditions.
        let tid = unsafe { libc::gettid() } as u32;
        w.owner_tid().store(tid, Ordering::Relaxed);
        Some(LaneWriter {
            data: ring.lane_data(lane),
            tail_word: w.tail,
            cursor_word: w.cursor,
            pending_pos: w.pending_pos,
            pending_info: w.pending_info,
            pending_extra: w.pending_extra,
            counters: w.counter(LANE_PUBLISHED, 0),
            tail,
            head_cache: cursor.head,
            slots,
            slot_size: geo.slot_size as usize,
            max_record: geo.max_record_bytes(),
            max_message: header.max_message as usize,
            protect: header.protect_severity,
            limit,
            published: load(LANE_PUBLISHED),
            dropped: load(LANE_DROPPED),
            evicted: load(LANE_EVICTED),
            pid: std::process::id(),
            tid,
            resource: 0,
            generation: ring.inner.generation,
            lane,
            ring: ring.clone(),
        })
    }

    /// The lane this writer owns.
    pub fn lane(&self) -> u32 {
        self.lane
    }

    /// Tags every later record with a resource registered by
    /// [`Ring::register_resource`] (0 = none).
    pub fn set_resource(&mut self, resource: u8) {
        self.resource = resource;
    }

    /// The thread id written into records (the creating thread's).
    pub fn set_tid(&mut self, tid: u32) {
        self.tid = tid;
    }

    #[inline]
    fn word(&self, p: *const AtomicU64) -> &AtomicU64 {
        // SAFETY: every word pointer was made from the ring mapping that
        // `self.ring` keeps alive, 8-aligned (see `Ring::u64_at`).
        unsafe { &*p }
    }

    #[inline]
    fn counter(&self, which: usize, level: usize) -> &AtomicU64 {
        // SAFETY: the counter arrays lie in this lane's header at fixed offsets
        // from `published[0]`; `which` is one of the LANE_* counter offsets and
        // `level < LEVELS`, so the word is inside the header and 8-aligned.
        unsafe { &*self.counters.add((which - LANE_PUBLISHED) / 8 + level) }
    }

    /// Writes one record, applying the overflow policy. No lock, no syscall, no
    /// allocation; never waits for the consumer.
    ///
    /// # Errors
    /// [`EmitError::Forked`] in a child process after `fork()`.
    #[inline]
    pub fn emit(&mut self, ev: &Event<'_>) -> Result<Emitted, EmitError> {
        if self.generation != fork::generation() {
            return Err(EmitError::Forked);
        }
        let severity = ev.severity.clamp(1, 24);
        let level = usize::from((severity - 1) / 4);
        let plan = Plan::new(ev, self.max_record, self.max_message);
        let n = slots_for(plan.len, self.slot_size);
        let pos = self.tail;
        let index = pos & (self.slots - 1);
        let pad = if index + n > self.slots {
            self.slots - index
        } else {
            0
        };
        let need = pad + n;
        let mut evicted = 0;
        if pos + need - self.head_cache > self.limit[level] {
            // The cached head says there is no room: look at the real one.
            // Acquire pairs with the consumer's Release commit (SYNC POINT B).
            let word = self.word(self.cursor_word).load(Ordering::Acquire);
            self.head_cache = Cursor::unpack(word, pos, self.slots).map_or(pos, |c| c.head);
            if pos + need - self.head_cache > self.limit[level] {
                if severity < self.protect {
                    return Ok(self.drop_record(level));
                }
                match self.evict_for(pos, need) {
                    Some(k) => evicted = k,
                    None => return Ok(self.drop_record(level)),
                }
            }
        }
        // Note the write before starting it (see "Accounting" in the module docs).
        // Relaxed: only a later holder of the lane lock reads the note, and the
        // lock hand-over (or our death) orders it before that read.
        self.word(self.pending_pos).store(pos, Ordering::Relaxed);
        self.word(self.pending_info).store(
            pending_info(
                PENDING_WRITE,
                level,
                pos,
                self.published[level].wrapping_add(1),
            ),
            Ordering::Relaxed,
        );
        // SYNC POINT C: orders everything before (our load of the cursor, our
        // last tail store) before the slot writes below, for peekers that read
        // slots below head and re-check with an Acquire fence. Free on x86.
        fence(Ordering::Release);
        if pad > 0 {
            let hdr = RecordHeader {
                stamp: pos,
                len: (pad as usize * self.slot_size) as u32,
                flags: flags::PAD,
                ..RecordHeader::default()
            };
            // SAFETY: slots [pos, pos+pad) are free (checked above against head)
            // and lie inside the lane: index + pad == slots.
            unsafe { self.put(index, bytemuck::bytes_of(&hdr), 0) };
        }
        let at = (pos + pad) & (self.slots - 1);
        let time_ns = if ev.time_ns == 0 {
            now_ns()
        } else {
            ev.time_ns
        };
        let mut flags = if plan.truncated { flags::TRUNCATED } else { 0 };
        if ev.trace_id.is_some() {
            flags |= flags::HAS_TRACE;
        }
        if ev.span_id.is_some() {
            flags |= flags::HAS_SPAN;
        }
        let hdr = RecordHeader {
            stamp: pos + pad,
            time_ns,
            trace_id: ev.trace_id.unwrap_or_default(),
            span_id: ev.span_id.unwrap_or_default(),
            pid: self.pid,
            tid: self.tid,
            len: plan.len as u32,
            msg_len: plan.msg_len as u32,
            target_len: plan.target_len as u16,
            nfields: plan.nfields as u16,
            severity,
            flags,
            trace_flags: ev.trace_flags,
            resource: self.resource,
        };
        // SAFETY: slots [pos+pad, pos+need) are free and contiguous inside the
        // lane (no wrap, by the padding above); plan.len <= n * slot_size.
        unsafe {
            let mut off = self.put(at, bytemuck::bytes_of(&hdr), 0);
            off = self.put(at, &ev.target.as_bytes()[..plan.target_len], off);
            off = self.put(at, &ev.message.as_bytes()[..plan.msg_len], off);
            for (i, f) in ev.fields[..plan.nfields].iter().enumerate() {
                let key = &f.key.as_bytes()[..floor_boundary(f.key, 255)];
                let (kind, scalar): (u8, [u8; 8]) = match f.value {
                    Value::Str(_) => (kind::STR, [0; 8]),
                    Value::I64(v) => (kind::I64, v.to_le_bytes()),
                    Value::U64(v) => (kind::U64, v.to_le_bytes()),
                    Value::F64(v) => (kind::F64, v.to_le_bytes()),
                    Value::Bool(v) => (kind::BOOL, [v as u8, 0, 0, 0, 0, 0, 0, 0]),
                };
                off = self.put(at, &[key.len() as u8, kind], off);
                off = self.put(at, key, off);
                off = match f.value {
                    Value::Str(s) => {
                        let cut = floor_boundary(s, plan.value_cap(i));
                        let o = self.put(at, &(cut as u16).to_le_bytes(), off);
                        self.put(at, &s.as_bytes()[..cut], o)
                    }
                    Value::Bool(_) => self.put(at, &scalar[..1], off),
                    _ => self.put(at, &scalar, off),
                };
            }
            debug_assert_eq!(off, plan.len);
        }
        self.tail = pos + need;
        // Release: publishes every byte written above (SYNC POINT A).
        self.word(self.tail_word)
            .store(self.tail, Ordering::Release);
        self.published[level] = self.published[level].wrapping_add(1);
        // Relaxed: a counter with one writer; stat tolerates a momentarily old value.
        self.counter(LANE_PUBLISHED, level)
            .store(self.published[level], Ordering::Relaxed);
        Ok(Emitted::Written { evicted })
    }

    /// Copies `bytes` to `off` bytes into the record starting at slot `index`.
    ///
    /// # Safety
    /// The caller owns the slots covering `[off, off + bytes.len())` from `index`
    /// and they do not run past the lane's end.
    #[inline(always)]
    unsafe fn put(&self, index: u64, bytes: &[u8], off: usize) -> usize {
        let dst = self.data.add(index as usize * self.slot_size + off);
        crate::mem::copy_small(bytes.as_ptr(), dst, bytes.len());
        off + bytes.len()
    }

    #[cold]
    fn drop_record(&mut self, level: usize) -> Emitted {
        self.dropped[level] = self.dropped[level].wrapping_add(1);
        // Relaxed: single-writer counter (a single store, so SIGKILL cannot split it).
        self.counter(LANE_DROPPED, level)
            .store(self.dropped[level], Ordering::Relaxed);
        Emitted::Dropped
    }

    /// Reads and checks the header of the record at `at`, which must end by
    /// `limit` and not cross the lane's end. `None` for anything implausible.
    fn header_at(&self, at: u64, limit: u64) -> Option<(RecordHeader, u64)> {
        let index = at & (self.slots - 1);
        let mut raw = [0u8; RECORD_HEADER];
        // SAFETY: `index < slots`, so the 64 header bytes lie inside this lane's
        // data; positions in [head, tail) hold published records nobody but
        // this writer modifies (the consumer only reads).
        unsafe {
            std::ptr::copy_nonoverlapping(
                self.data.add(index as usize * self.slot_size),
                raw.as_mut_ptr(),
                RECORD_HEADER,
            )
        };
        let hdr: RecordHeader = bytemuck::pod_read_unaligned(&raw);
        let n = slots_for(hdr.len as usize, self.slot_size);
        let plausible = hdr.stamp == at
            && hdr.len >= RECORD_HEADER as u32
            && n > 0
            && at + n <= limit
            && index + n <= self.slots;
        plausible.then_some((hdr, n))
    }

    /// Frees room for `need` slots at `pos` by evicting the oldest unread
    /// records below the protection level (see "Eviction" in the module docs).
    /// Returns how many were evicted, or `None` when not enough can go: every
    /// unread record left is protected, the consumer has records in flight at
    /// the head, or the protected run before the next victim is too long.
    #[cold]
    fn evict_for(&mut self, pos: u64, need: u64) -> Option<u32> {
        let mut evicted = 0u32;
        loop {
            // Acquire pairs with the consumer's claim/commit CAS.
            let word = self.word(self.cursor_word).load(Ordering::Acquire);
            let c = Cursor::unpack(word, pos, self.slots)?;
            self.head_cache = c.head;
            if pos + need - c.head <= self.slots {
                return Some(evicted);
            }
            if c.read != c.head || c.evicting {
                return None;
            }
            let h = c.head;
            let (first, first_n) = self.header_at(h, pos)?;
            if first.flags & flags::PAD != 0 {
                // Padding at the head: nothing to count, just free it. AcqRel as below.
                let next = Cursor::at(h + first_n, h + first_n).pack();
                let _ = self.word(self.cursor_word).compare_exchange(
                    word,
                    next,
                    Ordering::AcqRel,
                    Ordering::Relaxed,
                );
                continue;
            }
            // Find the oldest record below the protection level, counting the
            // protected run in front of it per level.
            let mut at = h;
            let mut run = [0u64; LEVELS];
            let mut run_len = 0;
            let (victim, victim_n, level) = loop {
                let (hdr, n) = if at == h {
                    (first, first_n)
                } else {
                    self.header_at(at, pos)?
                };
                if hdr.flags & flags::PAD != 0 {
                    return None; // the run would cross the lane's end
                }
                let level = Level::from_severity(hdr.severity)?;
                if hdr.severity < self.protect {
                    break (at, n, level as usize);
                }
                run[level as usize] += 1;
                run_len += 1;
                if run_len > MAX_RUN {
                    return None;
                }
                at += n;
            };
            let end = victim + victim_n;
            if (h & (self.slots - 1)) + (end - h) > self.slots {
                return None; // the run wraps around the lane's end
            }
            // Relaxed: the note is read only by a later lane-lock holder.
            self.word(self.pending_pos).store(h, Ordering::Relaxed);
            let extra = run
                .iter()
                .enumerate()
                .fold(0u64, |a, (l, &k)| a | (k << (8 * l)));
            self.word(self.pending_extra)
                .store(extra, Ordering::Relaxed);
            let kind = if victim == h {
                PENDING_EVICT
            } else {
                PENDING_COMPACT
            };
            self.word(self.pending_info).store(
                pending_info(kind, level, h, self.evicted[level].wrapping_add(1)),
                Ordering::Relaxed,
            );
            if victim == h {
                // The oldest unread record is the victim: take it off the head.
                // AcqRel: wins the record against a concurrent claim by the
                // consumer (whose claim CAS is on this same word); Acquire orders
                // our later overwrite of these slots after the consumer's reads.
                let next = Cursor::at(end, end).pack();
                if self
                    .word(self.cursor_word)
                    .compare_exchange(word, next, Ordering::AcqRel, Ordering::Relaxed)
                    .is_err()
                {
                    self.withdraw_note();
                    continue;
                }
            } else {
                // Protected records first: claim [h, end) with the EVICTING flag
                // (readers keep off), move the run up over the victim, rewrite its
                // stamps, and give the lane back with the head past the freed slots.
                let flagged = Cursor {
                    head: h,
                    read: end,
                    evicting: true,
                }
                .pack();
                // AcqRel: as above; Acquire also orders our moves after the
                // consumer's last reads of these slots.
                if self
                    .word(self.cursor_word)
                    .compare_exchange(word, flagged, Ordering::AcqRel, Ordering::Relaxed)
                    .is_err()
                {
                    self.withdraw_note();
                    continue;
                }
                let slot = self.slot_size;
                let index = (h & (self.slots - 1)) as usize;
                // SAFETY: [h, end) is contiguous inside the lane (checked above)
                // and ours alone while the flag is set: the consumer and peekers
                // do not read a flagged lane, and only this writer writes it.
                // `copy` handles the overlap (a move up by `victim_n` slots).
                unsafe {
                    let base = self.data.add(index * slot);
                    std::ptr::copy(
                        base,
                        base.add(victim_n as usize * slot),
                        (victim - h) as usize * slot,
                    );
                }
                let mut at = h + victim_n;
                while at < end {
                    let i = (at & (self.slots - 1)) as usize;
                    // SAFETY: as above; each moved record starts on a slot
                    // boundary (8-aligned) with its 64-byte header.
                    let n = unsafe {
                        let p = self.data.add(i * slot);
                        (p as *mut u64).write(at); // the stamp: the record's new position
                        let len = (p.add(48) as *const u32).read();
                        slots_for(len as usize, slot)
                    };
                    at += n;
                }
                // Release: the moved records are visible before a reader sees
                // the flag gone (its Acquire load of the cursor).
                let next = Cursor::at(h + victim_n, h + victim_n).pack();
                let _ = self.word(self.cursor_word).compare_exchange(
                    flagged,
                    next,
                    Ordering::Release,
                    Ordering::Relaxed,
                );
            }
            self.evicted[level] = self.evicted[level].wrapping_add(1);
            // Relaxed: single-writer counter, read by stat only.
            self.counter(LANE_EVICTED, level)
                .store(self.evicted[level], Ordering::Relaxed);
            evicted += 1;
        }
    }

    /// The consumer claimed the record first: withdraw the note, or a reaper
    /// would later take the consumer's commit past it for our eviction and count
    /// it. (A kill between the failed CAS and this store still leaves that
    /// one-record window.)
    fn withdraw_note(&self) {
        // Relaxed: as every store of the note.
        self.word(self.pending_info).store(0, Ordering::Relaxed);
    }
}

impl Drop for LaneWriter {
    fn drop(&mut self) {
        let Some(fd) = self.ring.fd() else {
            return; // a forked child's copy: the lane is the parent's
        };
        // Relaxed: informational (stat); the lock is what frees the lane.
        LaneWords::new(&self.ring, self.lane)
            .owner_pid()
            .store(0, Ordering::Relaxed);
        lock::unlock(fd, LOCK_LANE_BASE + self.lane as i64);
        // Release pairs with the Acquire in `Ring::writer`.
        self.ring.inner.lanes_held[self.lane as usize].store(false, Ordering::Release);
    }
}

/// The largest `i <= max` that is a char boundary of `s` (and `<= s.len()`).
#[inline]
pub(crate) fn floor_boundary(s: &str, max: usize) -> usize {
    if s.len() <= max {
        return s.len();
    }
    let mut i = max;
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// Sizes of the parts of a record, after truncation.
struct Plan {
    len: usize,
    target_len: usize,
    msg_len: usize,
    nfields: usize,
    /// Bytes the last kept field's string value may use (only it may be cut).
    last_cap: usize,
    truncated: bool,
}

impl Plan {
    #[inline]
    fn new(ev: &Event<'_>, max_record: usize, max_message: usize) -> Plan {
        let target_len = floor_boundary(ev.target, MAX_TARGET);
        let mut truncated = target_len < ev.target.len();
        let mut len = RECORD_HEADER + target_len;
        let mut nfields = 0;
        let mut last_cap = u16::MAX as usize;
        // Fields first, each whole if it fits, so that the message (usually the
        // largest part) is what gets cut. Keep at least a quarter for the message.
        let field_budget = max_record - max_record / 4 - len;
        let mut used = 0;
        for f in ev.fields.iter().take(u16::MAX as usize) {
            let key = floor_boundary(f.key, 255);
            truncated |= key < f.key.len();
            let fixed = 2 + key;
            let size = fixed
                + match f.value {
                    Value::Str(s) => 2 + s.len().min(u16::MAX as usize),
                    Value::Bool(_) => 1,
                    _ => 8,
                };
            if used + size > field_budget {
                truncated = true;
                if let Value::Str(s) = f.value {
                    // Keep a cut version of this last string field if 16+ bytes fit.
                    let room = field_budget.saturating_sub(used + fixed + 2);
                    if room >= 16 {
                        last_cap = room;
                        used += fixed + 2 + floor_boundary(s, room);
                        nfields += 1;
                    }
                }
                break;
            }
            if let Value::Str(s) = f.value {
                truncated |= s.len() > u16::MAX as usize;
            }
            used += size;
            nfields += 1;
        }
        len += used;
        let msg_cap = (max_record - len).min(max_message);
        let msg_len = floor_boundary(ev.message, msg_cap);
        truncated |= msg_len < ev.message.len();
        Plan {
            len: len + msg_len,
            target_len,
            msg_len,
            nfields,
            last_cap,
            truncated,
        }
    }

    /// Bytes string field `i` may use.
    #[inline]
    fn value_cap(&self, i: usize) -> usize {
        if i + 1 == self.nfields {
            self.last_cap
        } else {
            u16::MAX as usize
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Batch, Consumer, RingOptions};

    /// A producer killed in the middle of moving a protected run: the reaper
    /// counts the run as lost and the victim as evicted, and hands the lane back.
    #[test]
    fn a_move_interrupted_by_death_is_reaped_and_accounted() {
        let dir =
            std::env::temp_dir().join(format!("logbus-lane-{}-{}", std::process::id(), now_ns()));
        std::fs::create_dir_all(&dir).unwrap();
        let opts = RingOptions {
            slots: 1024,
            slot_size: 128,
            lanes: 1,
            ..RingOptions::default()
        };
        let ring = Ring::open_with(dir.join("r"), &opts).unwrap();
        let mut w = ring.writer().unwrap();
        for (sev, msg) in [(13, "w0"), (17, "e1"), (9, "i2"), (9, "i3")] {
            w.emit(&Event::new(sev, msg)).unwrap();
        }
        // What the writer does just before moving [w0, e1] over i2 ...
        let words = LaneWords::new(&ring, 0);
        let extra = 1u64 << (8 * Level::Warn as usize) | 1u64 << (8 * Level::Error as usize);
        words.pending_pos.store(0, Ordering::Relaxed);
        words.pending_extra.store(extra, Ordering::Relaxed);
        words.pending_info.store(
            pending_info(PENDING_COMPACT, Level::Info as usize, 0, 1),
            Ordering::Relaxed,
        );
        let flagged = Cursor {
            head: 0,
            read: 3,
            evicting: true,
        };
        words.cursor.store(flagged.pack(), Ordering::Relaxed);
        // ... and then it dies (the lock goes with it).
        drop(w);
        let mut c = Consumer::acquire(&ring).unwrap();
        let mut b = Batch::new();
        assert_eq!(c.poll(&mut b, 10), 0, "a flagged lane is left alone");
        c.reap_dead_lanes();
        assert_eq!(c.poll(&mut b, 10), 1);
        assert_eq!(b.get(0).unwrap().message(), "i3");
        c.commit_all();
        let s = ring.stats();
        assert_eq!(s.level(Level::Warn).torn, 1);
        assert_eq!(s.level(Level::Error).torn, 1);
        assert_eq!(s.level(Level::Info).evicted, 1);
        assert_eq!(s.imbalance(), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
