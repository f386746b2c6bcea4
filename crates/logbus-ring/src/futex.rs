//! Futex wait and wake on words of the shared mapping (process-shared: not
//! `FUTEX_PRIVATE_FLAG`, so a wake in one process reaches a waiter in another).
//! Timeouts are relative, so they run on `CLOCK_MONOTONIC`: a wall-clock step
//! neither shortens nor stretches a wait.

use std::sync::atomic::AtomicU32;
use std::time::Duration;

/// Sleeps while `*word == expected`, at most `timeout` (forever with `None`).
/// Returns early on a wake, a signal, or when the word already differs.
pub(crate) fn wait(word: &AtomicU32, expected: u32, timeout: Option<Duration>) {
    let ts = timeout.map(|d| libc::timespec {
        tv_sec: d.as_secs().min(i64::MAX as u64) as libc::time_t,
        tv_nsec: d.subsec_nanos() as libc::c_long,
    });
    let tsp = ts
        .as_ref()
        .map_or(std::ptr::null(), |t| t as *const libc::timespec);
    // SAFETY: `word` is a live, 4-aligned u32 (in the ring mapping, which the
    // caller keeps mapped); `tsp` is null or points to a timespec on our stack.
    // The kernel only reads both.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT,
            expected,
            tsp,
            std::ptr::null::<u32>(),
            0u32,
        );
    }
}

/// Wakes up to `n` waiters on `word`.
pub(crate) fn wake(word: &AtomicU32, n: i32) {
    // SAFETY: as in `wait`; FUTEX_WAKE reads nothing but the address.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAKE,
            n,
            std::ptr::null::<libc::timespec>(),
            std::ptr::null::<u32>(),
            0u32,
        );
    }
}

/// One word for [`wait_any`]: wait while `*word == expected`.
pub(crate) struct WaitOn<'a> {
    pub(crate) word: &'a AtomicU32,
    pub(crate) expected: u32,
}

/// Most words [`wait_any`] takes (the kernel's `FUTEX_WAITV_MAX`).
pub(crate) const WAIT_ANY_MAX: usize = 128;

/// The kernel's `struct futex_waitv` (`linux/futex.h`).
#[repr(C)]
struct FutexWaitv {
    val: u64,
    uaddr: u64,
    flags: u32,
    reserved: u32,
}

/// 32-bit words, shared (no `FUTEX2_PRIVATE`: the rings' words are woken by
/// other processes; a word of our own is woken by [`wake`], also shared).
const FUTEX2_SIZE_U32: u32 = 0x02;

/// Sleeps while every word holds its expected value, at most `timeout`
/// (`futex_waitv`, Linux 5.16+, with a deadline on `CLOCK_MONOTONIC`). Returns
/// early on a wake of any word, a signal, or when a word already differs.
/// Returns `false` when the kernel has no `futex_waitv` (nothing was waited).
/// At most [`WAIT_ANY_MAX`] words (more: `false`).
pub(crate) fn wait_any(words: &[WaitOn<'_>], timeout: Duration) -> bool {
    if words.is_empty() || words.len() > WAIT_ANY_MAX {
        return false;
    }
    let waiters: Vec<FutexWaitv> = words
        .iter()
        .map(|w| FutexWaitv {
            val: u64::from(w.expected),
            uaddr: w.word.as_ptr() as u64,
            flags: FUTEX2_SIZE_U32,
            reserved: 0,
        })
        .collect();
    let deadline = crate::clock::monotonic_ns().saturating_add(timeout.as_nanos() as u64);
    let ts = libc::timespec {
        tv_sec: (deadline / 1_000_000_000) as libc::time_t,
        tv_nsec: (deadline % 1_000_000_000) as libc::c_long,
    };
    // SAFETY: `waiters` is a live array of `words.len()` kernel-layout entries,
    // each naming a live, 4-aligned u32 (borrowed for this call); `ts` is on our
    // stack. The kernel only reads them.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_futex_waitv,
            waiters.as_ptr(),
            waiters.len() as libc::c_uint,
            0u32,
            &ts as *const libc::timespec,
            libc::CLOCK_MONOTONIC,
        )
    };
    !(rc < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::ENOSYS))
}
