//! Counting heap allocations, for the tests that prove an API allocates
//! nothing per call: install [`CountingAlloc`] as the test binary's global
//! allocator, then measure with [`allocations`].
//!
//! ```ignore
//! #[global_allocator]
//! static GLOBAL: logbus_testkit::alloc::CountingAlloc = logbus_testkit::alloc::CountingAlloc;
//! assert_eq!(logbus_testkit::alloc::allocations(10, 1000, |_| do_the_call()), 0);
//! ```

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};

/// The system allocator, counting allocations made by the measuring thread
/// while it measures.
pub struct CountingAlloc;

static ALLOCS: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// Counting is on only for the measuring thread, while it measures.
    static COUNTING: Cell<bool> = const { Cell::new(false) };
}

fn count() {
    if COUNTING.try_with(Cell::get).unwrap_or(false) {
        // Relaxed: a tally read after the measured loop on the same thread.
        ALLOCS.fetch_add(1, Ordering::Relaxed);
    }
}

// SAFETY: defers every operation to the system allocator; counting touches no
// allocator state.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: same contract as ours.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
}

/// Allocations made on this thread by `times` calls of `f` (given their
/// index), after `warmup` uncounted ones. Meaningful only with
/// [`CountingAlloc`] as the global allocator.
pub fn allocations(warmup: u64, times: u64, mut f: impl FnMut(u64)) -> u64 {
    for i in 0..warmup {
        f(i);
    }
    // Relaxed: this thread alone reads and writes the tally.
    ALLOCS.store(0, Ordering::Relaxed);
    COUNTING.with(|c| c.set(true));
    for i in 0..times {
        f(i);
    }
    COUNTING.with(|c| c.set(false));
    ALLOCS.load(Ordering::Relaxed)
}
