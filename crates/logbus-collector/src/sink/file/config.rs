//! The `file` sink's table: `path` (required), `format`, and size-based
//! rotation (`max_bytes`, `keep`).

use std::path::PathBuf;

use crate::config::table::sink_table;
use crate::config::{Format, SinkKind};

/// Rotated files kept when `keep` is not given.
pub const DEFAULT_KEEP: u32 = 5;

sink_table! {
    /// A `file` sink's own keys.
    FileTable => FileOptions {
        /// The file (relative to the collector's working directory).
        path: Option<PathBuf>,
        /// Line format (default JSON).
        format: Option<Format>,
        /// Rotate before the file would grow past this many bytes.
        max_bytes: Option<u64>,
        /// Rotated files kept.
        keep: Option<u32>,
    }
}

impl FileOptions {
    /// The sink's kind, validated (else the key and the problem).
    pub(crate) fn kind(self) -> Result<SinkKind, (&'static str, String)> {
        let path = self
            .path
            .ok_or(("path", "missing (file sinks need a path)".to_string()))?;
        if path.as_os_str().is_empty() {
            return Err(("path", "is empty".into()));
        }
        if self.max_bytes == Some(0) {
            return Err(("max_bytes", "must be at least 1".into()));
        }
        if self.keep.is_some() && self.max_bytes.is_none() {
            return Err(("keep", "needs max_bytes (rotation is by size)".into()));
        }
        Ok(SinkKind::File {
            path,
            format: self.format.unwrap_or(Format::Json),
            max_bytes: self.max_bytes,
            keep: self.keep.unwrap_or(DEFAULT_KEEP),
        })
    }
}
