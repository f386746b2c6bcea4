//! The producer side: [`Writer`], which claims blocks and writes records into
//! them (the protocol is in `crate::block`).
//!
//! # Overflow
//! A record first goes into its writer's open block. When that is full, the
//! writer claims a new block if the ring's used blocks stay under the record
//! level's watermark (by default TRACE and DEBUG 50 %, INFO 75 %, WARN and
//! above 100 % of the blocks). When they would not:
//! * in lossless mode (`wait_ms > 0` in the header) the writer first waits up
//!   to `wait_ms` on the `space` futex for the consumer to free blocks; room
//!   freed while several writers wait goes to the first that claims it, and
//!   the others wait again, up to the same deadline (one record waits at most
//!   `wait_ms` in all, and is dropped, counted, only then);
//! * a record below the protection level (default WARN) is dropped, counted;
//! * a protected one evicts the records below the protection level of the
//!   oldest block (merging its protected ones into the next block if it has
//!   any; see `crate::evict`), counted evicted per level, and is dropped only
//!   when that is not possible (the two oldest blocks hold only protected
//!   records, a record of them is still being written, the consumer is in the
//!   middle of them, or another producer is evicting right now).

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::block::{done_word, previous_tag, retag, stamp, Claim, Owner, Reserve};
use crate::clock::{monotonic_ns, now_ns};
use crate::error::{EmitError, WriterError};
use crate::event::{Emitted, Event, Plan};
use crate::fork;
use crate::futex;
use crate::layout::*;
use crate::level::{Level, LEVELS};
use crate::lock;
use crate::read::ready_record;
use crate::ring::Ring;

/// The block a writer is filling.
struct OpenBlock {
    seq: u64,
    data: *mut u8,
    /// The `reserve` word as this writer last stored it, packed (we are its
    /// only writer while the block is open; a mismatch means somebody closed
    /// it). Kept packed: the next reservation's CAS compares with it as is.
    word: u64,
}

/// Why a block could not be had.
enum NoRoom {
    /// The level's watermark (or the ring) is full.
    Full,
}

impl Ring {
    /// A writer for the calling thread. Writers share nothing but the ring:
    /// make as many as you like (one per thread; `emit` takes `&mut self`).
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
    /// [`WriterError::Forked`] when this handle was opened before `fork()`,
    /// [`WriterError::Retired`] when the ring was replaced at its path and its
    /// collector is letting go of it (open the path again),
    /// [`WriterError::Io`] when the process's liveness lock cannot be taken
    /// (once per process and ring).
    pub fn writer(&self) -> Result<Writer, WriterError> {
        self.fd().ok_or(WriterError::Forked)?;
        if !self.is_writable() {
            return Err(WriterError::Io(std::io::Error::new(
                std::io::ErrorKind::PermissionDenied,
                "the ring was opened read-only",
            )));
        }
        let hold = lock::process::hold(self.file()).map_err(WriterError::Io)?;
        // SeqCst, after the hold: pairs with `Ring::retire`. A collector
        // stores `retired` and then asks the kernel for writers' locks; we take
        // our lock and then load `retired`. The kernel orders the two lock
        // calls, so either it saw our lock (and keeps reading the ring), or
        // our lock came after its query, hence after its store: we see
        // `retired` and write nothing here. The word is shared memory any
        // writer can scribble on, so it counts only for a ring its path no
        // longer names (the only ones a collector retires): a ring still at
        // its path is read whatever the word says (one `stat`, once per
        // writer made, never per record).
        if self.words().retired.load(Ordering::SeqCst) != 0 && !self.is_current() {
            return Err(WriterError::Retired);
        }
        let geo = self.geometry();
        let header = self.header();
        let blocks = geo.blocks as u64;
        // SAFETY: gettid has no preconditions.
        let tid = unsafe { libc::gettid() } as u32;
        Ok(Writer {
            open: None,
            limit: std::array::from_fn(|l| {
                (blocks * header.watermarks[l] as u64 / 100).clamp(1, blocks)
            }),
            block_size: geo.block_size as usize,
            max_record: geo.max_record_bytes(),
            max_message: header.max_message as usize,
            protect: header.protect_severity,
            wait: (header.wait_ms > 0).then(|| Duration::from_millis(header.wait_ms as u64)),
            pid: std::process::id(),
            tid,
            resource: 0,
            counts: [0; LEVELS],
            carry: None,
            generation: self.inner.generation,
            scratch: Vec::new(),
            last_seq: None,
            adopt_hint: None,
            evict_hint: None,
            ring: self.clone(),
            _hold: hold,
        })
    }
}

