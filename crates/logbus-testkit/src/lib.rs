//! What the logbus tests share, in one place instead of a copy per crate:
//! [`TempDir`], [`wait_for`], an allocation counter ([`alloc`]), and
//! (feature `otlp-receiver`) a real OTLP receiver, `otlp_receiver`.
//! Not published; only tests and benchmarks depend on it.
//!
//! ```
//! let dir = logbus_testkit::TempDir::new("doc");
//! std::fs::write(dir.path("f"), b"x").unwrap();
//! let n = logbus_testkit::wait_for("the file", std::time::Duration::from_secs(5), || {
//!     std::fs::read(dir.path("f")).ok().map(|b| b.len())
//! });
//! assert_eq!(n, 1);
//! ```
#![deny(missing_docs)]

pub mod alloc;
#[cfg(feature = "otlp-receiver")]
pub mod otlp_receiver;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A fresh directory (under `/dev/shm` when it exists, like real rings),
/// removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    /// Makes a new, empty directory whose name contains `tag`.
    pub fn new(tag: &str) -> TempDir {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let base = if Path::new("/dev/shm").is_dir() {
            PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        };
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        // Relaxed: only uniqueness within this process matters.
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let p = base.join(format!(
            "logbus-test-{tag}-{}-{nanos}-{n}",
            std::process::id()
        ));
        std::fs::create_dir_all(&p).expect("create temp dir");
        TempDir(p)
    }

    /// A path inside the directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    /// `path("ring")`: where most tests put their ring.
    pub fn ring(&self) -> PathBuf {
        self.path("ring")
    }

    /// The directory itself.
    pub fn dir(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Polls `cond` until it returns `Some` or `timeout` passes (then panics with
/// `what`). For waiting on a condition another process or thread brings
/// about; the timeout is a generous failure bound, not a synchronisation delay.
pub fn wait_for<T>(what: &str, timeout: Duration, mut cond: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_micros(100);
    loop {
        if let Some(v) = cond() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}
