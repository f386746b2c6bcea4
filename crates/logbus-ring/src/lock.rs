//! Open-file-description (OFD) byte-range locks, used only as signs of life.
//!
//! The kernel releases an OFD lock when the last descriptor of its open file
//! description closes, which happens at the latest when the holder dies, even by
//! SIGKILL. Unlike a pid, a lock cannot be "reused" by an unrelated process. The
//! locked bytes lie far beyond the end of the file and are never read or written.

use std::io;
use std::os::fd::RawFd;

fn flock_at(offset: i64, kind: libc::c_short) -> libc::flock {
    // SAFETY: `flock` is a plain C struct for which all-zero bytes are valid.
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = kind;
    fl.l_whence = libc::SEEK_SET as libc::c_short;
    fl.l_start = offset;
    fl.l_len = 1;
    fl.l_pid = 0; // must be 0 for OFD locks
    fl
}

/// Tries to take the write lock on one byte; `Ok(false)` when another open file
/// description holds it.
pub(crate) fn try_lock(fd: RawFd, offset: i64) -> io::Result<bool> {
    let fl = flock_at(offset, libc::F_WRLCK as libc::c_short);
    // SAFETY: `fd` is an open descriptor owned by the caller and `fl` is a valid flock.
    let rc = unsafe { libc::fcntl(fd, libc::F_OFD_SETLK, &fl) };
    if rc == 0 {
        return Ok(true);
    }
    let err = io::Error::last_os_error();
    match err.raw_os_error() {
        Some(libc::EAGAIN) | Some(libc::EACCES) => Ok(false),
        _ => Err(err),
    }
}

/// Releases a byte locked with [`try_lock`] through the same descriptor.
pub(crate) fn unlock(fd: RawFd, offset: i64) {
    let fl = flock_at(offset, libc::F_UNLCK as libc::c_short);
    // SAFETY: as in `try_lock`; unlocking a byte we do not hold is a no-op.
    unsafe { libc::fcntl(fd, libc::F_OFD_SETLK, &fl) };
}

/// Whether another open file description holds the byte (its holder is alive).
pub(crate) fn held_by_other(fd: RawFd, offset: i64) -> io::Result<bool> {
    let mut fl = flock_at(offset, libc::F_WRLCK as libc::c_short);
    // SAFETY: as in `try_lock`; F_OFD_GETLK writes into `fl` only.
    let rc = unsafe { libc::fcntl(fd, libc::F_OFD_GETLK, &mut fl) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(fl.l_type != libc::F_UNLCK as libc::c_short)
}
