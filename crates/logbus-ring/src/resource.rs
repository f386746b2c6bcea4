//! The resource table: who a process is (service, version, host, command),
//! written once per process instead of into every record.
//!
//! Entry `i` (512 bytes at `HEADER_BYTES + i * 512`):
//!
//! ```text
//! 0   state u32 (atomic): 0 empty, 1 being written, 2 ready
//! 4   pid u32
//! 8   generation u64 (atomic): bumped on every (re)write
//! 16  registered_ns u64: when the entry was last written
//! 24  service, version, host, command: each u16 length + UTF-8 bytes (488 bytes in all)
//! ```
//!
//! A producer process takes a free entry by locking its byte (held while its
//! ring handle lives), writes it seqlock-style (state 1, contents, generation+1,
//! state 2 with Release) and tags its records with `index + 1`. A reader checks
//! that the record's pid is the entry's pid: an entry reused after its process
//! died never resolves records of another process. To keep a dead process's
//! entry readable for as long as possible (its records may still be unread),
//! a new process takes a never-used entry first, else the one whose owner
//! registered longest ago; a consumer should also snapshot the table now and
//! then ([`Ring::resources`]) to remember entries before they are reused.

use std::sync::atomic::{fence, AtomicU64, Ordering};

use crate::error::WriterError;
use crate::layout::{HEADER_BYTES, LOCK_RESOURCE_BASE, RESOURCES, RESOURCE_BYTES};
use crate::lock;
use crate::record::copy_shared;
use crate::ring::Ring;

const BODY: usize = RESOURCE_BYTES - 24;

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
    /// (or a clone) lives, and returns the tag for [`crate::LaneWriter::set_resource`].
    /// Strings are cut to fit 496 bytes in all.
    ///
    /// # Errors
    /// [`WriterError::TableFull`] when every entry has a live owner,
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
                let used = self.u32_at(base).load(Ordering::Relaxed) != 0;
                let since = self.u64_at(base + 16).load(Ordering::Relaxed);
                (if used { since.max(1) } else { 0 }, i)
            })
            .collect();
        order.sort_unstable();
        for (_, i) in order {
            let held = &self.inner.resources_held[i];
            // Acquire/Release on this in-process flag: it hands an entry between
            // users of this handle like a lock.
            if held
                .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
                .is_err()
            {
                continue;
            }
            match lock::try_lock(fd, LOCK_RESOURCE_BASE + i as i64) {
                Ok(true) => {
                    self.write_resource(i, resource);
                    return Ok(i as u8 + 1);
                }
                Ok(false) => held.store(false, Ordering::Release),
                Err(e) => {
                    held.store(false, Ordering::Release);
                    return Err(WriterError::Io(e));
                }
            }
        }
        Err(WriterError::TableFull {
            entries: RESOURCES as u32,
        })
    }

    fn write_resource(&self, i: usize, r: &Resource) {
        let base = entry(i);
        let state = self.u32_at(base);
        let generation = self.u64_at(base + 8);
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
            (p.add(4) as *mut u32).write_volatile(std::process::id());
            (p.add(16) as *mut u64).write_volatile(crate::clock::now_ns());
            std::ptr::copy_nonoverlapping(body.as_ptr(), p.add(24), body.len());
        }
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

    fn read_entry(&self, i: usize) -> Option<Resource> {
        let base = entry(i);
        let state = self.u32_at(base);
        let generation: &AtomicU64 = self.u64_at(base + 8);
        // Acquire pairs with the writer's Release store of state 2.
        if state.load(Ordering::Acquire) != 2 {
            return None;
        }
        let g = generation.load(Ordering::Relaxed);
        let mut raw = Vec::with_capacity(RESOURCE_BYTES);
        // SAFETY: the entry lies inside the mapping and is 8-aligned.
        unsafe { copy_shared(self.base().add(base), RESOURCE_BYTES, &mut raw) };
        // Seqlock re-check: the Acquire fence orders the copy above before these
        // Relaxed loads; a writer that started meanwhile changed one of them.
        fence(Ordering::Acquire);
        if state.load(Ordering::Relaxed) != 2 || generation.load(Ordering::Relaxed) != g {
            return None;
        }
        let pid = u32::from_le_bytes(raw[4..8].try_into().ok()?);
        let mut rest = &raw[24..];
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
