//! No heap allocation per call: `logbus_log`, `logbus_log_trace` and
//! `logbus_emit` (with typed fields) counted with a counting global allocator
//! around 1,000 calls each, after warm-up (the thread's first record makes its
//! writer, which allocates once). Also: a failing call does allocate (its error
//! message), and invalid UTF-8 does (the replacement), as documented.

use std::ffi::{c_char, CString};

use logbus_c::*;

#[global_allocator]
static GLOBAL: logbus_testkit::alloc::CountingAlloc = logbus_testkit::alloc::CountingAlloc;

/// Allocations made by 1,000 calls of `f`, after 10 uncounted ones.
fn allocations(mut f: impl FnMut()) -> u64 {
    logbus_testkit::alloc::allocations(10, 1000, |_| f())
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