/// How long a writer whose eviction search found nothing skips searching
/// again while the ring looks the same (see `Writer::evict_hint`).
const EVICT_RETRY_NS: u64 = 10_000_000;

/// Writes records into a ring. Made by [`Ring::writer`]; closes its block on drop.
pub struct Writer {
    ring: Ring,
    open: Option<OpenBlock>,
    /// Per level: the most blocks that may be in use after claiming one more.
    limit: [u64; LEVELS],
    block_size: usize,
    max_record: usize,
    max_message: usize,
    protect: u8,
    wait: Option<Duration>,
    pid: u32,
    tid: u32,
    resource: u8,
    /// Records written per level since the counts were last added to the
    /// resource entry (once per block; see "Per-process counters" in
    /// `crate::resource`): local, so a record touches no shared counter.
    counts: [u32; LEVELS],
    /// The resource every record carries as its first fields, when the
    /// process found no room in the resource table (see
    /// [`Writer::carry_resource`]).
    carry: Option<Box<[String; 3]>>,
    generation: u64,
    /// Where an eviction copies the records it keeps (allocated on the first
    /// eviction that merges blocks, a cold path).
    scratch: Vec<u8>,
    /// The newest block this writer has written into (`None`: it has written
    /// nothing, and may adopt a block; see `adopt`).
    last_seq: Option<u64>,
    /// `(alloc, head, closes)` when a search for a block to adopt last found
    /// none: nothing to look for until one of them changes.
    adopt_hint: Option<(u64, u64, u64)>,
    /// The ring's state (see `evict_state`) when an eviction last found
    /// nothing to evict, and when (monotonic ns): a search may walk the whole
    /// ring, so it is not tried again until that state changes or
    /// [`EVICT_RETRY_NS`] passes (a record in flight in the oldest block, which
    /// makes a search fail, changes nothing the state shows when stamped).
    evict_hint: Option<([u64; 4], u64)>,
    /// This process's liveness lock on the ring, held while it has a writer
    /// (`crate::lock::process`). Dropped after `drop` closed the open block.
    _hold: lock::process::Hold,
}

// SAFETY: the raw pointer in `open` points into the ring mapping, which
// `self.ring` keeps alive; the block it designates is written only by this
// writer while open, so moving the writer to another thread moves that right.
unsafe impl Send for Writer {}

impl Writer {
    /// Tags every later record with a resource registered by
    /// [`Ring::register_resource`] (0 = none).
    pub fn set_resource(&mut self, resource: u8) {
        self.resource = resource;
    }

    /// Makes every later record carry `resource` itself, as its first fields
    /// ([`crate::CARRIED_FIELDS`]: service, version, host): for a process
    /// whose [`Ring::register_resource`] found the table full, so that its
    /// records keep their attribution. Costs each record ~40 bytes and a copy
    /// of its field list.
    pub fn carry_resource(&mut self, resource: &crate::Resource) {
        self.carry = Some(Box::new([
            resource.service.clone(),
            resource.version.clone(),
            resource.host.clone(),
        ]));
    }

    /// [`Writer::emit`] for a writer that carries its resource: the record
    /// with the carried fields first (they survive a cut of the field list).
    #[cold]
    fn emit_carrying(&mut self, ev: &Event<'_>) -> Result<Emitted, EmitError> {
        let Some(carry) = self.carry.take() else {
            return self.emit(ev);
        };
        let mut fields: Vec<crate::Field<'_>> = crate::CARRIED_FIELDS
            .iter()
            .zip(carry.iter())
            .filter(|(_, v)| !v.is_empty())
            .map(|(&key, v)| crate::Field {
                key,
                value: crate::Value::Str(v),
            })
            .collect();
        fields.extend_from_slice(ev.fields);
        let out = self.emit(&Event {
            fields: &fields,
            ..*ev
        });
        self.carry = Some(carry);
        out
    }

