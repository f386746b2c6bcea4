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

/// Process liveness for writers: every process that writes a ring holds the
/// lock on byte `LOCK_PROCESS_BASE + pid` of it through a descriptor of its
/// own, opened once per (ring file, process) and kept open until the process
/// exits (or forks: the child's copy is closed by `crate::fork`, and the child
/// takes its own on its first write). One descriptor per ring a process writes
/// to, whatever number of handles and writers it has.
pub(crate) mod process {
    use std::fs::File;
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
    use std::sync::Mutex;

    use crate::layout::LOCK_PROCESS_BASE;

    /// (device, inode, pid) of the rings this process holds its lock on.
    static HELD: Mutex<Vec<(u64, u64, u32, File)>> = Mutex::new(Vec::new());

    /// Makes sure this process holds its liveness lock on the ring open as
    /// `file`. Costs system calls only the first time per ring and process.
    pub(crate) fn hold(file: &File) -> std::io::Result<()> {
        let meta = file.metadata()?;
        let pid = std::process::id();
        let mut held = HELD.lock().unwrap_or_else(|e| e.into_inner());
        // Entries of a parent (before fork) have another pid: their
        // descriptors were closed in this child by `crate::fork`; forget them.
        for entry in std::mem::take(&mut *held) {
            if entry.2 == pid {
                held.push(entry);
            } else {
                // Closed already in this child: dropping would close the
                // number again, maybe someone else's descriptor by now.
                std::mem::forget(entry.3);
            }
        }
        if held
            .iter()
            .any(|(d, i, _, _)| *d == meta.dev() && *i == meta.ino())
        {
            return Ok(());
        }
        // A descriptor of our own (its own open file description), so that
        // the lock outlives every ring handle of this process.
        let own = File::options()
            .read(true)
            .write(true)
            .custom_flags(libc::O_CLOEXEC)
            .open(format!("/proc/self/fd/{}", file.as_raw_fd()))?;
        super::try_lock(own.as_raw_fd(), LOCK_PROCESS_BASE + pid as i64)?;
        crate::fork::register(own.as_raw_fd());
        held.push((meta.dev(), meta.ino(), pid, own));
        Ok(())
    }

    /// Whether the process `pid` that wrote into this ring is alive (holds its
    /// lock). `fd` is any descriptor of the ring.
    pub(crate) fn alive(fd: i32, pid: u32) -> bool {
        super::held_by_other(fd, LOCK_PROCESS_BASE + pid as i64).unwrap_or(true)
    }
}
