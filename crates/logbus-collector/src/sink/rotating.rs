//! An appended file with optional size-based rotation: before a write would
//! take it past `max_bytes`, `path.(keep-1)` becomes `path.keep`, ...,
//! `path` becomes `path.1`, and a new `path` is started. Rotation happens at
//! line boundaries; a single line longer than `max_bytes` gets a file of its own.
//!
//! The collector often runs as root and the directory may be shared and
//! sticky: see `open_checked` for what is refused at the path (symlinks,
//! FIFOs and files of other users). Rotation renames, which move a planted
//! symlink itself, never its target; the new file is then opened checked.

use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};

/// A file appended to, rotated by size.
pub struct RotatingFile {
    path: PathBuf,
    file: Option<File>,
    size: u64,
    max_bytes: Option<u64>,
    keep: u32,
}

/// Opens `path` for appending (creating it with mode 0640 less the umask).
///
/// What another user could have put at the path is refused: a symlink owned
/// by someone else (the kernel's `protected_symlinks` rule, applied whatever
/// the sysctl says), a regular file owned by another user, writable by
/// others or with more than one link, and a FIFO or device that is not ours.
/// A symlink this user made (say to `/dev/full`) is followed: it is
/// configuration. The open itself never waits (`O_NONBLOCK`); writes block
/// as usual afterwards.
fn open_checked(path: &Path) -> Result<File, String> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
    let euid = logbus_ring::trust::euid();
    let own_link = match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => {
            if m.uid() != euid {
                return Err(format!(
                    "refusing {}: it is a symbolic link owned by uid {}, not by this user",
                    path.display(),
                    m.uid()
                ));
            }
            true
        }
        _ => false,
    };
    // Not a link of ours: never follow one (a link planted after the check
    // above makes the open fail with ELOOP).
    let nofollow = if own_link { 0 } else { libc::O_NOFOLLOW };
    // A FIFO is opened write-only: opened for reading too (as files are, for
    // the partial-line repair), the collector would be a reader of its own
    // pipe (writes counted delivered into a pipe nobody drains), and a
    // writer while it looked (a reader waiting in open() would be let in,
    // then see end-of-file). Write-only and non-blocking, the open fails
    // with ENXIO while nobody reads it: the sink retries, keeping its records.
    let fifo = std::fs::metadata(path).is_ok_and(|m| m.file_type().is_fifo());
    let mut options = OpenOptions::new();
    if fifo {
        options.append(true);
    } else {
        options.read(true).append(true).create(true).mode(0o640);
    }
    let file = options
        .custom_flags(libc::O_CLOEXEC | libc::O_NONBLOCK | nofollow)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ELOOP) => format!("refusing {}: it is a symbolic link", path.display()),
            Some(libc::ENXIO) if fifo => format!(
                "cannot write {}: it is a FIFO that no process has open for reading",
                path.display()
            ),
            _ => format!("cannot open {}: {e}", path.display()),
        })?;
    check_opened(&file, path, fifo, own_link, euid)?;
    blocking(&file);
    Ok(file)
}

/// What was opened at `path`, checked: the FIFO (or not) that was looked
/// at, and not another user's file or device.
fn check_opened(
    file: &File,
    path: &Path,
    fifo: bool,
    own_link: bool,
    euid: u32,
) -> Result<(), String> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let meta = file
        .metadata()
        .map_err(|e| format!("cannot stat {}: {e}", path.display()))?;
    if meta.file_type().is_fifo() != fifo {
        // Replaced between the look and the open: look again next time.
        return Err(format!(
            "cannot open {}: it was replaced while being opened",
            path.display()
        ));
    }
    if meta.is_file() {
        logbus_ring::trust::check_file(&meta, true)
            .map_err(|why| format!("refusing {}: {why}", path.display()))?;
        if meta.nlink() != 1 {
            return Err(format!(
                "refusing {}: it has {} hard links (another name may be a file it must not touch)",
                path.display(),
                meta.nlink()
            ));
        }
    } else if !own_link && meta.uid() != euid {
        return Err(format!(
            "refusing {}: it is not a regular file and belongs to uid {} ({})",
            path.display(),
            meta.uid(),
            logbus_ring::trust::describe(&meta)
        ));
    }
    Ok(())
}

/// Makes the file's writes block (and stall, and be counted as such) like
/// any file's: it was opened non-blocking so that the open never waits.
fn blocking(file: &File) {
    use std::os::fd::AsRawFd;
    // SAFETY: `file` is an open descriptor; F_GETFL/F_SETFL only change its flags.
    unsafe {
        let fd = file.as_raw_fd();
        let flags = libc::fcntl(fd, libc::F_GETFL);
        if flags >= 0 {
            libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_NONBLOCK);
        }
    }
}

/// A file that does not end with a newline ends with part of a line a
/// collector was writing when it was killed (its record is delivered again,
/// whole, by the next one): cut it off. Returns the size after.
fn cut_partial_line(file: &File, size: u64) -> std::io::Result<u64> {
    use std::os::unix::fs::FileExt;
    if size == 0 {
        return Ok(0);
    }
    let tail = size.min(1 << 20);
    let mut buf = vec![0u8; tail as usize];
    file.read_exact_at(&mut buf, size - tail)?;
    if buf.last() == Some(&b'\n') {
        return Ok(size);
    }
    let keep = match buf.iter().rposition(|&b| b == b'\n') {
        Some(i) => size - tail + i as u64 + 1,
        // No newline in the last MiB: not a line file we wrote; leave it.
        None if tail < size => return Ok(size),
        None => 0,
    };
    file.set_len(keep)?;
    Ok(keep)
}

