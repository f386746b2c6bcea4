//! The resource table: who a process is (service, version, host, command,
//! uid), written once per process instead of into every record, and how many
//! records it wrote and dropped (for `logbus top`).
//!
//! Entry `i` (512 bytes at `HEADER_BYTES + i * 512`; offsets in
//! `layout::resource_entry`):
//!
//! ```text
//! 0   state u32 (atomic): 0 empty, 1 being written, 2 ready
//! 4   pid u32
//! 8   generation u64 (atomic): bumped on every (re)write
//! 16  registered_ns u64: when the entry was last written
//! 24  pid_ns u64: inode of the writer's pid namespace
//! 32  retire_at u64 (atomic): 0, or 1 + the ring's `alloc` when the owner was found gone
//! 40  uid u32, then 4 bytes reserved
//! 48  service, version, host, command: each u16 length + UTF-8 bytes (336 bytes in all)
//! 384 written [u64; 6] (atomic): records written, per level
//! 432 dropped [u64; 6] (atomic): records dropped by the overflow policy, per level
//! 480 reserved (32 bytes)
//! ```
//!
//! A producer process takes a free entry by locking its byte (held while its
//! ring handle lives), writes it seqlock-style (state 1, contents, generation+1,
//! state 2 with Release) and tags its records with `index + 1`. A reader checks
//! that the record's pid is the entry's pid, and caches by generation.
//!
//! Identity must survive pid reuse, pid namespaces (two containers' pid 1
//! share a `/dev/shm`) and any number of processes coming and going, for as
//! long as a record is unread. So an entry is never rewritten while records
//! tagged with it may be unread: a registrant that finds an entry's lock free
//! (its owner is gone) first marks it retired at the ring's current `alloc`
//! (every block the owner ever claimed comes before it), and takes it only
//! once the consumer has freed every block before that mark (`head` passed
//! it). Until then the entry stays readable.
//!
//! # When the table has no room
//! A table whose entries are all live or retired-but-unread is full (with no
//! consumer running, 64 short-lived processes fill it for good). Sizing the
//! table from the block count would not prevent that: a new thread adopts a
//! closed block with room left (`Writer::adopt`), so any number of processes
//! can have their unread records in one block. So a process that gets no
//! entry makes its records carry their resource themselves: its writers are
//! given the resource ([`crate::Writer::carry_resource`]) and put it into
//! every record as the first fields, [`SERVICE_FIELD`] and friends, and
//! readers take a record's service from there when its tag is 0
//! ([`carried_service`]). That costs those records ~40 bytes each, not their
//! attribution.
//!
//! # Per-process counters
//! Who writes what, and when:
//!
//! | words | writer | when | ordering |
//! |---|---|---|---|
//! | `written[level]` | the owner's writers (any thread of the owning process) | once per block: a writer counts its records in a local array (no shared memory per record) and adds the counts when it leaves a block (claims the next one, or is dropped), and before a drop | `fetch_add` Relaxed |
//! | `dropped[level]` | the owner's writers | per dropped record (the overflow policy's cold path, which already adds to the ring's `dropped`) | `fetch_add` Relaxed |
//! | both, zeroed | a registrant taking the entry | in `write_resource`, between state 1 and state 2 | Relaxed, published by the Release store of state 2 |
//!
//! Relaxed is enough: the counters are statistics; nothing is published
//! with them, and each is a single atomic add, so a SIGKILL cannot leave one
//! half done (a killed writer loses at most its unflushed counts of one block,
//! which `logbus top` then under-reports; the ring's own `delivered`,
//! `dropped` and friends stay exact). The words sit in the entry's last cache
//! line, which only the owning process writes: no record of another process
//! ever touches it, and the owner touches it once per block. A reader
//! ([`Ring::process_counts`]) loads them Relaxed and keys them by the entry's
//! generation: a reused entry starts again from zero under a new generation.

use std::sync::atomic::{fence, AtomicU64, Ordering};

use crate::error::WriterError;
use crate::event::Value;
use crate::layout::resource_entry as off;
use crate::layout::{HEADER_BYTES, LOCK_RESOURCE_BASE, RESOURCES, RESOURCE_BYTES};
use crate::level::LEVELS;
use crate::lock;
use crate::record::copy_shared;
use crate::record::RecordRef;
use crate::ring::Ring;

const BODY: usize = off::COUNTS - off::BODY;

/// The field a record carries its producer's `service.name` in, when its
/// process found no room in the resource table (see the module docs);
/// [`CARRIED_FIELDS`] lists all of them, in the order they are written.
pub const SERVICE_FIELD: &str = "service.name";
/// The fields a record carries its resource in when it has no entry, in the
/// order written (first in the record): `service.name`, `service.version`,
/// `host.name`.
pub const CARRIED_FIELDS: [&str; 3] = [SERVICE_FIELD, "service.version", "host.name"];

