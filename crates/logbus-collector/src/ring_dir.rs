//! `--ring-dir`: every ring of one directory, each owned by the user whose
//! processes write it (the per-user rings of LTTng's per-UID buffers).
//!
//! Users trust neither each other nor the collector's other rings: each user
//! creates a ring of their own in the shared directory (mode 0600 or 0640, as
//! `logbus create` makes it), and only that user's processes can write it, so
//! a user can crash (truncate, scribble over) only their own producers. The
//! collector maps every ring read and write, validates everything it reads
//! (as for any ring), survives a ring truncated under it (the SIGBUS guard),
//! and tags each record with the ring's owner (`uid`), taken from the file
//! (`fstat` after open), not from anything its writers say.
//!
//! The directory itself must not let one user replace another's ring: it is
//! refused when writable by other users without the sticky bit (a sticky
//! directory, like `/tmp` or `/dev/shm`, lets only a file's owner rename or
//! delete it), or when owned by a user other than root or the collector's.
//!
//! Which files are rings: every regular file whose name does not start with
//! `.` (temporary files of `logbus create` and the collector's status file are
//! hidden). Symlinks, FIFOs, devices, files writable by others and files that
//! are not rings are refused with one line each, once per file.

use std::collections::{HashMap, HashSet};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use logbus_ring::Ring;

use crate::notice::Notice;

/// Rings one collector reads at most (its reader sleeps on all of them at
/// once, with one `futex_waitv`).
pub const MAX_RINGS: usize = 64;

/// Files not known yet opened per scan at most (the scan runs on the reader
/// thread: a directory filled with files must not stall delivery), and files
/// refused with a line of their own per scan (the others are counted in one
/// line), so that a user planting thousands of files delays and floods
/// nothing.
const LOOKS_PER_SCAN: usize = 64;
const LINES_PER_SCAN: usize = 8;

/// What one scan has done so far.
struct ScanCounts {
    /// Rings read, those taken by this scan included.
    count: usize,
    /// Files opened.
    looks: usize,
    /// Refusals said.
    lines: usize,
    /// Refusals not said (past `LINES_PER_SCAN`).
    unsaid: usize,
}

/// The directory and what was said about its files.
pub(crate) struct RingDir {
    path: PathBuf,
    /// Files not read: the (device, inode) they had when refused; a file of
    /// another identity at that name is looked at again. `true`: try again
    /// at every scan without saying anything more (another collector holds it).
    refused: HashMap<PathBuf, ((u64, u64), bool)>,
    /// Whether "too many rings" was said since the count was last below.
    too_many_said: bool,
}

/// Why a directory cannot be a ring directory, one line naming it.
pub(crate) fn check_dir(path: &Path) -> Result<(), String> {
    let meta = std::fs::symlink_metadata(path)
        .map_err(|e| format!("--ring-dir {}: {e}", path.display()))?;
    if !meta.file_type().is_dir() {
        return Err(format!(
            "--ring-dir {}: not a directory (a symbolic link is not followed)",
            path.display()
        ));
    }
    let mode = meta.permissions().mode();
    let euid = logbus_ring::trust::euid();
    if meta.uid() != 0 && meta.uid() != euid {
        return Err(format!(
            "--ring-dir {}: owned by uid {}, neither root nor this collector's uid {euid}: \
             its owner could replace any user's ring",
            path.display(),
            meta.uid()
        ));
    }
    if mode & 0o022 != 0 && mode & 0o1000 == 0 {
        return Err(format!(
            "--ring-dir {}: writable by other users without the sticky bit (mode {:04o}): \
             any of them could replace another's ring; chmod +t it",
            path.display(),
            mode & 0o7777
        ));
    }
    Ok(())
}

impl RingDir {
    /// The ring directory at `path`, checked (see [`check_dir`]).
    pub(crate) fn open(path: &Path) -> Result<RingDir, String> {
        check_dir(path)?;
        Ok(RingDir {
            path: path.to_path_buf(),
            refused: HashMap::new(),
            too_many_said: false,
        })
    }

    /// A ring let go (truncated under the collector): its file is not looked
    /// at again, nor reported, while it stays the same file.
    pub(crate) fn let_go(&mut self, path: &Path, id: (u64, u64)) {
        self.refused.insert(path.to_path_buf(), (id, false));
    }