    /// The thread id written into records (the creating thread's).
    pub fn set_tid(&mut self, tid: u32) {
        self.tid = tid;
    }

    /// Writes one record, applying the overflow policy. No lock, no system
    /// call and no allocation, except when it claims a block of a full ring in
    /// lossless mode (a futex wait) or wakes a sleeping consumer (a futex wake).
    ///
    /// # Errors
    /// [`EmitError::Forked`] in a child process after `fork()`.
    #[inline]
    pub fn emit(&mut self, ev: &Event<'_>) -> Result<Emitted, EmitError> {
        if self.generation != fork::generation() {
            return Err(EmitError::Forked);
        }
        if self.carry.is_some() {
            return self.emit_carrying(ev);
        }
        let severity = Level::clamp(ev.severity);
        let level = Level::index(severity);
        let plan = Plan::new(ev, self.max_record, self.max_message);
        let need = placed(plan.len) as u32;
        let (
            Reserved {
                seq,
                data,
                off,
                sleeping,
            },
            evicted,
        ) = match self.reserve_in_open(level, need) {
            Some(reserved) => (reserved, 0),
            None => match self.reserve_elsewhere(level, severity, need) {
                Ok(reserved) => reserved,
                Err(dropped) => return Ok(dropped),
            },
        };
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
            stamp: 0,
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
        // SAFETY: `[off, off + need)` of block `seq` (at `data`) was reserved
        // for us by `reserve_in_open`'s CAS: no other writer touches it and no
        // reader trusts it before the stamp; `off + need <= block_size`.
        unsafe { publish(seq, data, off, &plan, &hdr, ev) };
        if sleeping != 0 {
            self.wake_consumer();
        }
        Ok(Emitted::Written { evicted })
    }

    /// Reserves `need` bytes for a record of `level` in the open block, if
    /// there is one and it has room: returns the block's sequence number, its
    /// data, the record's offset and the consumer's `sleeping` word. `None`
    /// (the block forgotten or closed) when another block is needed.
    #[inline(always)]
    fn reserve_in_open(&mut self, level: usize, need: u32) -> Option<Reserved> {
        let b = self.open.as_mut()?;
        let r = Reserve::unpack(b.word);
        if r.end as usize + need as usize > self.block_size {
            self.close_open();
            return None;
        }
        let next = Reserve {
            end: r.end + need,
            level: level as u8,
            ..r
        }
        .pack();
        let desc = self.ring.desc(b.seq);
        // SeqCst: orders this reservation against the consumer's store of
        // `sleeping` (see "Waking the consumer" in `crate::block`). Fails
        // only if somebody closed the block.
        if desc
            .reserve
            .compare_exchange(b.word, next, Ordering::SeqCst, Ordering::Relaxed)
            .is_err()
        {
            self.open = None;
            return None;
        }
        b.word = next;
        // Local: added to the resource entry once per block.
        self.counts[level] += 1;
        // SeqCst: the other half of the Dekker pair above.
        let sleeping = self.ring.words().sleeping.load(Ordering::SeqCst);
        Some(Reserved {
            seq: b.seq,
            data: b.data,
            off: r.end,
            sleeping,
        })
    }

    /// Reserves `need` bytes when the open block cannot take them (out of
    /// line: once a block, not once a record): makes room, reserves in the
    /// block it got, and again if another writer took that room first.
    /// Returns what [`Self::reserve_in_open`] does and the records evicted,
    /// or `Err` with the outcome when the record is dropped (counted).
    #[inline(never)]
    fn reserve_elsewhere(
        &mut self,
        level: usize,
        severity: u8,
        need: u32,
    ) -> Result<(Reserved, u32), Emitted> {
        let mut room = Room::default();
        loop {
            self.make_room(level, severity, need, &mut room)?;
            if let Some(reserved) = self.reserve_in_open(level, need) {
                return Ok((reserved, room.evicted));
            }
        }
    }

