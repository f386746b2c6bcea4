//! The `file` sink: JSON or text lines appended to a file, optionally
//! rotated by size (the [`LineWriter`] over a [`RotatingFile`]). The file is
//! opened at start when it can be; one that cannot be opened for now (a FIFO
//! with no reader yet, a missing directory, a full disk) is opened by the
//! sink's own thread, which retries; what another user planted at the path
//! is refused at start (SECURITY.md).

use std::path::Path;

pub(crate) mod config;

use crate::config::Format;
use crate::sink::line_writer::{LineDest, LineWriter};
use crate::sink::rotating::RotatingFile;

/// The `file` sink.
pub type FileSink = LineWriter<RotatingFile>;

/// Opens a `file` sink: the file now if it can be (the open never waits),
/// else lazily by the sink's thread.
///
/// # Errors
/// What another user planted at the path (`refusing ...`).
pub fn open(
    path: &Path,
    format: Format,
    max_bytes: Option<u64>,
    keep: u32,
) -> Result<FileSink, String> {
    let file = match RotatingFile::open(path, max_bytes, keep) {
        Ok(f) => f,
        Err(e) if e.starts_with("refusing") => return Err(e),
        Err(_) => RotatingFile::lazy(path, max_bytes, keep),
    };
    Ok(FileSink::new(file, format))
}

impl LineDest for RotatingFile {
    fn write(&mut self, bytes: &[u8]) -> (usize, Result<(), String>) {
        match self.write_lines(bytes) {
            Ok(n) => (n, Ok(())),
            Err((n, e)) => (n, Err(e)),
        }
    }

    fn reopen(&mut self) -> Result<(), String> {
        RotatingFile::reopen(self)
    }
}
