//! Surviving a ring file shrunk under its mapping (opt-in, process-wide).
//!
//! A process that maps a ring dies of SIGBUS when it touches a page that
//! another process truncated away. A size check before each access cannot
//! close that race, so a program that must not die (the collector, the CLI)
//! calls [`install`] once: its handler looks the faulting address up in a
//! table of the ring mappings this process holds, maps private zero pages
//! over the rest of that mapping (`MAP_FIXED`), flags the ring
//! ([`crate::Ring::faulted`]) and returns, so the faulting load or store is
//! retried against zeros instead of killing the process. This is what Wayland
//! compositors do for client `wl_shm` buffers. The program then checks
//! `faulted()` and drops the ring.
//!
//! Nothing installs the handler implicitly: a signal disposition belongs to
//! the program, not to a library it links. A SIGBUS at an address outside
//! every ring mapping restores the default action, so the fault repeats and
//! kills the process as it would have without the handler.
//!
//! The table is a fixed array of atomics (no allocation, no lock), so the
//! handler only does loads, one `mmap` and one store, all async-signal-safe in
//! practice (`mmap` is a plain system call on Linux).

use std::io;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// Ring mappings tracked at once; more are still mapped, just unguarded.
const SLOTS: usize = 256;

/// One tracked mapping. Invariant: `len != 0` only while `base` holds the
/// mapping's start; written by `register`/`unregister` only.
struct Slot {
    /// Start of the mapping; 0 while the slot is free. Claimed by CAS.
    base: AtomicUsize,
    /// Length in bytes; 0 while the slot is being set up or torn down.
    len: AtomicUsize,
    /// Set by the handler once it mapped zeros over part of this mapping.
    faulted: AtomicBool,
}

#[allow(clippy::declare_interior_mutable_const)]
const FREE: Slot = Slot {
    base: AtomicUsize::new(0),
    len: AtomicUsize::new(0),
    faulted: AtomicBool::new(false),
};
static TABLE: [Slot; SLOTS] = [FREE; SLOTS];
static PAGE: AtomicUsize = AtomicUsize::new(4096);
static INSTALLED: AtomicBool = AtomicBool::new(false);

/// Installs the process-wide SIGBUS handler (idempotent). Call it once, early,
/// in a program that maps rings another process could shrink.
///
/// # Errors
/// The `sigaction` failure.
pub fn install() -> io::Result<()> {
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if page > 0 {
        // Relaxed: written before the handler is installed (sigaction below
        // is a system call, which orders it for the handler of this process).
        PAGE.store(page as usize, Ordering::Relaxed);
    }
    // AcqRel: one installer wins; the others see it done.
    if INSTALLED.swap(true, Ordering::AcqRel) {
        return Ok(());
    }
    // SAFETY: `action` is fully initialised (zeroed, then the handler, flags
    // and an empty mask set); `on_sigbus` has the SA_SIGINFO signature.
    let rc = unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        let handler: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
            on_sigbus;
        action.sa_sigaction = handler as usize;
        action.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART;
        libc::sigemptyset(&mut action.sa_mask);
        libc::sigaction(libc::SIGBUS, &action, std::ptr::null_mut())
    };
    if rc != 0 {
        // Relaxed: nothing else was published.
        INSTALLED.store(false, Ordering::Relaxed);
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Whether [`install`] ran in this process.
pub fn installed() -> bool {
    // Relaxed: a hint for callers, nothing is published with it.
    INSTALLED.load(Ordering::Relaxed)
}

/// Tracks the mapping `[base, base + len)`; `None` when the table is full.
pub(crate) fn register(base: usize, len: usize) -> Option<usize> {
    if base == 0 || len == 0 {
        return None;
    }
    for (i, slot) in TABLE.iter().enumerate() {
        // Relaxed CAS: it only claims the slot; `len`, stored last with
        // Release, is what makes the entry visible to the handler.
        if slot
            .base
            .compare_exchange(0, base, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
        {
            // Relaxed: published by the Release store of `len` below.
            slot.faulted.store(false, Ordering::Relaxed);
            // SYNC POINT (release): pairs with the handler's Acquire load of `len`.
            slot.len.store(len, Ordering::Release);
            return Some(i);
        }
    }
    None
}

/// Stops tracking slot `i` (before the mapping is unmapped).
pub(crate) fn unregister(i: usize) {
    let slot = &TABLE[i];
    // Release: the handler that still sees the old length also sees the base
    // it was stored with; it sees 0 afterwards.
    slot.len.store(0, Ordering::Release);
    // Release: the slot's reuse (a CAS from 0) comes after the length reset.
    slot.base.store(0, Ordering::Release);
}

/// Whether the handler mapped zeros over part of slot `i`'s mapping.
pub(crate) fn faulted(i: usize) -> bool {
    // Acquire: pairs with the handler's Release store.
    TABLE[i].faulted.load(Ordering::Acquire)
}

extern "C" fn on_sigbus(_sig: libc::c_int, info: *mut libc::siginfo_t, _ctx: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo for an SA_SIGINFO handler;
    // for SIGBUS, si_addr is the faulting address.
    let addr = unsafe { (*info).si_addr() } as usize;
    // Relaxed: set before install (see there).
    let page = PAGE.load(Ordering::Relaxed).max(1);
    for slot in &TABLE {
        // SYNC POINT (acquire): pairs with the Release store in `register`.
        let len = slot.len.load(Ordering::Acquire);
        let base = slot.base.load(Ordering::Relaxed);
        if len == 0 || base == 0 || addr < base || addr - base >= len {
            continue;
        }
        let from = addr & !(page - 1);
        let end = base + len;
        // SAFETY: `[from, end)` lies inside a ring mapping this process holds
        // (the slot is registered until just before the unmap, and nobody
        // touches a mapping being dropped). Replacing those pages with private
        // anonymous zero pages changes what the ring's readers see (zeros,
        // which every reader validates) but never frees memory someone else
        // uses.
        let p = unsafe {
            libc::mmap(
                from as *mut libc::c_void,
                end - from,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_FIXED | libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if p != libc::MAP_FAILED {
            // Release: pairs with the Acquire load in `faulted`.
            slot.faulted.store(true, Ordering::Release);
            return;
        }
        break;
    }
    // Not a ring, or the remap failed: the default action, so that the fault
    // repeats when we return and ends the process as it would have anyway.
    // SAFETY: resetting a disposition to SIG_DFL is async-signal-safe.
    unsafe { libc::signal(libc::SIGBUS, libc::SIG_DFL) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg_attr(miri, ignore = "needs sigaction")]
    fn register_and_unregister_reuse_slots() {
        let a = register(0x1000, 10).unwrap();
        let b = register(0x2000, 10).unwrap();
        assert_ne!(a, b);
        assert!(!faulted(a));
        unregister(a);
        let c = register(0x3000, 10).unwrap();
        assert_eq!(c, a);
        unregister(b);
        unregister(c);
        assert_eq!(register(0, 10), None);
    }
}