    /// Opens the rings of the directory that are not read yet: `read` lists
    /// the (device, inode) of those read, `take` tries to take a ring's
    /// consumer role (`Err`: why not, one line; tried again at the next scan).
    /// Reads at most [`MAX_RINGS`] in all.
    pub(crate) fn scan(
        &mut self,
        read: &[(u64, u64)],
        notify: &dyn Fn(Notice),
        mut take: impl FnMut(Ring) -> Result<(), String>,
    ) {
        let Ok(entries) = std::fs::read_dir(&self.path) else {
            return;
        };
        let mut n = ScanCounts {
            count: read.len(),
            looks: 0,
            lines: 0,
            unsaid: 0,
        };
        let mut seen = HashSet::new();
        for entry in entries.flatten() {
            let name = entry.file_name();
            if name.as_encoded_bytes().first() == Some(&b'.') {
                continue;
            }
            let path = entry.path();
            let Ok(meta) = std::fs::symlink_metadata(&path) else {
                continue; // gone meanwhile
            };
            let id = (meta.dev(), meta.ino());
            seen.insert(path.clone());
            if read.contains(&id) {
                continue;
            }
            let retry = match self.refused.get(&path) {
                Some((was, retry)) if *was == id => {
                    if !retry {
                        continue;
                    }
                    true
                }
                _ => false,
            };
            self.look_at(path, id, retry, &mut n, notify, &mut take);
        }
        if n.unsaid > 0 {
            notify(Notice::RingsRefused {
                dir: self.path.clone(),
                more: n.unsaid,
            });
        }
        if n.count < MAX_RINGS {
            self.too_many_said = false;
        }
        // Forget files that are gone.
        self.refused.retain(|p, _| seen.contains(p));
    }

    /// Looks at one file of the directory (not read yet, not refused for
    /// good): takes it as a ring, or refuses it (one line, within the
    /// scan's bounds).
    fn look_at(
        &mut self,
        path: PathBuf,
        id: (u64, u64),
        retry: bool,
        n: &mut ScanCounts,
        notify: &dyn Fn(Notice),
        take: &mut impl FnMut(Ring) -> Result<(), String>,
    ) {
        if n.count >= MAX_RINGS {
            if !self.too_many_said {
                self.too_many_said = true;
                notify(Notice::TooManyRings {
                    dir: self.path.clone(),
                    max: MAX_RINGS,
                });
            }
            return;
        }
        if n.looks >= LOOKS_PER_SCAN {
            return; // the next scan
        }
        n.looks += 1;
        let mut refuse = |refused: &mut HashMap<_, _>, problem: String, again: bool| {
            if !retry {
                if n.lines < LINES_PER_SCAN {
                    n.lines += 1;
                    notify(Notice::RingRefused {
                        path: path.clone(),
                        problem,
                    });
                } else {
                    n.unsaid += 1;
                }
            }
            refused.insert(path.clone(), (id, again));
        };
        // Opened without following a link; a FIFO opens without waiting
        // and is refused, like a device or a file writable by others.
        let ring = match Ring::open_any_owner(&path) {
            Ok(r) => r,
            Err(e) => {
                refuse(&mut self.refused, e.to_string(), false);
                return;
            }
        };
        if ring.file_id() != id {
            return; // replaced between the two looks: the next scan
        }
        let uid = ring.owner();
        match take(ring) {
            Ok(()) => {
                self.refused.remove(&path);
                n.count += 1;
                notify(Notice::RingAdded { path, uid });
            }
            Err(problem) => refuse(&mut self.refused, problem, true),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use logbus_testkit::TempDir;

    #[test]
    fn a_directory_others_may_write_needs_the_sticky_bit() {
        let dir = TempDir::new("ring-dir-mode");
        let d = dir.path("rings");
        std::fs::create_dir(&d).unwrap();
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o777)).unwrap();
        let e = check_dir(&d).unwrap_err();
        assert!(e.contains("without the sticky bit (mode 0777)"), "{e}");
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o1777)).unwrap();
        check_dir(&d).unwrap();
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755)).unwrap();
        check_dir(&d).unwrap();
    }

    #[test]
    fn a_symlink_is_not_a_ring_directory() {
        let dir = TempDir::new("ring-dir-link");
        let d = dir.path("rings");
        std::fs::create_dir(&d).unwrap();
        std::os::unix::fs::symlink(&d, dir.path("link")).unwrap();
        let e = check_dir(&dir.path("link")).unwrap_err();
        assert!(e.contains("not a directory"), "{e}");
    }
}