/// The service a record carries itself: the value of its first field when
/// that is [`SERVICE_FIELD`] and the record has no resource tag. `None` for
/// records that have a tag (their service is in the table).
pub fn carried_service<'a>(r: &RecordRef<'a>) -> Option<&'a str> {
    if r.resource() != 0 {
        return None;
    }
    match r.fields().next() {
        Some((SERVICE_FIELD, Value::Str(s))) if !s.is_empty() => Some(s),
        _ => None,
    }
}

/// One process's entry in the resource table with its counters, as
/// [`Ring::process_counts`] reads it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProcessCounts {
    /// The entry's record tag (index + 1).
    pub tag: u8,
    /// The entry's generation: counters of another generation belong to
    /// another process.
    pub generation: u64,
    /// Whether the owner still holds the entry (is alive), as far as a
    /// look at its lock shows.
    pub alive: bool,
    /// Who the process is (`pid` included).
    pub resource: Resource,
    /// The process's real uid.
    pub uid: u32,
    /// Records written, per level (published once per block: up to one
    /// block's worth behind).
    pub written: [u64; LEVELS],
    /// Records dropped by the overflow policy, per level.
    pub dropped: [u64; LEVELS],
}

/// This process's pid namespace (the inode of `/proc/self/ns/pid`; 0 if unknown).
fn pid_namespace() -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self/ns/pid").map_or(0, |m| m.ino())
}

/// What a producer process says about itself.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Resource {
    /// The writer's process id (filled in by [`Ring::register_resource`]).
    pub pid: u32,
    /// `service.name`.
    pub service: String,
    /// `service.version`.
    pub version: String,
    /// `host.name`.
    pub host: String,
    /// The process command line.
    pub command: String,
}

fn entry(index: usize) -> usize {
    HEADER_BYTES + index * RESOURCE_BYTES
}

impl Ring {
    /// Writes `resource` into a free table entry held for as long as this handle
    /// (or a clone) lives, and returns the tag for [`crate::Writer::set_resource`].
    /// Strings are cut to fit 472 bytes in all. An entry whose owner is gone is
    /// reused only once none of its owner's records is unread (see the module
    /// documentation).
    ///
    /// # Errors
    /// [`WriterError::TableFull`] when every entry has a live owner or one
    /// whose records may be unread (then give the writers the resource to
    /// carry: [`crate::Writer::carry_resource`]),
    /// [`WriterError::Forked`] in a child of the opener.
    pub fn register_resource(&self, resource: &Resource) -> Result<u8, WriterError> {
        let fd = self.fd().ok_or(WriterError::Forked)?;
        if !self.is_writable() {
            return Err(WriterError::Io(std::io::Error::new(
                std::io::ErrorKind::PermissionDenied,
                "the ring was opened read-only",
            )));
        }
        // Never-used entries first, then the longest-registered ones.
        let mut order: Vec<(u64, usize)> = (0..RESOURCES)
            .map(|i| {
                let base = entry(i);
                // Relaxed: only a preference; the lock decides ownership.
                let used = self.u32_at(base + off::STATE).load(Ordering::Relaxed) != 0;
                let since = self
                    .u64_at(base + off::REGISTERED_NS)
                    .load(Ordering::Relaxed);
                (if used { since.max(1) } else { 0 }, i)
            })
            .collect();
        order.sort_unstable();
        // Why each entry could not be had, for the error.
        let (mut live, mut unread) = (0u32, 0u32);
        for (_, i) in order {
            let held = &self.inner.resources_held[i];
            // Acquire/Release on this in-process flag: it hands an entry between
            // users of this handle like a lock.
            if held
                .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
                .is_err()
            {
                live += 1;
                continue;
            }
            match lock::try_lock(fd, LOCK_RESOURCE_BASE + i as i64) {
                Ok(true) if self.reusable(i) => {
                    self.write_resource(i, resource);
                    return Ok(i as u8 + 1);
                }
                Ok(true) => {
                    // Its owner is gone but its records may be unread: keep it.
                    lock::unlock(fd, LOCK_RESOURCE_BASE + i as i64);
                    held.store(false, Ordering::Release);
                    unread += 1;
                }
                Ok(false) => {
                    held.store(false, Ordering::Release);
                    live += 1;
                }
                Err(e) => {
                    held.store(false, Ordering::Release);
                    return Err(WriterError::Io(e));
                }
            }
        }
        Err(WriterError::TableFull {
            entries: RESOURCES as u32,
            live,
            unread,
        })
    }

