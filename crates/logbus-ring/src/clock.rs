//! Wall-clock time in ns since the Unix epoch (`clock_gettime` through the vDSO: no syscall).

/// Now, in ns since the Unix epoch (0 if the clock is before 1970).
#[inline]
pub fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}
