//! The status file `<ring path>.collector.json`, read by `logbus stat`.
//!
//! It lives next to the ring, often in a shared sticky directory such as
//! `/dev/shm`, and the collector often runs as root: so it is never written
//! through a path another user could have prepared. The document goes into a
//! new temporary file created with `O_EXCL | O_NOFOLLOW` (a planted name or
//! symlink makes the create fail, never redirects it), then is renamed over
//! the status path (`rename` replaces whatever is there, a symlink included,
//! without following it).

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The status document: one definition for its writer (the collector, once a
/// second) and its reader (`logbus stat`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// The collector's pid (the ring's consumer).
    pub pid: u32,
    /// When it was written, ns since the Unix epoch.
    #[serde(default)]
    pub updated_ns: u64,
    /// One entry per sink, in configuration order.
    pub sinks: Vec<SinkStatus>,
}

/// One sink's counters in the [`Status`] document.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SinkStatus {
    /// The sink's name.
    pub name: String,
    /// Its type (`stdout`, `file`, `otlp`, `null`).
    #[serde(rename = "type")]
    pub kind: String,
    /// Records written (or acknowledged).
    #[serde(default)]
    pub delivered: u64,
    /// Records shed, per level name.
    #[serde(default)]
    pub dropped: BTreeMap<String, u64>,
    /// Records refused for good by the destination, per level name.
    #[serde(default)]
    pub rejected: BTreeMap<String, u64>,
    /// Records an earlier, crashed collector held for this sink in memory
    /// only and lost, per level name (absent from older collectors).
    #[serde(default)]
    pub lost_in_crash: BTreeMap<String, u64>,
    /// Records the destination took but rejected (OTLP partial success).
    #[serde(default)]
    pub partially_rejected: u64,
    /// Failed write attempts.
    #[serde(default)]
    pub errors: u64,
    /// Writes tried again after a failure (absent from older collectors).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<u64>,
    /// Whether the last write succeeded (absent from older collectors).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub up: Option<bool>,
    /// How long its write in progress has been blocked, when that is at
    /// least `STUCK_AFTER` (then `up` is false).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub writing_for_ms: Option<u64>,
    /// Records not yet finished (queued or in flight).
    #[serde(default)]
    pub backlog: u64,
    /// The same as `backlog` (the name older readers know).
    #[serde(default)]
    pub queue_depth: u64,
}

/// What a collector's status file name ends with: `<ring>` + this for the
/// collector of one ring, this alone (a hidden file) in a `--ring-dir`.
pub const STATUS_SUFFIX: &str = ".collector.json";

/// Where the status file of the collector of `ring` lives.
pub fn status_path(ring: &Path) -> PathBuf {
    let mut p = ring.as_os_str().to_owned();
    p.push(STATUS_SUFFIX);
    PathBuf::from(p)
}

/// Where the status file of a collector of every ring of `dir` lives
/// (`--ring-dir`): hidden, so that it is not taken for a ring.
pub fn dir_status_path(dir: &Path) -> PathBuf {
    dir.join(STATUS_SUFFIX)
}

/// Writes `bytes` to `path` atomically: a private new temporary file (never
/// an existing one, never through a symlink), then a rename over `path`.
///
/// # Errors
/// The failing create, write or rename; the temporary file is removed.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut last = None;
    for attempt in 0..4u32 {
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(format!(
            ".tmp.{}.{}.{attempt}",
            std::process::id(),
            logbus_ring::monotonic_ns()
        ));
        let tmp = PathBuf::from(tmp);
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .custom_flags(libc::O_CLOEXEC | libc::O_NOFOLLOW)
            .open(&tmp);
        let mut file = match file {
            Ok(f) => f,
            // Someone planted this name: try another, never write through it.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                last = Some(e);
                continue;
            }
            Err(e) => return Err(e),
        };
        let result = file
            .write_all(bytes)
            .and_then(|()| std::fs::rename(&tmp, path));
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        return result;
    }
    Err(last.unwrap_or_else(|| std::io::Error::other("no temporary name")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn planted_temporary_names_and_symlinks_are_never_written_through() {
        let dir = std::env::temp_dir().join(format!(
            "logbus-status-{}-{}",
            std::process::id(),
            logbus_ring::now_ns()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let victim = dir.join("victim");
        std::fs::write(&victim, "precious").unwrap();
        let status = dir.join("ring.collector.json");
        std::os::unix::fs::symlink(&victim, &status).unwrap();
        write_atomic(&status, b"{}\n").unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
        assert!(!std::fs::symlink_metadata(&status).unwrap().is_symlink());
        assert_eq!(std::fs::read_to_string(&status).unwrap(), "{}\n");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
