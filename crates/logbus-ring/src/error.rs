//! One error enum per operation.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// Why a ring could not be opened or created. Every variant names the file, and
/// its `Display` is one line fit for a person.
#[derive(Debug)]
pub enum OpenError {
    /// A system call failed.
    Io {
        /// The ring file.
        path: PathBuf,
        /// What was being done.
        op: &'static str,
        /// The system's error.
        source: io::Error,
    },
    /// The file does not start with the ring magic.
    NotARing {
        /// The ring file.
        path: PathBuf,
    },
    /// The file is a ring of another layout version.
    Version {
        /// The ring file.
        path: PathBuf,
        /// The version found in the header.
        found: u32,
    },
    /// The file is shorter than its header says.
    Truncated {
        /// The ring file.
        path: PathBuf,
        /// Its size.
        actual: u64,
        /// The size its header implies.
        expected: u64,
    },
    /// The header's geometry is impossible, or the requested one is.
    Geometry {
        /// The ring file.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
    /// The ring was opened before `fork()`; the child must open it again.
    Forked,
    /// The path is not a file this process may trust: a symlink, not a
    /// regular file, writable by other users, or owned by another user.
    Untrusted {
        /// The ring file.
        path: PathBuf,
        /// What is wrong, with the owner and mode where they matter.
        problem: String,
    },
}

impl fmt::Display for OpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OpenError::Io { path, op, source } => {
                write!(f, "{}: cannot {op}: {source}", path.display())
            }
            OpenError::NotARing { path } => {
                write!(f, "{}: not a logbus ring (wrong magic)", path.display())
            }
            OpenError::Version { path, found } if *found < crate::layout::VERSION => write!(
                f,
                "{}: ring layout version {found} is older than this logbus's version {}: stop its producers and collector, delete the file and create it again",
                path.display(),
                crate::layout::VERSION
            ),
            OpenError::Version { path, found } => write!(
                f,
                "{}: ring layout version {found}, this logbus reads version {}",
                path.display(),
                crate::layout::VERSION
            ),
            OpenError::Truncated {
                path,
                actual,
                expected,
            } => write!(
                f,
                "{}: truncated ring: the file has {actual} bytes, its header says {expected}",
                path.display()
            ),
            OpenError::Geometry { path, problem } => {
                write!(f, "{}: bad ring geometry: {problem}", path.display())
            }
            OpenError::Forked => write!(f, "ring handle was opened before fork(); open it again"),
            OpenError::Untrusted { path, problem } => {
                write!(f, "{}: refusing the ring: {problem}", path.display())
            }
        }
    }
}

impl std::error::Error for OpenError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            OpenError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// Why a writer, or a resource-table entry, could not be had.
#[derive(Debug)]
pub enum WriterError {
    /// Every entry of the resource table is taken: by a live process, or by
    /// one that exited and whose records may still be unread.
    TableFull {
        /// Entries in the table.
        entries: u32,
        /// Entries held by live processes.
        live: u32,
        /// Entries of exited processes whose records may still be unread.
        unread: u32,
    },
    /// The ring handle was opened before `fork()`.
    Forked,
    /// The ring was replaced at its path and its collector is letting go of
    /// it ([`crate::Ring::retire`]): records written into it now might never
    /// be read. Open the path again.
    Retired,
    /// A lock call failed.
    Io(io::Error),
}

impl fmt::Display for WriterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WriterError::TableFull {
                entries,
                live,
                unread,
            } => write!(
                f,
                "all {entries} resource entries of the ring are taken ({live} by live processes, \
                 {unread} by exited processes whose records may still be unread)"
            ),
            WriterError::Forked => write!(f, "ring handle was opened before fork(); open it again"),
            WriterError::Retired => write!(
                f,
                "the ring was replaced at its path and its collector is letting go of it; \
                 open the path again"
            ),
            WriterError::Io(e) => write!(f, "cannot take a liveness lock on the ring: {e}"),
        }
    }
}

impl std::error::Error for WriterError {}

/// Why a record could not be written at all (a record refused by the overflow
/// policy is not an error: see [`crate::Emitted::Dropped`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmitError {
    /// This writer belongs to the parent of a `fork()`; the child needs its own.
    Forked,
}

impl fmt::Display for EmitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EmitError::Forked => write!(f, "writer was made before fork(); make a new one"),
        }
    }
}

impl std::error::Error for EmitError {}

/// Why the consumer role could not be taken.
#[derive(Debug)]
pub enum ConsumerError {
    /// Another live process consumes this ring.
    Busy {
        /// The ring file.
        path: PathBuf,
        /// The holder's pid as it wrote it into the header (0 if not yet written).
        pid: u32,
    },
    /// The ring handle was opened before `fork()`.
    Forked,
    /// A lock call failed.
    Io(io::Error),
}

impl fmt::Display for ConsumerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConsumerError::Busy { path, pid } => write!(
                f,
                "{}: already consumed by pid {pid} (one consumer at a time)",
                path.display()
            ),
            ConsumerError::Forked => {
                write!(f, "ring handle was opened before fork(); open it again")
            }
            ConsumerError::Io(e) => write!(f, "cannot lock the consumer role: {e}"),
        }
    }
}

impl std::error::Error for ConsumerError {}