fn numbered(path: &Path, k: u32) -> PathBuf {
    let mut p: OsString = path.as_os_str().to_owned();
    p.push(format!(".{k}"));
    PathBuf::from(p)
}

impl RotatingFile {
    /// Opens (creates) `path` for appending, now.
    ///
    /// # Errors
    /// A one-line message naming the file.
    pub fn open(path: &Path, max_bytes: Option<u64>, keep: u32) -> Result<RotatingFile, String> {
        let mut f = RotatingFile::lazy(path, max_bytes, keep);
        f.reopen()?;
        Ok(f)
    }

    /// A file opened on its first write (on the sink's own thread: an open
    /// that blocks, on a FIFO say, blocks only that sink).
    pub fn lazy(path: &Path, max_bytes: Option<u64>, keep: u32) -> RotatingFile {
        RotatingFile {
            path: path.to_path_buf(),
            file: None,
            size: 0,
            max_bytes,
            keep,
        }
    }

    /// Closes and opens the file again (it may have been renamed away).
    ///
    /// # Errors
    /// A one-line message naming the file.
    pub fn reopen(&mut self) -> Result<(), String> {
        self.file = None;
        let file = open_checked(&self.path)?;
        self.size = file.metadata().map(|m| m.len()).unwrap_or(0);
        self.size = cut_partial_line(&file, self.size)
            .map_err(|e| format!("cannot repair {}: {e}", self.path.display()))?;
        self.file = Some(file);
        Ok(())
    }

    fn rotate(&mut self) -> Result<(), String> {
        self.file = None;
        let gone = |r: std::io::Result<()>| match r {
            Err(e) if e.kind() != ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        };
        let r = if self.keep == 0 {
            gone(std::fs::remove_file(&self.path))
        } else {
            (1..self.keep)
                .rev()
                .try_for_each(|k| {
                    gone(std::fs::rename(
                        numbered(&self.path, k),
                        numbered(&self.path, k + 1),
                    ))
                })
                .and_then(|_| gone(std::fs::rename(&self.path, numbered(&self.path, 1))))
        };
        r.map_err(|e| format!("cannot rotate {}: {e}", self.path.display()))?;
        self.reopen()
    }

    fn write_raw(&mut self, bytes: &[u8]) -> Result<usize, (usize, String)> {
        if self.file.is_none() {
            self.reopen().map_err(|e| (0, e))?;
        }
        let Some(f) = self.file.as_mut() else {
            return Err((0, "file not open".into()));
        };
        let mut written = 0;
        while written < bytes.len() {
            match f.write(&bytes[written..]) {
                Ok(0) => {
                    return Err((
                        written,
                        format!("cannot write {}: wrote nothing", self.path.display()),
                    ))
                }
                Ok(n) => {
                    written += n;
                    self.size += n as u64;
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => {
                    return Err((
                        written,
                        format!("cannot write {}: {e}", self.path.display()),
                    ))
                }
            }
        }
        Ok(written)
    }

    /// Appends whole lines, rotating as needed. Returns the bytes written, or
    /// the bytes written before the error and the error.
    ///
    /// # Errors
    /// A one-line message naming the file, with the bytes written before it.
    pub fn write_lines(&mut self, lines: &[u8]) -> Result<usize, (usize, String)> {
        let Some(max) = self.max_bytes else {
            return self.write_raw(lines);
        };
        let mut done = 0;
        while done < lines.len() {
            let rest = &lines[done..];
            let room = max.saturating_sub(self.size) as usize;
            let take = if rest.len() <= room {
                rest.len()
            } else {
                // The longest run of whole lines that fits.
                match rest[..room].iter().rposition(|&b| b == b'\n') {
                    Some(p) => p + 1,
                    None if self.size > 0 => {
                        self.rotate().map_err(|e| (done, e))?;
                        continue;
                    }
                    // An empty file and a line longer than max: it goes alone.
                    None => rest
                        .iter()
                        .position(|&b| b == b'\n')
                        .map_or(rest.len(), |p| p + 1),
                }
            };
            done += self
                .write_raw(&rest[..take])
                .map_err(|(n, e)| (done + n, e))?;
        }
        Ok(done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotates_at_line_boundaries_and_keeps_n() {
        let dir = logbus_testkit::TempDir::new("rot");
        let path = dir.path("f.log");
        let mut f = RotatingFile::open(&path, Some(25), 2).unwrap();
        // Ten 9-byte lines: two per file (a third would pass 25 bytes).
        let lines: Vec<u8> = (0..10)
            .flat_map(|i| format!("line-{i:03}\n").into_bytes())
            .collect();
        assert_eq!(f.write_lines(&lines), Ok(90));
        let read = |p: &Path| std::fs::read_to_string(p).unwrap();
        assert_eq!(read(&path), "line-008\nline-009\n");
        assert_eq!(read(&numbered(&path, 1)), "line-006\nline-007\n");
        assert_eq!(read(&numbered(&path, 2)), "line-004\nline-005\n");
        assert!(!numbered(&path, 3).exists());
        // A line longer than max_bytes gets a file of its own.
        let long = format!("{}\n", "x".repeat(40));
        assert_eq!(f.write_lines(long.as_bytes()), Ok(41));
        assert_eq!(read(&path), long);
        // Reopen after an external rename starts a new file.
        std::fs::rename(&path, dir.path("moved")).unwrap();
        f.reopen().unwrap();
        assert_eq!(f.write_lines(b"after\n"), Ok(6));
        assert_eq!(read(&path), "after\n");
    }
}