    /// Gets the writer a block with room for `need` bytes: claims the next
    /// free block, else adopts a closed one, else (lossless) waits for room
    /// until `room`'s deadline, else (a protected level) evicts. `Err` with
    /// the outcome when the record is dropped (counted).
    #[inline]
    fn make_room(
        &mut self,
        level: usize,
        severity: u8,
        need: u32,
        room: &mut Room,
    ) -> Result<(), Emitted> {
        match self.claim(level) {
            Ok(()) => return Ok(()),
            Err(NoRoom::Full) => {}
        }
        if self.adopt(need) {
            return Ok(());
        }
        if let Some(wait) = self.wait {
            let first = room.deadline.is_none();
            let until = *room.deadline.get_or_insert_with(|| Instant::now() + wait);
            if self.wait_for_space(level, until, first) {
                return Ok(());
            }
        }
        if severity >= self.protect && room.evictions < 8 {
            room.evictions += 1;
            if let Some(k) = self.evict() {
                room.evicted += k;
                return Ok(());
            }
        }
        Err(self.drop_record(level))
    }

    /// Closes the open block (if still open) and forgets it.
    fn close_open(&mut self) {
        if let Some(b) = self.open.take() {
            // Failure means it was closed already.
            self.ring.desc(b.seq).close(Reserve::unpack(b.word));
        }
    }

    /// The ring's blocks are all claimed (up to the level's watermark), but
    /// some may be closed with room left: by writers that went away (threads
    /// that exited) or by the consumer. A writer that has written nothing yet
    /// (a new thread) reopens one of them, if its records are all complete (a
    /// record in flight there would have an unknown length once we append
    /// after it). Only a writer with no earlier record may: a consumer reading
    /// that older block concurrently could otherwise deliver the new record
    /// before the writer's earlier ones in a newer block. (So thousands of
    /// short-lived threads share the room their predecessors left.) Cold, and
    /// skipped while nothing changed since the last search found nothing.
    #[cold]
    fn adopt(&mut self, need: u32) -> bool {
        if self.last_seq.is_some() {
            return false;
        }
        let Some((h, a)) = self.ring.live() else {
            return false;
        };
        // Relaxed: `closes` is only a hint.
        let hint = (a, h, self.ring.words().closes.load(Ordering::Relaxed));
        if self.adopt_hint == Some(hint) {
            return false;
        }
        // Newest first: the oldest blocks are the next to be freed.
        for seq in (h..a).rev() {
            let d = self.ring.desc(seq);
            // Acquire: pairs with the Release of whoever closed it.
            let word = d.reserve.load(Ordering::Acquire);
            let r = Reserve::unpack(word);
            if !r.is(seq) || !r.closed || r.end as usize + need as usize > self.block_size {
                continue;
            }
            let data = self.ring.block_data(seq);
            let mut off = 0usize;
            while off < r.end as usize {
                // SAFETY: `data` is block `seq`, `off` a multiple of 8 below
                // `r.end <= block_size`.
                match unsafe { ready_record(data, off, r.end as usize, seq) } {
                    Some((len, _)) => off += placed(len),
                    None => break,
                }
            }
            if off != r.end as usize {
                continue;
            }
            // Become the owner of the opening we are about to make, from
            // the owner of the block's current opening (a word that says
            // another opening: somebody is adopting it right now). Before
            // the reopening, so that whoever sees our opening sees us named.
            // Acquire: as every load of a descriptor word.
            let was = d.owner.load(Ordering::Acquire);
            let open = r.reopened();
            let mine = Owner {
                seq: seq as u32,
                opens: open.opens,
                pid: self.pid,
            }
            .pack();
            if Owner::unpack(was).of(r).is_none()
                // AcqRel: as every CAS of a descriptor word.
                || d.owner
                    .compare_exchange(was, mine, Ordering::AcqRel, Ordering::Relaxed)
                    .is_err()
            {
                continue;
            }
            // SeqCst: the Dekker pair with the consumer sealing a block it
            // frees (it CASes the claim word, then looks at `reserve`; we CAS
            // `reserve`, then look at the claim word): never both miss.
            if d.reserve
                .compare_exchange(word, open.pack(), Ordering::SeqCst, Ordering::Relaxed)
                .is_err()
            {
                // Somebody closed, cut or freed it since we looked. Give the
                // owner back (nobody else moves a word naming an opening the
                // block is not in; a failure means the block moved on).
                // AcqRel: as above.
                let _ = d
                    .owner
                    .compare_exchange(mine, was, Ordering::AcqRel, Ordering::Relaxed);
                continue;
            }
            // SeqCst: see above.
            let c = Claim::unpack(d.claim.load(Ordering::SeqCst));
            if !c.is(seq) || c.evicted || c.evicting {
                // Being freed or evicted: close it again as it was (an
                // evictor compares it with what it inspected) and give the
                // owner back, then look further. If somebody closed it
                // first, the closed opening is ours, and so is the owner.
                // AcqRel: as every CAS of `reserve`.
                if d.reserve
                    .compare_exchange(open.pack(), word, Ordering::AcqRel, Ordering::Relaxed)
                    .is_ok()
                {
                    // AcqRel: as above.
                    let _ =
                        d.owner
                            .compare_exchange(mine, was, Ordering::AcqRel, Ordering::Relaxed);
                }
                continue;
            }
            self.open = Some(OpenBlock {
                seq,
                data,
                word: open.pack(),
            });
            self.last_seq = Some(seq);
            return true;
        }
        self.adopt_hint = Some(hint);
        false
    }

