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
    held_by_other_range(fd, offset, 1)
}

/// Whether another open file description holds any byte of `[offset, offset + len)`.
pub(crate) fn held_by_other_range(fd: RawFd, offset: i64, len: i64) -> io::Result<bool> {
    let mut fl = flock_at(offset, libc::F_WRLCK as libc::c_short);
    fl.l_len = len;
    // SAFETY: as in `try_lock`; F_OFD_GETLK writes into `fl` only.
    let rc = unsafe { libc::fcntl(fd, libc::F_OFD_GETLK, &mut fl) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(fl.l_type != libc::F_UNLCK as libc::c_short)
}

/// Process liveness for writers: every process that has a [`crate::Writer`]
/// of a ring holds the lock on byte `LOCK_PROCESS_BASE + pid` of it through a
/// descriptor of its own (its own open file description), opened when the
/// process makes its first writer of that ring file and closed when it drops
/// its last one (or exits, or forks: the child's copy is closed by
/// `crate::fork`, and the child takes its own with its first writer). So the
/// lock says two things: a reserved record whose writer's lock is free was
/// torn by its writer's death, and a ring none of whose writer locks is held
/// gets no more records (what a collector leaving a replaced ring waits for:
/// [`crate::Ring::writers_alive`]).
pub(crate) mod process {
    use std::fs::File;
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
    use std::sync::Mutex;

    use crate::layout::LOCK_PROCESS_BASE;

    /// One ring file this process holds its lock on.
    struct Held {
        dev: u64,
        ino: u64,
        pid: u32,
        file: File,
        /// Its slot in the fork registry (`None`: the registry was full).
        fork_slot: Option<usize>,
        /// Live [`Hold`]s (writers) of this ring in this process.
        count: usize,
    }

    /// The rings this process holds its lock on.
    static HELD: Mutex<Vec<Held>> = Mutex::new(Vec::new());

    /// This process's lock on one ring, held while any `Hold` of it lives.
    pub(crate) struct Hold {
        dev: u64,
        ino: u64,
        pid: u32,
    }

    /// The list of held rings, without the entries a parent left before
    /// `fork()` (their descriptors were closed in this child by `crate::fork`).
    fn held() -> std::sync::MutexGuard<'static, Vec<Held>> {
        let pid = std::process::id();
        let mut held = HELD.lock().unwrap_or_else(|e| e.into_inner());
        if held.iter().any(|h| h.pid != pid) {
            for entry in std::mem::take(&mut *held) {
                if entry.pid == pid {
                    held.push(entry);
                } else {
                    // Closed already in this child: dropping would close the
                    // number again, maybe someone else's descriptor by now.
                    std::mem::forget(entry.file);
                }
            }
        }
        held
    }

    /// Makes sure this process holds its liveness lock on the ring open as
    /// `file`, for as long as the returned `Hold` (and any other of the same
    /// ring) lives. Costs system calls only when this process holds no lock
    /// on the ring yet.
    pub(crate) fn hold(file: &File) -> std::io::Result<Hold> {
        let meta = file.metadata()?;
        let pid = std::process::id();
        let (dev, ino) = (meta.dev(), meta.ino());
        let mut held = held();
        if let Some(h) = held.iter_mut().find(|h| h.dev == dev && h.ino == ino) {
            h.count += 1;
            return Ok(Hold { dev, ino, pid });
        }
        // A descriptor of our own (its own open file description), so that
        // the lock outlives every ring handle of this process.
        let own = File::options()
            .read(true)
            .write(true)
            .custom_flags(libc::O_CLOEXEC)
            .open(format!("/proc/self/fd/{}", file.as_raw_fd()))?;
        super::try_lock(own.as_raw_fd(), LOCK_PROCESS_BASE + pid as i64)?;
        let fork_slot = crate::fork::register(own.as_raw_fd());
        held.push(Held {
            dev,
            ino,
            pid,
            file: own,
            fork_slot,
            count: 1,
        });
        Ok(Hold { dev, ino, pid })
    }

    impl Drop for Hold {
        fn drop(&mut self) {
            if self.pid != std::process::id() {
                return; // a parent's, in a forked child: closed already
            }
            let mut held = held();
            let Some(i) = held
                .iter()
                .position(|h| h.dev == self.dev && h.ino == self.ino)
            else {
                return;
            };
            held[i].count -= 1;
            if held[i].count == 0 {
                // The last writer of this ring in this process is gone, and
                // with it every record it could still write: let go.
                let h = held.swap_remove(i);
                if let Some(slot) = h.fork_slot {
                    crate::fork::unregister(slot, h.file.as_raw_fd());
                }
                drop(h.file); // closing the description releases the lock
            }
        }
    }

    /// Whether the process `pid` that wrote into this ring is alive (holds its
    /// lock). `fd` is any descriptor of the ring.
    pub(crate) fn alive(fd: i32, pid: u32) -> bool {
        super::held_by_other(fd, LOCK_PROCESS_BASE + pid as i64).unwrap_or(true)
    }

    /// Whether any process (other than through `fd`'s own description) holds
    /// a writer's lock on this ring: one `F_OFD_GETLK` over every pid's byte.
    pub(crate) fn any_alive(fd: i32) -> bool {
        super::held_by_other_range(fd, LOCK_PROCESS_BASE, 1 << 32).unwrap_or(true)
    }
}

#[cfg(test)]
mod tests {
    use crate::Ring;

    // A process holds its writer lock while it has a writer of the ring, and
    // lets go with its last one: what a collector leaving a replaced ring
    // waits for. (Seen through another handle: a lock of one's own open file
    // description is not reported by F_OFD_GETLK.)
    #[test]
    fn the_writer_lock_lives_as_long_as_the_last_writer() {
        let dir = logbus_testkit::TempDir::new("lock-writers");
        let ring = Ring::open(dir.path("ring")).unwrap();
        let other = Ring::open_existing(dir.path("ring")).unwrap();
        assert!(!other.writers_alive());
        let a = ring.writer().unwrap();
        let b = other.writer().unwrap();
        assert!(ring.writers_alive() && other.writers_alive());
        drop(a);
        assert!(other.writers_alive(), "one writer is left");
        drop(b);
        assert!(!other.writers_alive());
        let _c = ring.writer().unwrap();
        assert!(other.writers_alive(), "taken again by a new writer");
    }
}
