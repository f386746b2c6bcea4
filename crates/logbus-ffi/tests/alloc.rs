//! No heap allocation per call: `logbus_log`, `logbus_log_trace` and
//! `logbus_emit` (with typed fields) counted with a counting global allocator
//! around 1,000 calls each, after warm-up (the thread's first record makes its
//! writer, which allocates once). Also: a failing call does allocate (its error
//! message), and invalid UTF-8 does (the replacement), as documented.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::ffi::{c_char, CString};
use std::sync::atomic::{AtomicU64, Ordering};

use logbus_c::*;

struct Counting;

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
unsafe impl GlobalAlloc for Counting {
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

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations made by 1,000 calls of `f`, after 10 uncounted ones.
fn allocations(mut f: impl FnMut()) -> u64 {
    for _ in 0..10 {
        f();
    }
    ALLOCS.store(0, Ordering::Relaxed);
    COUNTING.with(|c| c.set(true));
    for _ in 0..1000 {
        f();
    }
    COUNTING.with(|c| c.set(false));
    ALLOCS.load(Ordering::Relaxed)
}

fn lit(s: &'static str) -> LogbusStr {
    LogbusStr {
        ptr: s.as_ptr().cast::<c_char>(),
        len: s.len(),
    }
}

#[test]
fn calls_do_not_allocate() {
    let path = format!("/dev/shm/logbus-ffi-alloc-{}", std::process::id());
    let cpath = CString::new(path.clone()).unwrap();
    // SAFETY: NUL-terminated strings throughout; the handle is closed once, last.
    unsafe {
        let lb = logbus_open(cpath.as_ptr());
        assert!(!lb.is_null());
        let log = allocations(|| {
            assert!(logbus_log(lb, LOGBUS_DEBUG, c"alloc".as_ptr(), c"plain".as_ptr()) >= 0);
        });
        let traced = allocations(|| {
            let rc = logbus_log_trace(
                lb,
                LOGBUS_DEBUG,
                c"alloc".as_ptr(),
                c"traced".as_ptr(),
                c"4bf92f3577b34da6a3ce929d0e0e4736".as_ptr(),
                c"00f067aa0ba902b7".as_ptr(),
            );
            assert!(rc >= 0);
        });
        let fields = [
            LogbusField {
                key: lit("user"),
                kind: LOGBUS_FIELD_STR,
                value: LogbusValue { str: lit("ann") },
            },
            LogbusField {
                key: lit("n"),
                kind: LOGBUS_FIELD_I64,
                value: LogbusValue { i64: -3 },
            },
            LogbusField {
                key: lit("ok"),
                kind: LOGBUS_FIELD_BOOL,
                value: LogbusValue { boolean: true },
            },
        ];
        let record = LogbusRecord {
            severity: LOGBUS_DEBUG,
            time_ns: 0,
            target: lit("alloc"),
            message: lit("with\0fields"),
            fields: fields.as_ptr(),
            n_fields: fields.len(),
            trace_id: std::ptr::null(),
            span_id: std::ptr::null(),
            trace_flags: 0,
        };
        let emitted = allocations(|| assert!(logbus_emit(lb, &record) >= 0));
        assert_eq!(
            (log, traced, emitted),
            (0, 0, 0),
            "allocations per 1,000 calls"
        );

        // The documented exceptions: an error keeps its message; invalid UTF-8
        // is replaced in a new string.
        let failing = allocations(|| {
            assert_eq!(
                logbus_log(lb, 99, c"alloc".as_ptr(), c"x".as_ptr()),
                LOGBUS_EINVAL
            )
        });
        assert!(failing > 0);
        let invalid = allocations(|| {
            assert!(logbus_log(lb, LOGBUS_DEBUG, c"alloc".as_ptr(), c"bad \xff".as_ptr()) >= 0)
        });
        assert!(invalid > 0);
        logbus_close(lb);
    }
    std::fs::remove_file(&path).unwrap();
}