    /// Claims a new block for a record of `level` (step 1 in `crate::block`).
    #[cold]
    fn claim(&mut self, level: usize) -> Result<(), NoRoom> {
        self.flush_counts();
        loop {
            let w = self.ring.words();
            // See `Ring::live` for the orderings (SYNC POINT B on `head`).
            let Some((h, a)) = self.ring.live() else {
                return Err(NoRoom::Full); // garbage in the header: write nothing
            };
            if a - h >= self.limit[level] {
                return Err(NoRoom::Full);
            }
            // SeqCst: a consumer about to sleep looks at `alloc` after its
            // store of `sleeping` (see "Waking the consumer").
            if w.alloc
                .compare_exchange(a, a + 1, Ordering::SeqCst, Ordering::Relaxed)
                .is_err()
            {
                continue;
            }
            if self.init(a) {
                return Ok(());
            }
        }
    }

    /// Makes the descriptor of the block just claimed (`seq`) ours. `false`
    /// when the consumer took it over first (we were too slow), or when we
    /// were so slow that the block has moved on since (taken over, freed and
    /// claimed again): then we write nothing, as every word we would write
    /// is changed by CAS from a word of the block's previous use only
    /// ([`retag`]), never stored blindly over a later writer's.
    fn init(&mut self, seq: u64) -> bool {
        let d = self.ring.desc(seq);
        let prev = previous_tag(seq, self.ring.geometry().blocks as u64);
        // Acquire: pairs with the Release of whoever stored it last.
        let cur = d.reserve.load(Ordering::Acquire);
        let was = Reserve::unpack(cur);
        if was.seq != prev || was.is(seq) {
            return false;
        }
        let owner = Owner {
            seq: seq as u32,
            opens: 0,
            pid: self.pid,
        };
        // The owner first, and never one tagged `seq` already: only a
        // take-over writes that, and it then wins the block.
        if !retag(&d.owner, seq, Some(prev), owner.pack(), false)
            || !retag(&d.claim, seq, Some(prev), Claim::at(seq, 0).pack(), true)
            || !retag(&d.done, seq, Some(prev), done_word(seq, 0), true)
        {
            return false;
        }
        let open = Reserve::open(seq);
        // SeqCst (includes Release): publishes the words above to whoever
        // sees `reserve` tagged `seq`; ordered for the consumer's sleep check.
        // Fails when the consumer took the block over meanwhile.
        if d.reserve
            .compare_exchange(cur, open.pack(), Ordering::SeqCst, Ordering::Relaxed)
            .is_err()
        {
            return false;
        }
        self.open = Some(OpenBlock {
            seq,
            data: self.ring.block_data(seq),
            word: open.pack(),
        });
        self.last_seq = Some(seq);
        true
    }