    /// Whether entry `i`, whose lock we just took (so its owner is gone), may
    /// be rewritten: never used, or retired at an `alloc` that `head` has
    /// reached. Marks it retired when it is not yet.
    fn reusable(&self, i: usize) -> bool {
        let base = entry(i);
        // Acquire: pairs with the Release store of state 2 by the last writer.
        if self.u32_at(base + off::STATE).load(Ordering::Acquire) == 0 {
            return true;
        }
        let w = self.words();
        let retire = self.u64_at(base + off::RETIRE_AT);
        // Relaxed: we hold the entry's lock, the only writers of this word.
        let mark = match retire.load(Ordering::Relaxed) {
            0 => {
                // SeqCst: the owner's last claim (a SeqCst CAS on `alloc`)
                // happened before its death, which happened before our lock;
                // any later `alloc` value bounds every block it claimed.
                let a = w.alloc.load(Ordering::SeqCst);
                // Relaxed: read only by lock holders, like the load above.
                retire.store(a.wrapping_add(1), Ordering::Relaxed);
                a
            }
            r => r.wrapping_sub(1),
        };
        // Acquire: pairs with the consumer's (and evictors') Release of `head`;
        // once it passed `mark`, every record before it was taken or counted.
        let head = w.head.load(Ordering::Acquire);
        (head.wrapping_sub(mark) as i64) >= 0
    }

    /// The generation of the entry record tag `tag` refers to (bumped on every
    /// rewrite): a cache of resolved resources is valid while it is unchanged.
    pub fn resource_generation(&self, tag: u8) -> u64 {
        match (tag as usize).checked_sub(1).filter(|&i| i < RESOURCES) {
            // Acquire: pairs with the Release store of state 2 after the bump.
            Some(i) => self
                .u64_at(entry(i) + off::GENERATION)
                .load(Ordering::Acquire),
            None => 0,
        }
    }

    fn write_resource(&self, i: usize, r: &Resource) {
        let base = entry(i);
        let state = self.u32_at(base + off::STATE);
        let generation = self.u64_at(base + off::GENERATION);
        // Relaxed + the fence: readers that see state 1 or a changed generation
        // discard what they copied.
        state.store(1, Ordering::Relaxed);
        fence(Ordering::Release);
        let mut body = Vec::with_capacity(BODY);
        for s in [&r.service, &r.version, &r.host, &r.command] {
            let room = BODY.saturating_sub(body.len() + 2).min(u16::MAX as usize);
            let cut = crate::event::floor_boundary(s, room);
            body.extend_from_slice(&(cut as u16).to_le_bytes());
            body.extend_from_slice(&s.as_bytes()[..cut]);
        }
        // SAFETY: entry `i` lies in the resource table inside the mapping; we hold
        // its lock, so no other writer touches it; readers copy with atomics and
        // re-check the generation.
        unsafe {
            let p = self.base().add(base);
            (p.add(off::PID) as *mut u32).write_volatile(std::process::id());
            (p.add(off::REGISTERED_NS) as *mut u64).write_volatile(crate::clock::now_ns());
            (p.add(off::PID_NS) as *mut u64).write_volatile(pid_namespace());
            // SAFETY: getuid has no preconditions.
            (p.add(off::UID) as *mut u32).write_volatile(libc::getuid());
            std::ptr::copy_nonoverlapping(body.as_ptr(), p.add(off::BODY), body.len());
        }
        // Relaxed: published by the Release store of state 2 below; the
        // previous owner is gone, so nobody else adds to them meanwhile.
        for k in 0..LEVELS {
            self.u64_at(base + off::WRITTEN + 8 * k)
                .store(0, Ordering::Relaxed);
            self.u64_at(base + off::DROPPED + 8 * k)
                .store(0, Ordering::Relaxed);
        }
        // Relaxed: only lock holders read it (`reusable`); a new owner is live.
        self.u64_at(base + off::RETIRE_AT)
            .store(0, Ordering::Relaxed);
        // Relaxed: ordered before readers by the Release store of state 2 below.
        generation.fetch_add(1, Ordering::Relaxed);
        // Release: the contents above happen before a reader's Acquire load of 2.
        state.store(2, Ordering::Release);
    }

    /// Reads the resource a record tagged `tag` refers to, if the entry is ready
    /// and belongs to `pid`. `None` for tag 0, a foreign or half-written entry.
    pub fn resource(&self, tag: u8, pid: u32) -> Option<Resource> {
        let i = (tag as usize).checked_sub(1).filter(|&i| i < RESOURCES)?;
        self.read_entry(i).filter(|r| r.pid == pid)
    }

