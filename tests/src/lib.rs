//! Helpers for the multi-process integration tests under `tests/tests/`.
//!
//! The tests run the workspace's real binaries, found next to the test
//! executable's `deps/` directory. `cargo test` builds only this package's
//! own binaries, so `scripts/test` runs `cargo build --workspace --bins
//! --examples` first.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub mod collector;

/// Path of a binary (or, with `example = true`, an example) of this workspace,
/// built by the same `cargo test` profile.
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    // target/<profile>/deps/<test> -> target/<profile>
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test executable lives in target/<profile>/deps");
    let path = profile_dir.join(name);
    assert!(
        path.exists(),
        "{} is not built; run scripts/test, or `cargo build --workspace --bins --examples` first",
        path.display()
    );
    path
}

/// Path of an example binary of this workspace (see [`bin`]).
pub fn example(name: &str) -> PathBuf {
    bin(&format!("examples/{name}"))
}

/// A fresh directory (under `/dev/shm` when it exists, like real rings), removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    /// Makes a new, empty directory whose name contains `tag`.
    pub fn new(tag: &str) -> TempDir {
        let base = if Path::new("/dev/shm").is_dir() {
            PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        };
        let p = base.join(format!(
            "logbus-test-{tag}-{}-{}",
            std::process::id(),
            logbus_ring::now_ns()
        ));
        std::fs::create_dir_all(&p).expect("create temp dir");
        TempDir(p)
    }

    /// A path inside the directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
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
/// `what`). For waiting on a condition another process brings about; the
/// timeout is a generous failure bound, not a synchronisation delay.
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