    /// Adds this writer's counts of records written to its resource entry
    /// and starts counting again (once per block; see `crate::resource`).
    fn flush_counts(&mut self) {
        if self.counts != [0; LEVELS] {
            self.ring.add_written(self.resource, &self.counts);
            self.counts = [0; LEVELS];
        }
    }

    #[cold]
    fn drop_record(&mut self, level: usize) -> Emitted {
        // Relaxed: a statistics counter; a single atomic add, so a SIGKILL
        // cannot leave it half done.
        self.ring.words().dropped[level].fetch_add(1, Ordering::Relaxed);
        // The process's own count (its resource entry), and what it wrote
        // so far, so that `logbus top` sees a dropping process now.
        self.ring.add_dropped(self.resource, level);
        self.flush_counts();
        // A full ring and a sleeping consumer: it has records to free (their
        // sinks may have finished since it went to sleep). Cheap when awake.
        self.wake_consumer();
        Emitted::Dropped
    }

    /// Lossless mode: waits until `deadline` for the consumer to free room for
    /// a record of `level`. `true` when there is room (another writer may take
    /// it first: then the caller waits again, up to the same deadline).
    /// `first`: the record's first wait (counted in `waits`); a timeout is
    /// counted in `wait_timeouts` (the record is then dropped).
    #[cold]
    fn wait_for_space(&self, level: usize, deadline: Instant, first: bool) -> bool {
        let w = self.ring.words();
        if first {
            // Relaxed: statistics.
            w.waits.fetch_add(1, Ordering::Relaxed);
        }
        // SeqCst: Dekker pair with the consumer, which bumps `space` after
        // moving `head` and then loads `waiters` (SeqCst both).
        w.waiters.fetch_add(1, Ordering::SeqCst);
        self.wake_consumer();
        let room = loop {
            let seen = w.space.load(Ordering::SeqCst);
            // The same test as `claim`'s (a header of garbage is no room, so
            // that this never spins: it waits out the deadline). `live`'s
            // Acquire loads come after the SeqCst load of `space`: when that
            // load saw the consumer's bump, it synchronises with it, and the
            // `head` the consumer stored before bumping is seen here.
            if self
                .ring
                .live()
                .is_some_and(|(h, a)| a - h < self.limit[level])
            {
                break true;
            }
            let now = Instant::now();
            if now >= deadline {
                break false;
            }
            futex::wait(&w.space, seen, Some(deadline - now));
        };
        w.waiters.fetch_sub(1, Ordering::SeqCst);
        if !room {
            // Relaxed: statistics.
            w.wait_timeouts.fetch_add(1, Ordering::Relaxed);
        }
        room
    }

