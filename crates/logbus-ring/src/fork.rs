//! Fork safety.
//!
//! After `fork()` the child shares every open file description of the parent,
//! and with it the parent's liveness locks: if the child kept them, a parent that
//! dies would still look alive. The child also inherits copies of the parent's
//! writers, which must not write into blocks the parent's threads still own.
//!
//! So a `pthread_atfork` child handler (installed once, on first open) bumps a
//! process-wide generation and closes every ring descriptor this process
//! registered. Each [`crate::Ring`] and [`crate::Writer`] remembers the
//! generation it was made in and refuses to work in a later one: the child opens
//! the ring again, gets its own descriptor, its own blocks and its own pid.

use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};
use std::sync::Once;

static GENERATION: AtomicU64 = AtomicU64::new(0);
const SLOTS: usize = 64;
static FDS: [AtomicI32; SLOTS] = [const { AtomicI32::new(-1) }; SLOTS];
static INSTALL: Once = Once::new();

extern "C" fn in_child() {
    // Only async-signal-safe work here: atomics and close(2).
    // Relaxed is enough: the child has a single thread at this point, and every
    // later reader of the generation is that thread or one it spawns.
    GENERATION.fetch_add(1, Ordering::Relaxed);
    for slot in &FDS {
        let fd = slot.swap(-1, Ordering::Relaxed);
        if fd >= 0 {
            // SAFETY: `fd` was registered by a live `Ring` of the parent; in the
            // child nobody else uses that number until we close it here, and the
            // child's copy of that `Ring` knows (by generation) not to close it again.
            unsafe { libc::close(fd) };
        }
    }
}

/// The current fork generation of this process.
#[inline]
pub(crate) fn generation() -> u64 {
    // Relaxed: the value changes only in a freshly forked, single-threaded child.
    GENERATION.load(Ordering::Relaxed)
}

/// Registers a descriptor to close in a forked child; returns its registry slot,
/// or `None` when the registry is full (the descriptor then leaks into children,
/// where it only keeps this process's locks alive as long as the child lives).
pub(crate) fn register(fd: i32) -> Option<usize> {
    INSTALL.call_once(|| {
        // SAFETY: `in_child` is an `extern "C"` function with no arguments that only
        // performs async-signal-safe operations.
        unsafe { libc::pthread_atfork(None, None, Some(in_child)) };
    });
    FDS.iter().position(|slot| {
        slot.compare_exchange(-1, fd, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    })
}

/// Forgets a registered descriptor (before closing it normally).
pub(crate) fn unregister(slot: usize, fd: i32) {
    // Relaxed: the registry is read only by the atfork child handler, which
    // runs in a single-threaded child after fork() copied memory as it was.
    let _ = FDS[slot].compare_exchange(fd, -1, Ordering::Relaxed, Ordering::Relaxed);
}