    /// Every ready entry of the resource table, as `(tag, resource)`. A
    /// consumer that snapshots the table now and then can still resolve the
    /// records of a process whose entry was since reused by another.
    pub fn resources(&self) -> Vec<(u8, Resource)> {
        (0..RESOURCES)
            .filter_map(|i| Some((i as u8 + 1, self.read_entry(i)?)))
            .collect()
    }

    /// Adds a writer's counts of records written to the entry of `tag`
    /// (once per block; see "Per-process counters"). Tag 0 or out of range:
    /// nothing.
    pub(crate) fn add_written(&self, tag: u8, counts: &[u32; LEVELS]) {
        let Some(i) = (tag as usize).checked_sub(1).filter(|&i| i < RESOURCES) else {
            return;
        };
        for (k, &n) in counts.iter().enumerate() {
            if n != 0 {
                // Relaxed: a statistic (see the module docs).
                self.u64_at(entry(i) + off::WRITTEN + 8 * k)
                    .fetch_add(n as u64, Ordering::Relaxed);
            }
        }
    }

    /// Counts one record of `level` dropped against the entry of `tag`.
    pub(crate) fn add_dropped(&self, tag: u8, level: usize) {
        if let Some(i) = (tag as usize).checked_sub(1).filter(|&i| i < RESOURCES) {
            // Relaxed: a statistic (see the module docs).
            self.u64_at(entry(i) + off::DROPPED + 8 * level.min(LEVELS - 1))
                .fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Every ready entry of the resource table with its counters (for
    /// `logbus top`): live processes and exited ones whose entry was not
    /// reused yet. Reading takes no lock and changes nothing.
    pub fn process_counts(&self) -> Vec<ProcessCounts> {
        let fd = self.fd();
        (0..RESOURCES)
            .filter_map(|i| {
                let base = entry(i);
                // Acquire: pairs with the Release store of state 2 after the bump.
                let generation = self.u64_at(base + off::GENERATION).load(Ordering::Acquire);
                let resource = self.read_entry(i)?;
                // SAFETY: the word lies inside the entry, inside the mapping,
                // and is 4-aligned; a torn or foreign value is only a number.
                let uid =
                    unsafe { (self.base().add(base + off::UID) as *const u32).read_volatile() };
                // Relaxed: statistics (see the module docs).
                let load = |at: usize| -> [u64; LEVELS] {
                    std::array::from_fn(|k| self.u64_at(base + at + 8 * k).load(Ordering::Relaxed))
                };
                // Relaxed: this handle's own flag, only a hint here.
                let ours = self.inner.resources_held[i].load(Ordering::Relaxed);
                let alive = ours
                    || fd.is_none_or(|fd| {
                        lock::held_by_other(fd, LOCK_RESOURCE_BASE + i as i64).unwrap_or(true)
                    });
                Some(ProcessCounts {
                    tag: i as u8 + 1,
                    generation,
                    alive,
                    resource,
                    uid,
                    written: load(off::WRITTEN),
                    dropped: load(off::DROPPED),
                })
            })
            .collect()
    }

    fn read_entry(&self, i: usize) -> Option<Resource> {
        let base = entry(i);
        let state = self.u32_at(base + off::STATE);
        let generation: &AtomicU64 = self.u64_at(base + off::GENERATION);
        // Acquire pairs with the writer's Release store of state 2.
        if state.load(Ordering::Acquire) != 2 {
            return None;
        }
        let g = generation.load(Ordering::Relaxed);
        let mut raw = Vec::with_capacity(off::COUNTS);
        // SAFETY: the entry lies inside the mapping and is 8-aligned; its
        // first `COUNTS` bytes (a multiple of 8) are the seqlocked part.
        unsafe { copy_shared(self.base().add(base), off::COUNTS, &mut raw) };
        // Seqlock re-check: the Acquire fence orders the copy above before these
        // Relaxed loads; a writer that started meanwhile changed one of them.
        fence(Ordering::Acquire);
        if state.load(Ordering::Relaxed) != 2 || generation.load(Ordering::Relaxed) != g {
            return None;
        }
        let pid = u32::from_le_bytes(raw[off::PID..off::PID + 4].try_into().ok()?);
        let mut rest = &raw[off::BODY..];
        let mut next = || -> Option<String> {
            let n = u16::from_le_bytes([*rest.first()?, *rest.get(1)?]) as usize;
            let s = std::str::from_utf8(rest.get(2..2 + n)?).ok()?.to_string();
            rest = &rest[2 + n..];
            Some(s)
        };
        Some(Resource {
            pid,
            service: next()?,
            version: next()?,
            host: next()?,
            command: next()?,
        })
    }
}