    /// Wakes the consumer if it sleeps (one CAS decides who calls the kernel).
    fn wake_consumer(&self) {
        let w = self.ring.words();
        // SeqCst: as every access to `sleeping`.
        if w.sleeping
            .compare_exchange(1, 0, Ordering::SeqCst, Ordering::Relaxed)
            .is_ok()
        {
            futex::wake(&w.sleeping, 1);
            // Relaxed: statistics.
            w.wakeups.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Frees the oldest block by evicting it (see `crate::evict`). Returns
    /// the records evicted, or `None` when nothing could go.
    #[cold]
    fn evict(&mut self) -> Option<u32> {
        let fd = self.ring.fd()?;
        let state = self.evict_state()?;
        if let Some((seen, at)) = self.evict_hint {
            if seen == state && monotonic_ns().saturating_sub(at) < EVICT_RETRY_NS {
                return None;
            }
        }
        let ring = self.ring.clone();
        let role = crate::evict::Role::take(&ring, fd)?;
        let freed = role.make_room(self.protect, &mut self.scratch);
        self.evict_hint = freed.is_none().then(|| (state, monotonic_ns()));
        freed
    }

    /// What decides whether an eviction may find something: the live blocks,
    /// and what the consumer has delivered and evictors evicted so far (a
    /// consumer that committed records, or another evictor, changes what the
    /// oldest blocks hold).
    fn evict_state(&self) -> Option<[u64; 4]> {
        let (h, a) = self.ring.live()?;
        let w = self.ring.words();
        // Relaxed: counters read as a hint; a stale one costs one search.
        let sum = |c: &[std::sync::atomic::AtomicU64; LEVELS]| {
            c.iter()
                .fold(0u64, |s, x| s.wrapping_add(x.load(Ordering::Relaxed)))
        };
        Some([h, a, sum(&w.delivered), sum(&w.evicted)])
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        if self.generation == fork::generation() {
            self.flush_counts();
        }
        if self.generation == fork::generation() && self.open.is_some() {
            // Our block is complete: let the consumer finish it now rather
            // than when it gets in the way, and another writer adopt its room.
            self.close_open();
            // Relaxed: a hint for adopters (see `adopt`).
            self.ring.words().closes.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Room reserved for one record: in block `seq` (data at `data`), at `off`;
/// `sleeping`, the consumer's word read right after the reservation.
struct Reserved {
    seq: u64,
    data: *mut u8,
    off: u32,
    sleeping: u32,
}

/// What one record's search for room has done so far
/// ([`Writer::reserve_elsewhere`]).
#[derive(Default)]
struct Room {
    /// Lossless mode: until when this record may wait for room (set at its
    /// first wait; room freed while it waited may go to another writer
    /// first, so it waits again, up to the same deadline).
    deadline: Option<Instant>,
    /// Evictions tried (at most 8 a record).
    evictions: u32,
    /// Records evicted to make room.
    evicted: u32,
}

/// Writes the record at `data + off` and stamps it: the moment a reader may
/// take it.
///
/// # Safety
/// `[off, off + placed(plan.len))` of block `seq`, whose data starts at
/// `data`, is reserved for the caller and lies inside the block.
#[inline(always)]
unsafe fn publish(
    seq: u64,
    data: *mut u8,
    off: u32,
    plan: &Plan,
    hdr: &RecordHeader,
    ev: &Event<'_>,
) {
    // SAFETY: the range is ours and inside the block (the caller's
    // contract); `plan.len <= placed(plan.len)`, so the record stays in it.
    // `data + off` is 8-aligned (offsets are multiples of 8 in a
    // page-aligned block), as the stamp's atomic store needs.
    unsafe {
        let at = data.add(off as usize);
        plan.write(at, hdr, ev);
        // Release, SYNC POINT A: every byte `write` put is visible to a
        // reader that loads this stamp with Acquire.
        (*(at as *const std::sync::atomic::AtomicU64))
            .store(stamp(seq, plan.len as u32), Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Batch, Consumer, Event};

    /// A pid that is certainly dead: a child we started and reaped.
    fn dead_pid() -> u32 {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        pid
    }

    /// A writer that adopted a block another (live) process claimed, and died
    /// with a record reserved there and not stamped: the record is counted
    /// torn at its level, at once (its writer's lock is free), not held up
    /// as a live writer's and then skipped as invalid.
    #[test]
    #[cfg_attr(miri, ignore = "needs a mapped ring")]
    fn a_record_cut_by_the_death_of_a_writer_that_adopted_a_block_is_torn() {
        let (_dir, ring) = crate::small_test_ring("adopted");
        // This process claims INFO's 3 blocks, the last with one record, and
        // lets go of it (closed, with room left).
        let mut claimer = ring.writer().unwrap();
        let mut written = 0;
        while ring.live().unwrap().1 < 3 {
            let msg = format!("claimer {written:0400}");
            assert!(matches!(
                claimer.emit(&Event::new(9, &msg)),
                Ok(Emitted::Written { .. })
            ));
            written += 1;
        }
        drop(claimer);
        // Another process's first writer finds no block to claim and adopts
        // that one, writes a record, reserves the next and dies before it
        // stamps it (as SIGKILL leaves it: no drop).
        let mut adopter = ring.writer().unwrap();
        adopter.pid = dead_pid();
        assert!(matches!(
            adopter.emit(&Event::new(9, "adopted")),
            Ok(Emitted::Written { .. })
        ));
        written += 1;
        let open = adopter.open.as_ref().expect("adopted a block");
        assert_eq!(open.seq, 2);
        let word = Reserve::unpack(open.word);
        let cut = Reserve {
            end: word.end + 64,
            level: Level::Error as u8,
            ..word
        };
        ring.desc(2)
            .reserve
            .compare_exchange(open.word, cut.pack(), Ordering::SeqCst, Ordering::Relaxed)
            .unwrap();
        std::mem::forget(adopter);
        // The consumer reads everything else and counts the cut record torn.
        let mut c = Consumer::acquire(&ring).unwrap();
        let mut b = Batch::new();
        let mut read = 0;
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            read += c.poll(&mut b, 100);
            c.commit_all();
            let s = ring.stats();
            if s.total().torn + s.invalid > 0 || Instant::now() > deadline {
                break;
            }
            c.wait(Some(Duration::from_millis(5)));
        }
        let s = ring.stats();
        assert_eq!(read, written);
        assert_eq!((s.level(Level::Error).torn, s.invalid), (1, 0), "{s:?}");
    }

    /// A consumer that counted a record torn and died before committing the
    /// records before it leaves its block's committed end before the torn
    /// record: the next consumer reads those records again (as it must), and
    /// skips the torn one at once without counting it a second time (the
    /// books would have one record more than was written).
    #[test]
    #[cfg_attr(miri, ignore = "needs a mapped ring")]
    fn a_torn_record_is_counted_once_across_a_consumers_death() {
        let (_dir, ring) = crate::small_test_ring("torn-once");
        let mut w = ring.writer().unwrap();
        w.pid = dead_pid();
        for i in 0..3 {
            let msg = format!("before {i}");
            assert!(matches!(
                w.emit(&Event::new(9, &msg)),
                Ok(Emitted::Written { .. })
            ));
        }
        // A fourth record reserved, and its writer killed before it stamped it.
        let open = w.open.as_ref().expect("an open block");
        let seq = open.seq;
        let word = Reserve::unpack(open.word);
        let cut = Reserve {
            end: word.end + 64,
            level: Level::Error as u8,
            ..word
        };
        ring.desc(seq)
            .reserve
            .compare_exchange(open.word, cut.pack(), Ordering::SeqCst, Ordering::Relaxed)
            .unwrap();
        std::mem::forget(w);
        let mut b = Batch::new();
        {
            // The first consumer reads the three, counts the fourth torn,
            // and dies with nothing committed.
            let mut c = Consumer::acquire(&ring).unwrap();
            let mut read = 0;
            let deadline = Instant::now() + Duration::from_secs(5);
            while ring.stats().total().torn == 0 && Instant::now() < deadline {
                read += c.poll(&mut b, 100);
                c.wait(Some(Duration::from_millis(5)));
            }
            assert_eq!((read, ring.stats().level(Level::Error).torn), (3, 1));
        }
        // The next one starts at the block's committed end.
        let mut c = Consumer::acquire(&ring).unwrap();
        assert_eq!(c.poll(&mut b, 100), 3, "read again: never committed");
        c.commit_all();
        assert!(
            ring.live().unwrap().0 > seq,
            "the block is read to its end and freed at once"
        );
        let s = ring.stats();
        assert_eq!((s.level(Level::Error).torn, s.invalid), (1, 0), "{s:?}");
    }

    /// The retired word is shared memory: garbage in it (or a retire of a
    /// ring still at its path) refuses no writer; once the path names
    /// another file, a retired ring refuses new writers.
    #[test]
    #[cfg_attr(miri, ignore = "needs a mapped ring")]
    fn only_a_ring_its_path_no_longer_names_refuses_writers_when_retired() {
        let dir = logbus_testkit::TempDir::new("retired");
        let ring = Ring::open(dir.path("ring")).unwrap();
        ring.words().retired.store(0x5eed_beef, Ordering::Relaxed);
        assert!(ring.writer().is_ok(), "scribbled, still at its path");
        ring.retire();
        assert!(ring.writer().is_ok(), "retired, still at its path");
        std::fs::remove_file(dir.path("ring")).unwrap();
        assert!(matches!(ring.writer(), Err(WriterError::Retired)));
    }
}
